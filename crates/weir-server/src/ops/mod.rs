//! The server's use cases: one function per thing a caller does that changes something (create
//! a run, cancel, retry, pause a deployment, create or revoke a key), called by the API's
//! handlers (`routes/`) and the UI's pages (`ui/`) alike.
//!
//! Each use case checks the caller (its signature takes the permission proof:
//! [`Require<P>`](crate::access::Require) or [`OnRun<P>`](crate::access::OnRun)), asks
//! `weir-core` for the decision, writes through the store, records the audit entry and wakes
//! whoever waits (agents, streams). Handlers only parse the request and shape the answer;
//! pages only read forms and render, so neither can decide a rule the other does not.

pub(crate) mod deployments;
pub(crate) mod keys;
pub(crate) mod runs;
pub(crate) mod schedules;
