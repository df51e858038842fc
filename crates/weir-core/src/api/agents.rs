//! Wire types of agents: registration, heartbeats, claims, the runs they are handed, a flow
//! process's own heartbeat, and work queues.

use super::NOT_BLANK;
use super::deployments::DeploymentSpec;
use super::runs::FlowRun;
use crate::Timestamp;
use crate::infrastructure::InfrastructureKind;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

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
    /// The id the server gave the agent when it registered.
    pub id: Uuid,
    /// The name it registered with (`weir agent --name`), not necessarily unique.
    pub name: String,
    /// The work queues it claims runs from.
    pub queues: Vec<String>,
    /// Most runs it holds at once.
    pub limit: u32,
    /// When it registered (the server's clock).
    pub created_at: Timestamp,
    /// When the server last heard from it; it counts as live while this is recent.
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
    /// The flow run's id.
    pub id: Uuid,
    /// The attempt the agent claimed: a lease is renewed only while it is still the run's.
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

/// A work queue and its load now, as `GET /work_queues` lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct WorkQueue {
    /// The queue's name, as deployments' `work_queue` and agents' `--queue` give it.
    pub name: String,
    /// Runs waiting (claimable and due).
    pub ready: u64,
    /// Runs on the queue an agent holds now (Pending or Running).
    pub running: u64,
}
