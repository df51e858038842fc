//! Background loops: the scheduler (materialises future runs of scheduled deployments), the
//! crash detector (expired leases → Crashed or a retry; overdue runs → Late), the fold of the
//! dashboard's hourly run counts (`Store::fold_run_hours`, PostgreSQL only), retention
//! (`retention.rs`) and the notification delivery loop (`notify`).
//!
//! Both are safe to run in every replica at once: runs are created with idempotency keys
//! derived from deployment and time, and every transition is a compare-and-set.

use crate::state::AppState;
use chrono::Utc;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use weir_core::StateKind;
use weir_core::api::ProposeState;
use weir_core::schedule::{self, Catchup, catchup};

/// Starts the loops; they stop when `stop` turns true.
pub(crate) fn spawn(state: AppState, stop: watch::Receiver<bool>) -> Vec<JoinHandle<()>> {
    crate::metrics::init();
    crate::notify::describe_metrics();
    vec![
        tokio::spawn(every_tick(
            state.clone(),
            stop.clone(),
            "notifications",
            |st: AppState| async move {
                crate::notify::deliver(&st.store, &st.notifier, &|| st.now()).await
            },
        )),
        tokio::spawn(every_tick(
            state.clone(),
            stop.clone(),
            "scheduler",
            schedule,
        )),
        tokio::spawn(every_tick(
            state.clone(),
            stop.clone(),
            "crash detector",
            reap,
        )),
        tokio::spawn(every_tick(
            state.clone(),
            stop.clone(),
            "run hours",
            |st: AppState| async move { st.store.fold_run_hours().await.map(drop) },
        )),
        tokio::spawn(crate::retention::run(state.clone(), stop.clone())),
        tokio::spawn(every_tick(
            state,
            stop,
            "clock",
            |st: AppState| async move { st.sync_clock().await },
        )),
    ]
}

async fn every_tick<F, Fut>(
    state: AppState,
    mut stop: watch::Receiver<bool>,
    name: &'static str,
    f: F,
) where
    F: Fn(AppState) -> Fut,
    Fut: std::future::Future<Output = Result<(), weir_store::Error>>,
{
    let mut interval = tokio::time::interval(state.options.tick);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = interval.tick() => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        metrics::counter!("weir_background_passes_total", "loop" => name).increment(1);
        if let Err(error) = f(state.clone()).await {
            metrics::counter!("weir_background_errors_total", "loop" => name).increment(1);
            tracing::warn!(message = "background loop failed; will retry", loop_name = name, %error);
        }
    }
}

/// One scheduler pass: move the watermark; if the previous pass is older than the late
/// threshold (no server ran), apply each deployment's catch-up policy to the ticks it missed
/// (`weir_core::schedule::catchup`); then create every scheduled deployment's next runs. With
/// no watermark yet, the previous pass is `Store::inferred_last_pass` (none on a new
/// database).
/// The server runs one pass before it serves, so no agent claims a missed run first.
pub(crate) async fn schedule(state: AppState) -> Result<(), weir_store::Error> {
    let now = state.now();
    let seen = state.store.scheduler_watermark().await?;
    // No watermark: a new database, or one a Weir from before the watermark used — there the
    // last pass is the last moment the database shows a server at work.
    let last_pass = match seen {
        Some(at) => Some(at),
        None => state.store.inferred_last_pass(now).await?,
    };
    let late_after = chrono::Duration::from_std(state.options.late_after)
        .unwrap_or(chrono::Duration::seconds(30));
    let missed = catchup::missed_window(last_pass, now, late_after);
    // Only the pass that moves the watermark past the window catches up (replicas race here).
    let closes = state.store.advance_scheduler_watermark(seen, now).await?;
    let horizon = now
        + chrono::Duration::from_std(state.options.schedule_horizon)
            .unwrap_or(chrono::Duration::days(7));
    let max = state.options.schedule_max_runs;
    let mut created = 0;
    for deployment in state.store.scheduled_deployments().await? {
        let schedules = match schedule::parse_all(&deployment.spec.schedules) {
            Ok(s) => s,
            Err(error) => {
                tracing::warn!(
                    message = "skipping invalid schedule",
                    deployment = %deployment.name, %error
                );
                continue;
            }
        };
        let mut from = now;
        if let Some((after, until)) = missed.filter(|_| closes) {
            let policy = deployment.spec.catchup;
            let plan = catchup::plan(policy, &schedules, after, until);
            let done = state
                .store
                .catch_up(&deployment, after, until, &plan.run, now)
                .await?;
            created += done.created;
            if plan.skipped || !plan.run.is_empty() {
                tracing::info!(
                    message = "caught up ticks missed while no server ran",
                    deployment = %format!("{}/{}", deployment.project, deployment.name),
                    catchup = %policy,
                    missed_from = %after,
                    missed_until = %until,
                    runs = plan.run.len(),
                    removed = done.removed,
                    skipped_some = plan.skipped,
                );
            }
            if plan.skipped && policy == Catchup::All {
                tracing::warn!(
                    message = "catchup = \"all\" ran only the most recent missed ticks; \
                               `weir backfill` creates the older ones",
                    deployment = %format!("{}/{}", deployment.project, deployment.name),
                    most = catchup::MAX_CATCHUP_RUNS,
                );
            }
            // Ticks due within the late threshold are simply due: their runs start now.
            from = until;
        }
        let times = schedule::ticks(&schedules, from, horizon, max);
        created += state
            .store
            .materialise_runs(&deployment, &times, now)
            .await?;
    }
    if created > 0 {
        tracing::debug!(message = "scheduled runs", created);
        state.work_available();
    }
    Ok(())
}

