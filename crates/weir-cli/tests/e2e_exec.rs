//! End to end: `weir exec -- CMD…`, the shim that reports a command without an SDK as its
//! flow run, launched by a real agent as a local process (the Docker tests run it in a
//! container): logs once each and in order, secrets and the run token redacted, exit codes and
//! signals as states, cancellation, and a clear error when the launch environment is missing.

mod common;

use common::{ServerOptions, Weir};
use std::time::{Duration, Instant};
use uuid::Uuid;
use weir_core::StateKind;
use weir_core::api::Parameters;

fn exec_weir() -> Weir {
    let mut w = Weir::start(ServerOptions::default());
    let weir = common::weir_bin().display().to_string();
    let shell = |script: &str| {
        format!(r#"["{weir}", "exec", "--grace-s", "1", "--", "sh", "-c", {script:?}]"#)
    };
    w.deploy(&format!(
        r#"
project = "dev"

[defaults]
plain = true

[deployments.lines]
command = {lines}
secrets = {{ CANARY = "env:EXEC_TEST_CANARY" }}

[deployments.exit3]
command = {exit3}

[deployments.killed]
command = {killed}

[deployments.sleeper]
command = {sleeper}
"#,
        lines = shell(
            "for i in 1 2 3 4 5; do echo line $i; done; echo \"secret=$CANARY token=$WEIR_API_KEY\"; echo on-stderr >&2"
        ),
        exit3 = shell("echo failing; exit 3"),
        killed = shell("kill -9 $$"),
        sleeper = shell("echo started; sleep 30"),
    ));
    let home = w.sb.path("agent");
    w.start_agent_with(&home, 4, &[], &[("EXEC_TEST_CANARY", "hunter2-canary")]);
    w
}

/// The run's log messages, in order.
fn messages(w: &Weir, id: Uuid) -> Vec<String> {
    let page = w
        .block_on(w.client.logs(id, 0, 1000))
        .expect("read the run's logs");
    page.items.into_iter().map(|l| l.message).collect()
}

#[test]
fn exec_reports_logs_states_and_cancellation() {
    let w = exec_weir();

    let ok = w.create_run("dev", "lines", Parameters::new());
    let d = w.wait_terminal(ok.id, Duration::from_secs(30));
    assert_eq!(
        d.run.state,
        StateKind::Completed,
        "{}",
        common::describe(&d)
    );
    let logs = messages(&w, ok.id);
    let lines: Vec<&String> = logs.iter().filter(|m| m.starts_with("line ")).collect();
    let expected: Vec<String> = (1..=5).map(|i| format!("line {i}")).collect();
    assert_eq!(
        lines,
        expected.iter().collect::<Vec<_>>(),
        "once each, in order: {logs:#?}"
    );
    assert!(logs.contains(&"secret=*** token=".to_string()), "{logs:#?}");
    assert!(logs.contains(&"on-stderr".to_string()), "{logs:#?}");
    assert!(
        !logs
            .iter()
            .any(|m| m.contains("hunter2") || m.contains("weirrun_")),
        "{logs:#?}"
    );

    let bad = w.create_run("dev", "exit3", Parameters::new());
    let d = w.wait_terminal(bad.id, Duration::from_secs(30));
    assert_eq!(d.run.state, StateKind::Failed, "{}", common::describe(&d));
    let msg = d.run.state_message.clone().unwrap_or_default();
    assert!(msg.contains("exit code 3"), "{msg}");
    assert_eq!(messages(&w, bad.id), ["failing"]);

    let killed = w.create_run("dev", "killed", Parameters::new());
    let d = w.wait_terminal(killed.id, Duration::from_secs(30));
    assert_eq!(d.run.state, StateKind::Crashed, "{}", common::describe(&d));
    let msg = d.run.state_message.clone().unwrap_or_default();
    assert!(msg.contains("killed by signal 9 (SIGKILL)"), "{msg}");

    let slow = w.create_run("dev", "sleeper", Parameters::new());
    common::wait_until("the command to start", Duration::from_secs(30), || {
        let logs = messages(&w, slow.id);
        if logs.contains(&"started".to_string()) {
            Ok(())
        } else {
            Err(format!("{logs:?}"))
        }
    });
    let asked = Instant::now();
    w.weir(&["runs", "cancel", &slow.id.to_string()]).ok();
    let d = w.wait_terminal(slow.id, Duration::from_secs(20));
    assert_eq!(
        d.run.state,
        StateKind::Cancelled,
        "{}",
        common::describe(&d)
    );
    // Agent grace 2 s (the shim's is 1 s), plus 2 s.
    assert!(
        asked.elapsed() < Duration::from_secs(4),
        "cancelled in {:?}",
        asked.elapsed()
    );
}

/// Without the launch environment `weir exec` runs nothing and names the variable.
#[test]
fn exec_without_a_run_names_the_missing_variable() {
    let sb = common::Sandbox::new();
    let marker = sb.path("ran");
    let script = format!("touch {}", marker.display());
    let run = |env: &[(&str, &str)]| {
        let out = std::process::Command::new(common::weir_bin())
            .args(["exec", "--", "sh", "-c", &script])
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(env.iter().copied())
            .output()
            .expect("run weir exec");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    let (code, stderr) = run(&[]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("WEIR_API_URL is not set"), "{stderr}");
    let url = ("WEIR_API_URL", "http://127.0.0.1:9");
    let key = ("WEIR_API_KEY", "weirrun_x");
    let (code, stderr) = run(&[url, key]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("WEIR_FLOW_RUN_ID is not set"), "{stderr}");
    let (code, stderr) = run(&[url, key, ("WEIR_FLOW_RUN_ID", "run-7")]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("invalid WEIR_FLOW_RUN_ID=\"run-7\""),
        "{stderr}"
    );
    assert!(!marker.exists(), "nothing ran");
}
