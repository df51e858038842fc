//! History for the UI's charts: runs over time by state (the dashboard), and a deployment's
//! outcomes and last durations (its page). Each is one statement that reads small rows or an
//! index alone (the hourly counts `flow_run_hours` with `flow_runs_created_state` or
//! `flow_runs_project_created` for a window's partial hours; `flow_runs_deployment_ended`),
//! so a page stays fast on a database of millions of runs.

use crate::codec::{self, micros, placeholders};
use crate::runs::Bind;
use crate::{Dialect, Result, Store};
use sqlx::{AssertSqlSafe, Row};
use std::collections::BTreeMap;
use uuid::Uuid;
use weir_core::{StateKind, Timestamp};

/// Runs created in one hour (UTC), by their state now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HourCounts {
    /// The hour's start, in UTC, on the hour.
    pub hour: Timestamp,
    /// Runs by state; states with none are absent.
    pub counts: BTreeMap<StateKind, u64>,
}

/// Microseconds in an hour: the divisor of the hourly counts' `hour` (migration 0013).
const HOUR_US: i64 = 3_600_000_000;

/// A run that ended, for a duration trend.
#[derive(Debug, Clone, PartialEq)]
pub struct EndedRun {
    /// The flow run's id.
    pub id: Uuid,
    /// Its readable name, such as `etl-7f3a`.
    pub name: String,
    /// Its final state (Completed, Failed, Crashed or Cancelled).
    pub state: StateKind,
    /// When it started (`None`: it ended before it started, e.g. cancelled while waiting).
    pub started_at: Option<Timestamp>,
    /// When it ended.
    pub ended_at: Timestamp,
}

impl Store {
    /// Runs created from `from` until before `until`, per hour they were created in (only
    /// hours with runs, oldest first), by their state now; only in `projects` when given (an
    /// empty list: none).
    ///
    /// One statement: the window's whole hours are read from the hourly counts
    /// (`flow_run_hours`, kept by triggers on `flow_runs`, see migration 0013), its partial
    /// first and last hours are counted from the runs themselves, so the edges are exact and
    /// a 7-day chart reads ~2,000 small rows however many runs those days hold.
    pub async fn runs_by_hour(
        &self,
        projects: Option<&[String]>,
        from: Timestamp,
        until: Timestamp,
    ) -> Result<Vec<HourCounts>> {
        if projects.is_some_and(<[String]>::is_empty) || until <= from {
            return Ok(Vec::new());
        }
        let (start, end) = (micros(from), micros(until));
        // Whole hours: [first_whole, end_whole) in hour numbers.
        let first_whole = start.div_euclid(HOUR_US) + i64::from(start.rem_euclid(HOUR_US) != 0);
        let end_whole = end.div_euclid(HOUR_US);
        let mut parts = Vec::new();
        let mut binds = Vec::new();
        let project_filter = |binds: &mut Vec<Bind>| -> String {
            let Some(ps) = projects else {
                return String::new();
            };
            let sql = format!(
                " AND project IN ({})",
                placeholders(binds.len() + 1, ps.len())
            );
            binds.extend(ps.iter().map(|p| Bind::Text(p.clone())));
            sql
        };
        // Runs of a part of one hour, counted through (created_at, state) or (project,
        // created_at, state).
        let exact = |binds: &mut Vec<Bind>, a: i64, b: i64| {
            let n = binds.len();
            binds.extend([Bind::Int(a.div_euclid(HOUR_US)), Bind::Int(a), Bind::Int(b)]);
            let filter = project_filter(binds);
            format!(
                "SELECT CAST(${} AS BIGINT) AS hour, state, COUNT(*) AS n FROM flow_runs \
                 WHERE created_at >= ${} AND created_at < ${}{filter} GROUP BY state",
                n + 1,
                n + 2,
                n + 3
            )
        };
        if first_whole >= end_whole {
            parts.push(exact(&mut binds, start, end));
        } else {
            if start < first_whole * HOUR_US {
                parts.push(exact(&mut binds, start, first_whole * HOUR_US));
            }
            let n = binds.len();
            binds.extend([Bind::Int(first_whole), Bind::Int(end_whole)]);
            let filter = project_filter(&mut binds);
            parts.push(format!(
                "SELECT hour, state, CAST(SUM(n) AS BIGINT) AS n FROM flow_run_hours \
                 WHERE hour >= ${} AND hour < ${}{filter} GROUP BY hour, state",
                n + 1,
                n + 2
            ));
            if end_whole * HOUR_US < end {
                parts.push(exact(&mut binds, end_whole * HOUR_US, end));
            }
        }
        let sql = parts.join(" UNION ALL ");
        let mut q = sqlx::query(AssertSqlSafe(sql));
        for b in binds {
            q = b.bind(q);
        }
        let mut out: BTreeMap<i64, BTreeMap<StateKind, u64>> = BTreeMap::new();
        for row in q.fetch_all(&self.read).await? {
            let h: i64 = row.try_get("hour")?;
            let n: i64 = row.try_get("n")?;
            // A count folded to zero on PostgreSQL until its rows are folded away.
            let Ok(n @ 1..) = u64::try_from(n) else {
                continue;
            };
            let state = codec::state(&row, "state")?;
            *out.entry(h).or_default().entry(state).or_default() += n;
        }
        out.into_iter()
            .map(|(h, counts)| {
                Ok(HourCounts {
                    hour: codec::time_of("hour", h.saturating_mul(HOUR_US))?,
                    counts,
                })
            })
            .collect()
    }

