//! Conversions between stored columns (integers, text) and domain values.

use crate::{Error, Result};
use chrono::{TimeZone, Utc};
use serde::de::DeserializeOwned;
use sqlx::any::{AnyArguments, AnyRow};
use sqlx::query::Query;
use sqlx::{Any, Row};
use std::collections::BTreeMap;
use uuid::Uuid;
use weir_core::api::{StateChange, TaskRun};
use weir_core::run::Run;
use weir_core::{StateKind, Timestamp};

/// Microseconds since the epoch, as stored.
pub(crate) fn micros(t: Timestamp) -> i64 {
    t.timestamp_micros()
}

/// `t` at the stored precision (microseconds), as it reads back: for a time this process
/// computed and returns as stored. A stored column goes through [`time`], which refuses a
/// value no time has instead of reading it as something.
pub(crate) fn stored(t: Timestamp) -> Timestamp {
    Utc.timestamp_micros(micros(t)).single().unwrap_or(t)
}

/// Microseconds read from `col` as a time; a value outside the times chrono can hold (about
/// 262,000 years either side of 1970) is a corrupt row, named with its column and value.
pub(crate) fn time_of(col: &'static str, us: i64) -> Result<Timestamp> {
    Utc.timestamp_micros(us)
        .single()
        .ok_or_else(|| Error::Corrupt {
            column: col,
            reason: format!("{us} microseconds since 1970 is not a time"),
        })
}

/// The time stored in `col` (integer microseconds).
pub(crate) fn time(row: &AnyRow, col: &'static str) -> Result<Timestamp> {
    time_of(col, row.try_get(col)?)
}

/// The time stored in `col`, if any.
pub(crate) fn opt_time(row: &AnyRow, col: &'static str) -> Result<Option<Timestamp>> {
    let us: Option<i64> = row.try_get(col)?;
    us.map(|us| time_of(col, us)).transpose()
}

pub(crate) fn uuid(row: &AnyRow, col: &'static str) -> Result<Uuid> {
    let s: String = row.try_get(col)?;
    Uuid::parse_str(&s).map_err(|e| Error::Corrupt {
        column: col,
        reason: e.to_string(),
    })
}

pub(crate) fn opt_uuid(row: &AnyRow, col: &'static str) -> Result<Option<Uuid>> {
    let s: Option<String> = row.try_get(col)?;
    s.map(|s| {
        Uuid::parse_str(&s).map_err(|e| Error::Corrupt {
            column: col,
            reason: e.to_string(),
        })
    })
    .transpose()
}

pub(crate) fn state(row: &AnyRow, col: &'static str) -> Result<StateKind> {
    let s: String = row.try_get(col)?;
    s.parse()
        .map_err(|e: weir_core::state::UnknownState| Error::Corrupt {
            column: col,
            reason: e.to_string(),
        })
}

/// `SELECT state, COUNT(*) AS n … GROUP BY state` rows as counts per state.
pub(crate) fn state_counts(rows: &[AnyRow]) -> Result<BTreeMap<StateKind, u64>> {
    let mut out = BTreeMap::new();
    for row in rows {
        let n: i64 = row.try_get("n")?;
        out.insert(state(row, "state")?, u64::try_from(n).unwrap_or(0));
    }
    Ok(out)
}

pub(crate) fn json<T: DeserializeOwned>(row: &AnyRow, col: &'static str) -> Result<T> {
    let s: String = row.try_get(col)?;
    serde_json::from_str(&s).map_err(|e| Error::Corrupt {
        column: col,
        reason: e.to_string(),
    })
}

