//! End to end: retention in a real `weir server` on its SQLite file. A real run goes through
//! an agent; the server is stopped and old runs (with task runs, states and logs) are written
//! into its database as history; restarted with `--retain-days 30 --retain-export DIR`, it
//! exports and deletes the finished runs older than 30 days — not running ones, not recent
//! ones, not the real run — and a project with its own `weir projects retention --days 5`
//! loses its 10-day-old runs too. The CLI shows each project's retention and what was pruned;
//! the audit log and the server's log say what was pruned.

mod common;

use chrono::{Duration, Utc};
use common::{ServerOptions, Weir, params, wait_until};
use serde_json::{Value, json};
use std::collections::HashSet;
use uuid::Uuid;
use weir_core::StateKind;
use weir_core::api::{LogLevel, NewLogLine, TaskRunReport};
use weir_core::run::{Run, sample};
use weir_store::Store;

/// A run of `project/etl` (deployment `d`) created `age` ago, in `state` since then.
fn aged_run(project: &str, d: Uuid, age: Duration, state: StateKind) -> Run {
    let at = Utc::now() - age;
    let id = Uuid::now_v7();
    let finished = state.is_terminal();
    Run {
        id,
        project: project.into(),
        deployment_id: Some(d),
        name: format!("etl-{}", &id.simple().to_string()[26..]),
        state_at: at + Duration::seconds(30),
        attempt: 1,
        scheduled_at: at,
        created_at: at,
        started_at: Some(at),
        ended_at: finished.then(|| at + Duration::seconds(30)),
        lease_expires_at: (!finished).then(|| Utc::now() + Duration::days(1)),
        ..sample(state)
    }
}

