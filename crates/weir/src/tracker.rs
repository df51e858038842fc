//! The reporting interface: where flow runs, task-run state changes and log lines go.
//!
//! The SDK only ever talks to a [`Tracker`]. [`crate::local::LocalTracker`] (terminal output and
//! an in-memory record) is the default; an HTTP tracker sending batches to the server can be
//! added (module `transport`) and returned by [`from_env`] without touching the rest of the SDK.

use uuid::Uuid;
use weir_core::StateKind;

/// Where run records go. `LocalTracker` (terminal + in-memory record) is the default; the HTTP
/// tracker (added later, module `transport`) sends them to the server in batches.
pub trait Tracker: Send + Sync + 'static {
    /// Called once before a flow body runs (for subflows too, with `parent`). Returns the flow
    /// run id and attempt to use.
    fn start_flow_run(
        &self,
        start: FlowRunStart,
    ) -> futures::future::BoxFuture<'_, anyhow::Result<StartedFlowRun>>;
    /// A task run changed state. Must not block: buffer it.
    fn task_run(&self, report: weir_core::api::TaskRunReport);
    /// A log line. Must not block.
    fn log(&self, line: weir_core::api::NewLogLine);
    /// The flow run ended (Completed/Failed/…); flush everything buffered before returning.
    fn finish_flow_run(
        &self,
        finish: FlowRunFinish,
    ) -> futures::future::BoxFuture<'_, anyhow::Result<()>>;
    /// Whether runs are reported to a server. Then a flow's result is written to result
    /// storage and only its location and size are reported.
    fn reports_to_server(&self) -> bool {
        false
    }
}

/// A flow run about to start.
#[derive(Debug, Clone, PartialEq)]
pub struct FlowRunStart {
    /// The flow's name (`#[flow(name = …)]`, else the function's name).
    pub flow: String,
    /// The parameter values, validated against the flow's schema with defaults
    /// filled in.
    pub parameters: weir_core::api::Parameters,
    /// For a subflow: the calling flow run.
    pub parent_flow_run_id: Option<Uuid>,
    /// For a subflow called inside a task: that task run.
    pub parent_task_run_id: Option<Uuid>,
}

/// The identity a tracker gave a starting flow run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StartedFlowRun {
    /// The flow run's id, assigned by the tracker (the server's, or a local one).
    pub flow_run_id: Uuid,
    /// Attempt (1 for the first execution of the run).
    pub attempt: u32,
    /// Reuse persisted results of task runs completed in earlier attempts.
    pub resume: bool,
}

/// A flow run that ended.
#[derive(Debug, Clone, PartialEq)]
pub struct FlowRunFinish {
    /// The run's id, as [`StartedFlowRun`] gave it.
    pub flow_run_id: Uuid,
    /// The attempt that ended, as [`StartedFlowRun`] gave it (the server fences on it).
    pub attempt: u32,
    /// Final state: Completed, Failed, Cancelled or Crashed.
    pub state: StateKind,
    /// Message (error text for Failed).
    pub message: Option<String>,
    /// The flow's result as JSON, when Completed (kept in memory by the local tracker).
    pub result: Option<serde_json::Value>,
    /// Where the result was written, when the run reports to a server: all the server gets.
    pub result_ref: Option<weir_core::api::ResultRef>,
}
