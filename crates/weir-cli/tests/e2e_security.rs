//! End-to-end security with real processes (see `common/mod.rs`): API keys through the `weir`
//! CLI (a viewer reads but cannot run; revocation is immediate; the audit log lists it), and
//! a canary secret that must never leave the run: neither in logs, nor in any API answer,
//! nor in the database files, nor in the agent's or server's output.
//!
//! Needs `cargo build --workspace --bins` first (for `example-flows`).

mod common;

use common::{Output, ServerOptions, Weir};
use std::path::{Path, PathBuf};
use std::time::Duration;
use uuid::Uuid;
use weir_core::StateKind;

/// A flows-binary deployment `dev/etl`.
const ETL_TOML: &str = r#"
project = "dev"

[deployments.etl]
command = ["{flows}"]
"#;

/// A plain command that prints its secret, writes it to stderr and fails; and the example
/// flow `leaky`, which logs its secret through tracing and fails with it.
const CANARY_TOML: &str = r#"
project = "dev"

[deployments.canary]
command = ["sh", "-c", "echo value=$CANARY; echo $CANARY >&2; exit 3"]
plain = true
secrets = { CANARY = "env:WEIR_TEST_CANARY_SRC" }

[deployments.leaky]
command = ["{flows}"]
secrets = { CANARY = "env:WEIR_TEST_CANARY_SRC" }
"#;

/// `weir run TARGET` (no `--watch`) as the admin: the new run's id.
fn start_run(w: &Weir, target: &str) -> Uuid {
    let out = w.weir(&["run", target]).ok();
    Uuid::parse_str(out.stdout.trim())
        .unwrap_or_else(|_| panic!("`weir run` did not print a run id: {out:#?}"))
}

/// Every file under `dir` (recursively) whose bytes contain `needle`.
fn files_containing(dir: &Path, needle: &[u8]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in entries.flatten() {
        let path = e.path();
        if path.is_dir() {
            out.extend(files_containing(&path, needle));
        } else if let Ok(bytes) = std::fs::read(&path)
            && bytes.windows(needle.len()).any(|w| w == needle)
        {
            out.push(path);
        }
    }
    out
}

/// A viewer key created with `weir keys create` lists runs but cannot start one (403); once
/// `weir keys revoke` ran, its next command gets 401; `weir audit` shows both actions.
#[test]
fn viewer_key_reads_cannot_run_and_revocation_is_immediate() {
    let w = Weir::start(ServerOptions::default());
    w.deploy(ETL_TOML);
    let created = w
        .weir(&["keys", "create", "--name", "v", "--role", "viewer"])
        .ok();
    let key = created.stdout.trim().to_string();
    let (id, _) = weir_core::auth::parse_key(&key)
        .unwrap_or_else(|| panic!("`weir keys create` prints exactly the key: {created:#?}"));
    let id = id.to_string();
    assert!(
        created.stderr.contains(&id) && created.stderr.contains("viewer"),
        "{created:#?}"
    );
    let as_viewer = |args: &[&str]| -> Output { w.weir_as(&key, args, Duration::from_secs(60)) };

    let ls = as_viewer(&["runs", "ls"]);
    assert_eq!(ls.code, 0, "a viewer lists runs: {ls:#?}");
    let run = as_viewer(&["run", "dev/etl"]);
    assert_ne!(run.code, 0, "a viewer cannot start a run: {run:#?}");
    assert!(
        run.stderr.contains("403") && run.stderr.contains("viewer"),
        "names the refusal and the role: {run:#?}"
    );
    assert!(
        w.all_runs("dev", "etl").is_empty(),
        "no run was created by the refused command"
    );
    let keys = w.weir(&["keys", "ls"]).ok();
    assert!(
        keys.stdout
            .lines()
            .any(|l| l.contains(&id) && l.contains("active")),
        "{keys:#?}"
    );
    assert!(!keys.stdout.contains(&key), "keys ls never shows a secret");

    let audit = as_viewer(&["audit"]);
    assert_ne!(
        audit.code, 0,
        "a viewer does not read the audit log: {audit:#?}"
    );
    assert!(audit.stderr.contains("403"), "{audit:#?}");

    let revoked = w.weir(&["keys", "revoke", &id]).ok();
    assert!(revoked.stdout.contains(&id), "{revoked:#?}");
    let ls = as_viewer(&["runs", "ls"]);
    assert_ne!(ls.code, 0, "the revoked key is refused at once: {ls:#?}");
    assert!(ls.stderr.contains("401"), "{ls:#?}");
    let keys = w.weir(&["keys", "ls"]).ok();
    assert!(
        keys.stdout
            .lines()
            .any(|l| l.contains(&id) && l.contains("revoked")),
        "{keys:#?}"
    );

    let audit = w.weir(&["audit"]).ok();
    for action in ["deploy", "key.create", "key.revoke"] {
        assert!(
            audit
                .stdout
                .lines()
                .any(|l| l.contains(action) && l.contains("local-admin")),
            "`weir audit` lists {action} by the admin: {audit:#?}"
        );
    }
    assert!(
        audit
            .stdout
            .lines()
            .any(|l| l.contains("key.revoke") && l.contains(&id)),
        "{audit:#?}"
    );
}

