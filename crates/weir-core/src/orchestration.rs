//! The orchestration rules the server applies to flow runs, as pure functions.
//!
//! The store loads a run, asks [`decide`] what the proposal turns it into, and writes the
//! result with a compare-and-set on `(state, attempt)`, so a decision is applied once even
//! when several server replicas race.

use crate::api::ProposeState;
use crate::limits::{LimitKey, OnLimit, SKIPPED, skip_message};
use crate::run::Run;
use crate::{StateKind, Timestamp, TransitionError};
use chrono::Duration;

/// The state a claim moves a run into: claimed by an agent, being launched. A claim takes a
/// run in a [`StateKind::is_claimable`] state, bumps its attempt (the fencing token) and gives
/// the agent a lease.
pub const CLAIMED: StateKind = StateKind::Pending;

/// Why a proposal was refused. Both map to HTTP 409 with the run's current state.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Rejection {
    /// The proposer belongs to an older attempt of the run: it is a straggler.
    #[error("stale attempt {proposed}: the run is on attempt {current}")]
    StaleAttempt {
        /// Attempt named by the proposal.
        proposed: u32,
        /// The attempt the run is on now, as stored.
        current: u32,
    },
    /// The transition is not legal from the current state.
    #[error(transparent)]
    Illegal(#[from] TransitionError),
}

/// Applies a state proposal to `run` at server time `now`, returning the run as it must be
/// stored. `lease` is how long a run in Pending/Running is held without a heartbeat.
///
/// Rules beyond [`StateKind::can_become`]:
/// - the proposal must name the run's current attempt;
/// - Failed or Crashed with retries left becomes AwaitingRetry, due after the run's
///   [`Run::retry_delay`], unless the run is Cancelling (cancellation wins: it ends Cancelled or Failed);
/// - entering Running stamps `started_at` and renews the lease;
/// - a terminal state stamps `ended_at` and releases the agent and lease.
pub fn decide(
    run: &Run,
    proposal: &ProposeState,
    lease: Duration,
    now: Timestamp,
) -> Result<Run, Rejection> {
    if proposal.attempt != run.attempt {
        return Err(Rejection::StaleAttempt {
            proposed: proposal.attempt,
            current: run.attempt,
        });
    }
    let mut target = proposal.state;
    if target == StateKind::Crashed {
        target = unreported_end(run.state, target);
    }
    run.state.check_transition(target)?;
    let now = stamp(run, now);
    let mut next = run.clone();
    next.state_message = proposal.message.clone();
    next.state_at = now;
    if matches!(target, StateKind::Failed | StateKind::Crashed)
        && run.retries_used < run.retries
        && run.state != StateKind::Cancelling
    {
        next.state = StateKind::AwaitingRetry;
        next.retries_used += 1;
        next.scheduled_at = now + run.retry_delay;
        next.agent_id = None;
        next.lease_expires_at = None;
        next.state_message = Some(format!(
            "{target}: {} (retry {} of {} at {})",
            proposal.message.as_deref().unwrap_or("no message"),
            next.retries_used,
            run.retries,
            next.scheduled_at.format("%H:%M:%S UTC")
        ));
        return Ok(next);
    }
    next.state = target;
    match target {
        StateKind::Running => {
            next.started_at.get_or_insert(now);
            next.lease_expires_at = Some(now + lease);
        }
        StateKind::Pending | StateKind::Cancelling | StateKind::Paused => {
            next.lease_expires_at = Some(now + lease);
        }
        StateKind::Scheduled | StateKind::Late | StateKind::AwaitingRetry => {
            next.agent_id = None;
            next.lease_expires_at = None;
        }
        StateKind::Completed | StateKind::Failed | StateKind::Crashed | StateKind::Cancelled => {
            next.ended_at = Some(now);
            next.lease_expires_at = None;
            if target == StateKind::Completed {
                next.result = proposal.result.clone();
            }
        }
    }
    Ok(next)
}

/// The time a change of `run` decided at `now` is stamped with: never before the state it
/// leaves. Replicas read the time before they load the run, so a decision that waited behind
/// another's write can hold an older `now` than the state it changes; stamping it with that
/// would put the run's history out of time order (the fault suite's `history` invariant).
pub fn stamp(run: &Run, now: Timestamp) -> Timestamp {
    now.max(run.state_at)
}

