//! Claiming due runs for an agent, within concurrency limits.
//!
//! Runs under no limit are claimed as before: one `UPDATE … WHERE id IN (SELECT … LIMIT n
//! [FOR UPDATE SKIP LOCKED]) RETURNING …`. Runs under a limit (their deployment's
//! `concurrency`, or a tag with a limit) are claimed one at a time, each in a transaction that
//! first takes the locks of its limits and then claims it only if every limit still has a free
//! slot, counted in the same statement. On PostgreSQL the locks are transaction-scoped
//! advisory locks, one per limit key, taken in key order (so two claimers never wait on each
//! other in a cycle); claimers of runs sharing a limit are thereby serialised, and the count
//! each one reads includes every claim committed before — two agents never exceed a limit. On
//! SQLite the single writer (`BEGIN IMMEDIATE`) serialises them already.
//!
//! A due run of a deployment with `on_limit = "skip"` whose limit is full ends Cancelled
//! instead (first attempts only; see `weir_core::orchestration::skip`).

use crate::codec::{self, FLOW_RUN_COLUMNS, micros, placeholders};
use crate::limits::{deployment_full, full_tag, limited, slot_free};
use crate::runs::insert_history;
use crate::{Dialect, Result, Store, states};
use chrono::Duration;
use sqlx::any::AnyArguments;
use sqlx::query::Query;
use sqlx::{Any, AssertSqlSafe, Row};
use uuid::Uuid;
use weir_core::limits::LimitKey;
use weir_core::run::Run;
use weir_core::{Timestamp, orchestration};

/// Most runs one claim skips (`on_limit = "skip"`); the rest are skipped by the next claim.
const MAX_SKIPS: i64 = 100;

/// One claim request: who claims, from where, how many.
struct Claim<'a> {
    agent: Uuid,
    queues: &'a [String],
    project: Option<&'a str>,
    lease: Duration,
    now: Timestamp,
}

impl Claim<'_> {
    /// Conditions every claimable run `c` meets; `$3` is now, `$5` the project, `$6…` the
    /// queues, `$1` the agent.
    fn due(&self, c: &str) -> String {
        format!(
            "{c}.state IN ({claimable}) AND {c}.scheduled_at <= $3 \
             AND ($5 IS NULL OR {c}.project = $5) \
             AND {c}.work_queue IN ({queues}) \
             AND COALESCE((SELECT a.launchers FROM agents a WHERE a.id = $1), ',process,') \
               LIKE '%,' || \
               COALESCE((SELECT d.infrastructure FROM deployments d \
                 WHERE d.id = {c}.deployment_id), 'process') || ',%'",
            claimable = *states::CLAIMABLE,
            queues = placeholders(6, self.queues.len()),
        )
    }

    /// The claim `UPDATE` of the runs `select` picks (a `SELECT c.id FROM flow_runs c …`).
    fn update(&self, select: &str) -> String {
        format!(
            "UPDATE flow_runs SET state = {claimed}, attempt = attempt + 1, agent_id = $1, \
             lease_expires_at = $2, \
             state_at = CASE WHEN state_at > $3 THEN state_at ELSE $3 END, \
             state_message = NULL, started_at = NULL, ended_at = NULL WHERE id IN ({select}) RETURNING {FLOW_RUN_COLUMNS}",
            claimed = states::one(orchestration::CLAIMED),
        )
    }

    /// `sql` with `$1…$5` and the queues bound; `limit` is `$4`.
    fn bind<'q>(&self, sql: String, limit: i64) -> Query<'q, Any, AnyArguments> {
        let mut q = sqlx::query(AssertSqlSafe(sql))
            .bind(self.agent.to_string())
            .bind(micros(self.now + self.lease))
            .bind(micros(self.now))
            .bind(limit)
            .bind(self.project.map(str::to_string));
        for queue in self.queues {
            q = q.bind(queue.clone());
        }
        q
    }

    /// Index of the first placeholder after the queues.
    fn next_param(&self) -> usize {
        6 + self.queues.len()
    }
}

