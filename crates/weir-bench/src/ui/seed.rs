//! The database `weir-bench ui` measures: projects, deployments, a history of flow runs in
//! realistic states, recent Late, Running and Scheduled runs, one run with many task runs and
//! one small run with logs, imported through the store directly; and the marker that lets a
//! kept `--dir` reuse it.

use super::Args;
use crate::ids::id_at;
use anyhow::{Context, Result};
use chrono::{Duration, Utc};
use serde_json::{Map, Value, json};
use std::path::Path;
use std::time::Instant;
use uuid::Uuid;
use weir_core::api::{DeploymentSpec, LogLevel, NewLogLine, TaskRunReport};
use weir_core::run::Run;
use weir_core::{StateKind, Timestamp};
use weir_store::Store;

/// Projects seeded.
const PROJECTS: [&str; 3] = ["dev", "main", "analytics"];
/// Deployments seeded in each project.
const DEPLOYMENTS: [&str; 4] = ["etl", "chain", "fanout", "report"];
/// Runs per call of `Store::import_flow_runs`.
const BATCH: usize = 10_000;
/// Scheduled runs put ahead (due in the next days), part of `--runs`.
const AHEAD: u32 = 240;
/// Running runs (leases far ahead, so the crash detector leaves them alone).
const RUNNING: u32 = 12;
/// Late runs in the last hours.
const LATE: u32 = 30;

/// What the seeding made, for the pages to request.
pub(super) struct Seeded {
    /// The run with `--tasks` task runs.
    pub(super) big: Uuid,
    /// A small run with 3 task runs and logs.
    pub(super) small: Uuid,
    /// Seconds the seeding took (0 when reused).
    pub(super) seconds: f64,
}

/// The flow runs seeded for `args`: `--runs`, but at least the recent runs and the two
/// measured ones.
pub(super) fn total_runs(args: &Args) -> u32 {
    args.runs.max(AHEAD + RUNNING + LATE + 2)
}

/// The database in `dir` as seeded before with the same arguments (its `seeded.json` marker
/// says so), or a freshly seeded one (whatever was there removed first).
pub(super) fn seeded_or_reused(
    rt: &tokio::runtime::Runtime,
    dir: &Path,
    url: &str,
    args: &Args,
) -> Result<Seeded> {
    let marker = dir.join("seeded.json");
    let wanted = json!({"runs": args.runs, "tasks": args.tasks, "days": args.days});
    let reused = std::fs::read_to_string(&marker)
        .ok()
        .and_then(|t| serde_json::from_str::<Value>(&t).ok())
        .filter(|m| m["args"] == wanted);
    if let Some(m) = reused {
        return Ok(Seeded {
            big: m["big"].as_str().unwrap_or_default().parse()?,
            small: m["small"].as_str().unwrap_or_default().parse()?,
            seconds: 0.0,
        });
    }
    for f in [
        "weir.db",
        "weir.db-wal",
        "weir.db-shm",
        "admin.key",
        "seeded.json",
    ] {
        let _ = std::fs::remove_file(dir.join(f));
    }
    let s = rt.block_on(seed(url, args))?;
    let m = json!({"args": wanted, "big": s.big.to_string(), "small": s.small.to_string()});
    std::fs::write(&marker, m.to_string())?;
    Ok(s)
}

/// A cheap deterministic hash, to spread states and deployments.
fn mix(i: u64) -> u64 {
    let mut x = i.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    x ^= x >> 31;
    x = x.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x ^ (x >> 29)
}

/// The parameter schema every seeded deployment has (an integer with a default, an enum, a
/// boolean), so the deployment page renders a real form.
fn schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "rows": {"type": "integer", "default": 100, "description": "How many rows"},
            "region": {"type": "string", "enum": ["north", "south", "east", "west"]},
            "dry_run": {"type": "boolean", "default": false}
        },
        "additionalProperties": false
    })
}

