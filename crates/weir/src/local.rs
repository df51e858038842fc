//! [`LocalTracker`]: the default tracker. Prints one compact line per state change and log line
//! on stderr (unless quiet) and keeps every record in memory ([`LocalTracker::records`]).
//!
//! ```text
//! 12:00:01.234 etl Running (flow run 0190…, attempt 1)
//! 12:00:01.235 extract-0 Running
//! 12:00:01.236 extract-0 INFO extracted 100 rows
//! 12:00:01.237 extract-0 Completed
//! ```

use crate::tracker::{FlowRunFinish, FlowRunStart, StartedFlowRun, Tracker};
use futures::future::BoxFuture;
use std::collections::HashMap;
use std::io::Write;
use std::sync::Mutex;
use uuid::Uuid;
use weir_core::api::{LogLevel, NewLogLine, Parameters, TaskRunReport};
use weir_core::{StateKind, Timestamp};

/// One entry of a run's state history.
#[derive(Debug, Clone, PartialEq)]
pub struct StateEntry {
    /// The state the run entered.
    pub state: StateKind,
    /// When it entered it, on this process's clock.
    pub at: Timestamp,
    /// Message (error text for Failed).
    pub message: Option<String>,
    /// Attempt (of the task run or flow run).
    pub attempt: u32,
}

/// A flow run as recorded.
#[derive(Debug, Clone, PartialEq)]
pub struct FlowRunRecord {
    /// The flow run's id: the one an agent assigned (`WEIR_FLOW_RUN_ID`), else a fresh UUIDv7.
    pub id: Uuid,
    /// The flow's name (`#[flow(name = …)]`, else the function's name).
    pub flow: String,
    /// The attempt this process runs: 1 unless an agent assigned another.
    pub attempt: u32,
    /// Whether persisted results were reused.
    pub resume: bool,
    /// The parameters the run was called with, by name, as JSON.
    pub parameters: Parameters,
    /// Calling flow run, for subflows.
    pub parent_flow_run_id: Option<Uuid>,
    /// Calling task run, for subflows called inside a task.
    pub parent_task_run_id: Option<Uuid>,
    /// States, oldest first.
    pub history: Vec<StateEntry>,
    /// The result, when Completed.
    pub result: Option<serde_json::Value>,
}

impl FlowRunRecord {
    /// The state last entered (Running while the history is empty).
    pub fn state(&self) -> StateKind {
        self.history.last().map_or(StateKind::Running, |s| s.state)
    }

    /// Message of the current state.
    pub fn message(&self) -> Option<&str> {
        self.history.last().and_then(|s| s.message.as_deref())
    }
}

/// A task run as recorded (folded from its reports).
#[derive(Debug, Clone, PartialEq)]
pub struct TaskRunRecord {
    /// The task run's id (UUIDv7, made by the SDK when the call took its place).
    pub id: Uuid,
    /// The flow run the task ran in.
    pub flow_run_id: Uuid,
    /// The task's name (`#[task(name = …)]`, else the function's name).
    pub task: String,
    /// States, oldest first.
    pub history: Vec<StateEntry>,
    /// SHA-256 of the call's arguments as JSON; `None` for tasks with `fingerprint = false`.
    pub inputs_fingerprint: Option<String>,
    /// The key the result is cached under; `None` unless the task caches.
    pub cache_key: Option<String>,
    /// Persisted result or cache entry location.
    pub result_location: Option<String>,
    /// Index within a map.
    pub map_index: Option<u32>,
    /// The task's `tags = […]`, as reported.
    pub tags: Vec<String>,
}

impl TaskRunRecord {
    /// The state last reported (Pending before the first report).
    pub fn state(&self) -> StateKind {
        self.history.last().map_or(StateKind::Pending, |s| s.state)
    }

    /// Message of the current state.
    pub fn message(&self) -> Option<&str> {
        self.history.last().and_then(|s| s.message.as_deref())
    }

    /// Attempts made (the highest attempt reported).
    pub fn attempts(&self) -> u32 {
        self.history.iter().map(|s| s.attempt).max().unwrap_or(0)
    }

    /// The states, in order.
    pub fn states(&self) -> Vec<StateKind> {
        self.history.iter().map(|s| s.state).collect()
    }
}

/// Everything a [`LocalTracker`] recorded.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunRecords {
    /// Flow runs in start order.
    pub flow_runs: Vec<FlowRunRecord>,
    /// Task runs in order of their first report.
    pub task_runs: Vec<TaskRunRecord>,
    /// Log lines in order.
    pub logs: Vec<NewLogLine>,
}

