"""Flows the tests run as real processes: options, retries, timeouts, map, subflows, async."""

import asyncio
import os
import time
from typing import List, Optional

import weir

ATTEMPTS = {"n": 0}


@weir.task
def add_one(x: int) -> int:
    return x + 1


@weir.flow
def chain(n: int = 10) -> int:
    """`n` tasks in sequence, each adding 1."""
    v = 0
    for _ in range(n):
        v = add_one(v)
    return v


@weir.task(retries=3, retry_delay=[0.01, 0.02], tags=["io"])
def unreliable() -> str:
    ATTEMPTS["n"] += 1
    if ATTEMPTS["n"] <= 2:
        raise ConnectionError(f"transient failure on attempt {ATTEMPTS['n']}")
    weir.get_run_logger().info("succeeded on attempt %d", ATTEMPTS["n"])
    return f"ok after {ATTEMPTS['n']}"


@weir.flow
def flaky() -> str:
    return unreliable()


def _only_connection_errors(e: BaseException) -> bool:
    return isinstance(e, ConnectionError)


@weir.task(retries=5, retry_delay=0.01, retry_if=_only_connection_errors)
def missing_key(key: str) -> bytes:
    raise KeyError(f"no such key {key}")


@weir.flow
def not_retried(key: str = "a/b") -> int:
    return len(missing_key(key))


@weir.task
def load_orders() -> int:
    raise RuntimeError("the source table 'orders' does not exist")


@weir.flow
def fails() -> int:
    return load_orders()


@weir.task(timeout=0.3)
def sleepy(seconds: float) -> float:
    end = time.monotonic() + seconds
    while time.monotonic() < end:  # short sleeps: a worker thread is interrupted between them
        time.sleep(0.02)
    return seconds


@weir.flow
def timeouts(seconds: float = 5.0) -> float:
    return sleepy(seconds)


@weir.flow
def timeouts_in_threads(seconds: float = 5.0) -> float:
    return sleepy.submit(seconds).result()


@weir.task
def square(x: int, offset: int = 0) -> int:
    return x * x + offset


@weir.task
def total(values: List[int]) -> int:
    return sum(values)


@weir.flow
def fanout(n: int = 10, offset: int = 0) -> int:
    squares = square.map(range(n), offset=weir.unmapped(offset))
    return total(squares)


@weir.task
def record(tag: str) -> str:
    time.sleep(0.05)
    return f"{tag}@{time.monotonic()}"


@weir.flow
def ordered() -> List[str]:
    first = record.submit("first")
    second = record.submit("second", wait_for=[first])
    return [first.result(), second.result()]


@weir.task
def explode(x: int) -> int:
    raise ValueError(f"bad item {x}")


@weir.flow
def forgotten() -> str:
    explode.submit(1)  # never waited on: the flow must fail
    return "returned"


@weir.flow
def handled() -> str:
    f = explode.submit(2)
    try:
        f.result()
    except ValueError as e:
        return f"handled: {e}"
    return "no error"


@weir.flow
def child(x: int = 1) -> int:
    return add_one(x)


@weir.flow
def parent(x: int = 1) -> int:
    return child(x) + child(x + 10)


@weir.flow
def broken_child() -> int:
    return load_orders()


@weir.flow
def parent_of_broken() -> int:
    return broken_child()


@weir.task
async def async_double(x: int) -> int:
    await asyncio.sleep(0.01)
    return 2 * x


@weir.flow
async def async_flow(n: int = 5) -> List[int]:
    first = await async_double(1)
    futures = async_double.map(range(n))
    rest = await futures
    sync_one = await add_one.submit(first)
    return [first, sync_one] + rest


@weir.task(timeout=0.2)
async def async_sleepy() -> None:
    await asyncio.sleep(5)


@weir.flow
async def async_timeout() -> None:
    await async_sleepy()


@weir.task(log_prints=True)
def chatty(name: str) -> str:
    print(f"hello {name}")
    weir.get_run_logger().warning("careful, %s", name)
    return name


@weir.flow
def prints(name: str = "world") -> str:
    return chatty(name)


@weir.task
def nap(seconds: float) -> float:
    for i in range(int(seconds * 10)):
        time.sleep(0.1)
        if i % 10 == 0:
            weir.get_run_logger().info("napping %d/%d", i // 10 + 1, int(seconds))
    return seconds


@weir.flow
def slow(seconds: float = 30) -> float:
    return nap(seconds)


@weir.task
def use_token() -> int:
    token = os.environ.get("CANARY", "")
    weir.get_run_logger().info("using token %s", token)
    raise PermissionError(f"token {token} was refused")


@weir.flow
def leaky(note: Optional[str] = None) -> int:
    return use_token()


@weir.task
def tick(i: int) -> int:
    time.sleep(0.01)
    return i


@weir.flow
def ticking(n: int = 300) -> int:
    """`n` short tasks: long enough to restart the server in the middle."""
    return sum(tick(i) for i in range(n))


@weir.flow
def orchestrate(deployment: str = "pytest/py-etl", n: int = 3) -> dict:
    """Flows of flows: one run of another deployment, waited for, and one started only."""
    total = weir.run_deployment(deployment, {"n": n})
    started = weir.run_deployment(deployment, {"n": 1}, wait=False)
    return {"total": total, "started": started["id"]}


@weir.task
def step_clock_back(hours: float) -> float:
    """Steps this process's wall clock (as the SDK reads it) back `hours` while the task runs,
    as an NTP correction or a VM's restore would."""
    import weir._task as sdk_task

    real = time.time
    sdk_task._time = lambda: real() - hours * 3600
    return hours


@weir.flow
def clock_back(hours: float = 1.0) -> float:
    return step_clock_back(hours)
