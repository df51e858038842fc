//! Flow runs: the types their reads take and give, and the helpers other modules write runs
//! through. The work is in the child modules, one job each:
//!
//! - [`read`]: one run, its history, pages of runs, counts, due and upcoming runs;
//! - [`write`]: write transactions, creating and importing runs, history rows;
//! - [`change`]: state proposals, cancellation and retries, as compare-and-set transitions;
//! - [`lease`]: renewing the leases agents and processes hold, and finding expired ones.
//!
//! Claiming runs for agents is [`crate::claim`]'s job.

use uuid::Uuid;
use weir_core::{StateKind, Timestamp};

mod change;
mod lease;
mod read;
mod write;

pub(crate) use change::{rejected, update_run};
pub(crate) use write::{insert_history, insert_run};

/// Everything needed to create a flow run: decided by `weir_core::create`.
pub use weir_core::create::NewRun as NewFlowRun;

/// What [`crate::Store::create_flow_run`] gives: the run, new or the one an earlier request
/// with the same idempotency key created.
#[derive(Debug, Clone, PartialEq)]
pub struct Created {
    /// The run as stored.
    pub run: weir_core::run::Run,
    /// Whether this call created it (false: it existed already, with the same key).
    pub created: bool,
}

/// Filters for listing flow runs. Empty filters match everything.
#[derive(Debug, Clone, Default)]
pub struct RunFilter {
    /// Only these projects (`None`: all).
    pub projects: Option<Vec<String>>,
    /// Only runs of this deployment, by id (`None`: any, ad-hoc runs included).
    pub deployment_id: Option<Uuid>,
    /// Only runs of this flow, by name (`None`: any).
    pub flow: Option<String>,
    /// Only runs in one of these states.
    pub states: Vec<StateKind>,
    /// Created at or after.
    pub since: Option<Timestamp>,
    /// Created before this time (exclusive).
    pub until: Option<Timestamp>,
    /// Runs older than this id (the previous page's cursor).
    pub before: Option<Uuid>,
    /// Most runs to return; clamped to `1..=1000`.
    pub limit: u32,
}

/// Kept here too for the modules that bind through `runs`.
pub(crate) use crate::codec::Bind;

/// Runs per multi-row statement of [`crate::Store::import_flow_runs`]: 26 columns each, so about
/// 13,000 parameters, below SQLite's (32,766) and PostgreSQL's (65,535) limits.
pub const IMPORT_CHUNK: usize = 500;

/// Task runs of one flow run grouped by task, for timelines of runs too large to draw one
/// bar per task run.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskGroup {
    /// The task's name, as its `#[task]` gives it.
    pub task: String,
    /// How many task runs.
    pub count: u64,
    /// How many of them Completed.
    pub completed: u64,
    /// How many Failed or Crashed.
    pub failed: u64,
    /// When the group's first task run was created.
    pub first_at: Timestamp,
    /// Last ended (or last state change).
    pub last_at: Timestamp,
}