impl Store {
    /// Claims up to `limit` due runs from `queues` for `agent`: each moves to Pending with its
    /// attempt bumped, atomically, so no run is claimed twice however many agents race. Only
    /// runs whose infrastructure kind (their deployment's; `process` for ad-hoc runs) is among
    /// the agent's registered launchers are taken (an agent the store does not know counts as
    /// launching processes only), and only while their concurrency limits have a free slot.
    /// Returns the claimed runs, each with its [`Run::resume`]: whether this attempt reuses
    /// the persisted results of task runs completed before.
    pub async fn claim(
        &self,
        agent: Uuid,
        queues: &[String],
        limit: u32,
        lease: Duration,
        now: Timestamp,
    ) -> Result<Vec<Run>> {
        self.claim_in(agent, queues, None, limit, lease, now).await
    }

    /// [`Store::claim`], only runs of `project` when given (for project-scoped agent keys).
    pub async fn claim_in(
        &self,
        agent: Uuid,
        queues: &[String],
        project: Option<&str>,
        limit: u32,
        lease: Duration,
        now: Timestamp,
    ) -> Result<Vec<Run>> {
        if queues.is_empty() || limit == 0 {
            return Ok(vec![]);
        }
        let c = Claim {
            agent,
            queues,
            project,
            lease,
            now,
        };
        let limits_exist = self.any_limit().await?;
        let mut claimed = self.claim_unlimited(&c, limit, limits_exist).await?;
        if limits_exist {
            self.skip_blocked(&c).await?;
            let left = limit.saturating_sub(u32::try_from(claimed.len()).unwrap_or(limit));
            claimed.extend(self.claim_limited(&c, left).await?);
        }
        claimed.sort_by_key(|r| (r.scheduled_at, r.id));
        Ok(claimed)
    }

