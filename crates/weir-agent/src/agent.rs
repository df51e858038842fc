//! The agent: register, claim due runs (long-poll), launch each through a [`Launcher`],
//! stream its output as log lines, heartbeat the runs it holds, carry out cancellations, and
//! report how each launch ended. This module holds the agent's settings, the state its tasks
//! share and [`Agent::run`], which starts them and stops them on shutdown; each job is a
//! child module:
//!
//! - [`claim`]: registering, and the claiming loop (long-poll while slots are free);
//! - [`supervise`]: one claimed run from its spec to its launch, its output and its end;
//! - [`lease`]: heartbeats and leases (renewal, cancellations and lost runs, fencing);
//! - [`report`]: proposing states and settling how an attempt ended;
//! - [`record`]: the supervision records in the state directory;
//! - [`adopt`]: taking over runs the agent did not launch in this life.
//!
//! Invariants:
//! - a run is launched only after the server handed it to this agent by a claim, and each
//!   claim is a new attempt, so no run is launched twice for one attempt;
//! - a launch that fails, or a process that exits without a final state, is reported
//!   Crashed (Failed/Completed by exit code for plain commands);
//! - every run being supervised is written to the state directory, so an agent restarted
//!   after a crash takes over the processes still alive instead of losing them, and runs on
//!   infrastructure that outlives agents (ECS tasks) are taken over by whichever agent of
//!   their queues starts next ([`adopt`]);
//! - a local process's output goes to the state directory's spool
//!   ([`crate::launcher::spool`]), removed only once the attempt's end was reported and every
//!   line shipped, so output written while the agent is down reaches the server once it is
//!   back.

use crate::launcher::{Launcher, Spool};
use crate::secrets::Resolver;
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;
use uuid::Uuid;
use weir_client::Client;
use weir_core::infrastructure::InfrastructureKind;

mod adopt;
mod claim;
mod lease;
mod record;
mod report;
mod supervise;

/// Agent settings.
#[derive(Debug, Clone)]
pub struct AgentOptions {
    /// Name shown in the UI (host name by default).
    pub name: String,
    /// Work queues to take runs from.
    pub queues: Vec<String>,
    /// Most runs at once.
    pub limit: u32,
    /// Longest long-poll of one claim.
    pub poll_wait: Duration,
    /// How often held runs are heartbeated.
    pub heartbeat_every: Duration,
    /// Time between SIGTERM and SIGKILL when cancelling a run.
    pub cancel_grace: Duration,
    /// On shutdown: how long running runs may take to finish before they are stopped.
    pub shutdown_grace: Duration,
    /// The server URL handed to flow processes (`WEIR_API_URL`).
    pub api_url: String,
    /// Where supervision records are kept, to take over live runs after a restart.
    pub state_dir: PathBuf,
    /// Working directory of launched processes.
    pub workdir: Option<PathBuf>,
    /// Extra environment for every run (e.g. `WEIR_RESULT_STORAGE`).
    pub env: BTreeMap<String, String>,
    /// The program and arguments of `weir supervise` ([`crate::supervise`]), which a local
    /// plain command is launched under so that its exit status outlives this agent; empty:
    /// launched directly, and the end of one taken over after a restart cannot be known.
    pub supervisor: Vec<String>,
}

/// Why the agent stopped.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// It could not register with the server.
    #[error("cannot register with the server: {0}")]
    Register(weir_client::Error),
    /// The state directory is unusable.
    #[error("cannot use state directory {path}: {source}")]
    StateDir {
        /// The `--state-dir` directory.
        path: PathBuf,
        /// The error creating or reading it.
        source: std::io::Error,
    },
}

/// A run this agent supervises.
struct Held {
    attempt: u32,
    cancel: Option<crate::launcher::Canceller>,
    cancelling: bool,
    /// Launched on infrastructure that outlives the agent (an ECS task): left running when
    /// the agent stops, for the agent that replaces it to take over.
    survives: bool,
    /// Stopped by the fence (its lease could not be renewed): reported Crashed, never by
    /// what its process left behind.
    fenced: bool,
    /// When its lease was last renewed at the latest, on [`crate::fence::Fence::now`]'s
    /// clock: the claim, or the sending of the last heartbeat that renewed it.
    renewed: u64,
    /// The server said this agent no longer holds it (its lease expired, or another attempt
    /// took over): never launched, stopped if it was.
    lost: bool,
}

