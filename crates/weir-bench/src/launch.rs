//! `weir-bench launch`: time from a run's creation to the first line of its user code, with
//! an idle agent already waiting (real `weir server`, `weir agent` and `example-flows`
//! processes; the flow appends a timestamp to `WEIR_BENCH_MARK_FILE` when its code starts).
//! With `--launcher docker` the runs are containers, beside bare `docker run`s of the same
//! image ([`crate::launch_docker`]). With `--replicas 2` two servers share one PostgreSQL
//! database: runs are created through the first while the agent long-polls the second, so
//! the figure includes the wake-up between replicas (PostgreSQL `LISTEN/NOTIFY`).

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
    pub runs: u32,
    /// Where runs start: local processes, or containers (then also bare `docker run`s of the
    /// same image, for comparison).
    #[arg(long, value_enum, default_value = "process")]
    pub launcher: Kind,
    /// Server replicas (process launcher only). More than one needs an empty PostgreSQL
    /// database in `--db` or `WEIR_BENCH_POSTGRES_URL`; runs are created through the first
    /// replica, the agent talks to the last.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=4))]
    pub replicas: u8,
    /// The database every replica uses (default: SQLite in a temporary directory, or
    /// `WEIR_BENCH_POSTGRES_URL` with `--replicas` above 1).
    #[arg(long)]
    pub db: Option<String>,
}

/// The launchers `weir-bench launch` measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Kind {
    /// Plain processes on this machine (the process launcher).
    Process,
    /// Containers on the local Docker engine.
    Docker,
}

pub(crate) fn now_us() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros())
        .unwrap_or(0)
}

/// Measures and returns the figures of process launches (`main` sends `--launcher docker`
/// to [`crate::launch_docker`], which reuses this module's helpers).
pub fn run(args: &Args) -> Result<Value> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let db = match (&args.db, args.replicas) {
        (Some(db), _) => Some(db.clone()),
        (None, 1) => None,
        (None, _) => Some(std::env::var("WEIR_BENCH_POSTGRES_URL").map_err(|_| {
            anyhow::anyhow!(
                "--replicas {} needs a database the replicas share: pass --db postgres://… or set WEIR_BENCH_POSTGRES_URL (an empty database)",
                args.replicas
            )
        })?),
    };
    if args.replicas > 1 && !db.as_deref().is_some_and(|d| d.starts_with("postgres")) {
        bail!(
            "--replicas above 1 needs a PostgreSQL database (--db postgres://…): SQLite has one server"
        );
    }
    let home = tempfile::tempdir()?;
    let server = procs::start_server(home.path(), db.as_deref(), &[])?;
    // The other replicas: same database, their own home; the first replica's admin key.
    let mut replicas = Vec::new();
    for n in 1..args.replicas {
        let dir = home.path().join(format!("replica-{n}"));
        std::fs::create_dir_all(&dir)?;
        replicas.push(procs::start_replica(&dir, db.as_deref(), &server.key)?);
    }
    let agent_url = replicas.last().map_or(&server.url, |r| &r.url);
    let marks = home.path().join("marks.log");
    let agent_home = home.path().join("agent-home");
    let _agent = Proc {
        child: Command::new(procs::sibling("weir")?)
            .args(["agent", "--queue", "bench", "--limit", "4"])
            .env("WEIR_API_URL", agent_url)
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
        let mark = wait_mark(&marks, |rid| rid == id)
            .with_context(|| format!("run {id} did not start within 30 s"))?;
        if i > 0 {
            latencies.push(mark.saturating_sub(t0) as f64 / 1000.0);
        }
        // Let the run finish so the agent is idle and waiting again.
        wait_finished(&rt, &client, run.id, Duration::from_secs(30))?;
    }
    let pct = percentiles(latencies);
    Ok(json!({
        "launch_runs": args.runs,
        "launch_replicas": args.replicas,
        "launch_p50_ms": pct(0.5),
        "launch_p99_ms": pct(0.99),
        "launch_max_ms": pct(1.0),
    }))
}

/// The time (unix µs) of the first mark in `marks` whose run id satisfies `is_it`, waiting
/// up to 30 s for it.
pub(crate) fn wait_mark(marks: &std::path::Path, is_it: impl Fn(&str) -> bool) -> Result<u128> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let text = std::fs::read_to_string(marks).unwrap_or_default();
        if let Some(t) = text
            .lines()
            .filter_map(|l| l.split_once(' '))
            .find(|(_, rid)| is_it(rid))
            .and_then(|(t, _)| t.parse::<u128>().ok())
        {
            return Ok(t);
        }
        if Instant::now() > deadline {
            bail!("no mark in {} within 30 s", marks.display());
        }
        std::thread::sleep(Duration::from_micros(500));
    }
}

/// Polls run `id` until it is in a final state, for at most `limit`.
pub(crate) fn wait_finished(
    rt: &tokio::runtime::Runtime,
    client: &Client,
    id: uuid::Uuid,
    limit: Duration,
) -> Result<()> {
    let deadline = Instant::now() + limit;
    while !rt.block_on(client.flow_run(id))?.run.state.is_terminal() {
        if Instant::now() > deadline {
            bail!("run {id} did not finish");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    Ok(())
}

/// The percentile function of `values` (ms), rounded to 0.1.
pub(crate) fn percentiles(mut values: Vec<f64>) -> impl Fn(f64) -> f64 {
    values.sort_by(f64::total_cmp);
    move |p: f64| match values.len() {
        0 => 0.0,
        n => round(values[((n as f64 - 1.0) * p).round() as usize], 1),
    }
}