impl RunRecords {
    /// The flow run with `id`.
    pub fn flow_run(&self, id: Uuid) -> Option<&FlowRunRecord> {
        self.flow_runs.iter().find(|f| f.id == id)
    }

    /// Flow runs of flow `name`.
    pub fn flow_runs_of(&self, name: &str) -> Vec<&FlowRunRecord> {
        self.flow_runs.iter().filter(|f| f.flow == name).collect()
    }

    /// Task runs of task `name`, in order of their first report.
    pub fn task_runs_of(&self, name: &str) -> Vec<&TaskRunRecord> {
        self.task_runs.iter().filter(|t| t.task == name).collect()
    }

    /// Log lines of task run `id`.
    pub fn logs_of_task_run(&self, id: Uuid) -> Vec<&NewLogLine> {
        self.logs
            .iter()
            .filter(|l| l.task_run_id == Some(id))
            .collect()
    }
}

#[derive(Default)]
struct Inner {
    flows: Vec<FlowRunRecord>,
    reports: Vec<TaskRunReport>,
    logs: Vec<NewLogLine>,
    /// Terminal mode only: display labels (`extract-0`) and the counters behind them.
    labels: HashMap<Uuid, String>,
    counters: HashMap<(Uuid, String), u32>,
}

/// The default [`Tracker`]: terminal lines and an in-memory record; see the module docs.
pub struct LocalTracker {
    terminal: bool,
    assigned: Mutex<Option<StartedFlowRun>>,
    /// Identity for the very next flow run started (top-level or subflow), set by a wrapping
    /// tracker that obtained it elsewhere (e.g. from the server).
    next: Mutex<Option<StartedFlowRun>>,
    inner: Mutex<Inner>,
}

impl Default for LocalTracker {
    fn default() -> Self {
        LocalTracker::new()
    }
}

impl std::fmt::Debug for LocalTracker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalTracker")
            .field("terminal", &self.terminal)
            .finish_non_exhaustive()
    }
}

fn clock(at: &Timestamp) -> String {
    at.with_timezone(&chrono::Local)
        .format("%H:%M:%S%.3f")
        .to_string()
}

fn level_word(l: LogLevel) -> &'static str {
    match l {
        LogLevel::Trace => "TRACE",
        LogLevel::Debug => "DEBUG",
        LogLevel::Info => "INFO",
        LogLevel::Warn => "WARN",
        LogLevel::Error => "ERROR",
    }
}

fn print_line(line: &str) {
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "{line}");
}

impl LocalTracker {
    /// A tracker printing to stderr.
    pub fn new() -> Self {
        LocalTracker {
            terminal: true,
            assigned: Mutex::new(None),
            next: Mutex::new(None),
            inner: Mutex::new(Inner::default()),
        }
    }

    /// The same tracker without terminal output (records are still kept).
    pub fn quiet(mut self) -> Self {
        self.terminal = false;
        self
    }

    /// Makes the next top-level flow run use this id, attempt and resume flag (as an agent
    /// asks through `WEIR_FLOW_RUN_ID`, `WEIR_ATTEMPT` and `WEIR_RESUME`).
    pub fn assign_run(self, flow_run_id: Uuid, attempt: u32, resume: bool) -> Self {
        if let Ok(mut a) = self.assigned.lock() {
            *a = Some(StartedFlowRun {
                flow_run_id,
                attempt: attempt.max(1),
                resume,
            });
        }
        self
    }

    /// Makes the very next flow run started — top-level or subflow — use this identity.
    /// A tracker wrapping this one calls it right before delegating a start.
    pub fn set_next_run(&self, started: StartedFlowRun) {
        if let Ok(mut n) = self.next.lock() {
            *n = Some(started);
        }
    }

