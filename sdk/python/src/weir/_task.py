"""Tasks: their options, the run loop (resume from persisted results, cache, retries with
backoff and jitter, timeout, persistence) and the concurrency helpers (`submit`, `map`,
`unmapped`, `wait_for`).

Hot path of a task called inside a flow run, with no options: take the next number of a
counter, put two tuples on the tracker's queue (Running, Completed), set and reset the
current-task context variable around the call. Ids, times and JSON are made in the background.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import functools
import hashlib
import inspect
import json
import os
import random
import signal
import threading
import time
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Union

from . import _context, _util
from ._context import FLOW, PRINTS, TASK
from ._results import ResultStore, cache_encode, cache_entry_key, cache_lookup
from ._tracker import REPORT

RUNNING, COMPLETED, FAILED = "Running", "Completed", "Failed"
AWAITING_RETRY, CANCELLED = "AwaitingRetry", "Cancelled"
_time = time.time


class TaskTimeout(Exception):
    """A task attempt ran longer than its `timeout`."""

    _weir_plain = True

    def __init__(self, seconds: float):
        super().__init__(f"timed out after {_util.fmt_duration(seconds)}")
        self.seconds = seconds


class _Interrupt(Exception):
    """Raised inside a thread whose attempt ran out of time (then reported as TaskTimeout)."""


class Call:
    """Field positions of a call tuple: what every report of one task run shares. A plain
    tuple of strings and numbers, so the reports kept in memory cost the garbage collector
    nothing."""

    SEQ, FLOW_RUN_ID, TASK, MAP_INDEX, TAGS, CACHE_KEY, FINGERPRINT = range(7)


class unmapped:
    """Marks an argument of `.map()` that every call gets whole instead of one item of."""

    __slots__ = ("value",)

    def __init__(self, value: Any):
        self.value = value


class Future:
    """A submitted task call. `result()` waits for its value (raising the task's error);
    `await future` does the same in async code. A flow whose submitted task failed and whose
    future was never waited on fails too."""

    __slots__ = ("_f", "task", "observed")

    def __init__(self, f, task: str):
        self._f = f
        self.task = task
        self.observed = False

    @property
    def _is_async(self) -> bool:
        return isinstance(self._f, asyncio.Future)

    def result(self, timeout: Optional[float] = None) -> Any:
        self.observed = True
        if self._is_async:
            if not self._f.done():
                raise RuntimeError(
                    f"the future of async task {self.task!r} is not done: `await` it instead"
                )
            return self._f.result()
        return self._f.result(timeout)

    def exception(self, timeout: Optional[float] = None) -> Optional[BaseException]:
        self.observed = True
        if self._is_async:
            return self._f.exception() if self._f.done() else None
        return self._f.exception(timeout)

    def wait(self, timeout: Optional[float] = None) -> None:
        """Waits until the task run ended (without raising its error)."""
        if not self._is_async:
            concurrent.futures.wait([self._f], timeout)

    def done(self) -> bool:
        return self._f.done()

    def __await__(self):
        self.observed = True
        if self._is_async:
            return self._f.__await__()
        return asyncio.wrap_future(self._f).__await__()

    def __repr__(self) -> str:
        return f"<weir.Future of {self.task!r}{' (done)' if self.done() else ''}>"


class FutureList(list):
    """The futures `.map()` returns, in item order. `result()` gives every value (raising the
    first failure in item order once all have ended); `await` does the same in async code."""

    def result(self, timeout: Optional[float] = None) -> List[Any]:
        self.wait(timeout)
        return [f.result() for f in self]

    def wait(self, timeout: Optional[float] = None) -> None:
        for f in self:
            f.wait(timeout)

    def __await__(self):
        async def gather():
            out, first = [], None
            for f in self:
                try:
                    out.append(await f)
                except Exception as e:  # keep going: every item ends in its own state
                    first = first or e
            if first is not None:
                raise first
            return out

        return gather().__await__()


def _resolve(v):
    t = type(v)
    if t is Future:
        return v.result()
    if t is FutureList:
        return v.result()
    if (t is list or t is tuple) and v and type(v[0]) is Future:
        return t(x.result() if type(x) is Future else x for x in v)
    return v


async def _aresolve(v):
    t = type(v)
    if t is Future or t is FutureList:
        return await v
    if (t is list or t is tuple) and v and type(v[0]) is Future:
        return t([await x if type(x) is Future else x for x in v])
    return v


def _has_futures(args, kwargs) -> bool:
    for a in args:
        t = type(a)
        if t is Future or t is FutureList or ((t is list or t is tuple) and a
                                               and type(a[0]) is Future):
            return True
    if kwargs:
        return _has_futures(tuple(kwargs.values()), None)
    return False


def _wait_for(wait_for) -> None:
    for f in wait_for or ():
        if isinstance(f, (Future, FutureList)):
            f.result()


async def _await_for(wait_for) -> None:
    for f in wait_for or ():
        if isinstance(f, (Future, FutureList)):
            await f


_POOL: Optional[concurrent.futures.ThreadPoolExecutor] = None
_POOL_LOCK = threading.Lock()


def pool() -> concurrent.futures.ThreadPoolExecutor:
    """The threads submitted sync tasks run on (`WEIR_TASK_WORKERS`, default 32)."""
    global _POOL
    with _POOL_LOCK:
        if _POOL is None:
            try:
                n = int(os.environ.get("WEIR_TASK_WORKERS", "32"))
            except ValueError:
                n = 32
            _POOL = concurrent.futures.ThreadPoolExecutor(max(1, n), thread_name_prefix="weir-task")
        return _POOL


def _discard(item) -> None:
    pass


class _Alarm:
    """Timeouts of sync attempts: SIGALRM on the main thread (interrupts sleeps and pure-Python
    code), an asynchronous exception elsewhere (interrupts pure-Python code between bytecodes,
    not a blocking C call — CPython offers nothing better for threads)."""

    active = False


def _call_with_timeout(fn, args, kwargs, seconds: float):
    main = threading.current_thread() is threading.main_thread()
    if main and not _Alarm.active and hasattr(signal, "setitimer"):
        def on_alarm(signum, frame):
            raise TaskTimeout(seconds)

        old = signal.signal(signal.SIGALRM, on_alarm)
        _Alarm.active = True
        signal.setitimer(signal.ITIMER_REAL, seconds)
        try:
            return fn(*args, **kwargs)
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, old)
            _Alarm.active = False
    import ctypes

    ident = threading.get_ident()
    lock = threading.Lock()
    state = {"done": False, "fired": False}

    def fire():
        with lock:
            if not state["done"]:
                state["fired"] = True
                ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(ident),
                                                           ctypes.py_object(_Interrupt))

    timer = threading.Timer(seconds, fire)
    timer.daemon = True
    timer.start()
    try:
        try:
            v = fn(*args, **kwargs)
        finally:
            with lock:
                state["done"] = True
            timer.cancel()
    except _Interrupt:
        raise TaskTimeout(seconds) from None
    return v


class Task:
    """A function made a task by `@weir.task`. Calling it runs it (inside a flow run, as a
    tracked task run) and returns its value; `.submit()` runs it concurrently and returns a
    `Future`; `.map()` fans out over items."""

    def __init__(self, fn: Callable, name: Optional[str] = None, description: Optional[str] = None,
                 tags: Sequence[str] = (), retries: int = 0,
                 retry_delay: Union[float, Sequence[float]] = 0, backoff: float = 1.0,
                 max_delay: float = 3600.0, jitter: float = 0.0,
                 retry_if: Optional[Callable[[BaseException], bool]] = None,
                 timeout: Optional[float] = None, cache: bool = False,
                 cache_key: Optional[Callable[..., str]] = None,
                 cache_expiration: Optional[float] = None, persist_result: bool = False,
                 log_prints: bool = False, fingerprint: bool = False):
        if not callable(fn):
            raise TypeError(f"@weir.task needs a function, got {fn!r}")
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
            raise TypeError(f"task {fn.__name__}: retries must be a whole number >= 0, got {retries!r}")
        self.fn = fn
        self.name = name or fn.__name__
        self.description = description if description is not None else (inspect.getdoc(fn) or "")
        self.tags = tuple(tags)
        self.retries = retries
        if isinstance(retry_delay, (list, tuple)):
            self.retry_delays = [_util.seconds(d, "retry_delay") for d in retry_delay]
            if not self.retry_delays:
                raise TypeError(f"task {self.name}: retry_delay must not be an empty list")
        else:
            self.retry_delays = [_util.seconds(retry_delay, "retry_delay")]
        self.backoff = float(backoff)
        self.max_delay = _util.seconds(max_delay, "max_delay")
        self.jitter = min(max(float(jitter), 0.0), 1.0)
        self.retry_if = retry_if
        self.timeout = None if timeout is None else _util.seconds(timeout, "timeout")
        self.cache = bool(cache) or cache_key is not None
        self.cache_key_fn = cache_key
        self.cache_expiration = (None if cache_expiration is None
                                 else _util.seconds(cache_expiration, "cache_expiration"))
        self.persist_result = persist_result
        self.log_prints = log_prints
        self.fingerprint = fingerprint
        self.is_async = inspect.iscoroutinefunction(fn)
        self._prep = self.cache or persist_result or fingerprint
        if log_prints:
            _context.enable_log_prints()
        functools.update_wrapper(self, fn)

    # ---- description -------------------------------------------------------------------
    def describe(self) -> Dict[str, Any]:
        ms = lambda s: None if s is None else int(round(s * 1000))  # noqa: E731
        return {
            "name": self.name,
            "description": self.description,
            "retries": self.retries,
            "retry_delay_ms": ms(self.retry_delays[0]),
            "backoff": self.backoff,
            "jitter": self.jitter,
            "max_delay_ms": ms(self.max_delay),
            "retry_if": self.retry_if is not None,
            "timeout_ms": ms(self.timeout),
            "cache": self.cache,
            "cache_expiration_ms": ms(self.cache_expiration),
            "persist_result": self.persist_result,
            "tags": list(self.tags),
        }

    def __repr__(self) -> str:
        return f"<weir.task {self.name}>"

    def delay_for(self, retry: int, unit_random: float) -> float:
        """The wait before retry number `retry` (1-based), as the Rust SDK computes it."""
        if len(self.retry_delays) > 1:
            base = self.retry_delays[min(retry - 1, len(self.retry_delays) - 1)]
        else:
            base = self.retry_delays[0] * max(self.backoff, 1.0) ** min(retry - 1, 64)
        capped = min(base, self.max_delay)
        return max(0.0, capped * (1.0 + self.jitter * (unit_random * 2.0 - 1.0)))

    def _should_retry(self, attempts: int, e: BaseException) -> bool:
        if attempts > self.retries:
            return False
        if self.retry_if is None:
            return True
        try:
            return bool(self.retry_if(e))
        except Exception:
            return False

    # ---- calls -------------------------------------------------------------------------
    def __call__(self, *args, **kwargs):
        wait_for = kwargs.pop("wait_for", None) if kwargs else None
        if self.is_async:
            return self._run_async(args, kwargs, None, wait_for)
        ctx = FLOW.get()
        if wait_for:
            _wait_for(wait_for)
        if _has_futures(args, kwargs):
            args = tuple(_resolve(a) for a in args)
            kwargs = {k: _resolve(v) for k, v in kwargs.items()}
        return self._run(ctx, args, kwargs, None)

    def submit(self, *args, **kwargs) -> Future:
        """Runs the call concurrently (sync tasks on a thread pool, async tasks as asyncio
        tasks on the running loop) and returns its `Future`."""
        return self._submit(args, kwargs, None, kwargs.pop("wait_for", None) if kwargs else None)

    def _submit(self, args, kwargs, map_index, wait_for) -> Future:
        ctx = FLOW.get()
        if self.is_async:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                raise RuntimeError(
                    f"submit() of async task {self.name!r} needs a running event loop: call it "
                    "inside an async flow (or `await` the task)"
                ) from None
            fut = Future(loop.create_task(self._run_async(args, kwargs, map_index, wait_for)),
                         self.name)
        else:
            run = contextvars.copy_context().run
            fut = Future(pool().submit(run, self._submitted, args, kwargs, map_index, wait_for),
                         self.name)
        if ctx is not None:
            ctx.futures.append(fut)
        return fut

    def _submitted(self, args, kwargs, map_index, wait_for):
        if wait_for:
            _wait_for(wait_for)
        if _has_futures(args, kwargs):
            args = tuple(_resolve(a) for a in args)
            kwargs = {k: _resolve(v) for k, v in kwargs.items()}
        return self._run(FLOW.get(), args, kwargs, map_index)

    def map(self, *args, **kwargs) -> FutureList:
        """One concurrent call per item: positional and keyword arguments are iterables of
        equal length, except those wrapped in `unmapped(...)`, which every call gets whole.
        Returns the futures in item order."""
        wait_for = kwargs.pop("wait_for", None)
        columns: List[Any] = []
        n = None
        for a in list(args) + list(kwargs.values()):
            if isinstance(a, unmapped):
                columns.append(None)
                continue
            items = list(a)
            if n is None:
                n = len(items)
            elif len(items) != n:
                raise ValueError(
                    f"{self.name}.map(): mapped arguments have different lengths ({n} and "
                    f"{len(items)}); wrap an argument in weir.unmapped(...) to pass it whole"
                )
            columns.append(items)
        if n is None:
            raise ValueError(f"{self.name}.map() needs at least one mapped (iterable) argument")
        keys = list(kwargs)
        npos = len(args)
        allargs = list(args) + list(kwargs.values())
        out = FutureList()
        for i in range(n):
            vals = [allargs[j].value if columns[j] is None else columns[j][i]
                    for j in range(len(allargs))]
            out.append(self._submit(tuple(vals[:npos]), dict(zip(keys, vals[npos:])), i, wait_for))
        return out

    # ---- the run loop ------------------------------------------------------------------
    def _begin(self, ctx, args, kwargs, map_index):
        """The call's place in the flow run: its call tuple (see `Call`), and for persisted
        results its key."""
        result_key = fingerprint = cache_key = None
        if self.fingerprint or (self.cache and self.cache_key_fn is None):
            fingerprint = _fingerprint(args, kwargs)
            if self.cache and self.cache_key_fn is None:
                cache_key = fingerprint
        if self.cache_key_fn is not None:
            cache_key = str(self.cache_key_fn(*args, **kwargs))
        if self.persist_result:
            result_key = ResultStore.result_key(ctx.id, self.name, ctx.next_call_index(self.name))
        call = (_util.next_seq(), ctx.id, self.name, map_index, self.tags, cache_key, fingerprint)
        return call, result_key

    def _reuse(self, ctx, call, result_key, put):
        """A persisted result of an earlier attempt, or a cache hit: (True, value)."""
        store = ctx.results
        if ctx.resume and result_key is not None:
            try:
                raw = store.get(result_key)
            except Exception:
                raw = None
            if raw is not None:
                try:
                    v = self._typed(json.loads(raw))
                except ValueError:
                    v = None
                else:
                    msg = (f"result reused from an earlier attempt (flow run attempt "
                           f"{ctx.attempt} resumed)")
                    put((REPORT, call, COMPLETED, _time(), 1, msg, store.location(result_key)))
                    return True, v
        if call[5] is not None:
            hit = cache_lookup(store, self.name, call[5], self.cache_expiration)
            if hit is not None:
                put((REPORT, call, COMPLETED, _time(), 1, "cache hit", hit[1]))
                return True, self._typed(hit[0])
        return False, None

    def _typed(self, value):
        hint = _return_hint(self.fn)
        if hint is None:
            return value
        from ._schema import _Bad, convert

        try:
            return convert(hint, value)
        except _Bad:
            return value

    def _keep(self, ctx, call, result_key, value, put, n):
        """Persists the result and writes the cache entry; returns the result location."""
        location = None
        store = ctx.results
        if result_key is not None:
            try:
                store.put(result_key, json.dumps(_util.to_json(value)).encode())
            except Exception as e:
                raise _PersistFailed(f"could not persist the result: {_util.describe_error(e)}")
            location = store.location(result_key)
        if call[5] is not None:
            try:
                store.put(cache_entry_key(self.name, call[5]),
                          cache_encode(call[5], _util.to_json(value)))
            except Exception as e:
                from ._tracker import LOG

                put((LOG, ctx.id, call[0], _time(), 30,
                     f"could not write the cache entry: {_util.describe_error(e)}",
                     ctx.attempt))
        return location

    def _run(self, ctx, args, kwargs, map_index):
        """Runs a sync call (tracked when `ctx` is a flow run)."""
        if ctx is None:
            return self._run_untracked(args, kwargs)
        put = ctx.put
        fn = self.fn
        result_key = None
        if self._prep:
            call, result_key = self._begin(ctx, args, kwargs, map_index)
            hit, v = self._reuse(ctx, call, result_key, put)
            if hit:
                return v
        else:
            call = (_util.next_seq(), ctx.id, self.name, map_index, self.tags, None, None)
        n = 1
        while True:
            put((REPORT, call, RUNNING, _time(), n, None, None))
            tok = TASK.set(call[0])
            ptok = PRINTS.set(True) if self.log_prints else None
            try:
                if self.timeout is None:
                    v = fn(*args, **kwargs)
                else:
                    v = _call_with_timeout(fn, args, kwargs, self.timeout)
            except Exception as e:
                delay = self._after_error(call, n, e, put)
                if delay is None:
                    raise
                if delay:
                    time.sleep(delay)
                n += 1
                continue
            except BaseException:
                put((REPORT, call, CANCELLED, _time(), n, "cancelled", None))
                raise
            finally:
                TASK.reset(tok)
                if ptok is not None:
                    PRINTS.reset(ptok)
            location = None
            if self._prep:
                try:
                    location = self._keep(ctx, call, result_key, v, put, n)
                except _PersistFailed as e:
                    put((REPORT, call, FAILED, _time(), n, str(e), None))
                    e._weir_task = self.name
                    raise
            put((REPORT, call, COMPLETED, _time(), n, None, location))
            return v

    def _after_error(self, call, n, e, put) -> Optional[float]:
        """Reports a failed attempt: the delay before the retry, or None when it is final."""
        if self._should_retry(n, e):
            delay = self.delay_for(n, random.random())
            msg = f"{_util.describe_error(e)}; retry in {_util.fmt_duration(delay)}"
            put((REPORT, call, AWAITING_RETRY, _time(), n, msg, None))
            return delay
        put((REPORT, call, FAILED, _time(), n, _util.describe_error(e), None))
        try:
            e._weir_task = self.name  # type: ignore[attr-defined]
        except (AttributeError, TypeError):
            pass
        return None

    def _run_untracked(self, args, kwargs):
        """A call outside any flow run: retries and timeout apply; nothing is reported,
        cached or persisted."""
        n = 1
        while True:
            try:
                if self.timeout is None:
                    return self.fn(*args, **kwargs)
                return _call_with_timeout(self.fn, args, kwargs, self.timeout)
            except Exception as e:
                if not self._should_retry(n, e):
                    raise
                time.sleep(self.delay_for(n, random.random()))
                n += 1

    async def _run_async(self, args, kwargs, map_index, wait_for):
        """Runs an async call (tracked inside a flow run)."""
        if wait_for:
            await _await_for(wait_for)
        if _has_futures(args, kwargs):
            args = tuple([await _aresolve(a) for a in args])
            kwargs = {k: await _aresolve(v) for k, v in kwargs.items()}
        ctx = FLOW.get()
        put = ctx.put if ctx is not None else _discard
        result_key = None
        if ctx is not None and self._prep:
            call, result_key = self._begin(ctx, args, kwargs, map_index)
            hit, v = self._reuse(ctx, call, result_key, put)
            if hit:
                return v
        else:
            call = (_util.next_seq(), ctx.id if ctx else "", self.name, map_index, self.tags, None,
                    None)
        n = 1
        while True:
            put((REPORT, call, RUNNING, _time(), n, None, None))
            tok = TASK.set(call[0])
            ptok = PRINTS.set(True) if self.log_prints else None
            try:
                coro = self.fn(*args, **kwargs)
                if self.timeout is None:
                    v = await coro
                else:
                    try:
                        v = await asyncio.wait_for(coro, self.timeout)
                    except asyncio.TimeoutError:
                        raise TaskTimeout(self.timeout) from None
            except Exception as e:
                delay = self._after_error(call, n, e, put)
                if delay is None:
                    raise
                if delay:
                    await asyncio.sleep(delay)
                n += 1
                continue
            except BaseException:  # CancelledError, KeyboardInterrupt, termination
                put((REPORT, call, CANCELLED, _time(), n, "cancelled", None))
                raise
            finally:
                TASK.reset(tok)
                if ptok is not None:
                    PRINTS.reset(ptok)
            location = None
            if ctx is not None and self._prep:
                try:
                    location = self._keep(ctx, call, result_key, v, put, n)
                except _PersistFailed as e:
                    put((REPORT, call, FAILED, _time(), n, str(e), None))
                    raise
            put((REPORT, call, COMPLETED, _time(), n, None, location))
            return v


class _PersistFailed(Exception):
    _weir_plain = True


def _fingerprint(args, kwargs) -> Optional[str]:
    """SHA-256 (first 16 bytes, hex) of the inputs' JSON, or None when they are not JSON."""
    try:
        data = json.dumps([_util.to_json(list(args)), _util.to_json(kwargs)], sort_keys=True,
                          separators=(",", ":"))
    except (TypeError, ValueError):
        return None
    return hashlib.sha256(data.encode()).hexdigest()[:32]


@functools.lru_cache(maxsize=None)
def _return_hint(fn):
    from ._schema import _hints

    hint = _hints(fn).get("return")
    return None if hint in (None, type(None)) else hint


def task(fn: Optional[Callable] = None, **options):
    """Makes a function (`def` or `async def`) a task, bare (`@weir.task`) or with options
    (`@weir.task(retries=3, retry_delay=10, timeout=60)`). Options: `name`, `description`,
    `tags`, `retries`, `retry_delay` (seconds, or a list per retry), `backoff`, `max_delay`,
    `jitter`, `retry_if` (exception → bool), `timeout` (seconds), `cache` (key = inputs),
    `cache_key` (a function of the inputs returning a string), `cache_expiration`,
    `persist_result`, `log_prints`, `fingerprint`."""
    if fn is not None:
        return Task(fn, **options)
    return lambda f: Task(f, **options)


def flow_futures_settle(ctx) -> Optional[str]:
    """Waits for every future submitted in flow run `ctx`; the error of the first one that
    failed and was never waited on, if any."""
    failure = None
    for f in list(ctx.futures):
        if f._is_async:
            continue
        concurrent.futures.wait([f._f])
        if not f.observed and f._f.exception() is not None and failure is None:
            e = f._f.exception()
            failure = (f"task {f.task!r} failed and its future was never waited on: "
                       f"{_util.describe_error(e)}")
    return failure


async def flow_futures_settle_async(ctx) -> Optional[str]:
    failure = flow_futures_settle(ctx)
    for f in list(ctx.futures):
        if not f._is_async:
            continue
        try:
            await asyncio.wait([f._f])
        except ValueError:
            continue
        if not f.observed and not f._f.cancelled() and f._f.exception() is not None:
            if failure is None:
                failure = (f"task {f.task!r} failed and its future was never awaited: "
                           f"{_util.describe_error(f._f.exception())}")
    return failure
