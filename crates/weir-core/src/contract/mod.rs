//! The contracts between Weir's processes, as types both sides share.
//!
//! An agent (or `weir exec`, or the ECS launcher) starts a flow process with a [launch
//! environment](launch); a flows binary answers `describe` with a [description](describe) that
//! `weir deploy` reads; every holder of a run's lease heartbeats at one
//! [cadence](heartbeat). Each side builds or parses these types instead of spelling variable
//! names or JSON keys, so the two cannot drift. `docs/contracts.md` documents the same contracts
//! for implementations in other languages (the Python SDK).

pub mod describe;
pub mod heartbeat;
pub mod launch;

pub use describe::{Description, FlowDescription, TaskDescription};
pub use launch::{AssignedRun, LaunchEnv, LaunchEnvError, ReportingEnv};
