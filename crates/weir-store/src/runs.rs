//! Flow runs: creation, reads, state proposals, claims, leases, cancellation and retries.

use crate::codec::{self, FLOW_RUN_COLUMNS, micros, placeholders, to_json};
use crate::{Dialect, Error, Result, Store, states};
use chrono::Duration;
use sqlx::{Any, AssertSqlSafe, Row, Transaction};
use std::collections::BTreeMap;
use uuid::Uuid;
use weir_core::api::{FlowRun, HeldRun, Page, ProposeState, StateChange};
use weir_core::orchestration::{self, Rejection};
use weir_core::{StateKind, Timestamp};

/// Everything needed to create a flow run: decided by `weir_core::create`.
pub use weir_core::create::NewRun as NewFlowRun;

/// Filters for listing flow runs. Empty filters match everything.
#[derive(Debug, Clone, Default)]
pub struct RunFilter {
    /// Only these projects (`None`: all).
    pub projects: Option<Vec<String>>,
    /// Only this deployment.
    pub deployment_id: Option<Uuid>,
    /// Only this flow.
    pub flow: Option<String>,
    /// Only runs in one of these states.
    pub states: Vec<StateKind>,
    /// Created at or after.
    pub since: Option<Timestamp>,
    /// Created before.
    pub until: Option<Timestamp>,
    /// Runs older than this id (the previous page's cursor).
    pub before: Option<Uuid>,
    /// Page size.
    pub limit: u32,
}

/// Kept here too for the modules that bind through `runs`.
pub(crate) use crate::codec::Bind;

/// Runs per multi-row statement of [`Store::import_flow_runs`]: 24 columns each, so about
/// 12,000 parameters, below SQLite's (32,766) and PostgreSQL's (65,535) limits.
pub const IMPORT_CHUNK: usize = 500;

