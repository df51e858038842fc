"""The SDK run locally, with no server: `python -m weir PATH run FLOW` as a real process."""

import json
import os

from conftest import FLOWS, weir_py

BASICS = str(FLOWS / "basics.py")


def test_chain_returns_its_value_and_prints_task_runs():
    r = weir_py(BASICS, "run", "chain", "--param", "n=25")
    assert r.code == 0, r
    assert r.value == 25
    assert r.stderr.count("add_one-") == 50  # Running and Completed per task run
    assert "chain Completed" in r.stderr


def test_quiet_prints_only_the_result():
    r = weir_py(BASICS, "run", "chain", env={"WEIR_QUIET": "1"})
    assert (r.code, r.stdout.strip(), r.stderr) == (0, "10", "")


def test_retries_then_success():
    r = weir_py(BASICS, "run", "flaky")
    assert r.code == 0, r
    assert r.value == "ok after 3"
    assert r.stderr.count("unreliable-0 AwaitingRetry: ConnectionError: transient failure") == 2
    assert "retry in 10ms" in r.stderr and "retry in 20ms" in r.stderr
    assert "INFO succeeded on attempt 3" in r.stderr


def test_retry_if_stops_retrying_and_failure_exits_1():
    r = weir_py(BASICS, "run", "not_retried")
    assert r.code == 1, r
    assert "AwaitingRetry" not in r.stderr
    assert "missing_key-0 Failed: KeyError" in r.stderr
    assert "error: flow \"not_retried\" failed: KeyError" in r.stderr


def test_timeout_on_the_main_thread_and_in_a_worker_thread():
    for flow in ("timeouts", "timeouts_in_threads"):
        r = weir_py(BASICS, "run", flow, timeout=20)
        assert r.code == 1, r
        assert "sleepy-0 Failed: timed out after 300ms" in r.stderr, r
    r = weir_py(BASICS, "run", "timeouts", "--param", "seconds=0.01")
    assert (r.code, r.value) == (0, 0.01)


def test_map_keeps_order_with_unmapped():
    r = weir_py(BASICS, "run", "fanout", "--param", "n=50", "--param", "offset=1",
                env={"WEIR_QUIET": "1"})
    assert r.code == 0, r
    assert r.value == sum(x * x + 1 for x in range(50))


def test_wait_for_orders_submitted_tasks():
    r = weir_py(BASICS, "run", "ordered", env={"WEIR_QUIET": "1"})
    assert r.code == 0, r
    first, second = r.value
    assert float(first.split("@")[1]) < float(second.split("@")[1])


def test_a_failed_submitted_task_never_waited_on_fails_the_flow():
    r = weir_py(BASICS, "run", "forgotten")
    assert r.code == 1, r
    assert "task 'explode' failed and its future was never waited on: ValueError: bad item 1" \
        in r.stderr
    r = weir_py(BASICS, "run", "handled", env={"WEIR_QUIET": "1"})
    assert (r.code, r.value) == (0, "handled: bad item 2")


def test_subflows_and_their_failures():
    r = weir_py(BASICS, "run", "parent", "--param", "x=1")
    assert r.code == 0, r
    assert r.value == 2 + 12
    assert r.stderr.count("subflow of") == 2
    r = weir_py(BASICS, "run", "parent_of_broken")
    assert r.code == 1, r
    assert "subflow 'broken_child' failed: task 'load_orders' failed: RuntimeError" in r.stderr


def test_async_flow_with_async_and_sync_tasks():
    r = weir_py(BASICS, "run", "async_flow", "--param", "n=4", env={"WEIR_QUIET": "1"})
    assert r.code == 0, r
    assert r.value == [2, 3, 0, 2, 4, 6]
    r = weir_py(BASICS, "run", "async_timeout")
    assert r.code == 1 and "async_sleepy-0 Failed: timed out after 200ms" in r.stderr, r


def test_log_prints_and_the_run_logger():
    r = weir_py(BASICS, "run", "prints", "--param", "name=ada")
    assert r.code == 0, r
    assert "chatty-0 INFO hello ada" in r.stderr
    assert "chatty-0 WARN careful, ada" in r.stderr
    assert r.stdout.strip() == '"ada"'  # the print went to the log, not stdout