/// A run of deployment `d` (`(id, project, name)`), created at `at`, in `state`.
fn flow_run(
    d: &(Uuid, String, String),
    i: u64,
    at: Timestamp,
    state: StateKind,
    now: Timestamp,
) -> Run {
    let id = id_at(at);
    let mut parameters = Map::new();
    parameters.insert("rows".into(), json!(i % 1000));
    let started = (!matches!(state, StateKind::Scheduled | StateKind::Late))
        .then(|| at + Duration::milliseconds(300));
    let ended = state
        .is_terminal()
        .then(|| at + Duration::milliseconds(800 + (mix(i) % 60_000) as i64));
    let message = match state {
        StateKind::Failed => Some("task transform failed: division by zero".to_string()),
        StateKind::Crashed => Some("the flow process exited with signal 9".to_string()),
        StateKind::Cancelled => Some("cancellation requested".to_string()),
        _ => None,
    };
    Run {
        id,
        project: d.1.clone(),
        deployment_id: Some(d.0),
        deployment: Some(d.2.clone()),
        flow: d.2.clone(),
        name: format!("{}-{}", d.2, &id.simple().to_string()[26..]),
        state,
        state_message: message,
        state_at: ended.or(started).unwrap_or(at),
        attempt: u32::from(started.is_some()),
        retries_used: 0,
        retries: 1,
        retry_delay: chrono::Duration::zero(),
        resume: false,
        parameters,
        work_queue: "default".into(),
        scheduled_at: at,
        tick_at: None,
        created_at: at,
        started_at: started,
        ended_at: ended,
        agent_id: None,
        lease_expires_at: (state == StateKind::Running).then(|| now + Duration::days(1)),
        parent_flow_run_id: None,
        result: (state == StateKind::Completed).then(|| weir_core::api::ResultRef {
            location: format!("s3://bench-results/weir/{id}/result.json"),
            size: 12 + i % 1000,
        }),
        tags: vec![],
    }
}

/// The state of historical run `i`.
fn past_state(i: u64) -> StateKind {
    match mix(i) % 1000 {
        0..=69 => StateKind::Failed,
        70..=79 => StateKind::Crashed,
        80..=99 => StateKind::Cancelled,
        _ => StateKind::Completed,
    }
}

/// A seeded deployment: `(id, project, name)`.
type Seed = (Uuid, String, String);