/// Proposes `to` for `run` as the crash detector; a refusal (the run moved on meanwhile)
/// is not an error. Returns the run as changed, if it was.
async fn settle(
    state: &AppState,
    run: &weir_core::run::Run,
    to: StateKind,
    message: String,
    now: chrono::DateTime<Utc>,
) -> Result<Option<weir_core::run::Run>, weir_store::Error> {
    let proposal = ProposeState {
        state: to,
        message: Some(message),
        attempt: run.attempt,
        transition_id: None,
        result: None,
    };
    match state
        .store
        .propose_state(run.id, &proposal, state.lease(), now)
        .await
    {
        Ok(next) => Ok(Some(next)),
        Err(weir_store::Error::Rejected { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

/// One crash-detector pass: expired leases become Crashed (or a retry), overdue runs Late.
pub(crate) async fn reap(state: AppState) -> Result<(), weir_store::Error> {
    let now = state.now();
    let mut changed = false;
    // Right after a start, an expired lease says only that no server took heartbeats (every
    // replica was down, or the database was): agents and flow processes get one lease to
    // heartbeat again first.
    let expired = if state.started.elapsed() < state.options.lease {
        Vec::new()
    } else {
        state.store.expired_leases(now, 200).await?
    };
    for run in expired {
        let since = run
            .lease_expires_at
            .map(|t| t - state.lease())
            .map(|t| t.format("%H:%M:%S UTC").to_string())
            .unwrap_or_else(|| "launch".into());
        let message =
            format!("no heartbeat since {since}: the process or its agent died (lease expired)");
        if let Some(next) = settle(&state, &run, StateKind::Crashed, message, now).await? {
            tracing::warn!(message = "run crashed", run = %run.id, state = %next.state);
            let outcome = if next.state.is_claimable() {
                "retry"
            } else {
                next.state.as_str()
            };
            metrics::counter!("weir_crash_detector_expired_leases_total", "outcome" => outcome)
                .increment(1);
            crate::metrics::run_changed(&next, now);
            if next.state.is_claimable() {
                state.work_available();
            }
            changed = true;
        }
    }
    let late_before = now
        - chrono::Duration::from_std(state.options.late_after)
            .unwrap_or(chrono::Duration::seconds(30));
    for run in state.store.overdue_runs(late_before, 200).await? {
        let message = format!(
            "due at {} and not started",
            run.scheduled_at.format("%H:%M:%S UTC")
        );
        let late = settle(&state, &run, StateKind::Late, message, now)
            .await?
            .is_some();
        if late {
            metrics::counter!("weir_crash_detector_late_total").increment(1);
        }
        changed |= late;
    }
    let lag = match state.store.overdue_runs(now, 1).await {
        Ok(oldest) => oldest
            .first()
            .map(|r| (now - r.scheduled_at).num_milliseconds() as f64 / 1000.0)
            .unwrap_or(0.0),
        Err(_) => 0.0,
    };
    metrics::gauge!("weir_scheduler_lag_seconds").set(lag);
    if changed {
        state.touched();
    }
    Ok(())
}
