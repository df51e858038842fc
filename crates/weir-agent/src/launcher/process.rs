//! The process launcher: runs a flow run as a child process of the agent. See
//! [`ProcessLauncher`].

use super::group::signal_group;
use super::{
    Cancel, Canceller, ExitStatus, LaunchError, LaunchHandle, LaunchSpec, Launched, Launcher,
    LineSplitter, OutputLine, Redactor, Spool, Stream,
};
use futures::future::BoxFuture;
use nix::sys::signal::Signal;
use nix::unistd::Pid;
use std::future::Future;
use std::io::ErrorKind;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::{Child, ChildStderr, ChildStdout, Command};
use tokio::sync::{mpsc, watch};
use tokio::time::{Instant, sleep_until};

pub use super::group::{is_alive, pid_canceller};

/// Environment variable name prefixes never passed on to a run.
const WITHHELD_ENV_PREFIXES: [&str; 2] = ["WEIR_API_KEY", "WEIR_AGENT_"];

/// Variables of the agent's environment a run inherits by default: what programs need to
/// run at all, and Weir's own settings. Anything else (cloud credentials above all) stays
/// with the agent unless passed on explicitly ([`ProcessLauncher::with_pass_env`]).
const INHERITED_ENV: [&str; 11] = [
    "PATH", "HOME", "USER", "LOGNAME", "LANG", "LANGUAGE", "TZ", "TMPDIR", "SHELL", "TERM", "LC_*",
];

/// Launches runs as local child processes of the agent.
///
/// - The child leads its own process group, so cancelling signals the whole group: a shell
///   pipeline or a script's children die with it.
/// - Environment: from the agent's own, only `PATH`, `HOME`, `USER`, `LANG`, `LC_*`, `TZ`
///   and the like, `WEIR_*` settings except `WEIR_API_KEY*` and `WEIR_AGENT_*` (the run must
///   never see the agent's credentials) and the names given to [`Self::with_pass_env`];
///   plus [`LaunchSpec::env`], which wins (so the agent may hand the run a key of its own).
/// - stdin is `/dev/null`; stdout and stderr are read concurrently, split into lines and
///   redacted (see [`LineSplitter`]). With a spool ([`LaunchSpec::spool`]) they are files
///   the launcher tails, which outlive the agent, and lines are numbered by their position
///   in them (see [`super::spool`]); without one, pipes.
/// - When the child exits, its output is drained. If a background process it left behind
///   still holds the output open (pipes), or is still in the process group (spool), after
///   the launcher's drain timeout, the rest of the process group is killed with SIGKILL; if
///   the output is still open after another drain timeout (held by a process that left the
///   group, e.g. with `setsid`), reading stops. A spool is read to its end when the group is
///   gone; later writes by a process outside the group are not read.
/// - Runs are not tied to the agent's lifetime: dropping a [`Launched`] or shutting the
///   agent's runtime down does not kill the child (the same as when the agent itself is
///   killed). Stop a run explicitly with its [`Canceller`].
#[derive(Debug, Clone)]
pub struct ProcessLauncher {
    drain_timeout: Duration,
    output_capacity: usize,
    pass_env: Vec<String>,
}

impl Default for ProcessLauncher {
    fn default() -> Self {
        Self {
            drain_timeout: Duration::from_secs(2),
            pass_env: Vec::new(),
            output_capacity: 1024,
        }
    }
}

impl ProcessLauncher {
    /// A launcher with a 2 s drain timeout and room for 1024 unread output lines.
    pub fn new() -> Self {
        Self::default()
    }

    /// How long, after the child exited, output left open by processes it started may keep
    /// the run from finishing before they are killed.
    pub fn with_drain_timeout(mut self, timeout: Duration) -> Self {
        self.drain_timeout = timeout;
        self
    }

    /// Also passes these variables of the agent's environment on to runs (a name ending in
    /// `*` matches every variable with that prefix).
    pub fn with_pass_env(mut self, names: impl IntoIterator<Item = String>) -> Self {
        self.pass_env.extend(names);
        self
    }

    /// Whether a variable of the agent's environment is passed on to runs.
    fn inherits(&self, name: &str) -> bool {
        if WITHHELD_ENV_PREFIXES.iter().any(|p| name.starts_with(p)) {
            return false;
        }
        let matches = |pattern: &str| match pattern.strip_suffix('*') {
            Some(prefix) => name.starts_with(prefix),
            None => name == pattern,
        };
        name.starts_with("WEIR_")
            || INHERITED_ENV.iter().any(|p| matches(p))
            || self.pass_env.iter().any(|p| matches(p))
    }

