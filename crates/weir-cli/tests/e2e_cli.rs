//! End-to-end tests of the `weir` command line, with real processes: a `weir server` on a
//! free port, `weir agent`s launching the real `example-flows` binary (or shell commands),
//! and the CLI talking HTTP to them. See `common/mod.rs` for the fixture.
//!
//! Needs `cargo build --workspace --bins` first (for `example-flows`).

mod common;

use common::{Sandbox, ServerOptions, Weir, wait_until};
use std::time::Duration;
use uuid::Uuid;
use weir_core::StateKind;

/// The id in `created flow run <id> (…)`, which `weir run` prints on stderr.
fn created_id(stderr: &str) -> Uuid {
    stderr
        .lines()
        .find_map(|l| l.strip_prefix("created flow run "))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|id| Uuid::parse_str(id).ok())
        .unwrap_or_else(|| panic!("no `created flow run ID` line in: {stderr}"))
}

/// The example flows' etl deployment, plus chain.
const ETL_TOML: &str = r#"
project = "dev"

[defaults]
command = ["{flows}"]

[deployments.etl]
description = "Extract, transform, load"
parameters = { rows = 100 }

[deployments.chain]
parameters = { n = 5 }
"#;

/// Quick run: deploy, `weir run --watch` prints the result and exits 0; `runs ls` and
/// `runs show` report it Completed with its task runs.
#[test]
fn quick_run_with_watch_completes_and_is_listed() {
    let mut w = Weir::start(ServerOptions::default());
    let out = w.deploy(ETL_TOML);
    assert!(
        out.stdout.contains("created  dev/etl (v1)"),
        "deploy output: {out:#?}"
    );
    w.start_agent(4);

    let out = w.weir_timeout(&["run", "dev/etl", "--watch"], Duration::from_secs(60));
    assert_eq!(out.code, 0, "weir run --watch: {out:#?}");
    assert!(
        out.stdout.contains("\"total_cents\""),
        "the etl result is printed: {out:#?}"
    );
    let id = created_id(&out.stderr);
    assert!(
        out.stderr.contains("Completed"),
        "the states are followed: {out:#?}"
    );

    let ls = w.weir(&["runs", "ls"]).ok();
    let line = ls
        .stdout
        .lines()
        .find(|l| l.contains(&id.to_string()))
        .unwrap_or_else(|| panic!("run {id} not in `weir runs ls`: {}", ls.stdout));
    assert!(line.contains("Completed"), "listed as Completed: {line}");
    assert!(
        line.contains("dev/etl"),
        "listed with its deployment: {line}"
    );

    let show = w.weir(&["runs", "show", &id.to_string()]).ok();
    assert!(
        show.stdout.contains("state:       Completed"),
        "show: {}",
        show.stdout
    );
    // extract, clean, summarize.
    assert!(
        show.stdout.contains("task runs:   3 Completed"),
        "show lists the task runs: {}",
        show.stdout
    );
    assert!(
        show.stdout.contains(&format!("/{id}/result.json (")),
        "show has the result's location: {}",
        show.stdout
    );
    // The server holds only the location: the CLI reads the result from the storage itself.
    let result = w.weir(&["runs", "result", &id.to_string()]).ok();
    assert!(
        result.stdout.contains("\"total_cents\""),
        "runs result prints the result: {}",
        result.stdout
    );
    let out = w.sb.path("etl-result.json");
    w.weir(&[
        "runs",
        "result",
        &id.to_string(),
        "-o",
        out.to_str().expect("utf-8 path"),
    ])
    .ok();
    let saved = std::fs::read_to_string(&out).expect("runs result -o writes the file");
    assert_eq!(saved.trim(), result.stdout.trim());

    let json = w.weir(&["runs", "show", &id.to_string(), "--json"]).ok();
    let v: serde_json::Value = serde_json::from_str(&json.stdout).expect("runs show --json");
    assert_eq!(v["run"]["state"], "Completed");
    assert_eq!(v["task_runs_by_state"]["Completed"], 3, "{v:#}");
}

