//! The HTTP tracker: reports flow runs, task runs and logs to a Weir server.
//!
//! Task-run reports and log lines go into an in-process queue and a background sender ships
//! them in batches, so tracking costs a task a channel send (well under a microsecond on the
//! task's path). Network errors and server errors (a 500 while the database is away or its
//! disk full: batches are idempotent, so sending one again is safe) are retried with backoff
//! while reports keep buffering, up to [`MAX_PENDING_LOGS`] log lines (newer ones are then
//! dropped and counted, so a long outage cannot exhaust memory);
//! [`Tracker::finish_flow_run`] waits until everything reported before it is on the server,
//! then proposes the final state — so when the process exits, the server has every task run
//! and log line.
//!
//! Each flow run it tracks is heartbeated (at once, then at least three times per the lease
//! the server reports, at most every 5 s): the lease stays fresh while the process lives,
//! and a requested cancellation (or a lost lease) stops the process with SIGTERM, which the
//! flows binary turns into a Cancelled run.

use crate::local::LocalTracker;
use crate::tracker::{FlowRunFinish, FlowRunStart, StartedFlowRun, Tracker};
use futures::future::BoxFuture;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use uuid::Uuid;
use weir_client::Client;
use weir_core::StateKind;
use weir_core::api::{
    CreateFlowRun, LogBatch, NewLogLine, ProposeState, TaskRunBatch, TaskRunReport,
};

/// Largest batch sent in one request.
const MAX_BATCH: usize = 5_000;
/// How long the sender waits for more items before sending a partial batch.
const LINGER: Duration = Duration::from_millis(20);
/// Most log lines waiting for the server; beyond them new lines are dropped and counted.
pub const MAX_PENDING_LOGS: usize = 100_000;
/// How long a batch the server keeps failing with a 5xx other than 503 is retried before it
/// is dropped (a server that is up but broken); unreachable or 503 servers are waited for.
const SERVER_ERROR_PATIENCE: Duration = Duration::from_secs(300);

/// A tracked run's heartbeat task, and its flag "the final state is being sent" (after
/// which a refused run token is expected, not a lost run).
type Beating = (JoinHandle<()>, Arc<AtomicBool>);

enum Msg {
    Task(TaskRunReport),
    Log(NewLogLine),
    Flush(oneshot::Sender<()>),
}

/// A [`Tracker`] that sends everything to a Weir server (and prints like [`LocalTracker`]).
pub struct HttpTracker {
    client: Client,
    local: LocalTracker,
    /// The run an agent launched this process for: (id, attempt, resume).
    assigned: Mutex<Option<StartedFlowRun>>,
    /// Serialises "tell the local tracker which id to use" with its start.
    start_lock: tokio::sync::Mutex<()>,
    project: String,
    heartbeat_every: Duration,
    tx: mpsc::UnboundedSender<Msg>,
    rx: Mutex<Option<mpsc::UnboundedReceiver<Msg>>>,
    /// Each tracked run's heartbeat task, and its flag "the final state is being sent".
    heartbeats: Mutex<HashMap<Uuid, Beating>>,
    /// Values of the secret environment variables named by `WEIR_SECRET_VARS`, replaced by
    /// `***` in everything reported.
    redactor: weir_core::redact::Redactor,
    /// Where the final state of the assigned run is written before it is sent
    /// (`WEIR_OUTCOME_FILE`): the agent delivers it if this process cannot.
    outcome: Option<(Uuid, std::path::PathBuf)>,
    /// This process's log stream and the number of its next line: a batch sent again after
    /// a lost answer is stored once.
    log_stream: u32,
    log_seq: std::sync::atomic::AtomicU64,
    /// Log lines queued and not yet sent (or refused), and those dropped for want of room.
    pending_logs: Arc<std::sync::atomic::AtomicUsize>,
    dropped_logs: std::sync::atomic::AtomicU64,
}

