"""Where run records go: `LocalTracker` (terminal lines and an in-memory record) or
`HttpTracker` (a Weir server).

The task path only puts a tuple on a queue (`Tracker.put`). Items are

* `(REPORT, call, state, at, attempt, message, result_location)` — a task run entered a state
  (`call` is the task run's call tuple, `_task.Call`: id counter, flow run, task, map index, tags, keys);
* `(LOG, flow_run_id, task_seq, at, level, message, attempt)` — a log line of that attempt of
  the flow run;
* `(FLUSH, threading.Event)` — set once everything before it is handled.

`HttpTracker` has one background thread that turns items into JSON and sends them in batches
(at most 5,000 per request, after lingering 20 ms for more) to `/api/v1/task_runs/batch` and
`/api/v1/logs/batch`, retrying network trouble and 5xx answers with backoff while items keep
queueing (each log line carries its attempt, the process's log stream — random, picked once per
process — and its number in it, given by the sender thread, so a batch sent again after an
answer was lost is stored once), and one
heartbeat thread per process that keeps the leases of its flow runs fresh and stops the process
with SIGTERM when the server asks to cancel. `finish_flow_run` waits until everything reported
before it is on the server (at most `WEIR_FLUSH_TIMEOUT_S`, default 120 s), then proposes the
final state — so when the process exits, the server has every task run and log line.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import threading
import time
from typing import Any, Dict, List, Optional, Tuple

from . import _util
from ._http import ApiError, Client, TransportError, key_from_env

REPORT, LOG, FLUSH = 0, 1, 2
MAX_BATCH = 5_000
LINGER = 0.020
LEVELS = {10: "debug", 20: "info", 30: "warn", 40: "error", 50: "error"}


class Started:
    """The identity a tracker gave a starting flow run."""

    __slots__ = ("flow_run_id", "attempt", "resume")

    def __init__(self, flow_run_id: str, attempt: int = 1, resume: bool = False):
        self.flow_run_id = flow_run_id
        self.attempt = attempt
        self.resume = resume


class LaunchEnvError(Exception):
    """A launch-environment variable whose value does not parse (docs/contracts.md)."""

    _weir_plain = True

    def __init__(self, var: str, value: str, expected: str):
        super().__init__(f"invalid {var}={value!r}: {expected}")


def _assigned_from_env() -> Optional[Started]:
    """The run an agent launched this process for (`WEIR_FLOW_RUN_ID`, `WEIR_ATTEMPT`,
    `WEIR_RESUME`); None when none was. A malformed value is a `LaunchEnvError`, never a
    silent fallback to a run of its own."""
    raw = os.environ.get("WEIR_FLOW_RUN_ID", "").strip()
    if not raw:
        return None
    import uuid

    try:
        uuid.UUID(raw)
    except ValueError:
        raise LaunchEnvError("WEIR_FLOW_RUN_ID", raw, "a flow run id (UUID)") from None
    attempt = 1
    a = os.environ.get("WEIR_ATTEMPT", "").strip()
    if a:
        if not a.isdigit() or int(a) < 1:
            raise LaunchEnvError("WEIR_ATTEMPT", a, "a positive integer")
        attempt = int(a)
    r = os.environ.get("WEIR_RESUME", "").strip()
    if r not in ("", "0", "1"):
        raise LaunchEnvError("WEIR_RESUME", r, "1 or 0")
    return Started(raw.lower(), attempt, r == "1")


class Misconfigured:
    """A tracker that refuses to start any flow run: the process was launched with a broken
    launch environment and must not start a run of its own."""

    def __init__(self, reason: str):
        self.reason = reason
        self.put = lambda item: None

    def start_flow_run(self, *args, **kwargs):
        e = Exception(f"{self.reason}; this process was launched with a broken launch "
                      "environment and will not start a run of its own (check what launched it)")
        e._weir_plain = True  # type: ignore[attr-defined]
        raise e

    def finish_flow_run(self, *args) -> None:
        pass

    def flush(self) -> bool:
        return True


def _clock(at: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(at)) + f".{int((at % 1) * 1000):03d}"


class Records:
    """Everything a `LocalTracker` recorded: flow runs, task runs (folded from reports), logs."""

    def __init__(self, flows: List[dict], items: List[tuple]):
        self.flow_runs = flows
        self.task_runs: List[dict] = []
        self.logs: List[dict] = []
        by_seq: Dict[int, dict] = {}
        for it in items:
            if it[0] == REPORT:
                call = it[1]
                rec = by_seq.get(call[0])
                if rec is None:
                    rec = by_seq[call[0]] = {
                        "id": _util.seq_id(call[0]),
                        "flow_run_id": call[1],
                        "task": call[2],
                        "map_index": call[3],
                        "history": [],
                    }
                    self.task_runs.append(rec)
                rec["history"].append(
                    {"state": it[2], "attempt": it[4], "message": it[5], "location": it[6]}
                )
                rec["state"] = it[2]
                rec["attempt"] = it[4]
                rec["message"] = it[5]
            elif it[0] == LOG:
                self.logs.append(
                    {
                        "flow_run_id": it[1],
                        "task_run_id": None if it[2] is None else _util.seq_id(it[2]),
                        "level": LEVELS.get(it[4], "info"),
                        "message": it[5],
                    }
                )

    def task_runs_of(self, task: str) -> List[dict]:
        return [t for t in self.task_runs if t["task"] == task]


class LocalTracker:
    """The default tracker: one compact line per state change and log line on stderr (unless
    `WEIR_QUIET=1`) and an in-memory record (`records()`)."""

    def __init__(self, terminal: bool = True, assigned: Optional[Started] = None):
        self.terminal = terminal
        self._assigned = assigned
        self._items: List[tuple] = []
        self._flows: List[dict] = []
        self._labels: Dict[int, str] = {}
        self._counters: Dict[Tuple[str, str], int] = {}
        self._names: Dict[str, str] = {}
        self._lock = threading.Lock()
        self.put = self._items.append if not terminal else self._show_and_keep

    @classmethod
    def from_env(cls, assigned: Optional[Started] = None) -> "LocalTracker":
        return cls(not _util.env_flag("WEIR_QUIET"), assigned)

    # -- terminal ------------------------------------------------------------------------
    def _label(self, call) -> str:
        label = self._labels.get(call[0])
        if label is None:
            key = (call[1], call[2])
            n = self._counters.get(key, 0)
            self._counters[key] = n + 1
            label = self._labels[call[0]] = f"{call[2]}-{n}"
        return label

    def show(self, item: tuple) -> None:
        """Prints one item as a terminal line."""
        kind = item[0]
        with self._lock:
            if kind == REPORT:
                msg = f": {item[5]}" if item[5] else ""
                line = f"{_clock(item[3])} {self._label(item[1])} {item[2]}{msg}"
            elif kind == LOG:
                who = self._labels.get(item[2]) if item[2] is not None else None
                who = who or self._names.get(item[1], item[1])
                level = LEVELS.get(item[4], "info").upper()
                line = f"{_clock(item[3])} {who} {level} {item[5]}"
            else:
                return
        _util.say(line)

    def _show_and_keep(self, item: tuple) -> None:
        self.show(item)
        self._items.append(item)

    # -- flow runs -----------------------------------------------------------------------
    def start_flow_run(
        self, flow: str, parameters: dict, parent: Optional[str], parent_task: Optional[int],
        started: Optional[Started] = None,
    ) -> Started:
        if started is None:
            if parent is None and self._assigned is not None:
                started, self._assigned = self._assigned, None
            else:
                started = Started(_util.uuid7())
        self._names[started.flow_run_id] = flow
        if self.terminal:
            sub = f", subflow of {parent}" if parent else ""
            resume = ", resuming" if started.resume else ""
            _util.say(f"{_clock(time.time())} {flow} Running (flow run {started.flow_run_id}, "
                      f"attempt {started.attempt}{resume}{sub})")
        self._flows.append(
            {
                "id": started.flow_run_id,
                "flow": flow,
                "attempt": started.attempt,
                "parameters": parameters,
                "parent_flow_run_id": parent,
                "state": "Running",
                "message": None,
                "result": None,
            }
        )
        return started

    def finish_flow_run(self, flow_run_id: str, attempt: int, state: str, message, result) -> None:
        if self.terminal:
            msg = f": {message}" if message else ""
            name = self._names.get(flow_run_id, flow_run_id)
            _util.say(f"{_clock(time.time())} {name} {state}{msg}")
        for f in reversed(self._flows):
            if f["id"] == flow_run_id:
                f.update(state=state, message=message, result=result)
                break

    def flush(self) -> bool:
        return True

    def records(self) -> Records:
        return Records(list(self._flows), list(self._items))


def _persist_flow_result(flow_run_id: str, result) -> Dict[str, Any]:
    """Writes a flow run's result to `{flow_run_id}/result.json` in result storage (the Rust
    SDK's layout); returns the `{"location", "size"}` the server keeps."""
    from . import _context

    store = _context.results()
    key = f"{flow_run_id}/result.json"
    data = json.dumps(result, separators=(",", ":")).encode()
    store.put(key, data)
    return {"location": store.location(key), "size": len(data)}


