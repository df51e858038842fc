//! End to end: an `ssm:` secret reference resolved by a real `weir agent` (built with the
//! `aws` feature) against a local AWS-compatible endpoint (moto), injected into a plain
//! command's environment — and found nowhere else: not in logs, API responses, the SQLite
//! database or any process's output.
//!
//! Needs `cargo build --workspace --bins --features weir-cli/aws` and
//! `eval "$(scripts/test-moto.sh)"` (`WEIR_TEST_AWS_ENDPOINT`); scripts/test.sh does both.
//! Without the endpoint the test prints "skipped" and passes, except when `CI` is set.

#![cfg(feature = "aws")]

mod common;

use common::{ServerOptions, Weir};
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;
use uuid::Uuid;
use weir_core::StateKind;

/// The hex SHA-256 of `text`, by the same `sha256sum` the flow's shell uses.
fn sha256_hex(text: &str) -> String {
    let mut child = Command::new("sha256sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("run sha256sum");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("write to sha256sum");
    let out = child.wait_with_output().expect("sha256sum output");
    String::from_utf8(out.stdout)
        .expect("utf-8")
        .split_whitespace()
        .next()
        .expect("a digest")
        .to_string()
}

/// Every file under `dir` (recursively) whose bytes contain `needle`.
fn files_containing(dir: &Path, needle: &[u8]) -> Vec<String> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return found;
    };
    for e in entries.flatten() {
        let path = e.path();
        if path.is_dir() {
            found.extend(files_containing(&path, needle));
        } else if let Ok(bytes) = std::fs::read(&path)
            && bytes.windows(needle.len()).any(|w| w == needle)
        {
            found.push(path.display().to_string());
        }
    }
    found
}

/// The id in `created flow run <id> (…)`, which `weir run` prints on stderr.
fn created_id(stderr: &str) -> Uuid {
    stderr
        .lines()
        .find_map(|l| l.strip_prefix("created flow run "))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|id| Uuid::parse_str(id).ok())
        .unwrap_or_else(|| panic!("no `created flow run ID` line in: {stderr}"))
}

/// Project `p`: deployment `d`, a command that prints `seen=$CANARY` and checks its SHA-256
/// against `value`'s, with `CANARY` from `ssm:/weir/test/canary`; and deployment `missing`,
/// whose `CANARY` references parameter `missing`, which does not exist.
fn canary_deployments(value: &str, missing: &str) -> String {
    let check = format!(
        r#"echo seen=$CANARY; test "$(printf %s "$CANARY" | sha256sum | cut -d' ' -f1)" = "{}""#,
        sha256_hex(value)
    );
    format!(
        r#"
project = "p"

[deployments.d]
command = ["sh", "-c", {check:?}]
plain = true
secrets = {{ CANARY = "ssm:/weir/test/canary" }}

[deployments.missing]
command = ["sh", "-c", "echo should not start"]
plain = true
secrets = {{ CANARY = "ssm:{missing}" }}
"#
    )
}

/// A SecureString in SSM reaches a plain command as `$CANARY` (the command checks its
/// SHA-256, so the value itself is in no deployment); the run Completes; the output line
/// reads `seen=***`; and the value is in no API response, log, database byte or file of the
/// sandbox. A reference to a missing parameter fails the run, naming the reference.
#[test]
fn ssm_secret_reaches_the_flow_and_nowhere_else() {
    let Some(endpoint) =
        weir_testkit::moto::endpoint("ssm_secret_reaches_the_flow_and_nowhere_else")
    else {
        return;
    };
    let value = format!("canary-{}", Uuid::now_v7().simple());
    let missing = format!("/weir/test/missing-{}", Uuid::now_v7().simple());

    let mut w = Weir::start(ServerOptions::default());
    w.block_on(async {
        let config = weir_testkit::moto::sdk_config(&endpoint).await;
        weir_testkit::moto::put_secure_string(&config, "/weir/test/canary", &value).await;
    });

    w.deploy(&canary_deployments(&value, &missing));

    // An agent configured for AWS by the standard environment only, as in production.
    let home = w.sb.path("agent-aws");
    let agent = w.start_agent_env(&home, 2, &weir_testkit::moto::client_env(&endpoint));

    let run = w.weir_timeout(&["run", "p/d", "--watch"], Duration::from_secs(90));
    assert_eq!(
        run.code, 0,
        "the flow saw the secret and Completed: {run:#?}"
    );
    let id = created_id(&run.stderr);
    let detail = w.wait_state(id, StateKind::Completed, Duration::from_secs(10));
    assert_eq!(detail.run.state, StateKind::Completed);

    let logs = w.weir(&["logs", &id.to_string()]).ok();
    assert!(
        logs.stdout
            .lines()
            .any(|l| l.trim_end().ends_with("seen=***")),
        "the secret is redacted in the logs: {logs:#?}"
    );

    // A missing parameter: the run fails before starting, naming the reference.
    let failed = w.weir_timeout(&["run", "p/missing", "--watch"], Duration::from_secs(90));
    assert_ne!(failed.code, 0, "{failed:#?}");
    let failed_id = created_id(&failed.stderr);
    let d = w.wait_state(failed_id, StateKind::Failed, Duration::from_secs(10));
    let message = d.run.state_message.clone().unwrap_or_default();
    assert!(
        message.contains(&format!("ssm:{missing}")) && message.contains("not found"),
        "the failure names the reference: {message:?}"
    );

    // The value appears nowhere else.
    let shows = [
        w.weir(&["--json", "runs", "show", &id.to_string()]).ok(),
        w.weir(&["--json", "deployments", "ls"]).ok(),
        w.weir(&["--json", "runs", "ls"]).ok(),
        w.weir(&["--json", "logs", &id.to_string()]).ok(),
    ];
    for out in shows.iter().chain([&run, &logs, &failed]) {
        assert!(
            !out.stdout.contains(&value) && !out.stderr.contains(&value),
            "the secret value leaked into CLI/API output: {out:#?}"
        );
    }
    assert!(
        shows[1].stdout.contains("ssm:/weir/test/canary"),
        "deployments show the reference: {}",
        shows[1].stdout
    );
    let agent_log = w.agent_log(agent);
    assert!(
        !agent_log.contains(&value),
        "the agent's output has the value: {agent_log}"
    );
    assert!(
        !w.server_log().contains(&value),
        "the server's output has the value"
    );
    // Every byte under the sandbox: the SQLite database and its WAL, every process's log,
    // the agent's state directory, weir.toml, CLI outputs.
    let db = w.sb.path("server/weir.db");
    assert!(db.exists(), "the server's database is at {}", db.display());
    let leaks = files_containing(w.sb.root(), value.as_bytes());
    assert!(leaks.is_empty(), "the secret value is in {leaks:?}");
}