/// A secret resolved by the agent from its own environment reaches the run as `$CANARY`; the
/// run prints it, writes it to stderr, logs it through the SDK and fails with it. The value
/// must appear nowhere outside the run: `weir logs` shows `***`, and no API answer, database
/// file, process output or other file in the sandbox holds it.
#[test]
fn canary_secret_never_leaves_the_run() {
    let mut w = Weir::start(ServerOptions::default());
    let canary = format!("canary-{}", Uuid::now_v7().simple());
    w.deploy(CANARY_TOML);
    let home = w.sb.path("agent-canary");
    let agent = w.start_agent_env(&home, 2, &[("WEIR_TEST_CANARY_SRC", &canary)]);

    let (plain, logs) = the_plain_command_is_redacted(&w);
    let (sdk, sdk_logs) = the_sdk_flow_is_redacted(&w);

    // Every answer of the API about these runs and deployments.
    let mut answers: Vec<(String, String)> = Vec::new();
    for id in [plain, sdk] {
        answers.extend(run_answers(&w, id));
    }
    answers.extend(listing_answers(&w));
    for args in [
        vec!["--json", "runs", "show", &plain.to_string()],
        vec!["--json", "runs", "show", &sdk.to_string()],
        vec!["--json", "logs", &sdk.to_string()],
        vec!["--json", "deployments", "ls"],
    ] {
        let out = w.weir(&args).ok();
        answers.push((args.join(" "), format!("{}{}", out.stdout, out.stderr)));
    }
    answers.push((
        "weir logs".into(),
        format!("{}{}", logs.stdout, sdk_logs.stdout),
    ));
    no_answer_holds_the_secret(&answers, &canary);

    // The processes' own output, and every byte under the sandbox: the SQLite database and
    // its WAL, every process's log, the agents' state directories, CLI outputs.
    assert!(!w.agent_log(agent).contains(&canary), "agent output");
    assert!(!w.server_log().contains(&canary), "server output");
    let db = w.sb.path("server/weir.db");
    assert!(db.exists(), "the server's database is at {}", db.display());
    let leaks = files_containing(w.sb.root(), canary.as_bytes());
    assert!(leaks.is_empty(), "the secret value is in {leaks:?}");
}

/// The plain command: fails by its exit code, its output redacted. Its run and `weir logs`.
fn the_plain_command_is_redacted(w: &Weir) -> (Uuid, Output) {
    let plain = start_run(w, "dev/canary");
    let d = w.wait_terminal(plain, Duration::from_secs(30));
    assert_eq!(d.run.state, StateKind::Failed, "{}", common::describe(&d));
    let logs = w.weir(&["logs", &plain.to_string()]).ok();
    assert!(
        logs.stdout
            .lines()
            .any(|l| l.trim_end().ends_with("value=***")),
        "stdout is redacted: {logs:#?}"
    );
    assert!(
        logs.stdout.lines().any(|l| l.trim_end().ends_with(" ***")),
        "stderr is redacted: {logs:#?}"
    );
    (plain, logs)
}

/// The SDK flow: its tracing line, its printed line and its error are redacted. Its run and
/// `weir logs`.
fn the_sdk_flow_is_redacted(w: &Weir) -> (Uuid, Output) {
    let sdk = start_run(w, "dev/leaky");
    let d = w.wait_terminal(sdk, Duration::from_secs(30));
    assert_eq!(d.run.state, StateKind::Failed, "{}", common::describe(&d));
    let message = d.run.state_message.clone().unwrap_or_default();
    assert!(
        message.contains("token *** was refused"),
        "the error is redacted: {}",
        common::describe(&d)
    );
    let sdk_logs = w.weir(&["logs", &sdk.to_string()]).ok();
    for what in ["using token", "printed token"] {
        let lines: Vec<&str> = sdk_logs
            .stdout
            .lines()
            .filter(|l| l.contains(what))
            .collect();
        assert!(!lines.is_empty(), "{what}: {sdk_logs:#?}");
        assert!(
            lines.iter().all(|l| l.contains(&format!("{what} ***"))),
            "{what} is redacted: {lines:?}"
        );
    }
    (sdk, sdk_logs)
}

