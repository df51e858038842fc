//! The process launcher against real child processes started through `/bin/sh`.

#![allow(clippy::unwrap_used)]

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::time::{Duration, Instant};
use uuid::Uuid;
use weir_agent::launcher::{
    ExitStatus, LaunchError, LaunchSpec, Launched, Launcher, MAX_LINE_BYTES, OutputLine,
    ProcessLauncher, Stream, is_alive,
};

/// Upper bound on anything a test waits for, so a bug fails instead of hanging.
const LIMIT: Duration = Duration::from_secs(20);

fn sh(script: &str) -> LaunchSpec {
    LaunchSpec {
        flow_run_id: Uuid::now_v7(),
        attempt: 1,
        argv: vec!["/bin/sh".into(), "-c".into(), script.into()],
        ..LaunchSpec::default()
    }
}

async fn launch(spec: LaunchSpec) -> Launched {
    ProcessLauncher::new().launch(spec).await.unwrap()
}

/// Reads all output, then waits.
async fn finish(launched: &mut Launched) -> (Vec<OutputLine>, ExitStatus) {
    tokio::time::timeout(LIMIT, async {
        let mut lines = Vec::new();
        while let Some(line) = launched.output.recv().await {
            lines.push(line);
        }
        (lines, launched.wait().await)
    })
    .await
    .expect("run did not finish in time")
}

async fn run(spec: LaunchSpec) -> (Vec<OutputLine>, ExitStatus) {
    finish(&mut launch(spec).await).await
}

fn texts(lines: &[OutputLine], stream: Stream) -> Vec<&str> {
    lines
        .iter()
        .filter(|l| l.stream == stream)
        .map(|l| l.text.as_str())
        .collect()
}

/// Next output line, whichever stream.
async fn next_line(launched: &mut Launched) -> String {
    tokio::time::timeout(LIMIT, launched.output.recv())
        .await
        .expect("no output in time")
        .expect("output closed")
        .text
}

#[tokio::test]
async fn captures_stdout_and_stderr_in_order_per_stream() {
    let (lines, status) = run(sh(
        "for i in $(seq 1 500); do echo out$i; echo err$i >&2; done",
    ))
    .await;
    assert_eq!(status, ExitStatus::Code(0));
    let want = |p: &str| (1..=500).map(|i| format!("{p}{i}")).collect::<Vec<_>>();
    assert_eq!(texts(&lines, Stream::Stdout), want("out"));
    assert_eq!(texts(&lines, Stream::Stderr), want("err"));
}

#[tokio::test]
async fn unterminated_last_line_and_crlf() {
    let (lines, _) = run(sh("printf 'one\\r\\ntwo'")).await;
    assert_eq!(texts(&lines, Stream::Stdout), ["one", "two"]);
}

#[tokio::test]
async fn reports_exit_codes() {
    let (_, ok) = run(sh("exit 0")).await;
    assert_eq!(ok, ExitStatus::Code(0));
    assert!(ok.success());
    let (_, failed) = run(sh("exit 3")).await;
    assert_eq!(failed, ExitStatus::Code(3));
    assert!(!failed.success());
    assert_eq!(failed.to_string(), "exit code 3");
}

#[tokio::test]
async fn id_is_the_pid_and_wait_can_be_repeated() {
    let mut launched = launch(sh("echo $$")).await;
    let (lines, status) = finish(&mut launched).await;
    assert_eq!(lines[0].text, launched.id());
    assert_eq!(launched.wait().await, status);
    // Cancelling a finished run does nothing.
    launched.canceller().cancel(Duration::ZERO);
    assert_eq!(launched.wait().await, ExitStatus::Code(0));
}

#[tokio::test]
async fn kill_from_outside_reports_signal() {
    let mut launched = launch(sh("echo ready; exec sleep 30")).await;
    assert_eq!(next_line(&mut launched).await, "ready");
    let pid: i32 = launched.id().parse().unwrap();
    kill(Pid::from_raw(pid), Signal::SIGKILL).unwrap();
    let (_, status) = finish(&mut launched).await;
    assert_eq!(status, ExitStatus::Signal(9));
    assert_eq!(status.to_string(), "killed by signal 9 (SIGKILL)");
}