impl Store {
    pub(crate) async fn begin_write(&self) -> Result<Transaction<'static, Any>> {
        Ok(match self.dialect {
            Dialect::Sqlite => self.write.begin_with("BEGIN IMMEDIATE").await?,
            Dialect::Postgres => self.write.begin().await?,
        })
    }

    /// Creates a flow run, or returns the one created earlier with the same idempotency key.
    /// The boolean is true when a run was created.
    pub async fn create_flow_run(
        &self,
        new: NewFlowRun,
        lease: Duration,
        now: Timestamp,
    ) -> Result<(FlowRun, bool)> {
        let mut tx = self.begin_write().await?;
        let Some(id) = insert_run(&mut tx, &new, lease, now).await? else {
            tx.rollback().await?;
            let key = new.idempotency_key.unwrap_or_default();
            let row = sqlx::query(AssertSqlSafe(format!(
                "SELECT {FLOW_RUN_COLUMNS} FROM flow_runs WHERE project = $1 AND idempotency_key = $2"
            )))
            .bind(&new.project)
            .bind(key.clone())
            .fetch_optional(&self.write)
            .await?
            .ok_or_else(|| Error::NotFound(format!("flow run with idempotency key {key:?}")))?;
            return Ok((codec::flow_run(&row)?, false));
        };
        tx.commit().await?;
        Ok((self.flow_run(id).await?, true))
    }

    /// Imports flow runs exactly as given (ids, states, times, parameters, results), with
    /// one history row per run recording the state it is in at its `state_at`. For bulk
    /// loads — restoring or migrating run history, seeding benchmarks — where creating runs
    /// one by one through [`Store::create_flow_run`] is far too slow: rows go in as
    /// multi-row `INSERT`s of [`IMPORT_CHUNK`] runs (anonymous `?` parameters on SQLite, see
    /// `codec::values_rows`), all in one write transaction per call, so callers pass batches
    /// of a few thousand runs.
    ///
    /// No orchestration rule is applied and nothing is validated beyond the database's own
    /// constraints: each run's project must exist, and an id already stored fails the whole
    /// call, importing nothing of it. Imported runs are never treated as scheduler-made
    /// (`auto_scheduled` is false) and have no idempotency key. Returns how many runs were
    /// imported.
    pub async fn import_flow_runs(&self, runs: &[FlowRun]) -> Result<u64> {
        if runs.is_empty() {
            return Ok(0);
        }
        let mut tx = self.begin_write().await?;
        for chunk in runs.chunks(IMPORT_CHUNK) {
            let sql = format!(
                "INSERT INTO flow_runs ({FLOW_RUN_COLUMNS}) VALUES {}",
                codec::values_rows(self.dialect, chunk.len(), 24)
            );
            let mut q = sqlx::query(AssertSqlSafe(sql));
            for r in chunk {
                q = q
                    .bind(r.id.to_string())
                    .bind(r.project.clone())
                    .bind(r.deployment_id.map(|d| d.to_string()))
                    .bind(r.deployment.clone())
                    .bind(r.flow.clone())
                    .bind(r.name.clone())
                    .bind(r.state.as_str())
                    .bind(r.state_message.clone())
                    .bind(micros(r.state_at))
                    .bind(i64::from(r.attempt))
                    .bind(i64::from(r.retries_used))
                    .bind(i64::from(r.retries))
                    .bind(to_json(&r.parameters))
                    .bind(r.work_queue.clone())
                    .bind(micros(r.scheduled_at))
                    .bind(micros(r.created_at))
                    .bind(r.started_at.map(micros))
                    .bind(r.ended_at.map(micros))
                    .bind(r.agent_id.map(|a| a.to_string()))
                    .bind(r.lease_expires_at.map(micros))
                    .bind(r.parent_flow_run_id.map(|p| p.to_string()))
                    .bind(r.result.as_ref().map(to_json))
                    .bind(to_json(&r.tags))
                    .bind(r.tick_at.map(micros));
            }
            q.execute(&mut *tx).await?;
            let sql = format!(
                "INSERT INTO flow_run_states (id, flow_run_id, state, message, attempt, at) \
                 VALUES {}",
                codec::values_rows(self.dialect, chunk.len(), 6)
            );
            let mut q = sqlx::query(AssertSqlSafe(sql));
            for r in chunk {
                q = q
                    .bind(Uuid::now_v7().to_string())
                    .bind(r.id.to_string())
                    .bind(r.state.as_str())
                    .bind(r.state_message.clone())
                    .bind(i64::from(r.attempt))
                    .bind(micros(r.state_at));
            }
            q.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(runs.len() as u64)
    }

    /// One flow run.
    pub async fn flow_run(&self, id: Uuid) -> Result<FlowRun> {
        let row = sqlx::query(AssertSqlSafe(format!(
            "SELECT {FLOW_RUN_COLUMNS} FROM flow_runs WHERE id = $1"
        )))
        .bind(id.to_string())
        .fetch_optional(&self.read)
        .await?
        .ok_or_else(|| Error::NotFound(format!("flow run {id}")))?;
        codec::flow_run(&row)
    }

    /// A run's state history, oldest first.
    pub async fn flow_run_history(&self, id: Uuid) -> Result<Vec<StateChange>> {
        let rows = sqlx::query(
            "SELECT id, state, message, attempt, at FROM flow_run_states \
             WHERE flow_run_id = $1 ORDER BY at, id",
        )
        .bind(id.to_string())
        .fetch_all(&self.read)
        .await?;
        rows.iter().map(codec::state_change).collect()
    }

    /// Flow runs matching `filter`, newest first, one page at a time.
    pub async fn list_flow_runs(&self, filter: &RunFilter) -> Result<Page<FlowRun>> {
        let limit = filter.limit.clamp(1, 1000);
        let mut items = if filter.states.len() > 1 {
            // One query per state, merged here: each walks the (state, id) index newest first
            // and stops after a page. A single `state IN (…) ORDER BY id DESC` lets SQLite's
            // planner pick the (state, scheduled_at) index instead and sort every matching
            // run — 100 ms for the dashboard's Failed/Crashed/Late panel over a million runs.
            let mut all = Vec::new();
            for state in &filter.states {
                all.extend(
                    self.query_flow_runs(filter, std::slice::from_ref(state), limit)
                        .await?,
                );
            }
            all.sort_by_key(|r| std::cmp::Reverse(r.id));
            all.dedup_by_key(|r| r.id);
            all.truncate(limit as usize + 1);
            all
        } else {
            self.query_flow_runs(filter, &filter.states, limit).await?
        };
        let next_cursor = if items.len() > limit as usize {
            items.truncate(limit as usize);
            items.last().map(|r| r.id.to_string())
        } else {
            None
        };
        Ok(Page { items, next_cursor })
    }

    /// Up to `limit + 1` runs matching `filter` but with `states` for its states, newest
    /// first (the extra one tells whether there is a next page).
    async fn query_flow_runs(
        &self,
        filter: &RunFilter,
        states: &[StateKind],
        limit: u32,
    ) -> Result<Vec<FlowRun>> {
        let mut clauses: Vec<String> = Vec::new();
        let mut binds: Vec<Bind> = Vec::new();
        let next = |binds: &mut Vec<Bind>, b: Bind| {
            binds.push(b);
            binds.len()
        };
        if let Some(projects) = &filter.projects {
            if projects.is_empty() {
                return Ok(vec![]);
            }
            let first = binds.len() + 1;
            for p in projects {
                next(&mut binds, Bind::Text(p.clone()));
            }
            clauses.push(format!(
                "project IN ({})",
                placeholders(first, projects.len())
            ));
        }
        if let Some(d) = filter.deployment_id {
            let n = next(&mut binds, Bind::Text(d.to_string()));
            clauses.push(format!("deployment_id = ${n}"));
        }
        if let Some(f) = &filter.flow {
            let n = next(&mut binds, Bind::Text(f.clone()));
            clauses.push(format!("flow = ${n}"));
        }
        if !states.is_empty() {
            let first = binds.len() + 1;
            for s in states {
                next(&mut binds, Bind::Text(s.as_str().to_string()));
            }
            clauses.push(format!("state IN ({})", placeholders(first, states.len())));
        }
        if let Some(t) = filter.since {
            let n = next(&mut binds, Bind::Int(micros(t)));
            clauses.push(format!("created_at >= ${n}"));
        }
        if let Some(t) = filter.until {
            let n = next(&mut binds, Bind::Int(micros(t)));
            clauses.push(format!("created_at < ${n}"));
        }
        if let Some(c) = filter.before {
            let n = next(&mut binds, Bind::Text(c.to_string()));
            clauses.push(format!("id < ${n}"));
        }
        let n = next(&mut binds, Bind::Int(i64::from(limit) + 1));
        let where_ = if clauses.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", clauses.join(" AND "))
        };
        let sql = format!(
            "SELECT {FLOW_RUN_COLUMNS} FROM flow_runs {where_} ORDER BY id DESC LIMIT ${n}"
        );
        let mut q = sqlx::query(AssertSqlSafe(sql));
        for b in binds {
            q = b.bind(q);
        }
        let rows = q.fetch_all(&self.read).await?;
        rows.iter().map(codec::flow_run).collect()
    }

    /// Counts of flow runs by state, optionally only those created since a time and only in
    /// some projects.
    pub async fn count_flow_runs_by_state(
        &self,
        projects: Option<&[String]>,
        since: Option<Timestamp>,
    ) -> Result<BTreeMap<StateKind, u64>> {
        // The upper bound changes no result, but it makes the range look selective to
        // SQLite's planner (which has no statistics): without it, the planner prefers
        // walking a whole state index for the GROUP BY over the (created_at, state) and
        // (project, created_at, state) covering indexes — 400 ms instead of 2 ms for the
        // dashboard's last 24 hours of a million runs.
        let mut sql = "SELECT state, COUNT(*) AS n FROM flow_runs \
                       WHERE created_at >= $1 AND created_at <= $2"
            .to_string();
        let mut binds = vec![
            Bind::Int(since.map(micros).unwrap_or(i64::MIN)),
            Bind::Int(i64::MAX),
        ];
        if let Some(ps) = projects {
            if ps.is_empty() {
                return Ok(BTreeMap::new());
            }
            sql.push_str(&format!(" AND project IN ({})", placeholders(3, ps.len())));
            binds.extend(ps.iter().map(|p| Bind::Text(p.clone())));
        }
        sql.push_str(" GROUP BY state");
        let mut q = sqlx::query(AssertSqlSafe(sql));
        for b in binds {
            q = b.bind(q);
        }
        codec::state_counts(&q.fetch_all(&self.read).await?)
    }

    /// [`Store::propose_state`] in a transaction of its own.
    pub(crate) async fn propose_alone(
        &self,
        id: Uuid,
        proposal: &ProposeState,
        lease: Duration,
        now: Timestamp,
    ) -> Result<FlowRun> {
        // What is returned is what is stored: microseconds.
        let now = codec::ts(micros(now));
        self.change(id, proposal.transition_id, None, |run, retry_delay| {
            orchestration::decide(run, proposal, retry_delay, lease, now)
                .map_err(|r| rejected(r, run.clone()))
        })
        .await
    }

    /// Requests cancellation: runs not yet launched end Cancelled; launched ones go to
    /// Cancelling, and their agent (or own process) stops them.
    pub async fn cancel_flow_run(&self, id: Uuid, now: Timestamp) -> Result<FlowRun> {
        // What is returned is what is stored: microseconds.
        let now = codec::ts(micros(now));
        self.change(id, None, None, |run, _| {
            orchestration::cancel(run, now).map_err(|_| Error::Rejected {
                reason: format!("run is already {}; nothing to cancel", run.state),
                current: Box::new(run.clone()),
            })
        })
        .await
    }

    /// Retries a terminal run: back to Scheduled, due now. With `from_failed`, the next
    /// attempt reuses persisted results of tasks that completed before.
    pub async fn retry_flow_run(
        &self,
        id: Uuid,
        from_failed: bool,
        now: Timestamp,
    ) -> Result<FlowRun> {
        // What is returned is what is stored: microseconds.
        let now = codec::ts(micros(now));
        self.change(id, None, Some(from_failed), |run, _| {
            orchestration::retry(run, now).map_err(|e| rejected(Rejection::Illegal(e), run.clone()))
        })
        .await
    }

    /// Applies `decide` to the run in a transaction of its own, as a compare-and-set retried
    /// when another writer changed the run first. A `transition_id` already applied returns
    /// the run as it is, without a second transition.
    pub(crate) async fn change(
        &self,
        id: Uuid,
        transition_id: Option<Uuid>,
        resume: Option<bool>,
        decide: impl Fn(&FlowRun, Duration) -> Result<FlowRun>,
    ) -> Result<FlowRun> {
        for _ in 0..8 {
            let mut tx = self.begin_write().await?;
            if let Some(tid) = transition_id
                && transition_exists(&mut tx, tid).await?
            {
                tx.rollback().await?;
                return self.flow_run(id).await;
            }
            let (run, retry_delay) = load(&mut tx, id).await?;
            let next = match decide(&run, retry_delay) {
                Ok(next) => next,
                Err(e) => {
                    tx.rollback().await?;
                    return Err(e);
                }
            };
            let tid = transition_id.unwrap_or_else(Uuid::now_v7);
            if save(&mut tx, &run, &next, tid, resume).await? {
                tx.commit().await?;
                return Ok(next);
            }
            tx.rollback().await?;
        }
        Err(Error::Unavailable(format!(
            "flow run {id} is changing too fast; try again"
        )))
    }

    /// Renews the leases of runs an agent (or a run's own process, with `agent` None) holds.
    /// The attempt number is the fencing token: a heartbeat naming the current attempt
    /// renews the lease, and an agent that restarted takes over the runs it still supervises
    /// by heartbeating them. Returns the runs whose cancellation was requested and the runs
    /// no longer held (ended, or claimed again by a newer attempt).
    pub async fn renew_leases(
        &self,
        agent: Option<Uuid>,
        held: &[HeldRun],
        lease: Duration,
        now: Timestamp,
    ) -> Result<(Vec<Uuid>, Vec<Uuid>)> {
        let mut cancel = Vec::new();
        let mut lost = Vec::new();
        if held.is_empty() {
            return Ok((cancel, lost));
        }
        let mut tx = self.begin_write().await?;
        for h in held {
            let row = sqlx::query(AssertSqlSafe(format!(
                "UPDATE flow_runs SET lease_expires_at = $1, agent_id = COALESCE($4, agent_id) \
                 WHERE id = $2 AND attempt = $3 AND state IN ({}) RETURNING state",
                *states::LEASED
            )))
            .bind(micros(now + lease))
            .bind(h.id.to_string())
            .bind(i64::from(h.attempt))
            .bind(agent.map(|a| a.to_string()))
            .fetch_optional(&mut *tx)
            .await?;
            match row {
                Some(row) => {
                    if codec::state(&row, "state")? == StateKind::Cancelling {
                        cancel.push(h.id);
                    }
                }
                None => lost.push(h.id),
            }
        }
        tx.commit().await?;
        Ok((cancel, lost))
    }

    /// Runs whose lease expired before `now` (their process or agent went silent).
    pub async fn expired_leases(&self, now: Timestamp, limit: u32) -> Result<Vec<FlowRun>> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {FLOW_RUN_COLUMNS} FROM flow_runs \
             WHERE state IN ({}) AND lease_expires_at < $1 ORDER BY lease_expires_at LIMIT $2",
            *states::LEASED
        )))
        .bind(micros(now))
        .bind(i64::from(limit))
        .fetch_all(&self.read)
        .await?;
        rows.iter().map(codec::flow_run).collect()
    }

    /// Scheduled runs due before `before` (so late by the grace period).
    pub async fn overdue_runs(&self, before: Timestamp, limit: u32) -> Result<Vec<FlowRun>> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {FLOW_RUN_COLUMNS} FROM flow_runs WHERE state = {scheduled} \
             AND scheduled_at < $1 ORDER BY scheduled_at LIMIT $2",
            scheduled = states::one(StateKind::Scheduled)
        )))
        .bind(micros(before))
        .bind(i64::from(limit))
        .fetch_all(&self.read)
        .await?;
        rows.iter().map(codec::flow_run).collect()
    }
}

