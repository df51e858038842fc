"""Flows for caching and persisted results."""

import os
from datetime import timedelta

import weir

CALLS = os.environ.get("RESULTS_TEST_MARKS", "")


def mark(what: str) -> None:
    if CALLS:
        with open(CALLS, "a") as f:
            f.write(what + "\n")


@weir.task(cache_key=lambda region: f"sales-{region}", cache_expiration=timedelta(hours=1))
def expensive(region: str) -> dict:
    mark(f"expensive {region}")
    return {"region": region, "total": len(region) * 100}


@weir.task
def uncached(region: str) -> int:
    mark(f"uncached {region}")
    return len(region)


@weir.flow
def cached(region: str = "north") -> dict:
    out = expensive(region)
    out["len"] = uncached(region)
    return out


@weir.task(persist_result=True)
def extract(n: int) -> list:
    mark(f"extract {n}")
    return list(range(n))


@weir.task
def load(rows: list) -> int:
    mark("load")
    fail_if = os.environ.get("RESULTS_TEST_FAIL_IF")
    if os.environ.get("RESULTS_TEST_FAIL_LOAD") == "1" or (fail_if and os.path.exists(fail_if)):
        raise RuntimeError("the warehouse is down")
    return sum(rows)


@weir.flow
def persisted(n: int = 5) -> int:
    return load(extract(n))
