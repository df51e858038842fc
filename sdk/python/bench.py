"""The Python SDK's benchmark: per-task overhead of a chain of tasks, in process and tracked by
a real `weir server`. Prints ONE JSON object (`weir-bench python` runs this script).

    python3 sdk/python/bench.py --weir target/release/weir

* `in_process_chain_{1000,10000}_us_per_task`: a flow of N tasks in sequence with the quiet
  local tracker (every report still recorded in memory), wall time of the flow run divided by
  N, minus the cost of the same loop calling the plain function (best of `--repeat`).
* `tracked_chain_{1000,10000}_us_per_task`: `python -m weir bench.py run chain --param n=N`
  reporting to a fresh `weir server` on SQLite, process start to exit (when every report is
  already on the server), divided by N — checked by counting the task runs the server has.
  `python_start_ms` (the same process running a 0-task chain) is reported beside it and not
  subtracted; `rust_sdk_tracked_chain_10000_us_per_task_same_server` is the Rust SDK's
  `example-flows run chain` against the same server, for scale.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "src"))

import weir  # noqa: E402
from weir import _tracker  # noqa: E402


@weir.task
def add_one(x: int) -> int:
    return x + 1


@weir.flow
def chain(n: int = 1000) -> int:
    """`n` tasks in sequence, each adding 1."""
    v = 0
    for _ in range(n):
        v = add_one(v)
    return v


def _plain(x: int) -> int:
    return x + 1


def in_process(n: int, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        _tracker.set_tracker(_tracker.LocalTracker(terminal=False))
        t = time.perf_counter()
        for _ in range(n):
            _plain(1)
        base = time.perf_counter() - t
        t = time.perf_counter()
        assert chain(n) == n
        best = min(best, time.perf_counter() - t - base)
    return best / n * 1e6


def start_server(weir_bin: str, home: Path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("WEIR_")}
    env.update(WEIR_HOME=str(home), WEIR_LOG="warn")
    proc = subprocess.Popen([weir_bin, "server", "--bind", "127.0.0.1:0", "--db",
                             f"sqlite://{home}/weir.db"], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    url_file = home / "server.url"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if url_file.exists() and url_file.read_text().strip():
            url = url_file.read_text().strip()
            try:
                urllib.request.urlopen(url + "/readyz", timeout=2).read()
                return proc, url, (home / "admin.key").read_text().strip()
            except OSError:
                pass
        time.sleep(0.05)
    proc.kill()
    raise SystemExit("weir server did not start")


def count_task_runs(url: str, key: str, run_id: str) -> int:
    n, cursor = 0, None
    while True:
        q = "?limit=1000" + (f"&cursor={cursor}" if cursor else "")
        req = urllib.request.Request(f"{url}/api/v1/flow_runs/{run_id}/task_runs{q}")
        req.add_header("Authorization", f"Bearer {key}")
        page = json.loads(urllib.request.urlopen(req, timeout=30).read())
        n += sum(1 for t in page["items"] if t["state"] == "Completed")
        cursor = page.get("next_cursor")
        if not cursor:
            return n


def tracked(url: str, key: str, home: Path, n: int):
    env = {k: v for k, v in os.environ.items() if not k.startswith("WEIR_")}
    env.update(WEIR_API_URL=url, WEIR_API_KEY=key, WEIR_HOME=str(home), WEIR_PROJECT="bench",
               PYTHONPATH=str(HERE / "src"))
    t = time.perf_counter()
    p = subprocess.run([sys.executable, "-m", "weir", __file__, "run", "chain", "--param",
                        f"n={n}"], env=env, capture_output=True, text=True, timeout=600)
    elapsed = time.perf_counter() - t
    if p.returncode != 0:
        raise SystemExit(f"tracked chain failed ({p.returncode}): {p.stderr[-2000:]}")
    run_id = p.stderr.split("(flow run ", 1)[1].split(",", 1)[0]
    stored = count_task_runs(url, key, run_id)
    if n and stored != n:
        raise SystemExit(f"the server has {stored} of {n} task runs at exit")
    return elapsed, stored


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--weir", required=True, help="the weir binary (server)")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    out = {"python": sys.version.split()[0]}
    import gc

    gc.freeze()  # as `python -m weir ... run` does before a flow starts
    for n in (1000, 10_000):
        out[f"in_process_chain_{n}_us_per_task"] = round(in_process(n, args.repeat), 2)
    home = Path(tempfile.mkdtemp(prefix="weir-bench-py-"))
    proc, url, key = start_server(args.weir, home)
    try:
        start, _ = tracked(url, key, home, 0)
        out["python_start_ms"] = round(start * 1000, 1)
        for n in (1000, 10_000):
            best = float("inf")
            for _ in range(args.repeat):
                elapsed, stored = tracked(url, key, home, n)
                best = min(best, elapsed)
            out[f"tracked_chain_{n}_us_per_task"] = round(best / n * 1e6, 2)
            out[f"tracked_chain_{n}_task_runs_on_server_at_exit"] = stored
        rust = Path(args.weir).with_name("example-flows")
        if rust.exists():  # the Rust SDK's same chain against the same server, for scale
            env = {k: v for k, v in os.environ.items() if not k.startswith("WEIR_")}
            env.update(WEIR_API_URL=url, WEIR_API_KEY=key, WEIR_HOME=str(home),
                       WEIR_PROJECT="bench", WEIR_QUIET="1")
            best = float("inf")
            for _ in range(args.repeat):
                t = time.perf_counter()
                subprocess.run([str(rust), "run", "chain", "--param", "n=10000"], env=env,
                               check=True, capture_output=True, timeout=600)
                best = min(best, time.perf_counter() - t)
            out["rust_sdk_tracked_chain_10000_us_per_task_same_server"] = round(best / 1e4 * 1e6, 2)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