def _retry(what: str, fn, tries: int = 20, limit: Optional[float] = None):
    """Calls `fn` until it succeeds or fails for a reason retrying cannot fix (about a minute
    of retries for network trouble, at most `limit` seconds when given)."""
    delay = 0.1
    deadline = None if limit is None else time.monotonic() + limit
    for n in range(tries + 1):
        try:
            return fn()
        except (ApiError, TransportError) as e:
            late = deadline is not None and time.monotonic() + delay > deadline
            if not e.transient or n == tries or late:
                raise
            if n == 0:
                _util.say(f"weir: cannot {what} yet ({e}); retrying")
            time.sleep(delay)
            delay = min(delay * 2, 5.0)


class HttpTracker:
    """Reports to a Weir server (and prints like `LocalTracker` unless quiet or launched by
    an agent, whose own log streaming shows the process's output)."""

    def __init__(self, client: Client, project: str, local: LocalTracker,
                 assigned: Optional[Started]):
        self.client = client
        self.project = project
        self.local = local
        self._assigned = assigned
        self._control = client.clone()
        self._control_lock = threading.Lock()
        self.redactor = _util.Redactor.from_env()
        self._q: "queue.SimpleQueue[tuple]" = queue.SimpleQueue()
        self.put = self._q.put
        self._sender: Optional[threading.Thread] = None
        self._hb = _Heartbeats(client.clone())
        # This process's log stream (a random 32-bit number, like the Rust SDK's) and the number
        # of its next line: with the attempt they make each line idempotent on the server.
        # Numbered by the sender thread only.
        self.log_stream = int.from_bytes(os.urandom(4), "big")
        self.log_seq = 0
        path = os.environ.get("WEIR_OUTCOME_FILE", "").strip()
        self._outcome = (assigned.flow_run_id, path) if assigned is not None and path else None

    @classmethod
    def from_env(cls, local: LocalTracker):
        url = os.environ.get("WEIR_API_URL", "").strip()
        client = Client(url, key_from_env())
        project = os.environ.get("WEIR_PROJECT", "").strip() or "default"
        assigned = local._assigned
        local._assigned = None
        if assigned is not None:
            local = LocalTracker(False)
        return cls(client, project, local, assigned)

    def _ensure_sender(self) -> None:
        if self._sender is None or not self._sender.is_alive():
            self._sender = threading.Thread(
                target=_send_loop, args=(self,), name="weir-sender", daemon=True
            )
            self._sender.start()

    def start_flow_run(self, flow: str, parameters: dict, parent: Optional[str],
                       parent_task: Optional[int]) -> Started:
        self._ensure_sender()
        top_level = parent is None
        started = None
        if top_level and self._assigned is not None:
            started, self._assigned = self._assigned, None
        if started is None:
            body: Dict[str, Any] = {
                "project": self.project,
                "flow": flow,
                "parameters": self.redactor.json(parameters),
                "state": "Running",
            }
            if parent:
                body["parent_flow_run_id"] = parent
            with self._control_lock:
                run = _retry("create the flow run",
                             lambda: self._control.post("/api/v1/flow_runs", body))
            started = Started(run["id"], max(1, int(run.get("attempt") or 1)))
        self.local.start_flow_run(flow, parameters, parent, parent_task, started)
        self._hb.add(started.flow_run_id, started.attempt, top_level)
        return started

    def flush(self) -> bool:
        """Waits until everything put so far is on the server (bounded by
        `WEIR_FLUSH_TIMEOUT_S`, default 120 s)."""
        self._ensure_sender()
        done = threading.Event()
        self.put((FLUSH, done))
        return done.wait(_util.flush_limit())

    def _write_outcome(self, flow_run_id: str, body: dict) -> None:
        """Writes the final state of the run an agent launched this process for where the
        agent looks for it (`WEIR_OUTCOME_FILE`), before it is sent: if the server cannot be
        reached before this process exits, the agent delivers it."""
        if self._outcome is None or self._outcome[0] != flow_run_id:
            return
        path = self._outcome[1]
        tmp = path + ".tmp"
        try:
            with open(tmp, "w") as f:
                json.dump(body, f)
            os.replace(tmp, path)
        except OSError as e:
            _util.say(f"weir: cannot write the outcome file {path}: {e}")

    def finish_flow_run(self, flow_run_id: str, attempt: int, state: str, message, result) -> None:
        if not self.flush():
            _util.say("weir: some task runs or log lines could not be sent to the server")
        body = {
            "state": state,
            "attempt": attempt,
            "transition_id": _util.uuid7(),
        }
        if message is not None:
            body["message"] = self.redactor.text(message)
        if result is not None:
            # The server keeps only where the result is and its size, never its bytes.
            try:
                body["result"] = _persist_flow_result(flow_run_id, result)
            except Exception as e:
                body["state"] = "Failed"
                body["message"] = self.redactor.text(
                    f"could not persist the flow's result: {_util.describe_error(e)}")
        self._hb.remove(flow_run_id)
        self._write_outcome(flow_run_id, body)
        try:
            with self._control_lock:
                now = _retry("report the final state",
                             lambda: self._control.post(f"/api/v1/flow_runs/{flow_run_id}/state",
                                                        body),
                             tries=1000, limit=_util.flush_limit())
            if isinstance(now, dict) and now.get("state") == "AwaitingRetry":
                _util.say(f"weir: {after_attempt(now, attempt)} ({body['state']} reported)")
        except ApiError as e:
            if e.status == 409:
                _util.say(f"weir: the server kept its own final state: {e.message}")
            elif e.transient and self._outcome is not None:
                _util.say("weir: the server stayed unreachable; the agent delivers the final state")
            else:
                raise
        except TransportError:
            if self._outcome is None:
                raise
            _util.say("weir: the server stayed unreachable; the agent delivers the final state")
        finally:
            self.local.finish_flow_run(flow_run_id, attempt, state, message, result)


