//! Reading flow runs: one run and its history, pages of runs by filter, counts by state,
//! runs that are overdue, upcoming runs and a run's task groups.

use super::{RunFilter, TaskGroup};
use crate::codec::{self, Bind, FLOW_RUN_COLUMNS, micros, placeholders};
use crate::{Error, Result, Store, states};
use sqlx::{AssertSqlSafe, Row};
use std::collections::BTreeMap;
use uuid::Uuid;
use weir_core::api::{Page, StateChange};
use weir_core::run::Run;
use weir_core::{StateKind, Timestamp};

impl Store {
    /// One flow run.
    pub async fn flow_run(&self, id: Uuid) -> Result<Run> {
        let row = sqlx::query(AssertSqlSafe(format!(
            "SELECT {FLOW_RUN_COLUMNS} FROM flow_runs WHERE id = $1"
        )))
        .bind(id.to_string())
        .fetch_optional(&self.read)
        .await?
        .ok_or_else(|| Error::NotFound(format!("flow run {id}")))?;
        codec::run(&row)
    }

    /// A run's state history, oldest first: in the order its changes were committed
    /// (`seq`, migration 0014), not by time — changes stamped no earlier than the state they
    /// leave can share one.
    pub async fn flow_run_history(&self, id: Uuid) -> Result<Vec<StateChange>> {
        let rows = sqlx::query(
            "SELECT id, state, message, attempt, at FROM flow_run_states \
             WHERE flow_run_id = $1 ORDER BY seq",
        )
        .bind(id.to_string())
        .fetch_all(&self.read)
        .await?;
        rows.iter().map(codec::state_change).collect()
    }

    /// Flow runs matching `filter`, newest first, one page at a time.
    pub async fn list_flow_runs(&self, filter: &RunFilter) -> Result<Page<Run>> {
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
    ) -> Result<Vec<Run>> {
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
        rows.iter().map(codec::run).collect()
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

    /// Scheduled runs due before `before` (so late by the grace period).
    pub async fn overdue_runs(&self, before: Timestamp, limit: u32) -> Result<Vec<Run>> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {FLOW_RUN_COLUMNS} FROM flow_runs WHERE state = {scheduled} \
             AND scheduled_at < $1 ORDER BY scheduled_at LIMIT $2",
            scheduled = states::one(StateKind::Scheduled)
        )))
        .bind(micros(before))
        .bind(i64::from(limit))
        .fetch_all(&self.read)
        .await?;
        rows.iter().map(codec::run).collect()
    }

    /// The next scheduled run of a deployment.
    pub async fn next_scheduled(&self, deployment: Uuid) -> Result<Option<Run>> {
        let row = sqlx::query(AssertSqlSafe(format!(
            "SELECT {FLOW_RUN_COLUMNS} FROM flow_runs WHERE deployment_id = $1 \
             AND state = {scheduled} ORDER BY scheduled_at LIMIT 1",
            scheduled = states::one(StateKind::Scheduled)
        )))
        .bind(deployment.to_string())
        .fetch_optional(&self.read)
        .await?;
        row.as_ref().map(codec::run).transpose()
    }

    /// The next scheduled runs across projects (`None`: all), soonest first.
    pub async fn upcoming_runs(&self, projects: Option<&[String]>, limit: u32) -> Result<Vec<Run>> {
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
        rows.iter().map(codec::run).collect()
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
