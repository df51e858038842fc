//! Weir's agent: a long-running process that claims flow runs from work queues and launches
//! them on infrastructure — a local process, a container — streaming their logs, cancelling
//! them on request and reporting how they ended.
//!
//! - [`agent`]: the loop (register, claim, launch, heartbeat, cancel, settle).
//! - [`launcher`]: the infrastructure interface ([`launcher::Launcher`]) and the process
//!   launcher ([`launcher::ProcessLauncher`]).
//! - [`fence`]: stopping held runs whose lease could not be renewed (fencing).
//! - [`secrets`]: resolving secret references for the run being launched.
//! - [`logs`]: output lines to log lines, shipped in batches (agent and `weir exec`).
//! - [`exec`]: `weir exec`, the shim that reports a command without an SDK as its run.
//! - [`supervise`]: `weir supervise`, the parent of a local plain command that records its
//!   exit status for whichever agent settles it.

pub mod agent;
pub mod exec;
pub mod fence;
pub mod launcher;
pub mod logs;
mod oom;
mod outcome;
pub mod secrets;
pub mod supervise;

pub use agent::{Agent, AgentOptions};
