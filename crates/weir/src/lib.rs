//! Weir's SDK: write flows and tasks as ordinary async Rust, run them locally or under an agent.
//!
//! ```ignore
//! use weir::prelude::*;
//!
//! #[task(retries = 3, retry_delay = "2s")]
//! async fn extract(url: String) -> anyhow::Result<Vec<Row>> { /* ... */ }
//!
//! #[task]
//! async fn transform(rows: Vec<Row>) -> anyhow::Result<Summary> { /* ... */ }
//!
//! #[flow]
//! async fn etl(#[param(default = "mem://rows".to_string())] url: String) -> anyhow::Result<Summary> {
//!     let rows = extract(url).await?;        // awaiting a task call runs it
//!     transform(rows).await
//! }
//!
//! weir::main!(etl);                          // `describe` and `run etl --param url=...`
//! ```
//!
//! * **Tasks** (`#[task(...)]`): calling one returns a [`TaskCall`]; `.await` runs it in place,
//!   [`TaskCall::submit`] runs it concurrently and returns a [`TaskHandle`], [`map`] fans out
//!   over items. Options: `name`, `retries`, `retry_delay`, `backoff`, `max_delay`, `jitter`,
//!   `retry_if = path` (`fn(&anyhow::Error) -> bool`), `timeout`, `cache`, `cache_key = path`
//!   (a function taking the task's arguments by reference and returning a `String`),
//!   `cache_expiration`, `persist_result`, `fingerprint = false`, `tags = [..]`. Durations are
//!   strings (`"500ms"`, `"2s"`, `"1h"`) checked at compile time. Arguments must be
//!   `Serialize` (fingerprints) — and `Clone` when `retries > 0`; results must be
//!   `Serialize + DeserializeOwned` (persistence, cache). Errors, timeouts and panics end the
//!   task run Failed and come back as an [`TaskError`].
//! * **Flows** (`#[flow(...)]`): arguments are typed parameters (`Serialize + Deserialize +
//!   JsonSchema`), with `#[param(default = expr, description = "...")]`. Awaiting a flow inside
//!   another flow runs a subflow. See [`FlowDef`] and [`Runner`].
//! * **Tracking**: every run is reported through a [`tracker::Tracker`]; by default a
//!   [`local::LocalTracker`]. `tracing` events inside a task are attributed to its task run
//!   ([`logging`]).
//! * **Results** pass in memory. `persist_result = true` writes them as JSON to result storage
//!   under `{flow_run_id}/{task_name}/{call_index}.json` (call index = n-th call of that task in
//!   the flow run, taken when the call is created); a resumed flow run (same id, later attempt,
//!   `resume`) loads them instead of running the task again. A flow run reported to a server
//!   writes its own result to `{flow_run_id}/result.json`; the server keeps only the location
//!   and size. See [`results`] for the storage (local directory or S3) and the exact layout.
//! * **Cache** entries live in the result storage too (`cache/{task}/{sha256(key)}.json`), so
//!   they are shared across flow runs and processes using the same storage.
//!
//! Design choices worth knowing:
//! * Input fingerprints (SHA-256 of the arguments' JSON, streamed) are computed for every call
//!   made inside a flow run; opt out per task with `fingerprint = false` (large inputs).
//! * `describe` lists, per flow, the `#[task]`s whose function names appear in the flow's body
//!   (found by the macro, matched against an `inventory` registry of every task in the binary).
//! * Dropping a [`TaskHandle`] cancels its task run; await every handle you submit.
//! * A flow body is boxed once per flow run (flows nest; this keeps futures small).
//!
//! Environment read by the SDK:
//!
//! | variable | meaning |
//! |---|---|
//! | `WEIR_FLOW_RUN_ID` | id of the top-level flow run (set by an agent) |
//! | `WEIR_ATTEMPT` | its attempt, default 1 |
//! | `WEIR_RESUME` | `1`: reuse persisted results of earlier attempts |
//! | `WEIR_TICK_AT` | the schedule tick the run is for, RFC 3339 UTC (scheduled, caught-up and backfilled runs): [`context::tick_at`] |
//! | `WEIR_RESULT_STORAGE` | result storage: `file:///path`, a path or `s3://bucket/prefix`; default `file://$WEIR_HOME/results` ([`results`]) |
//! | `AWS_*` | for `s3://` storage: credentials (keys, web identity, ECS container endpoint), `AWS_REGION`, `AWS_ENDPOINT_URL` |
//! | `WEIR_HOME` | default `./.weir` (made absolute) |
//! | `WEIR_QUIET` | `1`: no terminal lines from the local tracker |
//! | `WEIR_PARAMETERS` | base JSON object of parameters for `run` |
//! | `WEIR_LOG` (else `RUST_LOG`) | log filter, default `info` |

mod cache;
pub mod cli;
pub mod context;
pub mod environment;
mod error;
mod flow;
pub mod local;
pub mod logging;
mod params;
pub mod results;
mod runner;
mod say;
mod task;
pub mod tracker;
pub mod transport;

pub use error::{FlowStartError, Panicked, TaskError, TimedOut};
pub use flow::{FlowDef, FlowFuture};
pub use params::{ParamError, parse_assignment};
pub use runner::Runner;
pub use task::{TaskCall, TaskDef, TaskHandle, map, map_settled, submit};
pub use weir_core::StateKind;
pub use weir_core::api::Parameters;
pub use weir_macros::{flow, main, task};

/// What flow code usually needs: `use weir::prelude::*;`.
pub mod prelude {
    pub use crate::{TaskCall, TaskHandle, flow, map, map_settled, submit, task};
}

/// Items the macros' generated code uses. Not a stable API.
#[doc(hidden)]
pub mod __private {
    pub use crate::FlowFuture;
    pub use crate::flow::{FlowRegistration, flow_future, run_flow};
    pub use crate::params::{check_unknown, put_param, take_param};
    pub use crate::task::{TaskRegistration, TaskStart, body_reused};
    pub use anyhow;
    pub use inventory;
    pub use schemars;
    pub use serde;
    pub use serde_json;
    use std::future::Future;
    pub use weir_core::RetryPolicy;
    pub use weir_core::api::Parameters;

    /// A task or flow body returning `Result<T, E>` as `anyhow::Result<T>`.
    pub async fn outcome<T, E, F>(f: F) -> anyhow::Result<T>
    where
        F: Future<Output = Result<T, E>>,
        E: Into<anyhow::Error>,
    {
        f.await.map_err(Into::into)
    }

    /// A task or flow body returning a plain value as `anyhow::Result<T>`.
    pub async fn plain_outcome<T, F>(f: F) -> anyhow::Result<T>
    where
        F: Future<Output = T>,
    {
        Ok(f.await)
    }
}
