"""`run_deployment`: start a run of a deployment from a flow (flows of flows)."""

from __future__ import annotations

import os
import time
from typing import Any, Dict, Optional

from . import _results, _util
from ._context import FLOW, get_run_logger
from ._http import ApiError, Client, key_from_env

TERMINAL = {"Completed", "Failed", "Crashed", "Cancelled"}


class DeploymentRunFailed(Exception):
    """A deployment run started by `run_deployment(wait=True)` did not complete."""

    _weir_plain = True

    def __init__(self, message: str, run: Dict[str, Any]):
        super().__init__(message)
        self.run = run


def run_deployment(name: str, parameters: Optional[Dict[str, Any]] = None, wait: bool = True,
                   timeout: Optional[float] = None, poll: float = 0.5,
                   api_url: Optional[str] = None, api_key: Optional[str] = None) -> Any:
    """Creates a run of deployment `name` (`project/deployment`, or `deployment` in
    `WEIR_PROJECT`) with `parameters` merged over its defaults; an agent picks it up.

    With `wait=True` (the default), waits until the run ends and returns its result (read from
    result storage with this process's credentials: the server keeps only its location), raising
    `DeploymentRunFailed` when it ends Failed, Crashed or Cancelled (or `TimeoutError` after
    `timeout` seconds). With `wait=False`, returns the new run (a dict) at once.

    The server is `api_url` or `WEIR_API_URL`; the key `api_key` or `WEIR_API_KEY`. A run
    launched by an agent holds a run token, which may only report on its own run: give such a
    flow a key with the `developer` role (a secret of its deployment) and pass it as `api_key`.
    """
    url = (api_url or os.environ.get("WEIR_API_URL", "")).strip()
    if not url:
        raise RuntimeError("run_deployment needs a server: set WEIR_API_URL (or pass api_url)")
    project, _, deployment = name.rpartition("/")
    project = project or os.environ.get("WEIR_PROJECT", "").strip() or "default"
    client = Client(url, api_key or key_from_env())
    body = {"project": project, "deployment": deployment,
            "parameters": _util.to_json(parameters or {})}
    try:
        run = client.post("/api/v1/flow_runs", body)
    except ApiError as e:
        hint = ""
        if e.status in (401, 403) and (api_key is None):
            hint = (" (a run token may only report on its own run: pass api_key= a key with "
                    "the developer role)")
        raise RuntimeError(f"cannot start a run of {project}/{deployment}: {e.message}{hint}") \
            from None
    if FLOW.get() is not None:
        get_run_logger().info("started flow run %s of deployment %s/%s", run["id"], project,
                              deployment)
    if not wait:
        return run
    deadline = None if timeout is None else time.monotonic() + timeout
    while run["state"] not in TERMINAL:
        if deadline is not None and time.monotonic() > deadline:
            raise TimeoutError(f"flow run {run['id']} of {project}/{deployment} did not end "
                               f"within {timeout} s (it is {run['state']})")
        time.sleep(poll)
        run = client.get(f"/api/v1/flow_runs/{run['id']}")["run"]
    if run["state"] != "Completed":
        msg = run.get("state_message") or ""
        raise DeploymentRunFailed(
            f"flow run {run['id']} of {project}/{deployment} ended {run['state']}"
            + (f": {msg}" if msg else ""), run)
    ref = run.get("result")
    return None if ref is None else _results.fetch(ref["location"])