    /// How many output lines may wait unread before the child is paused (at least 1).
    pub fn with_output_capacity(mut self, lines: usize) -> Self {
        self.output_capacity = lines.max(1);
        self
    }

    /// The command for `spec`: its program and arguments, the environment a run inherits
    /// from the agent ([`ProcessLauncher::inherits`]) plus the spec's own, its working
    /// directory.
    fn command(&self, spec: &LaunchSpec, program: &str) -> Command {
        let mut cmd = Command::new(program);
        cmd.args(&spec.argv[1..]);
        cmd.env_clear();
        for (name, value) in std::env::vars_os() {
            if name.to_str().is_some_and(|n| self.inherits(n)) {
                cmd.env(&name, value);
            }
        }
        cmd.envs(&spec.env);
        if let Some(dir) = &spec.workdir {
            cmd.current_dir(dir);
        }
        cmd
    }

    async fn start(&self, spec: LaunchSpec) -> Result<Launched, LaunchError> {
        let program = match spec.argv.first() {
            Some(p) if !p.is_empty() => p.clone(),
            _ => {
                return Err(LaunchError::InvalidSpec(
                    "argv is empty: give the program to run and its arguments".into(),
                ));
            }
        };
        if let Some(dir) = &spec.workdir {
            let is_dir = tokio::fs::metadata(dir).await.is_ok_and(|m| m.is_dir());
            if !is_dir {
                return Err(LaunchError::WorkdirNotFound { path: dir.clone() });
            }
        }

        let mut cmd = self.command(&spec, &program);
        // With a spool, the child writes files that outlive this agent (see `spool`).
        let spooled = attach_output(&mut cmd, &spec, &program)?;
        cmd.stdin(Stdio::null())
            .process_group(0)
            // The monitor task owns the child; if the runtime drops it, the run keeps going
            // (see the type's docs).
            .kill_on_drop(false);

        let spawned = cmd.spawn();
        // The child holds its own descriptors of the spool files now (or never will).
        drop(cmd);
        if spawned.is_err()
            && let Some(spool) = &spooled
        {
            spool.remove(spec.flow_run_id, spec.attempt);
        }
        let mut child = spawned.map_err(|source| spawn_error(&program, source))?;
        let pipes = (child.stdout.take(), child.stderr.take());
        let Some(pid) = child.id() else {
            // Unreachable: a freshly spawned child has a pid.
            return Err(LaunchError::Io {
                program,
                source: std::io::Error::other("child started without a pid"),
            });
        };
        tracing::debug!(
            flow_run_id = %spec.flow_run_id,
            attempt = spec.attempt,
            pid,
            program,
            "launched process"
        );

        let redactor = Arc::new(Redactor::new(&spec.redact));
        let (line_tx, line_rx) = mpsc::channel(self.output_capacity);
        let (stop_tx, stop_rx) = watch::channel(false);
        let readers = output_readers(spooled.as_ref(), pipes, &spec, redactor, line_tx, stop_rx);

        let (cancel_tx, cancel_rx) = mpsc::unbounded_channel();
        let (status_tx, status_rx) = watch::channel(None);
        // pid fits: Linux pids are at most 2^22.
        let pgid = Pid::from_raw(i32::try_from(pid).unwrap_or(0));
        tokio::spawn(monitor(Monitor {
            child,
            pgid,
            drain_timeout: self.drain_timeout,
            cancel_rx,
            stop_tx,
            status_tx,
            readers,
            spooled: spooled.is_some(),
        }));

        Ok(Launched::new(
            line_rx,
            ProcessHandle {
                pid,
                status: status_rx,
                cancel: ProcessCancel { tx: cancel_tx },
            },
        ))
    }
}

/// Points the child's stdout and stderr at its spool files when `spec` has a spool (the
/// spool, returned), else at pipes (`None`).
fn attach_output(
    cmd: &mut Command,
    spec: &LaunchSpec,
    program: &str,
) -> Result<Option<Spool>, LaunchError> {
    let Some(spool) = &spec.spool else {
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        return Ok(None);
    };
    match spool.create(spec.flow_run_id, spec.attempt) {
        Ok((out, err)) => {
            cmd.stdout(Stdio::from(out)).stderr(Stdio::from(err));
            Ok(Some(spool.clone()))
        }
        Err(source) => {
            spool.remove(spec.flow_run_id, spec.attempt);
            Err(LaunchError::Io {
                program: program.to_string(),
                source: std::io::Error::new(
                    source.kind(),
                    format!(
                        "cannot create the output spool in {}: {source}",
                        spool.root().display()
                    ),
                ),
            })
        }
    }
}

