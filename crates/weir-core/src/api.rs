//! Wire types of the HTTP API (`/api/v1`), shared by the server, the client, the SDK's
//! transport, the agent and the CLI. Plain serde structs; the server derives its OpenAPI
//! document from the same shapes.
//!
//! Every request type rejects unknown fields, so a typo is an error instead of a silent no-op.

use crate::infrastructure::{Infrastructure, InfrastructureKind};
use crate::{StateKind, Timestamp};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use uuid::Uuid;

mod limits;
pub mod notifications;
mod query;
mod schedules;
pub use limits::*;
pub use query::*;
pub use schedules::*;

/// A text with at least one non-space character (JSON Schema pattern).
pub const NOT_BLANK: &str = "\\S";

/// The secret reference schemes a deployment may name (JSON Schema pattern).
pub const SECRET_REFERENCE_PATTERN: &str = "^(env|file|ssm|secretsmanager):.";

/// Longest delay before a flow-run retry: a year, in seconds.
pub const MAX_RETRY_DELAY_S: u64 = 365 * 86400;

/// Longest API key lifetime: ten years, in seconds.
pub const MAX_KEY_LIFETIME_S: u64 = 10 * 365 * 86400;

/// JSON object of parameter values keyed by parameter name.
pub type Parameters = Map<String, Value>;

/// The one error shape every endpoint returns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ErrorBody {
    /// Machine-readable kind: what went wrong, and so whether a retry can help.
    pub error: ErrorKind,
    /// Human-readable message naming what is wrong and what to do.
    pub message: String,
    /// The request field at fault, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// For `conflict` on a state proposal: the run as it is now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current: Option<Box<FlowRun>>,
}

/// The kinds of API error. Only [`ErrorKind::Unavailable`] (and a lost connection) is
/// transient: retrying the same request later may succeed. Every other kind is final for that
/// request, and a `conflict` carries the run as it is now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// 400: the request is malformed or invalid; `field` names the culprit.
    InvalidRequest,
    /// 401: missing, invalid, revoked or expired credentials.
    Unauthorized,
    /// 403: the caller's role may not do this.
    Forbidden,
    /// 404: no such thing, or not visible to the caller.
    NotFound,
    /// 405: the path exists, not with this method.
    MethodNotAllowed,
    /// 409: refused by the orchestration rules or by stored data.
    Conflict,
    /// 413: the body is larger than the server accepts.
    PayloadTooLarge,
    /// 500: a fault on the server that a retry will not mend (e.g. a corrupt stored row).
    Internal,
    /// 503: the database is unavailable or busy right now; retry with backoff.
    Unavailable,
    /// An answer that was not a Weir error body (a proxy's page, say), or a kind this client
    /// does not know.
    #[serde(other)]
    Other,
}

impl ErrorKind {
    /// Whether retrying the same request later may succeed.
    pub fn is_transient(self) -> bool {
        self == ErrorKind::Unavailable
    }
}

/// A page of results and the cursor for the next page, if any.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Page<T> {
    /// The items, newest first unless the endpoint says otherwise.
    pub items: Vec<T>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// A namespace for deployments and runs, such as `dev` or `main`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Project {
    /// Unique name.
    pub name: String,
    /// When it was created.
    pub created_at: Timestamp,
    /// The project's own retention in days (`0`: keep runs forever); absent: the server's
    /// default applies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retain_days: Option<u32>,
    /// The retention in force: the project's own, else the server's default; absent: finished
    /// runs are kept forever. Finished runs whose last state change is older are deleted with
    /// their task runs, states and logs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effective_retain_days: Option<u32>,
    /// Finished runs deleted by retention so far.
    #[serde(default)]
    pub pruned_runs: u64,
    /// When retention last deleted runs of this project.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pruned_at: Option<Timestamp>,
}

/// Body of `PUT /api/v1/projects/{project}/retention`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SetRetention {
    /// Days finished runs are kept (`0`: forever); `null`: use the server's default.
    #[schemars(range(max = 36500))]
    pub retain_days: Option<u32>,
}

/// Body of `POST /api/v1/projects`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateProject {
    /// Name: lowercase letters, digits, `-` and `_`, at most 63 characters.
    #[schemars(pattern(crate::names::PATTERN))]
    pub name: String,
}

