"""Python flows deployed with `weir deploy` and launched by a real agent: Quick run (the same
API call the UI's form makes), cancellation, retry from failed with persisted results."""

import json
import subprocess
import sys
import time

from conftest import FLOWS, SDK_SRC, base_env, binary, result_of


def deploy(server, tmp_path, body: str, project: str = "pytest") -> subprocess.CompletedProcess:
    toml = tmp_path / "weir.toml"
    toml.write_text(body)
    env = base_env()
    env.update(WEIR_API_URL=server.url, WEIR_API_KEY=server.key)
    return subprocess.run([str(binary("weir")), "deploy", "-f", str(toml), "--project", project],
                          env=env, capture_output=True, text=True, timeout=60)


def header(extra_env: str = "") -> str:
    return f"""
[defaults]
command = [{json.dumps(sys.executable)}, "-m", "weir", {json.dumps(str(FLOWS))}]
env = {{ PYTHONPATH = {json.dumps(str(SDK_SRC))}{extra_env} }}
"""


def quick_run(server, deployment: str, parameters=None, project: str = "pytest") -> str:
    run = server.post("/api/v1/flow_runs", {"project": project, "deployment": deployment,
                                            "parameters": parameters or {}})
    return run["id"]


def test_deploy_quick_run_and_see_task_runs_logs_and_result(server, agent, tmp_path):
    p = deploy(server, tmp_path, header() + """
[deployments.py-etl]
flow = "fanout"
parameters = { n = 12 }

[deployments.py-flaky]
flow = "flaky"
""")
    assert p.returncode == 0, p.stderr
    assert "created  pytest/py-etl" in p.stdout
    spec = server.get("/api/v1/projects/pytest/deployments/py-etl")["spec"]
    assert spec["parameter_schema"]["properties"]["n"] == {
        "type": "integer", "format": "int64", "default": 10}
    run_id = quick_run(server, "py-etl", {"offset": 1})
    run = server.wait_state(run_id, {"Completed", "Failed", "Crashed"}, timeout=60)
    assert run["state"] == "Completed", run
    assert result_of(run) == sum(x * x + 1 for x in range(12))
    tasks = server.task_runs(run_id)
    assert sorted(t["task"] for t in tasks) == ["square"] * 12 + ["total"]
    run_id = quick_run(server, "py-flaky")
    run = server.wait_state(run_id, {"Completed", "Failed", "Crashed"}, timeout=60)
    assert (run["state"], result_of(run)) == ("Completed", "ok after 3"), run
    (t,) = server.task_runs(run_id)
    assert t["attempt"] == 3
    assert any(line["message"] == "succeeded on attempt 3" and line["task_run_id"] == t["id"]
               for line in server.logs(run_id))
    # Deploying again changes nothing.
    p = deploy(server, tmp_path, (tmp_path / "weir.toml").read_text())
    assert p.returncode == 0 and "unchanged  pytest/py-etl" in p.stdout, p.stdout


def test_the_server_refuses_bad_parameters_before_anything_runs(server, agent, tmp_path):
    p = deploy(server, tmp_path, header() + """
[deployments.py-bad]
flow = "fanout"
parameters = { n = "twelve" }
""")
    assert p.returncode == 2, p
    assert 'parameter "n"' in p.stderr and "nothing was deployed" in p.stderr


def test_cancelling_a_running_flow(server, agent, tmp_path):
    p = deploy(server, tmp_path, header() + """
[deployments.py-slow]
flow = "slow"
""")
    assert p.returncode == 0, p.stderr
    run_id = quick_run(server, "py-slow", {"seconds": 30})
    server.wait_state(run_id, "Running", timeout=30)
    deadline = time.monotonic() + 20
    while not server.task_runs(run_id) and time.monotonic() < deadline:
        time.sleep(0.1)
    server.post(f"/api/v1/flow_runs/{run_id}/cancel")
    run = server.wait_state(run_id, {"Cancelled", "Crashed", "Failed", "Completed"}, timeout=30)
    assert run["state"] == "Cancelled", run
    (t,) = server.task_runs(run_id)
    assert (t["task"], t["state"]) == ("nap", "Cancelled")


