//! Retention: finding a project's finished runs past its window, reading them for export, and
//! deleting them with their task runs, states and logs in small batches.
//!
//! Each step is short and index-driven, so writers never wait long: [`Store::expired_runs`]
//! reads a batch of ids through `flow_runs_project_state_at` (no transaction); the export (the
//! server's, [`Store::archive_runs`]) happens outside any transaction; [`Store::delete_runs`]
//! is one write transaction per batch that first reads the ids by primary key and keeps those
//! still finished and past the window (a run retried meanwhile stays), locking them on
//! PostgreSQL with `FOR UPDATE SKIP LOCKED` so replicas pruning at once never wait on each
//! other, then deletes by primary key and by the `…_run` indexes and counts them in the
//! project's `pruned_runs`.

use crate::codec::{self, FLOW_RUN_COLUMNS, TASK_RUN_COLUMNS, micros, placeholders};
use crate::{Dialect, Error, Result, Store, states};
use sqlx::any::AnyRow;
use sqlx::{AnyPool, AssertSqlSafe, Row};
use std::collections::BTreeMap;
use uuid::Uuid;
use weir_core::Timestamp;
use weir_core::api::{LogLine, Project, StateChange, TaskRunDetail, TaskRunState};
use weir_core::run::Run;

/// Everything retention deletes with one run, read for its export (the server writes it as a
/// `weir_core::retention::ArchivedRun` line).
#[derive(Debug, Clone, PartialEq)]
pub struct Archived {
    /// The run as it was.
    pub run: Run,
    /// Its state history in the order its changes were committed, as
    /// [`Store::flow_run_history`] reads it.
    pub history: Vec<StateChange>,
    /// Its task runs with their histories, in id (creation) order; each history in the order
    /// [`Store::task_run`] reads it (by time, ties in the order stored).
    pub task_runs: Vec<TaskRunDetail>,
    /// Its log lines, oldest first.
    pub logs: Vec<LogLine>,
}

/// What one call of [`Store::delete_runs`] removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pruned {
    /// Flow runs.
    pub runs: u64,
    /// Task runs.
    pub task_runs: u64,
    /// Flow-run and task-run state history rows.
    pub states: u64,
    /// Log lines.
    pub logs: u64,
}

impl std::ops::AddAssign for Pruned {
    fn add_assign(&mut self, o: Pruned) {
        self.runs += o.runs;
        self.task_runs += o.task_runs;
        self.states += o.states;
        self.logs += o.logs;
    }
}

fn ids_text(ids: &[Uuid]) -> Vec<String> {
    ids.iter().map(Uuid::to_string).collect()
}

impl Store {
    /// Sets a project's own retention (`None`: the server's default; `Some(0)`: forever) and
    /// returns the project. `NotFound` when there is no such project.
    pub async fn set_retention(&self, project: &str, days: Option<u32>) -> Result<Project> {
        let n = sqlx::query("UPDATE projects SET retain_days = $1 WHERE name = $2")
            .bind(days.map(i64::from))
            .bind(project)
            .execute(&self.write)
            .await?
            .rows_affected();
        if n == 0 {
            return Err(Error::NotFound(format!("project {project:?}")));
        }
        self.projects()
            .await?
            .into_iter()
            .find(|p| p.name == project)
            .ok_or_else(|| Error::NotFound(format!("project {project:?}")))
    }

    /// Up to `limit` ids of `project`'s finished runs whose last state change is before
    /// `cutoff`, in no particular order.
    pub async fn expired_runs(
        &self,
        project: &str,
        cutoff: Timestamp,
        limit: u32,
    ) -> Result<Vec<Uuid>> {
        let sql = format!(
            "SELECT id FROM flow_runs WHERE project = $1 AND state IN ({}) AND state_at < $2 \
             LIMIT $3",
            *states::FINISHED
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(project)
            .bind(micros(cutoff))
            .bind(i64::from(limit.max(1)))
            .fetch_all(&self.read)
            .await?;
        rows.iter().map(|r| codec::uuid(r, "id")).collect()
    }

    /// Everything retention deletes with runs `ids`, one [`Archived`] each, in id order.
    pub async fn archive_runs(&self, ids: &[Uuid]) -> Result<Vec<Archived>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let of = OfRuns {
            read: &self.read,
            list: placeholders(1, ids.len()),
            text: ids_text(ids),
        };
        let mut out = of.runs().await?;
        of.add_history(&mut out).await?;
        let task_of = of.add_task_runs(&mut out).await?;
        of.add_task_states(&mut out, &task_of).await?;
        of.add_logs(&mut out).await?;
        Ok(out.into_values().collect())
    }

