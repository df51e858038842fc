"""Flows: their definition (name, parameter schema, the tasks and subflows they call) and the
flow-run lifecycle every call goes through — start through the tracker, run the body with the
flow run in context, wait for submitted tasks, capture the outcome, flush, finish.

A flow called inside another flow is a subflow: a child flow run with the parent's id. Its
failure reaches the parent as `SubflowFailed`.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
from typing import Any, Callable, Dict, List, Optional, Sequence

from . import _context, _schema, _tracker, _util
from ._context import FLOW, PRINTS, TASK, FlowCtx
from ._task import (
    Task,
    TaskTimeout,
    _call_with_timeout,
    flow_futures_settle,
    flow_futures_settle_async,
)

#: Every flow defined in this process, in definition order (what `describe` lists).
REGISTRY: List["Flow"] = []


class SubflowFailed(Exception):
    """A subflow ended Failed; the message names it and carries its error."""

    _weir_plain = True


class FlowFailed(Exception):
    """A flow run failed for a reason of its own (not an exception of its body)."""

    _weir_plain = True


class Terminated(BaseException):
    """The process got SIGTERM or SIGINT: the flow runs in progress end Cancelled."""

    def __init__(self, signame: str, code: int):
        super().__init__(f"cancelled by {signame}")
        self.signame = signame
        self.code = code


class Flow:
    """A function made a flow by `@weir.flow`. Calling it runs one flow run (a subflow inside
    another flow) and returns its value; with `async def`, calling returns an awaitable."""

    def __init__(self, fn: Callable, name: Optional[str] = None,
                 description: Optional[str] = None, tags: Sequence[str] = (),
                 log_prints: bool = False, timeout: Optional[float] = None):
        if not callable(fn):
            raise TypeError(f"@weir.flow needs a function, got {fn!r}")
        self.fn = fn
        self.name = name or fn.__name__
        doc, _ = _schema.docstring_parts(fn)
        self.description = description if description is not None else doc
        self.tags = tuple(tags)
        self.log_prints = log_prints
        self.timeout = None if timeout is None else _util.seconds(timeout, "timeout")
        self.is_async = inspect.iscoroutinefunction(fn)
        self._schema: Optional[Dict[str, Any]] = None
        if log_prints:
            _context.enable_log_prints()
        functools.update_wrapper(self, fn)
        REGISTRY.append(self)

    def __repr__(self) -> str:
        return f"<weir.flow {self.name}>"

    # ---- description -------------------------------------------------------------------
    @property
    def schema(self) -> Dict[str, Any]:
        if self._schema is None:
            self._schema = _schema.flow_schema(self.name, self.fn)
        return self._schema

    def _called(self) -> List[Any]:
        """Tasks and flows whose names the body uses (globals, closures, nested code)."""
        fn = inspect.unwrap(self.fn)
        code = getattr(fn, "__code__", None)
        if code is None:
            return []
        names = set()
        stack = [code]
        while stack:
            c = stack.pop()
            names.update(c.co_names)
            names.update(c.co_freevars)
            stack.extend(k for k in c.co_consts if inspect.iscode(k))
        scope = dict(getattr(fn, "__globals__", {}))
        if fn.__closure__:
            for var, cell in zip(code.co_freevars, fn.__closure__):
                try:
                    scope[var] = cell.cell_contents
                except ValueError:
                    pass
        found = []
        for n in sorted(names):
            obj = scope.get(n)
            if isinstance(obj, (Task, Flow)) and obj is not self:
                found.append(obj)
            elif inspect.ismodule(obj):
                for attr in names:
                    sub = getattr(obj, attr, None)
                    if isinstance(sub, (Task, Flow)) and sub is not self:
                        found.append(sub)
        return found

    def describe(self) -> Dict[str, Any]:
        called = self._called()
        tasks = {t.name: t for t in called if isinstance(t, Task)}
        subflows = sorted({f.name for f in called if isinstance(f, Flow)})
        return {
            "name": self.name,
            "description": self.description,
            "parameters": self.schema,
            "tasks": [tasks[n].describe() for n in sorted(tasks)],
            "subflows": subflows,
        }

    def bind_json(self, params: Dict[str, Any]) -> Dict[str, Any]:
        """Typed keyword arguments from JSON parameters; `ParamError` naming the parameter."""
        return _schema.bind(self.name, self.fn, self.schema, params)

    # ---- running -----------------------------------------------------------------------
    def _parameters(self, args, kwargs) -> Dict[str, Any]:
        try:
            bound = inspect.signature(self.fn).bind_partial(*args, **kwargs)
        except TypeError as e:
            raise TypeError(f"flow {self.name}: {e}") from None
        return {k: _util.to_json_or_none(v) for k, v in bound.arguments.items()}

    def _start(self, args, kwargs):
        parent: Optional[FlowCtx] = FLOW.get()
        tracker = parent.tracker if parent is not None else _tracker.from_env()
        params = self._parameters(args, kwargs)
        try:
            started = tracker.start_flow_run(self.name, params,
                                             parent.id if parent else None, TASK.get())
        except Exception as e:
            raise FlowFailed(f"flow {self.name!r} could not start: {_util.describe_error(e)}") \
                from e
        ctx = FlowCtx(started.flow_run_id, started.attempt, started.resume, self.name, tracker,
                      _context.results(), parent)
        return ctx, tracker, parent

    def _finish(self, ctx, tracker, parent, state, message, value, error):
        result = _util.to_json_or_none(value) if state == "Completed" else None
        try:
            tracker.finish_flow_run(ctx.id, ctx.attempt, state, message, result)
        except Exception as e:
            if error is None:
                raise FlowFailed(f"could not report the end of flow run {ctx.id}: "
                                 f"{_util.describe_error(e)}") from e
        if parent is not None and state == "Failed":
            raise SubflowFailed(f"subflow {self.name!r} failed: {message}") from error
        if error is not None:
            raise error

    def __call__(self, *args, **kwargs):
        if self.is_async:
            return self._run_async(args, kwargs)
        ctx, tracker, parent = self._start(args, kwargs)
        ftok, ttok = FLOW.set(ctx), TASK.set(None)
        ptok = PRINTS.set(True) if self.log_prints else None
        value, error = None, None
        try:
            if self.timeout is None:
                value = self.fn(*args, **kwargs)
            else:
                value = _call_with_timeout(self.fn, args, kwargs, self.timeout)
            unhandled = flow_futures_settle(ctx)
            state, message = ("Failed", unhandled) if unhandled else ("Completed", None)
            if unhandled:
                error = FlowFailed(unhandled)
        except Exception as e:
            flow_futures_settle(ctx)
            state, message, error = "Failed", _failure(e), e
        except BaseException as e:
            state, message, error = "Cancelled", _cancel_message(e), e
        finally:
            FLOW.reset(ftok)
            TASK.reset(ttok)
            if ptok is not None:
                PRINTS.reset(ptok)
        self._finish(ctx, tracker, parent, state, message, value, error)
        return value

    async def _run_async(self, args, kwargs):
        ctx, tracker, parent = self._start(args, kwargs)
        ftok, ttok = FLOW.set(ctx), TASK.set(None)
        ptok = PRINTS.set(True) if self.log_prints else None
        value, error = None, None
        try:
            if self.timeout is None:
                value = await self.fn(*args, **kwargs)
            else:
                try:
                    value = await asyncio.wait_for(self.fn(*args, **kwargs), self.timeout)
                except asyncio.TimeoutError:
                    raise TaskTimeout(self.timeout) from None
            unhandled = await flow_futures_settle_async(ctx)
            state, message = ("Failed", unhandled) if unhandled else ("Completed", None)
            if unhandled:
                error = FlowFailed(unhandled)
        except Exception as e:
            await flow_futures_settle_async(ctx)
            state, message, error = "Failed", _failure(e), e
        except BaseException as e:
            state, message, error = "Cancelled", _cancel_message(e), e
        finally:
            FLOW.reset(ftok)
            TASK.reset(ttok)
            if ptok is not None:
                PRINTS.reset(ptok)
        self._finish(ctx, tracker, parent, state, message, value, error)
        return value


def _failure(e: BaseException) -> str:
    task = getattr(e, "_weir_task", None)
    text = _util.describe_error(e)
    return f"task {task!r} failed: {text}" if task else text


def _cancel_message(e: BaseException) -> str:
    if isinstance(e, Terminated):
        return str(e)
    if isinstance(e, KeyboardInterrupt):
        return "cancelled by SIGINT"
    return f"cancelled ({type(e).__name__})"


def flow(fn: Optional[Callable] = None, **options):
    """Makes a function (`def` or `async def`) a flow, bare (`@weir.flow`) or with options
    (`@weir.flow(name="etl", description=..., tags=[...], log_prints=True)`). Its typed
    arguments are the flow's parameters (see `weir._schema`)."""
    if fn is not None:
        return Flow(fn, **options)
    return lambda f: Flow(f, **options)