impl HttpTracker {
    /// A tracker reporting through `client`. Top-level runs are created in `project`, unless
    /// `assigned` names a run an agent created; `local` prints (or not) and keeps records.
    pub fn new(
        client: Client,
        project: String,
        assigned: Option<StartedFlowRun>,
        local: LocalTracker,
    ) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        let outcome = assigned.as_ref().and_then(|a| {
            std::env::var_os(weir_core::contract::launch::var::OUTCOME_FILE)
                .filter(|p| !p.is_empty())
                .map(|p| (a.flow_run_id, std::path::PathBuf::from(p)))
        });
        HttpTracker {
            client,
            local,
            assigned: Mutex::new(assigned),
            start_lock: tokio::sync::Mutex::new(()),
            project,
            heartbeat_every: Duration::from_secs(5),
            tx,
            rx: Mutex::new(Some(rx)),
            heartbeats: Mutex::new(HashMap::new()),
            redactor: secret_redactor(),
            outcome,
            log_stream: weir_client::new_log_stream(),
            log_seq: std::sync::atomic::AtomicU64::new(0),
            pending_logs: Arc::new(std::sync::atomic::AtomicUsize::new(0)),
            dropped_logs: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// An `HttpTracker` for the server at `url` (key from `WEIR_API_KEY` or the local admin
    /// key, project from `WEIR_PROJECT`, default `default`), reporting `assigned` as the run an
    /// agent launched this process for — in which case nothing is printed: the agent forwards
    /// the process's output itself. The error gives `local` back with the reason.
    #[allow(clippy::result_large_err)]
    pub fn from_parts(
        url: &str,
        assigned: Option<StartedFlowRun>,
        local: LocalTracker,
    ) -> Result<Arc<dyn Tracker>, (String, LocalTracker)> {
        let key = weir_client::key_from_env();
        let client = match Client::new(url, key) {
            Ok(c) => c,
            Err(e) => return Err((format!("cannot use WEIR_API_URL {url:?}: {e}"), local)),
        };
        let project = std::env::var(weir_core::contract::launch::var::PROJECT)
            .ok()
            .filter(|p| !p.is_empty())
            .unwrap_or_else(|| "default".into());
        let local = if assigned.is_some() {
            local.quiet()
        } else {
            local
        };
        Ok(Arc::new(HttpTracker::new(client, project, assigned, local)))
    }

    /// Sets the longest interval between heartbeats of a tracked run (default 5 s; shorter
    /// when the server's lease asks for it).
    pub fn heartbeat_every(mut self, every: Duration) -> Self {
        self.heartbeat_every = every;
        self
    }

    fn ensure_sender(&self) {
        let rx = self.rx.lock().ok().and_then(|mut r| r.take());
        if let Some(rx) = rx {
            tokio::spawn(send_loop(
                self.client.clone(),
                rx,
                self.pending_logs.clone(),
            ));
        }
    }

    async fn create_run(&self, start: &FlowRunStart) -> anyhow::Result<StartedFlowRun> {
        let req = CreateFlowRun {
            project: Some(self.project.clone()),
            flow: Some(start.flow.clone()),
            parameters: match self.redact_json(serde_json::Value::Object(start.parameters.clone()))
            {
                serde_json::Value::Object(m) => m,
                _ => start.parameters.clone(),
            },
            state: Some(StateKind::Running),
            parent_flow_run_id: start.parent_flow_run_id,
            ..Default::default()
        };
        let run = retry("create the flow run", || self.client.create_flow_run(&req)).await?;
        Ok(StartedFlowRun {
            flow_run_id: run.id,
            attempt: run.attempt.max(1),
            resume: false,
        })
    }

    fn start_heartbeat(&self, run: StartedFlowRun, top_level: bool) {
        let client = self.client.clone();
        let every = self.heartbeat_every;
        let finishing = Arc::new(AtomicBool::new(false));
        let flag = finishing.clone();
        let handle = tokio::spawn(async move {
            // The first beat goes out at once: it tells the server's lease, and beats then
            // come at least three times per lease (a server may run with a lease shorter
            // than `every`; the run must not be crashed while this process lives).
            let mut wait = Duration::ZERO;
            let mut beat = every;
            loop {
                tokio::time::sleep(wait).await;
                wait = beat;
                match client.run_heartbeat(run.flow_run_id, run.attempt).await {
                    // This process reported the final state itself: the attempt is over
                    // because it said so (a failure may have become a retry), not stolen.
                    Ok(reply) if reply.lost && finishing.load(Ordering::SeqCst) => return,
                    Ok(reply) if top_level && reply.cancel => {
                        crate::say::err!("weir: cancellation requested; stopping");
                        let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGTERM);
                        return;
                    }
                    Ok(reply) if top_level && reply.lost => {
                        let what = match client.flow_run(run.flow_run_id).await {
                            Ok(d) => weir_core::why::after_attempt((&d.run).into(), run.attempt),
                            Err(_) => {
                                format!("attempt {} is over: the server ended it", run.attempt)
                            }
                        };
                        stop_because(what);
                        return;
                    }
                    Ok(reply) if reply.lease_s > 0 => {
                        beat = weir_core::contract::heartbeat::interval(every, reply.lease_s);
                        wait = beat;
                    }
                    Ok(_) => {}
                    // The run token stops working when its attempt ends (another attempt
                    // took over, or the run was ended without this process): stop.
                    Err(e)
                        if top_level
                            && !e.is_transient()
                            && e.status()
                                .is_some_and(|s| s.as_u16() == 401 || s.as_u16() == 404) =>
                    {
                        if !finishing.load(Ordering::SeqCst) {
                            stop_because(format!("attempt {} is over ({e})", run.attempt));
                        }
                        return;
                    }
                    Err(e) => crate::say::err!("weir: heartbeat failed (will retry): {e}"),
                }
            }
        });
        if let Ok(mut hb) = self.heartbeats.lock() {
            hb.insert(run.flow_run_id, (handle, flag));
        }
    }

