//! The composition root: which tracker a flow process uses, decided once from its environment.
//!
//! The launch contract (`weir_core::contract::launch`) is read here and nowhere else in the
//! SDK. A launch environment that does not parse is refused: a process launched for a run must
//! never report as some other, new run.

use crate::local::LocalTracker;
use crate::tracker::{FlowRunFinish, FlowRunStart, StartedFlowRun, Tracker};
use crate::transport::HttpTracker;
use futures::future::BoxFuture;
use std::sync::Arc;
use weir_core::contract::launch::{AssignedRun, var};

/// The tracker a flows binary's `run` command uses.
///
/// With `WEIR_API_URL` set, an [`HttpTracker`] reporting to that server (authenticating with
/// `WEIR_API_KEY` when set; top-level runs not launched by an agent are created in project
/// `WEIR_PROJECT`, default `default`). Otherwise a [`LocalTracker`] (`WEIR_QUIET=1`: no
/// terminal output). Either way the run an agent assigned (`WEIR_FLOW_RUN_ID`, `WEIR_ATTEMPT`,
/// `WEIR_RESUME`) is the one reported; if those variables are malformed, every flow run fails
/// at its start with an error naming the variable.
pub fn tracker_from_env() -> Arc<dyn Tracker> {
    let get = |k: &str| std::env::var(k).ok();
    let assigned = match AssignedRun::from_lookup(get) {
        Ok(a) => a.map(|a| StartedFlowRun {
            flow_run_id: a.flow_run_id,
            attempt: a.attempt,
            resume: a.resume,
        }),
        Err(e) => {
            return Arc::new(Misconfigured(format!(
                "{e}; this process was launched with a broken launch environment and will not \
                 start a run of its own (check what launched it)"
            )));
        }
    };
    let quiet = std::env::var(var::QUIET).is_ok_and(|v| matches!(v.trim(), "1" | "true" | "yes"));
    let mut local = LocalTracker::new();
    if quiet {
        local = local.quiet();
    }
    if let Some(a) = &assigned {
        local = local.assign_run(a.flow_run_id, a.attempt, a.resume);
    }
    let Some(url) = get(var::API_URL).filter(|u| !u.trim().is_empty()) else {
        return Arc::new(local);
    };
    match HttpTracker::from_parts(&url, assigned, local) {
        Ok(tracker) => tracker,
        Err((e, _)) if assigned.is_some() => Arc::new(Misconfigured(e)),
        Err((e, local)) => {
            crate::say::err!("weir: {e}; reporting locally only");
            Arc::new(local)
        }
    }
}

/// A tracker that refuses to start any flow run, with the reason.
struct Misconfigured(String);

impl Tracker for Misconfigured {
    fn start_flow_run(&self, _: FlowRunStart) -> BoxFuture<'_, anyhow::Result<StartedFlowRun>> {
        Box::pin(async move { Err(anyhow::anyhow!("{}", self.0)) })
    }

    fn task_run(&self, _: weir_core::api::TaskRunReport) {}

    fn log(&self, _: weir_core::api::NewLogLine) {}

    fn finish_flow_run(&self, _: FlowRunFinish) -> BoxFuture<'_, anyhow::Result<()>> {
        Box::pin(async { Ok(()) })
    }
}
