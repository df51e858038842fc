"""Flow parameters: JSON Schema from type hints, and JSON values back to typed arguments.

The schema has the shape the Rust SDK (schemars) writes, so the server's validation and the
Quick-run form treat both SDKs alike:

| hint | schema |
|---|---|
| `str`, `bool` | `{"type": "string"}`, `{"type": "boolean"}` |
| `int`, `float` | `{"type": "integer", "format": "int64"}`, `{"type": "number", "format": "double"}` |
| `Optional[T]` | `T` with `"type": [T, "null"]`, or `{"anyOf": [T, {"type": "null"}]}` |
| `list[T]`, `set[T]`, `tuple[A, B]` | `array` with `items` (`uniqueItems`; `prefixItems`) |
| `dict[str, T]` | `object` with `additionalProperties` |
| `Literal[...]` | inline `enum` |
| `Enum` subclass, dataclass, pydantic model | `{"$ref": "#/$defs/Name"}` |
| `date`, `datetime`, `UUID`, `Path` | `string` with `format` `date`, `date-time`, `uuid`; `Path` plain |
| `Annotated[T, "text"]` | `T` with `description` |
| none / `Any` | `{}` |

Descriptions also come from the docstring's `Args:` section. Parameters with a default carry
it (`default`); the others are `required`. Values that do not fit are `ParamError`s naming the
parameter, worded like the Rust SDK's (`parameter "n": expected an integer (int64), got "x"`).
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import enum
import inspect
import json
import re
import sys
import typing
import uuid
from pathlib import Path, PurePath
from typing import Any, Dict, List, Optional, Tuple

from ._util import to_json

_NONE = type(None)
try:  # Python 3.10+: `int | None`
    from types import UnionType as _UnionType  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover
    _UnionType = None


class ParamError(Exception):
    """Parameters that do not fit a flow; `parameter` names the one at fault."""

    _weir_plain = True

    def __init__(self, message: str, parameter: Optional[str] = None):
        super().__init__(message)
        self.parameter = parameter


def _is_pydantic(tp: Any) -> bool:
    return isinstance(tp, type) and hasattr(tp, "model_json_schema") and hasattr(
        tp, "model_validate"
    )


def _origin(tp):
    return typing.get_origin(tp)


def _args(tp):
    return typing.get_args(tp)


def _is_union(tp) -> bool:
    o = _origin(tp)
    return o is typing.Union or (_UnionType is not None and o is _UnionType)


def _class_doc(cls) -> Optional[str]:
    doc = cls.__doc__
    if not doc:
        return None
    doc = inspect.cleandoc(doc)
    # A dataclass without a docstring gets `Name(field: type, ...)` as its __doc__.
    if dataclasses.is_dataclass(cls) and doc.startswith(cls.__name__ + "("):
        return None
    if isinstance(cls, type) and issubclass(cls, enum.Enum) and doc in (
        "An enumeration.", enum.Enum.__doc__ and inspect.cleandoc(enum.Enum.__doc__)
    ):
        return None
    return doc


class SchemaBuilder:
    """Builds schemas of hints, collecting named types under `$defs`."""

    def __init__(self) -> None:
        self.defs: Dict[str, Any] = {}

    def of(self, tp: Any) -> Dict[str, Any]:
        if tp is inspect.Parameter.empty or tp is Any or tp is object:
            return {}
        if _origin(tp) is typing.Annotated:
            base, *meta = _args(tp)
            s = dict(self.of(base))
            for m in meta:
                if isinstance(m, str):
                    s["description"] = m
            return s
        if tp is str:
            return {"type": "string"}
        if tp is bool:
            return {"type": "boolean"}
        if tp is int:
            return {"type": "integer", "format": "int64"}
        if tp is float:
            return {"type": "number", "format": "double"}
        if tp is _dt.datetime:
            return {"type": "string", "format": "date-time"}
        if tp is _dt.date:
            return {"type": "string", "format": "date"}
        if tp is uuid.UUID:
            return {"type": "string", "format": "uuid"}
        if isinstance(tp, type) and issubclass(tp, PurePath):
            return {"type": "string"}
        if tp is _NONE:
            return {"type": "null"}
        if _is_union(tp):
            return self._union(tp)
        o = _origin(tp)
        if o is typing.Literal:
            values = list(_args(tp))
            s: Dict[str, Any] = {"enum": values}
            kinds = {_json_type(v) for v in values}
            if len(kinds) == 1:
                s = {"type": kinds.pop(), "enum": values}
            return s
        if o in (list, List, typing.Sequence) or tp in (list, List):
            a = _args(tp)
            return {"type": "array", "items": self.of(a[0])} if a else {"type": "array"}
        if o in (set, frozenset) or tp in (set, frozenset):
            a = _args(tp)
            s = {"type": "array", "uniqueItems": True}
            if a:
                s["items"] = self.of(a[0])
            return s
        if o is tuple or tp is tuple:
            a = _args(tp)
            if len(a) == 2 and a[1] is Ellipsis:
                return {"type": "array", "items": self.of(a[0])}
            if not a:
                return {"type": "array"}
            return {"type": "array", "prefixItems": [self.of(x) for x in a],
                    "minItems": len(a), "maxItems": len(a)}
        if o in (dict, typing.Mapping) or tp is dict:
            a = _args(tp)
            s = {"type": "object"}
            if a:
                s["additionalProperties"] = self.of(a[1])
            return s
        if isinstance(tp, type) and issubclass(tp, enum.Enum):
            return self._named(tp, self._enum)
        if dataclasses.is_dataclass(tp):
            return self._named(tp, self._dataclass)
        if _is_pydantic(tp):
            return self._pydantic(tp)
        return {}

    def _union(self, tp) -> Dict[str, Any]:
        members = [a for a in _args(tp) if a is not _NONE]
        nullable = len(members) < len(_args(tp))
        if len(members) == 1:
            inner = self.of(members[0])
            if not nullable:
                return inner
            t = inner.get("type")
            if isinstance(t, str) and "enum" not in inner:
                out = dict(inner)
                out["type"] = [t, "null"]
                return out
            return {"anyOf": [inner, {"type": "null"}]}
        alts = [self.of(m) for m in members]
        if nullable:
            alts.append({"type": "null"})
        return {"anyOf": alts}

    def _named(self, tp, build) -> Dict[str, Any]:
        name = tp.__name__
        if name not in self.defs:
            self.defs[name] = {}  # placeholder: recursive types
            self.defs[name] = build(tp)
        return {"$ref": f"#/$defs/{name}"}

    def _enum(self, tp) -> Dict[str, Any]:
        values = [m.value for m in tp]
        s: Dict[str, Any] = {"enum": values}
        kinds = {_json_type(v) for v in values}
        if len(kinds) == 1:
            s = {"type": kinds.pop(), "enum": values}
        doc = _class_doc(tp)
        if doc:
            s["description"] = doc
        return s

    def _dataclass(self, tp) -> Dict[str, Any]:
        hints = _hints(tp)
        props, required = {}, []
        for f in dataclasses.fields(tp):
            if not f.init:
                continue
            p = dict(self.of(hints.get(f.name, Any)))
            if f.default is not dataclasses.MISSING:
                p["default"] = _json_default(f.default)
            elif f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
                p["default"] = _json_default(f.default_factory())  # type: ignore[misc]
            else:
                required.append(f.name)
            props[f.name] = p
        s: Dict[str, Any] = {"type": "object", "properties": props}
        if required:
            s["required"] = required
        doc = _class_doc(tp)
        if doc:
            s["description"] = doc
        return s

    def _pydantic(self, tp) -> Dict[str, Any]:
        s = tp.model_json_schema(ref_template="#/$defs/{model}")
        for k, v in s.pop("$defs", {}).items():
            self.defs.setdefault(k, v)
        self.defs.setdefault(tp.__name__, s)
        return {"$ref": f"#/$defs/{tp.__name__}"}


def _json_type(v) -> str:
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, int):
        return "integer"
    if isinstance(v, float):
        return "number"
    if isinstance(v, str):
        return "string"
    return "null" if v is None else "object"


def _json_default(v):
    try:
        return to_json(v)
    except (TypeError, ValueError):
        return None


def _hints(obj) -> Dict[str, Any]:
    try:
        return typing.get_type_hints(obj, include_extras=True)
    except Exception:  # unresolvable forward references: fall back to the raw annotations
        return dict(getattr(obj, "__annotations__", {}))


_ARGS_RE = re.compile(r"^\s*(Args|Arguments|Parameters):\s*$")


def docstring_parts(fn) -> Tuple[str, Dict[str, str]]:
    """The description (docstring before `Args:`) and each documented parameter's text."""
    doc = inspect.getdoc(fn) or ""
    lines = doc.splitlines()
    descr: List[str] = []
    params: Dict[str, str] = {}
    i = 0
    while i < len(lines) and not _ARGS_RE.match(lines[i]):
        descr.append(lines[i])
        i += 1
    current, indent = None, 0
    for line in lines[i + 1:]:
        if line and not line[0].isspace():
            break  # next section
        m = re.match(r"^\s+(\*{0,2}\w+)\s*(\([^)]*\))?\s*:\s*(.*)$", line)
        depth = len(line) - len(line.lstrip())
        if m and (current is None or depth <= indent):
            current, indent = m.group(1), depth
            params[current] = m.group(3).strip()
        elif current and line.strip():
            params[current] = (params[current] + " " + line.strip()).strip()
    return "\n".join(descr).strip(), params



