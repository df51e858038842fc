"""`pip install sdk/python` works: the package builds into a wheel holding the whole SDK."""

import shutil
import subprocess
import sys
import zipfile

import pytest

from conftest import HERE


def test_the_package_builds_a_wheel(tmp_path):
    try:
        import setuptools  # noqa: F401
        import wheel  # noqa: F401  (setuptools < 70 builds wheels with it)
    except ImportError:
        pytest.skip("setuptools and wheel are not installed in this interpreter")
    # Built from a copy: setuptools writes build/ and *.egg-info next to the sources.
    src = tmp_path / "src"
    shutil.copytree(HERE.parent, src, ignore=shutil.ignore_patterns(
        "__pycache__", "build", "*.egg-info", ".pytest_cache"))
    p = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                        "--disable-pip-version-check", "-q", "-w", str(tmp_path), str(src)],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    (wheel,) = tmp_path.glob("weir-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for module in ("__init__", "__main__", "_cli", "_task", "_flow", "_tracker", "_schema",
                   "_results", "_http", "_context", "_deployments", "_util"):
        assert f"weir/{module}.py" in names
    assert not any(n.startswith("tests/") for n in names)