_FINAL = frozenset(("Completed", "Failed", "Cancelled", "Crashed"))


def _report_json(it: tuple, redact, last: Dict[int, float]) -> dict:
    """A task-run report as the API takes it. `last` holds when each unfinished task run's
    last report was stamped: a report is never stamped before the one it follows, so a clock
    stepping back gives a tie, which the server breaks by storage order. (The server keeps the
    report latest in time; an earlier stamp would be ignored and the task run keep its state
    from before the step.)"""
    call = it[1]
    at = it[3]
    prev = last.get(call[0])
    if prev is not None and prev > at:
        at = prev
    if it[2] in _FINAL:
        last.pop(call[0], None)
    else:
        last[call[0]] = at
    d: Dict[str, Any] = {
        "id": _util.seq_id(call[0]),
        "flow_run_id": call[1],
        "task": call[2],
        "state": it[2],
        "at": _util.rfc3339(at),
        "attempt": it[4],
    }
    if it[5] is not None:
        d["message"] = redact(it[5]) if redact else it[5]
    if call[6] is not None:
        d["inputs_fingerprint"] = call[6]
    if call[5] is not None:
        d["cache_key"] = call[5]
    if it[6] is not None:
        d["result_location"] = it[6]
    if call[3] is not None:
        d["map_index"] = call[3]
    if call[4]:
        d["tags"] = list(call[4])
    return d


