//! Shipping a run's output lines to the server as log lines, in batches.
//!
//! One home for "an output line becomes a log line": the agent uses it for the output it
//! reads from its launchers, `weir exec` for the output of the command it runs. Lines are sent
//! in order, in batches of up to 1000 or every 100 ms, and a batch the server cannot take yet
//! is retried for about 20 s (network trouble, or a 5xx while the database is away). Each line carries its attempt, the shipper's stream (random) and
//! its number in it, so a batch sent again after a lost answer is stored once.

use crate::launcher::{OutputLine, Stream};
use chrono::Utc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use uuid::Uuid;
use weir_client::Client;
use weir_core::api::{LogBatch, LogLevel, NewLogLine};

/// Most lines sent in one request.
const MAX_BATCH: usize = 1000;
/// How long a partial batch waits for more lines.
const LINGER: Duration = Duration::from_millis(100);

/// The log line of `run` for one output line: stdout at level info, stderr at warn.
pub fn log_line(run: Uuid, line: OutputLine) -> NewLogLine {
    NewLogLine {
        flow_run_id: run,
        task_run_id: None,
        at: Utc::now(),
        level: match line.stream {
            Stream::Stdout => LogLevel::Info,
            Stream::Stderr => LogLevel::Warn,
        },
        message: line.text,
        attempt: None,
        stream: None,
        seq: None,
    }
}

/// A background sender of log lines. Drop or [`close`](Shipper::close) it to send the rest.
pub struct Shipper {
    tx: mpsc::Sender<NewLogLine>,
    task: JoinHandle<()>,
    attempt: u32,
    stream: u32,
    next: std::sync::atomic::AtomicU64,
}

impl Shipper {
    /// Starts sending the lines of one `attempt` through `client`.
    pub fn start(client: Client, attempt: u32) -> Shipper {
        let (tx, rx) = mpsc::channel(4096);
        Shipper {
            tx,
            task: tokio::spawn(ship(client, rx)),
            attempt,
            stream: weir_client::new_log_stream(),
            next: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// Queues one line, numbered in this shipper's stream (waits while the queue is full, so
    /// a run cannot outpace the server without bound). Returns false once the sender has
    /// stopped.
    pub async fn send(&self, mut line: NewLogLine) -> bool {
        line.attempt = Some(self.attempt);
        line.stream = Some(self.stream);
        line.seq = Some(self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
        self.tx.send(line).await.is_ok()
    }

    /// Sends what is queued and resolves once it was sent (or refused).
    pub async fn close(self) {
        drop(self.tx);
        let _ = self.task.await;
    }
}

async fn ship(client: Client, mut rx: mpsc::Receiver<NewLogLine>) {
    let mut batch = Vec::new();
    let mut closed = false;
    while !closed {
        // Wait for a first line, then up to LINGER for more (a batch never waits longer).
        match rx.recv().await {
            Some(line) => batch.push(line),
            None => return,
        }
        let deadline = tokio::time::Instant::now() + LINGER;
        while batch.len() < MAX_BATCH {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(line)) => batch.push(line),
                Ok(None) => {
                    closed = true;
                    break;
                }
                Err(_) => break,
            }
        }
        let body = LogBatch {
            lines: std::mem::take(&mut batch),
        };
        for delay in [0u64, 200, 500, 1000, 2000, 3000, 5000, 10_000] {
            tokio::time::sleep(Duration::from_millis(delay)).await;
            match client.ingest_logs(&body).await {
                Ok(_) => break,
                // A 5xx too (the database away, its disk full): lines are idempotent.
                Err(e) if e.is_transient() || e.status().is_some_and(|s| s.is_server_error()) => {
                    continue;
                }
                Err(e) => {
                    tracing::warn!(message = "log lines refused", error = %e);
                    break;
                }
            }
        }
    }
}
