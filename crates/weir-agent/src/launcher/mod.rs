//! Launchers: the kinds of infrastructure an agent starts flow runs on.
//!
//! A [`Launcher`] turns a [`LaunchSpec`] (one attempt of one flow run) into a [`Launched`]
//! run: a stream of redacted [`OutputLine`]s, an [`ExitStatus`] to wait for, and a
//! [`Canceller`] to stop it. The agent loop only sees this interface; [`ProcessLauncher`]
//! runs a local child process, container launchers implement the same traits.
//!
//! # Using a launched run
//!
//! Read [`Launched::output`] until it yields `None`, then call [`Launched::wait`]; or read it
//! from another task. Output is a bounded channel: while nobody reads it, a run writing to
//! pipes is paused (they fill up), a spooled run's output waits in its files, and `wait` does
//! not resolve, because `wait` also means "all output has been delivered". Dropping the
//! receiver is fine: output is then discarded (a spool keeps it for a later reader).
//!
//! Cancel from anywhere with a [`Canceller`]; `wait` then reports how the run ended.
//!
//! # Implementing a launcher
//!
//! Implement [`LaunchHandle`] (and [`Cancel`]) for the running thing, feed its output
//! through a [`LineSplitter`] so lines are cut and redacted like everywhere else, and build
//! the result with [`Launched::new`].

#[cfg(feature = "docker")]
pub mod docker;
mod group;
mod output;
pub mod process;
pub mod spool;

pub use group::is_alive;
pub use output::{LineSplitter, MAX_LINE_BYTES, REDACTED, Redactor};
pub use process::ProcessLauncher;
pub use spool::Spool;

use futures::future::BoxFuture;
use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use uuid::Uuid;
use weir_core::infrastructure::{Infrastructure, InfrastructureKind};

/// What to launch: one attempt of one flow run.
#[derive(Clone, Default, PartialEq)]
pub struct LaunchSpec {
    /// The flow run this attempt belongs to.
    pub flow_run_id: Uuid,
    /// The attempt number, starting at 1.
    pub attempt: u32,
    /// The work queue the run was claimed from. Launchers whose runs outlive the agent tag
    /// them with it, so an agent replacing another on the same queues finds them
    /// ([`Launcher::discover`]).
    pub queue: String,
    /// Program and arguments. The process launcher runs `argv[0]` (looked up on `PATH` when
    /// it has no `/`); container launchers use it as the container's command, if non-empty.
    pub argv: Vec<String>,
    /// Where to run it: the deployment's infrastructure. Each launcher reads its own kind's
    /// settings (the image and limits of a container); the process launcher needs none.
    pub infrastructure: Infrastructure,
    /// Environment added for the run (run context, secrets). Wins over anything inherited.
    pub env: BTreeMap<String, String>,
    /// Working directory; the agent's own when `None`.
    pub workdir: Option<PathBuf>,
    /// Secret values: every occurrence in captured output is replaced by `***`
    /// (see [`Redactor`] for the exact rules).
    pub redact: Vec<String>,
    /// Environment variable → secret reference, for launchers whose infrastructure injects
    /// secrets itself ([`Launcher::secrets_by_reference`]); empty otherwise.
    pub secret_refs: BTreeMap<String, String>,
    /// Where a launcher that can should write the run's output for the agent to tail (see
    /// [`spool`]): the process launcher then gives the child files instead of pipes, so
    /// output outlives the agent. `None`: pipes (`weir exec`, which lives as long as its
    /// command). Container launchers ignore it.
    pub spool: Option<Spool>,
    /// Whether the deployment runs a plain command (its exit status is its state; it reports
    /// nothing itself). Launchers whose runs outlive the agent record it with the run (an ECS
    /// task's `weir:plain-command` tag), so an agent that discovers the run settles it by its
    /// exit status without reading the deployment, which its key may not.
    pub plain_command: bool,
}