/// Why `program` could not be started, as a [`LaunchError`].
fn spawn_error(program: &str, source: std::io::Error) -> LaunchError {
    let program = program.to_string();
    match source.kind() {
        ErrorKind::NotFound => LaunchError::ProgramNotFound { program },
        ErrorKind::PermissionDenied => LaunchError::PermissionDenied { program },
        _ => LaunchError::Io { program, source },
    }
}

/// What reads the child's output into `line_tx` until `stop_rx` says stop: the spool's
/// tailer, or one pump per pipe.
fn output_readers(
    spooled: Option<&Spool>,
    pipes: (Option<ChildStdout>, Option<ChildStderr>),
    spec: &LaunchSpec,
    redactor: Arc<Redactor>,
    line_tx: mpsc::Sender<OutputLine>,
    stop_rx: watch::Receiver<bool>,
) -> std::pin::Pin<Box<dyn Future<Output = ()> + Send>> {
    match (spooled, pipes) {
        (Some(spool), _) => Box::pin(super::spool::tail_attempt(
            spool,
            spec.flow_run_id,
            spec.attempt,
            redactor,
            None,
            line_tx,
            stop_rx,
        )),
        (None, (Some(stdout), Some(stderr))) => {
            let out = tokio::spawn(pump(
                stdout,
                LineSplitter::new(Stream::Stdout, redactor.clone()),
                line_tx.clone(),
                stop_rx.clone(),
            ));
            let err = tokio::spawn(pump(
                stderr,
                LineSplitter::new(Stream::Stderr, redactor),
                line_tx,
                stop_rx,
            ));
            Box::pin(async move {
                // A reader only ends early by panicking, which leaves nothing more to drain.
                let _ = out.await;
                let _ = err.await;
            })
        }
        // Unreachable: without a spool the child was given the pipes.
        (None, _) => Box::pin(async {}),
    }
}

impl Launcher for ProcessLauncher {
    fn kind(&self) -> weir_core::infrastructure::InfrastructureKind {
        weir_core::infrastructure::InfrastructureKind::Process
    }

    fn forwards_output(&self) -> bool {
        true
    }

    fn launch(&self, spec: LaunchSpec) -> BoxFuture<'_, Result<Launched, LaunchError>> {
        Box::pin(self.start(spec))
    }
}

fn exit_status(status: std::process::ExitStatus) -> ExitStatus {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => ExitStatus::Code(code),
        (None, Some(signal)) => ExitStatus::Signal(signal),
        (None, None) => ExitStatus::Unknown(status.to_string()),
    }
}

/// Reads one pipe to its end (or until told to stop), sending redacted lines. Once the
/// receiver is gone it keeps reading and discards, so the child never blocks on a full pipe.
async fn pump<R: AsyncRead + Unpin>(
    mut reader: R,
    mut splitter: LineSplitter,
    tx: mpsc::Sender<OutputLine>,
    mut stop: watch::Receiver<bool>,
) {
    let mut chunk = vec![0u8; 8192];
    let mut lines = Vec::new();
    let mut deliver = true;
    loop {
        let read = tokio::select! {
            biased;
            () = stopped(&mut stop) => break,
            read = reader.read(&mut chunk) => read,
        };
        match read {
            Ok(0) => break,
            Ok(n) => splitter.push(&chunk[..n], &mut lines),
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => {
                tracing::warn!(error = %e, "reading a launched process's output failed");
                break;
            }
        }
        for line in lines.drain(..) {
            if deliver && tx.send(line).await.is_err() {
                deliver = false;
            }
        }
    }
    if let Some(line) = splitter.finish()
        && deliver
    {
        let _ = tx.send(line).await;
    }
}

/// Resolves once `stop` is set; never if its sender is gone without setting it.
async fn stopped(stop: &mut watch::Receiver<bool>) {
    if stop.wait_for(|s| *s).await.is_err() {
        std::future::pending::<()>().await;
    }
}

struct Monitor<F> {
    child: Child,
    pgid: Pid,
    drain_timeout: Duration,
    cancel_rx: mpsc::UnboundedReceiver<Duration>,
    stop_tx: watch::Sender<bool>,
    status_tx: watch::Sender<Option<ExitStatus>>,
    readers: F,
    /// Output goes to spool files: readers cannot see the writers close them, so they are
    /// told to finish once the process group is gone.
    spooled: bool,
}