/// A stored JSON text of one of the store's versioned shapes (`deployments/stored.rs`,
/// `notify/stored.rs`) as its version `known`, the newest this Weir reads. The text is an
/// object with its format version in `v`; without one it was written before versions and is
/// version 1. A version newer than `known` is [`Error::NewerFormat`], naming the row (`row()`,
/// `deployment dev/etl`) and `column`: a newer Weir wrote it, and reading it as an older
/// version could lose what it says. Text that is not JSON, a `v` that is not a positive
/// integer, or a value `T` cannot read is [`Error::Corrupt`], naming the row too.
pub(crate) fn versioned<T: DeserializeOwned>(
    text: &str,
    column: &'static str,
    known: u64,
    row: impl Fn() -> String,
) -> Result<T> {
    let corrupt = |reason: String| Error::Corrupt {
        column,
        reason: format!("{}: {reason}", row()),
    };
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| corrupt(e.to_string()))?;
    let version = match value.get("v") {
        None => 1,
        Some(v) => match v.as_u64() {
            Some(n) if n >= 1 => n,
            _ => {
                return Err(corrupt(format!(
                    "format version {v} is not a positive integer"
                )));
            }
        },
    };
    if version > known {
        return Err(Error::NewerFormat {
            row: format!("{} ({column})", row()),
            found: version,
            known,
        });
    }
    serde_json::from_value(value).map_err(|e| corrupt(e.to_string()))
}

pub(crate) fn opt_json<T: DeserializeOwned>(row: &AnyRow, col: &'static str) -> Result<Option<T>> {
    let s: Option<String> = row.try_get(col)?;
    s.map(|s| {
        serde_json::from_str(&s).map_err(|e| Error::Corrupt {
            column: col,
            reason: e.to_string(),
        })
    })
    .transpose()
}

/// `v`, read from `col`, as a `u32`; a negative or larger value is a corrupt row (never
/// saturated: an attempt of `u32::MAX` would pass every fencing check after it).
pub(crate) fn u32_of(col: &'static str, v: i64) -> Result<u32> {
    u32::try_from(v).map_err(|_| Error::Corrupt {
        column: col,
        reason: format!("{v} is not a whole number from 0 to {}", u32::MAX),
    })
}

/// The `u32` stored in `col`.
pub(crate) fn u32_col(row: &AnyRow, col: &'static str) -> Result<u32> {
    u32_of(col, row.try_get(col)?)
}

/// The `u32` stored in `col`, if any.
pub(crate) fn opt_u32_col(row: &AnyRow, col: &'static str) -> Result<Option<u32>> {
    let v: Option<i64> = row.try_get(col)?;
    v.map(|v| u32_of(col, v)).transpose()
}

/// The count stored in `col`; a negative one is a corrupt row.
pub(crate) fn u64_col(row: &AnyRow, col: &'static str) -> Result<u64> {
    let v: i64 = row.try_get(col)?;
    u64::try_from(v).map_err(|_| Error::Corrupt {
        column: col,
        reason: format!("{v} is not a count (negative)"),
    })
}

pub(crate) fn to_json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "null".to_string())
}

/// Columns of `flow_runs` in the order [`run`] reads them (and
/// [`crate::Store::import_flow_runs`] writes them).
pub(crate) const FLOW_RUN_COLUMNS: &str = "id, project, deployment_id, deployment, flow, name, \
    state, state_message, state_at, attempt, retries_used, retries, parameters, work_queue, \
    scheduled_at, created_at, started_at, ended_at, agent_id, lease_expires_at, \
    parent_flow_run_id, result, tags, tick_at, retry_delay_s, resume";

/// How many columns [`FLOW_RUN_COLUMNS`] names.
pub(crate) const FLOW_RUN_COLUMN_COUNT: usize = 26;

/// A `flow_runs` row (its [`FLOW_RUN_COLUMNS`]) as the domain's [`Run`].
pub(crate) fn run(row: &AnyRow) -> Result<Run> {
    let id = uuid(row, "id")?;
    Ok(Run {
        id,
        project: row.try_get("project")?,
        deployment_id: opt_uuid(row, "deployment_id")?,
        deployment: row.try_get("deployment")?,
        flow: row.try_get("flow")?,
        name: row.try_get("name")?,
        state: state(row, "state")?,
        state_message: row.try_get("state_message")?,
        state_at: time(row, "state_at")?,
        attempt: u32_col(row, "attempt")?,
        retries_used: u32_col(row, "retries_used")?,
        retries: u32_col(row, "retries")?,
        retry_delay: retry_delay(id, row.try_get("retry_delay_s")?)?,
        resume: row.try_get::<i64, _>("resume")? != 0,
        parameters: json(row, "parameters")?,
        work_queue: row.try_get("work_queue")?,
        scheduled_at: time(row, "scheduled_at")?,
        created_at: time(row, "created_at")?,
        started_at: opt_time(row, "started_at")?,
        ended_at: opt_time(row, "ended_at")?,
        agent_id: opt_uuid(row, "agent_id")?,
        lease_expires_at: opt_time(row, "lease_expires_at")?,
        parent_flow_run_id: opt_uuid(row, "parent_flow_run_id")?,
        result: result_ref(row)?,
        tags: json(row, "tags")?,
        tick_at: opt_time(row, "tick_at")?,
    })
}

