//! `weir-bench server`: the server's figures, measured with real processes over real HTTP.
//!
//! - `tracked_chain_10000_us_per_task_{sqlite,postgres}`: wall time of
//!   `example-flows run chain --param n=10000` reporting to a server (process start to exit,
//!   when every task run is already stored), divided by 10,000; the figure is checked by
//!   counting the task runs the server has.
//! - `transitions_per_s_sqlite`: accepted flow-run state proposals per second, from
//!   `--clients` concurrent clients (default 64: many flow processes and agents reporting).
//! - `server_cpu_us_per_transition_sqlite`: the server's CPU time (every thread, user and
//!   system) during that measurement, per accepted proposal: what each transition costs the
//!   server (10 ms resolution over the whole measurement). Contention on a loaded machine
//!   raises it too (296–582 µs in one series at load 10–12), so compare it side by side only.
//! - `cold_start_ms`: `weir server` spawn to first `/readyz` 200, fresh data directory
//!   (median of 5).
//! - `idle_rss_mib`: resident memory of an idle server after it started and served a run.

use crate::procs::{self, round};
use anyhow::{Context, Result, bail};
use serde_json::{Value, json};
use std::process::{Command, Stdio};
use std::time::Instant;
use weir_client::Client;
use weir_core::StateKind;
use weir_core::api::{CreateFlowRun, ProposeState};

/// Options of `weir-bench server`.
#[derive(clap::Args)]
pub struct Args {
    /// Tasks in the tracked chain.
    #[arg(long, default_value_t = 10_000)]
    tasks: u32,
    /// Flow runs in the transitions measurement (each makes 5 transitions).
    #[arg(long, default_value_t = 1_000)]
    runs: u32,
    /// Concurrent clients proposing states.
    #[arg(long, default_value_t = 64)]
    clients: usize,
}

/// Runs the tracked chain against `url`; returns µs per task after checking the server has
/// every task run.
fn tracked_chain(
    url: &str,
    key: &str,
    home: &std::path::Path,
    tasks: u32,
    rt: &tokio::runtime::Runtime,
) -> Result<f64> {
    let flows = procs::sibling("example-flows")?;
    let started = Instant::now();
    let out = Command::new(flows)
        .args(["run", "chain", "--param", &format!("n={tasks}")])
        .env("WEIR_API_URL", url)
        .env("WEIR_API_KEY", key)
        .env("WEIR_QUIET", "1")
        .env("WEIR_HOME", home)
        .env("WEIR_PROJECT", "bench")
        .stderr(Stdio::inherit())
        .output()
        .context("cannot run example-flows")?;
    let elapsed = started.elapsed();
    if !out.status.success() {
        bail!("tracked chain failed: {}", out.status);
    }
    let client = Client::new(url, Some(key.to_string()))?;
    let stored = rt.block_on(async {
        let runs = client
            .list_flow_runs(&weir_client::RunQuery {
                project: Some("bench".into()),
                limit: Some(1),
                ..Default::default()
            })
            .await?;
        let run = runs.items.first().context("the run is not on the server")?;
        let detail = client.flow_run(run.id).await?;
        anyhow::Ok(
            detail
                .task_runs_by_state
                .get(&StateKind::Completed)
                .copied()
                .unwrap_or(0),
        )
    })?;
    if stored != u64::from(tasks) {
        bail!("the server has {stored} completed task runs at exit, expected {tasks}");
    }
    Ok(elapsed.as_secs_f64() * 1e6 / f64::from(tasks))
}

/// Proposes `runs` × 5 state changes from `clients` concurrent clients to the server process
/// `pid`; returns the accepted proposals per second and the server's CPU µs per proposal. The
/// runs are created first, outside the measurement.
async fn transitions(
    url: &str,
    key: &str,
    runs: u32,
    clients: usize,
    pid: u32,
) -> Result<(f64, f64)> {
    let client = Client::new(url, Some(key.to_string()))?;
    let mut ids = Vec::new();
    for _ in 0..runs {
        let run = client
            .create_flow_run(&CreateFlowRun {
                project: Some("bench".into()),
                flow: Some("transitions".into()),
                state: Some(StateKind::Running),
                ..Default::default()
            })
            .await?;
        ids.push(run.id);
    }
    let path = [
        StateKind::Paused,
        StateKind::Running,
        StateKind::Paused,
        StateKind::Running,
        StateKind::Completed,
    ];
    let cpu_before = procs::cpu_seconds(pid)?;
    let started = Instant::now();
    let chunks: Vec<Vec<_>> = ids
        .chunks(ids.len().div_ceil(clients.max(1)).max(1))
        .map(|c| c.to_vec())
        .collect();
    let mut handles = Vec::new();
    for chunk in chunks {
        let client = client.clone();
        handles.push(tokio::spawn(async move {
            for id in chunk {
                for state in path {
                    client
                        .propose_state(
                            id,
                            &ProposeState {
                                state,
                                message: None,
                                attempt: 1,
                                transition_id: None,
                                result: None,
                            },
                        )
                        .await?;
                }
            }
            anyhow::Ok(())
        }));
    }
    for h in handles {
        h.await??;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let cpu = procs::cpu_seconds(pid)? - cpu_before;
    let accepted = f64::from(runs) * path.len() as f64;
    Ok((accepted / elapsed, cpu * 1e6 / accepted))
}

/// Measures and returns the figures.
pub fn run(args: &Args) -> Result<Value> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let mut cold = Vec::new();
    for _ in 0..5 {
        let home = tempfile::tempdir()?;
        let s = procs::start_server(home.path(), None, &[])?;
        cold.push(s.ready_after.as_secs_f64() * 1000.0);
    }
    cold.sort_by(f64::total_cmp);
    let home = tempfile::tempdir()?;
    let server = procs::start_server(home.path(), None, &[])?;
    let sqlite_us = tracked_chain(&server.url, &server.key, home.path(), args.tasks, &rt)?;
    std::thread::sleep(std::time::Duration::from_secs(2));
    let idle_rss = procs::rss_mib(server.proc.child.id())?;
    let (tps, cpu_us) = rt.block_on(transitions(
        &server.url,
        &server.key,
        args.runs,
        args.clients,
        server.proc.child.id(),
    ))?;
    let mut out = json!({
        format!("tracked_chain_{}_us_per_task_sqlite", args.tasks): round(sqlite_us, 2),
        "transitions_per_s_sqlite": round(tps, 0),
        "server_cpu_us_per_transition_sqlite": round(cpu_us, 0),
        "cold_start_ms": round(cold[cold.len() / 2], 1),
        "idle_rss_mib": round(idle_rss, 1),
    });
    if let Ok(pg) = std::env::var("WEIR_BENCH_POSTGRES_URL") {
        let home = tempfile::tempdir()?;
        let server = procs::start_server(home.path(), Some(&pg), &[])?;
        let pg_us = tracked_chain(&server.url, &server.key, home.path(), args.tasks, &rt)?;
        out[format!("tracked_chain_{}_us_per_task_postgres", args.tasks)] = json!(round(pg_us, 2));
    }
    Ok(out)
}
