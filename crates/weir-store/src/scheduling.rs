//! What the scheduler needs: deployments with schedules, idempotent creation of the runs of
//! their ticks (ahead of time, on catch-up after an outage, on backfill), and the watermark
//! of the scheduler's last pass.
//!
//! Every run of a tick has the idempotency key `weir_core::create::tick_key` (deployment and
//! tick), so however many schedulers, catch-ups and backfills meet one tick, it gets one run.

use crate::Created;
use crate::codec::{self, FLOW_RUN_COLUMNS, micros, placeholders};
use crate::runs::insert_run;
use crate::{Error, Result, Store, states};
use chrono::Duration;
use sqlx::{AssertSqlSafe, Row};
use std::collections::{HashMap, HashSet};
use weir_core::Timestamp;
use weir_core::create::{self, tick_key};
use weir_core::deployment::Deployment;
use weir_core::run::Run;

/// The setting holding the time of the scheduler's last pass, in microseconds.
const WATERMARK: &str = "scheduler_pass_at";

/// Ticks a backfill writes in one transaction: short enough that writers queued behind it
/// wait a few milliseconds, long enough that a window of thousands of ticks is not thousands
/// of commits.
pub const BACKFILL_BATCH: usize = 100;

/// What catch-up did for one deployment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CatchUpOutcome {
    /// Runs put ahead for missed ticks that were removed (never claimed).
    pub removed: u64,
    /// Runs created for missed ticks that had none.
    pub created: u32,
}

impl Store {
    /// Deployments that are neither paused nor archived and have schedules.
    pub async fn scheduled_deployments(&self) -> Result<Vec<Deployment>> {
        Ok(self
            .deployments(None)
            .await?
            .into_iter()
            .filter(|d| !d.paused && d.archived_at.is_none() && !d.spec.schedules.is_empty())
            .collect())
    }

    /// Creates the deployment's runs at `times` that do not exist yet. Each run's
    /// idempotency key is derived from the deployment and the time, so however many
    /// schedulers run this at once, each time gets one run. Returns how many were created.
    pub async fn materialise_runs(
        &self,
        deployment: &Deployment,
        times: &[Timestamp],
        now: Timestamp,
    ) -> Result<u32> {
        let Some(first) = times.first() else {
            return Ok(0);
        };
        let existing: HashSet<i64> = sqlx::query(
            "SELECT scheduled_at FROM flow_runs WHERE deployment_id = $1 AND auto_scheduled = 1 \
             AND scheduled_at >= $2",
        )
        .bind(deployment.id.to_string())
        .bind(micros(*first))
        .fetch_all(&self.read)
        .await?
        .iter()
        .map(|r| r.try_get::<i64, _>("scheduled_at"))
        .collect::<Result<_, _>>()?;
        let mut created = 0;
        for t in times.iter().filter(|t| !existing.contains(&micros(**t))) {
            let new = weir_core::create::scheduled(deployment, *t);
            let new = self.create_flow_run(new, Duration::zero(), now).await?;
            created += u32::from(new.created);
        }
        Ok(created)
    }

    /// The time of the scheduler's last pass (by any replica), if one ever ran.
    pub async fn scheduler_watermark(&self) -> Result<Option<Timestamp>> {
        let row = sqlx::query("SELECT value FROM settings WHERE name = $1")
            .bind(WATERMARK)
            .fetch_optional(&self.write)
            .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let value: String = row.try_get("value")?;
        let us = value.parse::<i64>().map_err(|e| Error::Corrupt {
            column: "settings.value",
            reason: format!("the scheduler's watermark {value:?} is not microseconds: {e}"),
        })?;
        codec::time_of("settings.value", us).map(Some)
    }

