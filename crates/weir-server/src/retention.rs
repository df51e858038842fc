//! The retention loop: every `retain_interval`, for each project with a window
//! ([`weir_core::retention::effective_days`]: its own `retain_days`, else the server's
//! `--retain-days`), delete its finished runs past the window with their task runs, states
//! and logs — optionally exported first, as JSON lines, to `--retain-export` storage.
//!
//! Writers never wait long: each batch is read without a transaction, exported outside any
//! transaction, and deleted in one short one ([`weir_store::Store::delete_runs`]); the batch
//! size adapts so that a delete transaction stays near [`TARGET_TX`], and the loop pauses
//! between batches as long as the last one took, so queued writes go first and retention
//! holds the writer at most about half the time. When the export of a batch fails, that batch and
//! the rest of the project's pass are left alone: nothing is deleted that was not exported.
//! Each pass that deleted something is one audit entry (`runs.pruned`, actor
//! [`ACTOR`]) and one log line per project.
//!
//! Safe in every replica: a run is deleted only if it is still finished and past the window
//! inside the deleting transaction, and PostgreSQL replicas skip each other's locked rows (an
//! export may then hold a run that another replica deleted: exports are at least once).

use crate::state::AppState;
use std::time::{Duration, Instant};
use tokio::sync::watch;
use weir_core::audit::AuditAction;
use weir_core::retention::{self, ArchivedRun};
use weir_results::ResultStore;
use weir_store::Archived;
use weir_store::Pruned;

/// The audit log's actor for what retention does.
pub const ACTOR: &str = "server:retention";

/// Delete transactions aim at this length; the batch shrinks above it and grows well below.
/// A write that arrives meanwhile waits for at most about one such transaction.
const TARGET_TX: Duration = Duration::from_millis(5);

/// The batch never shrinks below this many runs, however slow a transaction is.
const MIN_BATCH: u32 = 10;

/// Why a pass stopped early.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Error {
    /// The database failed.
    #[error(transparent)]
    Store(#[from] weir_store::Error),
    /// A batch could not be exported; nothing of it was deleted.
    #[error("retention export to {url} failed, nothing of the batch was deleted: {source}")]
    Export {
        /// The `--retain-export` storage URL.
        url: String,
        /// The storage's error, naming what to check.
        source: weir_results::Error,
    },
    /// A run could not be encoded (a bug).
    #[error("cannot encode an exported run: {0}")]
    Encode(#[from] serde_json::Error),
}

/// Runs a pass every `retain_interval` until `stop` turns true.
pub(crate) async fn run(state: AppState, mut stop: watch::Receiver<bool>) {
    let export = state
        .options
        .retain_export
        .as_deref()
        .and_then(|url| ResultStore::open(url).ok());
    let mut interval = tokio::time::interval(state.options.retain_interval);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = interval.tick() => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        if let Err(error) = pass(&state, export.as_ref(), &stop).await {
            tracing::warn!(message = "retention pass stopped; will retry", %error);
        }
    }
}

/// One pass over every project; returns what it deleted in all.
pub(crate) async fn pass(
    state: &AppState,
    export: Option<&ResultStore>,
    stop: &watch::Receiver<bool>,
) -> Result<Pruned, Error> {
    let mut all = Pruned::default();
    let mut batch = state.options.retain_batch.max(MIN_BATCH);
    for project in state.store.projects().await? {
        let Some(days) = retention::effective_days(project.retain_days, state.options.retain_days)
        else {
            continue;
        };
        let cutoff = retention::cutoff(state.now(), days);
        let mut total = Pruned::default();
        let outcome = prune_project(
            state,
            &project.name,
            cutoff,
            export,
            stop,
            &mut batch,
            &mut total,
        )
        .await;
        if total.runs > 0 {
            report(state, &project.name, days, export, total).await;
        }
        all += total;
        outcome?;
    }
    Ok(all)
}

/// Deletes `project`'s runs finished before `cutoff`, batch by batch, adding to `total`.
async fn prune_project(
    state: &AppState,
    project: &str,
    cutoff: weir_core::Timestamp,
    export: Option<&ResultStore>,
    stop: &watch::Receiver<bool>,
    batch: &mut u32,
    total: &mut Pruned,
) -> Result<(), Error> {
    let max = state.options.retain_batch.max(MIN_BATCH);
    while !*stop.borrow() {
        let mut ids = state.store.expired_runs(project, cutoff, *batch).await?;
        if ids.is_empty() {
            break;
        }
        if let Some(store) = export {
            let archived = state.store.archive_runs(&ids).await?;
            // Only what was exported may go (a run could have vanished meanwhile).
            ids = archived.iter().map(|a| a.run.id).collect();
            write_export(store, project, state.now(), archived).await?;
        }
        let started = Instant::now();
        let pruned = state
            .store
            .delete_runs(project, &ids, cutoff, state.now())
            .await?;
        let took = started.elapsed();
        *total += pruned;
        if pruned.runs == 0 {
            break;
        }
        if took > TARGET_TX {
            *batch = (*batch / 2).max(MIN_BATCH);
        } else if took < TARGET_TX / 3 {
            *batch = (*batch * 2).min(max);
        }
        // Let the writes queued behind this batch go first: pause as long as the batch held
        // the writer (at least 1 ms), so retention takes at most about half of its time.
        tokio::time::sleep(took.max(Duration::from_millis(1))).await;
    }
    Ok(())
}

/// Writes one batch as JSON lines at [`retention::export_key`].
async fn write_export(
    store: &ResultStore,
    project: &str,
    now: weir_core::Timestamp,
    archived: Vec<Archived>,
) -> Result<(), Error> {
    let Some(first) = archived.first().map(|a| a.run.id) else {
        return Ok(());
    };
    let mut body = Vec::with_capacity(archived.len() * 1024);
    for a in archived {
        let line = ArchivedRun {
            run: a.run.into(),
            history: a.history,
            task_runs: a.task_runs,
            logs: a.logs,
        };
        serde_json::to_writer(&mut body, &line)?;
        body.push(b'\n');
    }
    let key = retention::export_key(project, now, first);
    store
        .put_object(&key, body, "application/x-ndjson")
        .await
        .map_err(|source| Error::Export {
            url: store.location(&key),
            source,
        })
}

/// The audit entry, the log line and the project's counters of one project's pass.
async fn report(
    state: &AppState,
    project: &str,
    days: u32,
    export: Option<&ResultStore>,
    total: Pruned,
) {
    let now = state.now();
    let exported = export
        .map(|s| {
            format!(
                ", exported to {}",
                s.location(&format!("retention/{project}/"))
            )
        })
        .unwrap_or_default();
    let detail = format!(
        "{} finished runs older than {days} days, {} task runs, {} states, {} log lines{exported}",
        total.runs, total.task_runs, total.states, total.logs
    );
    tracing::info!(
        message = "retention pruned runs",
        project,
        days,
        runs = total.runs,
        task_runs = total.task_runs,
        states = total.states,
        logs = total.logs,
        export = export.map(ResultStore::url),
    );
    let action = AuditAction::RunsPruned.as_str();
    if let Err(error) = state
        .store
        .audit(ACTOR, action, project, Some(detail), now)
        .await
    {
        tracing::warn!(message = "cannot write the audit entry of a retention pass", project, %error);
    }
}
