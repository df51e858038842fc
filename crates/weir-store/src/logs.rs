//! Log lines: batched ingest and cursor reads.

use crate::codec::{self, micros};
use crate::{Error, Result, Store};
use sqlx::{AssertSqlSafe, Row};
use uuid::Uuid;
use weir_core::api::{LogLevel, LogLine, NewLogLine};

const CHUNK: usize = 500;

fn level_str(l: LogLevel) -> &'static str {
    match l {
        LogLevel::Trace => "trace",
        LogLevel::Debug => "debug",
        LogLevel::Info => "info",
        LogLevel::Warn => "warn",
        LogLevel::Error => "error",
    }
}

/// A stored level; one this store never writes is a corrupt row, not a line at Info.
pub(crate) fn parse_level(s: &str) -> Result<LogLevel> {
    match s {
        "trace" => Ok(LogLevel::Trace),
        "debug" => Ok(LogLevel::Debug),
        "info" => Ok(LogLevel::Info),
        "warn" => Ok(LogLevel::Warn),
        "error" => Ok(LogLevel::Error),
        other => Err(Error::Corrupt {
            column: "logs.level",
            reason: format!("unknown log level {other:?}"),
        }),
    }
}

impl Store {
    /// Appends log lines in order. Returns how many were stored: a line whose origin
    /// (run, attempt, stream, seq) is already stored is skipped, so a batch sent again after
    /// its answer was lost is stored once. A `seq` above `i64::MAX` is refused.
    pub async fn ingest_logs(&self, lines: &[NewLogLine]) -> Result<u64> {
        if lines.is_empty() {
            return Ok(0);
        }
        let seqs = lines
            .iter()
            .map(|l| {
                l.seq
                    .map(|s| {
                        i64::try_from(s).map_err(|_| {
                            Error::Invalid(format!("log line seq {s} is above {}", i64::MAX))
                        })
                    })
                    .transpose()
            })
            .collect::<Result<Vec<Option<i64>>>>()?;
        let mut stored = 0;
        let mut tx = self.begin_write().await?;
        for (chunk, seqs) in lines.chunks(CHUNK).zip(seqs.chunks(CHUNK)) {
            let values = codec::values_rows(self.dialect, chunk.len(), 8);
            let sql = format!(
                "INSERT INTO logs (flow_run_id, task_run_id, at, level, message, attempt, stream, \
                 stream_seq) VALUES {values} ON CONFLICT DO NOTHING"
            );
            let mut q = sqlx::query(AssertSqlSafe(sql));
            for (l, seq) in chunk.iter().zip(seqs) {
                q = q
                    .bind(l.flow_run_id.to_string())
                    .bind(l.task_run_id.map(|t| t.to_string()))
                    .bind(micros(l.at))
                    .bind(level_str(l.level))
                    .bind(l.message.clone())
                    .bind(l.attempt.map(i64::from))
                    .bind(l.stream.map(i64::from))
                    .bind(*seq);
            }
            stored += q.execute(&mut *tx).await?.rows_affected();
        }
        tx.commit().await?;
        Ok(stored)
    }

    /// Lines of a flow run after sequence number `after`, oldest first, at most `limit`;
    /// optionally only those of one task run.
    pub async fn logs(
        &self,
        flow_run: Uuid,
        task_run: Option<Uuid>,
        after: i64,
        limit: u32,
    ) -> Result<Vec<LogLine>> {
        let limit = i64::from(limit.clamp(1, 10_000));
        let rows = match task_run {
            Some(t) => {
                sqlx::query(
                    "SELECT seq, flow_run_id, task_run_id, at, level, message FROM logs \
                 WHERE flow_run_id = $1 AND task_run_id = $2 AND seq > $3 ORDER BY seq LIMIT $4",
                )
                .bind(flow_run.to_string())
                .bind(t.to_string())
                .bind(after)
                .bind(limit)
                .fetch_all(&self.read)
                .await?
            }
            None => {
                sqlx::query(
                    "SELECT seq, flow_run_id, task_run_id, at, level, message FROM logs \
                 WHERE flow_run_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
                )
                .bind(flow_run.to_string())
                .bind(after)
                .bind(limit)
                .fetch_all(&self.read)
                .await?
            }
        };
        rows.iter()
            .map(|r| {
                let level: String = r.try_get("level")?;
                Ok(LogLine {
                    seq: r.try_get("seq")?,
                    flow_run_id: codec::uuid(r, "flow_run_id")?,
                    task_run_id: codec::opt_uuid(r, "task_run_id")?,
                    at: codec::time(r, "at")?,
                    level: parse_level(&level)?,
                    message: r.try_get("message")?,
                })
            })
            .collect()
    }
}
