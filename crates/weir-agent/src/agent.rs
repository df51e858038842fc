//! The agent loop: register, claim due runs (long-poll), launch each through a
//! [`Launcher`], stream its output as log lines, heartbeat the runs it holds, carry out
//! cancellations, and report how each launch ended.
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

use crate::launcher::{ExitStatus, LaunchError, LaunchSpec, Launched, Launcher, Spool};
use crate::secrets::Resolver;
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;
use uuid::Uuid;
use weir_client::Client;
use weir_core::StateKind;
use weir_core::api::{ClaimedRun, FlowRun, HeldRun, ProposeState, RegisterAgent};
use weir_core::contract::{AssignedRun, LaunchEnv, heartbeat};
use weir_core::infrastructure::InfrastructureKind;

mod adopt;

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
        /// The directory.
        path: PathBuf,
        /// Why.
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

struct Shared {
    client: Client,
    options: AgentOptions,
    /// One launcher per infrastructure kind this agent can launch.
    launchers: BTreeMap<InfrastructureKind, Arc<dyn Launcher>>,
    resolver: Resolver,
    held: Mutex<HashMap<Uuid, Held>>,
    slot_freed: Notify,
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
        std::fs::create_dir_all(&sh.options.state_dir).map_err(|source| Error::StateDir {
            path: sh.options.state_dir.clone(),
            source,
        })?;
        std::fs::create_dir_all(crate::outcome::dir(&sh.options.state_dir)).map_err(|source| {
            Error::StateDir {
                path: crate::outcome::dir(&sh.options.state_dir),
                source,
            }
        })?;
        let me = register(&sh).await?;
        let launchers: Vec<&str> = sh.launchers.keys().map(|k| k.as_str()).collect();
        tracing::info!(message = "agent registered", agent = %me, queues = ?sh.options.queues, limit = sh.options.limit, ?launchers);
        adopt::adopt(&sh).await;
        let heartbeat = tokio::spawn(heartbeat_loop(sh.clone(), me));
        let fence = tokio::spawn(fence_loop(sh.clone()));
        tokio::pin!(shutdown);
        let mut backoff = Duration::from_millis(200);
        loop {
            let free = sh.options.limit.saturating_sub(held_count(&sh));
            if free == 0 {
                tokio::select! {
                    _ = sh.slot_freed.notified() => continue,
                    _ = tokio::time::sleep(Duration::from_secs(1)) => continue,
                    _ = &mut shutdown => break,
                }
            }
            let sent = sh.fence.now();
            let claim = sh.client.claim(me, free, sh.options.poll_wait);
            let claimed = tokio::select! {
                r = claim => r,
                _ = &mut shutdown => break,
            };
            match claimed {
                Ok(runs) => {
                    backoff = Duration::from_millis(200);
                    for c in runs {
                        sh.fence.learn_lease(c.lease_s);
                        let renewed = sh.fence.claimed_at(sent, c.claimed_after_ms);
                        start(&sh, me, c, renewed);
                    }
                }
                Err(error) => {
                    tracing::warn!(message = "claim failed; retrying", %error, retry_in_ms = backoff.as_millis() as u64);
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => {}
                        _ = &mut shutdown => break,
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
        tracing::info!(
            message = "agent stopping: no new runs will be claimed",
            running = held_count(&sh)
        );
        let deadline = tokio::time::Instant::now() + sh.options.shutdown_grace;
        while stoppable_count(&sh) > 0 && tokio::time::Instant::now() < deadline {
            let _ =
                tokio::time::timeout(Duration::from_millis(200), sh.slot_freed.notified()).await;
        }
        let left: Vec<_> = lock(&sh)
            .values()
            .filter(|h| !h.survives)
            .filter_map(|h| h.cancel.clone())
            .collect();
        for c in &left {
            c.cancel(sh.options.cancel_grace);
        }
        let deadline =
            tokio::time::Instant::now() + sh.options.cancel_grace + Duration::from_secs(5);
        while stoppable_count(&sh) > 0 && tokio::time::Instant::now() < deadline {
            let _ =
                tokio::time::timeout(Duration::from_millis(200), sh.slot_freed.notified()).await;
        }
        heartbeat.abort();
        fence.abort();
        Ok(())
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

async fn register(sh: &Shared) -> Result<Uuid, Error> {
    let req = RegisterAgent {
        name: sh.options.name.clone(),
        queues: sh.options.queues.clone(),
        limit: sh.options.limit,
        launchers: sh.launchers.keys().copied().collect(),
    };
    let mut wait = Duration::from_millis(200);
    for _ in 0..10 {
        match sh.client.register_agent(&req).await {
            Ok(a) => return Ok(a.id),
            Err(e) if e.is_transient() => {
                tracing::warn!(message = "server not reachable yet; retrying", error = %e);
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(3));
            }
            Err(e) => return Err(Error::Register(e)),
        }
    }
    sh.client
        .register_agent(&req)
        .await
        .map(|a| a.id)
        .map_err(Error::Register)
}

async fn heartbeat_loop(sh: Arc<Shared>, me: Uuid) {
    // Heartbeat at the one cadence (`weir_core::contract::heartbeat`), whatever the server's
    // lease is. `steady`: the interval while the server answers; `every`: the next wait (shorter
    // while it does not, so contact is back as soon as possible).
    let mut steady = sh.options.heartbeat_every;
    let mut every = steady;
    loop {
        tokio::time::sleep(every).await;
        let runs: Vec<HeldRun> = lock(&sh)
            .iter()
            .map(|(id, h)| HeldRun {
                id: *id,
                attempt: h.attempt,
            })
            .collect();
        let sent = sh.fence.now();
        // Bounded by the interval: a partition must not hold the loop (or the fence) up.
        let answer = tokio::time::timeout(
            steady.max(Duration::from_millis(500)),
            sh.client
                .agent_heartbeat(me, &weir_core::api::Heartbeat { runs: runs.clone() }),
        )
        .await;
        let Ok(answer) = answer else {
            tracing::warn!(message = "heartbeat got no answer within its interval");
            // Try again soon: the lease is running out (see `crate::fence`).
            every = Duration::from_millis(250);
            continue;
        };
        match answer {
            Ok(reply) => {
                sh.fence.learn_lease(reply.lease_s);
                renewed(&sh, &runs, &reply.lost, sent);
                if reply.lease_s > 0 {
                    steady = heartbeat::interval(sh.options.heartbeat_every, reply.lease_s);
                }
                every = steady;
                let mut stop = Vec::new();
                {
                    let mut held = lock(&sh);
                    for id in reply.cancel.iter().chain(reply.lost.iter()) {
                        if let Some(h) = held.get_mut(id)
                            && !h.cancelling
                        {
                            let lost = reply.lost.contains(id);
                            // A process that already wrote its final state ended this attempt
                            // itself (a failure the server turned into a retry): it is exiting,
                            // and stopping it would only make it say it was cancelled.
                            let reported =
                                crate::outcome::path(&sh.options.state_dir, *id, h.attempt)
                                    .exists();
                            if lost && reported {
                                continue;
                            }
                            h.cancelling = true;
                            h.lost |= lost;
                            if lost {
                                stop.push((*id, h.attempt, h.cancel.clone()));
                            } else {
                                tracing::info!(message = "cancelling run", run = %id);
                                if let Some(c) = &h.cancel {
                                    c.cancel(sh.options.cancel_grace);
                                }
                            }
                        }
                    }
                }
                for (id, attempt, cancel) in stop {
                    let (what, exiting) = describe_lost(&sh, id, attempt).await;
                    if exiting {
                        // An ECS task or container whose flow reported its end is about to
                        // stop by itself: stop it only if it is still there after the grace.
                        stop_unless_gone(&sh, id, attempt, cancel);
                        continue;
                    }
                    tracing::info!(message = "stopping the run's process", run = %id, reason = %what);
                    if let Some(c) = cancel {
                        c.cancel(sh.options.cancel_grace);
                    }
                }
            }
            Err(error) => {
                tracing::warn!(message = "heartbeat failed", %error);
                every = Duration::from_millis(250);
            }
        }
    }
}

/// Records that the heartbeat sent at `sent` renewed the leases of `runs`, except those the
/// server answered as `lost`.
fn renewed(sh: &Shared, runs: &[HeldRun], lost: &[Uuid], sent: u64) {
    let mut held = lock(sh);
    for r in runs.iter().filter(|r| !lost.contains(&r.id)) {
        if let Some(h) = held.get_mut(&r.id)
            && h.attempt == r.attempt
        {
            h.renewed = h.renewed.max(sent);
        }
    }
}

/// Stops each launched run whose lease has gone unrenewed for most of a lease (see
/// [`crate::fence`]).
async fn fence_loop(sh: Arc<Shared>) {
    loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let mut held = lock(&sh);
        for (id, h) in held.iter_mut().filter(|(_, h)| !h.fenced) {
            let Some(silent) = sh.fence.tripped(h.renewed) else {
                continue;
            };
            let Some(c) = &h.cancel else { continue };
            h.fenced = true;
            tracing::warn!(
                message = "lease not renewed for most of its length: stopping the run so that no other attempt can overlap it (fencing)",
                run = %id,
                attempt = h.attempt,
                silent_ms = silent.as_millis() as u64,
                lease_s = sh.fence.lease().as_secs()
            );
            c.cancel(Duration::ZERO);
        }
    }
}

/// What became of a run this agent no longer holds, in words: its state now, and for a
/// retry when it is due.
/// What became of a run whose attempt the agent lost, and whether that attempt ended with
/// its process's own report ([`weir_core::why::ended_by_its_process`]).
async fn describe_lost(sh: &Shared, id: Uuid, attempt: u32) -> (String, bool) {
    match sh.client.flow_run(id).await {
        Ok(d) => (
            weir_core::why::after_attempt(&d.run, attempt),
            weir_core::why::ended_by_its_process(&d.run, attempt),
        ),
        Err(e) => (
            format!("attempt {attempt} is over (the run could not be read: {e})"),
            false,
        ),
    }
}

/// Stops attempt `attempt` of run `id` if the agent still holds it once the cancel grace has
/// passed (a process that reported its end but did not exit).
fn stop_unless_gone(
    sh: &Arc<Shared>,
    id: Uuid,
    attempt: u32,
    cancel: Option<crate::launcher::Canceller>,
) {
    let sh = sh.clone();
    tokio::spawn(async move {
        tokio::time::sleep(sh.options.cancel_grace).await;
        let held = lock(&sh).get(&id).is_some_and(|h| h.attempt == attempt);
        if held && let Some(c) = cancel {
            tracing::info!(message = "stopping the run's process", run = %id, reason = "it reported its end but did not exit within the cancel grace");
            c.cancel(sh.options.cancel_grace);
        }
    });
}

/// Starts supervising a claimed run in the background; its lease was dated `renewed` at the
/// latest (see [`crate::fence`]).
fn start(sh: &Arc<Shared>, me: Uuid, claimed: ClaimedRun, renewed: u64) {
    let id = claimed.run.id;
    lock(sh).insert(
        id,
        Held {
            attempt: claimed.run.attempt,
            cancel: None,
            cancelling: false,
            survives: false,
            fenced: false,
            renewed,
            lost: false,
        },
    );
    let sh = sh.clone();
    tokio::spawn(async move {
        let keep_record = supervise(&sh, me, claimed).await;
        lock(&sh).remove(&id);
        if !keep_record {
            let _ = std::fs::remove_file(record_path(&sh, id));
        }
        sh.slot_freed.notify_waiters();
    });
}

fn record_path(sh: &Shared, run: Uuid) -> PathBuf {
    sh.options.state_dir.join(format!("{run}.json"))
}

/// Backoff of the agent's own calls to an unreachable server: about a minute in all.
const RETRY_DELAYS_MS: [u64; 10] = [
    0, 200, 500, 1000, 2000, 5000, 10_000, 10_000, 15_000, 15_000,
];

/// Proposes a state for our attempt; a refusal (the run moved on) is logged, not fatal.
async fn report(sh: &Shared, run: &FlowRun, state: StateKind, message: Option<String>) {
    let p = ProposeState {
        state,
        message,
        attempt: run.attempt,
        transition_id: Some(Uuid::now_v7()),
        result: None,
    };
    deliver(sh, run.id, &p).await;
}

/// Sends a proposal, retrying while the server is unreachable; a refusal (the run moved on)
/// is logged, not fatal.
async fn deliver(sh: &Shared, run: Uuid, p: &ProposeState) {
    for delay in RETRY_DELAYS_MS {
        tokio::time::sleep(Duration::from_millis(delay)).await;
        match sh.client.propose_state(run, p).await {
            Ok(_) => return,
            Err(e) if e.is_transient() => continue,
            Err(e) => {
                tracing::debug!(message = "state not applied", %run, state = %p.state, error = %e);
                return;
            }
        }
    }
    tracing::warn!(message = "could not report state; the crash detector will settle it", %run, state = %p.state);
}

/// Reads a run, retrying while the server is unreachable.
async fn read_run(sh: &Shared, run: Uuid) -> Option<FlowRun> {
    read_run_as(&sh.client, run).await
}

/// [`read_run`] through `client`.
async fn read_run_as(client: &Client, run: Uuid) -> Option<FlowRun> {
    for delay in RETRY_DELAYS_MS {
        tokio::time::sleep(Duration::from_millis(delay)).await;
        match client.flow_run(run).await {
            Ok(d) => return Some(d.run),
            Err(e) if e.is_transient() => continue,
            Err(e) => {
                tracing::debug!(message = "cannot read run", %run, error = %e);
                return None;
            }
        }
    }
    None
}

/// Whether run `run` may be launched now: its lease is fresh (see [`crate::fence`]), or a
/// heartbeat renewed it. False when the server no longer hands it to this agent (a claim
/// answer held up until after its lease expired), or when no renewal got through for two
/// leases; the run is then left to the crash detector, unlaunched.
async fn lease_confirmed(sh: &Shared, me: Uuid, run: &FlowRun) -> bool {
    let mut warned = false;
    loop {
        let Some((renewed, lost)) = lock(sh).get(&run.id).map(|h| (h.renewed, h.lost)) else {
            return false;
        };
        if lost {
            tracing::warn!(message = "not launching: the server no longer hands this run to this agent", run = %run.id, attempt = run.attempt);
            return false;
        }
        if sh.fence.fresh_for_launch(renewed) {
            return true;
        }
        let lease = sh.fence.lease();
        if sh.fence.now().saturating_sub(renewed) > 2 * lease.as_millis() as u64 {
            tracing::warn!(message = "not launching: its lease could not be renewed", run = %run.id, attempt = run.attempt);
            return false;
        }
        if !warned {
            tracing::info!(message = "the claim's answer came late; renewing the lease before launching", run = %run.id, attempt = run.attempt);
            warned = true;
        }
        let held = [HeldRun {
            id: run.id,
            attempt: run.attempt,
        }];
        let sent = sh.fence.now();
        let answer = tokio::time::timeout(
            (lease / 3).max(Duration::from_millis(500)),
            sh.client.agent_heartbeat(
                me,
                &weir_core::api::Heartbeat {
                    runs: held.to_vec(),
                },
            ),
        )
        .await;
        match answer {
            Ok(Ok(reply)) => {
                sh.fence.learn_lease(reply.lease_s);
                if reply.lost.contains(&run.id) {
                    if let Some(h) = lock(sh).get_mut(&run.id) {
                        h.lost = true;
                    }
                } else {
                    renewed_one(sh, run, sent);
                }
            }
            _ => tokio::time::sleep(Duration::from_millis(250)).await,
        }
    }
}

fn renewed_one(sh: &Shared, run: &FlowRun, sent: u64) {
    renewed(
        sh,
        &[HeldRun {
            id: run.id,
            attempt: run.attempt,
        }],
        &[],
        sent,
    );
}

/// Launches and follows a claimed run to its end. True when its record must stay: its
/// process ended but some of its spooled lines could not be shipped, which the agent's next
/// start does ([`adopt`]).
async fn supervise(sh: &Arc<Shared>, me: Uuid, claimed: ClaimedRun) -> bool {
    let run = claimed.run;
    let Some(spec) = claimed.spec else {
        report(
            sh,
            &run,
            StateKind::Crashed,
            Some("the run has no deployment to launch".into()),
        )
        .await;
        return false;
    };
    let kind = spec.infrastructure.kind();
    let Some(launcher) = sh.launchers.get(&kind).cloned() else {
        let msg = format!(
            "this agent has no {kind} launcher (it launches: {}); start one with \
             `weir agent --launchers {kind}`",
            sh.launchers
                .keys()
                .map(|k| k.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
        report(sh, &run, StateKind::Crashed, Some(msg)).await;
        return false;
    };
    if spec.command.is_empty() {
        let msg = format!(
            "deployment {:?} has no command to run",
            run.deployment.clone().unwrap_or_default()
        );
        report(sh, &run, StateKind::Crashed, Some(msg)).await;
        return false;
    }
    // Launchers whose infrastructure injects secrets itself (ECS `valueFrom`) get the
    // references; the agent then never holds a value.
    let by_reference = launcher.secrets_by_reference();
    let resolved = if by_reference {
        Ok(BTreeMap::new())
    } else {
        sh.resolver.resolve_all(&spec.secrets).await
    };
    let secrets = match resolved {
        Ok(s) => s,
        Err(e) => {
            report(
                sh,
                &run,
                StateKind::Failed,
                Some(format!("before the flow started: {e}")),
            )
            .await;
            return false;
        }
    };
    let mut argv = spec.command.clone();
    if !spec.plain_command {
        let params = serde_json::Value::Object(run.parameters.clone()).to_string();
        argv.extend([
            "run".to_string(),
            spec.flow.clone(),
            "--params-json".to_string(),
            params,
        ]);
    }
    // The run token is a credential like any secret: never in the run's logs.
    let redact: Vec<String> = secrets
        .values()
        .chain(claimed.run_token.iter())
        .filter(|v| !v.is_empty())
        .cloned()
        .collect();
    let launch_env = LaunchEnv {
        api_url: sh.options.api_url.clone(),
        api_key: claimed.run_token.clone(),
        run: AssignedRun {
            flow_run_id: run.id,
            attempt: run.attempt,
            resume: claimed.resume,
        },
        project: run.project.clone(),
        flow: run.flow.clone(),
        deployment: run.deployment.clone(),
        parameters: run.parameters.clone(),
        // Names only: the SDK in the child redacts these variables' values from what it reports.
        secret_vars: if by_reference {
            spec.secrets.keys().cloned().collect()
        } else {
            secrets.keys().cloned().collect()
        },
        outcome_file: Some(
            crate::outcome::path(&sh.options.state_dir, run.id, run.attempt)
                .display()
                .to_string(),
        ),
        // Over the agent's own --result-storage (in `options.env`).
        result_storage: spec.result_storage.clone(),
        output_forwarded: launcher.forwards_output(),
        tick_at: run.tick_at,
    };
    let mut env = sh.options.env.clone();
    env.extend(spec.env.clone());
    env.extend(launch_env.to_vars());
    env.extend(secrets);
    let launch = LaunchSpec {
        flow_run_id: run.id,
        attempt: run.attempt,
        queue: run.work_queue.clone(),
        argv,
        infrastructure: spec.infrastructure.clone(),
        env,
        workdir: sh.options.workdir.clone(),
        redact,
        secret_refs: if by_reference {
            spec.secrets.clone()
        } else {
            BTreeMap::new()
        },
        spool: Some(sh.spool.clone()),
    };
    if !lease_confirmed(sh, me, &run).await {
        return false;
    }
    let mut launched = match launcher.launch(launch).await {
        Ok(l) => l,
        Err(e) => {
            // A missing image is the deployment's mistake, not an accident: Failed.
            let state = match e {
                LaunchError::ImageNotFound { .. } => StateKind::Failed,
                _ => StateKind::Crashed,
            };
            let msg = format!("launch failed ({} launcher): {e}", launcher.name());
            report(sh, &run, state, Some(msg)).await;
            return false;
        }
    };
    adopt::write_record(
        sh,
        &adopt::Record {
            run: run.id,
            attempt: run.attempt,
            pid: launched.id(),
            launcher: Some(launcher.name().to_string()),
            plain: spec.plain_command,
            ended: false,
        },
    );
    let (cancelled_early, lost_early) = {
        let mut held = lock(sh);
        match held.get_mut(&run.id) {
            Some(h) => {
                h.cancel = Some(launched.canceller());
                h.survives = launcher.survives_agent();
                (h.cancelling, h.lost)
            }
            None => (false, false),
        }
    };
    if lost_early {
        // Lost while launching: another attempt may already run.
        launched.canceller().cancel(Duration::ZERO);
    } else if cancelled_early {
        launched.canceller().cancel(sh.options.cancel_grace);
    }
    tracing::info!(message = "launched run", run = %run.id, attempt = run.attempt, id = %launched.id());
    report(sh, &run, StateKind::Running, None).await;
    // Once the attempt ends with a retry scheduled, the server no longer shows the run to
    // this agent's key; the attempt's run token still reaches it until the next attempt.
    let token = claimed.run_token.clone().map(|t| sh.client.with_token(t));
    let (exit, shipped) =
        drain_and_wait(sh, run.id, run.attempt, &mut launched, token.clone()).await;
    settle(sh, &run, spec.plain_command, exit, token.as_ref()).await;
    finish_spool(
        sh,
        run.id,
        run.attempt,
        shipped,
        &launched.id(),
        spec.plain_command,
    )
}

/// Streams the launch's output to the server as log lines (batched), then waits for it.
/// Also says whether every line was delivered. `token` is the attempt's own client (its run
/// token), for the lines the server takes no more from this agent's key.
async fn drain_and_wait(
    sh: &Arc<Shared>,
    run: Uuid,
    attempt: u32,
    launched: &mut Launched,
    token: Option<Client>,
) -> (ExitStatus, bool) {
    let shipper = crate::logs::Shipper::start_with(sh.client.clone(), token, attempt);
    while let Some(line) = launched.output.recv().await {
        if !shipper
            .send(crate::logs::log_line(run, attempt, line))
            .await
        {
            break;
        }
    }
    let exit = launched.wait().await;
    let shipped = shipper.close().await;
    (exit, shipped)
}

/// After an attempt's end was settled: removes its spool when every line was shipped and
/// says the record may go. Otherwise keeps both, the record marked ended, so that the agent's
/// next start ships the rest ([`adopt`]); returns true then.
fn finish_spool(
    sh: &Shared,
    run: Uuid,
    attempt: u32,
    shipped: bool,
    pid: &str,
    plain: bool,
) -> bool {
    if shipped || !sh.spool.exists(run, attempt) {
        sh.spool.remove(run, attempt);
        return false;
    }
    tracing::warn!(message = "keeping the run's spooled output: the server did not take all of it; the agent's next start sends it", %run, attempt);
    adopt::write_record(
        sh,
        &adopt::Record {
            run,
            attempt,
            pid: pid.to_string(),
            launcher: Some(InfrastructureKind::Process.as_str().to_string()),
            plain,
            ended: true,
        },
    );
    true
}

/// After the process exited: if it did not report a final state itself, deliver the one it
/// left in its outcome file, else report one from how it ended.
async fn settle(sh: &Shared, run: &FlowRun, plain: bool, exit: ExitStatus, token: Option<&Client>) {
    settle_once(sh, run, plain, exit, token).await;
    let _ = std::fs::remove_file(crate::outcome::path(
        &sh.options.state_dir,
        run.id,
        run.attempt,
    ));
}

async fn settle_once(
    sh: &Shared,
    run: &FlowRun,
    plain: bool,
    exit: ExitStatus,
    token: Option<&Client>,
) {
    let current = match (read_run(sh, run.id).await, token) {
        (Some(r), _) => Some(r),
        // A run whose attempt ended with a retry scheduled is no longer shown to this agent's
        // key; the attempt's token still reads it.
        (None, Some(c)) => read_run_as(c, run.id).await,
        (None, None) => None,
    };
    let Some(current) = current else {
        tracing::warn!(message = "cannot read run after exit; the crash detector will settle it", run = %run.id);
        return;
    };
    if current.attempt != run.attempt || current.state.is_terminal() || current.state.is_claimable()
    {
        tracing::info!(message = "run finished", run = %run.id, state = %current.state, %exit);
        return;
    }
    if let Some(outcome) = crate::outcome::read(&sh.options.state_dir, &current) {
        tracing::info!(message = "run finished; delivering the final state its process left", run = %run.id, state = %outcome.state, %exit);
        deliver(sh, run.id, &outcome).await;
        return;
    }
    // A process that finished before the fence stopped it left its true outcome (above).
    let fenced = lock(sh).get(&run.id).is_some_and(|h| h.fenced);
    if fenced {
        let msg = format!(
            "stopped by its agent, which had no answer from the server for most of the {} s \
             lease (fencing: another attempt may take over, never this one)",
            sh.fence.lease().as_secs()
        );
        tracing::info!(message = "run fenced", run = %run.id, %exit);
        report(sh, &current, StateKind::Crashed, Some(msg)).await;
        return;
    }
    let (verdict, message) = if plain && exit.success() {
        (StateKind::Completed, format!("{exit}"))
    } else if plain && matches!(exit, ExitStatus::Code(_)) {
        (StateKind::Failed, format!("the command failed with {exit}"))
    } else if let ExitStatus::Stopped(reason) = &exit {
        (StateKind::Crashed, reason.clone())
    } else {
        (
            StateKind::Crashed,
            format!("the process ended with {exit} without reporting a final state"),
        )
    };
    let state = weir_core::orchestration::unreported_end(current.state, verdict);
    let message = if state == verdict {
        message
    } else {
        format!("cancelled; process ended with {exit}")
    };
    tracing::info!(message = "run finished", run = %run.id, %state, %exit);
    report(sh, &current, state, Some(message)).await;
}