/// What the agent's tasks share: its settings, launchers and the runs it holds.
struct Shared {
    client: Client,
    options: AgentOptions,
    /// One launcher per infrastructure kind this agent can launch.
    launchers: BTreeMap<InfrastructureKind, Arc<dyn Launcher>>,
    resolver: Resolver,
    held: Mutex<HashMap<Uuid, Held>>,
    slot_freed: Notify,
    /// Runs were claimed: heartbeat now rather than on the cadence (see `lease`).
    claimed: Notify,
    fence: crate::fence::Fence,
    /// Where local processes write their output (`<state_dir>/spool`).
    spool: Spool,
}

/// A configured agent, ready to [`run`](Agent::run).
pub struct Agent {
    shared: Arc<Shared>,
}

impl Agent {
    /// An agent launching runs with `launchers` (one per infrastructure kind; a later one
    /// replaces an earlier one of the same kind) and resolving secrets with `resolver`. It
    /// registers their kinds, so the server hands it only runs it can launch.
    pub fn new(
        client: Client,
        options: AgentOptions,
        launchers: Vec<Arc<dyn Launcher>>,
        resolver: Resolver,
    ) -> Agent {
        Agent {
            shared: Arc::new(Shared {
                client,
                launchers: launchers.into_iter().map(|l| (l.kind(), l)).collect(),
                resolver,
                held: Mutex::new(HashMap::new()),
                slot_freed: Notify::new(),
                claimed: Notify::new(),
                fence: crate::fence::Fence::new(),
                spool: Spool::new(crate::launcher::spool::dir(&options.state_dir)),
                options,
            }),
        }
    }

    /// Runs until `shutdown` resolves: then stops claiming, lets running runs finish within
    /// the shutdown grace, and stops the rest (they are reported Crashed, so retries apply).
    pub async fn run(self, shutdown: impl std::future::Future<Output = ()>) -> Result<(), Error> {
        let sh = self.shared;
        create_dir(&sh.options.state_dir)?;
        create_dir(&crate::outcome::dir(&sh.options.state_dir))?;
        let me = claim::register(&sh).await?;
        let launchers: Vec<&str> = sh.launchers.keys().map(|k| k.as_str()).collect();
        tracing::info!(message = "agent registered", agent = %me, queues = ?sh.options.queues, limit = sh.options.limit, ?launchers);
        adopt::adopt(&sh).await;
        let heartbeat = tokio::spawn(lease::heartbeat_loop(sh.clone(), me));
        let fence = tokio::spawn(lease::fence_loop(sh.clone()));
        claim::claim_until(&sh, me, shutdown).await;
        tracing::info!(
            message = "agent stopping: no new runs will be claimed",
            running = held_count(&sh)
        );
        stop_held(&sh).await;
        heartbeat.abort();
        fence.abort();
        Ok(())
    }
}

fn create_dir(path: &std::path::Path) -> Result<(), Error> {
    std::fs::create_dir_all(path).map_err(|source| Error::StateDir {
        path: path.to_path_buf(),
        source,
    })
}

/// On shutdown: waits the shutdown grace for the runs the agent would stop to finish, then
/// cancels the rest and waits for them (a cancel grace and a little more).
async fn stop_held(sh: &Shared) {
    let deadline = tokio::time::Instant::now() + sh.options.shutdown_grace;
    wait_stoppable(sh, deadline).await;
    let left: Vec<_> = lock(sh)
        .values()
        .filter(|h| !h.survives)
        .filter_map(|h| h.cancel.clone())
        .collect();
    for c in &left {
        c.cancel(sh.options.cancel_grace);
    }
    let deadline = tokio::time::Instant::now() + sh.options.cancel_grace + Duration::from_secs(5);
    wait_stoppable(sh, deadline).await;
}

/// Waits until no run the agent would stop is held, or `deadline`.
async fn wait_stoppable(sh: &Shared, deadline: tokio::time::Instant) {
    while stoppable_count(sh) > 0 && tokio::time::Instant::now() < deadline {
        let _ = tokio::time::timeout(Duration::from_millis(200), sh.slot_freed.notified()).await;
    }
}

fn lock(sh: &Shared) -> std::sync::MutexGuard<'_, HashMap<Uuid, Held>> {
    sh.held.lock().unwrap_or_else(|p| p.into_inner())
}

fn held_count(sh: &Shared) -> u32 {
    u32::try_from(lock(sh).len()).unwrap_or(u32::MAX)
}

/// Runs the agent would stop on shutdown (not those on infrastructure that outlives it).
fn stoppable_count(sh: &Shared) -> usize {
    lock(sh).values().filter(|h| !h.survives).count()
}
