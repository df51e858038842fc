"""`python -m weir PATH describe|run`: the flows-program contract a Rust flows binary has, so
`weir deploy` and agents treat Python flows the same way.

* `python -m weir PATH describe` — prints `{"flows": [{"name", "description", "parameters"
  (JSON Schema), "tasks": [...], "subflows": [...]}]}`;
* `python -m weir PATH run FLOW [--param KEY=VALUE]... [--params-json JSON]` — runs one flow
  run: state changes and logs on stderr (none with `WEIR_QUIET=1` or under an agent), the
  result as JSON on stdout.

`PATH` is a `.py` file, a folder of them (every `*.py` below it, except `test_*.py`,
`conftest.py`, `setup.py` and hidden or `__pycache__` folders) or an importable module name.

Exit codes: 0 Completed, 1 Failed, 2 bad input (unknown flow or parameter, ill-typed value, bad
arguments, a flow file that does not import), 130 on SIGINT and 143 on SIGTERM (the flow run
is reported Cancelled first).

Parameters: `WEIR_PARAMETERS` (a JSON object, as an agent passes them) is the base,
`--params-json` is merged over it, then each `--param` (VALUE parsed as JSON when it parses,
else taken as a string).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import importlib
import importlib.util
import json
import os
import signal
import sys
import traceback
from pathlib import Path
from typing import Any, Dict, List, Optional

from . import _tracker, _util
from ._flow import REGISTRY, Flow, Terminated
from ._schema import ParamError

USAGE = 2
_SKIP_FILES = {"conftest.py", "setup.py", "__main__.py"}


class BadInput(Exception):
    """Something wrong with what the user gave: exit 2."""


def _import_file(path: Path, root: Path) -> None:
    rel = path.relative_to(root).with_suffix("")
    name = ".".join(rel.parts)
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    try:
        mod = importlib.import_module(name)
        if Path(getattr(mod, "__file__", "") or "").resolve() == path.resolve():
            return
    except ImportError as e:
        if getattr(e, "name", None) not in (name, rel.parts[0]):
            raise
    # The name is taken by another module (or not importable as such): load by path.
    spec = importlib.util.spec_from_file_location(f"weir_flows_{abs(hash(path))}", path)
    if spec is None or spec.loader is None:
        raise BadInput(f"cannot load {path}")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)


def _files(folder: Path) -> List[Path]:
    out = []
    for p in sorted(folder.rglob("*.py")):
        rel = p.relative_to(folder)
        if any(part.startswith(".") or part == "__pycache__" for part in rel.parts[:-1]):
            continue
        if p.name in _SKIP_FILES or p.name.startswith("test_") or p.name.startswith("."):
            continue
        out.append(p)
    return out


def load(target: str) -> List[Flow]:
    """Imports the flows at `target` (file, folder or module) and returns them."""
    before = len(REGISTRY)
    p = Path(target)
    try:
        if p.is_file():
            _import_file(p.resolve(), p.resolve().parent)
        elif p.is_dir():
            root = p.resolve()
            for f in _files(root):
                _import_file(f, root)
        else:
            if target.endswith(".py") or os.sep in target:
                raise BadInput(f"{target}: no such file or folder")
            if os.getcwd() not in sys.path:
                sys.path.insert(0, os.getcwd())
            try:
                importlib.import_module(target)
            except ModuleNotFoundError as e:
                if e.name == target or target.startswith(f"{e.name}."):
                    raise BadInput(f"{target}: no such file, folder or module") from None
                raise
    except BadInput:
        raise
    except BaseException as e:  # an exception in the user's module, even SystemExit
        tb = "".join(traceback.format_exception(type(e), e, e.__traceback__))
        raise BadInput(f"cannot import the flows in {target}:\n{tb.rstrip()}") from None
    flows = REGISTRY[before:] if len(REGISTRY) > before else list(REGISTRY)
    seen: Dict[str, Flow] = {}
    for f in flows:
        other = seen.get(f.name)
        if other is not None and other.fn is not f.fn:
            raise BadInput(
                f"two flows are named {f.name!r} ({_where(other)} and {_where(f)}); give one "
                "another name with @weir.flow(name=...)"
            )
        seen[f.name] = f
    return list(seen.values())


def _where(f: Flow) -> str:
    code = getattr(f.fn, "__code__", None)
    return f"{code.co_filename}:{code.co_firstlineno}" if code else f.fn.__module__


def _merge(params: Dict[str, Any], source: str, text: str) -> None:
    try:
        v = json.loads(text)
    except ValueError as e:
        raise BadInput(f"{source} is not valid JSON: {e}") from None
    if not isinstance(v, dict):
        raise BadInput(f"{source}: parameters must be a JSON object, got {json.dumps(v)[:80]}")
    params.update(v)


def parse_assignment(arg: str):
    """`KEY=VALUE`: VALUE is JSON if it parses, else a string."""
    if "=" not in arg:
        raise BadInput(f"--param expects KEY=VALUE, got {arg!r}")
    k, v = arg.split("=", 1)
    k = k.strip()
    if not k:
        raise BadInput(f"--param expects KEY=VALUE, got {arg!r} (empty KEY)")
    try:
        value = json.loads(v)
    except ValueError:
        value = v
    return k, value


def collect_params(assignments: List[str], params_json: Optional[str]) -> Dict[str, Any]:
    params: Dict[str, Any] = {}
    env = os.environ.get("WEIR_PARAMETERS", "")
    if env.strip():
        _merge(params, "WEIR_PARAMETERS", env)
    if params_json is not None:
        _merge(params, "--params-json", params_json)
    for a in assignments:
        k, v = parse_assignment(a)
        params[k] = v
    return params


def describe(flows: List[Flow]) -> int:
    doc = {"flows": [f.describe() for f in flows]}
    _util.say(json.dumps(doc, indent=2, sort_keys=True), out=True)
    return 0


def _install_signals() -> None:
    fired = []

    def handler(signum, frame):
        if fired:
            return  # already stopping: let the final report through
        fired.append(signum)
        name, code = ("SIGTERM", 143) if signum == signal.SIGTERM else ("SIGINT", 130)
        raise Terminated(name, code)

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


def run(flows: List[Flow], name: str, assignments: List[str], params_json: Optional[str]) -> int:
    flow = next((f for f in flows if f.name == name), None)
    if flow is None:
        names = ", ".join(f.name for f in flows) or "no flows"
        raise BadInput(f"unknown flow {json.dumps(name)}; this program has: {names}")
    params = collect_params(assignments, params_json)
    try:
        kwargs = flow.bind_json(params)
    except ParamError as e:
        raise BadInput(f"flow {json.dumps(name)}: {e}") from None
    _install_signals()
    # Everything imported so far lives as long as the process: keep the collector from
    # walking it again and again while a long flow allocates.
    gc.freeze()
    try:
        if flow.is_async:
            value = asyncio.run(flow(**kwargs))
        else:
            value = flow(**kwargs)
        # The run is final: a late signal no longer has a run to cancel.
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.SIG_DFL)
    except Terminated as t:
        from ._tracker import STOP_REASON
        _util.say(f"weir: flow run stopped: {STOP_REASON[0]}" if STOP_REASON
                  else f"weir: flow run {t}")
        _exit(t.code)
    except Exception as e:
        _util.say(f"error: flow {json.dumps(name)} failed: {_util.describe_error(e)}")
        return 1
    try:
        out = json.dumps(_util.to_json(value))
    except (TypeError, ValueError) as e:
        _util.say(f"error: cannot print the result: {e}")
        out = "null"
    _util.say(out, out=True)
    return 0


def _exit(code: int) -> None:
    """Ends the process now: task threads still running must not hold it open."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m weir",
        description="A Weir flows program: describe the flows in PATH or run one.",
    )
    p.add_argument("path", metavar="PATH", help="a .py file, a folder of them, or a module")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    sub.add_parser("describe", help="print the flows, their parameter schemas and tasks as JSON")
    r = sub.add_parser("run", help="run one flow")
    r.add_argument("flow", metavar="FLOW", help="flow name")
    r.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                   help="a parameter (VALUE is JSON if it parses, else a string); repeatable")
    r.add_argument("--params-json", metavar="JSON",
                   help="all parameters as one JSON object (merged under the --param values)")
    args = p.parse_args(argv)
    try:
        flows = load(args.path)
        if args.command == "describe":
            return describe(flows)
        return run(flows, args.flow, args.param, args.params_json)
    except BadInput as e:
        _util.say(f"error: {e}")
        return USAGE
    except Terminated as t:  # a signal before the flow run started
        _util.say(f"weir: {t}")
        _exit(t.code)
        return t.code
    finally:
        t = _tracker._TRACKER
        if t is not None:
            t.flush()