/// `--plan` after editing a parameter: shows the diff, changes nothing.
fn plan_shows_the_diff_and_changes_nothing(w: &Weir) {
    w.write_toml(&ETL_TOML.replace("rows = 100", "rows = 250"));
    let plan = w.weir(&["deploy", "--plan"]).ok();
    assert!(
        plan.stdout.contains("would update  dev/etl"),
        "plan: {plan:#?}"
    );
    assert!(
        plan.stdout
            .lines()
            .any(|l| l.contains("parameters.rows") && l.contains("100") && l.contains("250")),
        "plan names the parameter: {plan:#?}"
    );
    assert!(
        plan.stdout.contains("unchanged  dev/chain"),
        "plan: {plan:#?}"
    );
    let etl = w
        .block_on(w.client.deployment("dev", "etl"))
        .expect("read dev/etl");
    assert_eq!(etl.version, 1, "--plan changed nothing");
    assert_eq!(etl.spec.parameters["rows"], 100, "--plan changed nothing");
}

/// A typo'd key: exit 2, names file and line, deploys nothing (not even the good ones).
fn a_typo_deploys_nothing(w: &Weir) {
    let typo = format!(
        "{ETL_TOML}\n[deployments.fresh]\nflow = \"chain\"\nshedules = [{{ interval = \"1m\" }}]\n"
    );
    let typo_line = typo
        .lines()
        .position(|l| l.starts_with("shedules"))
        .expect("typo line")
        + 1;
    w.write_toml(&typo);
    let out = w.weir(&["deploy"]);
    assert_eq!(out.code, 2, "typo: {out:#?}");
    assert!(
        out.stderr.contains(&format!("weir.toml:{typo_line}:")),
        "names weir.toml:{typo_line}: {out:#?}"
    );
    assert!(
        out.stderr.contains("shedules") && out.stderr.contains("schedules"),
        "names the key and suggests the right one: {out:#?}"
    );
    assert!(
        out.stderr.contains("nothing was deployed"),
        "says nothing was deployed: {out:#?}"
    );
    let err = w
        .block_on(w.client.deployment("dev", "fresh"))
        .expect_err("dev/fresh must not exist");
    assert_eq!(err.status().map(|s| s.as_u16()), Some(404), "{err}");
}

/// `weir deploy` is idempotent, `--plan` changes nothing, and bad files deploy nothing.
#[test]
fn deploy_is_idempotent_plans_and_rejects_bad_files() {
    let w = Weir::start(ServerOptions::default());
    let first = w.deploy(ETL_TOML);
    assert_eq!(
        first.stdout.matches("created").count(),
        2,
        "first deploy: {first:#?}"
    );

    let second = w.deploy(ETL_TOML);
    let lines: Vec<&str> = second.stdout.lines().collect();
    assert_eq!(lines.len(), 2, "second deploy: {second:#?}");
    for l in &lines {
        assert!(
            l.trim_start().starts_with("unchanged"),
            "second deploy only prints `unchanged`: {second:#?}"
        );
    }

    plan_shows_the_diff_and_changes_nothing(&w);
    a_typo_deploys_nothing(&w);

    // Parameters of the wrong type: exit 2, names the parameter, deploys nothing.
    let wrong = format!(
        "{}\n[deployments.fresh]\nflow = \"chain\"\n",
        ETL_TOML.replace("n = 5", "n = \"x\"")
    );
    w.write_toml(&wrong);
    let out = w.weir(&["deploy"]);
    assert_eq!(out.code, 2, "wrong type: {out:#?}");
    assert!(
        out.stderr.contains("parameter \"n\""),
        "names the parameter: {out:#?}"
    );
    assert!(
        out.stderr.contains("\"chain\""),
        "names the deployment: {out:#?}"
    );
    assert!(
        w.block_on(w.client.deployment("dev", "fresh")).is_err(),
        "dev/fresh must not exist"
    );
    let chain = w
        .block_on(w.client.deployment("dev", "chain"))
        .expect("read dev/chain");
    assert_eq!(chain.version, 1);
    assert_eq!(chain.spec.parameters["n"], 5);
}