/// The API's answers about run `id`: the run, its logs, its task runs, and each task run with
/// its state history, each named.
fn run_answers(w: &Weir, id: Uuid) -> Vec<(String, String)> {
    let c = &w.client;
    let mut answers = vec![
        (
            format!("run {id}"),
            to_json(&w.block_on(c.flow_run(id)).expect("run")),
        ),
        (
            format!("logs {id}"),
            to_json(&w.block_on(c.logs(id, 0, 1000)).expect("logs")),
        ),
    ];
    let tasks = w.block_on(c.task_runs(id, None, 1000)).expect("task runs");
    answers.push((format!("task runs {id}"), to_json(&tasks)));
    // Each task run with its state history (no typed method: raw HTTP).
    for t in &tasks.items {
        let url = format!("{}/api/v1/task_runs/{}", w.url, t.id);
        let text = w.block_on(async {
            let resp = reqwest::Client::new()
                .get(&url)
                .bearer_auth(&w.admin_key)
                .send()
                .await
                .expect("GET task run");
            assert_eq!(resp.status().as_u16(), 200, "GET {url}");
            resp.text().await.expect("body")
        });
        answers.push((format!("task run {}", t.id), text));
    }
    answers
}

/// The API's listings, each named: deployments, runs, the audit log and agents.
fn listing_answers(w: &Weir) -> Vec<(String, String)> {
    let c = &w.client;
    let q = weir_client::RunQuery::default();
    vec![
        (
            "deployments".into(),
            to_json(&w.block_on(c.deployments(None)).expect("deployments")),
        ),
        (
            "runs".into(),
            to_json(&w.block_on(c.list_flow_runs(&q)).expect("runs")),
        ),
        (
            "audit".into(),
            to_json(&w.block_on(c.audit(None, 1000)).expect("audit")),
        ),
        (
            "agents".into(),
            to_json(&w.block_on(c.agents()).expect("agents")),
        ),
    ]
}

/// No answer holds `canary`, and the answers are the real ones: the failed task run's history
/// (redacted), how the first run ended, the deployments' secret reference.
fn no_answer_holds_the_secret(answers: &[(String, String)], canary: &str) {
    assert!(
        answers
            .iter()
            .any(|(what, t)| what.starts_with("task run ") && t.contains("token *** was refused")),
        "the failed task run's history is there, redacted"
    );
    for (what, text) in answers {
        assert!(
            !text.contains(canary),
            "the secret value is in {what}: {text}"
        );
    }
    assert!(
        answers[0].1.contains("exit"),
        "the run says how it ended: {}",
        answers[0].1
    );
    assert!(
        answers
            .iter()
            .any(|(_, t)| t.contains("env:WEIR_TEST_CANARY_SRC")),
        "deployments show the reference"
    );
}

/// The JSON text of an API answer, to search it.
fn to_json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).expect("serialisable")
}

/// The run token an agent hands its flow process (`WEIR_API_KEY=weirrun_…`) is a
/// credential: a program printing its environment shows `***` in the run's logs (the agent
/// redacts it from captured output; the SDK also redacts it from what a flows binary reports).
#[test]
fn run_token_is_redacted_from_captured_output() {
    let mut w = Weir::start(ServerOptions::default());
    w.start_agent(2);
    w.deploy(
        r#"
project = "dev"

[deployments.env]
command = ["sh", "-c", "echo token=$WEIR_API_KEY; env | grep WEIR_API_KEY >&2"]
plain = true
"#,
    );
    let id = start_run(&w, "dev/env");
    let d = w.wait_terminal(id, Duration::from_secs(30));
    assert_eq!(
        d.run.state,
        StateKind::Completed,
        "{}",
        common::describe(&d)
    );
    let logs = w
        .block_on(w.client.logs(id, 0, 100))
        .expect("logs")
        .items
        .into_iter()
        .map(|l| l.message)
        .collect::<Vec<_>>();
    assert!(logs.iter().any(|m| m == "token=***"), "{logs:?}");
    assert!(
        logs.iter().all(|m| !m.contains("weirrun_")),
        "no run token in the logs: {logs:?}"
    );
}
