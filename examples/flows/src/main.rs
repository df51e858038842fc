//! Example Weir flows in one flows binary: `etl`, `chain`, `fanout`, `flaky`, `slow`, `fails`,
//! `leaky`, `witness` (the fault suite's), and the S3 flows `s3_download` and `s3_roundtrip` (module `s3`).
//!
//! `example-flows describe` lists them; `example-flows run etl --param rows=500` runs one.
//! Tests and benchmarks drive this binary as a real process (see `witness`).

mod s3;
mod witness;

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Write;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;
use weir::prelude::*;

/// One generated sales row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Row {
    /// Row id.
    pub id: u32,
    /// Sales region.
    pub region: String,
    /// Amount in cents (negative for refunds).
    pub amount_cents: i64,
}

/// What `etl` produces.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Rows kept after cleaning.
    pub rows: usize,
    /// Rows dropped by cleaning.
    pub dropped: usize,
    /// Total amount in cents.
    pub total_cents: i64,
    /// Total per region.
    pub by_region: BTreeMap<String, i64>,
}

const REGIONS: [&str; 4] = ["north", "south", "east", "west"];

/// Generates `rows` deterministic rows in memory (every 7th one a refund).
#[task(retries = 2, retry_delay = "100ms", tags = ["io"])]
async fn extract(rows: u32) -> anyhow::Result<Vec<Row>> {
    let out: Vec<Row> = (0..rows)
        .map(|id| Row {
            id,
            region: REGIONS[id as usize % REGIONS.len()].to_string(),
            amount_cents: if id % 7 == 6 {
                -(i64::from(id) * 10)
            } else {
                i64::from(id) * 100 + 99
            },
        })
        .collect();
    tracing::info!("extracted {} rows", out.len());
    Ok(out)
}

/// Drops refunds.
#[task]
async fn clean(rows: Vec<Row>) -> anyhow::Result<Vec<Row>> {
    let before = rows.len();
    let kept: Vec<Row> = rows.into_iter().filter(|r| r.amount_cents > 0).collect();
    tracing::info!("kept {} of {} rows", kept.len(), before);
    Ok(kept)
}

/// Totals per region.
#[task]
async fn summarize(rows: Vec<Row>, extracted: usize) -> anyhow::Result<Summary> {
    let mut by_region = BTreeMap::new();
    for r in &rows {
        *by_region.entry(r.region.clone()).or_insert(0) += r.amount_cents;
    }
    let total_cents = by_region.values().sum();
    tracing::info!(
        "total {} cents over {} regions",
        total_cents,
        by_region.len()
    );
    Ok(Summary {
        rows: rows.len(),
        dropped: extracted - rows.len(),
        total_cents,
        by_region,
    })
}

/// Extract, clean and summarize generated sales rows.
#[flow]
async fn etl(
    #[param(default = 100, description = "How many rows to generate")] rows: u32,
) -> anyhow::Result<Summary> {
    witness::record();
    let raw = extract(rows).await?;
    let extracted = raw.len();
    let kept = clean(raw).await?;
    summarize(kept, extracted).await
}

/// Adds one.
#[task]
async fn add_one(x: u64) -> anyhow::Result<u64> {
    Ok(x + 1)
}

/// `n` tasks in sequence, each adding 1 to the previous result; returns `n`.
#[flow]
async fn chain(
    #[param(default = 10, description = "Number of tasks in the chain")] n: u32,
) -> anyhow::Result<u64> {
    witness::record();
    let mut v = 0;
    for _ in 0..n {
        v = add_one(v).await?;
    }
    Ok(v)
}

/// Squares a number.
#[task]
async fn square(x: u64) -> anyhow::Result<u64> {
    Ok(x * x)
}

/// Adds numbers up.
#[task]
async fn total(values: Vec<u64>) -> anyhow::Result<u64> {
    Ok(values.iter().sum())
}

/// Maps `square` over `0..n` concurrently and sums the squares.
#[flow]
async fn fanout(
    #[param(default = 10, description = "Number of mapped tasks")] n: u32,
) -> anyhow::Result<u64> {
    witness::record();
    let squares = weir::map(0..u64::from(n), square).await?;
    total(squares).await
}

