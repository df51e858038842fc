//! Wire types of deployments: the spec `weir deploy` registers, its schedules, and upserts.

use super::{NOT_BLANK, Parameters};
use crate::Timestamp;
use crate::infrastructure::Infrastructure;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use uuid::Uuid;

/// One schedule of a deployment (its home is [`crate::schedule`], which reads it).
pub use crate::schedule::ScheduleSpec;

/// The secret reference schemes a deployment may name (JSON Schema pattern).
pub const SECRET_REFERENCE_PATTERN: &str = "^(env|file|ssm|secretsmanager):.";

/// Longest delay before a flow-run retry: a year, in seconds.
pub const MAX_RETRY_DELAY_S: u64 = 365 * 86400;

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
    /// When the scheduler puts runs ahead (cron expressions and intervals); none: runs only
    /// when someone asks for one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub schedules: Vec<ScheduleSpec>,
    /// What the scheduler does with ticks missed while no server ran: `none`, `latest` (the
    /// default: one run for the most recent) or `all` (at most 100, the most recent; see
    /// [`crate::schedule::catchup`]).
    #[serde(default, skip_serializing_if = "crate::schedule::Catchup::is_latest")]
    pub catchup: crate::schedule::Catchup,
    /// Parameter values every run gets unless its request gives its own.
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
    crate::names::DEFAULT_QUEUE.to_string()
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
    /// The spec to register; one equal to the current version's writes nothing.
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

/// A deployment as the API answers it: the wire form of
/// [`crate::deployment::Deployment`], built from it at the edge.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Deployment {
    /// Its id, which its runs refer to; it stays when the spec changes.
    pub id: Uuid,
    /// The project it belongs to (`dev`, `main`).
    pub project: String,
    /// Its name, unique within the project (its table's name in `weir.toml`).
    pub name: String,
    /// The number of its current spec: 1 when created, one more for each changed spec.
    pub version: u32,
    /// What it runs, when and how: its current version's spec.
    pub spec: DeploymentSpec,
    /// Whether its schedules are paused (runs asked for by hand are still created).
    pub paused: bool,
    /// When it was first created.
    pub created_at: Timestamp,
    /// When its spec, pause or archive state last changed.
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
    /// What the upsert did (or would do): created, updated, unchanged or restored.
    pub outcome: UpsertOutcome,
    /// The deployment after the upsert (before it, for a dry run that would change it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment: Option<Deployment>,
    /// The spec stored before, for a diff.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous: Option<DeploymentSpec>,
}
