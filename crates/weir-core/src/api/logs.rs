//! Wire types of log lines: ingested in batches, read back in order.

use crate::Timestamp;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Severity of a log line.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    /// Very detailed.
    Trace,
    /// Detailed.
    Debug,
    /// Normal.
    Info,
    /// Something unusual.
    Warn,
    /// Something failed.
    Error,
}

/// A log line to ingest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NewLogLine {
    /// The flow run the line belongs to.
    pub flow_run_id: Uuid,
    /// Task run, when the line was emitted inside a task.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_run_id: Option<Uuid>,
    /// When it was emitted.
    pub at: Timestamp,
    /// Its severity (an agent ships a process's stdout as `info`, its stderr as `warn`).
    pub level: LogLevel,
    /// The line's text, without its trailing newline.
    pub message: String,
    /// The attempt of the flow run that emitted it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempt: Option<u32>,
    /// The sender's stream: a random number each sender (a flow process, an agent following
    /// one attempt's output) picks once. With `seq` (and `attempt`) it makes the line
    /// idempotent: a batch sent again because its answer was lost is stored once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<u32>,
    /// The line's number in its stream, assigned by the sender (increasing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(max = i64::MAX))]
    pub seq: Option<u64>,
}

/// A stored log line; `seq` orders lines of one flow run and is the follow cursor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct LogLine {
    /// Position in the run's log (increasing).
    pub seq: i64,
    /// The flow run the line belongs to.
    pub flow_run_id: Uuid,
    /// The task run that emitted it; absent for lines outside any task (and process output).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_run_id: Option<Uuid>,
    /// When the sender says it was emitted (its clock, not the server's).
    pub at: Timestamp,
    /// Its severity, as sent.
    pub level: LogLevel,
    /// The line's text, as sent.
    pub message: String,
}

/// Body of `POST /api/v1/logs/batch`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LogBatch {
    /// The lines, in the order they were written (at most 50,000 per batch).
    pub lines: Vec<NewLogLine>,
}
