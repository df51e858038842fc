//! Leases of flow runs: renewing those an agent or a run's own process holds (the attempt
//! is the fencing token), and finding those that expired.

use crate::codec::{self, FLOW_RUN_COLUMNS, micros};
use crate::{Result, Store, states};
use chrono::Duration;
use sqlx::AssertSqlSafe;
use uuid::Uuid;
use weir_core::api::HeldRun;
use weir_core::run::Run;
use weir_core::{StateKind, Timestamp};

impl Store {
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
    pub async fn expired_leases(&self, now: Timestamp, limit: u32) -> Result<Vec<Run>> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {FLOW_RUN_COLUMNS} FROM flow_runs \
             WHERE state IN ({}) AND lease_expires_at < $1 ORDER BY lease_expires_at LIMIT $2",
            *states::LEASED
        )))
        .bind(micros(now))
        .bind(i64::from(limit))
        .fetch_all(&self.read)
        .await?;
        rows.iter().map(codec::run).collect()
    }
}
