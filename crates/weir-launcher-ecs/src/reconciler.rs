//! One reconciler per agent: watches every task the agent started or took over with
//! batched `DescribeTasks` calls (at most 100 ARNs each, one round per tick whatever the
//! number of tasks), and settles each task's end.
//!
//! - A task still PROVISIONING/PENDING/ACTIVATING past the start deadline is stopped with a
//!   reason, and ends Crashed with it — never "Pending forever".
//! - A STOPPED task ends as [`status::ended`] says (stop code, reason, exit code, OOM).
//! - A task ECS no longer knows (`failures[]` reason MISSING three rounds in a row) ends
//!   Crashed.
//! - Cancelling is `StopTask` with a reason; the end is Cancelled once STOPPED is seen.

use crate::status::{self, EndKind, Ended, Phase};
use crate::{Error, describe_error};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{Notify, watch};

/// Most ARNs one `DescribeTasks` call takes.
pub const DESCRIBE_BATCH: usize = 100;
/// Rounds a task may be reported MISSING before it counts as gone.
const MISSING_ROUNDS: u32 = 3;

/// Counters of the calls a reconciler made (for benchmarks and logs).
#[derive(Debug, Default)]
pub struct Calls {
    /// `DescribeTasks` calls made: one per batch of watched tasks per round.
    pub describe_tasks: AtomicU64,
    /// `StopTask` calls made, for cancellations and tasks past their start deadline.
    pub stop_task: AtomicU64,
}

struct Watched {
    since: Instant,
    cancel_reason: Option<String>,
    deadline_hit: Option<String>,
    missing: u32,
    end: watch::Sender<Option<Ended>>,
}

struct Inner {
    ecs: aws_sdk_ecs::Client,
    cluster: String,
    every: Duration,
    start_deadline: Duration,
    tasks: Mutex<HashMap<String, Watched>>,
    added: Notify,
    calls: Calls,
}

/// Handle to the reconciler loop; cheap to clone. The loop stops when the last handle is
/// dropped.
#[derive(Clone)]
pub struct Reconciler(Arc<Inner>);

/// Waits for one task's end.
#[derive(Debug, Clone)]
pub struct TaskEnd(watch::Receiver<Option<Ended>>);

impl TaskEnd {
    /// Resolves with how the task ended (again, if called again).
    pub async fn wait(&mut self) -> Ended {
        match self.0.wait_for(Option::is_some).await {
            Ok(end) => end.clone().unwrap_or_else(lost),
            Err(_) => lost(),
        }
    }
}

fn lost() -> Ended {
    Ended {
        kind: EndKind::Crashed,
        reason: "the agent stopped watching the task".into(),
        said: String::new(),
    }
}

impl Reconciler {
    /// Starts the loop for `cluster`, describing every `every`, stopping tasks that have not
    /// started within `start_deadline`.
    pub fn start(
        ecs: aws_sdk_ecs::Client,
        cluster: String,
        every: Duration,
        start_deadline: Duration,
    ) -> Reconciler {
        let inner = Arc::new(Inner {
            ecs,
            cluster,
            every,
            start_deadline,
            tasks: Mutex::new(HashMap::new()),
            added: Notify::new(),
            calls: Calls::default(),
        });
        tokio::spawn(run(Arc::downgrade(&inner)));
        Reconciler(inner)
    }

    /// Watches task `arn` (started `age` ago, for the start deadline). Watching a task
    /// already watched returns another waiter for the same end.
    pub fn watch(&self, arn: &str, age: Duration) -> TaskEnd {
        let mut tasks = lock(&self.0.tasks);
        if let Some(w) = tasks.get(arn) {
            return TaskEnd(w.end.subscribe());
        }
        let (tx, rx) = watch::channel(None);
        tasks.insert(
            arn.to_string(),
            Watched {
                since: Instant::now().checked_sub(age).unwrap_or_else(Instant::now),
                cancel_reason: None,
                deadline_hit: None,
                missing: 0,
                end: tx,
            },
        );
        drop(tasks);
        self.0.added.notify_one();
        TaskEnd(rx)
    }

    /// Stops task `arn` with `reason` (sent to ECS as the stop reason). Returns at once; the
    /// task's end is Cancelled once ECS reports it STOPPED.
    pub fn cancel(&self, arn: &str, reason: &str) {
        let first = match lock(&self.0.tasks).get_mut(arn) {
            Some(w) => w.cancel_reason.replace(reason.to_string()).is_none(),
            None => return,
        };
        if first {
            let inner = self.0.clone();
            let (arn, reason) = (arn.to_string(), reason.to_string());
            tokio::spawn(async move {
                if let Err(error) = stop(&inner, &arn, &reason).await {
                    tracing::warn!(message = "StopTask failed; will retry next round", task = %arn, %error);
                    if let Some(w) = lock(&inner.tasks).get_mut(&arn) {
                        w.cancel_reason = None;
                    }
                }
            });
        }
    }