    /// On a database without a watermark, when the scheduler last ran, as far as the database
    /// shows: the latest moment, not after `now`, at which a run was created or changed state
    /// or an agent's heartbeat arrived — each written with a server's clock, and a server puts
    /// runs ahead and hears from its agents while it runs. `None` when it shows no server at
    /// work (a new database: nothing was missed).
    ///
    /// A database a Weir from before the watermark used has its history but no watermark, so
    /// its first scheduler pass after the upgrade catches up from here, as after any outage.
    /// Read once, on that first pass (the latest state change is not indexed: one scan).
    pub async fn inferred_last_pass(&self, now: Timestamp) -> Result<Option<Timestamp>> {
        let row = sqlx::query(
            "SELECT MAX(t) AS t FROM (\
             SELECT MAX(created_at) AS t FROM flow_runs WHERE created_at <= $1 \
             UNION ALL SELECT MAX(state_at) AS t FROM flow_runs WHERE state_at <= $1 \
             UNION ALL SELECT MAX(last_heartbeat_at) AS t FROM agents WHERE last_heartbeat_at <= $1\
             ) AS activity",
        )
        .bind(micros(now))
        .fetch_one(&self.read)
        .await?;
        codec::opt_time(&row, "t")
    }

    /// Moves the watermark from `seen` (what [`Store::scheduler_watermark`] read) to `now`, if
    /// no other pass moved it meanwhile. Returns whether this pass moved it: the one pass that
    /// does applies catch-up for the window it closes.
    pub async fn advance_scheduler_watermark(
        &self,
        seen: Option<Timestamp>,
        now: Timestamp,
    ) -> Result<bool> {
        let value = micros(seen.map_or(now, |s| s.max(now))).to_string();
        let n = match seen {
            None => sqlx::query(
                "INSERT INTO settings (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
            )
            .bind(WATERMARK)
            .bind(value)
            .execute(&self.write)
            .await?
            .rows_affected(),
            Some(old) => {
                sqlx::query("UPDATE settings SET value = $1 WHERE name = $2 AND value = $3")
                    .bind(value)
                    .bind(WATERMARK)
                    .bind(micros(old).to_string())
                    .execute(&self.write)
                    .await?
                    .rows_affected()
            }
        };
        Ok(n > 0)
    }