impl fmt::Debug for LaunchSpec {
    /// Shows environment names but never values, and only how many redacted values there are.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LaunchSpec")
            .field("flow_run_id", &self.flow_run_id)
            .field("attempt", &self.attempt)
            .field("queue", &self.queue)
            .field("argv", &self.argv)
            .field("infrastructure", &self.infrastructure.kind())
            .field("env", &self.env.keys().collect::<Vec<_>>())
            .field("workdir", &self.workdir)
            .field("redact", &self.redact.len())
            .field("secret_refs", &self.secret_refs)
            .field("spool", &self.spool.as_ref().map(Spool::root))
            .field("plain_command", &self.plain_command)
            .finish()
    }
}

/// Which output stream a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stream {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

impl Stream {
    /// `"stdout"` or `"stderr"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

impl fmt::Display for Stream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One line of a run's output, without its line ending, already redacted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputLine {
    /// The stream it was written to.
    pub stream: Stream,
    /// The text: at most [`MAX_LINE_BYTES`] bytes, invalid UTF-8 replaced by U+FFFD.
    pub text: String,
    /// Its number in its stream, when every reader of the output numbers it the same way (a
    /// [`spool`] file, or a container's log stream read from its start: the line's position
    /// in it); `None` where a reader sees only part of the output (a CloudWatch tail).
    pub seq: Option<u64>,
}

/// How a launched run ended.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ExitStatus {
    /// The program exited with this code.
    Code(i32),
    /// The program exited with this code, and its infrastructure said more about the end
    /// (ECS's `stoppedReason` and container reason, quoted verbatim).
    Exited {
        /// The program's exit code.
        code: i32,
        /// What the infrastructure said, as it said it.
        reason: String,
    },
    /// The program was killed by this signal number.
    Signal(i32),
    /// The launcher could not tell how the run ended (for example, the task monitoring it
    /// stopped, or the container runtime lost it); the reason says why.
    Unknown(String),
    /// The infrastructure stopped the run for a known reason (out of memory, the container
    /// vanished); the reason is said as is.
    Stopped(String),
}

impl ExitStatus {
    /// Whether the run exited with code 0.
    pub fn success(&self) -> bool {
        self.code() == Some(0)
    }

    /// The exit code, when the program exited.
    pub fn code(&self) -> Option<i32> {
        match self {
            ExitStatus::Code(code) | ExitStatus::Exited { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// The state and message of a run whose program ended like this without reporting a
    /// final state itself. A `plain` command's exit code decides (0 Completed, else Failed);
    /// a flow that did not report is Crashed; an infrastructure stop is Crashed with its
    /// reason as is. Whatever the infrastructure said about the end is quoted in the message.
    pub fn unreported_end(&self, plain: bool) -> (weir_core::StateKind, String) {
        use weir_core::StateKind;
        match self {
            _ if plain && self.success() => (StateKind::Completed, self.to_string()),
            _ if plain && self.code().is_some() => {
                (StateKind::Failed, format!("the command failed with {self}"))
            }
            ExitStatus::Stopped(reason) => (StateKind::Crashed, reason.clone()),
            // A plain command whose end cannot be known (taken over without its supervisor's
            // exit file): the reason says why, as is.
            ExitStatus::Unknown(reason) if plain => (StateKind::Crashed, reason.clone()),
            _ => (
                StateKind::Crashed,
                format!("the process ended with {self} without reporting a final state"),
            ),
        }
    }
}

impl fmt::Display for ExitStatus {
    /// `exit code 3`, `exit code 3 (reason)`, `killed by signal 9 (SIGKILL)`, `unknown exit
    /// status (reason)`, or a stop's reason as is.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExitStatus::Code(code) => write!(f, "exit code {code}"),
            ExitStatus::Exited { code, reason } => write!(f, "exit code {code} ({reason})"),
            ExitStatus::Signal(sig) => match nix::sys::signal::Signal::try_from(*sig) {
                Ok(name) => write!(f, "killed by signal {sig} ({})", name.as_str()),
                Err(_) => write!(f, "killed by signal {sig}"),
            },
            ExitStatus::Unknown(reason) => write!(f, "unknown exit status ({reason})"),
            ExitStatus::Stopped(reason) => f.write_str(reason),
        }
    }
}

/// Why a run could not be launched. Nothing was started when this is returned.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LaunchError {
    /// The spec cannot be launched as it is.
    #[error("invalid launch spec: {0}")]
    InvalidSpec(String),
    /// The program does not exist.
    #[error(
        "program `{program}` not found: check the deployment's command, and that the program \
         is installed on the agent's machine and on its PATH (or give an absolute path)"
    )]
    ProgramNotFound {
        /// `argv[0]` as given.
        program: String,
    },
    /// The program exists but may not be executed.
    #[error(
        "permission denied running `{program}`: make it executable (`chmod +x`) and readable \
         by the agent's user, and check that it is not a directory"
    )]
    PermissionDenied {
        /// `argv[0]` as given.
        program: String,
    },
    /// The working directory does not exist or is not a directory.
    #[error(
        "working directory `{}` does not exist or is not a directory: create it on the agent's \
         machine or fix the deployment's workdir",
        path.display()
    )]
    WorkdirNotFound {
        /// The directory asked for.
        path: PathBuf,
    },
    /// Starting the program failed for another reason.
    #[error("could not start `{program}`: {source}")]
    Io {
        /// `argv[0]` as given.
        program: String,
        /// The operating system's error from spawning it.
        #[source]
        source: std::io::Error,
    },
    /// The image to run is not there and cannot be pulled: the attempt fails, nothing ran.
    #[error(
        "image {image} not found: {detail}. Build it (scripts/build-images.sh builds weir:dev \
         and weir-example-flows:dev), load it with `docker load`, or set the deployment's \
         infrastructure pull = \"if-missing\" to pull it from a registry"
    )]
    ImageNotFound {
        /// The image as the deployment names it.
        image: String,
        /// Why it is not there.
        detail: String,
    },
    /// The launcher's infrastructure (container engine, cloud API) refused or failed.
    #[error("{launcher} launcher: {message}")]
    Infrastructure {
        /// The launcher's [`Launcher::name`].
        launcher: &'static str,
        /// What went wrong and what to do.
        message: String,
    },
}

