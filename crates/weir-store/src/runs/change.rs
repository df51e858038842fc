//! Changing a flow run's state: proposals, cancellation and retries, each applied by a
//! `weir_core::orchestration` rule as a compare-and-set on the run's state and attempt, with
//! its history row, task-run closing and notifications in the same transaction.

use super::insert_history;
use crate::codec::{self, FLOW_RUN_COLUMNS, micros, to_json};
use crate::{Error, Result, Store};
use chrono::Duration;
use sqlx::{Any, AssertSqlSafe, Transaction};
use uuid::Uuid;
use weir_core::Timestamp;
use weir_core::api::ProposeState;
use weir_core::orchestration::{self, Rejection};
use weir_core::run::Run;

impl Store {
    /// [`Store::propose_state`] in a transaction of its own.
    pub(crate) async fn propose_alone(
        &self,
        id: Uuid,
        proposal: &ProposeState,
        lease: Duration,
        now: Timestamp,
    ) -> Result<Run> {
        // What is returned is what is stored: microseconds.
        let now = codec::stored(now);
        self.change(id, proposal.transition_id, |run| {
            orchestration::decide(run, proposal, lease, now).map_err(|r| rejected(r, run.clone()))
        })
        .await
    }

    /// Requests cancellation: runs not yet launched end Cancelled; launched ones go to
    /// Cancelling, and their agent (or own process) stops them.
    pub async fn cancel_flow_run(&self, id: Uuid, now: Timestamp) -> Result<Run> {
        // What is returned is what is stored: microseconds.
        let now = codec::stored(now);
        self.change(id, None, |run| {
            orchestration::cancel(run, now).map_err(|_| Error::Rejected {
                reason: format!("run is already {}; nothing to cancel", run.state),
                current: Box::new(run.clone()),
            })
        })
        .await
    }

    /// Retries a terminal run: back to Scheduled, due now. With `from_failed`, the next
    /// attempt reuses persisted results of tasks that completed before.
    pub async fn retry_flow_run(&self, id: Uuid, from_failed: bool, now: Timestamp) -> Result<Run> {
        // What is returned is what is stored: microseconds.
        let now = codec::stored(now);
        self.change(id, None, |run| {
            orchestration::retry(run, from_failed, now)
                .map_err(|e| rejected(Rejection::Illegal(e), run.clone()))
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
        decide: impl Fn(&Run) -> Result<Run>,
    ) -> Result<Run> {
        for _ in 0..8 {
            let mut tx = self.begin_write().await?;
            if let Some(tid) = transition_id
                && transition_exists(&mut tx, tid).await?
            {
                tx.rollback().await?;
                return self.flow_run(id).await;
            }
            let run = load(&mut tx, id).await?;
            let next = match decide(&run) {
                Ok(next) => next,
                Err(e) => {
                    tx.rollback().await?;
                    return Err(e);
                }
            };
            let tid = transition_id.unwrap_or_else(Uuid::now_v7);
            if save(&mut tx, &run, &next, tid).await? {
                tx.commit().await?;
                return Ok(next);
            }
            tx.rollback().await?;
        }
        Err(Error::Unavailable(format!(
            "flow run {id} is changing too fast; try again"
        )))
    }
}

pub(crate) fn rejected(rejection: Rejection, run: Run) -> Error {
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

/// Loads a run inside a write transaction.
async fn load(tx: &mut Transaction<'static, Any>, id: Uuid) -> Result<Run> {
    let row = sqlx::query(AssertSqlSafe(format!(
        "SELECT {FLOW_RUN_COLUMNS} FROM flow_runs WHERE id = $1"
    )))
    .bind(id.to_string())
    .fetch_optional(&mut **tx)
    .await?
    .ok_or_else(|| Error::NotFound(format!("flow run {id}")))?;
    codec::run(&row)
}

/// Writes `next` over `prev` if the row still has `prev`'s state and attempt (no history row),
/// with what the change implies ([`crate::changes::after_changes`]). Returns false when
/// someone else changed the run first.
pub(crate) async fn save_run(
    tx: &mut Transaction<'static, Any>,
    prev: &Run,
    next: &Run,
) -> Result<bool> {
    if !update_run(tx, prev, next).await? {
        return Ok(false);
    }
    crate::changes::after_changes(tx, &[(prev, next)]).await?;
    Ok(true)
}

/// The compare-and-set of [`save_run`] alone: the row, nothing it implies.
pub(crate) async fn update_run(
    tx: &mut Transaction<'static, Any>,
    prev: &Run,
    next: &Run,
) -> Result<bool> {
    let changed = sqlx::query(
        "UPDATE flow_runs SET state = $1, state_message = $2, state_at = $3, retries_used = $4, \
         scheduled_at = $5, started_at = $6, ended_at = $7, agent_id = $8, \
         lease_expires_at = $9, result = $10, resume = $11 \
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
    .bind(i64::from(next.resume))
    .bind(prev.id.to_string())
    .bind(prev.state.as_str())
    .bind(i64::from(prev.attempt))
    .execute(&mut **tx)
    .await?
    .rows_affected();
    Ok(changed > 0)
}

/// Writes `next` over `prev` if the row still has `prev`'s state and attempt, and records the
/// transition. Returns false when someone else changed the run first.
async fn save(
    tx: &mut Transaction<'static, Any>,
    prev: &Run,
    next: &Run,
    transition_id: Uuid,
) -> Result<bool> {
    if !save_run(tx, prev, next).await? {
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