/// An explicit retry of a terminal run: it goes back to Scheduled, due now; the next claim
/// starts a new attempt, which reuses the persisted results of task runs completed before
/// when `from_failed` (see [`Run::resume`]).
pub fn retry(run: &Run, from_failed: bool, now: Timestamp) -> Result<Run, TransitionError> {
    if !run.state.is_terminal() {
        return Err(TransitionError {
            from: run.state,
            to: StateKind::Scheduled,
        });
    }
    let now = stamp(run, now);
    let mut next = run.clone();
    next.state = StateKind::Scheduled;
    next.state_message = Some(format!("retry requested after {}", run.state));
    next.state_at = now;
    next.scheduled_at = now;
    next.ended_at = None;
    next.started_at = None;
    next.agent_id = None;
    next.lease_expires_at = None;
    next.result = None;
    next.resume = from_failed;
    Ok(next)
}

/// A cancellation request: a run not yet launched ends Cancelled at once; a launched one goes
/// to Cancelling and its agent (or own process) stops it. Refused for runs already ended.
pub fn cancel(run: &Run, now: Timestamp) -> Result<Run, TransitionError> {
    let target = cancel_target(run.state).ok_or(TransitionError {
        from: run.state,
        to: StateKind::Cancelled,
    })?;
    let now = stamp(run, now);
    let mut next = run.clone();
    next.state = target;
    next.state_at = now;
    next.state_message = Some("cancellation requested".into());
    if target == StateKind::Cancelled {
        next.ended_at = Some(now);
        next.lease_expires_at = None;
        next.agent_id = None;
    }
    Ok(next)
}

/// How a run ends that stopped without reporting a final state of its own (its process or
/// container was killed, crashed or exited, or was Crashed by whoever watched it): Cancelled
/// once its cancellation was requested (`current` is Cancelling), whatever stopped it;
/// otherwise `otherwise`, the verdict of how it stopped.
pub fn unreported_end(current: StateKind, otherwise: StateKind) -> StateKind {
    if current == StateKind::Cancelling {
        StateKind::Cancelled
    } else {
        otherwise
    }
}

/// What a cancellation request does: runs not yet launched end Cancelled at once; launched
/// ones go to Cancelling and their agent stops them.
pub fn cancel_target(state: StateKind) -> Option<StateKind> {
    match state {
        StateKind::Scheduled | StateKind::Late | StateKind::AwaitingRetry => {
            Some(StateKind::Cancelled)
        }
        StateKind::Pending | StateKind::Running | StateKind::Paused => Some(StateKind::Cancelling),
        _ => None,
    }
}

/// Whether a due run would be skipped rather than wait: its deployment says `skip` and this is
/// the run's first attempt.
pub fn skips(run: &Run, on_limit: OnLimit) -> bool {
    on_limit == OnLimit::Skip && run.attempt == 0 && run.state.is_claimable()
}

