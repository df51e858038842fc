"""The SDK tracked by a real `weir server`: every task run and log line is on the server when
the process exits, states and attempts are right, secrets never leave the process."""

import signal
import threading
import time

from conftest import FLOWS, result_of, weir_py

BASICS = str(FLOWS / "basics.py")


def test_every_task_run_of_a_1000_task_chain_is_on_the_server_at_exit(server, project):
    r = weir_py(BASICS, "run", "chain", "--param", "n=1000", server=server)
    assert r.code == 0, r
    assert r.value == 1000
    run = server.run(r.run_id)
    assert (run["state"], result_of(run), run["project"]) == ("Completed", 1000, "pytest")
    tasks = server.task_runs(r.run_id)
    assert len(tasks) == 1000
    assert {(t["task"], t["state"], t["attempt"]) for t in tasks} == {("add_one", "Completed", 1)}
    assert all(t["started_at"] and t["ended_at"] for t in tasks)


def test_retries_states_and_logs_per_task_run(server, project):
    r = weir_py(BASICS, "run", "flaky", server=server)
    assert r.code == 0, r
    (t,) = server.task_runs(r.run_id)
    assert (t["state"], t["attempt"]) == ("Completed", 3)
    detail = server.get(f"/api/v1/task_runs/{t['id']}")
    states = [(h["state"], h["attempt"]) for h in detail["history"]]
    assert states == [("Running", 1), ("AwaitingRetry", 1), ("Running", 2),
                      ("AwaitingRetry", 2), ("Running", 3), ("Completed", 3)]
    assert "transient failure on attempt 1; retry in 10ms" in detail["history"][1]["message"]
    (line,) = server.logs(r.run_id)
    assert (line["task_run_id"], line["level"], line["message"]) == (
        t["id"], "info", "succeeded on attempt 3")


def test_a_failing_task_fails_the_flow_run(server, project):
    r = weir_py(BASICS, "run", "fails", server=server)
    assert r.code == 1, r
    run = server.run(r.run_id)
    assert run["state"] == "Failed"
    assert run["state_message"] == (
        "task 'load_orders' failed: RuntimeError: the source table 'orders' does not exist")
    (t,) = server.task_runs(r.run_id)
    assert (t["state"], t["message"]) == (
        "Failed", "RuntimeError: the source table 'orders' does not exist")


def test_a_clock_stepping_back_mid_task_still_completes_the_task_run(server, project):
    r = weir_py(BASICS, "run", "clock_back", "--param", "hours=1", server=server)
    assert r.code == 0, r
    assert server.run(r.run_id)["state"] == "Completed"
    (t,) = server.task_runs(r.run_id)
    assert (t["task"], t["state"]) == ("step_clock_back", "Completed"), t
    assert t["ended_at"] >= t["started_at"], t
    detail = server.get(f"/api/v1/task_runs/{t['id']}")
    assert [h["state"] for h in detail["history"]] == ["Running", "Completed"], detail


def test_subflows_are_child_runs(server, project):
    r = weir_py(BASICS, "run", "parent", "--param", "x=5", server=server)
    assert r.code == 0, r
    children = [x for x in server.runs(flow="child") if x["parent_flow_run_id"] == r.run_id]
    assert len(children) == 2
    assert sorted(result_of(c) for c in children) == [6, 16]
    for c in children:
        assert c["state"] == "Completed"
        assert [t["task"] for t in server.task_runs(c["id"])] == ["add_one"]
    assert server.task_runs(r.run_id) == []


def test_mapped_task_runs_carry_their_index(server, project):
    r = weir_py(BASICS, "run", "fanout", "--param", "n=20", server=server)
    assert r.code == 0, r
    tasks = server.task_runs(r.run_id)
    squares = [t for t in tasks if t["task"] == "square"]
    assert sorted(t["map_index"] for t in squares) == list(range(20))
    assert [t["task"] for t in tasks if t["task"] == "total"] == ["total"]