/// One schedule of a deployment: exactly one of `cron` or `interval`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(extend("oneOf" = [
    {"required": ["cron"], "properties": {"cron": {"type": "string"}, "interval": {"type": "null"}}},
    {"required": ["interval"], "properties": {"interval": {"type": "string"}, "cron": {"type": "null"}}},
]))]
pub struct ScheduleSpec {
    /// A cron expression (5 or 6 fields; `L`, `#`, `W`, ranges and steps allowed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cron: Option<String>,
    /// A fixed interval such as `30s`, `15m` or `1h`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<String>,
    /// IANA time zone the cron fields are read in (default `UTC`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    /// For intervals: a time the schedule fires at; others are whole periods away.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anchor: Option<Timestamp>,
}

/// What a deployment is: everything `weir deploy` registers. Two equal specs are the same
/// version.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DeploymentSpec {
    /// Name of the flow this deployment runs (as the flows binary's `describe` names it).
    #[schemars(pattern(NOT_BLANK))]
    pub flow: String,
    /// Free text shown in the UI.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// Program and arguments the process launcher runs, e.g. `["example-flows"]`. For a flows
    /// binary the agent appends `run FLOW`; for any other program the parameters arrive as
    /// JSON in `WEIR_PARAMETERS`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub command: Vec<String>,
    /// Whether `command` is a Weir flows binary (`describe`/`run`) or any other program.
    #[serde(default, skip_serializing_if = "is_false")]
    pub plain_command: bool,
    /// Where runs execute: a local process (the default), a Docker container, an ECS task.
    #[serde(default, skip_serializing_if = "Infrastructure::is_process")]
    pub infrastructure: Infrastructure,
    /// Work queue runs are put on (default `default`).
    #[serde(default = "default_queue")]
    #[schemars(pattern(crate::names::PATTERN))]
    pub work_queue: String,
    /// When to run.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub schedules: Vec<ScheduleSpec>,
    /// What the scheduler does with ticks missed while no server ran: `none`, `latest` (the
    /// default: one run for the most recent) or `all` (at most 100, the most recent; see
    /// [`crate::schedule::catchup`]).
    #[serde(default, skip_serializing_if = "crate::schedule::Catchup::is_latest")]
    pub catchup: crate::schedule::Catchup,
    /// Default parameter values.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub parameters: Parameters,
    /// JSON Schema of the flow's parameters, when known (from `describe`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameter_schema: Option<Value>,
    /// Environment variable name → secret reference (`env:`, `file:`, `ssm:`, `secretsmanager:`).
    /// Only references are stored; values are resolved by the agent at launch.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(extend("additionalProperties" = {"type": "string", "pattern": SECRET_REFERENCE_PATTERN}))]
    pub secrets: BTreeMap<String, String>,
    /// Plain (non-secret) environment variables for the run.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    /// Automatic retries of a failed or crashed flow run.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub retries: u32,
    /// Seconds to wait before each flow-run retry (at most a year).
    #[serde(default, skip_serializing_if = "is_zero_u64")]
    #[schemars(range(max = MAX_RETRY_DELAY_S))]
    pub retry_delay_s: u64,
    /// Free-form labels. Runs inherit them; a tag limit (`weir limits set TAG N`) counts
    /// every run carrying its tag.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// At most this many runs of the deployment hold a slot at once (a slot is held while a
    /// run's attempt holds a live lease); absent: no limit of its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = crate::limits::MAX_SLOTS))]
    pub concurrency: Option<u32>,
    /// What a due run does when a limit it falls under is full: `wait` (the default) or
    /// `skip` (its first attempt ends Cancelled, with a message naming the limit).
    #[serde(default, skip_serializing_if = "crate::limits::OnLimit::is_wait")]
    pub on_limit: crate::limits::OnLimit,
    /// Where the runs' results and cache entries go (`file:///path`, a path, or
    /// `s3://bucket/prefix`; see [`crate::storage`]); else the agent's choice.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result_storage: Option<String>,
}

fn default_queue() -> String {
    crate::deployment::DEFAULT_QUEUE.to_string()
}
fn is_false(b: &bool) -> bool {
    !*b
}
fn is_zero(n: &u32) -> bool {
    *n == 0
}
fn is_zero_u64(n: &u64) -> bool {
    *n == 0
}