def flow_schema(name: str, fn) -> Dict[str, Any]:
    """The parameter schema of flow function `fn`."""
    sig = inspect.signature(fn)
    hints = _hints(fn)
    _, docs = docstring_parts(fn)
    b = SchemaBuilder()
    props: Dict[str, Any] = {}
    required: List[str] = []
    for p in sig.parameters.values():
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        s = dict(b.of(hints.get(p.name, p.annotation)))
        if p.name in docs and "description" not in s:
            s["description"] = docs[p.name]
        if p.default is not p.empty:
            s["default"] = _json_default(p.default)
        elif not _accepts_none(hints.get(p.name, p.annotation)):
            required.append(p.name)  # an Optional without default takes None, as in Rust
        props[p.name] = s
    schema: Dict[str, Any] = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": name,
        "type": "object",
        "properties": props,
        "additionalProperties": False,
    }
    if required:
        schema["required"] = required
    if b.defs:
        schema["$defs"] = b.defs
    return schema


# ---- JSON values to Python arguments ---------------------------------------------------------

_WORDS = {
    "integer": "an integer", "number": "a number", "string": "a string",
    "boolean": "true or false", "array": "an array", "object": "an object", "null": "null",
}


def describe(schema: Dict[str, Any], defs: Dict[str, Any]) -> str:
    """A schema in words: `an integer (int64)`, `a string or null`, `one of "a", "b"`."""
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        return describe(defs.get(ref[len("#/$defs/"):], {}), defs)
    if "enum" in schema:
        return "one of " + ", ".join(json.dumps(v) for v in schema["enum"])
    t = schema.get("type")
    types = [t] if isinstance(t, str) else list(t or [])
    if not types:
        if "anyOf" in schema:
            return " or ".join(describe(a, defs) for a in schema["anyOf"])
        return "a value matching the parameter's schema"
    words = [_WORDS.get(x, "a value") for x in types]
    if "format" in schema:
        words[0] += f" ({schema['format']})"
    return " or ".join(words)


