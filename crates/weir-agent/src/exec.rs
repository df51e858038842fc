//! `weir exec -- CMD…`: runs a command that uses no SDK as the flow run it was launched for.
//!
//! The shim reads its run from the launch environment ([`ReportingEnv`]), runs the command as a
//! child process (its own process group, through the [`ProcessLauncher`], so its output is cut
//! and redacted like every launcher's), and reports everything itself over HTTP with the
//! per-run token: the command's output lines as log lines, heartbeats at the contract's
//! cadence, and the final state from how the command ended. So it works where no agent reads
//! the container's output (an ECS task) and keeps working when its agent is gone.
//!
//! - Logs: the shim sends every line. When the launcher also forwards the shim's own output
//!   (`WEIR_OUTPUT_FORWARDED=1`: the process and Docker launchers) it writes none of the
//!   command's lines to its own output, so none is logged twice; the launcher then forwards
//!   only the shim's own messages. Elsewhere it echoes them, for the platform's logs.
//! - Stopping: SIGTERM or SIGINT to the shim, or a cancellation seen in a heartbeat, sends
//!   SIGTERM to the command's process group, then SIGKILL after the grace period.
//! - Final state: exit 0 → Completed; exit N → Failed naming N; killed by a signal → Crashed
//!   saying which (out of memory, when the container's memory cgroup says so); cancelled →
//!   Cancelled. It is written to `WEIR_OUTCOME_FILE` first, so the agent delivers it if the
//!   server cannot be reached. The shim exits with the command's code (128 + signal).
//! - The child gets the shim's whole environment except the run token (`WEIR_API_KEY`): the
//!   run's credential stays with the shim.

use crate::launcher::{
    Canceller, ExitStatus, LaunchError, LaunchSpec, Launcher, OutputLine, ProcessLauncher, Stream,
};
use crate::logs::{Shipper, log_line};
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;
use tokio::signal::unix::{SignalKind, signal};
use uuid::Uuid;
use weir_client::Client;
use weir_core::StateKind;
use weir_core::api::ProposeState;
use weir_core::contract::ReportingEnv;

/// How `weir exec` runs its command.
#[derive(Debug, Clone)]
pub struct Options {
    /// The command and its arguments.
    pub argv: Vec<String>,
    /// Time between SIGTERM and SIGKILL when the command is stopped.
    pub grace: Duration,
    /// Longest interval between heartbeats (shorter when the server's lease asks for it).
    pub heartbeat_every: Duration,
}

/// Why the command was stopped before it ended by itself.
const RUNNING: u8 = 0;
const CANCELLED: u8 = 1;
const SIGNALLED: u8 = 2;
const LOST: u8 = 3;

/// Runs the command for the assigned run and reports on it; returns the exit code for the
/// shim (the command's own, 128 + signal when it was killed, 126/127 when it could not start).
pub async fn run(client: Client, env: ReportingEnv, options: Options) -> i32 {
    let run = env.run.flow_run_id;
    let attempt = env.run.attempt;
    let spec = launch_spec(&env, &options);
    // Everything of the shim's environment but the run token and agent settings.
    let launcher = ProcessLauncher::new().with_pass_env(["*".to_string()]);
    let why = Arc::new(AtomicU8::new(RUNNING));
    let signals = match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(term), Ok(int)) => Some((term, int)),
        _ => None,
    };
    let mut launched = match launcher.launch(spec).await {
        Ok(l) => l,
        Err(e) => {
            let code = match e {
                LaunchError::PermissionDenied { .. } => 126,
                _ => 127,
            };
            eprintln!("weir exec: {e}");
            let message = format!("the command could not start: {e}");
            finish(&client, &env, StateKind::Failed, message).await;
            return code;
        }
    };
    let canceller = launched.canceller();
    let heartbeat = tokio::spawn(heartbeat(
        client.clone(),
        run,
        attempt,
        options.heartbeat_every,
        canceller.clone(),
        options.grace,
        why.clone(),
    ));
    let forward = signals.map(|(term, int)| {
        tokio::spawn(forward_signals(
            term,
            int,
            canceller.clone(),
            options.grace,
            why.clone(),
        ))
    });
    let shipper = Shipper::start(client.clone(), attempt);
    while let Some(line) = launched.output.recv().await {
        if !env.output_forwarded {
            echo(&line);
        }
        let _ = shipper.send(log_line(run, attempt, line)).await;
    }
    let exit = launched.wait().await;
    heartbeat.abort();
    if let Some(f) = forward {
        f.abort();
    }
    let _ = shipper.close().await;
    let why = why.load(Ordering::SeqCst);
    if why == LOST {
        eprintln!("weir exec: this attempt of the run is over; its state is not reported");
    } else {
        let (state, message) = outcome(why, &exit);
        finish(&client, &env, state, message).await;
    }
    exit_code(&exit)
}

/// The command of the assigned run, with the values of its secret variables and the run
/// token redacted from its output.
fn launch_spec(env: &ReportingEnv, options: &Options) -> LaunchSpec {
    let mut redact: Vec<String> = env
        .secret_vars
        .iter()
        .filter_map(|name| std::env::var(name).ok())
        .collect();
    redact.push(env.api_key.clone());
    LaunchSpec {
        flow_run_id: env.run.flow_run_id,
        attempt: env.run.attempt,
        argv: options.argv.clone(),
        redact,
        ..LaunchSpec::default()
    }
}

/// The shim's exit code for how the command ended: its own, 128 + the signal that killed
/// it, else 1.
fn exit_code(exit: &ExitStatus) -> i32 {
    match exit {
        ExitStatus::Code(code) | ExitStatus::Exited { code, .. } => *code,
        ExitStatus::Signal(sig) => 128 + sig,
        _ => 1,
    }
}

