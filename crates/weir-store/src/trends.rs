//! History for the UI's charts: runs over time by state (the dashboard), and a deployment's
//! outcomes and last durations (its page). Each is one statement that reads an index alone
//! (`flow_runs_created_state`, `flow_runs_project_created`, `flow_runs_deployment_ended`), so
//! a page stays fast on a database of millions of runs.

use crate::codec::{self, micros, placeholders, ts};
use crate::runs::Bind;
use crate::{Result, Store};
use sqlx::{AssertSqlSafe, Row};
use std::collections::BTreeMap;
use uuid::Uuid;
use weir_core::{StateKind, Timestamp};

/// Runs created in one hour (UTC), by their state now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HourCounts {
    /// The hour's start.
    pub hour: Timestamp,
    /// Runs by state; states with none are absent.
    pub counts: BTreeMap<StateKind, u64>,
}

/// Microseconds in an hour: the divisor of the `flow_runs_created_hour` index, spelled the
/// same way in the statement so the planner matches the index's expression.
const HOUR_US: i64 = 3_600_000_000;

/// A run that ended, for a duration trend.
#[derive(Debug, Clone, PartialEq)]
pub struct EndedRun {
    /// The run.
    pub id: Uuid,
    /// Its name.
    pub name: String,
    /// Its final state.
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
        // Grouped in the order of the (hour, state, created_at) index, so the count streams
        // through it without a sort; the condition on the hour picks the index's range, the
        // one on created_at the window's exact edges. A project-scoped key's count goes
        // through (project, created_at, state) instead.
        let hour = format!("created_at / {HOUR_US}");
        let mut sql = format!(
            "SELECT {hour} AS hour, state, COUNT(*) AS n FROM flow_runs \
             WHERE {hour} >= $1 AND {hour} <= $2 AND created_at >= $3 AND created_at < $4"
        );
        let mut binds = vec![
            Bind::Int(start / HOUR_US),
            Bind::Int(end / HOUR_US),
            Bind::Int(start),
            Bind::Int(end),
        ];
        if let Some(ps) = projects {
            sql.push_str(&format!(" AND project IN ({})", placeholders(5, ps.len())));
            binds.extend(ps.iter().map(|p| Bind::Text(p.clone())));
        }
        sql.push_str(&format!(" GROUP BY {hour}, state"));
        let mut q = sqlx::query(AssertSqlSafe(sql));
        for b in binds {
            q = b.bind(q);
        }
        let mut out: BTreeMap<i64, BTreeMap<StateKind, u64>> = BTreeMap::new();
        for row in q.fetch_all(&self.read).await? {
            let h: i64 = row.try_get("hour")?;
            let n: i64 = row.try_get("n")?;
            let state = codec::state(&row, "state")?;
            *out.entry(h).or_default().entry(state).or_default() += u64::try_from(n).unwrap_or(0);
        }
        let out = out
            .into_iter()
            .map(|(h, counts)| HourCounts {
                hour: ts(h.saturating_mul(HOUR_US)),
                counts,
            })
            .collect();
        Ok(out)
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
                    started_at: codec::opt_ts(row.try_get("started_at")?),
                    ended_at: ts(row.try_get("ended_at")?),
                })
            })
            .collect()
    }
}