    /// Claims runs under no limit, in one statement.
    async fn claim_unlimited(
        &self,
        c: &Claim<'_>,
        limit: u32,
        limits_exist: bool,
    ) -> Result<Vec<Run>> {
        let lock = match self.dialect {
            Dialect::Sqlite => "",
            Dialect::Postgres => " FOR UPDATE SKIP LOCKED",
        };
        let unlimited = if limits_exist {
            format!(" AND NOT {}", limited(self.dialect, "c"))
        } else {
            String::new()
        };
        let select = format!(
            "SELECT c.id FROM flow_runs c WHERE {}{unlimited} \
             ORDER BY c.scheduled_at, c.id LIMIT $4{lock}",
            c.due("c")
        );
        let q = c.bind(c.update(&select), i64::from(limit));
        let mut tx = self.begin_write().await?;
        let rows = q.fetch_all(&mut *tx).await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            out.push(claimed(&mut tx, row).await?);
        }
        tx.commit().await?;
        Ok(out)
    }

    /// Claims up to `left` runs under a limit, one transaction each (see the module doc).
    async fn claim_limited(&self, c: &Claim<'_>, left: u32) -> Result<Vec<Run>> {
        let mut out = Vec::new();
        let mut tries = 0;
        while (out.len() as u32) < left && tries < left + 8 {
            tries += 1;
            // A candidate whose limits look free, read without locks.
            let candidate = c
                .bind(
                    format!(
                        "SELECT c.id, c.deployment_id, c.tags FROM flow_runs c WHERE {} AND {} \
                         AND {} ORDER BY c.scheduled_at, c.id LIMIT $4",
                        c.due("c"),
                        limited(self.dialect, "c"),
                        slot_free(self.dialect, "c", "$3"),
                    ),
                    1,
                )
                .fetch_optional(&self.read)
                .await?;
            let Some(row) = candidate else { break };
            let id = codec::uuid(&row, "id")?;
            let mut keys: Vec<String> = codec::json::<Vec<String>>(&row, "tags")?
                .into_iter()
                .map(|t| format!("weir-limit:tag:{t}"))
                .collect();
            if let Some(d) = codec::opt_uuid(&row, "deployment_id")? {
                keys.push(format!("weir-limit:deployment:{d}"));
            }
            keys.sort();
            keys.dedup();
            let mut tx = self.begin_write().await?;
            if self.dialect == Dialect::Postgres {
                for key in &keys {
                    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
                        .bind(key.clone())
                        .execute(&mut *tx)
                        .await?;
                }
            }
            let lock = match self.dialect {
                Dialect::Sqlite => "",
                Dialect::Postgres => " FOR UPDATE SKIP LOCKED",
            };
            // Under the locks, the counts include every claim committed before: claim only
            // if every limit still has a free slot.
            let select = format!(
                "SELECT c.id FROM flow_runs c WHERE c.id = ${} AND {} AND {} LIMIT $4{lock}",
                c.next_param(),
                c.due("c"),
                slot_free(self.dialect, "c", "$3"),
            );
            let row = c
                .bind(c.update(&select), 1)
                .bind(id.to_string())
                .fetch_optional(&mut *tx)
                .await?;
            match row {
                Some(row) => {
                    out.push(claimed(&mut tx, &row).await?);
                    tx.commit().await?;
                }
                None => tx.rollback().await?,
            }
        }
        Ok(out)
    }

    /// Ends due first attempts of `on_limit = "skip"` deployments whose limit is full.
    async fn skip_blocked(&self, c: &Claim<'_>) -> Result<()> {
        let rows = c
            .bind(
                format!(
                    "SELECT c.id, d.project, d.name, d.concurrency, \
                     CASE WHEN {dep_full} THEN 1 ELSE 0 END AS deployment_full, \
                     {full_tag} AS full_tag \
                     FROM flow_runs c JOIN deployments d ON d.id = c.deployment_id \
                     WHERE d.on_limit = 'skip' AND c.attempt = 0 AND {due} \
                     AND ({dep_full} OR {full_tag} IS NOT NULL) \
                     ORDER BY c.scheduled_at, c.id LIMIT $4",
                    dep_full = deployment_full("c", "$3"),
                    full_tag = full_tag(self.dialect, "c", "$3"),
                    due = c.due("c"),
                ),
                MAX_SKIPS,
            )
            .fetch_all(&self.read)
            .await?;
        for row in rows {
            let id = codec::uuid(&row, "id")?;
            let (key, slots) = if row.try_get::<i64, _>("deployment_full")? != 0 {
                let project: String = row.try_get("project")?;
                let name: String = row.try_get("name")?;
                let slots: Option<i64> = row.try_get("concurrency")?;
                (
                    LimitKey::Deployment(format!("{project}/{name}")),
                    slots.unwrap_or(0),
                )
            } else {
                let tag: String = row.try_get("full_tag")?;
                let slots = sqlx::query("SELECT slots FROM concurrency_limits WHERE tag = $1")
                    .bind(tag.clone())
                    .fetch_optional(&self.read)
                    .await?
                    .map(|r| r.try_get::<i64, _>("slots"))
                    .transpose()?
                    .unwrap_or(0);
                (LimitKey::Tag(tag), slots)
            };
            let slots = u32::try_from(slots).unwrap_or(0);
            let now = codec::stored(c.now);
            let skipped = self
                .change(id, None, |run| {
                    orchestration::skip(run, &key, slots, now).map_err(|_| crate::Error::Rejected {
                        reason: format!("run is {}; not skipped", run.state),
                        current: Box::new(run.clone()),
                    })
                })
                .await;
            match skipped {
                Ok(_) | Err(crate::Error::Rejected { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

/// A claimed row as a run, with its history row written at the time the claim stamped it
/// (never before the state it left: see `weir_core::orchestration::stamp`).
async fn claimed(tx: &mut sqlx::Transaction<'static, Any>, row: &sqlx::any::AnyRow) -> Result<Run> {
    let run = codec::run(row)?;
    insert_history(
        tx,
        Uuid::now_v7(),
        run.id,
        orchestration::CLAIMED,
        None,
        i64::from(run.attempt),
        run.state_at,
    )
    .await?;
    Ok(run)
}