/// One kind of infrastructure runs are launched on.
pub trait Launcher: Send + Sync + 'static {
    /// Short name used in configuration and logs, such as `"process"`.
    fn name(&self) -> &'static str {
        self.kind().as_str()
    }

    /// The infrastructure kind it launches; the agent registers the kinds of its launchers.
    fn kind(&self) -> InfrastructureKind;

    /// Whether the infrastructure resolves the deployment's secret references itself (ECS
    /// `valueFrom`): the agent then passes [`LaunchSpec::secret_refs`] and resolves nothing.
    fn secrets_by_reference(&self) -> bool {
        false
    }

    /// Whether a launched run outlives the agent (an ECS task): a stopping agent leaves such
    /// runs running, for the agent that replaces it to take over, instead of stopping them.
    fn survives_agent(&self) -> bool {
        false
    }

    /// Whether the launcher reads the run's stdout and stderr and yields them as
    /// [`Launched::output`], for the agent to send as log lines. Sets `WEIR_OUTPUT_FORWARDED`
    /// for the run: `weir exec`, which sends its command's output itself, then writes nothing of
    /// it to its own output (no line is logged twice); elsewhere (an ECS task) it also echoes the
    /// output for the platform's logs.
    fn forwards_output(&self) -> bool {
        false
    }

    /// Starts one attempt. Resolves once the run has started (not when it ends).
    fn launch(&self, spec: LaunchSpec) -> BoxFuture<'_, Result<Launched, LaunchError>>;

    /// Takes over attempt `attempt` of run `flow_run_id`, which an earlier agent over the
    /// same state directory launched as `id` ([`LaunchHandle::id`]), after a restart.
    /// `Ok(None)`: the launcher cannot find it (it never started, or it ended and its
    /// infrastructure forgot it); the agent then settles the run from what the server knows.
    /// Launchers that cannot follow runs across agents keep the default (`Ok(None)`).
    fn reattach(
        &self,
        flow_run_id: Uuid,
        attempt: u32,
        id: &str,
    ) -> BoxFuture<'_, Result<Option<Launched>, LaunchError>> {
        let _ = (flow_run_id, attempt, id);
        Box::pin(async { Ok(None) })
    }

    /// Runs of `queues` still on this launcher's infrastructure, whichever agent launched
    /// them: how a new agent instance (new identity, same infrastructure and queues) takes
    /// over from the one it replaces, without launching anything again. Asked only of a
    /// launcher whose runs outlive agents ([`Launcher::survives_agent`]). The default finds
    /// none.
    fn discover(&self, queues: &[String]) -> BoxFuture<'_, Result<Vec<Found>, LaunchError>> {
        let _ = queues;
        Box::pin(async { Ok(Vec::new()) })
    }
}