def test_bad_input_exits_2_naming_what_is_wrong():
    cases = [
        (["run", "chain", "--param", "n=many"],
         'flow "chain": parameter "n": expected an integer (int64), got "many"'),
        (["run", "chain", "--param", "m=1"],
         'flow "chain": unknown parameter "m"; this flow takes: n'),
        (["run", "nope"], 'unknown flow "nope"; this program has: chain, flaky'),
        (["run", "chain", "--params-json", "[1]"],
         "--params-json: parameters must be a JSON object"),
        (["run", "chain", "--param", "novalue"], "--param expects KEY=VALUE"),
    ]
    for args, message in cases:
        r = weir_py(BASICS, *args)
        assert r.code == 2, (args, r)
        assert message in r.stderr, (args, r)
        assert r.stdout == "", r
    r = weir_py(BASICS, "run", "chain", env={"WEIR_PARAMETERS": "{oops"})
    assert r.code == 2 and "WEIR_PARAMETERS is not valid JSON" in r.stderr, r
    r = weir_py("no/such/flows.py", "describe")
    assert r.code == 2 and "no/such/flows.py: no such file or folder" in r.stderr, r


def test_parameters_merge_env_then_json_then_assignments():
    r = weir_py(BASICS, "run", "fanout", "--params-json", '{"n": 3, "offset": 5}', "--param",
                "offset=0", env={"WEIR_PARAMETERS": '{"n": 100}', "WEIR_QUIET": "1"})
    assert (r.code, r.value) == (0, 0 + 1 + 4)


def test_typed_parameters_are_converted():
    params = str(FLOWS / "params.py")
    r = weir_py(params, "run", "structured", "--params-json",
                json.dumps({"source": {"bucket": "b", "key": "k", "attempts": 2},
                            "mode": "slow"}), env={"WEIR_QUIET": "1"})
    assert (r.code, r.value) == (0, "SLOW b False"), r
    r = weir_py(params, "run", "python_only", "--param", "since=2026-11-30",
                env={"WEIR_QUIET": "1"})
    assert (r.code, r.value) == (0, "csv 2026-11-30 date"), r
    r = weir_py(params, "run", "structured", "--params-json",
                json.dumps({"source": {"bucket": "b", "key": "k"}}))
    assert r.code == 2 and 'parameter "source"' in r.stderr and "attempts" in r.stderr, r
    r = weir_py(params, "run", "structured", "--params-json",
                json.dumps({"source": {"bucket": "b", "key": "k", "attempts": 1},
                            "mode": "medium"}))
    assert r.code == 2 and 'parameter "mode": expected one of "fast", "slow", got "medium"' \
        in r.stderr, r
    r = weir_py(params, "run", "scalars")
    assert r.code == 2 and 'missing parameter "name": expected a string' in r.stderr, r


def test_calling_tasks_and_flows_in_plain_python(tmp_path):
    script = tmp_path / "plain.py"
    script.write_text(
        "import sys\n"
        f"sys.path.insert(0, {str(FLOWS)!r})\n"
        "import basics\n"
        "print(basics.add_one(41), basics.chain(3), basics.square.submit(3).result())\n"
    )
    import subprocess
    import sys

    from conftest import base_env

    env = base_env()
    env["WEIR_QUIET"] = "1"
    p = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True,
                       timeout=30)
    assert p.returncode == 0, p.stderr
    assert p.stdout.split() == ["42", "3", "9"]


def test_folder_and_module_paths(tmp_path):
    r = weir_py(str(FLOWS), "describe")
    assert r.code == 0, r
    names = {f["name"] for f in json.loads(r.stdout)["flows"]}
    assert {"chain", "cached", "structured"} <= names
    r = weir_py("basics", "run", "chain", cwd=FLOWS, env={"WEIR_QUIET": "1"})
    assert (r.code, r.value) == (0, 10), r
    (tmp_path / "a.py").write_text("import weir\n@weir.flow\ndef same(): return 1\n")
    (tmp_path / "b.py").write_text("import weir\n@weir.flow\ndef same(): return 2\n")
    r = weir_py(str(tmp_path), "describe")
    assert r.code == 2 and "two flows are named 'same'" in r.stderr, r
    (tmp_path / "b.py").write_text("raise SystemExit('broken module')\n")
    r = weir_py(str(tmp_path / "b.py"), "describe")
    assert r.code == 2 and "cannot import the flows in" in r.stderr and "broken module" in \
        r.stderr, r


