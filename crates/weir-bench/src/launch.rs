//! `weir-bench launch`: time from a run's creation to the first line of its user code, with
//! an idle agent already waiting (real `weir server`, `weir agent` and `example-flows`
//! processes; the flow appends a timestamp to `WEIR_BENCH_MARK_FILE` when its code starts).

use crate::procs::{self, Proc, round};
use anyhow::{Context, Result, bail};
use serde_json::{Value, json};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use weir_client::Client;
use weir_core::api::{CreateFlowRun, DeploymentSpec};

/// Options of `weir-bench launch`.
#[derive(clap::Args)]
pub struct Args {
    /// Runs to measure.
    #[arg(long, default_value_t = 60)]
    runs: u32,
}

fn now_us() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros())
        .unwrap_or(0)
}

/// Measures and returns the figures.
pub fn run(args: &Args) -> Result<Value> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let home = tempfile::tempdir()?;
    let server = procs::start_server(home.path(), None, &[])?;
    let marks = home.path().join("marks.log");
    let agent_home = home.path().join("agent-home");
    let _agent = Proc {
        child: Command::new(procs::sibling("weir")?)
            .args(["agent", "--queue", "bench", "--limit", "4"])
            .env("WEIR_API_URL", &server.url)
            .env("WEIR_API_KEY", &server.key)
            .env("WEIR_HOME", &agent_home)
            .env("WEIR_LOG", "warn")
            .env("WEIR_BENCH_MARK_FILE", &marks)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("cannot start weir agent")?,
    };
    let client = Client::new(&server.url, Some(server.key.clone()))?;
    let spec = DeploymentSpec {
        flow: "chain".into(),
        command: vec![procs::sibling("example-flows")?.display().to_string()],
        work_queue: "bench".into(),
        parameters: serde_json::from_value(json!({"n": 1}))?,
        ..Default::default()
    };
    rt.block_on(client.upsert_deployment("bench", "chain", &spec, false))?;
    let mut latencies = Vec::new();
    // One warm-up run (page cache, agent registration) not counted.
    for i in 0..=args.runs {
        let t0 = now_us();
        let run = rt.block_on(client.create_flow_run(&CreateFlowRun {
            project: Some("bench".into()),
            deployment: Some("chain".into()),
            ..Default::default()
        }))?;
        let id = run.id.to_string();
        let deadline = Instant::now() + Duration::from_secs(30);
        let mark = loop {
            let text = std::fs::read_to_string(&marks).unwrap_or_default();
            if let Some(t) = text
                .lines()
                .filter_map(|l| l.split_once(' '))
                .find(|(_, rid)| *rid == id)
                .and_then(|(t, _)| t.parse::<u128>().ok())
            {
                break t;
            }
            if Instant::now() > deadline {
                bail!("run {id} did not start within 30 s");
            }
            std::thread::sleep(Duration::from_micros(500));
        };
        if i > 0 {
            latencies.push(mark.saturating_sub(t0) as f64 / 1000.0);
        }
        // Let the run finish so the agent is idle and waiting again.
        let deadline = Instant::now() + Duration::from_secs(30);
        while !rt
            .block_on(client.flow_run(run.id))?
            .run
            .state
            .is_terminal()
        {
            if Instant::now() > deadline {
                bail!("run {id} did not finish");
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    latencies.sort_by(f64::total_cmp);
    let pct = |p: f64| latencies[((latencies.len() as f64 - 1.0) * p).round() as usize];
    Ok(json!({
        "launch_runs": latencies.len(),
        "launch_p50_ms": round(pct(0.5), 1),
        "launch_p99_ms": round(pct(0.99), 1),
        "launch_max_ms": round(pct(1.0), 1),
    }))
}