/// Body of `PUT /api/v1/projects/{project}/deployments/{name}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UpsertDeployment {
    /// The deployment's content.
    pub spec: DeploymentSpec,
    /// Only report what would change; write nothing.
    #[serde(default)]
    pub dry_run: bool,
}

/// What an upsert did (or, with `dry_run`, would do).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum UpsertOutcome {
    /// No deployment of that name existed.
    Created,
    /// The spec differed: a new version.
    Updated,
    /// Same spec as the current version: nothing written.
    Unchanged,
    /// The deployment was archived (removed from its file) and is active again; a changed
    /// spec is also a new version.
    Restored,
}

/// A deployment as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Deployment {
    /// Stable id.
    pub id: Uuid,
    /// Project it lives in.
    pub project: String,
    /// Name, unique within the project.
    pub name: String,
    /// Incremented whenever the spec changes.
    pub version: u32,
    /// The current spec.
    pub spec: DeploymentSpec,
    /// Whether its schedules are paused.
    pub paused: bool,
    /// When first created.
    pub created_at: Timestamp,
    /// When the spec or pause state last changed.
    pub updated_at: Timestamp,
    /// When it was archived (removed from its project's `weir.toml` by `weir deploy --prune`,
    /// or by `weir deployments rm`): it never schedules and gets no new runs; its runs stay
    /// readable. Absent while the deployment is active.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub archived_at: Option<Timestamp>,
}

/// Response of a deployment upsert.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct UpsertResult {
    /// What happened.
    pub outcome: UpsertOutcome,
    /// The deployment after the upsert (before it, for a dry run that would change it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment: Option<Deployment>,
    /// The spec stored before, for a diff.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous: Option<DeploymentSpec>,
}

/// Body of `POST /api/v1/flow_runs`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(transform = create_flow_run_shapes)]
pub struct CreateFlowRun {
    /// Project; required unless `deployment_id` is given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
    /// Run a deployment (by id)...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment_id: Option<Uuid>,
    /// ...or a deployment by name within `project`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment: Option<String>,
    /// For an ad-hoc run (no deployment): the flow's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flow: Option<String>,
    /// Parameter values, merged over the deployment's defaults.
    #[serde(default)]
    pub parameters: Parameters,
    /// A retried request with the same key returns the run created the first time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
    /// Start no earlier than this (default: now).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduled_at: Option<Timestamp>,
    /// Create directly in this state: `Scheduled` (default, for agents) or `Running` (an
    /// ad-hoc run its own process executes and reports).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<StateKind>,
    /// For a subflow: the flow run that called it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_flow_run_id: Option<Uuid>,
    /// Labels.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
}

/// The three shapes a [`CreateFlowRun`] takes, for its JSON Schema: a deployment's run by
/// id, or by name within `project` (both start Scheduled, or with no `state`), or an ad-hoc
/// run of `flow` in `project`, created Running by the process that executes it.
fn create_flow_run_shapes(schema: &mut schemars::Schema) {
    let scheduled = serde_json::json!({"enum": ["Scheduled", null]});
    let shapes = serde_json::json!([
        {
            "required": ["deployment_id"],
            "properties": {"deployment_id": {"type": "string"}, "state": scheduled},
        },
        {
            "required": ["project", "deployment"],
            "properties": {
                "project": {"type": "string"},
                "deployment": {"type": "string"},
                "deployment_id": {"type": "null"},
                "state": scheduled,
            },
        },
        {
            "required": ["project", "flow", "state"],
            "properties": {
                "project": {"type": "string", "pattern": crate::names::PATTERN},
                "flow": {"type": "string", "pattern": NOT_BLANK},
                "state": {"const": "Running"},
                "deployment": {"type": "null"},
                "deployment_id": {"type": "null"},
            },
        },
    ]);
    schema.insert("anyOf".into(), shapes);
}

