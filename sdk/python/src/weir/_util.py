"""Small shared pieces: ids, times, durations, redaction, JSON conversion of values."""

from __future__ import annotations

import dataclasses
import datetime as _dt
import enum
import itertools
import json
import os
import random
import time
import uuid
from pathlib import PurePath
from typing import Any

#: What a redacted secret is replaced with (the same as Weir's agent and Rust SDK).
REDACTED = "***"

# Task-run ids: one UUIDv7 prefix per process (its start time in ms, random bits), the last 12
# hex digits a counter. Unique across processes by the random bits, ordered by creation within
# one, and the task path only takes the next number of a counter.
_SEQ = itertools.count(1)
_PREFIX = ""


def _new_prefix() -> str:
    ms = int(time.time() * 1000) & ((1 << 48) - 1)
    rand_a = random.getrandbits(12)
    rand_b = random.getrandbits(14) | 0x8000  # variant 10xx
    h = f"{ms:012x}"
    return f"{h[:8]}-{h[8:]}-7{rand_a:03x}-{rand_b:04x}-"


_PREFIX = _new_prefix()


def next_seq() -> int:
    return next(_SEQ)


def seq_id(seq: int) -> str:
    """The task-run id (a UUIDv7 string) of counter value `seq`."""
    return f"{_PREFIX}{seq:012x}"


def reset_after_fork() -> None:
    """A forked child gets its own id space."""
    global _PREFIX, _SEQ
    _PREFIX = _new_prefix()
    _SEQ = itertools.count(1)


def uuid7() -> str:
    """A fresh UUIDv7 string."""
    ms = int(time.time() * 1000) & ((1 << 48) - 1)
    r = random.getrandbits(74)
    value = (ms << 80) | (0x7 << 76) | ((r >> 62) << 64) | (0b10 << 62) | (r & ((1 << 62) - 1))
    return str(uuid.UUID(int=value))


_sec_cache: list = [None, ""]


def rfc3339(at: float) -> str:
    """`at` (seconds since the epoch) as RFC 3339 UTC with microseconds."""
    sec = int(at)
    if _sec_cache[0] != sec:
        _sec_cache[0] = sec
        _sec_cache[1] = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec))
    return f"{_sec_cache[1]}.{int((at - sec) * 1_000_000):06d}Z"


def parse_rfc3339(text: str) -> float:
    t = text.strip()
    if t.endswith("Z"):
        t = t[:-1] + "+00:00"
    # Python 3.9's fromisoformat wants 0, 3 or 6 fractional digits.
    if "." in t:
        head, rest = t.split(".", 1)
        i = 0
        while i < len(rest) and rest[i].isdigit():
            i += 1
        frac = (rest[:i] + "000000")[:6]
        t = f"{head}.{frac}{rest[i:]}"
    return _dt.datetime.fromisoformat(t).timestamp()


def seconds(value: Any, what: str) -> float:
    """A duration in seconds from a number or a `timedelta`; a clear error otherwise."""
    if isinstance(value, _dt.timedelta):
        return value.total_seconds()
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise TypeError(f"{what} must be a number of seconds (or a timedelta), got {value!r}")
    return float(value)


def fmt_duration(s: float) -> str:
    """`500ms`, `2s`, `5m`, `1.500s` — as the Rust SDK writes durations."""
    ms = int(round(s * 1000))
    if ms < 1000:
        return f"{ms}ms"
    if ms % 60_000 == 0:
        return f"{ms // 60_000}m"
    if ms % 1000 == 0:
        return f"{ms // 1000}s"
    return f"{s:.3f}s"


def env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip() in ("1", "true", "yes")


class Redactor:
    """Replaces the values of the environment variables named in `WEIR_SECRET_VARS` (set by an
    agent to the variables it filled from secret references) with `***`."""

    def __init__(self, values):
        secrets = set()
        for v in values:
            for line in v.splitlines():
                line = line.rstrip("\r")
                if line:
                    secrets.add(line)
        self.secrets = sorted(secrets, key=lambda s: (-len(s), s))

    @classmethod
    def from_env(cls) -> "Redactor":
        names = [n.strip() for n in os.environ.get("WEIR_SECRET_VARS", "").split(",")]
        return cls(os.environ[n] for n in names if n and n in os.environ)

    def __bool__(self) -> bool:
        return bool(self.secrets)

    def text(self, s: str) -> str:
        for secret in self.secrets:
            if secret in s:
                s = s.replace(secret, REDACTED)
        return s

    def json(self, value: Any) -> Any:
        if not self.secrets:
            return value
        raw = json.dumps(value)
        clean = self.text(raw)
        if clean == raw:
            return value
        try:
            return json.loads(clean)
        except ValueError:
            return REDACTED


def to_json(value: Any) -> Any:
    """A JSON-compatible copy of `value`: dataclasses and pydantic models as objects, enums as
    their values, dates and paths as strings, tuples and sets as lists. Raises `TypeError` for
    anything else that JSON cannot hold."""
    if value is None or isinstance(value, (str, bool, int, float)):
        if isinstance(value, enum.Enum):
            return to_json(value.value)
        return value
    if isinstance(value, enum.Enum):
        return to_json(value.value)
    if isinstance(value, dict):
        return {str(k.value if isinstance(k, enum.Enum) else k): to_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_json(v) for v in value]
    if isinstance(value, (set, frozenset)):
        return [to_json(v) for v in sorted(value, key=repr)]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_json(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, _dt.datetime):
        return value.isoformat()
    if isinstance(value, (_dt.date, _dt.time)):
        return value.isoformat()
    if isinstance(value, (PurePath, uuid.UUID)):
        return str(value)
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        return dump(mode="json")
    raise TypeError(f"a value of type {type(value).__name__} cannot be stored as JSON")


def to_json_or_none(value: Any) -> Any:
    try:
        return to_json(value)
    except (TypeError, ValueError):
        return None


def describe_error(e: BaseException) -> str:
    """The message reported for an exception: its text, with the type for unexplained ones."""
    text = str(e)
    name = type(e).__name__
    if not text:
        return name
    if getattr(e, "_weir_plain", False):
        return text
    return f"{name}: {text}"


def say(line: str, out: bool = False) -> None:
    """Writes a line to stderr (stdout with `out`), dropping what cannot be written: a flow
    process launched by an agent writes into pipes the agent reads, and must outlive the agent
    (and still deliver its reports) when those pipes close."""
    import sys

    stream = sys.stdout if out else sys.stderr
    try:
        stream.write(line + "\n")
        stream.flush()
    except (OSError, ValueError):
        pass


def flush_limit() -> float:
    """How long a finished flow waits for an unreachable server, first to take its reports,
    then its final state: `WEIR_FLUSH_TIMEOUT_S` seconds (default 120) each."""
    try:
        return float(os.environ.get("WEIR_FLUSH_TIMEOUT_S", "120"))
    except ValueError:
        return 120.0
