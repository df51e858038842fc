"""Runs the example flow locally (no server): `python3 -m pytest tests`."""

import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def weir(*args):
    return subprocess.run([sys.executable, "-m", "weir", "flows", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)


def test_describe_lists_the_flow():
    out = weir("describe")
    assert out.returncode == 0, out.stderr
    assert "hello" in [f["name"] for f in json.loads(out.stdout)["flows"]]


def test_hello_sums_the_squares():
    out = weir("run", "hello", "--param", "items=3")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == 14
