//! Task runs: batched ingest of state reports from the SDK, and reads.

use crate::codec::{self, Bind, TASK_RUN_COLUMNS, micros, placeholders};
use crate::{Dialect, Error, Result, Store};
use sqlx::{Any, AssertSqlSafe, Row, Transaction};
use std::collections::{BTreeMap, HashMap, HashSet};
use uuid::Uuid;
use weir_core::StateKind;
use weir_core::api::{Page, TaskRun, TaskRunDetail, TaskRunReport, TaskRunState};
use weir_core::run::Run;

/// Rows per multi-row statement: keeps bind counts far below both databases' limits.
const CHUNK: usize = 500;

/// One task run's reports in a batch, folded into the row to upsert.
struct Folded<'a> {
    first: &'a TaskRunReport,
    last: &'a TaskRunReport,
    /// Earliest report: the task run's creation, whatever order reports arrive in.
    created_at: i64,
    started_at: Option<i64>,
    /// Latest terminal report.
    ended_at: Option<i64>,
    map_index: Option<u32>,
    fingerprint: Option<&'a str>,
    cache_key: Option<&'a str>,
    result_location: Option<&'a str>,
}

impl Store {
    /// Stores a batch of task-run reports: each task run is created by its first report and
    /// moved by later ones (older reports never overwrite newer states); every report is
    /// kept in the task run's history. Returns how many reports were stored.
    pub async fn ingest_task_runs(&self, reports: &[TaskRunReport]) -> Result<u64> {
        if reports.is_empty() {
            return Ok(0);
        }
        let (order, folded) = fold(reports);
        let mut tx = self.begin_write().await?;
        upsert_task_runs(&mut tx, self.dialect, &order, &folded).await?;
        insert_task_run_states(&mut tx, self.dialect, reports).await?;
        tx.commit().await?;
        Ok(reports.len() as u64)
    }