    /// A copy of everything recorded so far.
    pub fn records(&self) -> RunRecords {
        let inner = match self.inner.lock() {
            Ok(i) => i,
            Err(p) => p.into_inner(),
        };
        let mut order: Vec<Uuid> = Vec::new();
        let mut runs: HashMap<Uuid, TaskRunRecord> = HashMap::new();
        for r in &inner.reports {
            let rec = runs.entry(r.id).or_insert_with(|| {
                order.push(r.id);
                TaskRunRecord {
                    id: r.id,
                    flow_run_id: r.flow_run_id,
                    task: r.task.clone(),
                    history: Vec::new(),
                    inputs_fingerprint: None,
                    cache_key: None,
                    result_location: None,
                    map_index: r.map_index,
                    tags: r.tags.clone(),
                }
            });
            rec.history.push(StateEntry {
                state: r.state,
                at: r.at,
                message: r.message.clone(),
                attempt: r.attempt,
            });
            if r.inputs_fingerprint.is_some() {
                rec.inputs_fingerprint = r.inputs_fingerprint.clone();
            }
            if r.cache_key.is_some() {
                rec.cache_key = r.cache_key.clone();
            }
            if r.result_location.is_some() {
                rec.result_location = r.result_location.clone();
            }
        }
        RunRecords {
            flow_runs: inner.flows.clone(),
            task_runs: order.iter().filter_map(|id| runs.remove(id)).collect(),
            logs: inner.logs.clone(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        match self.inner.lock() {
            Ok(i) => i,
            Err(p) => p.into_inner(),
        }
    }
}

impl Inner {
    fn flow_name(&self, id: Uuid) -> String {
        self.flows
            .iter()
            .rev()
            .find(|f| f.id == id)
            .map_or_else(|| id.to_string(), |f| f.flow.clone())
    }

    fn label(&mut self, report: &TaskRunReport) -> String {
        if let Some(l) = self.labels.get(&report.id) {
            return l.clone();
        }
        let n = self
            .counters
            .entry((report.flow_run_id, report.task.clone()))
            .or_insert(0);
        let label = format!("{}-{}", report.task, n);
        *n += 1;
        self.labels.insert(report.id, label.clone());
        label
    }
}

impl Tracker for LocalTracker {
    fn start_flow_run(&self, start: FlowRunStart) -> BoxFuture<'_, anyhow::Result<StartedFlowRun>> {
        Box::pin(async move {
            let next = self.next.lock().ok().and_then(|mut n| n.take());
            let assigned = if next.is_some() {
                next
            } else if start.parent_flow_run_id.is_none() {
                self.assigned.lock().ok().and_then(|mut a| a.take())
            } else {
                None
            };
            let started = assigned.unwrap_or_else(|| StartedFlowRun {
                flow_run_id: Uuid::now_v7(),
                attempt: 1,
                resume: false,
            });
            let now = chrono::Utc::now();
            if self.terminal {
                let parent = start
                    .parent_flow_run_id
                    .map(|p| format!(", subflow of {p}"))
                    .unwrap_or_default();
                let resume = if started.resume { ", resuming" } else { "" };
                print_line(&format!(
                    "{} {} Running (flow run {}, attempt {}{resume}{parent})",
                    clock(&now),
                    start.flow,
                    started.flow_run_id,
                    started.attempt
                ));
            }
            self.lock().flows.push(FlowRunRecord {
                id: started.flow_run_id,
                flow: start.flow,
                attempt: started.attempt,
                resume: started.resume,
                parameters: start.parameters,
                parent_flow_run_id: start.parent_flow_run_id,
                parent_task_run_id: start.parent_task_run_id,
                history: vec![StateEntry {
                    state: StateKind::Running,
                    at: now,
                    message: None,
                    attempt: started.attempt,
                }],
                result: None,
            });
            Ok(started)
        })
    }

    fn task_run(&self, report: TaskRunReport) {
        let mut inner = self.lock();
        if self.terminal {
            let label = inner.label(&report);
            let msg = report
                .message
                .as_ref()
                .map(|m| format!(": {m}"))
                .unwrap_or_default();
            print_line(&format!(
                "{} {label} {}{msg}",
                clock(&report.at),
                report.state
            ));
        }
        inner.reports.push(report);
    }

    fn log(&self, line: NewLogLine) {
        let mut inner = self.lock();
        if self.terminal {
            let who = match line.task_run_id.and_then(|id| inner.labels.get(&id)) {
                Some(l) => l.clone(),
                None => inner.flow_name(line.flow_run_id),
            };
            print_line(&format!(
                "{} {who} {} {}",
                clock(&line.at),
                level_word(line.level),
                line.message
            ));
        }
        inner.logs.push(line);
    }

    fn finish_flow_run(&self, finish: FlowRunFinish) -> BoxFuture<'_, anyhow::Result<()>> {
        Box::pin(async move {
            let now = chrono::Utc::now();
            let mut inner = self.lock();
            if self.terminal {
                let msg = finish
                    .message
                    .as_ref()
                    .map(|m| format!(": {m}"))
                    .unwrap_or_default();
                let name = inner.flow_name(finish.flow_run_id);
                print_line(&format!("{} {name} {}{msg}", clock(&now), finish.state));
            }
            if let Some(f) = inner
                .flows
                .iter_mut()
                .rev()
                .find(|f| f.id == finish.flow_run_id)
            {
                f.history.push(StateEntry {
                    state: finish.state,
                    at: now,
                    message: finish.message,
                    attempt: finish.attempt,
                });
                f.result = finish.result;
            }
            Ok(())
        })
    }
}