/// One execution of a flow.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct FlowRun {
    /// Id.
    pub id: Uuid,
    /// Project.
    pub project: String,
    /// Deployment it was created from, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment_id: Option<Uuid>,
    /// Deployment name, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment: Option<String>,
    /// Flow name.
    pub flow: String,
    /// A readable name such as `etl-7f3a`.
    pub name: String,
    /// Current state.
    pub state: StateKind,
    /// Message of the current state (error text for Failed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_message: Option<String>,
    /// When the current state was entered.
    pub state_at: Timestamp,
    /// Claim counter: bumped on every claim; every report must carry the current value.
    pub attempt: u32,
    /// Automatic retries (and crash restarts) used so far.
    pub retries_used: u32,
    /// Retries allowed.
    pub retries: u32,
    /// Parameters.
    pub parameters: Parameters,
    /// Work queue.
    pub work_queue: String,
    /// When it is due.
    pub scheduled_at: Timestamp,
    /// The schedule tick this run is for (runs of the scheduler, catch-up and backfill; the
    /// flow reads it as `WEIR_TICK_AT`). Absent for runs started by hand.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tick_at: Option<Timestamp>,
    /// Created.
    pub created_at: Timestamp,
    /// First entered Running in this attempt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<Timestamp>,
    /// Entered a terminal state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<Timestamp>,
    /// Agent holding it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<Uuid>,
    /// Lease expiry while Pending/Running.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease_expires_at: Option<Timestamp>,
    /// Calling flow run, for subflows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_flow_run_id: Option<Uuid>,
    /// Where the flow's result was written, when Completed (the server never holds its
    /// bytes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<ResultRef>,
    /// Labels.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
}

/// Where a result lives in the team's result storage, and its size: all the server keeps of
/// it. Fetch it with `weir runs result ID` (the caller's own storage credentials).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ResultRef {
    /// Full URL, e.g. `s3://team-results/weir/0190…/result.json` or `file:///…/result.json`.
    pub location: String,
    /// Size in bytes.
    pub size: u64,
}

/// An entry of a run's state history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct StateChange {
    /// Transition id (client-supplied for idempotency, else generated).
    pub id: Uuid,
    /// State entered.
    pub state: StateKind,
    /// Its message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Attempt it belongs to.
    pub attempt: u32,
    /// When (server clock).
    pub at: Timestamp,
}

/// Body of `POST /api/v1/flow_runs/{id}/state`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProposeState {
    /// Proposed state.
    pub state: StateKind,
    /// Message (error text for Failed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The attempt the proposer belongs to; a stale attempt gets 409.
    pub attempt: u32,
    /// Idempotency: the same id proposed twice returns the first outcome.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transition_id: Option<Uuid>,
    /// Where the flow's result was written, with `Completed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<ResultRef>,
}

/// Body of `POST /api/v1/flow_runs/{id}/retry`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RetryFlowRun {
    /// Reuse persisted results of task runs that completed in earlier attempts.
    #[serde(default)]
    pub from_failed: bool,
}

/// A flow run with its state history and task-run counts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct FlowRunDetail {
    /// The run.
    pub run: FlowRun,
    /// Its states, oldest first.
    pub history: Vec<StateChange>,
    /// Task runs by current state.
    pub task_runs_by_state: BTreeMap<StateKind, u64>,
}

/// A task run's state report, as the SDK sends it in batches. The first report of a task run
/// creates it; later ones move it. Reports are applied in order of `at`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TaskRunReport {
    /// Task run id (generated by the SDK).
    pub id: Uuid,
    /// Flow run it belongs to.
    pub flow_run_id: Uuid,
    /// Task name.
    pub task: String,
    /// State entered.
    pub state: StateKind,
    /// When (the SDK's clock; used for ordering and durations only).
    pub at: Timestamp,
    /// Message (error text for Failed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Task attempt (1-based; retries increase it).
    #[serde(default = "one")]
    pub attempt: u32,
    /// Fingerprint of the inputs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inputs_fingerprint: Option<String>,
    /// Cache key, when the task is cached.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_key: Option<String>,
    /// Where the result was persisted, when it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result_location: Option<String>,
    /// Index within a `map`, for mapped task runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub map_index: Option<u32>,
    /// Labels.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
}

fn one() -> u32 {
    1
}

/// A task run as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TaskRun {
    /// Id.
    pub id: Uuid,
    /// Flow run.
    pub flow_run_id: Uuid,
    /// Task name.
    pub task: String,
    /// Current state.
    pub state: StateKind,
    /// Message of the current state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Task attempt.
    pub attempt: u32,
    /// First report.
    pub created_at: Timestamp,
    /// Entered Running.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<Timestamp>,
    /// Entered a terminal state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<Timestamp>,
    /// Inputs fingerprint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inputs_fingerprint: Option<String>,
    /// Cache key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_key: Option<String>,
    /// Persisted result location.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result_location: Option<String>,
    /// Map index.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub map_index: Option<u32>,
}