static UNRELIABLE_CALLS: AtomicU32 = AtomicU32::new(0);

/// Fails on its first two attempts in this process, then succeeds.
#[task(retries = 3, retry_delay = "50ms")]
async fn unreliable() -> anyhow::Result<String> {
    let call = UNRELIABLE_CALLS.fetch_add(1, Ordering::SeqCst) + 1;
    if call <= 2 {
        anyhow::bail!("transient failure on attempt {call}");
    }
    tracing::info!("succeeded on attempt {call}");
    Ok(format!("succeeded on attempt {call}"))
}

/// A task that fails twice then succeeds (retries = 3).
#[flow]
async fn flaky() -> anyhow::Result<String> {
    witness::record();
    unreliable().await
}

/// Sleeps `seconds`, logging each second.
#[task]
async fn nap(seconds: u64) -> anyhow::Result<u64> {
    for s in 1..=seconds {
        tokio::time::sleep(Duration::from_secs(1)).await;
        tracing::info!("slept {s}/{seconds} s");
    }
    Ok(seconds)
}

/// Sleeps, logging progress each second (used by cancel and crash tests).
#[flow]
async fn slow(
    #[param(default = 5, description = "How long to sleep, in seconds")] seconds: u64,
) -> anyhow::Result<u64> {
    witness::record();
    nap(seconds).await
}

/// Always fails.
#[task]
async fn load_orders() -> anyhow::Result<u64> {
    anyhow::bail!("the source table 'orders' does not exist")
}

/// Always fails with a clear error.
#[flow]
async fn fails() -> anyhow::Result<u64> {
    witness::record();
    load_orders().await
}

/// Logs the secret `$CANARY` (injected by the agent from a secret reference) through
/// tracing and stdout, then fails with it: the redaction tests check it never leaves the run.
#[task]
async fn use_token() -> anyhow::Result<u64> {
    let token = std::env::var("CANARY").unwrap_or_default();
    tracing::info!("using token {token}");
    println!("printed token {token}");
    anyhow::bail!("token {token} was refused")
}

/// Misuses a secret on purpose (see `use_token`).
#[flow]
async fn leaky() -> anyhow::Result<u64> {
    witness::record();
    use_token().await
}

/// One step of `witness`: records it, logs it through tracing and stdout, then sleeps.
#[task]
async fn tick(step: u64, of: u64, interval_ms: u64) -> anyhow::Result<u64> {
    let attempt = weir::context::current_flow_run().map_or(0, |r| r.attempt);
    witness::event("tick", step);
    tracing::info!("tick {step}/{of} attempt {attempt}");
    // Not `println!`: it panics once the agent that read this pipe is gone.
    let _ = writeln!(
        std::io::stdout(),
        "stdout tick {step}/{of} attempt {attempt}"
    );
    tokio::time::sleep(Duration::from_millis(interval_ms)).await;
    Ok(step)
}

/// The fault suite's witness: `ticks` steps of `interval_ms`, each one task run, a witness
/// event (`start`, `tick`, `end` in `$WEIR_WITNESS_DIR/events.log`) and two log lines; it
/// uses the secret `$CANARY` (when its deployment injects one) where redaction must hide it.
#[flow]
async fn witness(
    #[param(default = 10, description = "How many steps")] ticks: u64,
    #[param(default = 200, description = "Milliseconds per step")] interval_ms: u64,
) -> anyhow::Result<u64> {
    witness::record();
    witness::event("start", 0);
    if let Ok(canary) = std::env::var("CANARY") {
        tracing::info!("connecting with {canary}");
    }
    let mut done = 0;
    for step in 1..=ticks {
        done = tick(step, ticks, interval_ms).await?;
    }
    witness::event("end", done);
    Ok(done)
}

weir::main!(
    witness,
    etl,
    chain,
    fanout,
    flaky,
    slow,
    fails,
    leaky,
    s3::s3_download,
    s3::s3_roundtrip
);
