//! `weir-bench retention`: how fast retention deletes old runs, and what the API's latency is
//! while it does.
//!
//! Seeds a fresh SQLite database through the store (multi-row imports): by default 1,000,000
//! flow runs over 100 days in two projects (`dev` on the server's default window, `main` with
//! its own 60 days), mostly finished, a few still running; every `--tasks-every`-th run also
//! gets a task run (two states) and two log lines. No run lies within a day of either window's
//! edge, so the number of runs past retention is known exactly. Then it starts `weir server
//! --retain-days 30 --retain-interval-s 1` on it and, until the server reports (`GET
//! /api/v1/projects/{p}`, `pruned_runs`) that every expired run is gone, drives the API as a
//! user and an agent would, one request after another: list a project's runs, read one run,
//! create a run (a write, so it competes with the pruner's deletes).
//!
//! Prints one JSON object: `pruned_runs`, `prune_s`, `prune_runs_per_s`, per request kind and
//! overall `p50_ms`/`p99_ms`/`max_ms` (nearest rank) and `requests`, plus the seeding figures.

use crate::ids::id_at;
use crate::procs::{self, round};
use anyhow::{Context, Result, bail};
use chrono::{Duration, Utc};
use serde_json::{Value, json};
use std::time::Instant;
use uuid::Uuid;
use weir_client::{Client, RunQuery};
use weir_core::api::{CreateFlowRun, DeploymentSpec, LogLevel, NewLogLine, TaskRunReport};
use weir_core::run::Run;
use weir_core::{StateKind, Timestamp};
use weir_store::Store;

/// Options of `weir-bench retention`.
#[derive(clap::Args)]
pub struct Args {
    /// Flow runs to seed.
    #[arg(long, default_value_t = 1_000_000)]
    runs: u32,
    /// Days the runs are spread over (ending two hours ago).
    #[arg(long, default_value_t = 100)]
    days: u32,
    /// The server's `--retain-days` (project `dev`); `main` keeps its runs twice as long.
    #[arg(long, default_value_t = 30)]
    retain_days: u32,
    /// Every N-th run gets a task run and two log lines.
    #[arg(long, default_value_t = 10)]
    tasks_every: u32,
    /// Give up when pruning has not finished after this many seconds.
    #[arg(long, default_value_t = 3600)]
    timeout_s: u64,
}

/// Runs per import call.
const BATCH: usize = 10_000;

/// What was seeded.
struct Seeded {
    /// Runs past retention, per project.
    expired: Vec<(String, u64)>,
    /// A recent run to read.
    recent: Uuid,
    seconds: f64,
    task_runs: u64,
}

fn flow_run(project: &str, d: Uuid, at: Timestamp, state: StateKind) -> Run {
    let id = id_at(at);
    let finished = state.is_terminal();
    Run {
        id,
        project: project.into(),
        deployment_id: Some(d),
        deployment: Some("etl".into()),
        flow: "etl".into(),
        name: format!("etl-{}", &id.simple().to_string()[26..]),
        state,
        state_message: (state == StateKind::Failed).then(|| "task load failed".to_string()),
        state_at: at + Duration::seconds(40),
        attempt: 1,
        retries_used: 0,
        retries: 0,
        retry_delay: chrono::Duration::zero(),
        resume: false,
        parameters: [("rows".to_string(), json!(100))].into_iter().collect(),
        work_queue: "default".into(),
        scheduled_at: at,
        tick_at: None,
        created_at: at,
        started_at: Some(at + Duration::milliseconds(300)),
        ended_at: finished.then(|| at + Duration::seconds(40)),
        agent_id: None,
        lease_expires_at: (!finished).then(|| Utc::now() + Duration::days(2)),
        parent_flow_run_id: None,
        result: None,
        tags: vec![],
    }
}

/// The state of run `i`: 1 in 500 still running, the rest mostly Completed.
fn state_of(i: u64) -> StateKind {
    match i % 500 {
        0 => StateKind::Running,
        1..=30 => StateKind::Failed,
        31..=40 => StateKind::Cancelled,
        _ => StateKind::Completed,
    }
}