/// One entry of a task run's state history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TaskRunState {
    /// State entered.
    pub state: StateKind,
    /// Its message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Task attempt.
    pub attempt: u32,
    /// When (the reporting process's clock).
    pub at: Timestamp,
}

/// A task run with its state history, oldest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TaskRunDetail {
    /// The task run.
    pub task_run: TaskRun,
    /// Its states.
    pub history: Vec<TaskRunState>,
}

/// Severity of a log line.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    /// Very detailed.
    Trace,
    /// Detailed.
    Debug,
    /// Normal.
    Info,
    /// Something unusual.
    Warn,
    /// Something failed.
    Error,
}

/// A log line to ingest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NewLogLine {
    /// Flow run.
    pub flow_run_id: Uuid,
    /// Task run, when the line was emitted inside a task.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_run_id: Option<Uuid>,
    /// When it was emitted.
    pub at: Timestamp,
    /// Severity.
    pub level: LogLevel,
    /// The text.
    pub message: String,
    /// The attempt of the flow run that emitted it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempt: Option<u32>,
    /// The sender's stream: a random number each sender (a flow process, an agent following
    /// one attempt's output) picks once. With `seq` (and `attempt`) it makes the line
    /// idempotent: a batch sent again because its answer was lost is stored once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<u32>,
    /// The line's number in its stream, assigned by the sender (increasing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(max = i64::MAX))]
    pub seq: Option<u64>,
}

/// A stored log line; `seq` orders lines of one flow run and is the follow cursor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct LogLine {
    /// Position in the run's log (increasing).
    pub seq: i64,
    /// Flow run.
    pub flow_run_id: Uuid,
    /// Task run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_run_id: Option<Uuid>,
    /// When emitted.
    pub at: Timestamp,
    /// Severity.
    pub level: LogLevel,
    /// Text.
    pub message: String,
}

/// Body of `POST /api/v1/task_runs/batch`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TaskRunBatch {
    /// Reports, in order.
    pub reports: Vec<TaskRunReport>,
}

/// Body of `POST /api/v1/logs/batch`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LogBatch {
    /// Lines, in order.
    pub lines: Vec<NewLogLine>,
}

/// Answer to a batch ingest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct BatchAccepted {
    /// How many items were stored.
    pub accepted: u64,
}

/// Body of `POST /api/v1/agents`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterAgent {
    /// A readable name (host name by default), at most 200 characters.
    #[schemars(length(max = 200), pattern(NOT_BLANK))]
    pub name: String,
    /// Queues it takes runs from (at least one).
    #[schemars(length(min = 1), inner(pattern(crate::names::PATTERN)))]
    pub queues: Vec<String>,
    /// Most runs it will have at once.
    #[schemars(range(min = 1))]
    pub limit: u32,
    /// Infrastructure kinds it can launch (default: `process` only).
    #[serde(default = "process_only")]
    pub launchers: Vec<InfrastructureKind>,
}

fn process_only() -> Vec<InfrastructureKind> {
    vec![InfrastructureKind::Process]
}

/// An agent as the server knows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Agent {
    /// Id.
    pub id: Uuid,
    /// Name.
    pub name: String,
    /// Queues.
    pub queues: Vec<String>,
    /// Concurrency limit.
    pub limit: u32,
    /// Registered.
    pub created_at: Timestamp,
    /// Last heartbeat.
    pub last_heartbeat_at: Timestamp,
    /// Runs it currently holds.
    pub running: u32,
    /// Infrastructure kinds it can launch.
    #[serde(default = "process_only")]
    pub launchers: Vec<InfrastructureKind>,
}

/// Body of `POST /api/v1/agents/{id}/heartbeat`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Heartbeat {
    /// Runs the agent holds, with their attempts; their leases are extended.
    pub runs: Vec<HeldRun>,
}

/// A run an agent holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HeldRun {
    /// Flow run.
    pub id: Uuid,
    /// Attempt.
    pub attempt: u32,
}

