//! State names as SQL text, generated from `weir_core::StateKind` and its predicates.
//!
//! The store's statements filter by state sets (claimable, holding a lease). Those sets are
//! decided in weir-core; this module turns them into `IN (…)` lists so that adding or moving a
//! state there changes every statement here. No store SQL spells a state name as a literal
//! (a guard test below checks the sources).

use std::sync::LazyLock;
use weir_core::StateKind;

/// `'Name'` for one state.
pub(crate) fn one(state: StateKind) -> String {
    format!("'{}'", state.as_str())
}

fn list(pred: impl Fn(StateKind) -> bool) -> String {
    StateKind::ALL
        .into_iter()
        .filter(|s| pred(*s))
        .map(one)
        .collect::<Vec<_>>()
        .join(", ")
}

/// States an agent may claim from ([`StateKind::is_claimable`]).
pub(crate) static CLAIMABLE: LazyLock<String> = LazyLock::new(|| list(StateKind::is_claimable));

/// States whose run holds a lease ([`StateKind::holds_lease`]).
pub(crate) static LEASED: LazyLock<String> = LazyLock::new(|| list(StateKind::holds_lease));

/// States that are claimable or hold a lease: a run an agent cares about.
pub(crate) static ACTIVE: LazyLock<String> =
    LazyLock::new(|| list(|s| s.is_claimable() || s.holds_lease()));

/// Finished states ([`StateKind::is_terminal`]): what retention may delete.
pub(crate) static FINISHED: LazyLock<String> = LazyLock::new(|| list(StateKind::is_terminal));

/// States counted as failures in summaries ([`StateKind::is_failure`]).
pub(crate) static FAILURES: LazyLock<String> = LazyLock::new(|| list(StateKind::is_failure));

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_follow_the_core_predicates() {
        assert_eq!(*CLAIMABLE, "'Scheduled', 'Late', 'AwaitingRetry'");
        assert_eq!(*LEASED, "'Pending', 'Running', 'Cancelling', 'Paused'");
        assert_eq!(*FAILURES, "'Failed', 'Crashed'");
        assert_eq!(*FINISHED, "'Completed', 'Failed', 'Crashed', 'Cancelled'");
        for s in StateKind::ALL {
            assert_eq!(
                ACTIVE.contains(&one(s)),
                s.is_claimable() || s.holds_lease(),
                "{s}"
            );
        }
    }

    /// No statement in the store spells a state name: they all come from this module.
    #[test]
    fn no_state_literals_in_store_sql() {
        let sources = [
            ("agents.rs", include_str!("agents.rs")),
            ("batch.rs", include_str!("batch.rs")),
            ("claim.rs", include_str!("claim.rs")),
            ("deployments.rs", include_str!("deployments.rs")),
            ("keys.rs", include_str!("keys.rs")),
            ("limits.rs", include_str!("limits.rs")),
            ("load.rs", include_str!("load.rs")),
            ("logs.rs", include_str!("logs.rs")),
            ("runs.rs", include_str!("runs.rs")),
            ("scheduling.rs", include_str!("scheduling.rs")),
            ("task_runs.rs", include_str!("task_runs.rs")),
            ("retention.rs", include_str!("retention.rs")),
            ("why.rs", include_str!("why.rs")),
        ];
        for (file, text) in sources {
            for s in StateKind::ALL {
                assert!(
                    !text.contains(&one(s)),
                    "{file} spells the state {s} as an SQL literal; use crate::states"
                );
            }
        }
    }
}
