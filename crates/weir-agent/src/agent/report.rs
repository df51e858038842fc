//! Reporting to the server: proposing states for an attempt (retried while the server is
//! unreachable), reading runs back, and settling how an attempt ended once its process
//! exited (its own report, the outcome file it left, fencing, else its exit).

use super::{Shared, lock};
use crate::launcher::ExitStatus;
use std::time::Duration;
use uuid::Uuid;
use weir_client::Client;
use weir_core::StateKind;
use weir_core::api::{FlowRun, ProposeState};

/// Backoff of the agent's own calls to an unreachable server: about a minute in all.
const RETRY_DELAYS_MS: [u64; 10] = [
    0, 200, 500, 1000, 2000, 5000, 10_000, 10_000, 15_000, 15_000,
];

/// Proposes a state for our attempt; a refusal (the run moved on) is logged, not fatal.
pub(super) async fn report(sh: &Shared, run: &FlowRun, state: StateKind, message: Option<String>) {
    let p = ProposeState {
        state,
        message,
        attempt: run.attempt,
        transition_id: Some(Uuid::now_v7()),
        result: None,
    };
    deliver(sh, run.id, &p).await;
}

/// Sends a proposal, retrying while the server is unreachable; a refusal (the run moved on)
/// is logged, not fatal.
async fn deliver(sh: &Shared, run: Uuid, p: &ProposeState) {
    for delay in RETRY_DELAYS_MS {
        tokio::time::sleep(Duration::from_millis(delay)).await;
        match sh.client.propose_state(run, p).await {
            Ok(_) => return,
            Err(e) if e.is_transient() => continue,
            Err(e) => {
                tracing::debug!(message = "state not applied", %run, state = %p.state, error = %e);
                return;
            }
        }
    }
    tracing::warn!(message = "could not report state; the crash detector will settle it", %run, state = %p.state);
}

/// Reads a run, retrying while the server is unreachable.
pub(super) async fn read_run(sh: &Shared, run: Uuid) -> Option<FlowRun> {
    read_run_as(&sh.client, run).await
}

/// [`read_run`] through `client`.
async fn read_run_as(client: &Client, run: Uuid) -> Option<FlowRun> {
    for delay in RETRY_DELAYS_MS {
        tokio::time::sleep(Duration::from_millis(delay)).await;
        match client.flow_run(run).await {
            Ok(d) => return Some(d.run),
            Err(e) if e.is_transient() => continue,
            Err(e) => {
                tracing::debug!(message = "cannot read run", %run, error = %e);
                return None;
            }
        }
    }
    None
}

/// After the process exited: if it did not report a final state itself, deliver the one it
/// left in its outcome file, else report one from how it ended.
pub(super) async fn settle(
    sh: &Shared,
    run: &FlowRun,
    plain: bool,
    exit: ExitStatus,
    token: Option<&Client>,
) {
    // A plain command's end is the one its supervisor recorded, when it did (the launcher saw
    // the supervisor's, which is the same but for a signal).
    let exit_file = crate::outcome::exit_path(&sh.options.state_dir, run.id, run.attempt);
    let exit = if plain {
        crate::supervise::read(&exit_file).unwrap_or(exit)
    } else {
        exit
    };
    settle_once(sh, run, plain, exit, token).await;
    let _ = std::fs::remove_file(crate::outcome::path(
        &sh.options.state_dir,
        run.id,
        run.attempt,
    ));
    let _ = std::fs::remove_file(exit_file);
}

async fn settle_once(
    sh: &Shared,
    run: &FlowRun,
    plain: bool,
    exit: ExitStatus,
    token: Option<&Client>,
) {
    let current = match (read_run(sh, run.id).await, token) {
        (Some(r), _) => Some(r),
        // A run whose attempt ended with a retry scheduled is no longer shown to this agent's
        // key; the attempt's token still reads it.
        (None, Some(c)) => read_run_as(c, run.id).await,
        (None, None) => None,
    };
    let Some(current) = current else {
        tracing::warn!(message = "cannot read run after exit; the crash detector will settle it", run = %run.id);
        return;
    };
    if current.attempt != run.attempt || current.state.is_terminal() || current.state.is_claimable()
    {
        tracing::info!(message = "run finished", run = %run.id, state = %current.state, %exit);
        return;
    }
    if let Some(outcome) = crate::outcome::read(&sh.options.state_dir, &current) {
        tracing::info!(message = "run finished; delivering the final state its process left", run = %run.id, state = %outcome.state, %exit);
        deliver(sh, run.id, &outcome).await;
        return;
    }
    // A process that finished before the fence stopped it left its true outcome (above).
    let fenced = lock(sh).get(&run.id).is_some_and(|h| h.fenced);
    if fenced {
        let msg = format!(
            "stopped by its agent, which had no answer from the server for most of the {} s \
             lease (fencing: another attempt may take over, never this one)",
            sh.fence.lease().as_secs()
        );
        tracing::info!(message = "run fenced", run = %run.id, %exit);
        report(sh, &current, StateKind::Crashed, Some(msg)).await;
        return;
    }
    let (state, message) = unreported_end(current.state, plain, &exit);
    tracing::info!(message = "run finished", run = %run.id, %state, %exit);
    report(sh, &current, state, Some(message)).await;
}

/// The state and message to report for an attempt in state `now` whose process ended with
/// `exit` without a final state of its own: the verdict is [`ExitStatus::unreported_end`]'s,
/// unless cancellation was requested meanwhile.
fn unreported_end(now: StateKind, plain: bool, exit: &ExitStatus) -> (StateKind, String) {
    let (verdict, message) = exit.unreported_end(plain);
    let state = weir_core::orchestration::unreported_end(now, verdict);
    if state == verdict {
        (state, message)
    } else {
        (state, format!("cancelled; process ended with {exit}"))
    }
}
