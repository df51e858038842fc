//! A flow run as the domain knows it: what the orchestration rules decide over and the store
//! keeps.
//!
//! [`Run`] is never serialised. The HTTP API's [`FlowRun`] is its wire shape, made from it in
//! one place (`impl From<Run> for FlowRun`, below) where the server answers; the rules
//! (`orchestration`, `notify`, `why`, …) and the store never read the wire type. A `Run` holds
//! what the rules need that the wire does not show: the delay before an automatic retry and
//! whether the next attempt resumes from persisted task results. [`Standing`] is the part of
//! a run a flow process or an agent learns from the server, read from either shape.

use crate::api::{FlowRun, Parameters, ResultRef};
use crate::{StateKind, Timestamp};
use chrono::Duration;
use uuid::Uuid;

/// One execution of a flow, with its lifecycle and what its rules read.
#[derive(Debug, Clone, PartialEq)]
pub struct Run {
    /// The run's id (UUIDv7: id order is creation order).
    pub id: Uuid,
    /// The project it belongs to.
    pub project: String,
    /// The deployment it was created from; `None` for an ad-hoc run.
    pub deployment_id: Option<Uuid>,
    /// That deployment's name within the project.
    pub deployment: Option<String>,
    /// The flow it executes.
    pub flow: String,
    /// A readable name such as `etl-7f3a`.
    pub name: String,
    /// Its current state; changed only by the rules in [`crate::orchestration`].
    pub state: StateKind,
    /// The message of the current state (error text for Failed).
    pub state_message: Option<String>,
    /// When the current state was entered.
    pub state_at: Timestamp,
    /// The claim counter and fencing token: bumped on every claim; every report must carry it.
    pub attempt: u32,
    /// Automatic retries (and crash restarts) used so far.
    pub retries_used: u32,
    /// Automatic retries allowed in all, from the deployment's retry policy when the run
    /// was created; the run is retried while `retries_used` is below it.
    pub retries: u32,
    /// How long after a failure with retries left the next attempt is due (the deployment's
    /// retry policy when the run was created).
    pub retry_delay: Duration,
    /// Whether an attempt claimed from now on reuses the persisted results of task runs
    /// completed in earlier attempts (set by an explicit retry `from_failed`).
    pub resume: bool,
    /// The parameter values the flow is called with.
    pub parameters: Parameters,
    /// The work queue agents claim it from.
    pub work_queue: String,
    /// When it is due.
    pub scheduled_at: Timestamp,
    /// The schedule tick it is for (scheduler, catch-up and backfill runs), kept when a retry
    /// moves `scheduled_at`.
    pub tick_at: Option<Timestamp>,
    /// When it was created.
    pub created_at: Timestamp,
    /// When it first entered Running in this attempt.
    pub started_at: Option<Timestamp>,
    /// When it entered a terminal state.
    pub ended_at: Option<Timestamp>,
    /// The agent holding its attempt.
    pub agent_id: Option<Uuid>,
    /// When the lease of its attempt expires without a heartbeat (lease-holding states).
    pub lease_expires_at: Option<Timestamp>,
    /// The flow run that called it, for a subflow.
    pub parent_flow_run_id: Option<Uuid>,
    /// Where its result was written, once Completed.
    pub result: Option<ResultRef>,
    /// Its tags (concurrency limits and filters read them).
    pub tags: Vec<String>,
}

/// The one conversion from the domain to the wire: every answer of the API that carries a
/// run is made here. The retry delay and the resume flag are not part of the wire shape (a
/// claim answers `resume` beside the run).
impl From<Run> for FlowRun {
    fn from(r: Run) -> FlowRun {
        FlowRun {
            id: r.id,
            project: r.project,
            deployment_id: r.deployment_id,
            deployment: r.deployment,
            flow: r.flow,
            name: r.name,
            state: r.state,
            state_message: r.state_message,
            state_at: r.state_at,
            attempt: r.attempt,
            retries_used: r.retries_used,
            retries: r.retries,
            parameters: r.parameters,
            work_queue: r.work_queue,
            scheduled_at: r.scheduled_at,
            tick_at: r.tick_at,
            created_at: r.created_at,
            started_at: r.started_at,
            ended_at: r.ended_at,
            agent_id: r.agent_id,
            lease_expires_at: r.lease_expires_at,
            parent_flow_run_id: r.parent_flow_run_id,
            result: r.result,
            tags: r.tags,
        }
    }
}