/// A run found on a launcher's infrastructure by [`Launcher::discover`], followed again.
#[derive(Debug)]
pub struct Found {
    /// The flow run, from the launch's labels or tags.
    pub flow_run_id: Uuid,
    /// The attempt it runs.
    pub attempt: u32,
    /// Whether it runs a plain command, as its launch recorded it
    /// ([`LaunchSpec::plain_command`]): its exit status then settles it.
    pub plain_command: bool,
    /// Its identifier on the infrastructure (container id, task ARN). Nothing follows it yet:
    /// the agent decides whether to take it over, then asks [`Launcher::reattach`].
    pub id: String,
}

/// The launcher-specific side of a [`Launched`] run.
pub trait LaunchHandle: Send + Sync + 'static {
    /// Identifier of the running thing on its infrastructure (pid, container id, task ARN).
    fn id(&self) -> String;

    /// Resolves when the run has ended and all its output has been sent. May be called again
    /// after it resolved, and then returns the same status.
    fn wait(&mut self) -> BoxFuture<'_, ExitStatus>;

    /// A canceller for this run.
    fn canceller(&self) -> Canceller;
}

/// Stops a run: the launcher-specific side of a [`Canceller`].
pub trait Cancel: Send + Sync + 'static {
    /// Asks the run to stop, then forces it after `grace`. Must return at once; the
    /// escalation happens in the background whether or not anyone waits.
    fn cancel(&self, grace: Duration);
}

/// Cancels a launched run. Cheap to clone and usable from any task, before or after the run
/// ended (cancelling an ended run does nothing).
#[derive(Clone)]
pub struct Canceller(Arc<dyn Cancel>);

impl Canceller {
    /// Wraps a launcher's [`Cancel`] implementation.
    pub fn new(cancel: impl Cancel) -> Self {
        Self(Arc::new(cancel))
    }

    /// Asks the run to stop gracefully (SIGTERM to its whole process group, for processes),
    /// and forces it (SIGKILL to the group) if it is still running after `grace`. Returns at
    /// once; [`Launched::wait`] reports the outcome. Calling it again with a shorter grace
    /// brings the forced stop forward; a zero grace forces it at once, with no SIGTERM first
    /// (fencing: the run must get no chance to report).
    pub fn cancel(&self, grace: Duration) {
        self.0.cancel(grace);
    }
}

impl fmt::Debug for Canceller {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Canceller")
    }
}

/// A running launch.
pub struct Launched {
    /// Output lines in the order written, per stream (the order between stdout and stderr
    /// is only approximate). Closes once the run ended and its output was drained.
    pub output: mpsc::Receiver<OutputLine>,
    handle: Box<dyn LaunchHandle>,
}

impl Launched {
    /// Assembles a launched run from its output channel and handle (for launcher
    /// implementations).
    pub fn new(output: mpsc::Receiver<OutputLine>, handle: impl LaunchHandle) -> Self {
        Self {
            output,
            handle: Box::new(handle),
        }
    }

    /// Resolves when the run has ended and all its output has been sent to
    /// [`output`](Self::output); see the [module docs](crate::launcher) about reading output first.
    /// Calling it again returns the same status.
    pub async fn wait(&mut self) -> ExitStatus {
        self.handle.wait().await
    }

    /// A canceller for this run.
    pub fn canceller(&self) -> Canceller {
        self.handle.canceller()
    }

    /// Identifier of the run on its infrastructure: the pid for processes.
    pub fn id(&self) -> String {
        self.handle.id()
    }
}

impl fmt::Debug for Launched {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Launched")
            .field("id", &self.handle.id())
            .finish_non_exhaustive()
    }
}
