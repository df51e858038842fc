"""Parameter schemas: the Python SDK emits what the Rust SDK emits for the same signatures
(`weir-schema-zoo describe`, a Rust flows binary built by cargo)."""

import json
import subprocess

from conftest import FLOWS, binary, weir_py


def rust_schemas():
    out = subprocess.run([str(binary("weir-schema-zoo")), "describe"], capture_output=True,
                         text=True, check=True, timeout=30).stdout
    return {f["name"]: f for f in json.loads(out)["flows"]}


def python_schemas():
    r = weir_py(str(FLOWS / "params.py"), "describe")
    assert r.code == 0, r
    return {f["name"]: f for f in json.loads(r.stdout)["flows"]}


def test_same_signatures_give_the_same_schemas_as_the_rust_sdk():
    rust, py = rust_schemas(), python_schemas()
    for name in ("scalars", "containers", "structured"):
        assert py[name]["parameters"] == rust[name]["parameters"], name
        assert py[name]["description"] == rust[name]["description"], name


def test_python_only_types():
    s = python_schemas()["python_only"]["parameters"]
    assert s["properties"] == {
        "kind": {"type": "string", "enum": ["csv", "json"], "default": "csv",
                 "description": "output format"},
        "since": {"type": ["string", "null"], "format": "date", "default": None,
                  "description": "first day to load"},
        "pair": {"type": "array", "default": [1, 2]},
    }
    assert "required" not in s
    assert python_schemas()["python_only"]["description"] == "Types only Python has."
