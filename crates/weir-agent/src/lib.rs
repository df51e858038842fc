//! Weir's agent: a long-running process that claims flow runs from work queues and launches
//! them on infrastructure — a local process, a container — streaming their logs, cancelling
//! them on request and reporting how they ended.
//!
//! - [`launcher`]: the infrastructure interface ([`launcher::Launcher`]) and the process
//!   launcher ([`launcher::ProcessLauncher`]).

pub mod launcher;