pub(crate) fn rejected(rejection: Rejection, run: FlowRun) -> Error {
    Error::Rejected {
        reason: rejection.to_string(),
        current: Box::new(run),
    }
}

async fn transition_exists(tx: &mut Transaction<'static, Any>, tid: Uuid) -> Result<bool> {
    Ok(sqlx::query("SELECT 1 FROM flow_run_states WHERE id = $1")
        .bind(tid.to_string())
        .fetch_optional(&mut **tx)
        .await?
        .is_some())
}

/// A stored retry delay as a duration; one out of range is a corrupt row, never a panic.
pub(crate) fn retry_delay(run: Uuid, seconds: i64) -> Result<Duration> {
    Duration::try_seconds(seconds)
        .filter(|d| *d >= Duration::zero())
        .ok_or_else(|| Error::Corrupt {
            column: "retry_delay_s",
            reason: format!("flow run {run} has a retry delay of {seconds} s, out of range"),
        })
}

/// Loads a run and its retry delay inside a write transaction.
async fn load(tx: &mut Transaction<'static, Any>, id: Uuid) -> Result<(FlowRun, Duration)> {
    let row = sqlx::query(AssertSqlSafe(format!(
        "SELECT {FLOW_RUN_COLUMNS}, retry_delay_s FROM flow_runs WHERE id = $1"
    )))
    .bind(id.to_string())
    .fetch_optional(&mut **tx)
    .await?
    .ok_or_else(|| Error::NotFound(format!("flow run {id}")))?;
    let delay: i64 = row.try_get("retry_delay_s")?;
    Ok((codec::flow_run(&row)?, retry_delay(id, delay)?))
}