#[tokio::test]
async fn cancel_escalates_to_sigkill_after_grace() {
    // Ignoring TERM in the shell also makes `sleep` ignore it.
    let mut launched = launch(sh("trap '' TERM; echo ready; sleep 30")).await;
    assert_eq!(next_line(&mut launched).await, "ready");
    let grace = Duration::from_millis(500);
    let started = Instant::now();
    launched.canceller().cancel(grace);
    let (_, status) = finish(&mut launched).await;
    let took = started.elapsed();
    assert_eq!(status, ExitStatus::Signal(9));
    assert!(took >= grace, "killed before the grace period: {took:?}");
    assert!(
        took < grace + Duration::from_secs(1),
        "took {took:?} for grace {grace:?}"
    );
}

#[tokio::test]
async fn cancel_kills_the_whole_pipeline() {
    let mut launched = launch(sh("echo $$; sleep 30 & echo $!; sleep 30 | cat")).await;
    let shell: u32 = next_line(&mut launched).await.parse().unwrap();
    let background: u32 = next_line(&mut launched).await.parse().unwrap();
    assert_eq!(shell.to_string(), launched.id());
    assert!(is_alive(background));
    let started = Instant::now();
    launched.canceller().cancel(Duration::from_secs(10));
    let (_, status) = finish(&mut launched).await;
    // SIGTERM was enough: no escalation.
    assert_eq!(status, ExitStatus::Signal(15));
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(!is_alive(shell));
    // The grandchild dies with the group; give its reaper a moment.
    let deadline = Instant::now() + Duration::from_secs(2);
    while is_alive(background) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        !is_alive(background),
        "background sleep {background} survived"
    );
}

#[tokio::test]
async fn output_held_open_by_a_leftover_process_is_cut_after_drain_timeout() {
    let launcher = ProcessLauncher::new().with_drain_timeout(Duration::from_millis(300));
    let mut launched = launcher
        .launch(sh("sleep 30 & echo $!; echo done"))
        .await
        .unwrap();
    let started = Instant::now();
    let (lines, status) = finish(&mut launched).await;
    assert_eq!(status, ExitStatus::Code(0));
    assert!(started.elapsed() < Duration::from_secs(2));
    let background: u32 = lines[0].text.parse().unwrap();
    let deadline = Instant::now() + Duration::from_secs(2);
    while is_alive(background) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        !is_alive(background),
        "leftover sleep {background} survived"
    );
}

#[tokio::test]
async fn output_held_open_outside_the_group_stops_being_read() {
    if !std::path::Path::new("/usr/bin/setsid").exists() {
        eprintln!("skipped: no /usr/bin/setsid");
        return;
    }
    let launcher = ProcessLauncher::new().with_drain_timeout(Duration::from_millis(200));
    // The escaped process leaves the group, so killing the group cannot close the pipe.
    let mut launched = launcher
        .launch(sh("/usr/bin/setsid /bin/sh -c 'sleep 3' & echo done"))
        .await
        .unwrap();
    let started = Instant::now();
    let (lines, status) = finish(&mut launched).await;
    assert_eq!(status, ExitStatus::Code(0));
    assert_eq!(texts(&lines, Stream::Stdout), ["done"]);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn missing_program_is_named() {
    let spec = LaunchSpec {
        argv: vec!["weir-test-no-such-program".into()],
        ..LaunchSpec::default()
    };
    let err = ProcessLauncher::new().launch(spec).await.unwrap_err();
    assert!(
        matches!(&err, LaunchError::ProgramNotFound { program } if program == "weir-test-no-such-program"),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .contains("`weir-test-no-such-program` not found")
    );
}

#[tokio::test]
async fn not_executable_is_permission_denied() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("flow.sh");
    std::fs::write(&script, "#!/bin/sh\necho hi\n").unwrap();
    let program = script.to_string_lossy().into_owned();
    let spec = LaunchSpec {
        argv: vec![program.clone()],
        ..LaunchSpec::default()
    };
    let err = ProcessLauncher::new().launch(spec).await.unwrap_err();
    assert!(
        matches!(&err, LaunchError::PermissionDenied { program: p } if *p == program),
        "{err:?}"
    );
    assert!(err.to_string().contains("chmod +x"));
}