def test_describe_lists_tasks_and_subflows_with_their_options():
    r = weir_py(BASICS, "describe")
    assert r.code == 0, r
    flows = {f["name"]: f for f in json.loads(r.stdout)["flows"]}
    assert flows["parent"]["subflows"] == ["child"]
    assert [t["name"] for t in flows["fanout"]["tasks"]] == ["square", "total"]
    (t,) = flows["flaky"]["tasks"]
    assert t == {
        "name": "unreliable", "description": "", "retries": 3, "retry_delay_ms": 10,
        "backoff": 1.0, "jitter": 0.0, "max_delay_ms": 3600000, "retry_if": False,
        "timeout_ms": None, "cache": False, "cache_expiration_ms": None,
        "persist_result": False, "tags": ["io"],
    }
    (t,) = flows["not_retried"]["tasks"]
    assert t["retry_if"] is True
    assert flows["chain"]["description"] == "`n` tasks in sequence, each adding 1."


def test_results_and_cache_are_laid_out_as_the_rust_sdk_lays_them_out(tmp_path):
    marks = tmp_path / "marks"
    env = {"WEIR_RESULT_STORAGE": f"file://{tmp_path}/results", "RESULTS_TEST_MARKS": str(marks),
           "WEIR_QUIET": "1"}
    results = str(FLOWS / "results.py")
    for _ in range(2):
        r = weir_py(results, "run", "cached", "--param", "region=west", env=env)
        assert r.code == 0, r
        assert r.value == {"region": "west", "total": 400, "len": 4}
    # Cached: the task ran once; the uncached one (caching is off unless asked) twice.
    assert marks.read_text().splitlines() == ["expensive west", "uncached west",
                                              "uncached west"]
    import hashlib

    entry = tmp_path / "results" / "cache" / "expensive" / (
        hashlib.sha256(b"sales-west").hexdigest() + ".json")
    doc = json.loads(entry.read_text())
    assert doc["key"] == "sales-west" and doc["value"] == {"region": "west", "total": 400}
    assert doc["created_at"].endswith("Z")
    run_id = "0190a000-0000-7000-8000-000000000001"
    r = weir_py(results, "run", "persisted", env={**env, "WEIR_FLOW_RUN_ID": run_id})
    assert (r.code, r.value) == (0, 10), r
    stored = tmp_path / "results" / run_id / "extract" / "0.json"
    assert json.loads(stored.read_text()) == [0, 1, 2, 3, 4]
    # A resumed attempt reuses the persisted result instead of running the task again.
    before = marks.read_text().count("extract")
    r = weir_py(results, "run", "persisted", env={**env, "WEIR_FLOW_RUN_ID": run_id,
                                                  "WEIR_ATTEMPT": "2", "WEIR_RESUME": "1",
                                                  "WEIR_QUIET": "0"})
    assert (r.code, r.value) == (0, 10), r
    assert marks.read_text().count("extract") == before
    assert "extract-0 Completed: result reused from an earlier attempt (flow run attempt 2 " \
           "resumed)" in r.stderr
    r = weir_py(results, "run", "cached", env={**env, "WEIR_RESULT_STORAGE": "ftp://nowhere"})
    assert r.code == 0, "caching must not fail a task when storage is unusable"
    assert os.path.exists(tmp_path / "results")


def test_a_broken_launch_environment_never_starts_a_run_of_its_own():
    run_id = "0190a000-0000-7000-8000-000000000001"
    for env, message in [
        ({"WEIR_FLOW_RUN_ID": "nope"}, "invalid WEIR_FLOW_RUN_ID='nope': a flow run id (UUID)"),
        ({"WEIR_FLOW_RUN_ID": run_id, "WEIR_ATTEMPT": "0"},
         "invalid WEIR_ATTEMPT='0': a positive integer"),
        ({"WEIR_FLOW_RUN_ID": run_id, "WEIR_RESUME": "yes"}, "invalid WEIR_RESUME='yes': 1 or 0"),
    ]:
        r = weir_py(BASICS, "run", "chain", env=env)
        assert r.code == 1, r
        assert f"flow 'chain' could not start: {message}; this process was launched with a " \
               "broken launch environment" in r.stderr, r
        assert "add_one" not in r.stderr and r.stdout == ""


def test_tick_at_reads_the_launch_environment():
    import subprocess
    import sys

    from conftest import base_env

    code = "import weir; t = weir.tick_at(); print(t.isoformat() if t else None)"

    def run(value):
        env = base_env()
        env.pop("WEIR_TICK_AT", None)
        if value is not None:
            env["WEIR_TICK_AT"] = value
        return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                              text=True, timeout=60)

    assert run(None).stdout.strip() == "None"
    assert run("2026-03-29T03:00:00+02:00").stdout.strip() == "2026-03-29T01:00:00+00:00"
    bad = run("soon")
    assert bad.returncode != 0 and "WEIR_TICK_AT='soon'" in bad.stderr, bad
