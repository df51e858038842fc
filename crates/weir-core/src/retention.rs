//! Retention: how long a project keeps its finished runs, and which runs are past it.
//!
//! A project's own setting (`retain_days`) wins over the server's default
//! (`weir server --retain-days N`); `0` keeps runs forever, and so does having neither. A run
//! is past retention when it is finished ([`StateKind::is_terminal`]) and its last state change
//! is older than the window: a run retried yesterday counts from yesterday, and a run that is
//! still scheduled, running or waiting is never pruned however old it is.

use crate::api::{FlowRun, LogLine, StateChange, TaskRunDetail};
use crate::{StateKind, Timestamp};
use serde::{Deserialize, Serialize};

/// One line of a retention export (JSON lines, one finished run per line): everything that
/// is deleted with the run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArchivedRun {
    /// The run as it was.
    pub run: FlowRun,
    /// Its state history in the order its changes were committed (the store's `seq`), not
    /// sorted by time: changes of one run can share a time.
    pub history: Vec<StateChange>,
    /// Its task runs with their histories, in id (creation) order.
    pub task_runs: Vec<TaskRunDetail>,
    /// Its log lines, oldest first.
    pub logs: Vec<LogLine>,
}

/// The key of a retention export batch under the export storage:
/// `retention/{project}/{YYYY-MM-DD}/{first run id}.jsonl` (the day of the pass, UTC).
pub fn export_key(project: &str, now: Timestamp, first: uuid::Uuid) -> String {
    format!(
        "retention/{project}/{}/{first}.jsonl",
        now.format("%Y-%m-%d")
    )
}

/// Longest window accepted: 100 years.
pub const MAX_DAYS: u32 = 36_500;

/// The window that applies to a project: its own `retain_days`, else the server default.
/// `None` keeps runs forever.
pub fn effective_days(own: Option<u32>, server_default: Option<u32>) -> Option<u32> {
    own.or(server_default).filter(|d| *d > 0)
}

/// Runs whose last state change is before this time, and that are finished, are past a
/// window of `days` days at `now`.
pub fn cutoff(now: Timestamp, days: u32) -> Timestamp {
    now - chrono::Duration::days(i64::from(days.min(MAX_DAYS)))
}

/// Whether a run in `state` since `state_at` is past the window ending at `cutoff`.
pub fn is_expired(state: StateKind, state_at: Timestamp, cutoff: Timestamp) -> bool {
    state.is_terminal() && state_at < cutoff
}

/// Checks a requested window: 0 (keep forever) to [`MAX_DAYS`].
pub fn check_days(days: u32) -> Result<u32, String> {
    if days > MAX_DAYS {
        Err(format!(
            "retain_days {days} is too large: use 1 to {MAX_DAYS} days, or 0 to keep runs forever"
        ))
    } else {
        Ok(days)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn the_project_wins_and_zero_keeps_forever() {
        assert_eq!(effective_days(Some(7), Some(30)), Some(7));
        assert_eq!(effective_days(None, Some(30)), Some(30));
        assert_eq!(effective_days(Some(0), Some(30)), None);
        assert_eq!(effective_days(None, None), None);
        assert_eq!(effective_days(None, Some(0)), None);
    }

    #[test]
    fn only_finished_runs_older_than_the_window_expire() {
        let now = chrono::Utc.with_ymd_and_hms(2026, 12, 1, 12, 0, 0).unwrap();
        let cut = cutoff(now, 30);
        assert_eq!(
            cut,
            chrono::Utc.with_ymd_and_hms(2026, 11, 1, 12, 0, 0).unwrap()
        );
        let old = cut - chrono::Duration::seconds(1);
        assert!(is_expired(StateKind::Completed, old, cut));
        assert!(is_expired(StateKind::Crashed, old, cut));
        assert!(!is_expired(StateKind::Completed, cut, cut));
        assert!(!is_expired(StateKind::Running, old, cut));
        assert!(!is_expired(StateKind::Scheduled, old, cut));
        assert!(check_days(MAX_DAYS + 1).is_err());
        assert_eq!(check_days(0), Ok(0));
    }
}
