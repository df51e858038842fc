//! What the cases share: deploying, creating, proposing, claiming and listing runs.

pub(crate) use crate::common::new_run;
use crate::common::now;

use chrono::Duration;
use uuid::Uuid;
use weir_core::api::{DeploymentSpec, HeldRun, ProposeState};
use weir_core::deployment::Deployment;
use weir_core::run::Run;
use weir_core::{StateKind, Timestamp};
use weir_store::{Error, RunFilter, Store};

pub(crate) const LEASE: Duration = Duration::seconds(30);

pub(crate) fn spec(flow: &str) -> DeploymentSpec {
    DeploymentSpec {
        flow: flow.into(),
        work_queue: "default".into(),
        ..Default::default()
    }
}

pub(crate) async fn deploy(
    store: &Store,
    project: &str,
    name: &str,
    spec: DeploymentSpec,
) -> Deployment {
    let r = store
        .upsert_deployment(project, name, &spec, false, now())
        .await
        .expect("upsert");
    r.deployment.expect("deployment returned")
}

pub(crate) async fn create(
    store: &Store,
    d: &Deployment,
    at: Timestamp,
    created: Timestamp,
) -> Run {
    store
        .create_flow_run(new_run(d, at), LEASE, created)
        .await
        .expect("create run")
        .run
}

pub(crate) fn propose(state: StateKind, attempt: u32) -> ProposeState {
    ProposeState {
        state,
        message: Some(format!("to {state}")),
        attempt,
        transition_id: None,
        result: None,
    }
}

/// Attempt `attempt` of run `id`, as a heartbeat names the runs it holds.
pub(crate) fn held(id: Uuid, attempt: u32) -> HeldRun {
    HeldRun { id, attempt }
}

pub(crate) fn queues(q: &[&str]) -> Vec<String> {
    q.iter().map(|s| s.to_string()).collect()
}

/// Claims exactly one run (the oldest due) for `agent` at `at`.
pub(crate) async fn claim_one(store: &Store, agent: Uuid, at: Timestamp) -> (Run, bool) {
    let mut c = store
        .claim(agent, &queues(&["default"]), 1, LEASE, at)
        .await
        .expect("claim");
    assert_eq!(c.len(), 1, "expected one claimable run at {at}");
    let run = c.remove(0);
    let resume = run.resume;
    (run, resume)
}

pub(crate) fn expect_rejected(r: Result<Run, Error>) -> (String, Run) {
    match r {
        Err(Error::Rejected { reason, current }) => (reason, *current),
        Err(e) => panic!("expected a rejection, got error {e}"),
        Ok(run) => panic!("expected a rejection, got {} run", run.state),
    }
}

pub(crate) async fn all_runs(store: &Store, filter: RunFilter) -> Vec<Run> {
    let mut out = Vec::new();
    let mut filter = RunFilter {
        limit: 1000,
        ..filter
    };
    loop {
        let page = store.list_flow_runs(&filter).await.expect("list");
        out.extend(page.items);
        match page.next_cursor {
            Some(c) => filter.before = Some(c.parse().expect("cursor is a uuid")),
            None => return out,
        }
    }
}
