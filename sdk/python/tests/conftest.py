"""Fixtures: a real `weir server` (SQLite in a temporary directory, a free loopback port) and a
real `weir agent`, started from the binaries in `WEIR_BIN_DIR` (default: the cargo target
directory's `debug`), and helpers that run `python -m weir` as a child process against them."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any, Dict, List, Optional

import pytest

HERE = Path(__file__).resolve().parent
SDK_SRC = HERE.parent / "src"
REPO = HERE.parents[2]
FLOWS = HERE / "flows"
EXAMPLES = REPO / "examples" / "python"


def bin_dir() -> Path:
    d = os.environ.get("WEIR_BIN_DIR")
    if d:
        return Path(d)
    target = os.environ.get("CARGO_TARGET_DIR") or str(REPO / "target")
    return Path(target) / "debug"


def binary(name: str) -> Path:
    p = bin_dir() / name
    if not p.exists():
        pytest.fail(f"{p} not found: build it with `cargo build --workspace --bins` (or set "
                    "WEIR_BIN_DIR to the folder holding the weir binaries)")
    return p


def base_env() -> Dict[str, str]:
    """The environment of child processes: nothing of this machine's Weir or AWS settings."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("WEIR_") and not k.startswith("AWS_")}
    env["PYTHONPATH"] = str(SDK_SRC)
    env["PYTHONUNBUFFERED"] = "1"
    return env


class Server:
    """A `weir server` child process and an admin client of it."""

    def __init__(self, home: Path):
        self.home = home
        self.proc: Optional[subprocess.Popen] = None
        self.bind = "127.0.0.1:0"
        self.url = ""
        self.key = ""

    def start(self) -> None:
        env = base_env()
        env["WEIR_HOME"] = str(self.home)
        env["WEIR_LOG"] = "warn"
        log = open(self.home / "server.log", "ab")
        url_file = self.home / "server.url"
        if url_file.exists():
            url_file.unlink()
        self.proc = subprocess.Popen(
            [str(binary("weir")), "server", "--bind", self.bind, "--db",
             f"sqlite://{self.home}/weir.db", "--lease-s", "6"],
            env=env, stdout=log, stderr=log, start_new_session=True,
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if url_file.exists() and url_file.read_text().strip():
                self.url = url_file.read_text().strip()
                try:
                    urllib.request.urlopen(self.url + "/readyz", timeout=2).read()
                    break
                except OSError:
                    pass
            if self.proc.poll() is not None:
                raise RuntimeError(f"weir server exited: {(self.home / 'server.log').read_text()}")
            time.sleep(0.05)
        else:
            raise RuntimeError("weir server did not become ready")
        self.bind = self.url.split("://", 1)[1]
        self.key = (self.home / "admin.key").read_text().strip()

    def stop(self, sig=signal.SIGTERM) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def request(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method)
        req.add_header("Authorization", f"Bearer {self.key}")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                text = r.read()
        except urllib.error.HTTPError as e:
            raise AssertionError(f"{method} {path}: HTTP {e.code}: {e.read().decode()}") from None
        return json.loads(text) if text else None

    def get(self, path: str) -> Any:
        return self.request("GET", path)

    def post(self, path: str, body: Any = None) -> Any:
        return self.request("POST", path, body if body is not None else {})

    # -- reading runs ----------------------------------------------------------------------
    def run(self, run_id: str) -> Dict[str, Any]:
        return self.get(f"/api/v1/flow_runs/{run_id}")["run"]

    def task_runs(self, run_id: str) -> List[Dict[str, Any]]:
        out, cursor = [], None
        while True:
            q = f"?limit=1000" + (f"&cursor={cursor}" if cursor else "")
            page = self.get(f"/api/v1/flow_runs/{run_id}/task_runs{q}")
            out += page["items"]
            cursor = page.get("next_cursor")
            if not cursor:
                return out

    def logs(self, run_id: str) -> List[Dict[str, Any]]:
        out, cursor = [], None
        while True:
            q = f"?limit=1000" + (f"&cursor={cursor}" if cursor else "")
            page = self.get(f"/api/v1/flow_runs/{run_id}/logs{q}")
            out += page["items"]
            cursor = page.get("next_cursor")
            if not cursor:
                return out

    def runs(self, **query) -> List[Dict[str, Any]]:
        q = "&".join(f"{k}={v}" for k, v in query.items())
        return self.get(f"/api/v1/flow_runs?limit=1000&{q}")["items"]

    def wait_state(self, run_id: str, states, timeout: float = 30) -> Dict[str, Any]:
        states = {states} if isinstance(states, str) else set(states)
        deadline = time.monotonic() + timeout
        while True:
            run = self.run(run_id)
            if run["state"] in states:
                return run
            if time.monotonic() > deadline:
                raise AssertionError(f"run {run_id} is {run['state']}, not {states}: {run}")
            time.sleep(0.1)


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    s = Server(tmp_path_factory.mktemp("server"))
    s.start()
    yield s
    s.stop()


class Agent:
    def __init__(self, server: Server, home: Path):
        env = base_env()
        env.update(WEIR_HOME=str(home), WEIR_API_KEY=server.key, WEIR_LOG="warn")
        self.log = home / "agent.log"
        self.proc = subprocess.Popen(
            [str(binary("weir")), "agent", "--api-url", server.url, "--name", "pytest-agent",
             "--heartbeat-s", "1", "--cancel-grace-s", "5", "--limit", "8"],
            env=env, stdout=open(self.log, "ab"), stderr=subprocess.STDOUT,
            start_new_session=True, cwd=str(home),
        )

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture(scope="session")
def agent(server, tmp_path_factory):
    a = Agent(server, tmp_path_factory.mktemp("agent"))
    yield a
    a.stop()


_RUN_ID = re.compile(r"Running \(flow run ([0-9a-f-]{36}), attempt")


class Result:
    def __init__(self, proc: subprocess.CompletedProcess):
        self.code = proc.returncode
        self.stdout = proc.stdout
        self.stderr = proc.stderr
        ids = _RUN_ID.findall(proc.stderr)
        self.run_id = ids[0] if ids else None

    @property
    def value(self) -> Any:
        return json.loads(self.stdout.strip().splitlines()[-1])

    def __repr__(self) -> str:
        return f"<exit {self.code}\nstdout: {self.stdout}\nstderr: {self.stderr}>"


def weir_py(*args: str, env: Optional[Dict[str, str]] = None, server: Optional[Server] = None,
            timeout: float = 60, cwd: Optional[Path] = None) -> Result:
    """Runs `python -m weir ARGS...` (against `server` when given)."""
    e = base_env()
    if server is not None:
        e.update(WEIR_API_URL=server.url, WEIR_API_KEY=server.key, WEIR_PROJECT="pytest")
    e.update(env or {})
    p = subprocess.run([sys.executable, "-m", "weir", *args], env=e, capture_output=True,
                       text=True, timeout=timeout, cwd=str(cwd) if cwd else None)
    return Result(p)


@pytest.fixture(scope="session")
def project(server):
    name = "pytest"
    try:
        server.post("/api/v1/projects", {"name": name})
    except AssertionError as e:
        if "409" not in str(e):
            raise
    return name


def result_of(run: Dict[str, Any]) -> Any:
    """A run's result, read from result storage: the server holds only its location and size."""
    ref = run.get("result")
    if ref is None:
        return None
    assert ref["location"].startswith("file://"), ref
    data = Path(ref["location"][len("file://"):]).read_bytes()
    assert len(data) == ref["size"], ref
    return json.loads(data)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"