/// The final state for how the command ended, and its message.
fn outcome(why: u8, exit: &ExitStatus) -> (StateKind, String) {
    match (why, exit) {
        (CANCELLED, _) => (
            StateKind::Cancelled,
            format!("cancelled; the command ended with {exit}"),
        ),
        // Crashed unless the run is being cancelled (the server then makes it Cancelled): a
        // stop nobody asked Weir for (`docker stop`, a replaced task) may be retried.
        (SIGNALLED, _) => (
            StateKind::Crashed,
            format!("stopped by a signal to weir exec; the command ended with {exit}"),
        ),
        // The exit code decides, worded as the agent words a plain command's end.
        (_, e) if e.code().is_some() => e.unreported_end(true),
        (_, ExitStatus::Signal(9)) if crate::oom::killed() => (
            StateKind::Crashed,
            match crate::oom::limit() {
                Some(limit) => format!("out of memory (limit {limit})"),
                None => "out of memory".into(),
            },
        ),
        (_, ExitStatus::Signal(_)) => (StateKind::Crashed, format!("the command was {exit}")),
        (_, other) => (
            StateKind::Crashed,
            format!("the command ended with {other}"),
        ),
    }
}

/// Writes the proposal to the outcome file, then proposes it (retrying about a minute while
/// the server is unreachable). A refusal means the run moved on: nothing more to do.
async fn finish(client: &Client, env: &ReportingEnv, state: StateKind, message: String) {
    let proposal = ProposeState {
        state,
        message: Some(message),
        attempt: env.run.attempt,
        transition_id: Some(Uuid::now_v7()),
        result: None,
    };
    if let Some(path) = &env.outcome_file {
        let path = std::path::Path::new(path);
        let tmp = path.with_extension("tmp");
        let written = serde_json::to_vec(&proposal)
            .map_err(std::io::Error::other)
            .and_then(|text| std::fs::write(&tmp, text))
            .and_then(|()| std::fs::rename(&tmp, path));
        if let Err(e) = written {
            eprintln!(
                "weir exec: cannot write the outcome file {}: {e}",
                path.display()
            );
        }
    }
    let mut delay = Duration::from_millis(100);
    for _ in 0..20 {
        match client.propose_state(env.run.flow_run_id, &proposal).await {
            Ok(_) => return,
            Err(e) if e.is_transient() => {
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
            Err(e) => {
                eprintln!("weir exec: the server kept its own state ({e})");
                return;
            }
        }
    }
    eprintln!("weir exec: the server stayed unreachable; the agent delivers the final state");
}

/// Writes a line of the command's output to the shim's own stdout or stderr.
fn echo(line: &OutputLine) {
    let _ = match line.stream {
        Stream::Stdout => writeln!(std::io::stdout(), "{}", line.text),
        Stream::Stderr => writeln!(std::io::stderr(), "{}", line.text),
    };
}

/// Heartbeats the run at once, then at least three times per lease (at most every `every`);
/// stops the command when its cancellation is requested or its attempt is over.
async fn heartbeat(
    client: Client,
    run: Uuid,
    attempt: u32,
    every: Duration,
    canceller: Canceller,
    grace: Duration,
    why: Arc<AtomicU8>,
) {
    let mut wait = Duration::ZERO;
    loop {
        tokio::time::sleep(wait).await;
        wait = every;
        match client.run_heartbeat(run, attempt).await {
            Ok(reply) => {
                if reply.lease_s > 0 {
                    wait = weir_core::contract::heartbeat::interval(every, reply.lease_s);
                }
                if reply.cancel || reply.lost {
                    let reason = if reply.cancel { CANCELLED } else { LOST };
                    stop(&why, reason, &canceller, grace);
                    return;
                }
            }
            Err(e)
                if !e.is_transient()
                    && e.status().is_some_and(|s| [401, 404].contains(&s.as_u16())) =>
            {
                eprintln!("weir exec: this attempt is over ({e}); stopping the command");
                stop(&why, LOST, &canceller, grace);
                return;
            }
            Err(e) => eprintln!("weir exec: heartbeat failed (will retry): {e}"),
        }
    }
}

/// Forwards SIGTERM and SIGINT to the command (SIGKILL after the grace).
async fn forward_signals(
    mut term: tokio::signal::unix::Signal,
    mut int: tokio::signal::unix::Signal,
    canceller: Canceller,
    grace: Duration,
    why: Arc<AtomicU8>,
) {
    loop {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        stop(&why, SIGNALLED, &canceller, grace);
    }
}

/// Records the first reason the command is stopped, and stops it.
fn stop(why: &AtomicU8, reason: u8, canceller: &Canceller, grace: Duration) {
    let _ = why.compare_exchange(RUNNING, reason, Ordering::SeqCst, Ordering::SeqCst);
    canceller.cancel(grace);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_from_how_the_command_ended() {
        let cases = [
            (
                RUNNING,
                ExitStatus::Code(0),
                StateKind::Completed,
                "exit code 0",
            ),
            (
                RUNNING,
                ExitStatus::Code(3),
                StateKind::Failed,
                "failed with exit code 3",
            ),
            (
                RUNNING,
                ExitStatus::Signal(6),
                StateKind::Crashed,
                "killed by signal 6 (SIGABRT)",
            ),
            (
                CANCELLED,
                ExitStatus::Code(143),
                StateKind::Cancelled,
                "cancelled",
            ),
            (
                SIGNALLED,
                ExitStatus::Code(0),
                StateKind::Crashed,
                "stopped by a signal",
            ),
        ];
        for (why, exit, state, needle) in cases {
            let (s, message) = outcome(why, &exit);
            assert_eq!(s, state, "{exit}");
            assert!(message.contains(needle), "{message}");
        }
    }
}
