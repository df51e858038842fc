//! What ECS says about a task, in Weir's words: pure functions over the SDK's types, so
//! every case AWS can produce is tested with recorded responses (moto produces few of them).
//!
//! - [`phase`]: where a described task is (starting, running, stopping, stopped).
//! - [`ended`]: how a STOPPED task ended — `stopCode`, `stoppedReason`, the container's exit
//!   code and OOM reason — with AWS's text quoted verbatim.
//! - [`classify_failure`]: whether a `RunTask` `failures[]` entry is worth retrying (no
//!   capacity right now) or fails the attempt.

use aws_sdk_ecs::types::{Failure, Task, TaskStopCode};
use weir_agent::launcher::ExitStatus;

/// Where a task is in its lifecycle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Phase {
    /// PROVISIONING, PENDING or ACTIVATING: not running yet (subject to the start deadline).
    Starting(String),
    /// RUNNING: its containers have started.
    Running,
    /// DEACTIVATING, STOPPING or DEPROVISIONING: on its way to STOPPED.
    Stopping,
    /// STOPPED, with how it ended.
    Stopped(Ended),
}

/// How a task ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ended {
    /// Its exit code, a crash (no usable exit code), or a stop Weir asked for.
    pub kind: EndKind,
    /// Why, in words, quoting AWS's `stoppedReason` and container reason verbatim.
    pub reason: String,
    /// AWS's words alone (`ECS: "…" (container: "…")`), empty when it said none.
    pub said: String,
}

/// The outcome of a stopped task, before considering what the run reported itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndKind {
    /// The flow container exited with this code (0: success).
    Exited(i32),
    /// The task ended without a usable exit code: it never started, ran out of memory, or the
    /// infrastructure took it away.
    Crashed,
    /// Stopped on Weir's request (`StopTask`).
    Cancelled,
}

impl Ended {
    /// The agent's view: an exit code with what AWS said about the stop, or an unknown
    /// status carrying the reason.
    pub fn exit_status(&self) -> ExitStatus {
        match self.kind {
            EndKind::Exited(code) if self.said.is_empty() => ExitStatus::Code(code),
            EndKind::Exited(code) => ExitStatus::Exited {
                code,
                reason: self.said.clone(),
            },
            EndKind::Crashed | EndKind::Cancelled => ExitStatus::Unknown(self.reason.clone()),
        }
    }
}

/// The phase of a described task. `cancel_requested`: Weir asked to stop it, so a stop
/// that is not the infrastructure's doing is a cancellation.
pub fn phase(task: &Task, cancel_requested: bool) -> Phase {
    match task.last_status().unwrap_or("PROVISIONING") {
        s @ ("PROVISIONING" | "PENDING" | "ACTIVATING") => Phase::Starting(s.to_string()),
        "RUNNING" => Phase::Running,
        "STOPPED" | "DELETED" => Phase::Stopped(ended(task, cancel_requested)),
        _ => Phase::Stopping,
    }
}

/// How a STOPPED task ended.
pub fn ended(task: &Task, cancel_requested: bool) -> Ended {
    let reason = task.stopped_reason().unwrap_or("").trim().to_string();
    let container = task
        .containers()
        .iter()
        .find(|c| c.name() == Some(crate::taskdef::CONTAINER))
        .or_else(|| task.containers().first());
    let exit = container.and_then(|c| c.exit_code());
    let container_reason = container.and_then(|c| c.reason()).unwrap_or("").trim();
    let mut said = String::new();
    if !reason.is_empty() {
        said.push_str(&format!("\"{reason}\""));
    }
    if !container_reason.is_empty() && container_reason != reason {
        if !said.is_empty() {
            said.push(' ');
        }
        said.push_str(&format!("(container: \"{container_reason}\")"));
    }
    let quoted = |prefix: &str| Ended {
        kind: EndKind::Crashed,
        reason: match (reason.is_empty(), said.is_empty()) {
            (_, true) => prefix.to_string(),
            (false, false) => format!("{prefix}: {said}"),
            (true, false) => format!("{prefix} {said}"),
        },
        said: if said.is_empty() {
            String::new()
        } else {
            format!("ECS: {said}")
        },
    };
    let code = task.stop_code();
    if container_reason.contains("OutOfMemory") || reason.contains("OutOfMemory") {
        let limit = task
            .memory()
            .map(|m| format!(" (limit {m} MiB)"))
            .unwrap_or_default();
        return quoted(&format!("out of memory{limit}"));
    }
    match code {
        Some(TaskStopCode::TaskFailedToStart) => quoted("the task failed to start"),
        Some(
            c @ (TaskStopCode::SpotInterruption
            | TaskStopCode::TerminationNotice
            | TaskStopCode::InfrastructureHealth
            | TaskStopCode::ServiceSchedulerInitiated),
        ) => quoted(&format!(
            "the infrastructure stopped the task ({})",
            c.as_str()
        )),
        // Weir asked: whatever the flow's exit code on SIGTERM, the run was cancelled.
        _ if cancel_requested => Ended {
            kind: EndKind::Cancelled,
            ..quoted("stopped on request")
        },
        Some(TaskStopCode::UserInitiated) => quoted("the task was stopped outside Weir"),
        // EssentialContainerExited, or no stop code (older responses, moto).
        _ => match exit {
            Some(code) => Ended {
                kind: EndKind::Exited(code),
                ..quoted(&format!("the flow container exited with code {code}"))
            },
            None => quoted("the task stopped without an exit code"),
        },
    }
}

/// What to do about one `RunTask` failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FailureKind {
    /// No capacity right now ("Capacity is unavailable", `RESOURCE:*`, `AGENT`): retry with
    /// backoff until the start deadline.
    Capacity(String),
    /// Anything else: the attempt fails with this reason.
    Permanent(String),
}

/// Classifies a `failures[]` entry of `RunTask`, quoting its reason and detail verbatim.
pub fn classify_failure(f: &Failure) -> FailureKind {
    let reason = f.reason().unwrap_or("unknown failure").trim();
    let text = match f.detail().map(str::trim).filter(|d| !d.is_empty()) {
        Some(detail) => format!("\"{reason}\" ({detail})"),
        None => format!("\"{reason}\""),
    };
    let capacity = reason.contains("Capacity is unavailable")
        || reason.starts_with("RESOURCE:")
        || reason == "AGENT";
    if capacity {
        FailureKind::Capacity(text)
    } else {
        FailureKind::Permanent(text)
    }
}
