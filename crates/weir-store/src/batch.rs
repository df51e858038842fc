//! Group commit of state proposals.
//!
//! Proposals arrive one HTTP request at a time, but the database does best with few, larger
//! transactions — on SQLite every write goes through one connection. A background task takes
//! every proposal waiting at that moment (no added delay when idle) and applies them in one
//! transaction: one read of all the runs involved, the orchestration decision for each in
//! order, one compare-and-set per change, then what the changes imply for all of them at
//! once (one look for open task runs of the runs that ended, one read of each project's
//! notification rules), one multi-row insert of history. A change that loses its
//! compare-and-set (another replica moved the run) is retried on its own.

use crate::changes::after_changes;
use crate::codec::{self, FLOW_RUN_COLUMNS, micros, placeholders};
use crate::runs::{rejected, update_run};
use crate::{Dialect, Error, Result, Store};
use chrono::Duration;
use sqlx::{Any, AssertSqlSafe, Transaction};
use std::collections::{HashMap, HashSet};
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;
use weir_core::Timestamp;
use weir_core::api::ProposeState;
use weir_core::orchestration;
use weir_core::run::Run;

/// Most proposals applied in one transaction.
const MAX_BATCH: usize = 256;

/// One queued proposal and where its answer goes.
pub(crate) struct Job {
    pub id: Uuid,
    pub proposal: ProposeState,
    pub lease: Duration,
    pub now: Timestamp,
    pub reply: oneshot::Sender<Result<Run>>,
}

/// Starts the batching task for `store`; proposals sent on the returned channel are applied
/// in group commits until the channel closes.
pub(crate) fn spawn(store: Store) -> mpsc::UnboundedSender<Job> {
    let (tx, mut rx) = mpsc::unbounded_channel::<Job>();
    tokio::spawn(async move {
        while let Some(first) = rx.recv().await {
            let mut jobs = vec![first];
            while jobs.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(j) => jobs.push(j),
                    Err(_) => break,
                }
            }
            run_batch(&store, jobs).await;
        }
    });
    tx
}

/// What became of one job inside the batch.
enum Outcome {
    Done(Box<Result<Run>>),
    /// Lost a compare-and-set: retry alone.
    Retry,
}

async fn run_batch(store: &Store, jobs: Vec<Job>) {
    match apply(store, &jobs).await {
        Ok(outcomes) => {
            for (job, outcome) in jobs.into_iter().zip(outcomes) {
                let result = match outcome {
                    Outcome::Done(r) => *r,
                    Outcome::Retry => {
                        store
                            .propose_alone(job.id, &job.proposal, job.lease, job.now)
                            .await
                    }
                };
                let _ = job.reply.send(result);
            }
        }
        // The transaction failed as a whole (a database error): each job on its own, so one
        // bad proposal cannot fail the others.
        Err(_) if jobs.len() > 1 => {
            for job in jobs {
                let r = store
                    .propose_alone(job.id, &job.proposal, job.lease, job.now)
                    .await;
                let _ = job.reply.send(r);
            }
        }
        // One job whose transaction failed: its caller gets the database's error as it is
        // (transient ones answer 503 and are retried), never a verdict on the proposal.
        Err(e) => {
            if let Some(job) = jobs.into_iter().next() {
                let _ = job.reply.send(Err(e));
            }
        }
    }
}

async fn apply(store: &Store, jobs: &[Job]) -> Result<Vec<Outcome>> {
    let mut tx = store.begin_write().await?;
    let applied = applied_transitions(&mut tx, jobs).await?;
    let runs = read_runs(&mut tx, jobs).await?;
    let written = write_decisions(&mut tx, jobs, applied, runs).await?;
    // What the changes imply (task runs closed, notifications), for the whole batch at once.
    let pairs: Vec<(&Run, &Run)> = written.changes.iter().map(|(p, n)| (p, n)).collect();
    after_changes(&mut tx, &pairs).await?;
    insert_history(&mut tx, store.dialect, &written.history).await?;
    tx.commit().await?;
    Ok(written.outcomes)
}

/// The transition ids of `jobs` already applied (idempotent replays), in one read.
async fn applied_transitions(
    tx: &mut Transaction<'static, Any>,
    jobs: &[Job],
) -> Result<HashSet<Uuid>> {
    let tids: Vec<Uuid> = jobs
        .iter()
        .filter_map(|j| j.proposal.transition_id)
        .collect();
    let mut applied: HashSet<Uuid> = HashSet::new();
    if !tids.is_empty() {
        let sql = format!(
            "SELECT id FROM flow_run_states WHERE id IN ({})",
            placeholders(1, tids.len())
        );
        let mut q = sqlx::query(AssertSqlSafe(sql));
        for t in &tids {
            q = q.bind(t.to_string());
        }
        for row in q.fetch_all(&mut **tx).await? {
            applied.insert(codec::uuid(&row, "id")?);
        }
    }
    Ok(applied)
}

