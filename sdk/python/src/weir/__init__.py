"""Weir's Python SDK: write flows and tasks as ordinary Python, run them locally with no
server, or under a Weir agent that reports every run to the server.

```python
import weir

@weir.task(retries=3, retry_delay=2)
def extract(url: str) -> list:
    ...

@weir.task
def transform(rows: list) -> dict:
    ...

@weir.flow
def etl(url: str = "https://example.com/rows.json") -> dict:
    rows = extract(url)          # calling a task runs it and returns its value
    return transform(rows)
```

`python -m weir flows/etl.py run etl --param url=...` runs it; `python -m weir flows/
describe` prints what `weir deploy` reads. See `weir._cli` for the program contract,
`weir._task.task` and `weir._flow.flow` for the options, `weir._schema` for parameters.

Environment read by the SDK:

| variable | meaning |
|---|---|
| `WEIR_API_URL`, `WEIR_API_KEY` | report to this server with this key (else locally only) |
| `WEIR_PROJECT` | project of runs not launched by an agent (default `default`) |
| `WEIR_FLOW_RUN_ID`, `WEIR_ATTEMPT` | the flow run (and attempt) an agent launched |
| `WEIR_RESUME` | `1`: reuse persisted results of earlier attempts |
| `WEIR_TICK_AT` | the schedule tick the run is for (RFC 3339 UTC): `weir.tick_at()` |
| `WEIR_PARAMETERS` | base JSON object of parameters for `run` |
| `WEIR_SECRET_VARS` | names of variables whose values are redacted from reports |
| `WEIR_RESULT_STORAGE` | result storage root (`file://…`, `s3://…`), default `file://$WEIR_HOME/results` |
| `WEIR_HOME` | default `./.weir` |
| `WEIR_QUIET` | `1`: no terminal lines |
| `WEIR_CA_FILE` | extra CA certificates (PEM) for an https server |
| `WEIR_FLUSH_TIMEOUT_S` | how long the end of a flow run waits for reports to reach the server (120) |
| `WEIR_TASK_WORKERS` | threads for submitted sync tasks (32) |
"""

from ._context import get_run_logger, tick_at
from ._deployments import DeploymentRunFailed, run_deployment
from ._flow import Flow, FlowFailed, SubflowFailed, flow
from ._results import ResultStore, ResultStoreError
from ._schema import ParamError
from ._task import Future, FutureList, Task, TaskTimeout, task, unmapped

__version__ = "0.1.0"

__all__ = [
    "flow", "task", "unmapped", "get_run_logger", "run_deployment", "tick_at",
    "Flow", "Task", "Future", "FutureList",
    "FlowFailed", "SubflowFailed", "TaskTimeout", "ParamError", "DeploymentRunFailed",
    "ResultStore", "ResultStoreError",
]
