//! The process launcher with an output spool, against real child processes: output goes to
//! files that outlive their reader, and a later reader ([`spool::follow`]) reads the same
//! lines under the same numbers.

#![allow(clippy::unwrap_used)]

use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};
use uuid::Uuid;
use weir_agent::launcher::{
    ExitStatus, LaunchSpec, Launched, Launcher, OutputLine, ProcessLauncher, Spool, Stream,
    is_alive, spool,
};

/// Upper bound on anything a test waits for, so a bug fails instead of hanging.
const LIMIT: Duration = Duration::from_secs(20);

fn sh(spool: &Spool, script: &str) -> LaunchSpec {
    LaunchSpec {
        flow_run_id: Uuid::now_v7(),
        attempt: 3,
        argv: vec!["/bin/sh".into(), "-c".into(), script.into()],
        spool: Some(spool.clone()),
        ..LaunchSpec::default()
    }
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

fn numbered(lines: &[OutputLine], stream: Stream) -> Vec<(Option<u64>, &str)> {
    lines
        .iter()
        .filter(|l| l.stream == stream)
        .map(|l| (l.seq, l.text.as_str()))
        .collect()
}

fn mode(path: &std::path::Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[tokio::test]
async fn spooled_output_is_numbered_redacted_and_private() {
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::new(dir.path().join("spool"));
    let mut spec = sh(
        &spool,
        "echo \"token=$TOKEN\"; echo oops >&2; echo \"again $TOKEN\" >&2; printf tail; exit 4",
    );
    spec.env.insert("TOKEN".into(), "s3cr3t-t0ken".into());
    spec.redact = vec!["s3cr3t-t0ken".into()];
    let (run, attempt) = (spec.flow_run_id, spec.attempt);
    let mut launched = ProcessLauncher::new().launch(spec).await.unwrap();
    let (lines, status) = finish(&mut launched).await;
    assert_eq!(
        status,
        ExitStatus::Code(4),
        "the exit code is the child's own"
    );
    assert_eq!(
        numbered(&lines, Stream::Stdout),
        [(Some(0), "token=***"), (Some(1), "tail")]
    );
    assert_eq!(
        numbered(&lines, Stream::Stderr),
        [(Some(0), "oops"), (Some(1), "again ***")]
    );
    let out = spool.path(run, attempt, Stream::Stdout);
    assert_eq!(mode(&out), 0o600);
    assert_eq!(mode(&spool.path(run, attempt, Stream::Stderr)), 0o600);
    assert_eq!(mode(out.parent().unwrap()), 0o700);
    assert_eq!(mode(spool.root()), 0o700);
    // The launcher leaves the files to the agent, which removes them once shipped.
    assert_eq!(spool.attempts(), vec![(run, attempt)]);
    spool.remove(run, attempt);
    assert!(spool.attempts().is_empty());
}

/// What an agent killed mid-run leaves behind: its reader gone, the process writing on (no
/// `EPIPE`: a file has no reader to lose). The agent that takes the run over reads the files
/// again from the start and gets every line under the number the first reader gave it.
#[tokio::test]
async fn output_written_after_its_reader_is_gone_is_read_again_under_the_same_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::new(dir.path().join("spool"));
    let spec = sh(
        &spool,
        "i=1; while [ $i -le 30 ]; do echo \"line $i\"; echo \"err $i\" >&2; i=$((i+1)); sleep 0.03; done; echo \"done $WEIR_T\"",
    );
    let mut spec = spec;
    spec.env.insert("WEIR_T".into(), "hush".into());
    spec.redact = vec!["hush".into()];
    let (run, attempt) = (spec.flow_run_id, spec.attempt);
    let mut first = ProcessLauncher::new().launch(spec).await.unwrap();
    let pid: u32 = first.id().parse().unwrap();
    let mut seen = Vec::new();
    while seen.len() < 5 {
        let line = tokio::time::timeout(LIMIT, first.output.recv())
            .await
            .unwrap()
            .unwrap();
        if line.stream == Stream::Stdout {
            seen.push((line.seq, line.text));
        }
    }
    drop(first);
    let mut again = spool::follow(
        &spool,
        run,
        attempt,
        pid,
        &["hush".to_string()],
        Duration::from_secs(2),
    );
    let (lines, status) = finish(&mut again).await;
    assert!(!is_alive(pid));
    assert!(
        matches!(status, ExitStatus::Unknown(_)),
        "not this reader's child: {status}"
    );
    let out: Vec<(Option<u64>, String)> = numbered(&lines, Stream::Stdout)
        .into_iter()
        .map(|(n, t)| (n, t.to_string()))
        .collect();
    let mut want: Vec<(Option<u64>, String)> = (1..=30)
        .map(|i| (Some(i - 1), format!("line {i}")))
        .collect();
    want.push((Some(30), "done ***".into()));
    assert_eq!(out, want, "every line, in order, numbered by its place");
    assert_eq!(
        &out[..5],
        &seen[..],
        "the same numbers as the first reader's"
    );
    assert_eq!(numbered(&lines, Stream::Stderr).len(), 30);
}

/// A process found gone: its files are read to the end at once; a run token in them is
/// redacted by its start even though its value is unknown.
#[tokio::test]
async fn a_spool_whose_process_is_gone_is_read_to_its_end() {
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::new(dir.path().join("spool"));
    let run = Uuid::now_v7();
    let (mut out, _) = spool.create(run, 2).unwrap();
    use std::io::Write;
    writeln!(out, "first").unwrap();
    writeln!(out, "key=weirrun_{}_2_0a1b2c3d secret=pw1", run.simple()).unwrap();
    write!(out, "unterminated").unwrap();
    drop(out);
    let mut launched = spool::follow(&spool, run, 2, 0, &["pw1".into()], Duration::from_secs(2));
    let (lines, _) = finish(&mut launched).await;
    assert_eq!(
        numbered(&lines, Stream::Stdout),
        [
            (Some(0), "first"),
            (Some(1), "key=*** secret=***"),
            (Some(2), "unterminated")
        ]
    );
    assert!(numbered(&lines, Stream::Stderr).is_empty());
}

#[tokio::test]
async fn a_leftover_process_in_the_group_is_killed_after_the_drain_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::new(dir.path().join("spool"));
    let launcher = ProcessLauncher::new().with_drain_timeout(Duration::from_millis(300));
    // `finish` gives up long before the leftover's 30 s.
    let mut launched = launcher
        .launch(sh(&spool, "sleep 30 & echo $!; echo bye"))
        .await
        .unwrap();
    let (lines, status) = finish(&mut launched).await;
    assert_eq!(status, ExitStatus::Code(0));
    let background: u32 = lines[0].text.parse().unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while is_alive(background) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        !is_alive(background),
        "leftover sleep {background} survived"
    );
    assert_eq!(lines[1].text, "bye");
}

/// The end of a run is its process group's end, not the drain timeout (here far beyond
/// `finish`'s limit).
#[tokio::test]
async fn a_run_without_leftovers_ends_with_its_process() {
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::new(dir.path().join("spool"));
    let mut launched = ProcessLauncher::new()
        .with_drain_timeout(Duration::from_secs(600))
        .launch(sh(&spool, "echo one; exit 0"))
        .await
        .unwrap();
    let (lines, status) = finish(&mut launched).await;
    assert_eq!(status, ExitStatus::Code(0));
    assert_eq!(numbered(&lines, Stream::Stdout), [(Some(0), "one")]);
}