/// Writes `runs` into the stopped server's database, each with one task run and two log lines.
async fn write_history(db: &str, runs: &[Run]) {
    let store = Store::connect(db)
        .await
        .expect("open the server's database");
    store.import_flow_runs(runs).await.expect("import runs");
    let mut reports = Vec::new();
    let mut lines = Vec::new();
    for r in runs {
        let task = Uuid::now_v7();
        for (state, at) in [
            (StateKind::Running, r.created_at),
            (StateKind::Completed, r.created_at + Duration::seconds(1)),
        ] {
            reports.push(TaskRunReport {
                id: task,
                flow_run_id: r.id,
                task: "extract".into(),
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
        for (k, message) in ["extracting", "done"].into_iter().enumerate() {
            lines.push(NewLogLine {
                flow_run_id: r.id,
                task_run_id: Some(task),
                at: r.created_at + Duration::milliseconds(k as i64 * 10),
                level: LogLevel::Info,
                message: message.into(),
                attempt: None,
                stream: None,
                seq: None,
            });
        }
    }
    store.ingest_task_runs(&reports).await.expect("task runs");
    store.ingest_logs(&lines).await.expect("logs");
    store.close().await;
}

fn project(w: &Weir, name: &str) -> Value {
    let out = w.weir(&["--json", "projects", "show", name]).ok();
    serde_json::from_str(&out.stdout).expect("projects show --json prints JSON")
}

#[test]
fn finished_runs_past_retention_are_exported_then_deleted() {
    let mut w = Weir::start(ServerOptions::default());
    w.start_agent(2);
    let toml = "project = \"dev\"\n\n[deployments.etl]\ncommand = [\"{flows}\"]\nparameters = { rows = 5 }\n";
    w.deploy(toml);
    w.deploy(&toml.replace("\"dev\"", "\"team-b\""));
    let live = w.create_run("dev", "etl", params(&[]));
    let live = w.wait_state(
        live.id,
        StateKind::Completed,
        std::time::Duration::from_secs(60),
    );
    let dev = w
        .block_on(w.client.deployment("dev", "etl"))
        .expect("dev/etl")
        .id;
    let b = w
        .block_on(w.client.deployment("team-b", "etl"))
        .expect("team-b/etl")
        .id;

    let (old_dev, running, recent_dev, old_b) = age_history(&mut w, dev, b);

    let export = w.sb.path("export");
    let export_url = format!("file://{}", export.display());
    w.restart_server_with(
        ServerOptions::default(),
        &[
            "--retain-days",
            "30",
            "--retain-export",
            &export_url,
            "--retain-interval-s",
            "1",
        ],
    );
    let set = w
        .weir(&["projects", "retention", "team-b", "--days", "5"])
        .ok();
    assert!(set.stdout.contains("5 days (project)"), "{}", set.stdout);

    wait_until(
        "retention to prune dev and team-b",
        std::time::Duration::from_secs(30),
        || {
            let (d, b) = (project(&w, "dev"), project(&w, "team-b"));
            if d["pruned_runs"] == json!(60) && b["pruned_runs"] == json!(7) {
                Ok(())
            } else {
                Err(format!("dev {d}, team-b {b}"))
            }
        },
    );
    retention_is_shown(&w);

    // Gone: the old finished runs, with their task runs and logs. Kept: everything else.
    let kept: Vec<Uuid> = recent_dev
        .iter()
        .map(|r| r.id)
        .chain([running.id, live.run.id])
        .collect();
    only_these_are_gone(&w, old_dev.iter().chain(&old_b), &kept);
    let logs = w.weir(&["logs", &live.run.id.to_string()]).ok();
    assert!(
        !logs.stdout.trim().is_empty(),
        "the live run keeps its logs"
    );

    // The export: JSON lines under retention/PROJECT/DAY/, every deleted run exactly once,
    // with its history, task runs and logs.
    let exported = exported_runs(&export);
    let expected: HashSet<Uuid> = old_dev.iter().chain(&old_b).map(|r| r.id).collect();
    assert_eq!(exported, expected, "exported exactly the deleted runs");

    // Said where an operator looks: the audit log and the server's log.
    pruning_is_audited(&w);
    assert!(
        w.server_log().contains("retention pruned runs"),
        "{}",
        w.server_log()
    );

    // Forever: nothing more is deleted, and the CLI says so.
    forever_and_out_of_range(&w);
}

/// Every run of `gone` is deleted, every run of `kept` still reads.
fn only_these_are_gone<'a>(w: &Weir, gone: impl Iterator<Item = &'a Run>, kept: &[Uuid]) {
    for r in gone {
        let gone = w.block_on(w.client.flow_run(r.id));
        assert!(
            gone.is_err(),
            "run {} ({}) should be deleted",
            r.id,
            r.state
        );
    }
    for id in kept {
        w.block_on(w.client.flow_run(*id)).expect("kept");
    }
}

/// dev shows the server's default (30 days) and `projects ls` both dev's and team-b's.
fn retention_is_shown(w: &Weir) {
    let d = project(w, "dev");
    assert_eq!(d["effective_retain_days"], json!(30), "{d}");
    assert!(
        d.get("retain_days").is_none(),
        "dev uses the server default: {d}"
    );
    let ls = w.weir(&["projects", "ls"]).ok();
    assert!(
        ls.stdout.contains("30 days (server default)"),
        "{}",
        ls.stdout
    );
    assert!(ls.stdout.contains("5 days (project)"), "{}", ls.stdout);
}

/// `--days 0` keeps runs forever, and a number of days out of range is refused naming the
/// flag.
fn forever_and_out_of_range(w: &Weir) {
    let set = w
        .weir(&["projects", "retention", "dev", "--days", "0"])
        .ok();
    assert!(set.stdout.contains("forever (project)"), "{}", set.stdout);
    let bad = w.weir(&["projects", "retention", "dev", "--days", "99999"]);
    assert_ne!(bad.code, 0);
    assert!(bad.stderr.contains("--days"), "{bad:#?}");
}

/// Stops the server and writes an aged history into its database: in dev (deployment `dev`),
/// 60 finished runs 40 days old (to be pruned), a Running one as old and 5 finished ones 10
/// days old (kept); in team-b (`b`), 7 finished runs 10 days old (pruned under 5 days).
/// Returns dev's old, Running and recent runs, and team-b's.
fn age_history(w: &mut Weir, dev: Uuid, b: Uuid) -> (Vec<Run>, Run, Vec<Run>, Vec<Run>) {
    let mut old_dev = Vec::new();
    for i in 0..60 {
        let state = [
            StateKind::Completed,
            StateKind::Failed,
            StateKind::Crashed,
            StateKind::Cancelled,
        ][i % 4];
        old_dev.push(aged_run("dev", dev, Duration::days(40), state));
    }
    let running = aged_run("dev", dev, Duration::days(40), StateKind::Running);
    let recent_dev: Vec<Run> = (0..5)
        .map(|_| aged_run("dev", dev, Duration::days(10), StateKind::Completed))
        .collect();
    let old_b: Vec<Run> = (0..7)
        .map(|_| aged_run("team-b", b, Duration::days(10), StateKind::Completed))
        .collect();
    w.kill_server();
    let db = format!("sqlite://{}", w.sb.path("server/weir.db").display());
    let mut history = old_dev.clone();
    history.push(running.clone());
    history.extend(recent_dev.iter().cloned());
    history.extend(old_b.iter().cloned());
    w.block_on(write_history(&db, &history));
    (old_dev, running, recent_dev, old_b)
}

/// The runs exported under `export`'s `retention/PROJECT/DAY/` files (of dev and team-b),
/// checking each is there once, as one JSON line with its one history row, its task run's
/// two states and its two log lines.
fn exported_runs(export: &std::path::Path) -> HashSet<Uuid> {
    let mut exported: HashSet<Uuid> = HashSet::new();
    let mut files = Vec::new();
    for project in ["dev", "team-b"] {
        let dir = export.join("retention").join(project);
        for day in std::fs::read_dir(&dir)
            .expect("export directory of the project")
            .flatten()
        {
            for f in std::fs::read_dir(day.path())
                .expect("day directory")
                .flatten()
            {
                files.push(f.path());
            }
        }
    }
    for f in &files {
        let text = std::fs::read_to_string(f).expect("export file");
        for line in text.lines() {
            let v: Value = serde_json::from_str(line).expect("one JSON object per line");
            let id: Uuid = v["run"]["id"]
                .as_str()
                .expect("run id")
                .parse()
                .expect("uuid");
            assert!(exported.insert(id), "run {id} exported twice");
            assert_eq!(v["history"].as_array().map(Vec::len), Some(1), "{v}");
            assert_eq!(
                v["task_runs"][0]["history"].as_array().map(Vec::len),
                Some(2),
                "{v}"
            );
            assert_eq!(v["logs"].as_array().map(Vec::len), Some(2), "{v}");
        }
    }
    exported
}

/// The audit log names dev's pruning (60 runs past 30 days) and team-b's retention change.
fn pruning_is_audited(w: &Weir) {
    let audit = w.weir(&["--json", "audit"]).ok();
    let audit: Value = serde_json::from_str(&audit.stdout).expect("audit JSON");
    let pruned: Vec<&Value> = audit["items"]
        .as_array()
        .expect("audit items")
        .iter()
        .filter(|e| e["action"] == json!("runs.pruned"))
        .collect();
    assert!(
        pruned.iter().any(|e| e["target"] == json!("dev")
            && e["detail"]
                .as_str()
                .is_some_and(|d| d.starts_with("60 finished runs older than 30 days"))),
        "{pruned:?}"
    );
    assert!(
        audit["items"]
            .as_array()
            .expect("items")
            .iter()
            .any(|e| e["action"] == json!("retention.set") && e["target"] == json!("team-b")),
        "the retention change is audited"
    );
}
