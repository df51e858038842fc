//! Wire types of backfills: runs for every tick of a deployment's schedules in a window.

use crate::{StateKind, Timestamp};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A backfill window may hold at most this many ticks unless `max` says otherwise.
pub const DEFAULT_BACKFILL_MAX: u32 = 1000;

/// The largest `max` a backfill accepts.
pub const MAX_BACKFILL: u32 = 10_000;

/// Body of `POST /projects/{project}/deployments/{name}/backfill`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Backfill {
    /// The window's first instant: ticks at or after it.
    pub from: Timestamp,
    /// The window's last instant: ticks at or before it. Not in the future (the schedule
    /// runs future ticks itself).
    pub to: Timestamp,
    /// Refuse a window holding more ticks than this (default 1000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = MAX_BACKFILL))]
    pub max: Option<u32>,
    /// Only report what would be created; create nothing.
    #[serde(default)]
    pub dry_run: bool,
}

/// What a backfill did (or, with `dry_run`, would do) for one tick.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum BackfillOutcome {
    /// A run was created for the tick.
    Created,
    /// The tick already had its run (from the scheduler, catch-up or an earlier backfill).
    Exists,
    /// A run would be created (`dry_run`).
    WouldCreate,
}

/// One tick of a backfill window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct BackfillTick {
    /// The tick: the time the schedule names (the run's `tick_at`).
    pub tick_at: Timestamp,
    /// What the backfill did for the tick: created a run, found one, or would
    /// create one.
    pub outcome: BackfillOutcome,
    /// The tick's run, when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<Uuid>,
    /// The tick's run's readable name, when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_name: Option<String>,
    /// The tick's run's state now, when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<StateKind>,
}

/// Answer of a backfill.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct BackfillResult {
    /// The project of the deployment backfilled.
    pub project: String,
    /// The deployment backfilled, by name.
    pub deployment: String,
    /// The window's first instant.
    pub from: Timestamp,
    /// The window's last instant.
    pub to: Timestamp,
    /// Whether nothing was created on purpose (`dry_run`).
    pub dry_run: bool,
    /// Every tick of the window, oldest first.
    pub ticks: Vec<BackfillTick>,
    /// Runs this request created (0 for a `dry_run`).
    pub created: u32,
    /// Ticks that already had their run.
    pub existing: u32,
}