/// Owns the child: reaps it, carries out cancellations, drains output, then publishes the
/// exit status.
async fn monitor<F: Future<Output = ()>>(m: Monitor<F>) {
    let Monitor {
        mut child,
        pgid,
        drain_timeout,
        mut cancel_rx,
        stop_tx,
        status_tx,
        readers,
        spooled,
    } = m;
    let mut readers = std::pin::pin!(readers);
    let mut exit: Option<ExitStatus> = None;
    let mut readers_done = false;
    let mut cancel_open = true;
    // When to SIGKILL the group after a cancel.
    let mut kill_at: Option<Instant> = None;
    // When, after the child exited, to act on output still open.
    let mut drain_at: Option<Instant> = None;
    let mut drain_killed = false;

    while exit.is_none() || !readers_done {
        let now = Instant::now();
        tokio::select! {
            waited = child.wait(), if exit.is_none() => {
                exit = Some(match waited {
                    Ok(status) => exit_status(status),
                    Err(e) => ExitStatus::Unknown(format!("waiting for the process failed: {e}")),
                });
                drain_at = Some(Instant::now() + drain_timeout);
                // Most often the group ended with its leader: the spool is complete now.
                // Left to the next look, 50 ms on, each run's end was settled that much later,
                // often while the agent was launching the next run.
                if spooled && super::group::group_empty(pgid.as_raw()) {
                    let _ = stop_tx.send(true);
                }
            }
            () = &mut readers, if !readers_done => readers_done = true,
            // Spooled output is complete once no process of the group can write it.
            () = tokio::time::sleep(Duration::from_millis(50)),
                if spooled && exit.is_some() && !readers_done && !*stop_tx.borrow() =>
            {
                if super::group::group_empty(pgid.as_raw()) {
                    let _ = stop_tx.send(true);
                }
            }
            grace = cancel_rx.recv(), if cancel_open => match grace {
                // No grace (fencing): SIGKILL alone, so the run gets no chance to report.
                Some(grace) if grace.is_zero() => {
                    tracing::debug!(pgid = pgid.as_raw(), "killing process group");
                    signal_group(pgid, Signal::SIGKILL);
                    kill_at = None;
                }
                Some(grace) => {
                    tracing::debug!(pgid = pgid.as_raw(), ?grace, "cancelling process group");
                    signal_group(pgid, Signal::SIGTERM);
                    let at = Instant::now() + grace;
                    kill_at = Some(kill_at.map_or(at, |k| k.min(at)));
                }
                None => cancel_open = false,
            },
            () = sleep_until(kill_at.unwrap_or(now)), if kill_at.is_some() => {
                tracing::debug!(pgid = pgid.as_raw(), "grace period over: killing process group");
                signal_group(pgid, Signal::SIGKILL);
                kill_at = None;
            }
            () = sleep_until(drain_at.unwrap_or(now)), if drain_at.is_some() && !readers_done => {
                if drain_killed {
                    tracing::warn!(
                        pgid = pgid.as_raw(),
                        "output still open after the process group was killed; not reading it further"
                    );
                    let _ = stop_tx.send(true);
                    drain_at = None;
                } else {
                    tracing::debug!(
                        pgid = pgid.as_raw(),
                        "process exited but processes it started hold its output open; killing them"
                    );
                    signal_group(pgid, Signal::SIGKILL);
                    drain_killed = true;
                    drain_at = Some(Instant::now() + drain_timeout);
                }
            }
        }
    }
    let _ = status_tx.send(exit);
}

/// [`LaunchHandle`] of a child process.
struct ProcessHandle {
    pid: u32,
    status: watch::Receiver<Option<ExitStatus>>,
    cancel: ProcessCancel,
}

impl LaunchHandle for ProcessHandle {
    fn id(&self) -> String {
        self.pid.to_string()
    }

    fn wait(&mut self) -> BoxFuture<'_, ExitStatus> {
        Box::pin(async move {
            let status = match self.status.wait_for(Option::is_some).await {
                Ok(status) => status.clone(),
                Err(_) => None,
            };
            status.unwrap_or_else(|| {
                ExitStatus::Unknown(format!(
                    "the task monitoring process {} stopped (agent shutting down?)",
                    self.pid
                ))
            })
        })
    }

    fn canceller(&self) -> Canceller {
        Canceller::new(self.cancel.clone())
    }
}

/// [`Cancel`] of a child process: hands the request to its monitor task.
#[derive(Clone)]
struct ProcessCancel {
    tx: mpsc::UnboundedSender<Duration>,
}

impl Cancel for ProcessCancel {
    fn cancel(&self, grace: Duration) {
        // Fails only when the monitor is done: the run has ended, nothing to cancel.
        let _ = self.tx.send(grace);
    }
}