    /// Deletes those of runs `ids` of `project` that are still finished and last changed
    /// before `cutoff` ([`weir_core::retention::is_expired`]), with their task runs, states
    /// and logs, and adds them to the project's `pruned_runs` — in one short transaction.
    pub async fn delete_runs(
        &self,
        project: &str,
        ids: &[Uuid],
        cutoff: Timestamp,
        now: Timestamp,
    ) -> Result<Pruned> {
        if ids.is_empty() {
            return Ok(Pruned::default());
        }
        let lock = match self.dialect {
            Dialect::Sqlite => "",
            Dialect::Postgres => " FOR UPDATE SKIP LOCKED",
        };
        let mut tx = self.begin_write().await?;
        // By primary key only: a condition on project or state would let the planner walk
        // the retention index over every expired run instead.
        let sql = format!(
            "SELECT id, project, state, state_at FROM flow_runs WHERE id IN ({}){lock}",
            placeholders(1, ids.len()),
        );
        let mut q = sqlx::query(AssertSqlSafe(sql));
        for id in ids_text(ids) {
            q = q.bind(id);
        }
        let rows = q.fetch_all(&mut *tx).await?;
        let mut confirmed: Vec<String> = Vec::with_capacity(rows.len());
        for r in &rows {
            let p: String = r.try_get("project")?;
            let state = codec::state(r, "state")?;
            let at = codec::time(r, "state_at")?;
            if p == project && weir_core::retention::is_expired(state, at, cutoff) {
                confirmed.push(r.try_get("id")?);
            }
        }
        if confirmed.is_empty() {
            tx.commit().await?;
            return Ok(Pruned::default());
        }
        let list = placeholders(1, confirmed.len());
        let mut pruned = Pruned::default();
        let statements = [
            format!("DELETE FROM logs WHERE flow_run_id IN ({list})"),
            format!(
                "DELETE FROM task_run_states WHERE task_run_id IN \
                 (SELECT id FROM task_runs WHERE flow_run_id IN ({list}))"
            ),
            format!("DELETE FROM task_runs WHERE flow_run_id IN ({list})"),
            format!("DELETE FROM flow_run_states WHERE flow_run_id IN ({list})"),
            format!("DELETE FROM flow_runs WHERE id IN ({list})"),
        ];
        for (i, sql) in statements.into_iter().enumerate() {
            let mut q = sqlx::query(AssertSqlSafe(sql));
            for id in &confirmed {
                q = q.bind(id.clone());
            }
            let n = q.execute(&mut *tx).await?.rows_affected();
            match i {
                0 => pruned.logs = n,
                1 | 3 => pruned.states += n,
                2 => pruned.task_runs = n,
                _ => pruned.runs = n,
            }
        }
        sqlx::query(
            "UPDATE projects SET pruned_runs = pruned_runs + $1, pruned_at = $2 WHERE name = $3",
        )
        .bind(i64::try_from(pruned.runs).unwrap_or(i64::MAX))
        .bind(micros(now))
        .bind(project)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(pruned)
    }
}

/// The reads of [`Store::archive_runs`], each over the same runs: their ids bound to the
/// placeholders `list`.
struct OfRuns<'a> {
    read: &'a AnyPool,
    list: String,
    text: Vec<String>,
}

/// Where a task run's [`TaskRunDetail`] is: its flow run and its place in that run's list.
type TaskOf = BTreeMap<Uuid, (Uuid, usize)>;

