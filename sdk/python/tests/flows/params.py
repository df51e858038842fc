"""Flows with typed parameters (the same signatures as the Rust SDK's weir-schema-zoo)."""

import enum
from dataclasses import dataclass
from datetime import date
from typing import Annotated, Dict, List, Literal, Optional

import weir


class Mode(enum.Enum):
    """How to run."""

    FAST = "fast"
    SLOW = "slow"


@dataclass
class Source:
    """A data source."""

    bucket: str
    key: str
    attempts: int


@weir.flow
def scalars(name: str, count: int = 3,
            ratio: Annotated[float, "Share of rows to keep"] = 0.5,
            dry_run: bool = False) -> str:
    """Scalars with and without defaults."""
    return f"{name} {count} {ratio} {dry_run}"


@weir.flow
def containers(region: Optional[str], tags: List[str] = [],  # noqa: B006
               limits: Dict[str, int] = {},  # noqa: B006
               sample: Optional[float] = None) -> int:
    """Optional values, lists and maps."""
    return len(tags) + len(limits) + (region is not None) + (sample is not None)


@weir.flow
def structured(source: Source, mode: Mode = Mode.FAST,
               fallback: Optional[Source] = None) -> str:
    """Enumerations and structures."""
    return f"{mode.name} {source.bucket} {fallback is not None}"


@weir.flow
def python_only(kind: Literal["csv", "json"] = "csv", since: Optional[date] = None,
                pair: tuple = (1, 2)) -> str:
    """Types only Python has.

    Args:
        kind: output format
        since: first day to load
    """
    return f"{kind} {since.isoformat() if since else '-'} {type(since).__name__}"
