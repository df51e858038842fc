//! Weir's domain model, shared by every other crate.
//!
//! This crate owns the words of the product — the flow run (`run::Run`), run states and which
//! transitions between them are legal, retry policy, schedules — and the wire types of the
//! HTTP API (a run's rules decide over `Run`, never over its wire shape `api::FlowRun`). It
//! does no IO: no clock reads outside explicit `now` arguments, no network, no files.

pub mod api;
pub mod audit;
pub mod auth;
pub mod contract;
pub mod create;
pub mod deployment;
pub mod infrastructure;
pub mod limits;
pub mod names;
pub mod notify;
pub mod orchestration;
pub mod params;
pub mod redact;
pub mod retention;
pub mod retry;
pub mod run;
pub mod schedule;
pub mod secret;
pub mod state;
pub mod storage;
pub mod trend;
pub mod why;

pub use retry::RetryPolicy;
pub use schedule::{Schedule, ScheduleError};
pub use state::{StateKind, TransitionError};

/// Timestamps everywhere in Weir: UTC with microsecond precision.
pub type Timestamp = chrono::DateTime<chrono::Utc>;
