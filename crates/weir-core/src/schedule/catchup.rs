//! Catch-up: what the scheduler does with the ticks a deployment missed while no server ran.
//!
//! The scheduler keeps a watermark, the time of its last pass (any replica's). When a pass
//! finds the watermark older than the late threshold (`weir server --late-after-s`), the
//! server was away: the ticks after the watermark that were due longer ago than that
//! threshold are *missed* ([`missed_window`]). A tick due more recently is simply due: its run
//! starts now, whatever the policy. The deployment's `catchup` policy then decides
//! ([`plan`]):
//!
//! - `none`: no run for any missed tick (runs already put ahead for them are removed);
//! - `latest` (the default): one run, for the most recent missed tick;
//! - `all`: a run for every missed tick, at most [`MAX_CATCHUP_RUNS`] (the most recent ones);
//!   older ticks of a longer outage are left out — `weir backfill` creates them on request.
//!
//! Catch-up runs are due at once and keep their tick as `tick_at`.

use super::Schedule;
use crate::Timestamp;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Most runs `catchup = "all"` creates for one deployment after one outage.
pub const MAX_CATCHUP_RUNS: usize = 100;

/// A deployment's policy for ticks missed while no server ran.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Catchup {
    /// Skip every missed tick.
    None,
    /// Run the most recent missed tick only.
    #[default]
    Latest,
    /// Run every missed tick (at most [`MAX_CATCHUP_RUNS`], the most recent).
    All,
}

impl Catchup {
    /// Whether this is the default, `latest` (left out of stored specs).
    pub fn is_latest(&self) -> bool {
        *self == Catchup::Latest
    }

    /// The name as written in `weir.toml` and stored.
    pub fn as_str(&self) -> &'static str {
        match self {
            Catchup::None => "none",
            Catchup::Latest => "latest",
            Catchup::All => "all",
        }
    }
}

impl std::fmt::Display for Catchup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Catchup {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "none" => Ok(Catchup::None),
            "latest" => Ok(Catchup::Latest),
            "all" => Ok(Catchup::All),
            other => Err(format!(
                "unknown catchup policy {other:?}: use \"none\", \"latest\" or \"all\""
            )),
        }
    }
}

/// The window of missed ticks, `(after, until]`, when the scheduler's previous pass
/// (`last_pass`) is so old that ticks went by with no server: `after` is that pass, `until`
/// is `now - late_after` (ticks due since then are just due). `None` when nothing was missed:
/// no previous pass (a new database), or a recent one.
pub fn missed_window(
    last_pass: Option<Timestamp>,
    now: Timestamp,
    late_after: chrono::Duration,
) -> Option<(Timestamp, Timestamp)> {
    let after = last_pass?;
    let until = now.checked_sub_signed(late_after)?;
    (until > after).then_some((after, until))
}

/// What catch-up does for one deployment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatchUpPlan {
    /// Ticks of the window that get a run (increasing).
    pub run: Vec<Timestamp>,
    /// Whether missed ticks were left without a run (by `none`, `latest`, or the cap of
    /// `all`).
    pub skipped: bool,
}

/// Applies `policy` to the ticks of `schedules` in the missed window `(after, until]`.
pub fn plan(
    policy: Catchup,
    schedules: &[Schedule],
    after: Timestamp,
    until: Timestamp,
) -> CatchUpPlan {
    let keep = match policy {
        Catchup::None => 0,
        Catchup::Latest => 1,
        Catchup::All => MAX_CATCHUP_RUNS,
    };
    let (run, skipped) = super::last_ticks(schedules, after, until, keep);
    CatchUpPlan { run, skipped }
}
