//! Wire types of "why isn't it running" (`GET /api/v1/flow_runs/{id}/why`): one [`Reason`]
//! per cause. [`crate::why`] decides them and words them.

use crate::infrastructure::InfrastructureKind;
use crate::limits::LimitKey;
use crate::{StateKind, Timestamp};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// An agent's load, for [`Reason::AgentsAtCapacity`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct AgentLoad {
    /// The agent's name, as it registered.
    pub name: String,
    /// Runs it holds now (claimed and not ended).
    pub running: u32,
    /// Runs it takes at once.
    pub limit: u32,
}

/// One reason a run is not running.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum Reason {
    /// It is not waiting: an agent claimed it, or it runs.
    Started {
        /// Its state now: one neither claimable nor final (Pending, Running, Cancelling, …).
        state: StateKind,
    },
    /// It has ended.
    Ended {
        /// Its final state (Completed, Failed, Crashed or Cancelled).
        state: StateKind,
        /// Its final state's message.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        message: Option<String>,
    },
    /// It is scheduled for later.
    NotDue {
        /// When it is due.
        at: Timestamp,
    },
    /// An attempt failed or crashed; the next one is due at `until`.
    AwaitingRetry {
        /// When the retry is due.
        until: Timestamp,
        /// Retries used, this one included.
        used: u32,
        /// Retries the run allows in all.
        allowed: u32,
    },
    /// No agent serving its queue has been heard from within a lease.
    NoLiveAgent {
        /// The run's work queue.
        queue: String,
        /// The last time any agent serving it was heard from (in the last day).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        last_seen: Option<Timestamp>,
    },
    /// Live agents serve its queue, but none launches its infrastructure.
    NoLauncher {
        /// The run's work queue.
        queue: String,
        /// The infrastructure it needs.
        kind: InfrastructureKind,
        /// The live agents on the queue.
        agents: Vec<String>,
    },
    /// Every live agent that could take it already runs as many runs as it takes.
    AgentsAtCapacity {
        /// Each such agent with how many runs it holds and takes.
        agents: Vec<AgentLoad>,
    },
    /// A concurrency limit it falls under is full.
    LimitFull {
        /// The limit: its deployment's `concurrency`, or a tag's limit.
        limit: LimitKey,
        /// How many runs the limit lets hold a slot at once.
        slots: u32,
        /// How many runs hold a slot.
        held: u32,
        /// The runs holding them (those the caller may see).
        holders: Vec<Uuid>,
        /// Whether the run will be skipped rather than wait (`on_limit = "skip"`).
        skip: bool,
    },
    /// Its deployment's schedules are paused: no new scheduled runs are made (this run still
    /// starts when due).
    SchedulePaused {
        /// The deployment, as `project/name`.
        deployment: String,
    },
    /// Nothing holds it back: the next claim of an agent on its queue takes it.
    Ready,
}

/// The explanation of one run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Explanation {
    /// The id of the run explained.
    pub run: Uuid,
    /// Its state when it was explained.
    pub state: StateKind,
    /// Whether it waits to be started (claimable).
    pub waiting: bool,
    /// The reasons, most decisive first.
    pub reasons: Vec<Reason>,
    /// One sentence per reason, in the same order.
    pub messages: Vec<String>,
}