    /// Folds the hourly counts' appended changes into one row per hour, project and state
    /// (PostgreSQL, where writers append `+n`/`-n` rows instead of updating a shared count;
    /// see migration 0013), dropping counts that reached zero. Safe in every replica at once:
    /// one folds at a time (an advisory lock; the others return at once), and changes
    /// committed meanwhile stay for the next fold. Returns how many folded counts it wrote;
    /// on SQLite, whose triggers update counts in place, it does nothing.
    pub async fn fold_run_hours(&self) -> Result<u64> {
        if self.dialect != Dialect::Postgres {
            return Ok(0);
        }
        let mut tx = self.begin_write().await?;
        let locked: bool =
            sqlx::query_scalar("SELECT pg_try_advisory_xact_lock(hashtextextended($1, 0))")
                .bind("weir-run-hours-fold")
                .fetch_one(&mut *tx)
                .await?;
        if !locked {
            return Ok(0);
        }
        let folded = sqlx::query(
            "WITH touched AS (SELECT DISTINCT hour, project, state FROM flow_run_hours \
                 WHERE fresh), \
             gone AS (DELETE FROM flow_run_hours h USING touched t \
                 WHERE h.hour = t.hour AND h.project = t.project AND h.state = t.state \
                 RETURNING h.hour, h.project, h.state, h.n) \
             INSERT INTO flow_run_hours (hour, project, state, n, fresh) \
             SELECT hour, project, state, SUM(n), FALSE FROM gone \
             GROUP BY hour, project, state HAVING SUM(n) <> 0",
        )
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(folded)
    }

    /// How many runs of a deployment ended at or after `since`, by final state.
    pub async fn deployment_outcomes(
        &self,
        deployment_id: Uuid,
        since: Timestamp,
    ) -> Result<BTreeMap<StateKind, u64>> {
        // The upper bound changes no result; it keeps SQLite's planner (no statistics) on
        // the (deployment_id, ended_at, state) index rather than the deployment's id index.
        let rows = sqlx::query(
            "SELECT state, COUNT(*) AS n FROM flow_runs \
             WHERE deployment_id = $1 AND ended_at >= $2 AND ended_at <= $3 GROUP BY state",
        )
        .bind(deployment_id.to_string())
        .bind(micros(since))
        .bind(i64::MAX)
        .fetch_all(&self.read)
        .await?;
        codec::state_counts(&rows)
    }

    /// The last `limit` runs of a deployment to end, the most recent first.
    pub async fn last_ended_runs(&self, deployment_id: Uuid, limit: u32) -> Result<Vec<EndedRun>> {
        let rows = sqlx::query(
            "SELECT id, name, state, started_at, ended_at FROM flow_runs \
             WHERE deployment_id = $1 AND ended_at >= $2 AND ended_at <= $3 \
             ORDER BY ended_at DESC LIMIT $4",
        )
        .bind(deployment_id.to_string())
        .bind(i64::MIN)
        .bind(i64::MAX)
        .bind(i64::from(limit))
        .fetch_all(&self.read)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(EndedRun {
                    id: codec::uuid(row, "id")?,
                    name: row.try_get("name")?,
                    state: codec::state(row, "state")?,
                    started_at: codec::opt_time(row, "started_at")?,
                    ended_at: codec::time(row, "ended_at")?,
                })
            })
            .collect()
    }
}