/// A stored retry delay as a duration; one out of range is a corrupt row, never a panic.
pub(crate) fn retry_delay(run: Uuid, seconds: i64) -> Result<chrono::Duration> {
    chrono::Duration::try_seconds(seconds)
        .filter(|d| *d >= chrono::Duration::zero())
        .ok_or_else(|| Error::Corrupt {
            column: "retry_delay_s",
            reason: format!("flow run {run} has a retry delay of {seconds} s, out of range"),
        })
}

pub(crate) fn state_change(row: &AnyRow) -> Result<StateChange> {
    Ok(StateChange {
        id: uuid(row, "id")?,
        state: state(row, "state")?,
        message: row.try_get("message")?,
        attempt: u32_col(row, "attempt")?,
        at: time(row, "at")?,
    })
}

pub(crate) const TASK_RUN_COLUMNS: &str = "id, flow_run_id, task, state, message, attempt, \
    created_at, started_at, ended_at, inputs_fingerprint, cache_key, result_location, map_index";

pub(crate) fn task_run(row: &AnyRow) -> Result<TaskRun> {
    Ok(TaskRun {
        id: uuid(row, "id")?,
        flow_run_id: uuid(row, "flow_run_id")?,
        task: row.try_get("task")?,
        state: state(row, "state")?,
        message: row.try_get("message")?,
        attempt: u32_col(row, "attempt")?,
        created_at: time(row, "created_at")?,
        started_at: opt_time(row, "started_at")?,
        ended_at: opt_time(row, "ended_at")?,
        inputs_fingerprint: row.try_get("inputs_fingerprint")?,
        cache_key: row.try_get("cache_key")?,
        result_location: row.try_get("result_location")?,
        map_index: opt_u32_col(row, "map_index")?,
    })
}

/// `VALUES` tuples for a multi-row insert of `rows` rows of `cols` columns. SQLite gets
/// anonymous `?` parameters: it resolves each named or numbered parameter by a linear
/// search, which makes binding thousands of `$N` parameters quadratic.
pub(crate) fn values_rows(dialect: crate::Dialect, rows: usize, cols: usize) -> String {
    match dialect {
        crate::Dialect::Sqlite => {
            let row = format!("({})", vec!["?"; cols].join(", "));
            vec![row; rows].join(", ")
        }
        crate::Dialect::Postgres => (0..rows)
            .map(|i| format!("({})", placeholders(i * cols + 1, cols)))
            .collect::<Vec<_>>()
            .join(", "),
    }
}

/// `$1, $2, …` placeholders starting at `first`, for dynamic `IN (…)` lists.
pub(crate) fn placeholders(first: usize, count: usize) -> String {
    (first..first + count)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A flow run's stored result: a [`ResultRef`](weir_core::api::ResultRef). Rows written before
/// results were stored by reference hold the value itself (any JSON); they read as no result
/// rather than as a corrupt row, so old runs stay readable. Text that is not JSON is corrupt.
fn result_ref(row: &AnyRow) -> Result<Option<weir_core::api::ResultRef>> {
    let Some(value) = opt_json::<serde_json::Value>(row, "result")? else {
        return Ok(None);
    };
    Ok(serde_json::from_value(value).ok())
}

/// A query being built, before its values are bound.
pub(crate) type AnyQuery<'q> = Query<'q, Any, AnyArguments>;

/// A value bound to a dynamically built query.
pub(crate) enum Bind {
    Text(String),
    Int(i64),
}

impl Bind {
    pub(crate) fn bind(self, q: AnyQuery<'_>) -> AnyQuery<'_> {
        match self {
            Bind::Text(s) => q.bind(s),
            Bind::Int(i) => q.bind(i),
        }
    }
}
