//! `weir supervise`: the small parent a local plain command runs under, so that its exit
//! status outlives the agent that launched it.
//!
//! A plain command (a deployment with `plain = true`, no SDK) reports nothing itself: its state
//! is its exit status, which only its parent can read. When the agent that launched it is
//! killed, the command is re-parented and its status goes to whoever reaps it; the agent that
//! takes the run over could only guess. So the agent launches it as
//! `<supervisor> --exit-file <state dir>/outcomes/<run>-<attempt>.exit -- CMD…`: the supervisor
//! starts the command in its own process group (the group the agent signals), waits for it,
//! and writes how it ended to the exit file before exiting itself. Whichever agent settles the
//! attempt — the one that launched it, or the one that took it over after a restart — reads
//! its end from that file ([`read`]).
//!
//! - Signals: SIGTERM, SIGINT and SIGHUP reach the command through its process group; the
//!   supervisor only outlives them (a handler, not an ignored signal, so the command keeps the
//!   default actions) to record the command's end. SIGKILL of the group (fencing, the end of a
//!   cancel's grace) kills both: no file, and the agent reports how the supervisor ended.
//! - It exits with the command's code (128 + signal when the command was killed), 127 when the
//!   program cannot be found, 126 when it cannot be started.
//! - Output and environment are the command's: it inherits the supervisor's (the spool files,
//!   the run's environment).

use crate::launcher::ExitStatus;
use std::path::Path;
use tokio::signal::unix::{Signal, SignalKind, signal};

/// Runs `argv` as described in the module docs, writing its end to `exit_file`; returns the
/// supervisor's own exit code.
pub async fn run(exit_file: &Path, argv: &[String]) -> i32 {
    // First, so no signal meant for the command can end the supervisor once it started.
    let handle = |kind: SignalKind| match signal(kind) {
        Ok(s) => Some(s),
        Err(e) => {
            eprintln!("weir supervise: cannot handle signal {kind:?}: {e}");
            None
        }
    };
    let mut term = handle(SignalKind::terminate());
    let mut int = handle(SignalKind::interrupt());
    let mut hup = handle(SignalKind::hangup());
    let Some((program, args)) = argv.split_first() else {
        eprintln!("weir supervise: no command given: pass it after `--`");
        return 2;
    };
    let mut child = match tokio::process::Command::new(program)
        .args(args)
        .kill_on_drop(false)
        .spawn()
    {
        Ok(c) => c,
        Err(e) => {
            let (code, what) = if e.kind() == std::io::ErrorKind::NotFound {
                (127, format!("program not found: {program}"))
            } else {
                (126, format!("cannot start {program}: {e}"))
            };
            eprintln!("weir supervise: {what}");
            write(exit_file, &Ended::Unstarted(what));
            return code;
        }
    };
    let waited = loop {
        tokio::select! {
            waited = child.wait() => break waited,
            // The process group got it too: keep waiting for the command's end.
            Some(()) = arrival(&mut term) => {}
            Some(()) = arrival(&mut int) => {}
            Some(()) = arrival(&mut hup) => {}
        }
    };
    let ended = match waited {
        Ok(status) => {
            use std::os::unix::process::ExitStatusExt;
            match (status.code(), status.signal()) {
                (Some(code), _) => Ended::Code(code),
                (None, Some(sig)) => Ended::Signal(sig),
                (None, None) => Ended::Unstarted(format!("unknown exit status {status}")),
            }
        }
        Err(e) => {
            eprintln!("weir supervise: waiting for {program} failed: {e}");
            return 1;
        }
    };
    write(exit_file, &ended);
    match ended {
        Ended::Code(code) => code,
        Ended::Signal(sig) => 128 + sig,
        Ended::Unstarted(_) => 1,
    }
}

/// The next arrival of a handled signal; never when it is not handled.
async fn arrival(s: &mut Option<Signal>) -> Option<()> {
    match s {
        Some(s) => s.recv().await,
        None => std::future::pending().await,
    }
}

/// How a supervised command ended, as its exit file says.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
enum Ended {
    Code(i32),
    Signal(i32),
    /// It never started (or its status could not be read): why.
    Unstarted(String),
}

/// Writes the exit file atomically (a reader sees all of it or nothing).
fn write(exit_file: &Path, ended: &Ended) {
    let Ok(text) = serde_json::to_vec(ended) else {
        return;
    };
    let tmp = exit_file.with_extension("exit.tmp");
    let written = std::fs::write(&tmp, text).and_then(|()| std::fs::rename(&tmp, exit_file));
    if let Err(e) = written {
        eprintln!(
            "weir supervise: cannot record the command's end in {}: {e}",
            exit_file.display()
        );
    }
}

/// The end a supervisor recorded in `exit_file`, if it did.
pub(crate) fn read(exit_file: &Path) -> Option<ExitStatus> {
    let text = std::fs::read(exit_file).ok()?;
    Some(match serde_json::from_slice::<Ended>(&text).ok()? {
        Ended::Code(code) => ExitStatus::Code(code),
        Ended::Signal(sig) => ExitStatus::Signal(sig),
        Ended::Unstarted(why) => ExitStatus::Stopped(format!("the command did not start: {why}")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn supervise(argv: &[&str]) -> (i32, Option<ExitStatus>) {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("r-1.exit");
        let argv: Vec<String> = argv.iter().map(|s| s.to_string()).collect();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let code = rt.block_on(run(&file, &argv));
        (code, read(&file))
    }

    #[test]
    fn records_the_commands_exit_code_and_exits_with_it() {
        assert_eq!(
            supervise(&["sh", "-c", "exit 3"]),
            (3, Some(ExitStatus::Code(3)))
        );
        assert_eq!(supervise(&["true"]), (0, Some(ExitStatus::Code(0))));
    }

    #[test]
    fn records_the_signal_that_killed_the_command() {
        assert_eq!(
            supervise(&["sh", "-c", "kill -9 $$"]),
            (137, Some(ExitStatus::Signal(9)))
        );
    }

    #[test]
    fn a_missing_program_is_recorded_as_not_started() {
        let (code, end) = supervise(&["weir-test-no-such-program"]);
        assert_eq!(code, 127);
        assert!(
            matches!(&end, Some(ExitStatus::Stopped(why)) if why.contains("program not found: weir-test-no-such-program")),
            "{end:?}"
        );
    }
}