    /// Task runs of a flow run in creation order, a page at a time (`after`: the previous
    /// page's last id).
    pub async fn task_runs(
        &self,
        flow_run: Uuid,
        after: Option<Uuid>,
        limit: u32,
    ) -> Result<Page<TaskRun>> {
        let limit = limit.clamp(1, 10_000);
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {TASK_RUN_COLUMNS} FROM task_runs WHERE flow_run_id = $1 AND id > $2 \
             ORDER BY id LIMIT $3"
        )))
        .bind(flow_run.to_string())
        .bind(after.map(|a| a.to_string()).unwrap_or_default())
        .bind(i64::from(limit) + 1)
        .fetch_all(&self.read)
        .await?;
        let mut items = rows
            .iter()
            .map(codec::task_run)
            .collect::<Result<Vec<_>>>()?;
        let next_cursor = if items.len() > limit as usize {
            items.truncate(limit as usize);
            items.last().map(|t| t.id.to_string())
        } else {
            None
        };
        Ok(Page { items, next_cursor })
    }

    /// One task run and its state history, oldest first: by the reports' times, then in the
    /// order they were stored (`seq`, migration 0015) where times tie. Time first, because a
    /// task run's state is the report with the latest time (a tie going to the one stored
    /// later, `upsert_task_runs`), so the history ends in the state the task run shows: a
    /// report stored late with an earlier time, which changed nothing, takes its place by
    /// time, not after the state that stands. Times are the reporting process's clock and
    /// tie (Running and Completed of a fast task in one microsecond); `seq` orders those as
    /// they were made, which `ORDER BY at` alone left to the database.
    pub async fn task_run(&self, id: Uuid) -> Result<TaskRunDetail> {
        let row = sqlx::query(AssertSqlSafe(format!(
            "SELECT {TASK_RUN_COLUMNS} FROM task_runs WHERE id = $1"
        )))
        .bind(id.to_string())
        .fetch_optional(&self.read)
        .await?
        .ok_or_else(|| Error::NotFound(format!("task run {id}")))?;
        let task_run = codec::task_run(&row)?;
        let rows = sqlx::query(
            "SELECT state, message, attempt, at FROM task_run_states WHERE task_run_id = $1 \
             ORDER BY at, seq",
        )
        .bind(id.to_string())
        .fetch_all(&self.read)
        .await?;
        let history = rows
            .iter()
            .map(|r| {
                Ok(TaskRunState {
                    state: codec::state(r, "state")?,
                    message: r.try_get("message")?,
                    attempt: codec::u32_col(r, "attempt")?,
                    at: codec::time(r, "at")?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(TaskRunDetail { task_run, history })
    }

    /// Counts of a flow run's task runs by state.
    pub async fn task_run_counts(&self, flow_run: Uuid) -> Result<BTreeMap<StateKind, u64>> {
        let rows = sqlx::query(
            "SELECT state, COUNT(*) AS n FROM task_runs WHERE flow_run_id = $1 GROUP BY state",
        )
        .bind(flow_run.to_string())
        .fetch_all(&self.read)
        .await?;
        codec::state_counts(&rows)
    }

    /// For each id that exists: its project, attempt and state. Used to check a batch refers
    /// to known runs the caller may write to.
    pub async fn flow_run_owners(
        &self,
        ids: &[Uuid],
    ) -> Result<HashMap<Uuid, (String, u32, StateKind)>> {
        let mut out = HashMap::new();
        for chunk in ids.chunks(CHUNK) {
            let sql = format!(
                "SELECT id, project, attempt, state FROM flow_runs WHERE id IN ({})",
                placeholders(1, chunk.len())
            );
            let mut q = sqlx::query(AssertSqlSafe(sql));
            for id in chunk {
                q = Bind::Text(id.to_string()).bind(q);
            }
            for row in q.fetch_all(&self.read).await? {
                out.insert(
                    codec::uuid(&row, "id")?,
                    (
                        row.try_get("project")?,
                        codec::u32_col(&row, "attempt")?,
                        codec::state(&row, "state")?,
                    ),
                );
            }
        }
        Ok(out)
    }
}

/// Folds a batch's reports into one row per task run, and the task runs in the order their
/// first reports came.
fn fold(reports: &[TaskRunReport]) -> (Vec<Uuid>, HashMap<Uuid, Folded<'_>>) {
    let mut order: Vec<Uuid> = Vec::new();
    let mut folded: HashMap<Uuid, Folded<'_>> = HashMap::new();
    for r in reports {
        let at = micros(r.at);
        let f = folded.entry(r.id).or_insert_with(|| {
            order.push(r.id);
            Folded {
                first: r,
                last: r,
                created_at: at,
                started_at: None,
                ended_at: None,
                map_index: None,
                fingerprint: None,
                cache_key: None,
                result_location: None,
            }
        });
        if r.at >= f.last.at {
            f.last = r;
        }
        if r.state == StateKind::Running {
            f.started_at = Some(f.started_at.map_or(at, |s| s.min(at)));
        }
        f.created_at = f.created_at.min(at);
        if r.state.is_terminal() {
            f.ended_at = Some(f.ended_at.map_or(at, |e| e.max(at)));
        }
        f.map_index = r.map_index.or(f.map_index);
        f.fingerprint = r.inputs_fingerprint.as_deref().or(f.fingerprint);
        f.cache_key = r.cache_key.as_deref().or(f.cache_key);
        f.result_location = r.result_location.as_deref().or(f.result_location);
    }
    (order, folded)
}

/// Creates or moves the task runs `order` (their folded rows in `folded`), a chunk per
/// statement: a row older than the stored state leaves it as it is.
async fn upsert_task_runs(
    tx: &mut Transaction<'static, Any>,
    dialect: Dialect,
    order: &[Uuid],
    folded: &HashMap<Uuid, Folded<'_>>,
) -> Result<()> {
    for ids in order.chunks(CHUNK) {
        let values = codec::values_rows(dialect, ids.len(), 14);
        let sql = format!(
            "INSERT INTO task_runs (id, flow_run_id, task, state, message, state_at, attempt, \
             created_at, started_at, ended_at, inputs_fingerprint, cache_key, \
             result_location, map_index) VALUES {} \
             ON CONFLICT (id) DO UPDATE SET \
             state = CASE WHEN excluded.state_at >= task_runs.state_at THEN excluded.state ELSE task_runs.state END, \
             message = CASE WHEN excluded.state_at >= task_runs.state_at THEN excluded.message ELSE task_runs.message END, \
             attempt = CASE WHEN excluded.state_at >= task_runs.state_at THEN excluded.attempt ELSE task_runs.attempt END, \
             state_at = CASE WHEN excluded.state_at >= task_runs.state_at THEN excluded.state_at ELSE task_runs.state_at END, \
             started_at = COALESCE(task_runs.started_at, excluded.started_at), \
             created_at = CASE WHEN excluded.created_at < task_runs.created_at THEN excluded.created_at ELSE task_runs.created_at END, \
             ended_at = CASE WHEN task_runs.ended_at IS NULL OR excluded.ended_at > task_runs.ended_at THEN COALESCE(excluded.ended_at, task_runs.ended_at) ELSE task_runs.ended_at END, \
             map_index = COALESCE(task_runs.map_index, excluded.map_index), \
             inputs_fingerprint = COALESCE(excluded.inputs_fingerprint, task_runs.inputs_fingerprint), \
             cache_key = COALESCE(excluded.cache_key, task_runs.cache_key), \
             result_location = COALESCE(excluded.result_location, task_runs.result_location)",
            values
        );
        let mut q = sqlx::query(AssertSqlSafe(sql));
        for id in ids {
            let Some(f) = folded.get(id) else { continue };
            q = q
                .bind(id.to_string())
                .bind(f.first.flow_run_id.to_string())
                .bind(f.first.task.clone())
                .bind(f.last.state.as_str())
                .bind(f.last.message.clone())
                .bind(micros(f.last.at))
                .bind(i64::from(f.last.attempt))
                .bind(f.created_at)
                .bind(f.started_at)
                .bind(f.ended_at)
                .bind(f.fingerprint.map(str::to_string))
                .bind(f.cache_key.map(str::to_string))
                .bind(f.result_location.map(str::to_string))
                .bind(f.map_index.map(i64::from));
        }
        q.execute(&mut **tx).await?;
    }
    Ok(())
}

/// Keeps every report of the batch in its task run's history, a chunk per statement, after
/// the upsert of every task run of the batch and in the batch's order (the order the reports
/// were made): each row's `seq` (migration 0015) is taken as it is inserted, so reports of one
/// task run that share a time read back in that order, and a later batch (which waits for
/// this one's lock on the task run) after them.
async fn insert_task_run_states(
    tx: &mut Transaction<'static, Any>,
    dialect: Dialect,
    reports: &[TaskRunReport],
) -> Result<()> {
    for chunk in reports.chunks(CHUNK) {
        let values = codec::values_rows(dialect, chunk.len(), 5);
        let sql = format!(
            "INSERT INTO task_run_states (task_run_id, state, message, attempt, at) VALUES {}",
            values
        );
        let mut q = sqlx::query(AssertSqlSafe(sql));
        for r in chunk {
            q = q
                .bind(r.id.to_string())
                .bind(r.state.as_str())
                .bind(r.message.clone())
                .bind(i64::from(r.attempt))
                .bind(micros(r.at));
        }
        q.execute(&mut **tx).await?;
    }
    Ok(())
}

/// The states of a task run that has not ended.
fn open_states() -> Vec<&'static str> {
    StateKind::ALL
        .iter()
        .filter(|s| !s.is_terminal())
        .map(|s| s.as_str())
        .collect()
}

/// Which of the flow runs `runs` have a task run that has not ended, in one query.
pub(crate) async fn with_open_task_runs(
    tx: &mut Transaction<'static, Any>,
    runs: &[Uuid],
) -> Result<HashSet<Uuid>> {
    let open = open_states();
    let mut found = HashSet::new();
    for chunk in runs.chunks(CHUNK) {
        let sql = format!(
            "SELECT DISTINCT flow_run_id FROM task_runs WHERE flow_run_id IN ({}) \
             AND state IN ({})",
            placeholders(1, chunk.len()),
            placeholders(chunk.len() + 1, open.len())
        );
        let mut q = sqlx::query(AssertSqlSafe(sql));
        for id in chunk {
            q = q.bind(id.to_string());
        }
        for s in &open {
            q = q.bind(*s);
        }
        for row in q.fetch_all(&mut **tx).await? {
            found.insert(codec::uuid(&row, "flow_run_id")?);
        }
    }
    Ok(found)
}

/// When a flow run ends, its task runs still open end with it (Cancelled under a cancelled
/// run, else Crashed), with a history row each: no task run stays Running under a finished
/// flow run, whatever reports were lost. Reports sent later with older times change nothing.
/// Each is stamped the flow run's time, or its own state's when that is later (its process's
/// clock ahead of the server's): never before the state it leaves, so its history, read by
/// time, ends in the state it is left in, and it never ends before it started. The rows are
/// updated first and the history rows inserted for those updated: an update waits for a
/// report being stored for the task run until it commits (on PostgreSQL), then finds it ended
/// or not, and the history row's `seq` is taken after, as every report's is after its upsert.
pub(crate) async fn close_task_runs(tx: &mut Transaction<'static, Any>, run: &Run) -> Result<()> {
    let state = if run.state == StateKind::Cancelled {
        StateKind::Cancelled
    } else {
        StateKind::Crashed
    };
    let open = open_states();
    let message = format!("its flow run ended {} first", run.state);
    let sql = format!(
        "UPDATE task_runs SET state = $1, message = $2, \
         state_at = CASE WHEN state_at > $3 THEN state_at ELSE $3 END, \
         ended_at = CASE WHEN state_at > $3 THEN state_at ELSE $3 END \
         WHERE flow_run_id = $4 AND state IN ({}) RETURNING id",
        placeholders(5, open.len())
    );
    let mut q = sqlx::query(AssertSqlSafe(sql))
        .bind(state.as_str())
        .bind(message)
        .bind(micros(run.state_at))
        .bind(run.id.to_string());
    for s in &open {
        q = q.bind(*s);
    }
    let closed: Vec<String> = q
        .fetch_all(&mut **tx)
        .await?
        .iter()
        .map(|r| r.try_get("id"))
        .collect::<std::result::Result<_, _>>()?;
    for ids in closed.chunks(CHUNK) {
        let sql = format!(
            "INSERT INTO task_run_states (task_run_id, state, message, attempt, at) \
             SELECT id, state, message, attempt, state_at FROM task_runs WHERE id IN ({}) \
             ORDER BY id",
            placeholders(1, ids.len())
        );
        let mut q = sqlx::query(AssertSqlSafe(sql));
        for id in ids {
            q = q.bind(id.as_str());
        }
        q.execute(&mut **tx).await?;
    }
    Ok(())
}
