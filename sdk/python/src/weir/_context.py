"""The run context: which flow run and task run the current code belongs to (context
variables, so threads started by `.submit()` and asyncio tasks carry them), the run logger,
and `log_prints`."""

from __future__ import annotations

import builtins
import contextvars
import logging
import sys
import threading
import time
from typing import Any, Dict, List, Optional

from ._results import ResultStore
from ._tracker import LOG

#: The current flow run (`FlowCtx`) or None.
FLOW: contextvars.ContextVar = contextvars.ContextVar("weir_flow", default=None)
#: The current task run's id counter, or None.
TASK: contextvars.ContextVar = contextvars.ContextVar("weir_task", default=None)
#: Whether `print` inside the current run goes to the run's log.
PRINTS: contextvars.ContextVar = contextvars.ContextVar("weir_prints", default=False)


class FlowCtx:
    """One flow run in progress."""

    __slots__ = ("id", "attempt", "resume", "flow", "tracker", "put", "results", "counters",
                 "futures", "lock", "parent")

    def __init__(self, id: str, attempt: int, resume: bool, flow: str, tracker,
                 results: ResultStore, parent: Optional["FlowCtx"]):
        self.id = id
        self.attempt = attempt
        self.resume = resume
        self.flow = flow
        self.tracker = tracker
        self.put = tracker.put
        self.results = results
        self.counters: Dict[str, int] = {}
        self.futures: List[Any] = []
        self.lock = threading.Lock()
        self.parent = parent

    def next_call_index(self, task: str) -> int:
        """The call index of the next call of `task` in this flow run (0, 1, …)."""
        with self.lock:
            n = self.counters.get(task, 0)
            self.counters[task] = n + 1
            return n


_RESULTS: Optional[ResultStore] = None


def results() -> ResultStore:
    global _RESULTS
    if _RESULTS is None:
        _RESULTS = ResultStore()
    return _RESULTS


def reset_results() -> None:
    global _RESULTS
    _RESULTS = None


class _RunHandler(logging.Handler):
    """Sends records of the run logger to the current flow run (and task run)."""

    def emit(self, record: logging.LogRecord) -> None:
        ctx = FLOW.get()
        if ctx is None:
            return
        try:
            msg = self.format(record)
        except Exception:  # a bad format string must not fail the task
            msg = str(record.msg)
        ctx.put((LOG, ctx.id, TASK.get(), record.created, record.levelno, msg, ctx.attempt))


_logger = logging.getLogger("weir.run")
_logger.setLevel(logging.INFO)
_logger.propagate = False
_handler = _RunHandler()
_handler.setFormatter(logging.Formatter("%(message)s"))
_logger.addHandler(_handler)
_fallback = logging.StreamHandler(sys.stderr)
_fallback.addFilter(lambda r: FLOW.get() is None)
_fallback.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
_logger.addHandler(_fallback)


def get_run_logger() -> logging.Logger:
    """The logger whose lines go to the current flow run's log (attributed to the current task
    run inside a task). Outside any flow run its lines go to stderr."""
    return _logger


_original_print = builtins.print
_patched = False


def _print(*args, sep=" ", end="\n", file=None, flush=False):
    if PRINTS.get() and file in (None, sys.stdout):
        ctx = FLOW.get()
        if ctx is not None:
            text = sep.join(str(a) for a in args) + ("" if end == "\n" else end)
            ctx.put((LOG, ctx.id, TASK.get(), time.time(), logging.INFO, text, ctx.attempt))
            return
    _original_print(*args, sep=sep, end=end, file=file, flush=flush)


def enable_log_prints() -> None:
    """Installs the `print` that `log_prints=True` runs use (once per process)."""
    global _patched
    if not _patched:
        builtins.print = _print
        _patched = True


def tick_at() -> "Optional[datetime.datetime]":
    """The schedule tick of the run this process was launched for (`WEIR_TICK_AT`), as an
    aware UTC datetime: the time its schedule named, for runs of the scheduler, catch-up and
    `weir backfill`; None for a run started by hand or run locally. Pick the data a run works
    on by its tick, not by the clock: a backfilled run starts long after its tick. A malformed
    value raises ValueError naming the variable."""
    import datetime
    import os

    raw = os.environ.get("WEIR_TICK_AT", "").strip()
    if not raw:
        return None
    text = raw[:-1] + "+00:00" if raw.endswith("Z") else raw
    try:
        t = datetime.datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(
            f"invalid WEIR_TICK_AT={raw!r}: an RFC 3339 time, e.g. 2026-12-01T03:00:00Z"
        ) from None
    if t.tzinfo is None:
        raise ValueError(f"invalid WEIR_TICK_AT={raw!r}: the time needs an offset (Z)")
    return t.astimezone(datetime.timezone.utc)