def _log_json(it: tuple, redact, stream: int, seq: int) -> dict:
    d: Dict[str, Any] = {
        "flow_run_id": it[1],
        "at": _util.rfc3339(it[3]),
        "level": LEVELS.get(it[4], "info"),
        "message": redact(it[5]) if redact else it[5],
        "stream": stream,
        "seq": seq,
    }
    if len(it) > 6 and it[6] is not None:
        d["attempt"] = int(it[6])
    if it[2] is not None:
        d["task_run_id"] = _util.seq_id(it[2])
    return d


def _send_loop(tracker: HttpTracker) -> None:
    """The sender thread: batches queued items and ships them until the process ends."""
    q = tracker._q
    client = tracker.client
    redact = tracker.redactor.text if tracker.redactor else None
    show = tracker.local.show if tracker.local.terminal else None
    get, get_nowait, Empty = q.get, q.get_nowait, queue.Empty
    last: Dict[int, float] = {}
    while True:
        batch = [get()]
        deadline = time.monotonic() + LINGER
        flushing = batch[0][0] == FLUSH
        while len(batch) < MAX_BATCH * 2:
            try:
                it = get_nowait()
            except Empty:
                if flushing:
                    break
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                try:
                    it = get(timeout=left)
                except Empty:
                    break
            batch.append(it)
            if it[0] == FLUSH:
                flushing = True
        reports, logs, acks = [], [], []
        for it in batch:
            kind = it[0]
            if kind == REPORT:
                reports.append(_report_json(it, redact, last))
            elif kind == LOG:
                logs.append(_log_json(it, redact, tracker.log_stream, tracker.log_seq))
                tracker.log_seq += 1
            else:
                acks.append(it[1])
                continue
            if show is not None:
                show(it if redact is None else _redacted_item(it, redact))
        for i in range(0, len(reports), MAX_BATCH):
            _send(client, "task runs", "/api/v1/task_runs/batch",
                  {"reports": reports[i:i + MAX_BATCH]})
        for i in range(0, len(logs), MAX_BATCH):
            _send(client, "log lines", "/api/v1/logs/batch", {"lines": logs[i:i + MAX_BATCH]})
        for a in acks:
            a.set()


