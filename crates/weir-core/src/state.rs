//! Run states and the rules for moving between them.
//!
//! Flow runs and task runs share the same states. The server enforces [`StateKind::can_become`]
//! for flow runs; the SDK follows it for the task runs it drives.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The state of a flow run or task run.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
pub enum StateKind {
    /// Waiting for its scheduled time (or already due and waiting for an agent).
    Scheduled,
    /// Due for longer than the grace period and still not started.
    Late,
    /// Claimed by an agent, being launched.
    Pending,
    /// Executing user code.
    Running,
    /// Finished successfully.
    Completed,
    /// Finished with an error raised by user code.
    Failed,
    /// Its process or infrastructure died without reporting a final state.
    Crashed,
    /// Cancellation was requested and is being carried out.
    Cancelling,
    /// Stopped on request.
    Cancelled,
    /// Failed, with retries left: it will be scheduled again after its retry delay.
    AwaitingRetry,
    /// Suspended by user code or an operator; resumes into Running.
    Paused,
}

/// A transition that the rules do not allow.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a run in state {from} cannot move to {to}")]
pub struct TransitionError {
    /// The state the run is in.
    pub from: StateKind,
    /// The state that was proposed.
    pub to: StateKind,
}

impl StateKind {
    /// Every state, in lifecycle order.
    pub const ALL: [StateKind; 11] = [
        StateKind::Scheduled,
        StateKind::Late,
        StateKind::Pending,
        StateKind::Running,
        StateKind::Completed,
        StateKind::Failed,
        StateKind::Crashed,
        StateKind::Cancelling,
        StateKind::Cancelled,
        StateKind::AwaitingRetry,
        StateKind::Paused,
    ];

    /// A terminal state never changes again, except through an explicit retry that starts a
    /// new attempt.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            StateKind::Completed | StateKind::Failed | StateKind::Crashed | StateKind::Cancelled
        )
    }

    /// States in which an agent may claim the run (once it is due).
    pub fn is_claimable(self) -> bool {
        matches!(
            self,
            StateKind::Scheduled | StateKind::Late | StateKind::AwaitingRetry
        )
    }

    /// States in which a launched process is (or should be) alive and holds a lease.
    pub fn holds_lease(self) -> bool {
        matches!(
            self,
            StateKind::Pending | StateKind::Running | StateKind::Cancelling | StateKind::Paused
        )
    }

    /// States that count as a failure in summaries and success rates.
    pub fn is_failure(self) -> bool {
        matches!(self, StateKind::Failed | StateKind::Crashed)
    }

    /// Whether a run in `self` may move to `next` by a proposal.
    ///
    /// AwaitingRetry is what Failed or Crashed becomes while retries are left, so it is
    /// reachable from every state that may fail or crash, except Cancelling (a run being
    /// cancelled is not retried). Retrying a terminal run is not a transition: it starts a new
    /// attempt (see the server).
    pub fn can_become(self, next: StateKind) -> bool {
        use StateKind::*;
        match self {
            Scheduled | Late => matches!(next, Late | Pending | Running | Cancelled | Scheduled),
            AwaitingRetry => matches!(next, Pending | Running | Cancelled | Scheduled),
            Pending => matches!(
                next,
                Running
                    | Completed
                    | Failed
                    | Crashed
                    | Cancelling
                    | Cancelled
                    | Scheduled
                    | AwaitingRetry
            ),
            Running => matches!(
                next,
                Completed | Failed | Crashed | Cancelling | Cancelled | Paused | AwaitingRetry
            ),
            Paused => matches!(
                next,
                Running | Cancelling | Cancelled | Crashed | Failed | AwaitingRetry
            ),
            Cancelling => matches!(next, Cancelled | Completed | Failed | Crashed),
            Completed | Failed | Crashed | Cancelled => false,
        }
    }

    /// [`Self::can_become`] as a `Result` naming both states.
    pub fn check_transition(self, next: StateKind) -> Result<(), TransitionError> {
        if self.can_become(next) {
            Ok(())
        } else {
            Err(TransitionError {
                from: self,
                to: next,
            })
        }
    }

    /// The name used in the API, the CLI and the database.
    pub fn as_str(self) -> &'static str {
        match self {
            StateKind::Scheduled => "Scheduled",
            StateKind::Late => "Late",
            StateKind::Pending => "Pending",
            StateKind::Running => "Running",
            StateKind::Completed => "Completed",
            StateKind::Failed => "Failed",
            StateKind::Crashed => "Crashed",
            StateKind::Cancelling => "Cancelling",
            StateKind::Cancelled => "Cancelled",
            StateKind::AwaitingRetry => "AwaitingRetry",
            StateKind::Paused => "Paused",
        }
    }
}

impl std::fmt::Display for StateKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A state name that is not one of [`StateKind::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown state {0:?}; expected one of Scheduled, Late, Pending, Running, Completed, Failed, Crashed, Cancelling, Cancelled, AwaitingRetry, Paused"
)]
pub struct UnknownState(pub String);

impl std::str::FromStr for StateKind {
    type Err = UnknownState;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        StateKind::ALL
            .into_iter()
            .find(|k| k.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| UnknownState(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn terminal_states_never_move() {
        for from in StateKind::ALL.into_iter().filter(|s| s.is_terminal()) {
            for to in StateKind::ALL {
                assert!(!from.can_become(to), "{from} -> {to} must be refused");
            }
        }
    }

    #[test]
    fn names_round_trip() {
        for s in StateKind::ALL {
            assert_eq!(s.as_str().parse::<StateKind>(), Ok(s));
            let json = serde_json::to_string(&s).expect("serialize");
            assert_eq!(json, format!("\"{s}\""));
        }
        assert!("Runing".parse::<StateKind>().is_err());
    }

    #[test]
    fn the_happy_path_is_legal() {
        use StateKind::*;
        let path = [Scheduled, Pending, Running, Completed];
        for w in path.windows(2) {
            assert!(w[0].can_become(w[1]), "{} -> {}", w[0], w[1]);
        }
        assert!(Running.can_become(Failed));
        assert!(Running.can_become(Crashed));
        assert!(Cancelling.can_become(Cancelled));
        assert!(!Completed.can_become(Running));
        assert!(!Scheduled.can_become(Completed));
    }

    fn any_state() -> impl Strategy<Value = StateKind> {
        (0..StateKind::ALL.len()).prop_map(|i| StateKind::ALL[i])
    }

    proptest! {
        /// Whatever sequence of proposals arrives, applying only the legal ones never leaves a
        /// terminal state and never enters Pending except from a claimable state.
        #[test]
        fn random_proposals_keep_invariants(proposals in proptest::collection::vec(any_state(), 0..64)) {
            let mut current = StateKind::Scheduled;
            let mut reached_terminal = false;
            for next in proposals {
                if current.check_transition(next).is_ok() {
                    prop_assert!(!reached_terminal, "moved after a terminal state");
                    if next == StateKind::Pending {
                        prop_assert!(current.is_claimable());
                    }
                    current = next;
                    reached_terminal = current.is_terminal();
                }
            }
        }
    }
}
