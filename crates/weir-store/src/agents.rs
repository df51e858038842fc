//! Agents and work queues.

use crate::codec::{self, micros, to_json};
use crate::{Error, Result, Store, states};
use sqlx::Row;
use sqlx::any::AnyRow;
use std::collections::BTreeMap;
use std::sync::LazyLock;
use uuid::Uuid;
use weir_core::Timestamp;
use weir_core::api::{Agent, RegisterAgent, WorkQueue};
use weir_core::infrastructure::{InfrastructureKind, UnknownKind};

fn agent(row: &AnyRow) -> Result<Agent> {
    Ok(Agent {
        id: codec::uuid(row, "id")?,
        name: row.try_get("name")?,
        queues: codec::json(row, "queues")?,
        limit: codec::u32_col(row, "run_limit")?,
        created_at: codec::time(row, "created_at")?,
        last_heartbeat_at: codec::time(row, "last_heartbeat_at")?,
        running: codec::u32_col(row, "running")?,
        launchers: launchers(&row.try_get::<String, _>("launchers")?)?,
    })
}

/// The stored form of an agent's launchers: the kinds between commas, `,process,docker,`, so
/// the claim statement tests membership with one `LIKE` in both dialects.
fn launchers_column(kinds: &[InfrastructureKind]) -> String {
    let mut s = String::from(",");
    for k in kinds {
        s.push_str(k.as_str());
        s.push(',');
    }
    s
}

fn launchers(column: &str) -> Result<Vec<InfrastructureKind>> {
    column
        .split(',')
        .filter(|k| !k.is_empty())
        .map(|k| {
            k.parse().map_err(|e: UnknownKind| Error::Corrupt {
                column: "launchers",
                reason: e.to_string(),
            })
        })
        .collect()
}

static AGENT_SELECT: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT a.id, a.name, a.queues, a.run_limit, a.created_at, a.last_heartbeat_at, a.launchers, \
         (SELECT COUNT(*) FROM flow_runs r WHERE r.agent_id = a.id \
         AND r.state IN ({})) AS running FROM agents a",
        *states::LEASED
    )
});

impl Store {
    /// Registers a new agent.
    /// `key` is the API key that registered it, if any.
    pub async fn register_agent(
        &self,
        req: &RegisterAgent,
        key: Option<&str>,
        now: Timestamp,
    ) -> Result<Agent> {
        let id = Uuid::now_v7();
        sqlx::query(
            "INSERT INTO agents (id, name, queues, run_limit, created_at, last_heartbeat_at, key_id, \
             launchers) VALUES ($1, $2, $3, $4, $5, $5, $6, $7)",
        )
        .bind(id.to_string())
        .bind(&req.name)
        .bind(to_json(&req.queues))
        .bind(i64::from(req.limit))
        .bind(micros(now))
        .bind(key.map(str::to_string))
        .bind(launchers_column(&req.launchers))
        .execute(&self.write)
        .await?;
        self.agent(id).await
    }

    /// One agent.
    pub async fn agent(&self, id: Uuid) -> Result<Agent> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "{} WHERE a.id = $1",
            *AGENT_SELECT
        )))
        .bind(id.to_string())
        .fetch_optional(&self.read)
        .await?
        .ok_or_else(|| Error::NotFound(format!("agent {id}")))?;
        agent(&row)
    }

    /// Records that an agent is alive.
    pub async fn touch_agent(&self, id: Uuid, now: Timestamp) -> Result<()> {
        let n = sqlx::query("UPDATE agents SET last_heartbeat_at = $1 WHERE id = $2")
            .bind(micros(now))
            .bind(id.to_string())
            .execute(&self.write)
            .await?
            .rows_affected();
        if n == 0 {
            return Err(Error::NotFound(format!("agent {id}")));
        }
        Ok(())
    }

    /// Agents seen since `since`, most recent heartbeat first.
    pub async fn agents(&self, since: Timestamp) -> Result<Vec<Agent>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "{} WHERE a.last_heartbeat_at >= $1 ORDER BY a.last_heartbeat_at DESC LIMIT 500",
            *AGENT_SELECT
        )))
        .bind(micros(since))
        .fetch_all(&self.read)
        .await?;
        rows.iter().map(agent).collect()
    }

    /// Work queues named by deployments or live agents, with their ready and running counts.
    pub async fn work_queues(
        &self,
        now: Timestamp,
        agents_since: Timestamp,
    ) -> Result<Vec<WorkQueue>> {
        let mut queues: BTreeMap<String, WorkQueue> = BTreeMap::new();
        let mut entry = |name: String| {
            queues.entry(name.clone()).or_insert(WorkQueue {
                name,
                ready: 0,
                running: 0,
            });
        };
        for row in sqlx::query("SELECT DISTINCT work_queue FROM deployments")
            .fetch_all(&self.read)
            .await?
        {
            entry(row.try_get("work_queue")?);
        }
        for a in self.agents(agents_since).await? {
            for q in a.queues {
                entry(q);
            }
        }
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT work_queue, \
             SUM(CASE WHEN state IN ({claimable}) AND scheduled_at <= $1 THEN 1 ELSE 0 END) AS ready, \
             SUM(CASE WHEN state IN ({leased}) THEN 1 ELSE 0 END) AS running \
             FROM flow_runs WHERE state IN ({active}) GROUP BY work_queue",
            claimable = *states::CLAIMABLE,
            leased = *states::LEASED,
            active = *states::ACTIVE,
        )))
        .bind(micros(now))
        .fetch_all(&self.read)
        .await?;
        for row in rows {
            let name: String = row.try_get("work_queue")?;
            let ready: i64 = row.try_get("ready")?;
            let running: i64 = row.try_get("running")?;
            let q = queues.entry(name.clone()).or_insert(WorkQueue {
                name,
                ready: 0,
                running: 0,
            });
            q.ready = u64::try_from(ready).unwrap_or(0);
            q.running = u64::try_from(running).unwrap_or(0);
        }
        Ok(queues.into_values().collect())
    }
}