    fn redact(&self, text: String) -> String {
        if self.redactor.is_empty() {
            return text;
        }
        self.redactor.redact(&text).into_owned()
    }

    fn redact_json(&self, value: serde_json::Value) -> serde_json::Value {
        if self.redactor.is_empty() {
            return value;
        }
        let text = value.to_string();
        match self.redactor.redact(&text) {
            std::borrow::Cow::Borrowed(_) => value,
            std::borrow::Cow::Owned(clean) => serde_json::from_str(&clean)
                .unwrap_or_else(|_| serde_json::Value::String(weir_core::redact::REDACTED.into())),
        }
    }

    /// Writes the final state of the run the agent launched this process for where the agent
    /// will look for it (see [`HttpTracker::from_env`]), before it is sent: if the server
    /// cannot be reached before this process exits, the agent delivers it.
    fn write_outcome(&self, run: Uuid, proposal: &ProposeState) {
        let Some((assigned, path)) = &self.outcome else {
            return;
        };
        if *assigned != run {
            return;
        }
        let Ok(text) = serde_json::to_vec(proposal) else {
            return;
        };
        let tmp = path.with_extension("tmp");
        let written = std::fs::write(&tmp, text).and_then(|()| std::fs::rename(&tmp, path));
        if let Err(e) = written {
            crate::say::err!(
                "weir: cannot write the outcome file {}: {e}",
                path.display()
            );
        }
    }

    /// Waits until everything reported so far is on the server, for at most
    /// `WEIR_FLUSH_TIMEOUT_S` seconds (default 120) if the server stays unreachable.
    async fn flush(&self) -> bool {
        let (ack, done) = oneshot::channel();
        if self.tx.send(Msg::Flush(ack)).is_err() {
            return false;
        }
        matches!(tokio::time::timeout(flush_limit(), done).await, Ok(Ok(())))
    }
}