#[tokio::test]
async fn bad_specs_are_rejected() {
    let launcher = ProcessLauncher::new();
    let err = launcher.launch(LaunchSpec::default()).await.unwrap_err();
    assert!(matches!(err, LaunchError::InvalidSpec(_)), "{err:?}");

    let mut spec = sh("true");
    spec.workdir = Some("/nonexistent/weir-test-dir".into());
    let err = launcher.launch(spec).await.unwrap_err();
    assert!(
        matches!(err, LaunchError::WorkdirNotFound { .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("/nonexistent/weir-test-dir"));
}

#[tokio::test]
async fn runs_in_workdir() {
    let dir = tempfile::tempdir().unwrap();
    let mut spec = sh("pwd -P");
    spec.workdir = Some(dir.path().to_owned());
    let (lines, _) = run(spec).await;
    let want = dir.path().canonicalize().unwrap();
    assert_eq!(lines[0].text, want.to_string_lossy());
}

#[tokio::test]
async fn secrets_are_redacted_in_both_streams() {
    let mut spec = sh("echo \"token=$TOKEN!\"; echo \"error: $TOKEN $TOKEN\" >&2; echo clean");
    spec.env.insert("TOKEN".into(), "s3cr3t-t0ken".into());
    spec.redact = vec!["s3cr3t-t0ken".into(), String::new()];
    let (lines, status) = run(spec).await;
    assert_eq!(status, ExitStatus::Code(0));
    assert_eq!(texts(&lines, Stream::Stdout), ["token=***!", "clean"]);
    assert_eq!(texts(&lines, Stream::Stderr), ["error: *** ***"]);
}

#[tokio::test]
async fn long_line_without_newline_is_split() {
    let (lines, status) = run(sh("head -c 1048576 /dev/zero | tr '\\0' x")).await;
    assert_eq!(status, ExitStatus::Code(0));
    assert!(lines.iter().all(|l| l.text.len() <= MAX_LINE_BYTES));
    assert_eq!(lines.len(), 1_048_576 / MAX_LINE_BYTES);
    assert_eq!(lines.iter().map(|l| l.text.len()).sum::<usize>(), 1_048_576);
    assert!(lines.iter().all(|l| l.text.bytes().all(|b| b == b'x')));
}

#[tokio::test]
async fn invalid_utf8_is_replaced() {
    let (lines, _) = run(sh("printf 'a\\377b\\n'")).await;
    assert_eq!(lines[0].text, "a\u{FFFD}b");
}

#[tokio::test]
async fn dropping_the_output_receiver_does_not_block_the_run() {
    let launcher = ProcessLauncher::new().with_output_capacity(4);
    let mut launched = launcher
        .launch(sh(
            "i=0; while [ $i -lt 20000 ]; do echo line $i; i=$((i+1)); done; exit 7",
        ))
        .await
        .unwrap();
    let (_tx, closed) = tokio::sync::mpsc::channel(1);
    drop(std::mem::replace(&mut launched.output, closed));
    let status = tokio::time::timeout(LIMIT, launched.wait()).await.unwrap();
    assert_eq!(status, ExitStatus::Code(7));
}

#[test]
fn exit_status_display() {
    assert_eq!(ExitStatus::Code(0).to_string(), "exit code 0");
    assert_eq!(
        ExitStatus::Signal(15).to_string(),
        "killed by signal 15 (SIGTERM)"
    );
    assert_eq!(ExitStatus::Signal(200).to_string(), "killed by signal 200");
    assert!(!ExitStatus::Unknown("lost".into()).success());
}
