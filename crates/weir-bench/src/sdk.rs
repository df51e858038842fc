//! `weir-bench sdk`: per-task orchestration overhead of the SDK, measured in process.
//!
//! Flows run with a quiet [`LocalTracker`] (no terminal output, every report still recorded in
//! memory) and result storage in a temporary directory that nothing writes to. Each figure is
//! wall time divided by the number of tasks; the best of `--repeat` runs is kept.

use std::sync::Arc;
use std::time::Instant;
use weir::Runner;
use weir::local::LocalTracker;
use weir::prelude::*;
use weir::results::ResultStore;

/// Options of `weir-bench sdk`.
#[derive(clap::Args)]
pub struct Args {
    /// Runs of each measurement; the fastest is reported.
    #[arg(long, default_value_t = 3)]
    repeat: u32,
}

/// Adds one.
#[task]
async fn add_one(x: u64) -> anyhow::Result<u64> {
    Ok(x + 1)
}

/// `n` tasks in sequence.
#[flow]
async fn bench_chain(n: u32) -> anyhow::Result<u64> {
    let mut v = 0;
    for _ in 0..n {
        v = add_one(v).await?;
    }
    Ok(v)
}

/// `n` mapped tasks.
#[flow]
async fn bench_fanout(n: u32) -> anyhow::Result<u64> {
    let v = weir::map(0..u64::from(n), add_one).await?;
    Ok(v.iter().sum())
}

fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// Best per-task microseconds of `repeat` runs of the flow built by `make`.
fn measure<F, Fut>(
    rt: &tokio::runtime::Runtime,
    results: &std::path::Path,
    repeat: u32,
    n: u32,
    make: F,
) -> anyhow::Result<f64>
where
    F: Fn(u32) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<u64>>,
{
    let mut best = f64::INFINITY;
    for _ in 0..repeat.max(1) {
        let tracker = Arc::new(LocalTracker::new().quiet());
        let runner = Runner::new(tracker.clone()).with_results(ResultStore::in_dir(results));
        let start = Instant::now();
        rt.block_on(runner.run(make(n)))?;
        let us = start.elapsed().as_secs_f64() * 1e6 / f64::from(n);
        let recorded = tracker.records().task_runs.len();
        anyhow::ensure!(
            recorded == n as usize,
            "expected {n} task runs recorded, got {recorded}"
        );
        best = best.min(us);
    }
    Ok(best)
}

/// Runs the SDK benchmark and returns its JSON object.
pub fn run(args: &Args) -> anyhow::Result<serde_json::Value> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let dir = std::env::temp_dir().join(format!("weir-bench-sdk-{}", std::process::id()));
    let round = |v: f64| (v * 1000.0).round() / 1000.0;
    // Warm-up: first-use costs (thread start, lazy statics) out of the figures.
    measure(&rt, &dir, 1, 100, bench_chain)?;
    let chain_1000 = measure(&rt, &dir, args.repeat, 1000, bench_chain)?;
    let chain_10000 = measure(&rt, &dir, args.repeat, 10_000, bench_chain)?;
    let fanout_10000 = measure(&rt, &dir, args.repeat, 10_000, bench_fanout)?;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(serde_json::json!({
        "local_chain_1000_us_per_task": round(chain_1000),
        "local_chain_10000_us_per_task": round(chain_10000),
        "local_fanout_10000_us_per_task": round(fanout_10000),
        "peak_rss_mib": peak_rss_mib().map(round),
    }))
}