impl Tracker for HttpTracker {
    fn start_flow_run(&self, start: FlowRunStart) -> BoxFuture<'_, anyhow::Result<StartedFlowRun>> {
        Box::pin(async move {
            self.ensure_sender();
            let top_level = start.parent_flow_run_id.is_none();
            let assigned = if top_level {
                self.assigned.lock().ok().and_then(|mut a| a.take())
            } else {
                None
            };
            let started = match assigned {
                Some(a) => a,
                None => self.create_run(&start).await?,
            };
            let _guard = self.start_lock.lock().await;
            self.local.set_next_run(started);
            let local = self.local.start_flow_run(start).await?;
            debug_assert_eq!(local.flow_run_id, started.flow_run_id);
            self.start_heartbeat(started, top_level);
            Ok(started)
        })
    }

    fn task_run(&self, mut report: TaskRunReport) {
        report.message = report.message.map(|m| self.redact(m));
        self.local.task_run(report.clone());
        let _ = self.tx.send(Msg::Task(report));
    }

    fn log(&self, mut line: NewLogLine) {
        line.message = self.redact(line.message);
        line.stream = Some(self.log_stream);
        line.seq = Some(self.log_seq.fetch_add(1, Ordering::Relaxed));
        self.local.log(line.clone());
        if self.pending_logs.fetch_add(1, Ordering::SeqCst) >= MAX_PENDING_LOGS {
            self.pending_logs.fetch_sub(1, Ordering::SeqCst);
            if self.dropped_logs.fetch_add(1, Ordering::SeqCst) == 0 {
                crate::say::err!(
                    "weir: {MAX_PENDING_LOGS} log lines are waiting for the server; dropping \
                     newer ones until it takes them"
                );
            }
            return;
        }
        let _ = self.tx.send(Msg::Log(line));
    }

    fn reports_to_server(&self) -> bool {
        true
    }

    fn finish_flow_run(&self, finish: FlowRunFinish) -> BoxFuture<'_, anyhow::Result<()>> {
        Box::pin(async move {
            if !self.flush().await {
                crate::say::err!(
                    "weir: some task runs or log lines could not be sent to the server"
                );
            }
            let dropped = self.dropped_logs.swap(0, Ordering::SeqCst);
            if dropped > 0 {
                crate::say::err!(
                    "weir: {dropped} log lines were dropped while the server could not take \
                     them (more than {MAX_PENDING_LOGS} waiting)"
                );
            }
            let proposal = ProposeState {
                state: finish.state,
                message: finish.message.clone().map(|m| self.redact(m)),
                attempt: finish.attempt,
                transition_id: Some(Uuid::now_v7()),
                result: finish.result_ref.clone(),
            };
            self.write_outcome(finish.flow_run_id, &proposal);
            // From here the run token may stop working at any moment: that is not a lost run.
            if let Some(finishing) = self
                .heartbeats
                .lock()
                .ok()
                .and_then(|h| h.get(&finish.flow_run_id).map(|(_, f)| f.clone()))
            {
                finishing.store(true, Ordering::SeqCst);
            }
            let outcome = tokio::time::timeout(
                flush_limit(),
                retry("report the final state", || {
                    self.client.propose_state(finish.flow_run_id, &proposal)
                }),
            )
            .await;
            if let Some(h) = self
                .heartbeats
                .lock()
                .ok()
                .and_then(|mut h| h.remove(&finish.flow_run_id))
            {
                h.0.abort();
            }
            let (attempt, reported) = (finish.attempt, finish.state);
            self.local.finish_flow_run(finish).await?;
            match outcome {
                Ok(Ok(run)) => {
                    if run.state == StateKind::AwaitingRetry {
                        crate::say::err!(
                            "weir: {} ({reported} reported)",
                            weir_core::why::after_attempt((&run).into(), attempt)
                        );
                    }
                    Ok(())
                }
                Ok(Err(e)) if e.status().is_some_and(|s| s.as_u16() == 409) => {
                    crate::say::err!("weir: the server kept its own final state: {e}");
                    Ok(())
                }
                Ok(Err(e)) => Err(e.into()),
                Err(_) if self.outcome.is_some() => {
                    crate::say::err!(
                        "weir: the server stayed unreachable; the agent delivers the final state"
                    );
                    Ok(())
                }
                Err(_) => Err(anyhow::anyhow!(
                    "the server stayed unreachable; the final state was not reported"
                )),
            }
        })
    }
}

/// Why this process stops itself, once it has: the flows binary's signal handler says this
/// instead of "cancelled by SIGTERM".
static STOP_REASON: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// Records why the attempt is over, says it, and stops the process with SIGTERM (so the
/// flow's tasks are stopped the same way as for a cancellation).
fn stop_because(reason: String) {
    crate::say::err!("weir: {reason}; stopping");
    let _ = STOP_REASON.set(reason);
    let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGTERM);
}

/// Why this process stopped itself, if it did (see [`stop_because`]).
pub(crate) fn stop_reason() -> Option<&'static str> {
    STOP_REASON.get().map(String::as_str)
}

/// How long a finished flow waits for an unreachable server, first to take its reports, then
/// its final state: `WEIR_FLUSH_TIMEOUT_S` seconds (default 120) each.
fn flush_limit() -> Duration {
    let limit = std::env::var("WEIR_FLUSH_TIMEOUT_S")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(120);
    Duration::from_secs(limit)
}

