//! `weir-bench ui`: how fast the web UI's pages are on a large database.
//!
//! Seeds a fresh SQLite database through the store directly — by default 1,000,000 flow runs
//! spread over 100 days across 3 projects and 12 deployments in realistic states (mostly
//! Completed; Failed, Crashed, Cancelled; a few Late and Running; Scheduled runs ahead), one
//! flow run with 10,000 task runs and one small run with 3 task runs and logs — then starts
//! the release `weir server` on it, logs in like a browser (the login form's CSRF cookie,
//! then the session cookie), and requests every page N times over one keep-alive
//! connection, measuring wall time per request.
//!
//! The pages: the dashboard (runs-over-time chart of the last 24 hours, and of 7 days), the
//! run lists, the 10,000-task run and a small one, the deployments and one deployment (its
//! success rate over 7 days and duration trend), projects, agents, keys, audit.
//!
//! Prints one JSON object: per page `{"p50_ms", "p99_ms"}` (nearest rank), the overall
//! `page_p50_ms`/`page_p99_ms` over every request, `slowest_page`, and the seeding figures
//! (`seed_s`, `runs`, `task_runs`, `db_mib`).
//!
//! `--dir DIR` keeps the data directory: a database seeded there before (same `--runs`) is
//! reused, which makes iterating on queries quick.
//!
//! `seed` builds the database, `measure` logs in and times the pages; this module is the
//! command: the data directory, the server, the pages and the report.

mod measure;
mod seed;

use crate::procs::{self, round};
use anyhow::Result;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};

/// Options of `weir-bench ui`.
#[derive(clap::Args)]
pub struct Args {
    /// Flow runs to seed.
    #[arg(long, default_value_t = 1_000_000)]
    runs: u32,
    /// Task runs of the one large run.
    #[arg(long, default_value_t = 10_000)]
    tasks: u32,
    /// Days the runs are spread over (ending now).
    #[arg(long, default_value_t = 100)]
    days: u32,
    /// Measured requests per page (after 3 unmeasured warm-up requests).
    #[arg(long, short = 'n', default_value_t = 30)]
    requests: u32,
    /// Data directory to use and keep (default: a temporary one); a database seeded there
    /// before with the same `--runs` and `--tasks` is reused.
    #[arg(long)]
    dir: Option<PathBuf>,
}

/// Runs the benchmark; see the module docs.
pub fn run(args: &Args) -> Result<Value> {
    let (dir, _guard) = data_dir(args)?;
    let db = dir.join("weir.db");
    let url = format!("sqlite://{}", db.display());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let seeded = seed::seeded_or_reused(&rt, &dir, &url, args)?;
    let server = procs::start_server(&dir, Some(&url), &[])?;
    let _ = rustls::crypto::ring::default_provider().install_default();
    let timings = rt.block_on(measure::measure_pages(
        &server.url,
        &server.key,
        &pages(&seeded),
        args.requests.max(1),
    ))?;
    drop(server);
    let mut out = timings.report();
    out.insert("requests_per_page".into(), json!(args.requests.max(1)));
    out.insert("runs".into(), json!(seed::total_runs(args)));
    out.insert("task_runs".into(), json!(args.tasks.max(3)));
    out.insert("seed_s".into(), json!(round(seeded.seconds, 1)));
    out.insert("db_mib".into(), json!(round(db_mib(&db), 1)));
    Ok(Value::Object(out))
}

/// The data directory: `--dir` (created), or a temporary one kept alive by the guard.
fn data_dir(args: &Args) -> Result<(PathBuf, Option<tempfile::TempDir>)> {
    match &args.dir {
        Some(d) => {
            std::fs::create_dir_all(d)?;
            Ok((d.clone(), None))
        }
        None => {
            let t = tempfile::Builder::new()
                .prefix("weir-bench-ui-")
                .tempdir()?;
            Ok((t.path().to_path_buf(), Some(t)))
        }
    }
}

/// Size of a file and its `-wal`, in MiB.
fn db_mib(db: &Path) -> f64 {
    let size = |p: PathBuf| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
    let wal = PathBuf::from(format!("{}-wal", db.display()));
    (size(db.to_path_buf()) + size(wal)) as f64 / (1024.0 * 1024.0)
}

/// The pages measured, by the name they have in the report.
fn pages(seeded: &seed::Seeded) -> Vec<(&'static str, String)> {
    vec![
        ("dashboard", "/".into()),
        ("dashboard_7d", "/?range=7d".into()),
        ("runs", "/runs".into()),
        ("runs_failed", "/runs?state=Failed".into()),
        (
            "runs_main_crashed",
            "/runs?project=main&state=Crashed".into(),
        ),
        ("run_10k_tasks", format!("/runs/{}", seeded.big)),
        ("run_small", format!("/runs/{}", seeded.small)),
        ("deployments", "/deployments".into()),
        ("deployment", "/deployments/dev/etl".into()),
        ("projects", "/projects".into()),
        ("agents", "/agents".into()),
        ("keys", "/keys".into()),
        ("audit", "/audit".into()),
    ]
}