/// Seeds the database at `url`; see the module docs.
async fn seed(url: &str, args: &Args) -> Result<Seeded> {
    let started = Instant::now();
    let store = Store::connect(url).await?;
    let now = Utc::now();
    let deployments = seed_deployments(&store, now).await?;
    let total = u64::from(total_runs(args));
    let past = total - u64::from(AHEAD + RUNNING + LATE) - 2;
    import_history(&store, &deployments, past, i64::from(args.days.max(1)), now).await?;
    let (big, small) = import_recent_runs(&store, &deployments, past, now).await?;
    ingest_large_run_tasks(&store, &big, u64::from(args.tasks.max(3))).await?;
    ingest_small_run_tasks(&store, &small).await?;
    store.close().await;
    Ok(Seeded {
        big: big.id,
        small: small.id,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// Every project and its deployments, each with a parameter schema and a default.
async fn seed_deployments(store: &Store, now: Timestamp) -> Result<Vec<Seed>> {
    let mut deployments = Vec::new();
    for p in PROJECTS {
        store.ensure_project(p, now).await?;
        for name in DEPLOYMENTS {
            let spec = DeploymentSpec {
                flow: name.to_string(),
                description: format!("{name} of the {p} team"),
                command: vec!["example-flows".into()],
                work_queue: "default".into(),
                parameters: [("rows".to_string(), json!(100))].into_iter().collect(),
                parameter_schema: Some(schema()),
                ..Default::default()
            };
            let up = store.upsert_deployment(p, name, &spec, false, now).await?;
            let d = up.deployment.context("upsert returned no deployment")?;
            deployments.push((d.id, p.to_string(), name.to_string()));
        }
    }
    Ok(deployments)
}

/// The deployment run `i` belongs to (spread evenly, deterministically).
fn pick(deployments: &[Seed], i: u64) -> &Seed {
    &deployments[(mix(i ^ 0x5555) % deployments.len() as u64) as usize]
}

/// The `past` historical runs (numbered `0..past`), oldest first, spread over `days` days
/// ending two hours ago, in import batches.
async fn import_history(
    store: &Store,
    deployments: &[Seed],
    past: u64,
    days: i64,
    now: Timestamp,
) -> Result<()> {
    let span = Duration::days(days);
    let first = now - span;
    let step_us = span.num_microseconds().unwrap_or(1) / past.max(1) as i64;
    let mut batch = Vec::with_capacity(BATCH);
    for i in 0..past {
        let at = first + Duration::microseconds(step_us * i as i64) - Duration::hours(2);
        batch.push(flow_run(pick(deployments, i), i, at, past_state(i), now));
        if batch.len() == BATCH {
            store.import_flow_runs(&batch).await?;
            batch.clear();
        }
    }
    store.import_flow_runs(&batch).await?;
    Ok(())
}

/// The runs of the last hours, numbered from `past` on: the large run (dev/chain) and the
/// small run (dev/etl) two hours ago, Late ones in the last hour, Running ones now and
/// Scheduled ones ahead. Returns the large and the small run.
async fn import_recent_runs(
    store: &Store,
    deployments: &[Seed],
    past: u64,
    now: Timestamp,
) -> Result<(Run, Run)> {
    let seeded = |project: &str, name: &str| {
        deployments
            .iter()
            .find(|d| d.1 == project && d.2 == name)
            .with_context(|| format!("{project}/{name} seeded"))
    };
    let big_at = now - Duration::minutes(110);
    let big = flow_run(
        seeded("dev", "chain")?,
        past,
        big_at,
        StateKind::Completed,
        now,
    );
    let small_at = big_at + Duration::minutes(5);
    let small = flow_run(
        seeded("dev", "etl")?,
        past + 1,
        small_at,
        StateKind::Completed,
        now,
    );
    let mut batch = vec![big.clone(), small.clone()];
    for k in 0..LATE {
        let i = past + 2 + u64::from(k);
        let at = now - Duration::minutes(60) + Duration::minutes(i64::from(k));
        batch.push(flow_run(pick(deployments, i), i, at, StateKind::Late, now));
    }
    for k in 0..RUNNING {
        let i = past + 2 + u64::from(LATE + k);
        let at = now - Duration::seconds(i64::from(RUNNING - k) * 10);
        batch.push(flow_run(
            pick(deployments, i),
            i,
            at,
            StateKind::Running,
            now,
        ));
    }
    for k in 0..AHEAD {
        let i = past + 2 + u64::from(LATE + RUNNING + k);
        let mut r = flow_run(pick(deployments, i), i, now, StateKind::Scheduled, now);
        r.scheduled_at = now + Duration::minutes(15 * (i64::from(k) + 1));
        batch.push(r);
    }
    for chunk in batch.chunks(BATCH) {
        store.import_flow_runs(chunk).await?;
    }
    Ok((big, small))
}

/// The two reports of a task run that ran from `at` to `ended`: Running, then Completed.
fn task_reports(
    id: Uuid,
    run: &Run,
    task: &str,
    at: Timestamp,
    ended: Timestamp,
    fingerprint: Option<String>,
) -> [TaskRunReport; 2] {
    [(StateKind::Running, at), (StateKind::Completed, ended)].map(|(state, when)| TaskRunReport {
        id,
        flow_run_id: run.id,
        task: task.to_string(),
        state,
        at: when,
        message: None,
        attempt: 1,
        inputs_fingerprint: fingerprint.clone(),
        cache_key: None,
        result_location: None,
        map_index: None,
        tags: vec![],
    })
}

/// `tasks` task runs of the large run (a first task, a chain, a last task), 60 µs apart,
/// ingested 2,000 task runs at a time.
async fn ingest_large_run_tasks(store: &Store, big: &Run, tasks: u64) -> Result<()> {
    let big_at = big.created_at;
    let mut reports = Vec::with_capacity(4_000);
    for t in 0..tasks {
        let task = match t {
            0 => "extract",
            t if t + 1 == tasks => "total",
            _ => "add_one",
        };
        let at = big_at + Duration::milliseconds(400) + Duration::microseconds(60 * t as i64);
        let ended = at + Duration::microseconds(40);
        let fingerprint = Some(format!("{:016x}", mix(t)));
        reports.extend(task_reports(id_at(at), big, task, at, ended, fingerprint));
        if reports.len() >= 4_000 {
            store.ingest_task_runs(&reports).await?;
            reports.clear();
        }
    }
    store.ingest_task_runs(&reports).await?;
    Ok(())
}

/// The small run's three tasks and a log line of each.
async fn ingest_small_run_tasks(store: &Store, small: &Run) -> Result<()> {
    let small_at = small.created_at + Duration::milliseconds(300);
    let mut reports = Vec::new();
    let mut lines = Vec::new();
    for (k, task) in ["extract", "clean", "summarize"].into_iter().enumerate() {
        let at = small_at + Duration::milliseconds(100 * k as i64);
        let id = id_at(at);
        let ended = at + Duration::milliseconds(60);
        reports.extend(task_reports(id, small, task, at, ended, None));
        lines.push(NewLogLine {
            flow_run_id: small.id,
            task_run_id: Some(id),
            at: at + Duration::milliseconds(30),
            level: LogLevel::Info,
            message: format!("{task}: done"),
            attempt: None,
            stream: None,
            seq: None,
        });
    }
    store.ingest_task_runs(&reports).await?;
    store.ingest_logs(&lines).await?;
    Ok(())
}