impl From<&Run> for FlowRun {
    fn from(r: &Run) -> FlowRun {
        r.clone().into()
    }
}

/// Where a run stands, as a process that ran one of its attempts learns it from the server:
/// what `why::after_attempt` and `why::ended_by_its_process` read. The agent and the SDK have
/// the wire's [`FlowRun`] (`From<&FlowRun>`), the server a [`Run`] (`From<&Run>`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Standing<'a> {
    /// The run's state now.
    pub state: StateKind,
    /// The message of that state.
    pub state_message: Option<&'a str>,
    /// The run's attempt now.
    pub attempt: u32,
    /// Automatic retries used so far.
    pub retries_used: u32,
    /// Automatic retries allowed in all (retries are left while `retries_used` is below it).
    pub retries: u32,
    /// When it is due (a retry's time, while it awaits one).
    pub scheduled_at: Timestamp,
}

impl<'a> From<&'a FlowRun> for Standing<'a> {
    fn from(r: &'a FlowRun) -> Standing<'a> {
        Standing {
            state: r.state,
            state_message: r.state_message.as_deref(),
            attempt: r.attempt,
            retries_used: r.retries_used,
            retries: r.retries,
            scheduled_at: r.scheduled_at,
        }
    }
}

impl<'a> From<&'a Run> for Standing<'a> {
    fn from(r: &'a Run) -> Standing<'a> {
        Standing {
            state: r.state,
            state_message: r.state_message.as_deref(),
            attempt: r.attempt,
            retries_used: r.retries_used,
            retries: r.retries,
            scheduled_at: r.scheduled_at,
        }
    }
}

/// A run for tests: in `state` now, due a minute ago, no attempt yet, of deployment
/// `main/etl` (a fresh id) on the default queue, with nothing else set. Other crates' tests
/// reach it through the `test-support` feature (enabled only from their dev-dependencies),
/// and set what they need with `Run { .., ..sample(state) }`.
#[cfg(any(test, feature = "test-support"))]
pub fn sample(state: StateKind) -> Run {
    let now = chrono::Utc::now();
    Run {
        id: Uuid::now_v7(),
        project: "main".into(),
        deployment_id: Some(Uuid::now_v7()),
        deployment: Some("etl".into()),
        flow: "etl".into(),
        name: "etl-1".into(),
        state,
        state_message: None,
        state_at: now,
        attempt: 0,
        retries_used: 0,
        retries: 0,
        retry_delay: Duration::zero(),
        resume: false,
        parameters: Parameters::new(),
        work_queue: crate::names::DEFAULT_QUEUE.into(),
        scheduled_at: now - Duration::minutes(1),
        tick_at: None,
        created_at: now,
        started_at: None,
        ended_at: None,
        agent_id: None,
        lease_expires_at: None,
        parent_flow_run_id: None,
        result: None,
        tags: vec![],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wire_shape_keeps_every_field_it_shows() {
        let mut run = sample(StateKind::Completed);
        run.retry_delay = Duration::seconds(30);
        run.resume = true;
        run.tags = vec!["nightly".into()];
        run.result = Some(ResultRef {
            location: "file:///tmp/r.json".into(),
            size: 3,
        });
        let wire = FlowRun::from(&run);
        assert_eq!(wire.id, run.id);
        assert_eq!(wire.deployment, run.deployment);
        assert_eq!(wire.state, StateKind::Completed);
        assert_eq!(wire.scheduled_at, run.scheduled_at);
        assert_eq!(wire.result, run.result);
        assert_eq!(wire.tags, run.tags);
        let json = serde_json::to_value(&wire).expect("a wire run serialises");
        assert!(json.get("retry_delay").is_none() && json.get("resume").is_none());
        assert_eq!(Standing::from(&wire), Standing::from(&run));
    }
}
