//! Registration that converges, with real processes: a `weir server`, the `weir` CLI and a
//! `weir.toml` edited the way a team edits it. A deployment deleted from the file is named
//! by `weir deploy --plan`, kept by `weir deploy`, archived by `weir deploy --prune` (no
//! schedules, no new runs, history kept) and restored by deploying it again; `${NAME}` in the
//! file is filled from `--var`.
//!
//! Needs `cargo build --workspace --bins` first (for `example-flows`).

mod common;

use common::{ServerOptions, Weir, params};
use std::time::Duration;
use uuid::Uuid;
use weir_core::StateKind;

const BOTH: &str = r#"
project = "dev"

[defaults]
command = ["{flows}"]

[deployments.etl]
parameters = { rows = 10 }

[deployments.heartbeat]
flow = "chain"
parameters = { n = 2 }
schedules = [{ interval = "1m" }]
"#;

const ETL_ONLY: &str = r#"
project = "dev"

[defaults]
command = ["{flows}"]

[deployments.etl]
parameters = { rows = 10 }
"#;

/// The line of `out` naming `what`, or a panic showing all of it.
fn line<'a>(out: &'a str, what: &str) -> &'a str {
    out.lines()
        .find(|l| l.contains(what))
        .unwrap_or_else(|| panic!("no line with {what:?} in:\n{out}"))
}