/// Writes `next` over `prev` if the row still has `prev`'s state and attempt (no history row).
/// Returns false when someone else changed the run first.
pub(crate) async fn save_run(
    tx: &mut Transaction<'static, Any>,
    prev: &FlowRun,
    next: &FlowRun,
    resume: Option<bool>,
) -> Result<bool> {
    let changed = sqlx::query(
        "UPDATE flow_runs SET state = $1, state_message = $2, state_at = $3, retries_used = $4, \
         scheduled_at = $5, started_at = $6, ended_at = $7, agent_id = $8, \
         lease_expires_at = $9, result = $10, resume = COALESCE($11, resume) \
         WHERE id = $12 AND state = $13 AND attempt = $14",
    )
    .bind(next.state.as_str())
    .bind(next.state_message.clone())
    .bind(micros(next.state_at))
    .bind(i64::from(next.retries_used))
    .bind(micros(next.scheduled_at))
    .bind(next.started_at.map(micros))
    .bind(next.ended_at.map(micros))
    .bind(next.agent_id.map(|a| a.to_string()))
    .bind(next.lease_expires_at.map(micros))
    .bind(next.result.as_ref().map(to_json))
    .bind(resume.map(i64::from))
    .bind(prev.id.to_string())
    .bind(prev.state.as_str())
    .bind(i64::from(prev.attempt))
    .execute(&mut **tx)
    .await?
    .rows_affected();
    if changed > 0 && next.state.is_terminal() && !prev.state.is_terminal() {
        crate::task_runs::close_task_runs(tx, next).await?;
    }
    if changed > 0 {
        // In the change's own transaction: the event and its notifications commit together.
        crate::notify::enqueue_run_events(tx, prev, next).await?;
    }
    Ok(changed > 0)
}