/// Calls `f` until it succeeds or fails for a reason retrying cannot fix (about a minute of
/// retries for network trouble).
async fn retry<T, F, Fut>(what: &str, f: F) -> Result<T, weir_client::Error>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<T, weir_client::Error>>,
{
    let mut delay = Duration::from_millis(100);
    let mut tries = 0;
    loop {
        match f().await {
            Ok(v) => return Ok(v),
            Err(e) if e.is_transient() && tries < 20 => {
                if tries == 0 {
                    crate::say::err!("weir: cannot {what} yet ({e}); retrying");
                }
                tries += 1;
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
            Err(e) => return Err(e),
        }
    }
}

/// Ships queued reports and lines in batches until every sender is gone; `pending_logs`
/// counts the lines queued and not yet shipped.
async fn send_loop(
    client: Client,
    mut rx: mpsc::UnboundedReceiver<Msg>,
    pending_logs: Arc<std::sync::atomic::AtomicUsize>,
) {
    let mut tasks: Vec<TaskRunReport> = Vec::new();
    let mut logs: Vec<NewLogLine> = Vec::new();
    let mut acks: Vec<oneshot::Sender<()>> = Vec::new();
    loop {
        let Some(first) = rx.recv().await else { return };
        let mut next = Some(first);
        let deadline = tokio::time::Instant::now() + LINGER;
        loop {
            match next.take() {
                Some(Msg::Task(t)) => tasks.push(t),
                Some(Msg::Log(l)) => logs.push(l),
                Some(Msg::Flush(a)) => acks.push(a),
                None => {}
            }
            if !acks.is_empty() || tasks.len() >= MAX_BATCH || logs.len() >= MAX_BATCH {
                // Take whatever else is already queued, without waiting.
                while let Ok(m) = rx.try_recv() {
                    match m {
                        Msg::Task(t) => tasks.push(t),
                        Msg::Log(l) => logs.push(l),
                        Msg::Flush(a) => acks.push(a),
                    }
                    if tasks.len() >= MAX_BATCH * 4 {
                        break;
                    }
                }
                break;
            }
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(m)) => next = Some(m),
                Ok(None) | Err(_) => break,
            }
        }
        while !tasks.is_empty() {
            let n = tasks.len().min(MAX_BATCH);
            let batch = TaskRunBatch {
                reports: tasks.drain(..n).collect(),
            };
            send(&client, "task runs", || client.ingest_task_runs(&batch)).await;
        }
        while !logs.is_empty() {
            let n = logs.len().min(MAX_BATCH);
            let batch = LogBatch {
                lines: logs.drain(..n).collect(),
            };
            send(&client, "log lines", || client.ingest_logs(&batch)).await;
            pending_logs.fetch_sub(n, Ordering::SeqCst);
        }
        for a in acks.drain(..) {
            let _ = a.send(());
        }
    }
}

/// Sends one batch, retrying network trouble with backoff for as long as it takes, and a
/// server error (5xx: its database away, its disk full) for [`SERVER_ERROR_PATIENCE`]; a
/// batch the server refuses (4xx) is reported and dropped. Batches are idempotent (task
/// runs by id, log lines by their stream and number), so one sent again is stored once.
async fn send<F, Fut>(client: &Client, what: &str, f: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<weir_core::api::BatchAccepted, weir_client::Error>>,
{
    let mut delay = Duration::from_millis(50);
    let mut warned = false;
    let mut failing_since: Option<std::time::Instant> = None;
    loop {
        match f().await {
            Ok(_) => return,
            Err(e)
                if e.is_transient()
                    || (e.status().is_some_and(|s| s.is_server_error())
                        && failing_since
                            .get_or_insert_with(std::time::Instant::now)
                            .elapsed()
                            < SERVER_ERROR_PATIENCE) =>
            {
                if !warned {
                    crate::say::err!(
                        "weir: {} cannot take {what} now ({e}); buffering and retrying",
                        client.base_url()
                    );
                    warned = true;
                }
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(2));
            }
            Err(e) => {
                crate::say::err!("weir: the server refused {what}: {e}");
                return;
            }
        }
    }
}

/// A redactor for the values of the environment variables named in `WEIR_SECRET_VARS`
/// (comma-separated), which an agent sets to the variables it filled from secret references,
/// and for the run token in `WEIR_API_KEY` (`weirrun_…`), a credential like them.
fn secret_redactor() -> weir_core::redact::Redactor {
    use weir_core::contract::launch::{secret_var_names, var};
    let names = std::env::var(var::SECRET_VARS).unwrap_or_default();
    let run_token = std::env::var(var::API_KEY)
        .ok()
        .filter(|k| k.trim().starts_with(weir_core::auth::RUN_TOKEN_PREFIX));
    let values: Vec<String> = secret_var_names(&names)
        .filter_map(|n| std::env::var(n).ok())
        .chain(run_token)
        .collect();
    weir_core::redact::Redactor::new(values)
}