def test_secret_values_never_reach_the_server(server, project):
    secret = "s3cr3t-canary-value"
    r = weir_py(BASICS, "run", "leaky", "--param", f"note=the token is {secret}", server=server,
                env={"CANARY": secret, "WEIR_SECRET_VARS": "CANARY"})
    assert r.code == 1, r
    run = server.run(r.run_id)
    (t,) = server.task_runs(r.run_id)
    logs = server.logs(r.run_id)
    for text in [str(run), str(t), str(logs), str(server.get(f"/api/v1/task_runs/{t['id']}"))]:
        assert secret not in text
    assert run["parameters"] == {"note": "the token is ***"}
    assert "PermissionError: token *** was refused" in run["state_message"]
    assert logs[0]["message"] == "using token ***"


def test_bad_parameters_exit_2_and_create_no_run(server, project):
    before = len(server.runs(flow="chain"))
    r = weir_py(BASICS, "run", "chain", "--param", "n=lots", server=server)
    assert r.code == 2, r
    assert 'parameter "n": expected an integer (int64), got "lots"' in r.stderr
    assert len(server.runs(flow="chain")) == before


def test_async_flow_is_tracked(server, project):
    r = weir_py(BASICS, "run", "async_flow", "--param", "n=3", server=server)
    assert r.code == 0, r
    tasks = server.task_runs(r.run_id)
    assert sorted(t["task"] for t in tasks) == ["add_one"] + ["async_double"] * 4
    assert {t["state"] for t in tasks} == {"Completed"}


def test_a_server_restart_mid_run_loses_no_report(server, project):
    """The server is killed (SIGKILL) while the flow runs and comes back on the same address:
    the SDK buffers and retries, and every task run and the final state arrive."""
    results = {}

    def run():
        results["r"] = weir_py(BASICS, "run", "ticking", "--param", "n=300", server=server,
                               timeout=120)

    before = {r["id"] for r in server.runs()}
    t = threading.Thread(target=run)
    t.start()
    # Kill it once the run is on the server and running (a loaded machine can take seconds
    # to start the interpreter), so the SDK has reports in flight to buffer.
    deadline = time.monotonic() + 60
    while not any(r["flow"] == "ticking" and r["state"] == "Running" and r["id"] not in before
                  for r in server.runs()):
        assert time.monotonic() < deadline, "the run did not start within 60 s"
        time.sleep(0.05)
    time.sleep(0.3)
    server.stop(signal.SIGKILL)
    time.sleep(1.5)
    server.start()
    t.join(120)
    r = results["r"]
    assert r.code == 0, r
    assert r.value == sum(range(300))
    assert "buffering and retrying" in r.stderr
    run = server.wait_state(r.run_id, "Completed", timeout=10)
    assert result_of(run) == sum(range(300))
    tasks = server.task_runs(r.run_id)
    assert len(tasks) == 300
    assert {t["state"] for t in tasks} == {"Completed"}


def test_an_unreachable_server_leaves_the_final_state_in_the_outcome_file(tmp_path):
    """Under an agent (`WEIR_FLOW_RUN_ID`, `WEIR_OUTCOME_FILE`), a server that stays
    unreachable past `WEIR_FLUSH_TIMEOUT_S` does not fail the run: its final state is left
    where the agent delivers it from."""
    import json
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}"
    outcome = tmp_path / "outcome.json"
    run_id = "0190a000-0000-7000-8000-0000000000aa"
    r = weir_py(BASICS, "run", "chain", "--param", "n=3", env={
        "WEIR_API_URL": dead, "WEIR_API_KEY": "k", "WEIR_FLOW_RUN_ID": run_id,
        "WEIR_ATTEMPT": "2", "WEIR_OUTCOME_FILE": str(outcome), "WEIR_FLUSH_TIMEOUT_S": "1"})
    assert r.code == 0, r
    assert r.value == 3
    assert "the agent delivers the final state" in r.stderr
    doc = json.loads(outcome.read_text())
    assert (doc["state"], doc["attempt"], result_of(doc)) == ("Completed", 2, 3)
    assert doc["transition_id"]
