//! `weir-bench sdk`: per-task orchestration overhead of the SDK, measured in process.
//!
//! Flows run with a quiet [`LocalTracker`] (no terminal output, every report still recorded in
//! memory) and result storage in a temporary directory that nothing writes to. Each figure is
//! wall time divided by the number of tasks; the best of `--repeat` runs is kept.
//!
//! With `--result-storage URL` (`file:///dir`, a path, or `s3://bucket/prefix`; S3 settings
//! from the environment, `AWS_ENDPOINT_URL` for moto or MinIO) it also runs a chain of
//! `persist_result` tasks against that storage and reports what persisting adds per task:
//! `persist_chain_us_per_task` minus `persist_baseline_us_per_task`, the same chain without
//! persisting, measured right before it.

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
    /// Result storage to measure `persist_result` against (`file:///dir`, a path,
    /// `s3://bucket/prefix`); objects written there are deleted afterwards.
    #[arg(long, value_name = "URL")]
    result_storage: Option<String>,
    /// Tasks in the persisting chain.
    #[arg(long, default_value_t = 1000)]
    persist_tasks: u32,
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

/// Adds one and persists the result.
#[task(persist_result = true)]
async fn add_one_persisted(x: u64) -> anyhow::Result<u64> {
    Ok(x + 1)
}

/// `n` persisting tasks in sequence.
#[flow]
async fn bench_persist_chain(n: u32) -> anyhow::Result<u64> {
    let mut v = 0;
    for _ in 0..n {
        v = add_one_persisted(v).await?;
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
    results: &dyn Fn() -> anyhow::Result<ResultStore>,
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
        let runner = Runner::new(tracker.clone()).with_results(results()?);
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
    let local = || Ok(ResultStore::in_dir(&dir));
    // Warm-up: first-use costs (thread start, lazy statics) out of the figures.
    measure(&rt, &local, 1, 100, bench_chain)?;
    let chain_1000 = measure(&rt, &local, args.repeat, 1000, bench_chain)?;
    let chain_10000 = measure(&rt, &local, args.repeat, 10_000, bench_chain)?;
    let fanout_10000 = measure(&rt, &local, args.repeat, 10_000, bench_fanout)?;
    let _ = std::fs::remove_dir_all(&dir);
    let mut out = serde_json::json!({
        "local_chain_1000_us_per_task": round(chain_1000),
        "local_chain_10000_us_per_task": round(chain_10000),
        "local_fanout_10000_us_per_task": round(fanout_10000),
    });
    if let Some(url) = &args.result_storage {
        let persist = persist(&rt, url, args)?;
        if let (Some(o), serde_json::Value::Object(p)) = (out.as_object_mut(), persist) {
            o.extend(p);
        }
    }
    out["peak_rss_mib"] = serde_json::json!(peak_rss_mib().map(round));
    Ok(out)
}

fn round(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

/// The persisting chain against `url`, with its baseline; deletes what it wrote.
fn persist(
    rt: &tokio::runtime::Runtime,
    url: &str,
    args: &Args,
) -> anyhow::Result<serde_json::Value> {
    use anyhow::Context;
    let open = || ResultStore::open(url).with_context(|| format!("--result-storage {url}"));
    let store = open()?;
    rt.block_on(store.check())?;
    let n = args.persist_tasks.max(1);
    let baseline = measure(rt, &open, args.repeat, n, bench_chain)?;
    let persisted = measure(rt, &open, args.repeat, n, bench_persist_chain)?;
    // Clean up: every run wrote `{run}/add_one_persisted/{i}.json` under the root.
    let written = rt.block_on(store.list(""))?;
    let mut objects = 0u64;
    for o in written
        .iter()
        .filter(|o| o.key.contains("/add_one_persisted/"))
    {
        rt.block_on(store.delete(&o.key))?;
        objects += 1;
    }
    anyhow::ensure!(
        objects >= u64::from(n),
        "expected at least {n} persisted results in {url}, found {objects}"
    );
    Ok(serde_json::json!({
        "result_storage": store.url(),
        "persist_tasks": n,
        "persist_baseline_us_per_task": round(baseline),
        "persist_chain_us_per_task": round(persisted),
        "persist_result_cost_us_per_task": round(persisted - baseline),
        "persisted_objects_checked": objects,
    }))
}
