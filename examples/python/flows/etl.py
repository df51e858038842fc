"""Extract, transform in parallel, load: the shape of most of the team's flows.

`extract` is flaky (as a real API is) and retried; `transform` is mapped over the regions, one
task run each; `load` gets their results as a list. Run it locally:

    python -m weir examples/python/flows/etl.py run etl --param rows=500
"""

import enum
import random
from typing import Dict, List

import weir


class Rounding(enum.Enum):
    """How amounts are rounded in the summary."""

    CENTS = "cents"
    DOLLARS = "dollars"


@weir.task(retries=3, retry_delay=[0.1, 0.5, 2], jitter=0.2, tags=["io"])
def extract(rows: int, seed: int) -> List[Dict]:
    """Fetches `rows` sales rows (fails now and then, like a real API)."""
    if random.random() < 0.3:
        raise ConnectionError("the sales API timed out")
    rng = random.Random(seed)
    regions = ["north", "south", "east", "west"]
    data = [{"id": i, "region": regions[i % 4], "amount_cents": rng.randint(-500, 10_000)}
            for i in range(rows)]
    weir.get_run_logger().info("extracted %d rows", len(data))
    return data


@weir.task
def transform(region: str, rows: List[Dict], rounding: Rounding) -> Dict:
    """Totals one region, refunds (negative amounts) left out."""
    kept = [r["amount_cents"] for r in rows if r["region"] == region and r["amount_cents"] > 0]
    total = sum(kept)
    if rounding is Rounding.DOLLARS:
        total = round(total / 100) * 100
    return {"region": region, "rows": len(kept), "total_cents": total}


@weir.task(log_prints=True)
def load(summaries: List[Dict]) -> int:
    """Loads the summaries (here: prints them) and returns the grand total."""
    for s in summaries:
        print(f"{s['region']:>6}: {s['rows']:4d} rows, {s['total_cents'] / 100:10.2f}")
    return sum(s["total_cents"] for s in summaries)


@weir.flow
def etl(rows: int = 100, regions: List[str] = ["north", "south", "east", "west"],  # noqa: B006
        rounding: Rounding = Rounding.CENTS, seed: int = 7) -> int:
    """Extract sales rows, total them per region in parallel, load the summaries.

    Args:
        rows: how many rows to extract
        regions: the regions to total, one task run each
        rounding: how totals are rounded
        seed: makes the generated rows (and extract's failures) repeatable
    """
    data = extract(rows, seed)
    summaries = transform.map(regions, rows=weir.unmapped(data), rounding=weir.unmapped(rounding))
    return load(summaries)
