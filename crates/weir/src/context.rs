//! The run context: which flow run and task run the current code belongs to.
//!
//! A flow run's context travels with its future as a tokio task-local (so it costs nothing to
//! reach and needs no lock); submitted tasks carry it into their spawned future. The current
//! task run id is a second task-local set around each task attempt; the tracing layer reads
//! both to attribute log lines.

use crate::results::Storage;
use crate::tracker::Tracker;
use std::cell::Cell;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use uuid::Uuid;

tokio::task_local! {
    pub(crate) static CTX: Arc<FlowCtx>;
    pub(crate) static TASK_RUN: Option<Uuid>;
    pub(crate) static RUNNER: Arc<RunEnv>;
}

thread_local! {
    /// Set by `map` around the creation of each call, so that the call records its index.
    pub(crate) static MAP_INDEX: Cell<Option<u32>> = const { Cell::new(None) };
}

/// What every flow run started by one [`crate::Runner`] shares.
pub(crate) struct RunEnv {
    pub tracker: Arc<dyn Tracker>,
    pub storage: Storage,
    /// Flow runs started and not yet finished (outermost first), for cancellation.
    pub active: Mutex<Vec<(Uuid, u32)>>,
}

impl RunEnv {
    pub fn new(tracker: Arc<dyn Tracker>, storage: Storage) -> Arc<Self> {
        Arc::new(RunEnv {
            tracker,
            storage,
            active: Mutex::new(Vec::new()),
        })
    }

    /// The environment of flows awaited outside any [`crate::Runner`].
    pub fn global() -> Arc<RunEnv> {
        static GLOBAL: OnceLock<Arc<RunEnv>> = OnceLock::new();
        GLOBAL
            .get_or_init(|| {
                RunEnv::new(crate::environment::tracker_from_env(), Storage::from_env())
            })
            .clone()
    }

    pub fn add_active(&self, id: Uuid, attempt: u32) {
        if let Ok(mut a) = self.active.lock() {
            a.push((id, attempt));
        }
    }

    pub fn remove_active(&self, id: Uuid) {
        if let Ok(mut a) = self.active.lock() {
            a.retain(|(i, _)| *i != id);
        }
    }

    pub fn take_active(&self) -> Vec<(Uuid, u32)> {
        self.active
            .lock()
            .map(|mut a| std::mem::take(&mut *a))
            .unwrap_or_default()
    }
}

/// One flow run in progress.
pub(crate) struct FlowCtx {
    pub id: Uuid,
    pub attempt: u32,
    pub resume: bool,
    pub flow: &'static str,
    pub env: Arc<RunEnv>,
    /// Calls made so far per task name: the next call index.
    counters: Mutex<HashMap<&'static str, u32>>,
}

impl FlowCtx {
    pub fn new(id: Uuid, attempt: u32, resume: bool, flow: &'static str, env: Arc<RunEnv>) -> Self {
        FlowCtx {
            id,
            attempt,
            resume,
            flow,
            env,
            counters: Mutex::new(HashMap::new()),
        }
    }

    /// The index of the next call of `task` in this flow run (0, 1, 2, … in program order).
    pub fn next_call_index(&self, task: &'static str) -> u32 {
        let mut c = match self.counters.lock() {
            Ok(c) => c,
            Err(poisoned) => poisoned.into_inner(),
        };
        let n = c.entry(task).or_insert(0);
        let i = *n;
        *n += 1;
        i
    }
}

/// The flow run the current code runs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlowRunInfo {
    /// The flow run's id (the server's, or a local one without a server).
    pub flow_run_id: Uuid,
    /// Attempt of the flow run.
    pub attempt: u32,
    /// Whether results of an earlier attempt are reused.
    pub resume: bool,
    /// The flow's name (`#[flow(name = …)]`, else the function's name).
    pub flow: &'static str,
}

/// The flow run the calling code belongs to, if it runs inside one.
pub fn current_flow_run() -> Option<FlowRunInfo> {
    CTX.try_with(|c| FlowRunInfo {
        flow_run_id: c.id,
        attempt: c.attempt,
        resume: c.resume,
        flow: c.flow,
    })
    .ok()
}

/// The task run the calling code belongs to, if it runs inside a task.
pub fn current_task_run_id() -> Option<Uuid> {
    TASK_RUN.try_with(|t| *t).ok().flatten()
}

/// The schedule tick of the run this process was launched for (`WEIR_TICK_AT`): the time its
/// schedule named, for runs of the scheduler, catch-up and `weir backfill`; `Ok(None)` for a
/// run started by hand or run locally. Pick the data a run works on by its tick, not by the
/// clock: a backfilled or caught-up run starts long after its tick.
///
/// ```no_run
/// # fn main() -> anyhow::Result<()> {
/// let day = weir::context::tick_at()?
///     .map(|t| t.date_naive())
///     .unwrap_or_else(|| chrono::Utc::now().date_naive());
/// # let _ = day; Ok(()) }
/// ```
pub fn tick_at() -> Result<Option<weir_core::Timestamp>, weir_core::contract::launch::LaunchEnvError>
{
    weir_core::contract::launch::tick_at_from_lookup(|k| std::env::var(k).ok())
}
