//! What `weir deploy --plan` adds to the diff for schedules: the next fire times of each
//! created or changed schedule, in UTC and the schedule's local time, with DST notes.

use weir_core::Timestamp;
use weir_core::api::DeploymentSpec;
use weir_core::schedule::{self, FireTime};

/// How many fire times the plan shows per deployment.
pub const PLAN_FIRE_TIMES: usize = 3;

/// The next [`PLAN_FIRE_TIMES`] fire times of `new`'s schedules after `now`, when they are
/// new or differ from `old`'s (the stored spec; `None` for a deployment being created).
/// Empty when the schedules are unchanged or there are none.
pub fn fire_times(
    old: Option<&DeploymentSpec>,
    new: &DeploymentSpec,
    now: Timestamp,
) -> Vec<FireTime> {
    if old.is_some_and(|o| o.schedules == new.schedules) {
        return Vec::new();
    }
    // The file's schedules were checked when it was parsed.
    let Ok(schedules) = schedule::parse_all(&new.schedules) else {
        return Vec::new();
    };
    schedule::next_fire_times(&schedules, now, PLAN_FIRE_TIMES)
}

/// The plan's lines for [`fire_times`]: `next fire: 2026-12-02 02:00 UTC (2026-12-02 03:00
/// CET)`, a DST note after any that meets a change.
pub fn fire_time_lines(times: &[FireTime]) -> Vec<String> {
    let mut out = Vec::new();
    for t in times {
        out.push(format!("  next fire: {}", t.short()));
        if let Some(note) = &t.dst {
            out.push(format!("             {}", note.describe()));
        }
    }
    out
}