def _short(v) -> str:
    try:
        s = json.dumps(v)
    except (TypeError, ValueError):
        s = repr(v)
    return s if len(s) <= 80 else s[:77] + "..."


class _Bad(Exception):
    """A value that does not fit; `path` is where inside the parameter."""

    def __init__(self, path: str, detail: Optional[str] = None):
        super().__init__(path)
        self.path = path
        self.detail = detail


def convert(tp: Any, value: Any, path: str = "") -> Any:
    """`value` (decoded JSON) as a value of hint `tp`; raises `_Bad` where it does not fit."""
    if tp is inspect.Parameter.empty or tp is Any or tp is object:
        return value
    if _origin(tp) is typing.Annotated:
        return convert(_args(tp)[0], value, path)
    if _is_union(tp):
        members = _args(tp)
        if value is None and _NONE in members:
            return None
        last = None
        for m in members:
            if m is _NONE:
                continue
            try:
                return convert(m, value, path)
            except _Bad as e:
                last = e
        raise last or _Bad(path)
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise _Bad(path)
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            if not -(2 ** 63) <= value < 2 ** 63:
                raise _Bad(path, "out of range for int64")
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise _Bad(path)
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise _Bad(path)
    if tp is str:
        if isinstance(value, str):
            return value
        raise _Bad(path)
    if tp is _NONE:
        if value is None:
            return None
        raise _Bad(path)
    if tp in (_dt.datetime, _dt.date, uuid.UUID) or (
        isinstance(tp, type) and issubclass(tp, PurePath)
    ):
        if not isinstance(value, str):
            raise _Bad(path)
        try:
            if tp is _dt.datetime:
                return _dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
            if tp is _dt.date:
                return _dt.date.fromisoformat(value)
            return tp(value)
        except ValueError as e:
            raise _Bad(path, str(e)) from None
    o = _origin(tp)
    if o is typing.Literal:
        if value in _args(tp):
            return value
        raise _Bad(path)
    if o in (list, List, typing.Sequence, set, frozenset, tuple) or tp in (list, set, tuple):
        if not isinstance(value, list):
            raise _Bad(path)
        a = _args(tp)
        if (o is tuple or tp is tuple) and a and not (len(a) == 2 and a[1] is Ellipsis):
            if len(value) != len(a):
                raise _Bad(path, f"expected {len(a)} items, got {len(value)}")
            return tuple(convert(t, v, f"{path}[{i}]") for i, (t, v) in enumerate(zip(a, value)))
        item = a[0] if a else Any
        items = [convert(item, v, f"{path}[{i}]") for i, v in enumerate(value)]
        if o in (set, frozenset) or tp is set:
            return (frozenset if o is frozenset else set)(items)
        return tuple(items) if (o is tuple or tp is tuple) else items
    if o in (dict, typing.Mapping) or tp is dict:
        if not isinstance(value, dict):
            raise _Bad(path)
        a = _args(tp)
        vt = a[1] if a else Any
        return {k: convert(vt, v, f"{path}.{k}") for k, v in value.items()}
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        try:
            return tp(value)
        except ValueError:
            raise _Bad(path) from None
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise _Bad(path)
        hints = _hints(tp)
        fields = {f.name: f for f in dataclasses.fields(tp) if f.init}
        unknown = [k for k in value if k not in fields]
        if unknown:
            raise _Bad(path, f"unknown field {unknown[0]!r} (known: {', '.join(fields)})")
        kwargs = {}
        for name, f in fields.items():
            if name in value:
                kwargs[name] = convert(hints.get(name, Any), value[name], f"{path}.{name}")
            elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:  # type: ignore[misc]
                raise _Bad(path, f"missing required field {name!r}")
        return tp(**kwargs)
    if _is_pydantic(tp):
        try:
            return tp.model_validate(value)
        except Exception as e:  # pydantic's ValidationError
            raise _Bad(path, str(e).splitlines()[0]) from None
    return value