impl OfRuns<'_> {
    /// The rows `sql` selects, with the runs' ids bound.
    async fn fetch(&self, sql: String) -> Result<Vec<AnyRow>> {
        let mut q = sqlx::query(AssertSqlSafe(sql));
        for id in &self.text {
            q = q.bind(id.clone());
        }
        Ok(q.fetch_all(self.read).await?)
    }

    /// The runs themselves, each an [`Archived`] with nothing else yet, by id.
    async fn runs(&self) -> Result<BTreeMap<Uuid, Archived>> {
        let list = &self.list;
        let runs = self
            .fetch(format!(
                "SELECT {FLOW_RUN_COLUMNS} FROM flow_runs WHERE id IN ({list}) ORDER BY id"
            ))
            .await?;
        let mut out: BTreeMap<Uuid, Archived> = BTreeMap::new();
        for r in &runs {
            let run = codec::run(r)?;
            out.insert(
                run.id,
                Archived {
                    run,
                    history: Vec::new(),
                    task_runs: Vec::new(),
                    logs: Vec::new(),
                },
            );
        }
        Ok(out)
    }

    /// Adds each run's state history.
    async fn add_history(&self, out: &mut BTreeMap<Uuid, Archived>) -> Result<()> {
        let list = &self.list;
        let history = self
            .fetch(format!(
                "SELECT id, flow_run_id, state, message, attempt, at FROM flow_run_states \
                 WHERE flow_run_id IN ({list}) ORDER BY seq"
            ))
            .await?;
        for r in &history {
            if let Some(a) = out.get_mut(&codec::uuid(r, "flow_run_id")?) {
                a.history.push(codec::state_change(r)?);
            }
        }
        Ok(())
    }

    /// Adds each run's task runs (without their histories); returns where each one went.
    async fn add_task_runs(&self, out: &mut BTreeMap<Uuid, Archived>) -> Result<TaskOf> {
        let list = &self.list;
        let tasks = self
            .fetch(format!(
                "SELECT {TASK_RUN_COLUMNS} FROM task_runs WHERE flow_run_id IN ({list}) ORDER BY id"
            ))
            .await?;
        let mut task_of: TaskOf = BTreeMap::new();
        for r in &tasks {
            let t = codec::task_run(r)?;
            if let Some(a) = out.get_mut(&t.flow_run_id) {
                task_of.insert(t.id, (t.flow_run_id, a.task_runs.len()));
                a.task_runs.push(TaskRunDetail {
                    task_run: t,
                    history: Vec::new(),
                });
            }
        }
        Ok(task_of)
    }

    /// Adds each task run's state history, to the task runs `task_of` places, in the order
    /// [`Store::task_run`] reads it: by time, ties in the order stored (`seq`, migration 0015).
    async fn add_task_states(
        &self,
        out: &mut BTreeMap<Uuid, Archived>,
        task_of: &TaskOf,
    ) -> Result<()> {
        let list = &self.list;
        let task_states = self
            .fetch(format!(
                "SELECT s.task_run_id, s.state, s.message, s.attempt, s.at FROM task_run_states s \
                 JOIN task_runs t ON t.id = s.task_run_id WHERE t.flow_run_id IN ({list}) \
                 ORDER BY s.at, s.seq"
            ))
            .await?;
        for r in &task_states {
            let Some((run, i)) = task_of.get(&codec::uuid(r, "task_run_id")?) else {
                continue;
            };
            if let Some(a) = out.get_mut(run) {
                a.task_runs[*i].history.push(TaskRunState {
                    state: codec::state(r, "state")?,
                    message: r.try_get("message")?,
                    attempt: codec::u32_col(r, "attempt")?,
                    at: codec::time(r, "at")?,
                });
            }
        }
        Ok(())
    }

    /// Adds each run's log lines.
    async fn add_logs(&self, out: &mut BTreeMap<Uuid, Archived>) -> Result<()> {
        let list = &self.list;
        let logs = self
            .fetch(format!(
                "SELECT seq, flow_run_id, task_run_id, at, level, message FROM logs \
                 WHERE flow_run_id IN ({list}) ORDER BY seq"
            ))
            .await?;
        for r in &logs {
            let line = log_line(r)?;
            if let Some(a) = out.get_mut(&line.flow_run_id) {
                a.logs.push(line);
            }
        }
        Ok(())
    }
}

fn log_line(r: &sqlx::any::AnyRow) -> Result<LogLine> {
    let level: String = r.try_get("level")?;
    Ok(LogLine {
        seq: r.try_get("seq")?,
        flow_run_id: codec::uuid(r, "flow_run_id")?,
        task_run_id: codec::opt_uuid(r, "task_run_id")?,
        at: codec::time(r, "at")?,
        level: crate::logs::parse_level(&level)?,
        message: r.try_get("message")?,
    })
}
