//! Writing new flow runs: the write transaction every store write starts, creating a run
//! (idempotently), importing runs in bulk, and the history rows transitions leave.

use super::{Created, IMPORT_CHUNK, NewFlowRun};
use crate::codec::{self, FLOW_RUN_COLUMNS, micros, to_json};
use crate::{Dialect, Error, Result, Store};
use chrono::Duration;
use sqlx::{Any, AssertSqlSafe, Transaction};
use uuid::Uuid;
use weir_core::run::Run;
use weir_core::{StateKind, Timestamp};

impl Store {
    pub(crate) async fn begin_write(&self) -> Result<Transaction<'static, Any>> {
        Ok(match self.dialect {
            Dialect::Sqlite => self.write.begin_with("BEGIN IMMEDIATE").await?,
            Dialect::Postgres => self.write.begin().await?,
        })
    }

    /// Creates a flow run, or returns the one created earlier with the same idempotency key
    /// ([`Created::created`] says which).
    pub async fn create_flow_run(
        &self,
        new: NewFlowRun,
        lease: Duration,
        now: Timestamp,
    ) -> Result<Created> {
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
            return Ok(Created {
                run: codec::run(&row)?,
                created: false,
            });
        };
        tx.commit().await?;
        Ok(Created {
            run: self.flow_run(id).await?,
            created: true,
        })
    }

    /// Imports flow runs exactly as given (ids, states, times, parameters, results, retry
    /// delays, resume flags), with one history row per run recording the state it is in at
    /// its `state_at`. For bulk
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
    pub async fn import_flow_runs(&self, runs: &[Run]) -> Result<u64> {
        if runs.is_empty() {
            return Ok(0);
        }
        let mut tx = self.begin_write().await?;
        for chunk in runs.chunks(IMPORT_CHUNK) {
            let sql = format!(
                "INSERT INTO flow_runs ({FLOW_RUN_COLUMNS}) VALUES {}",
                codec::values_rows(self.dialect, chunk.len(), codec::FLOW_RUN_COLUMN_COUNT)
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
                    .bind(r.tick_at.map(micros))
                    .bind(r.retry_delay.num_seconds())
                    .bind(i64::from(r.resume));
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

/// Inserts a history row of `run`, in `tx`, after the write of the run it records (its
/// compare-and-set or its creation): the row's `seq`, the order the history is read in, is
/// taken now, so it follows every change of the run committed before (migration 0014).
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