def bind(name: str, fn, schema: Dict[str, Any], params: Dict[str, Any]) -> Dict[str, Any]:
    """Typed keyword arguments for flow `fn` from JSON `params`, or a `ParamError`."""
    sig = inspect.signature(fn)
    hints = _hints(fn)
    known = [p.name for p in sig.parameters.values()
             if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    takes_any = any(p.kind == p.VAR_KEYWORD for p in sig.parameters.values())
    for k in params:
        if k not in known and not takes_any:
            listed = ", ".join(known) if known else "no parameters"
            raise ParamError(f"unknown parameter {json.dumps(k)}; this flow takes: {listed}", k)
    defs = schema.get("$defs", {})
    out: Dict[str, Any] = {}
    for p in sig.parameters.values():
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        tp = hints.get(p.name, p.annotation)
        words = describe(schema["properties"].get(p.name, {}), defs)
        if p.name not in params:
            if p.default is p.empty:
                if _accepts_none(tp):
                    out[p.name] = None
                    continue
                raise ParamError(f"missing parameter {json.dumps(p.name)}: expected {words}",
                                 p.name)
            continue
        v = params[p.name]
        try:
            out[p.name] = convert(tp, v, p.name)
        except _Bad as e:
            where = e.path if e.path != p.name else p.name
            detail = f" ({e.detail})" if e.detail else ""
            if where != p.name:
                detail = f" (at {where}{': ' + e.detail if e.detail else ''})"
            raise ParamError(
                f"parameter {json.dumps(p.name)}: expected {words}, got {_short(v)}{detail}",
                p.name,
            ) from None
    if takes_any:
        for k, v in params.items():
            if k not in known:
                out[k] = v
    return out


def _accepts_none(tp) -> bool:
    if tp is inspect.Parameter.empty or tp is Any:
        return False
    if _origin(tp) is typing.Annotated:
        return _accepts_none(_args(tp)[0])
    return _is_union(tp) and _NONE in _args(tp)


if sys.version_info < (3, 9):  # pragma: no cover
    raise ImportError("weir needs Python 3.9 or newer")
