//! What an operator alerts on, per work queue: runs waiting and how long, live agents and
//! their free slots; and the number of late runs.

use crate::codec::{self, micros};
use crate::{Result, Store, states};
use chrono::Duration;
use sqlx::{AssertSqlSafe, Row};
use std::collections::BTreeMap;
use weir_core::{StateKind, Timestamp};

/// One work queue's load.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueueLoad {
    /// The work queue's name.
    pub queue: String,
    /// Runs due and waiting to be claimed.
    pub waiting: u64,
    /// When the longest-waiting of them was due.
    pub oldest_due: Option<Timestamp>,
    /// Agents serving the queue heard from within a lease.
    pub live_agents: u64,
    /// Runs those agents could still take (an agent serving several queues counts in each).
    pub free_slots: u64,
}

impl Store {
    /// The load of every queue named by a deployment, a waiting run or a live agent; agents
    /// are live when heard from within `lease` of `now`.
    pub async fn queue_loads(&self, now: Timestamp, lease: Duration) -> Result<Vec<QueueLoad>> {
        let mut out: BTreeMap<String, QueueLoad> = BTreeMap::new();
        for row in
            sqlx::query("SELECT DISTINCT work_queue FROM deployments WHERE archived_at IS NULL")
                .fetch_all(&self.read)
                .await?
        {
            let q: String = row.try_get("work_queue")?;
            out.entry(q.clone()).or_insert_with(|| QueueLoad {
                queue: q,
                ..QueueLoad::default()
            });
        }
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT work_queue, COUNT(*) AS n, MIN(scheduled_at) AS oldest FROM flow_runs \
             WHERE state IN ({}) AND scheduled_at <= $1 GROUP BY work_queue",
            *states::CLAIMABLE
        )))
        .bind(micros(now))
        .fetch_all(&self.read)
        .await?;
        for row in rows {
            let q: String = row.try_get("work_queue")?;
            let n: i64 = row.try_get("n")?;
            let oldest: i64 = row.try_get("oldest")?;
            let e = out.entry(q.clone()).or_insert_with(|| QueueLoad {
                queue: q,
                ..QueueLoad::default()
            });
            e.waiting = u64::try_from(n).unwrap_or(0);
            e.oldest_due = Some(codec::time_of("scheduled_at", oldest)?);
        }
        for a in self.agents(now - lease).await? {
            if !weir_core::why::agent_is_live(a.last_heartbeat_at, now, lease) {
                continue;
            }
            for q in &a.queues {
                let e = out.entry(q.clone()).or_insert_with(|| QueueLoad {
                    queue: q.clone(),
                    ..QueueLoad::default()
                });
                e.live_agents += 1;
                e.free_slots += u64::from(a.limit.saturating_sub(a.running));
            }
        }
        Ok(out.into_values().collect())
    }

    /// How many runs are Late now.
    pub async fn late_runs(&self) -> Result<u64> {
        let row = sqlx::query(AssertSqlSafe(format!(
            "SELECT COUNT(*) AS n FROM flow_runs WHERE state = {}",
            states::one(StateKind::Late)
        )))
        .fetch_one(&self.read)
        .await?;
        Ok(u64::try_from(row.try_get::<i64, _>("n")?).unwrap_or(0))
    }
}
