//! Wire types of flow runs: creating one, the run as the API shows it, its history, state
//! proposals and retries. The domain's run is `weir_core::run::Run`; a [`FlowRun`] is made
//! from it where the server answers.

use super::{NOT_BLANK, Parameters};
use crate::{StateKind, Timestamp};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use uuid::Uuid;

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
    /// The run's tags (default for a deployment's run: the deployment's); concurrency limits
    /// and run filters read them.
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

/// One execution of a flow, as the API shows it (made from the domain's
/// `weir_core::run::Run`; what only the rules read, such as the retry delay, is left out).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct FlowRun {
    /// The run's id (UUIDv7: id order is creation order, and list cursors are ids).
    pub id: Uuid,
    /// The project it belongs to.
    pub project: String,
    /// The deployment it was created from; absent for an ad-hoc run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment_id: Option<Uuid>,
    /// That deployment's name within the project.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment: Option<String>,
    /// The name of the flow it executes.
    pub flow: String,
    /// A readable name such as `etl-7f3a`.
    pub name: String,
    /// Its current state (see `state_at` for when it was entered).
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
    /// Automatic retries allowed (the deployment's retry policy when the run was created).
    pub retries: u32,
    /// The parameter values the flow is called with (the request's over the deployment's
    /// defaults).
    pub parameters: Parameters,
    /// The work queue agents claim it from.
    pub work_queue: String,
    /// When it is due: no agent claims it before (a retry moves it).
    pub scheduled_at: Timestamp,
    /// The schedule tick this run is for (runs of the scheduler, catch-up and backfill; the
    /// flow reads it as `WEIR_TICK_AT`). Absent for runs started by hand.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tick_at: Option<Timestamp>,
    /// When it was created.
    pub created_at: Timestamp,
    /// First entered Running in this attempt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<Timestamp>,
    /// Entered a terminal state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<Timestamp>,
    /// The agent holding its current attempt, while one does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<Uuid>,
    /// When the current attempt's lease expires without a heartbeat (Pending, Running,
    /// Cancelling, Paused); the crash detector acts after it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease_expires_at: Option<Timestamp>,
    /// The flow run that called it, for a subflow.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_flow_run_id: Option<Uuid>,
    /// Where the flow's result was written, when Completed (the server never holds its
    /// bytes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<ResultRef>,
    /// Its tags (the request's, else its deployment's); concurrency limits and run filters
    /// read them.
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
    /// The result's size in bytes, as written.
    pub size: u64,
}

/// An entry of a run's state history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct StateChange {
    /// Transition id (client-supplied for idempotency, else generated).
    pub id: Uuid,
    /// The state entered.
    pub state: StateKind,
    /// The message it was entered with (error text for Failed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The attempt it belongs to.
    pub attempt: u32,
    /// When it was entered (server clock).
    pub at: Timestamp,
}

/// Body of `POST /api/v1/flow_runs/{id}/state`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProposeState {
    /// The state the proposer wants the run in.
    pub state: StateKind,
    /// Its message (error text for Failed).
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
    /// The run as it is now.
    pub run: FlowRun,
    /// Its states in the order they were entered (each change as committed; several can
    /// share a time).
    pub history: Vec<StateChange>,
    /// How many of its task runs are in each state now.
    pub task_runs_by_state: BTreeMap<StateKind, u64>,
}
