//! Shipping a run's output lines to the server as log lines, in batches.
//!
//! One home for "an output line becomes a log line": the agent uses it for the output it
//! reads from its launchers, `weir exec` for the output of the command it runs. Lines are sent
//! in order, in batches of up to 1000 or every 100 ms, and a batch the server cannot take yet
//! is retried for about 20 s (network trouble, or a 5xx while the database is away). Each line carries its attempt, a stream and
//! its number in it, so a batch sent again after a lost answer is stored once: for a line of
//! a spool file, the file's stream ([`crate::launcher::spool::stream_id`]) and its position
//! in the file, which every agent reading that file gives it; for other lines, the shipper's
//! own random stream and its count.

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

/// The log line of attempt `attempt` of `run` for one output line: stdout at level info,
/// stderr at warn; a numbered line ([`OutputLine::seq`]) keeps its number in its file's stream.
pub fn log_line(run: Uuid, attempt: u32, line: OutputLine) -> NewLogLine {
    let stream = line
        .seq
        .map(|_| crate::launcher::spool::stream_id(run, attempt, line.stream));
    NewLogLine {
        flow_run_id: run,
        task_run_id: None,
        at: Utc::now(),
        level: match line.stream {
            Stream::Stdout => LogLevel::Info,
            Stream::Stderr => LogLevel::Warn,
        },
        message: line.text,
        attempt: Some(attempt),
        stream,
        seq: line.seq,
    }
}

/// A background sender of log lines. Drop or [`close`](Shipper::close) it to send the rest.
pub struct Shipper {
    tx: mpsc::Sender<NewLogLine>,
    task: JoinHandle<bool>,
    attempt: u32,
    stream: u32,
    next: std::sync::atomic::AtomicU64,
}

impl Shipper {
    /// Starts sending the lines of one `attempt` through `client`.
    pub fn start(client: Client, attempt: u32) -> Shipper {
        Shipper::start_with(client, None, attempt)
    }

    /// Like [`Shipper::start`], switching to `fallback` (the attempt's run token) for good
    /// once `client` is answered 404: an agent's key no longer sees a run whose attempt ended
    /// with a retry scheduled (the run is nobody's until it is claimed again), while the
    /// attempt's token reports on it until the next attempt starts.
    pub fn start_with(client: Client, fallback: Option<Client>, attempt: u32) -> Shipper {
        let (tx, rx) = mpsc::channel(4096);
        Shipper {
            tx,
            task: tokio::spawn(ship(client, fallback, rx)),
            attempt,
            stream: weir_client::new_log_stream(),
            next: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// Queues one line, numbered in this shipper's stream unless it has a stream of its own
    /// (waits while the queue is full, so a run cannot outpace the server without bound).
    /// Returns false once the sender has stopped.
    pub async fn send(&self, mut line: NewLogLine) -> bool {
        line.attempt = Some(self.attempt);
        if line.stream.is_none() || line.seq.is_none() {
            line.stream = Some(self.stream);
            line.seq = Some(self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
        }
        self.tx.send(line).await.is_ok()
    }

    /// Sends what is queued and resolves once it was sent (or refused). False when some
    /// batch could not be delivered: the server stayed unreachable, or answered 5xx, through
    /// every retry (a batch it refused counts as delivered: sending it again would not help).
    pub async fn close(self) -> bool {
        drop(self.tx);
        self.task.await.unwrap_or(false)
    }
}

async fn ship(
    mut client: Client,
    mut fallback: Option<Client>,
    mut rx: mpsc::Receiver<NewLogLine>,
) -> bool {
    let mut batch = Vec::new();
    let mut closed = false;
    let mut delivered_all = true;
    while !closed {
        // Wait for a first line, then up to LINGER for more (a batch never waits longer).
        match rx.recv().await {
            Some(line) => batch.push(line),
            None => return delivered_all,
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
        let mut delivered = false;
        for delay in [0u64, 200, 500, 1000, 2000, 3000, 5000, 10_000] {
            tokio::time::sleep(Duration::from_millis(delay)).await;
            match client.ingest_logs(&body).await {
                Ok(_) => {
                    delivered = true;
                    break;
                }
                // A 5xx too (the database away, its disk full): lines are idempotent.
                Err(e) if e.is_transient() || e.status().is_some_and(|s| s.is_server_error()) => {
                    continue;
                }
                Err(e) if e.status().is_some_and(|s| s.as_u16() == 404) && fallback.is_some() => {
                    if let Some(token) = fallback.take() {
                        client = token;
                    }
                    continue;
                }
                Err(e) => {
                    tracing::warn!(message = "log lines refused", error = %e);
                    delivered = true;
                    break;
                }
            }
        }
        if !delivered {
            tracing::warn!(
                message = "log lines not delivered: the server did not take them",
                lines = body.lines.len()
            );
            delivered_all = false;
        }
    }
    delivered_all
}