    /// Applies catch-up to `deployment` for the missed window `(after, until]`: the runs put
    /// ahead for its ticks that no agent claimed are removed, except those at `keep`; each tick
    /// of `keep` gets its run (created if missing), due at `now` and keeping its tick as
    /// `tick_at`. Runs an agent claimed meanwhile are left alone.
    pub async fn catch_up(
        &self,
        deployment: &Deployment,
        after: Timestamp,
        until: Timestamp,
        keep: &[Timestamp],
        now: Timestamp,
    ) -> Result<CatchUpOutcome> {
        // Times of our own computing (at most `MAX_CATCHUP_RUNS`), not input: safe as literals.
        let times = keep
            .iter()
            .map(|t| micros(*t).to_string())
            .collect::<Vec<_>>()
            .join(", ");
        let keep_list = if keep.is_empty() {
            String::new()
        } else {
            format!(" AND scheduled_at NOT IN ({times})")
        };
        let missed = format!(
            "SELECT id FROM flow_runs WHERE deployment_id = $1 AND auto_scheduled = 1 \
             AND attempt = 0 AND state IN ({}) AND scheduled_at > $2 AND scheduled_at <= $3{keep_list}",
            *states::CLAIMABLE
        );
        let mut tx = self.begin_write().await?;
        sqlx::query(AssertSqlSafe(format!(
            "DELETE FROM flow_run_states WHERE flow_run_id IN ({missed})"
        )))
        .bind(deployment.id.to_string())
        .bind(micros(after))
        .bind(micros(until))
        .execute(&mut *tx)
        .await?;
        let removed = sqlx::query(AssertSqlSafe(format!(
            "DELETE FROM flow_runs WHERE id IN ({missed})"
        )))
        .bind(deployment.id.to_string())
        .bind(micros(after))
        .bind(micros(until))
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if !keep.is_empty() {
            // Runs put ahead for kept ticks are due now, not Late for the outage.
            sqlx::query(AssertSqlSafe(format!(
                "UPDATE flow_runs SET scheduled_at = $1, tick_at = COALESCE(tick_at, scheduled_at) \
                 WHERE deployment_id = $2 AND auto_scheduled = 1 AND attempt = 0 \
                 AND state IN ({}) AND scheduled_at IN ({times})",
                *states::CLAIMABLE,
            )))
            .bind(micros(now))
            .bind(deployment.id.to_string())
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        let mut created = 0;
        for t in keep {
            let new = self
                .create_flow_run(
                    create::caught_up(deployment, *t, now),
                    Duration::zero(),
                    now,
                )
                .await?;
            created += u32::from(new.created);
        }
        Ok(CatchUpOutcome { removed, created })
    }

    /// The run of each tick, if it has one (by [`tick_key`]), for a backfill's plan.
    pub async fn tick_runs(
        &self,
        deployment: &Deployment,
        ticks: &[Timestamp],
    ) -> Result<HashMap<Timestamp, Run>> {
        let mut out = HashMap::new();
        for chunk in ticks.chunks(500) {
            let keys: Vec<String> = chunk.iter().map(|t| tick_key(deployment.id, *t)).collect();
            let sql = format!(
                "SELECT {FLOW_RUN_COLUMNS}, idempotency_key FROM flow_runs \
                 WHERE project = $1 AND idempotency_key IN ({})",
                placeholders(2, keys.len())
            );
            let mut q = sqlx::query(AssertSqlSafe(sql)).bind(deployment.project.clone());
            for k in &keys {
                q = q.bind(k.clone());
            }
            let by_key: HashMap<&str, Timestamp> = keys
                .iter()
                .map(String::as_str)
                .zip(chunk.iter().copied())
                .collect();
            for row in q.fetch_all(&self.read).await? {
                let key: String = row.try_get("idempotency_key")?;
                if let Some(t) = by_key.get(key.as_str()) {
                    out.insert(*t, codec::run(&row)?);
                }
            }
        }
        Ok(out)
    }

    /// Creates the run of each tick that has none (a backfill), due at `now`. Returns each
    /// tick with its run, [`Created::created`] when this call created it.
    ///
    /// The runs are written [`BACKFILL_BATCH`] ticks to a transaction (a window of 10,000
    /// ticks is 100 short transactions, not 10,000), each tick through the scheduler's key with
    /// `ON CONFLICT DO NOTHING`, so a tick that has a run — from the scheduler, catch-up, an
    /// earlier or a racing backfill — keeps it and gets no second one.
    pub async fn backfill(
        &self,
        deployment: &Deployment,
        ticks: &[Timestamp],
        now: Timestamp,
    ) -> Result<Vec<(Timestamp, Created)>> {
        let mut out = Vec::with_capacity(ticks.len());
        for chunk in ticks.chunks(BACKFILL_BATCH) {
            let mut tx = self.begin_write().await?;
            let mut created = HashSet::new();
            for t in chunk {
                let new = create::backfilled(deployment, *t, now);
                if insert_run(&mut tx, &new, Duration::zero(), now)
                    .await?
                    .is_some()
                {
                    created.insert(micros(*t));
                }
            }
            tx.commit().await?;
            let runs = self.tick_runs(deployment, chunk).await?;
            for t in chunk {
                let run = runs.get(t).cloned().ok_or_else(|| {
                    crate::Error::NotFound(format!(
                        "the run of tick {t} of deployment {}",
                        deployment.id
                    ))
                })?;
                let created = created.contains(&micros(*t));
                out.push((*t, Created { run, created }));
            }
        }
        Ok(out)
    }
}

/// Removes the runs a deployment's schedules put in the future and that have not started,
/// with their history, so the scheduler can recreate them from the current schedules.
pub(crate) async fn delete_future_runs(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    deployment: uuid::Uuid,
    now: Timestamp,
) -> Result<()> {
    let future = format!(
        "SELECT id FROM flow_runs WHERE deployment_id = $1 \
         AND auto_scheduled = 1 AND state = {} AND scheduled_at > $2",
        crate::states::one(weir_core::StateKind::Scheduled)
    );
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DELETE FROM flow_run_states WHERE flow_run_id IN ({future})"
    )))
    .bind(deployment.to_string())
    .bind(micros(now))
    .execute(&mut **tx)
    .await?;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DELETE FROM flow_runs WHERE id IN ({future})"
    )))
    .bind(deployment.to_string())
    .bind(micros(now))
    .execute(&mut **tx)
    .await?;
    Ok(())
}