/// Writes `next` over `prev` if the row still has `prev`'s state and attempt, and records the
/// transition. Returns false when someone else changed the run first.
async fn save(
    tx: &mut Transaction<'static, Any>,
    prev: &FlowRun,
    next: &FlowRun,
    transition_id: Uuid,
    resume: Option<bool>,
) -> Result<bool> {
    if !save_run(tx, prev, next, resume).await? {
        return Ok(false);
    }
    insert_history(
        tx,
        transition_id,
        next.id,
        next.state,
        next.state_message.clone(),
        i64::from(next.attempt),
        next.state_at,
    )
    .await?;
    Ok(true)
}

/// Inserts the run `new` describes with its first history row, in `tx`; `None` (nothing
/// written) when a run with its idempotency key exists already.
pub(crate) async fn insert_run(
    tx: &mut Transaction<'static, Any>,
    new: &NewFlowRun,
    lease: Duration,
    now: Timestamp,
) -> Result<Option<Uuid>> {
    let id = Uuid::now_v7();
    let running = new.state == StateKind::Running;
    let attempt: i64 = if running { 1 } else { 0 };
    let name = format!("{}-{}", new.flow, &id.simple().to_string()[26..]);
    let inserted = sqlx::query(
        "INSERT INTO flow_runs (id, project, deployment_id, deployment, flow, name, state, \
         state_at, attempt, retries, retry_delay_s, parameters, work_queue, scheduled_at, \
         created_at, started_at, lease_expires_at, parent_flow_run_id, tags, \
         idempotency_key, auto_scheduled, tick_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, \
         $18, $19, $20, $21, $22) ON CONFLICT (project, idempotency_key) DO NOTHING",
    )
    .bind(id.to_string())
    .bind(&new.project)
    .bind(new.deployment.as_ref().map(|d| d.0.to_string()))
    .bind(new.deployment.as_ref().map(|d| d.1.clone()))
    .bind(&new.flow)
    .bind(name)
    .bind(new.state.as_str())
    .bind(micros(now))
    .bind(attempt)
    .bind(i64::from(new.retries))
    .bind(i64::try_from(new.retry_delay_s).unwrap_or(i64::MAX))
    .bind(to_json(&new.parameters))
    .bind(&new.work_queue)
    .bind(micros(new.scheduled_at))
    .bind(micros(now))
    .bind(running.then(|| micros(now)))
    .bind(running.then(|| micros(now + lease)))
    .bind(new.parent_flow_run_id.map(|p| p.to_string()))
    .bind(to_json(&new.tags))
    .bind(new.idempotency_key.clone())
    .bind(i64::from(new.auto_scheduled))
    .bind(new.tick_at.map(micros))
    .execute(&mut **tx)
    .await?
    .rows_affected();
    if inserted == 0 {
        return Ok(None);
    }
    insert_history(tx, Uuid::now_v7(), id, new.state, None, attempt, now).await?;
    Ok(Some(id))
}