def _redacted_item(it: tuple, redact) -> tuple:
    if it[0] == REPORT and it[5] is not None:
        return it[:5] + (redact(it[5]),) + it[6:]
    if it[0] == LOG:
        return it[:5] + (redact(it[5]),) + it[6:]
    return it


def _send(client: Client, what: str, path: str, body: dict) -> None:
    """Sends one batch, retrying network trouble with backoff for as long as it takes; a
    batch the server refuses is reported and dropped."""
    raw = json.dumps(body, separators=(",", ":")).encode()
    delay, warned = 0.05, False
    while True:
        try:
            client.post(path, raw=raw)
            if warned:
                _util.say(f"weir: {client.base} reachable again; {what} delivered")
            return
        except (ApiError, TransportError) as e:
            if not e.transient:
                _util.say(f"weir: the server refused {what}: {e}")
                return
            if not warned:
                _util.say(f"weir: cannot reach {client.base} to send {what} ({e}); buffering "
                          "and retrying")
                warned = True
            time.sleep(delay)
            delay = min(delay * 2, 2.0)


# Why this process stopped itself because its attempt is over (not a cancellation): the
# signal handler says this instead of "cancelled by SIGTERM".
STOP_REASON: List[str] = []


def after_attempt(run: dict, attempt: int) -> str:
    """What became of a run after its attempt `attempt` ended, as one sentence (the Rust SDK's
    `weir_core::why::after_attempt`)."""
    state = run.get("state")
    at = str(run.get("scheduled_at", ""))
    if state == "AwaitingRetry" and run.get("attempt") == attempt:
        return (f"attempt {attempt} failed; retry {run.get('retries_used')} of "
                f"{run.get('retries')} is scheduled at {at}")
    if state in ("Completed", "Failed", "Crashed", "Cancelled"):
        msg = run.get("state_message")
        return f"attempt {attempt} is over: the run ended {state}" + (f": {msg}" if msg else "")
    if state in ("Scheduled", "Late", "AwaitingRetry"):
        return f"attempt {attempt} is over: the run is {state}, due at {at}"
    return f"attempt {attempt} is over: the run is {state} in attempt {run.get('attempt')}"