def test_retry_from_failed_reuses_persisted_results(server, agent, tmp_path):
    marks = tmp_path / "marks"
    extra = (f', RESULTS_TEST_MARKS = {json.dumps(str(marks))}, '
             f'RESULTS_TEST_FAIL_IF = {json.dumps(str(tmp_path / "fail"))}')
    (tmp_path / "fail").write_text("until removed")
    p = deploy(server, tmp_path, header(extra) + """
[deployments.py-persisted]
flow = "persisted"
""")
    assert p.returncode == 0, p.stderr
    run_id = quick_run(server, "py-persisted", {"n": 4})
    run = server.wait_state(run_id, {"Completed", "Failed", "Crashed"}, timeout=60)
    assert run["state"] == "Failed", run
    assert "the warehouse is down" in run["state_message"]
    (tmp_path / "fail").unlink()
    server.post(f"/api/v1/flow_runs/{run_id}/retry", {"from_failed": True})
    run = server.wait_state(run_id, {"Completed"}, timeout=60)
    assert (result_of(run), run["attempt"]) == (6, 2)
    assert marks.read_text().splitlines() == ["extract 4", "load", "load"]
    extracts = [t for t in server.task_runs(run_id) if t["task"] == "extract"]
    assert [t["state"] for t in extracts] == ["Completed", "Completed"]
    assert extracts[1]["message"].startswith("result reused from an earlier attempt")
    location = extracts[1]["result_location"]
    assert location.startswith("file://") and location.endswith(f"/{run_id}/extract/0.json")
    assert json.loads(open(location[len("file://"):]).read()) == [0, 1, 2, 3]


def test_run_deployment_waits_for_the_other_run(server, agent, tmp_path):
    from conftest import weir_py

    p = deploy(server, tmp_path, header() + """
[deployments.py-etl]
flow = "fanout"
parameters = { n = 12 }
""")
    assert p.returncode == 0, p.stderr
    r = weir_py(str(FLOWS / "basics.py"), "run", "orchestrate", "--param", "n=4", server=server,
                timeout=120)
    assert r.code == 0, r
    assert r.value["total"] == sum(x * x for x in range(4))
    other = server.wait_state(r.value["started"], {"Completed"}, timeout=60)
    assert (other["deployment"], result_of(other)) == ("py-etl", 0)
    assert any("started flow run" in line["message"] for line in server.logs(r.run_id))
    r = weir_py(str(FLOWS / "basics.py"), "run", "orchestrate", "--param",
                "deployment=pytest/nope", server=server)
    assert r.code == 1 and "cannot start a run of pytest/nope" in r.stderr, r


def test_a_failed_attempt_with_a_retry_left_says_so(server, agent, tmp_path):
    """The flow process of an attempt that fails while a retry remains says the attempt failed
    and when the retry is due, not that it lost its run or was cancelled by SIGTERM."""
    p = deploy(server, tmp_path, header() + """
[deployments.py-fails-retried]
flow = "fails"
retries = 1
retry_delay = "1s"
""")
    assert p.returncode == 0, p.stderr
    run_id = quick_run(server, "py-fails-retried")
    run = server.wait_state(run_id, {"Completed", "Failed", "Crashed"}, timeout=60)
    assert (run["state"], run["attempt"], run["retries_used"]) == ("Failed", 2, 1), run
    deadline = time.monotonic() + 20
    while True:
        lines = [line["message"] for line in server.logs(run_id)]
        errors = [m for m in lines if "the source table 'orders' does not exist" in m]
        said = [m for m in lines if "attempt 1 failed; retry 1 of 1 is scheduled at " in m]
        if (len(errors) >= 2 and said) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert len(said) == 1, lines
    assert "(Failed reported)" in said[0], said
    for wrong in ("no longer held", "cancelled by SIGTERM", "cancellation requested",
                  "retry 2 of"):
        assert not [m for m in lines if wrong in m], (wrong, lines)