/// Answer to a heartbeat.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct HeartbeatReply {
    /// Runs whose cancellation was requested: stop them.
    pub cancel: Vec<Uuid>,
    /// Runs the agent listed that it no longer holds (ended, or claimed by a newer attempt):
    /// stop tracking them.
    pub lost: Vec<Uuid>,
    /// Lease length the server applies, in seconds.
    pub lease_s: u64,
}

/// Body of `POST /api/v1/agents/{id}/claim`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ClaimRequest {
    /// Most runs to claim.
    pub limit: u32,
    /// Long-poll: wait up to this long for a run to become due (max 30000).
    #[serde(default)]
    #[schemars(range(max = 30_000))]
    pub wait_ms: u64,
}

/// A run handed to an agent, with what it needs to launch it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ClaimedRun {
    /// The run, now Pending with a bumped attempt.
    pub run: FlowRun,
    /// The deployment's spec at claim time (absent for ad-hoc runs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spec: Option<DeploymentSpec>,
    /// A token valid only for this run and attempt, for the flow process.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_token: Option<String>,
    /// Reuse persisted results of tasks that completed in earlier attempts.
    #[serde(default)]
    pub resume: bool,
    /// The lease the claim gave, in seconds (renewed by heartbeats).
    #[serde(default)]
    pub lease_s: u64,
    /// How long after the server received the claim request the run was claimed: its lease
    /// runs from then. So it lasts at least until the agent's send time plus this plus the
    /// lease, on the agent's own clock — an answer arriving later than most of that (held up
    /// by a partition) must be confirmed by a heartbeat before the run is launched.
    #[serde(default)]
    pub claimed_after_ms: u64,
}

/// Body of `POST /api/v1/flow_runs/{id}/heartbeat`, sent by a flow process that runs
/// without an agent (or beside one).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RunHeartbeat {
    /// The attempt the process belongs to.
    pub attempt: u32,
}

/// Answer to a run heartbeat.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct RunHeartbeatReply {
    /// Cancellation was requested: stop and report Cancelled.
    pub cancel: bool,
    /// The process no longer holds the run (it ended or a newer attempt took over): stop.
    pub lost: bool,
    /// Lease length the server applies, in seconds: heartbeat well within it. 0 when the
    /// server does not say.
    #[serde(default)]
    pub lease_s: u64,
}

/// A work queue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct WorkQueue {
    /// Name.
    pub name: String,
    /// Runs waiting (claimable and due).
    pub ready: u64,
    /// Runs in Pending/Running.
    pub running: u64,
}

/// `GET /readyz` and `/healthz` body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Health {
    /// `ok`.
    pub status: String,
    /// Server version.
    pub version: String,
    /// `sqlite` or `postgres`.
    pub database: String,
}

/// Body of `POST /api/v1/keys`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateApiKey {
    /// A name for the service account, e.g. `ci`, at most 100 characters.
    #[schemars(length(max = 100), pattern(NOT_BLANK))]
    pub name: String,
    /// Its role.
    pub role: crate::auth::Role,
    /// Restrict it to one project.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(crate::names::PATTERN))]
    pub project: Option<String>,
    /// Lifetime in seconds, at most ten years (none: no expiry).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = MAX_KEY_LIFETIME_S))]
    pub expires_in_s: Option<u64>,
}

/// An API key as listed: never its secret.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ApiKey {
    /// Public key id (the part after `weir_`).
    pub id: String,
    /// Service account name.
    pub name: String,
    /// Role.
    pub role: crate::auth::Role,
    /// Project it is restricted to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
    /// Created.
    pub created_at: Timestamp,
    /// Expires.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<Timestamp>,
    /// Revoked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<Timestamp>,
    /// Who created it (a key id, or `bootstrap`).
    pub created_by: String,
}

/// Answer to a key creation: the only time the secret is shown.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CreatedApiKey {
    /// The key's record.
    pub key: ApiKey,
    /// The full key to pass as `Authorization: Bearer …`. Store it now: it is not kept.
    pub secret: String,
}

/// One entry of the audit log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct AuditEntry {
    /// Id (time-ordered).
    pub id: Uuid,
    /// When.
    pub at: Timestamp,
    /// Who: `name (key id)`.
    pub actor: String,
    /// What, e.g. `deploy`, `run`, `cancel`, `retry`, `key.create`, `key.revoke`.
    pub action: String,
    /// On what, e.g. `dev/etl` or a run id.
    pub target: String,
    /// Details.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}