/// A plain command deployment: a shell script reading `$WEIR_PARAMETERS`; its output is in
/// `weir logs`; exit code 3 makes the run Failed and `weir run --watch` exit 1.
#[test]
fn plain_command_deployment_logs_and_fails_by_exit_code() {
    let mut w = Weir::start(ServerOptions::default());
    let script = w.sb.path("project/greet.sh");
    std::fs::write(
        &script,
        r#"#!/bin/sh
greeting=$(printf '%s' "$WEIR_PARAMETERS" | sed -n 's/.*"greeting":"\([^"]*\)".*/\1/p')
code=$(printf '%s' "$WEIR_PARAMETERS" | sed -n 's/.*"code":\([0-9]*\).*/\1/p')
echo "greeting is $greeting"
echo "exiting with ${code:-0}" >&2
exit "${code:-0}"
"#,
    )
    .expect("write script");
    w.deploy(&format!(
        r#"
project = "dev"

[deployments.greet]
command = ["sh", "{}"]
plain = true
parameters = {{ greeting = "hola", code = 0 }}
"#,
        script.display()
    ));
    w.start_agent(2);

    // Exit 0: Completed, output in the logs.
    let ok = w.weir_timeout(&["run", "dev/greet", "--watch"], Duration::from_secs(30));
    assert_eq!(ok.code, 0, "{ok:#?}");
    let ok_id = created_id(&ok.stderr);
    let logs = w.weir(&["logs", &ok_id.to_string()]).ok();
    assert!(
        logs.stdout.contains("greeting is hola"),
        "weir logs: {logs:#?}"
    );

    // Exit 3: Failed, naming the exit code; --watch exits 1.
    let bad = w.weir_timeout(
        &[
            "run",
            "dev/greet",
            "--param",
            "greeting=hej",
            "--param",
            "code=3",
            "--watch",
        ],
        Duration::from_secs(30),
    );
    assert_eq!(bad.code, 1, "{bad:#?}");
    let id = created_id(&bad.stderr);
    let d = w.detail(id);
    assert_eq!(d.run.state, StateKind::Failed, "{}", common::describe(&d));
    let msg = d.run.state_message.clone().unwrap_or_default();
    assert!(
        msg.contains("exit code 3"),
        "message names exit code 3: {msg}"
    );
    let logs = w.weir(&["logs", &id.to_string()]).ok();
    assert!(
        logs.stdout.contains("greeting is hej"),
        "weir logs: {logs:#?}"
    );
    assert!(
        logs.stdout.contains("exiting with 3"),
        "stderr is logged too: {logs:#?}"
    );
}

/// Clear errors for an unknown deployment and a malformed run id.
#[test]
fn unknown_deployment_and_bad_run_id_are_clear_errors() {
    let w = Weir::start(ServerOptions::default());
    w.deploy(ETL_TOML);

    let out = w.weir(&["run", "dev/nope"]);
    assert_ne!(out.code, 0, "{out:#?}");
    assert!(
        out.stderr.contains("nope"),
        "names the deployment: {out:#?}"
    );
    assert!(
        out.stderr.contains("weir deployments ls"),
        "suggests `weir deployments ls`: {out:#?}"
    );
    let q = weir_client::RunQuery {
        project: Some("dev".into()),
        ..Default::default()
    };
    let runs = w
        .block_on(w.client.list_flow_runs(&q))
        .expect("list runs of dev");
    assert!(runs.items.is_empty(), "no run was created: {runs:?}");

    let out = w.weir(&["runs", "show", "not-a-uuid"]);
    assert_ne!(out.code, 0, "{out:#?}");
    assert!(
        out.stderr.contains("\"not-a-uuid\""),
        "names the input: {out:#?}"
    );
    assert!(out.stdout.is_empty(), "{out:#?}");
}

/// `weir up` smoke test: server + agent + example deployments in one process; runs etl;
/// SIGTERM stops it cleanly.
#[test]
fn weir_up_serves_runs_and_stops_on_sigterm() {
    let mut sb = Sandbox::new();
    let home = sb.path("up");
    let up = sb.spawn(
        "up",
        &["up", "--bind", "127.0.0.1:0", "--heartbeat-s", "1"],
        &home,
        &[],
    );
    let url = sb.wait_server_url(&home, Duration::from_secs(30));
    // The CLI finds the server through $WEIR_HOME/server.url, as a user's shell would.
    let cli = |args: &[&str]| sb.cli(None, &home, args, Duration::from_secs(60));

    let ls = wait_until(
        "`weir up` to deploy the examples",
        Duration::from_secs(30),
        || {
            let out = cli(&["deployments", "ls"]);
            // Registered one by one; dev/hello-docker is the file's last.
            if out.code == 0 && out.stdout.contains("dev/hello-docker") {
                Ok(out)
            } else {
                Err(format!("{out:?}"))
            }
        },
    );
    assert!(ls.stdout.contains("dev/etl"), "{ls:#?}");

    let out = cli(&["run", "dev/etl", "--watch"]);
    assert_eq!(out.code, 0, "weir run against `weir up` at {url}: {out:#?}");
    assert!(out.stdout.contains("\"total_cents\""), "{out:#?}");

    common::signal(sb.pid(up), "TERM");
    let code = sb.wait_exit(up, Duration::from_secs(10));
    assert_eq!(code, 0, "weir up exits 0 on SIGTERM; log: {}", sb.log(up));
}