/// Every run `jobs` involve, in one read.
async fn read_runs(tx: &mut Transaction<'static, Any>, jobs: &[Job]) -> Result<HashMap<Uuid, Run>> {
    let mut ids: Vec<Uuid> = jobs.iter().map(|j| j.id).collect();
    ids.sort();
    ids.dedup();
    let sql = format!(
        "SELECT {FLOW_RUN_COLUMNS} FROM flow_runs WHERE id IN ({})",
        placeholders(1, ids.len())
    );
    let mut q = sqlx::query(AssertSqlSafe(sql));
    for id in &ids {
        q = q.bind(id.to_string());
    }
    let mut runs: HashMap<Uuid, Run> = HashMap::new();
    for row in q.fetch_all(&mut **tx).await? {
        let run = codec::run(&row)?;
        runs.insert(run.id, run);
    }
    Ok(runs)
}

/// What [`write_decisions`] did: each job's outcome, in order, the changes it wrote
/// (`(prev, next)`) and their history rows (transition id, run after).
struct Written {
    outcomes: Vec<Outcome>,
    changes: Vec<(Run, Run)>,
    history: Vec<(Uuid, Run)>,
}

/// Decides each job in order over the runs as the batch left them, and writes each change by
/// its compare-and-set; a change that loses it is left to be retried alone.
async fn write_decisions(
    tx: &mut Transaction<'static, Any>,
    jobs: &[Job],
    mut applied: HashSet<Uuid>,
    mut runs: HashMap<Uuid, Run>,
) -> Result<Written> {
    let mut outcomes = Vec::with_capacity(jobs.len());
    let mut history: Vec<(Uuid, Run)> = Vec::new();
    let mut changes: Vec<(Run, Run)> = Vec::new();
    for job in jobs {
        let Some(run) = runs.get(&job.id).cloned() else {
            let missing = Err(Error::NotFound(format!("flow run {}", job.id)));
            outcomes.push(Outcome::Done(Box::new(missing)));
            continue;
        };
        if let Some(tid) = job.proposal.transition_id
            && applied.contains(&tid)
        {
            outcomes.push(Outcome::Done(Box::new(Ok(run))));
            continue;
        }
        let now = codec::stored(job.now);
        let next = match orchestration::decide(&run, &job.proposal, job.lease, now) {
            Ok(next) => next,
            Err(rejection) => {
                outcomes.push(Outcome::Done(Box::new(Err(rejected(rejection, run)))));
                continue;
            }
        };
        if update_run(tx, &run, &next).await? {
            let tid = job.proposal.transition_id.unwrap_or_else(Uuid::now_v7);
            applied.insert(tid);
            changes.push((run, next.clone()));
            history.push((tid, next.clone()));
            runs.insert(job.id, next.clone());
            outcomes.push(Outcome::Done(Box::new(Ok(next))));
        } else {
            outcomes.push(Outcome::Retry);
        }
    }
    Ok(Written {
        outcomes,
        changes,
        history,
    })
}

/// The history rows of the batch's changes, in one multi-row insert after every
/// compare-and-set, in the order the changes were decided: each row's `seq` (migration 0014)
/// is taken as it is inserted, so a run changed twice in this batch, or again by a later
/// transaction (which waits for this one's lock on the run), reads back in that order.
async fn insert_history(
    tx: &mut Transaction<'static, Any>,
    dialect: Dialect,
    history: &[(Uuid, Run)],
) -> Result<()> {
    if history.is_empty() {
        return Ok(());
    }
    let sql = format!(
        "INSERT INTO flow_run_states (id, flow_run_id, state, message, attempt, at) VALUES {}",
        codec::values_rows(dialect, history.len(), 6)
    );
    let mut q = sqlx::query(AssertSqlSafe(sql));
    for (tid, run) in history {
        q = q
            .bind(tid.to_string())
            .bind(run.id.to_string())
            .bind(run.state.as_str())
            .bind(run.state_message.clone())
            .bind(i64::from(run.attempt))
            .bind(micros(run.state_at));
    }
    q.execute(&mut **tx).await?;
    Ok(())
}

impl Store {
    /// Applies a state proposal by the orchestration rules. A repeated `transition_id`
    /// returns the run without a second transition.
    pub async fn propose_state(
        &self,
        id: Uuid,
        proposal: &ProposeState,
        lease: Duration,
        now: Timestamp,
    ) -> Result<Run> {
        // Group commit: concurrent proposals share one transaction (see `batch`).
        let (reply, answer) = tokio::sync::oneshot::channel();
        let job = Job {
            id,
            proposal: proposal.clone(),
            lease,
            now,
            reply,
        };
        let Some(queue) = &self.proposals else {
            return self.propose_alone(id, proposal, lease, now).await;
        };
        if queue.send(job).is_err() {
            return self.propose_alone(id, proposal, lease, now).await;
        }
        match answer.await {
            Ok(result) => result,
            Err(_) => self.propose_alone(id, proposal, lease, now).await,
        }
    }
}