class _Heartbeats:
    """Heartbeats every flow run this process tracks: at once, then at least three times per
    lease the server reports (at most every 5 s). A top-level run the server wants cancelled
    (or no longer held by this process) stops the process with SIGTERM."""

    def __init__(self, client: Client, every: float = 5.0):
        self.client = client
        self.every = every
        self.runs: Dict[str, Tuple[int, bool]] = {}
        self.cond = threading.Condition()
        self.thread: Optional[threading.Thread] = None
        self.due: Dict[str, float] = {}

    def add(self, run_id: str, attempt: int, top_level: bool) -> None:
        with self.cond:
            self.runs[run_id] = (attempt, top_level)
            self.due[run_id] = 0.0
            if self.thread is None or not self.thread.is_alive():
                self.thread = threading.Thread(target=self._loop, name="weir-heartbeat",
                                               daemon=True)
                self.thread.start()
            self.cond.notify()

    def remove(self, run_id: str) -> None:
        with self.cond:
            self.runs.pop(run_id, None)
            self.due.pop(run_id, None)

    def _what_became_of(self, run_id: str, attempt: int) -> str:
        try:
            detail = self.client.get(f"/api/v1/flow_runs/{run_id}") or {}
            return after_attempt(detail.get("run") or {}, attempt)
        except (ApiError, TransportError):
            return f"attempt {attempt} is over: the server ended it"

    def _loop(self) -> None:
        beat = self.every
        while True:
            with self.cond:
                now = time.monotonic()
                ready = [r for r, t in self.due.items() if t <= now]
                if not ready:
                    wait = min(self.due.values(), default=now + 3600) - now
                    self.cond.wait(max(0.01, wait))
                    continue
                for r in ready:
                    self.due[r] = now + beat
                todo = [(r, self.runs[r]) for r in ready]
            for run_id, (attempt, top_level) in todo:
                try:
                    reply = self.client.post(f"/api/v1/flow_runs/{run_id}/heartbeat",
                                             {"attempt": attempt}) or {}
                except (ApiError, TransportError) as e:
                    _util.say(f"weir: heartbeat failed (will retry): {e}")
                    continue
                with self.cond:
                    if run_id not in self.runs:
                        continue  # ended meanwhile: the answer is about a finished run
                if top_level and (reply.get("cancel") or reply.get("lost")):
                    if reply.get("cancel"):
                        why = "cancellation requested"
                    else:
                        why = self._what_became_of(run_id, attempt)
                        STOP_REASON.append(why)
                    _util.say(f"weir: {why}; stopping")
                    self.remove(run_id)
                    os.kill(os.getpid(), signal.SIGTERM)
                    continue
                lease = reply.get("lease_s") or 0
                if lease > 0:
                    beat = max(0.1, min(self.every, lease / 3))
                    with self.cond:
                        if run_id in self.due:
                            self.due[run_id] = time.monotonic() + beat


_TRACKER: Any = None
_TRACKER_LOCK = threading.Lock()


def from_env():
    """The process's tracker: an `HttpTracker` when `WEIR_API_URL` is set, else a
    `LocalTracker`."""
    global _TRACKER
    with _TRACKER_LOCK:
        if _TRACKER is None:
            _TRACKER = _from_env()
        return _TRACKER


def _from_env():
    try:
        assigned = _assigned_from_env()
    except LaunchEnvError as e:
        return Misconfigured(str(e))
    local = LocalTracker.from_env(assigned)
    if not os.environ.get("WEIR_API_URL", "").strip():
        return local
    try:
        return HttpTracker.from_env(local)
    except ValueError as e:
        if assigned is not None:
            return Misconfigured(f"cannot use WEIR_API_URL: {e}")
        _util.say(f"weir: cannot use WEIR_API_URL: {e}; reporting locally only")
        return local


def set_tracker(tracker) -> None:
    """Replaces the process's tracker (tests, embedding)."""
    global _TRACKER
    with _TRACKER_LOCK:
        _TRACKER = tracker


def _after_fork() -> None:
    global _TRACKER
    _TRACKER = None
    _util.reset_after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork)