pub(crate) async fn insert_history(
    tx: &mut Transaction<'static, Any>,
    id: Uuid,
    run: Uuid,
    state: StateKind,
    message: Option<String>,
    attempt: i64,
    at: Timestamp,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO flow_run_states (id, flow_run_id, state, message, attempt, at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(id.to_string())
    .bind(run.to_string())
    .bind(state.as_str())
    .bind(message)
    .bind(attempt)
    .bind(micros(at))
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Task runs of one flow run grouped by task, for timelines of runs too large to draw one
/// bar per task run.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskGroup {
    /// Task name.
    pub task: String,
    /// How many task runs.
    pub count: u64,
    /// How many of them Completed.
    pub completed: u64,
    /// How many Failed or Crashed.
    pub failed: u64,
    /// First created.
    pub first_at: Timestamp,
    /// Last ended (or last state change).
    pub last_at: Timestamp,
}

impl Store {
    /// The next scheduled run of a deployment.
    pub async fn next_scheduled(&self, deployment: Uuid) -> Result<Option<FlowRun>> {
        let row = sqlx::query(AssertSqlSafe(format!(
            "SELECT {FLOW_RUN_COLUMNS} FROM flow_runs WHERE deployment_id = $1 \
             AND state = {scheduled} ORDER BY scheduled_at LIMIT 1",
            scheduled = states::one(StateKind::Scheduled)
        )))
        .bind(deployment.to_string())
        .fetch_optional(&self.read)
        .await?;
        row.as_ref().map(codec::flow_run).transpose()
    }

    /// The next scheduled runs across projects (`None`: all), soonest first.
    pub async fn upcoming_runs(
        &self,
        projects: Option<&[String]>,
        limit: u32,
    ) -> Result<Vec<FlowRun>> {
        let mut sql = format!(
            "SELECT {FLOW_RUN_COLUMNS} FROM flow_runs WHERE state = {}",
            states::one(StateKind::Scheduled)
        );
        if let Some(ps) = projects {
            if ps.is_empty() {
                return Ok(vec![]);
            }
            sql.push_str(&format!(" AND project IN ({})", placeholders(2, ps.len())));
        }
        sql.push_str(" ORDER BY scheduled_at LIMIT $1");
        let mut q = sqlx::query(AssertSqlSafe(sql)).bind(i64::from(limit.clamp(1, 1000)));
        for p in projects.unwrap_or_default() {
            q = q.bind(p.clone());
        }
        let rows = q.fetch_all(&self.read).await?;
        rows.iter().map(codec::flow_run).collect()
    }

    /// A flow run's task runs grouped by task name, in order of first appearance.
    pub async fn task_groups(&self, flow_run: Uuid) -> Result<Vec<TaskGroup>> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT task, COUNT(*) AS n, \
             SUM(CASE WHEN state = {completed} THEN 1 ELSE 0 END) AS completed, \
             SUM(CASE WHEN state IN ({failures}) THEN 1 ELSE 0 END) AS failed, \
             MIN(created_at) AS first_at, MAX(COALESCE(ended_at, state_at)) AS last_at \
             FROM task_runs WHERE flow_run_id = $1 GROUP BY task ORDER BY MIN(created_at)",
            completed = states::one(StateKind::Completed),
            failures = *states::FAILURES,
        )))
        .bind(flow_run.to_string())
        .fetch_all(&self.read)
        .await?;
        rows.iter()
            .map(|r| {
                let n: i64 = r.try_get("n")?;
                let completed: i64 = r.try_get("completed")?;
                let failed: i64 = r.try_get("failed")?;
                Ok(TaskGroup {
                    task: r.try_get("task")?,
                    count: u64::try_from(n).unwrap_or(0),
                    completed: u64::try_from(completed).unwrap_or(0),
                    failed: u64::try_from(failed).unwrap_or(0),
                    first_at: codec::time(r, "first_at")?,
                    last_at: codec::time(r, "last_at")?,
                })
            })
            .collect()
    }
}