/// A task run with two states and two log lines for run `r`.
fn task_of(r: &Run, reports: &mut Vec<TaskRunReport>, lines: &mut Vec<NewLogLine>) {
    let id = id_at(r.created_at + Duration::milliseconds(400));
    for (state, at) in [
        (
            StateKind::Running,
            r.created_at + Duration::milliseconds(400),
        ),
        (StateKind::Completed, r.created_at + Duration::seconds(30)),
    ] {
        reports.push(TaskRunReport {
            id,
            flow_run_id: r.id,
            task: "transform".into(),
            state,
            at,
            message: None,
            attempt: 1,
            inputs_fingerprint: None,
            cache_key: None,
            result_location: None,
            map_index: None,
            tags: vec![],
        });
    }
    for (k, m) in ["transforming 100 rows", "wrote summary"]
        .into_iter()
        .enumerate()
    {
        lines.push(NewLogLine {
            flow_run_id: r.id,
            task_run_id: Some(id),
            at: r.created_at + Duration::seconds(k as i64 + 1),
            level: LogLevel::Info,
            message: m.into(),
            attempt: None,
            stream: None,
            seq: None,
        });
    }
}

/// Seeds the database at `url`; see the module docs.
async fn seed(url: &str, args: &Args) -> Result<Seeded> {
    let started = Instant::now();
    let store = Store::connect(url).await?;
    let now = Utc::now();
    let projects = [("dev", args.retain_days), ("main", args.retain_days * 2)];
    let mut deployments = Vec::new();
    for (p, _) in projects {
        store.ensure_project(p, now).await?;
        let spec = DeploymentSpec {
            flow: "etl".into(),
            command: vec!["example-flows".into()],
            work_queue: "default".into(),
            ..Default::default()
        };
        let up = store.upsert_deployment(p, "etl", &spec, false, now).await?;
        deployments.push(up.deployment.context("upsert returned no deployment")?.id);
    }
    store
        .set_retention("main", Some(args.retain_days * 2))
        .await?;
    let total = u64::from(args.runs.max(10));
    let span = Duration::days(i64::from(args.days.max(3)));
    let end = now - Duration::hours(2);
    let step_us = (span.num_microseconds().unwrap_or(1) / total as i64).max(1);
    let mut expired = vec![0u64; projects.len()];
    let (mut batch, mut reports, mut lines) = (Vec::with_capacity(BATCH), Vec::new(), Vec::new());
    let mut recent = None;
    let mut task_runs = 0u64;
    for i in 0..total {
        let k = (i % 2) as usize;
        let (project, days) = projects[k];
        let at = end - span + Duration::microseconds(step_us * i as i64);
        // Keep a day clear on both sides of each window's edge: the count is exact.
        let edge = now - Duration::days(i64::from(days));
        if (at - edge).num_hours().abs() < 24 {
            continue;
        }
        let state = state_of(i);
        let r = flow_run(project, deployments[k], at, state);
        if state.is_terminal() && r.state_at < edge {
            expired[k] += 1;
        }
        if args.tasks_every > 0 && i % u64::from(args.tasks_every) == 0 {
            task_of(&r, &mut reports, &mut lines);
            task_runs += 1;
        }
        recent = Some(r.id);
        batch.push(r);
        if batch.len() == BATCH {
            store.import_flow_runs(&batch).await?;
            store.ingest_task_runs(&reports).await?;
            store.ingest_logs(&lines).await?;
            batch.clear();
            reports.clear();
            lines.clear();
        }
    }
    store.import_flow_runs(&batch).await?;
    store.ingest_task_runs(&reports).await?;
    store.ingest_logs(&lines).await?;
    store.close().await;
    Ok(Seeded {
        expired: projects
            .iter()
            .zip(expired)
            .map(|((p, _), n)| (p.to_string(), n))
            .collect(),
        recent: recent.context("no run seeded")?,
        seconds: started.elapsed().as_secs_f64(),
        task_runs,
    })
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn summary(mut ms: Vec<f64>) -> Value {
    ms.sort_by(f64::total_cmp);
    json!({
        "requests": ms.len(),
        "p50_ms": round(percentile(&ms, 50.0), 2),
        "p99_ms": round(percentile(&ms, 99.0), 2),
        "max_ms": round(ms.last().copied().unwrap_or(0.0), 2),
    })
}

/// Times one request, in milliseconds.
async fn timed<T, E: std::fmt::Display>(
    f: impl std::future::Future<Output = std::result::Result<T, E>>,
    what: &str,
) -> Result<f64> {
    let t = Instant::now();
    f.await.map_err(|e| anyhow::anyhow!("{what}: {e}"))?;
    Ok(t.elapsed().as_secs_f64() * 1000.0)
}

/// Drives the API until every expired run is gone; returns (seconds, latencies by kind).
async fn drive(
    client: &Client,
    seeded: &Seeded,
    started: Instant,
    timeout: std::time::Duration,
) -> Result<(f64, [Vec<f64>; 3])> {
    let mut lat: [Vec<f64>; 3] = Default::default();
    let mut last_check = Instant::now();
    loop {
        if last_check.elapsed() >= std::time::Duration::from_millis(250) {
            last_check = Instant::now();
            let mut done = true;
            for (p, n) in &seeded.expired {
                let got = client.project(p).await?.pruned_runs;
                if got > *n {
                    bail!("project {p}: {got} runs pruned, only {n} were past retention");
                }
                done &= got == *n;
            }
            if done {
                return Ok((started.elapsed().as_secs_f64(), lat));
            }
            if started.elapsed() > timeout {
                bail!("pruning did not finish within {timeout:?}");
            }
        }
        let q = RunQuery {
            project: Some("dev".into()),
            limit: Some(20),
            ..Default::default()
        };
        lat[0].push(timed(client.list_flow_runs(&q), "list runs").await?);
        lat[1].push(timed(client.flow_run(seeded.recent), "read a run").await?);
        let create = CreateFlowRun {
            project: Some("dev".into()),
            deployment: Some("etl".into()),
            ..Default::default()
        };
        lat[2].push(timed(client.create_flow_run(&create), "create a run").await?);
    }
}

/// Runs the benchmark; see the module docs.
pub fn run(args: &Args) -> Result<Value> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let tmp = tempfile::Builder::new()
        .prefix("weir-bench-retention-")
        .tempdir()?;
    let db = tmp.path().join("weir.db");
    let url = format!("sqlite://{}", db.display());
    let seeded = rt.block_on(seed(&url, args))?;
    let db_mib = std::fs::metadata(&db)
        .map(|m| m.len() as f64 / 1048576.0)
        .unwrap_or(0.0);
    let started = Instant::now();
    let days = args.retain_days.to_string();
    let server = procs::start_server(
        tmp.path(),
        Some(&url),
        &["--retain-days", &days, "--retain-interval-s", "1"],
    )?;
    let client = Client::new(&server.url, Some(server.key.clone()))?;
    let timeout = std::time::Duration::from_secs(args.timeout_s);
    let (prune_s, [list, read, create]) = rt.block_on(drive(&client, &seeded, started, timeout))?;
    let pruned: u64 = seeded.expired.iter().map(|(_, n)| n).sum();
    let all: Vec<f64> = list.iter().chain(&read).chain(&create).copied().collect();
    drop(server);
    Ok(json!({
        "runs": args.runs,
        "task_runs": seeded.task_runs,
        "seed_s": round(seeded.seconds, 1),
        "db_mib": round(db_mib, 1),
        "pruned_runs": pruned,
        "prune_s": round(prune_s, 2),
        "prune_runs_per_s": round(pruned as f64 / prune_s.max(1e-9), 0),
        "api": summary(all),
        "list_runs": summary(list),
        "read_run": summary(read),
        "create_run": summary(create),
    }))
}
