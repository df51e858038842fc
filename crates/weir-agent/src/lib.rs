//! Weir's agent: a long-running process that claims flow runs from work queues and launches
//! them on infrastructure — a local process, a container — streaming their logs, cancelling
//! them on request and reporting how they ended.
//!
//! - [`agent`]: the loop (register, claim, launch, heartbeat, cancel, settle).
//! - [`launcher`]: the infrastructure interface ([`launcher::Launcher`]) and the process
//!   launcher ([`launcher::ProcessLauncher`]).
//! - [`secrets`]: resolving secret references for the run being launched.

pub mod agent;
pub mod launcher;
mod outcome;
pub mod secrets;

pub use agent::{Agent, AgentOptions};
