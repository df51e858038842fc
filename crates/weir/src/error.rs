//! Errors the SDK produces: a failed task, a timed-out or panicked attempt, a flow run that
//! could not start.

use std::fmt;
use std::time::Duration;

/// A task run that ended Failed: returned by awaiting its call.
///
/// Displays as `task 'extract' failed after 3 attempts: connection refused`.
#[derive(Debug)]
pub struct TaskError {
    /// The task's name (`#[task(name = …)]`, else the function's name).
    pub task: &'static str,
    /// Attempts made, the first included (1 + the retries used).
    pub attempts: u32,
    /// The error of the last attempt.
    pub cause: anyhow::Error,
}

impl fmt::Display for TaskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let word = if self.attempts == 1 {
            "attempt"
        } else {
            "attempts"
        };
        write!(
            f,
            "task '{}' failed after {} {}: {:#}",
            self.task, self.attempts, word, self.cause
        )
    }
}

impl std::error::Error for TaskError {}

/// An attempt that ran longer than the task's `timeout`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("timed out after {}", fmt_duration(*.0))]
pub struct TimedOut(pub Duration);

/// An attempt that panicked; carries the panic message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("panicked: {0}")]
pub struct Panicked(pub String);

/// The tracker refused to start a flow run.
#[derive(Debug, thiserror::Error)]
#[error("flow '{flow}' could not start: {message}")]
pub struct FlowStartError {
    /// The name of the flow that did not start.
    pub flow: String,
    /// Why the tracker refused or failed to start it (the server's answer, for a
    /// server).
    pub message: String,
}

/// A task call's future was polled after its body had already been consumed (internal).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("internal error: the task body was started twice")]
pub struct BodyReused;

/// `1.5s`, `50ms`, `2m`, …
pub(crate) fn fmt_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        format!("{ms}ms")
    } else if ms.is_multiple_of(60_000) {
        format!("{}m", ms / 60_000)
    } else if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{:.3}s", d.as_secs_f64())
    }
}

/// The message of a panic payload.
pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "(non-string panic payload)".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages() {
        let e = TaskError {
            task: "extract",
            attempts: 3,
            cause: anyhow::anyhow!("connection refused"),
        };
        assert_eq!(
            e.to_string(),
            "task 'extract' failed after 3 attempts: connection refused"
        );
        assert_eq!(
            TimedOut(Duration::from_millis(50)).to_string(),
            "timed out after 50ms"
        );
        assert_eq!(
            TimedOut(Duration::from_secs(5)).to_string(),
            "timed out after 5s"
        );
    }
}