    /// How many tasks are watched.
    pub fn watching(&self) -> usize {
        lock(&self.0.tasks).len()
    }

    /// The calls made so far.
    pub fn calls(&self) -> &Calls {
        &self.0.calls
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

async fn stop(inner: &Inner, arn: &str, reason: &str) -> Result<(), Error> {
    inner.calls.stop_task.fetch_add(1, Ordering::Relaxed);
    // ECS keeps at most 255 characters of a reason.
    let reason: String = reason.chars().take(255).collect();
    inner
        .ecs
        .stop_task()
        .cluster(&inner.cluster)
        .task(arn)
        .reason(reason)
        .send()
        .await
        .map_err(|e| describe_error("StopTask", &e))?;
    Ok(())
}

async fn run(weak: std::sync::Weak<Inner>) {
    loop {
        let Some(inner) = weak.upgrade() else { return };
        let idle = lock(&inner.tasks).is_empty();
        let every = inner.every;
        if idle {
            // Sleep until a task is added (or wake now and then to notice being dropped).
            let _ = tokio::time::timeout(Duration::from_secs(1), inner.added.notified()).await;
            continue;
        }
        if let Err(error) = round(&inner).await {
            tracing::warn!(message = "describing ECS tasks failed; retrying next round", %error);
        }
        drop(inner);
        tokio::time::sleep(every).await;
    }
}

/// One round: describe every watched task, in batches, and settle what changed.
async fn round(inner: &Arc<Inner>) -> Result<(), Error> {
    let arns: Vec<String> = lock(&inner.tasks).keys().cloned().collect();
    for batch in arns.chunks(DESCRIBE_BATCH) {
        inner.calls.describe_tasks.fetch_add(1, Ordering::Relaxed);
        let out = inner
            .ecs
            .describe_tasks()
            .cluster(&inner.cluster)
            .set_tasks(Some(batch.to_vec()))
            .send()
            .await
            .map_err(|e| describe_error("DescribeTasks", &e))?;
        let mut seen = std::collections::HashSet::new();
        for task in out.tasks() {
            if let Some(arn) = task.task_arn() {
                seen.insert(arn);
                observe(inner, arn, task);
            }
        }
        // AWS answers an unknown ARN with a MISSING failure; moto leaves it out.
        for arn in batch.iter().filter(|a| !seen.contains(a.as_str())) {
            missing(inner, arn);
        }
    }
    Ok(())
}

fn observe(inner: &Arc<Inner>, arn: &str, task: &aws_sdk_ecs::types::Task) {
    let mut tasks = lock(&inner.tasks);
    let Some(w) = tasks.get_mut(arn) else { return };
    w.missing = 0;
    match status::phase(task, w.cancel_reason.is_some()) {
        Phase::Stopped(mut end) => {
            if let Some(why) = &w.deadline_hit {
                end = Ended {
                    kind: EndKind::Crashed,
                    reason: format!("{why}; ECS: {}", end.reason),
                    said: end.said,
                };
            }
            let _ = w.end.send(Some(end));
            tasks.remove(arn);
        }
        Phase::Starting(last)
            if w.deadline_hit.is_none() && w.since.elapsed() >= inner.start_deadline =>
        {
            let why = format!(
                "the task did not start within {:?} (last status {last})",
                inner.start_deadline
            );
            tracing::warn!(message = "ECS task past its start deadline; stopping it", task = %arn, status = %last);
            w.deadline_hit = Some(why.clone());
            w.cancel_reason = Some(why.clone());
            let (inner, arn) = (inner.clone(), arn.to_string());
            tokio::spawn(async move {
                if let Err(error) = stop(&inner, &arn, &why).await {
                    tracing::warn!(message = "StopTask failed", task = %arn, %error);
                }
            });
        }
        _ => {}
    }
}

fn missing(inner: &Inner, arn: &str) {
    let mut tasks = lock(&inner.tasks);
    let Some(w) = tasks.get_mut(arn) else { return };
    w.missing += 1;
    if w.missing >= MISSING_ROUNDS {
        let _ = w.end.send(Some(Ended {
            kind: EndKind::Crashed,
            reason: format!(
                "ECS no longer knows task {arn} (MISSING): it ended while nobody watched"
            ),
            said: String::new(),
        }));
        tasks.remove(arn);
    }
}