/// A due run skipped because `limit` was full: it ends [`SKIPPED`] at `now`, with
/// [`skip_message`].
pub fn skip(
    run: &Run,
    limit: &LimitKey,
    slots: u32,
    now: Timestamp,
) -> Result<Run, TransitionError> {
    if !run.state.is_claimable() || run.attempt != 0 {
        return Err(TransitionError {
            from: run.state,
            to: SKIPPED,
        });
    }
    let now = stamp(run, now);
    let mut next = run.clone();
    next.state = SKIPPED;
    next.state_message = Some(skip_message(limit, slots));
    next.state_at = now;
    next.ended_at = Some(now);
    next.agent_id = None;
    next.lease_expires_at = None;
    Ok(next)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;
    use uuid::Uuid;

    /// A run at `attempt` with `retries`, a retry delay of [`D`], held by an agent and due
    /// when it last changed.
    fn run(state: StateKind, attempt: u32, retries: u32) -> Run {
        let mut r = crate::run::sample(state);
        r.attempt = attempt;
        r.retries = retries;
        r.retry_delay = D;
        r.agent_id = Some(Uuid::now_v7());
        r.scheduled_at = r.state_at;
        r
    }

    fn propose(state: StateKind, attempt: u32) -> ProposeState {
        ProposeState {
            state,
            message: Some("boom".into()),
            attempt,
            transition_id: None,
            result: None,
        }
    }

    const D: Duration = Duration::seconds(10);

    #[test]
    fn a_change_decided_with_an_older_clock_is_stamped_no_earlier_than_the_state_it_leaves() {
        let r = run(StateKind::Running, 1, 0);
        let behind = r.state_at - Duration::milliseconds(57);
        let done = decide(&r, &propose(StateKind::Completed, 1), D, behind).expect("legal");
        assert_eq!(done.state_at, r.state_at);
        assert_eq!(done.ended_at, Some(r.state_at));
        let again = retry(&done, false, behind).expect("terminal runs can be retried");
        assert_eq!(again.state_at, r.state_at);
        let cancelled = cancel(&r, behind).expect("running runs can be cancelled");
        assert_eq!(cancelled.state_at, r.state_at);
        let later = r.state_at + Duration::seconds(1);
        let ok = decide(&r, &propose(StateKind::Completed, 1), D, later).expect("legal");
        assert_eq!(ok.state_at, later, "a later clock is kept as it is");
    }

    #[test]
    fn stale_attempts_are_refused() {
        let r = run(StateKind::Running, 2, 0);
        let e = decide(&r, &propose(StateKind::Completed, 1), D, Utc::now()).expect_err("stale");
        assert_eq!(
            e,
            Rejection::StaleAttempt {
                proposed: 1,
                current: 2
            }
        );
    }

    #[test]
    fn failure_with_retries_left_awaits_retry() {
        let r = run(StateKind::Running, 1, 2);
        let now = Utc::now();
        let next = decide(&r, &propose(StateKind::Failed, 1), D, now).expect("legal");
        assert_eq!(next.state, StateKind::AwaitingRetry);
        assert_eq!(next.retries_used, 1);
        assert_eq!(next.scheduled_at, now + D);
        assert!(next.agent_id.is_none());
        let mut spent = r.clone();
        spent.retries_used = 2;
        let next = decide(&spent, &propose(StateKind::Crashed, 1), D, now).expect("legal");
        assert_eq!(next.state, StateKind::Crashed);
        assert_eq!(next.ended_at, Some(now));
    }

    #[test]
    fn terminal_runs_only_move_by_retry() {
        let r = run(StateKind::Completed, 1, 0);
        assert!(decide(&r, &propose(StateKind::Running, 1), D, Utc::now()).is_err());
        let again = retry(&r, false, Utc::now()).expect("terminal runs can be retried");
        assert_eq!(again.state, StateKind::Scheduled);
        assert!(!again.resume);
        let resumed = retry(&r, true, Utc::now()).expect("terminal runs can be retried");
        assert!(
            resumed.resume,
            "a retry from_failed resumes its next attempt"
        );
        assert!(retry(&run(StateKind::Running, 1, 0), false, Utc::now()).is_err());
    }

    /// Regression (#10, `partition_long`): a claimed run whose lease expired before it
    /// started (Pending, then Crashed with retries left) was stored as Pending → AwaitingRetry,
    /// which `can_become` refused. Every state `decide` stores must be one the rules allow.
    #[test]
    fn every_decision_is_a_legal_transition() {
        for from in StateKind::ALL {
            for to in StateKind::ALL {
                for retries in [0, 2] {
                    let r = run(from, 1, retries);
                    if let Ok(next) = decide(&r, &propose(to, 1), D, Utc::now()) {
                        assert!(
                            from.can_become(next.state),
                            "{from} + proposed {to} (retries {retries}) stored {}, which \
                             can_become refuses",
                            next.state
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn a_failure_while_cancelling_is_not_retried() {
        let r = run(StateKind::Cancelling, 1, 3);
        let next = decide(&r, &propose(StateKind::Failed, 1), D, Utc::now()).expect("legal");
        assert_eq!(next.state, StateKind::Failed);
        assert_eq!(next.retries_used, 0);
    }

    #[test]
    fn crash_while_cancelling_is_cancelled() {
        let r = run(StateKind::Cancelling, 1, 3);
        let next = decide(&r, &propose(StateKind::Crashed, 1), D, Utc::now()).expect("legal");
        assert_eq!(next.state, StateKind::Cancelled);
    }

    #[test]
    fn only_a_first_attempt_that_is_waiting_is_skipped() {
        let mut run = crate::run::sample(StateKind::Scheduled);
        let now = chrono::Utc::now();
        let key = LimitKey::Deployment("main/etl".into());
        let next = skip(&run, &key, 2, now).expect("a waiting first attempt is skipped");
        assert_eq!(next.state, SKIPPED);
        assert_eq!(next.ended_at, Some(now));
        let msg = next.state_message.expect("a message");
        assert!(msg.contains("main/etl") && msg.contains("skip"), "{msg}");
        assert!(skips(&run, OnLimit::Skip));
        assert!(!skips(&run, OnLimit::Wait));
        run.attempt = 1;
        run.state = StateKind::AwaitingRetry;
        assert!(skip(&run, &key, 2, now).is_err());
        assert!(!skips(&run, OnLimit::Skip));
        run.attempt = 0;
        run.state = StateKind::Running;
        assert!(skip(&run, &key, 2, now).is_err());
    }
}