/// `--prune` archives `dev/heartbeat`: listed as archived, its runs (`manual` among them)
/// kept, its schedule stopped.
fn prune_archives_heartbeat_keeping_its_history(w: &Weir, manual: Uuid) {
    let pruned = w.weir(&["deploy", "--prune", "--json"]).ok();
    let report: serde_json::Value = serde_json::from_str(&pruned.stdout).expect("JSON report");
    let outcomes: Vec<(String, String)> = report
        .as_array()
        .expect("array")
        .iter()
        .map(|e| {
            (
                e["deployment"].as_str().unwrap_or_default().to_string(),
                e["outcome"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    assert_eq!(
        outcomes,
        vec![
            ("dev/etl".to_string(), "unchanged".to_string()),
            ("dev/heartbeat".to_string(), "removed".to_string())
        ]
    );
    let archived = w
        .block_on(w.client.deployment("dev", "heartbeat"))
        .expect("still readable");
    let at = archived.archived_at.expect("archived");
    let ls = w.weir(&["deployments", "ls"]).ok();
    assert!(
        line(&ls.stdout, "dev/heartbeat").contains("archived"),
        "{ls:#?}"
    );
    assert!(line(&ls.stdout, "dev/etl").contains("active"), "{ls:#?}");
    let runs = w.all_runs("dev", "heartbeat");
    assert!(runs.iter().any(|r| r.id == manual), "history kept");
    assert!(
        runs.iter()
            .all(|r| r.id == manual || r.state != StateKind::Scheduled || r.scheduled_at <= at),
        "no run planned after the archive: {runs:#?}"
    );
    // The scheduler ticks every 100 ms: a second later it still has planned nothing new.
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(w.all_runs("dev", "heartbeat").len(), runs.len());
    let listed = w.weir(&["runs", "ls"]).ok();
    assert!(listed.stdout.contains(&manual.to_string()), "{listed:#?}");
}

#[test]
fn deleted_deployments_are_planned_kept_pruned_and_restored() {
    let w = Weir::start(ServerOptions::default());
    w.deploy(BOTH);
    // History of the deployment about to be deleted: a manual run, and the runs its schedule
    // put ahead.
    let manual = w.create_run("dev", "heartbeat", params(&[]));
    common::wait_until(
        "the scheduler to plan heartbeat",
        Duration::from_secs(20),
        || {
            let n = w
                .all_runs("dev", "heartbeat")
                .iter()
                .filter(|r| r.id != manual.id)
                .count();
            if n > 0 {
                Ok(())
            } else {
                Err("no scheduled run yet".to_string())
            }
        },
    );

    // The file loses `heartbeat`. The plan names it and changes nothing.
    w.write_toml(ETL_ONLY);
    let plan = w.weir(&["deploy", "--plan"]).ok();
    assert!(
        line(&plan.stdout, "dev/etl").contains("unchanged"),
        "{plan:#?}"
    );
    assert!(
        line(&plan.stdout, "dev/heartbeat").contains("would remove"),
        "{plan:#?}"
    );
    let ls = w.weir(&["deployments", "ls"]).ok();
    assert!(
        line(&ls.stdout, "dev/heartbeat").contains("active"),
        "{ls:#?}"
    );

    // Without --prune it stays, and the output says so.
    let kept = w.weir(&["deploy"]).ok();
    assert!(
        line(&kept.stdout, "dev/heartbeat").contains("kept"),
        "{kept:#?}"
    );
    assert!(kept.stdout.contains("--prune"), "{kept:#?}");

    prune_archives_heartbeat_keeping_its_history(&w, manual.id);

    // No new runs, with an error that says why and what to do.
    let refused = w.weir(&["run", "dev/heartbeat"]);
    assert_ne!(refused.code, 0, "{refused:#?}");
    assert!(
        refused.stderr.contains("archived") && refused.stderr.contains("deploy it again"),
        "{refused:#?}"
    );

    // Pruning again changes nothing: archived deployments are not "removed" twice.
    let again = w.weir(&["deploy", "--prune"]).ok();
    assert!(!again.stdout.contains("heartbeat"), "{again:#?}");

    // `weir deployments rm` archives one by hand; deploying the file restores it.
    let rm = w.weir(&["deployments", "rm", "dev/etl"]).ok();
    assert!(rm.stdout.contains("archived dev/etl"), "{rm:#?}");
    let plan = w.weir(&["deploy", "--plan"]).ok();
    assert!(
        line(&plan.stdout, "dev/etl").contains("would restore"),
        "{plan:#?}"
    );
    let restored = w.weir(&["deploy"]).ok();
    assert!(
        line(&restored.stdout, "dev/etl").contains("restored"),
        "{restored:#?}"
    );
    let etl = w.block_on(w.client.deployment("dev", "etl")).expect("etl");
    assert_eq!((etl.archived_at, etl.version), (None, 1));
    w.create_run("dev", "etl", params(&[]));

    // `weir deployments rm` of something that does not exist: a clear error.
    let missing = w.weir(&["deployments", "rm", "dev/nope"]);
    assert_ne!(missing.code, 0);
    assert!(missing.stderr.contains("dev/nope"), "{missing:#?}");
}

const WITH_IMAGE: &str = r#"
project = "dev"

[deployments.etl]
command = ["{flows}"]
infrastructure = { type = "docker", image = "${IMAGE}" }
parameters = { rows = 10 }
"#;

#[test]
fn image_variables_come_from_var_and_unset_ones_deploy_nothing() {
    let w = Weir::start(ServerOptions::default());
    w.write_toml(WITH_IMAGE);
    let refused = w.weir(&["deploy"]);
    assert_eq!(refused.code, 2, "{refused:#?}");
    assert!(
        refused
            .stderr
            .contains("weir.toml:6:46: variable IMAGE is not set: pass `--var IMAGE=VALUE`"),
        "{refused:#?}"
    );
    assert!(
        refused.stderr.contains("nothing was deployed"),
        "{refused:#?}"
    );
    assert!(w.block_on(w.client.deployment("dev", "etl")).is_err());

    let out = w
        .weir(&["deploy", "--var", "IMAGE=registry.example/flows:3f9ff61"])
        .ok();
    assert!(out.stdout.contains("created  dev/etl (v1)"), "{out:#?}");
    let d = w.block_on(w.client.deployment("dev", "etl")).expect("etl");
    assert_eq!(
        d.spec.infrastructure.image(),
        Some("registry.example/flows:3f9ff61")
    );

    // `--var NAME` takes the value from the environment: CI's commit-tagged image.
    let out =
        w.sb.cli_env(
            Some(&w.url),
            &w.sb.path("cli"),
            &[
                ("WEIR_API_KEY", &w.admin_key),
                ("IMAGE", "registry.example/flows:a1b2c3d"),
            ],
            &["deploy", "--var", "IMAGE"],
            Duration::from_secs(60),
        )
        .ok();
    assert!(out.stdout.contains("updated  dev/etl (v2)"), "{out:#?}");
    assert!(
        out.stdout.contains(
            "infrastructure.image: \"registry.example/flows:3f9ff61\" → \"registry.example/flows:a1b2c3d\""
        ),
        "the plan diff shows the new tag: {out:#?}"
    );
    let missing = w.weir(&["deploy", "--var", "NOT_IN_THE_ENVIRONMENT"]);
    assert_eq!(missing.code, 2, "{missing:#?}");
    assert!(
        missing
            .stderr
            .contains("the environment has no variable NOT_IN_THE_ENVIRONMENT"),
        "{missing:#?}"
    );
}
