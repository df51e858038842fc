//! How a flow run comes to be: the one rule for every way a run is created — requested
//! from a deployment (API, UI *Quick run*, a subflow, a backfill), a schedule tick, or ad hoc
//! by the process that executes it.
//!
//! The functions here decide the run's project, flow, initial state, parameters (the
//! deployment's defaults with the request's values over them, validated against the flow's
//! schema), tags, queue, retries and due time; the store writes the [`NewRun`] they return.
//! Who may create which run (keys, run tokens, projects) is the server's question, not this
//! module's.

use crate::api::Parameters;
use crate::deployment::{DEFAULT_QUEUE, Deployment};
use crate::params::{self, ParamError};
use crate::{StateKind, Timestamp, names};
use uuid::Uuid;

/// A flow run about to be written: what the store inserts.
#[derive(Debug, Clone)]
pub struct NewRun {
    /// The run's project; the store refuses a project that does not exist.
    pub project: String,
    /// Deployment id and name, if created from one.
    pub deployment: Option<(Uuid, String)>,
    /// The flow the run executes: its deployment's flow, or the process's own.
    pub flow: String,
    /// Parameters (already merged with defaults and validated).
    pub parameters: Parameters,
    /// The work queue agents claim it from: the deployment's, or the default for ad-hoc
    /// runs.
    pub work_queue: String,
    /// When it is due.
    pub scheduled_at: Timestamp,
    /// Initial state: Scheduled (agents launch it) or Running (its own process runs it).
    pub state: StateKind,
    /// Automatic retries allowed after a failure (the deployment's retry policy; 0 for
    /// ad-hoc runs).
    pub retries: u32,
    /// Delay before each automatic retry.
    pub retry_delay_s: u64,
    /// Dedupes creation within the project.
    pub idempotency_key: Option<String>,
    /// The flow run that started this one as a subflow; `None` for a top-level run.
    pub parent_flow_run_id: Option<Uuid>,
    /// Tags the run carries: the request's, else its deployment's (tag concurrency limits
    /// count them).
    pub tags: Vec<String>,
    /// Created by the scheduler (removed when its deployment's schedule changes).
    pub auto_scheduled: bool,
    /// The schedule tick the run is for (scheduler, catch-up and backfill runs; the flow's
    /// `WEIR_TICK_AT`).
    pub tick_at: Option<Timestamp>,
}

/// What a request asks of a new run; everything it leaves out comes from the deployment (or,
/// for an ad-hoc run, from Weir's defaults).
#[derive(Debug, Clone, Default)]
pub struct RunRequest {
    /// Values over the deployment's default parameters.
    pub parameters: Parameters,
    /// Labels; empty means the deployment's.
    pub tags: Vec<String>,
    /// Due no earlier than this (a deployment's run; default now).
    pub scheduled_at: Option<Timestamp>,
    /// The state the caller expects the run to start in (checked, never chosen).
    pub state: Option<StateKind>,
    /// A retried request with the same key gets the run created the first time.
    pub idempotency_key: Option<String>,
    /// For a subflow: the flow run that called it.
    pub parent_flow_run_id: Option<Uuid>,
}

impl RunRequest {
    /// The request parts of the API's `CreateFlowRun`.
    pub fn of(req: &crate::api::CreateFlowRun) -> RunRequest {
        RunRequest {
            parameters: req.parameters.clone(),
            tags: req.tags.clone(),
            scheduled_at: req.scheduled_at,
            state: req.state,
            idempotency_key: req.idempotency_key.clone(),
            parent_flow_run_id: req.parent_flow_run_id,
        }
    }
}

/// Why a run cannot be created.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    /// The deployment was archived: it takes no new runs until it is deployed again.
    #[error(
        "deployment {project}/{name} is archived (removed from its weir.toml): it takes no new \
         runs; deploy it again to restore it"
    )]
    Archived {
        /// The archived deployment's project.
        project: String,
        /// The archived deployment's name within its project.
        name: String,
    },
    /// The merged parameters do not satisfy the flow's schema (every problem, in order).
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Parameters(Vec<ParamError>),
    /// A field of the request is wrong.
    #[error("{field}: {message}")]
    Field {
        /// The request field (`state`, `project`, `flow`).
        field: &'static str,
        /// What is wrong and what to do.
        message: String,
    },
}

impl Error {
    /// The request field at fault: `parameters.<param>` for the first parameter problem.
    pub fn field(&self) -> Option<String> {
        match self {
            Error::Archived { .. } => None,
            Error::Parameters(problems) => {
                problems.first().map(|p| format!("parameters.{}", p.param))
            }
            Error::Field { field, .. } => Some((*field).to_string()),
        }
    }
}

/// A run of deployment `d` that someone asked for at `now`: Scheduled (an agent launches it),
/// due at the requested time or now, the request's parameters over the deployment's and
/// validated against its flow's schema, the request's tags or else the deployment's.
pub fn of_deployment(d: &Deployment, req: RunRequest, now: Timestamp) -> Result<NewRun, Error> {
    if d.is_archived() {
        return Err(Error::Archived {
            project: d.project.clone(),
            name: d.name.clone(),
        });
    }
    if let Some(state) = req.state
        && state != StateKind::Scheduled
    {
        return Err(Error::Field {
            field: "state",
            message: format!(
                "a deployment's run starts Scheduled (an agent launches it), not {state}"
            ),
        });
    }
    let mut parameters = d.spec.parameters.clone();
    parameters.extend(req.parameters);
    if let Some(schema) = &d.spec.parameter_schema {
        params::validate(schema, &parameters).map_err(Error::Parameters)?;
    }
    let tags = if req.tags.is_empty() {
        d.spec.tags.clone()
    } else {
        req.tags
    };
    Ok(NewRun {
        parameters,
        idempotency_key: req.idempotency_key,
        parent_flow_run_id: req.parent_flow_run_id,
        tags,
        ..deployment_run(d, req.scheduled_at.unwrap_or(now))
    })
}

/// The idempotency key of the run of deployment `deployment`'s tick at `at`: every run of a
/// tick (the scheduler's, catch-up's, a backfill's) has it, so a tick gets one run whoever
/// meets it first.
pub fn tick_key(deployment: Uuid, at: Timestamp) -> String {
    format!("schedule:{deployment}:{}", at.timestamp_micros())
}

/// The run a schedule of deployment `d` fires at `at`: the deployment's parameters and tags,
/// and the tick's idempotency key ([`tick_key`]), so however many schedulers fire the same
/// tick it gets one run.
pub fn scheduled(d: &Deployment, at: Timestamp) -> NewRun {
    NewRun {
        idempotency_key: Some(tick_key(d.id, at)),
        auto_scheduled: true,
        tick_at: Some(at),
        ..deployment_run(d, at)
    }
}

/// The run catch-up keeps for tick `at` that no server was up to run: the scheduler's run of
/// that tick, due at `now` (not Late for the outage).
pub fn caught_up(d: &Deployment, at: Timestamp, now: Timestamp) -> NewRun {
    NewRun {
        scheduled_at: now,
        ..scheduled(d, at)
    }
}

/// The run `weir backfill` creates for tick `at`: the tick's key (so it never doubles the
/// scheduler's run), due at `now`, and not the scheduler's (a schedule change keeps it).
pub fn backfilled(d: &Deployment, at: Timestamp, now: Timestamp) -> NewRun {
    NewRun {
        scheduled_at: now,
        auto_scheduled: false,
        ..scheduled(d, at)
    }
}

/// What every run of `d` due at `at` takes from it.
fn deployment_run(d: &Deployment, at: Timestamp) -> NewRun {
    let spec = &d.spec;
    NewRun {
        project: d.project.clone(),
        deployment: Some((d.id, d.name.clone())),
        flow: spec.flow.clone(),
        parameters: spec.parameters.clone(),
        work_queue: spec.work_queue.clone(),
        scheduled_at: at,
        state: StateKind::Scheduled,
        retries: spec.retries,
        retry_delay_s: spec.retry_delay_s,
        idempotency_key: None,
        parent_flow_run_id: None,
        tags: spec.tags.clone(),
        auto_scheduled: false,
        tick_at: None,
    }
}

/// An ad-hoc run of `flow` in `project` (no deployment), created Running at `now` by the
/// process that executes it: the default queue, no automatic retries, parameters as given.
pub fn ad_hoc(
    project: Option<&str>,
    flow: Option<&str>,
    req: RunRequest,
    now: Timestamp,
) -> Result<NewRun, Error> {
    let project = project.ok_or_else(|| Error::Field {
        field: "project",
        message: "give `project` (with `flow` for an ad-hoc run, or with `deployment`)".into(),
    })?;
    names::check("project", project).map_err(|message| Error::Field {
        field: "project",
        message,
    })?;
    let flow = flow
        .filter(|f| !f.trim().is_empty())
        .ok_or_else(|| Error::Field {
            field: "flow",
            message: "an ad-hoc run needs `flow`; or give `deployment` to run a deployment".into(),
        })?;
    if req.state != Some(StateKind::Running) {
        return Err(Error::Field {
            field: "state",
            message: "an ad-hoc run (no deployment) is created Running by the process that \
                      executes it; to have an agent launch a run, deploy the flow and pass \
                      `deployment`"
                .into(),
        });
    }
    Ok(NewRun {
        project: project.to_string(),
        deployment: None,
        flow: flow.to_string(),
        parameters: req.parameters,
        work_queue: DEFAULT_QUEUE.into(),
        scheduled_at: now,
        state: StateKind::Running,
        retries: 0,
        retry_delay_s: 0,
        idempotency_key: req.idempotency_key,
        parent_flow_run_id: req.parent_flow_run_id,
        tags: req.tags,
        auto_scheduled: false,
        tick_at: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::DeploymentSpec;
    use chrono::{TimeZone, Utc};
    use serde_json::json;

    fn now() -> Timestamp {
        Utc.with_ymd_and_hms(2026, 12, 1, 12, 0, 0)
            .single()
            .expect("a valid time")
    }

    fn deployment(spec: serde_json::Value) -> Deployment {
        let spec: DeploymentSpec = serde_json::from_value(spec).expect("valid");
        Deployment {
            id: Uuid::nil(),
            project: "dev".into(),
            name: "nightly".into(),
            version: 1,
            spec,
            paused: false,
            created_at: now(),
            updated_at: now(),
            archived_at: None,
        }
    }

    fn params(v: serde_json::Value) -> Parameters {
        v.as_object().expect("valid").clone()
    }

    #[test]
    fn a_deployment_run_merges_parameters_and_keeps_its_spec() {
        let d = deployment(json!({
            "flow": "etl", "work_queue": "gpu", "retries": 2, "retry_delay_s": 30,
            "parameters": {"a": 1, "b": 2}, "tags": ["nightly"],
        }));
        let req = RunRequest {
            parameters: params(json!({"b": 3})),
            ..Default::default()
        };
        let run = of_deployment(&d, req, now()).expect("valid");
        assert_eq!(run.parameters, params(json!({"a": 1, "b": 3})));
        assert_eq!(run.state, StateKind::Scheduled);
        assert_eq!(run.scheduled_at, now());
        assert_eq!(
            (run.work_queue.as_str(), run.retries, run.retry_delay_s),
            ("gpu", 2, 30)
        );
        assert_eq!(run.tags, vec!["nightly".to_string()]);
        assert_eq!(run.deployment, Some((Uuid::nil(), "nightly".into())));
        assert!(!run.auto_scheduled);
    }

    #[test]
    fn requested_tags_and_time_replace_the_deployments() {
        let d = deployment(json!({"flow": "etl", "tags": ["nightly"]}));
        let later = now() + chrono::Duration::hours(1);
        let req = RunRequest {
            tags: vec!["manual".into()],
            scheduled_at: Some(later),
            idempotency_key: Some("k".into()),
            ..Default::default()
        };
        let run = of_deployment(&d, req, now()).expect("valid");
        assert_eq!(run.tags, vec!["manual".to_string()]);
        assert_eq!(run.scheduled_at, later);
        assert_eq!(run.idempotency_key.as_deref(), Some("k"));
    }

    #[test]
    fn a_deployment_run_refuses_other_states_archives_and_bad_parameters() {
        let mut d = deployment(json!({
            "flow": "etl",
            "parameter_schema": {"type": "object", "properties": {"n": {"type": "integer"}}},
        }));
        let running = RunRequest {
            state: Some(StateKind::Running),
            ..Default::default()
        };
        let e = of_deployment(&d, running, now()).expect_err("refused");
        assert_eq!(e.field().as_deref(), Some("state"));
        assert!(e.to_string().contains("starts Scheduled"), "{e}");
        let bad = RunRequest {
            parameters: params(json!({"n": "nope"})),
            ..Default::default()
        };
        let e = of_deployment(&d, bad, now()).expect_err("refused");
        assert_eq!(e.field().as_deref(), Some("parameters.n"));
        assert!(e.to_string().contains("\"n\""), "{e}");
        d.archived_at = Some(now());
        let e = of_deployment(&d, RunRequest::default(), now()).expect_err("refused");
        assert!(matches!(e, Error::Archived { .. }), "{e}");
        assert!(e.to_string().contains("deploy it again"), "{e}");
    }

    #[test]
    fn a_scheduled_run_is_keyed_by_deployment_and_time() {
        let d = deployment(json!({"flow": "etl", "parameters": {"a": 1}, "tags": ["t"]}));
        let run = scheduled(&d, now());
        assert_eq!(
            run.idempotency_key,
            Some(format!("schedule:{}:{}", d.id, now().timestamp_micros()))
        );
        assert!(run.auto_scheduled);
        assert_eq!(run.state, StateKind::Scheduled);
        assert_eq!(run.scheduled_at, now());
        assert_eq!(run.parameters, params(json!({"a": 1})));
        assert_eq!(run.tags, vec!["t".to_string()]);
        assert_eq!(run.tick_at, Some(now()));
    }

    #[test]
    fn catch_up_and_backfill_runs_share_the_tick_key_and_are_due_now() {
        let d = deployment(json!({"flow": "etl"}));
        let tick = now() - chrono::Duration::hours(5);
        let key = Some(tick_key(d.id, tick));
        let late = caught_up(&d, tick, now());
        let back = backfilled(&d, tick, now());
        for run in [&late, &back] {
            assert_eq!(run.idempotency_key, key);
            assert_eq!((run.tick_at, run.scheduled_at), (Some(tick), now()));
        }
        assert!(late.auto_scheduled, "catch-up keeps the scheduler's run");
        assert!(
            !back.auto_scheduled,
            "a schedule change keeps a backfilled run"
        );
    }

    #[test]
    fn an_ad_hoc_run_starts_running_on_the_default_queue() {
        let req = RunRequest {
            state: Some(StateKind::Running),
            parameters: params(json!({"x": 1})),
            ..Default::default()
        };
        let run = ad_hoc(Some("dev"), Some("hello"), req, now()).expect("valid");
        assert_eq!(run.state, StateKind::Running);
        assert_eq!(run.work_queue, DEFAULT_QUEUE);
        assert_eq!((run.retries, run.retry_delay_s), (0, 0));
        assert_eq!(run.deployment, None);
        assert_eq!(run.scheduled_at, now());
    }

    #[test]
    fn an_ad_hoc_run_names_what_is_missing() {
        let running = || RunRequest {
            state: Some(StateKind::Running),
            ..Default::default()
        };
        let field = |r: Result<NewRun, Error>| r.expect_err("refused").field();
        assert_eq!(
            field(ad_hoc(None, Some("f"), running(), now())).as_deref(),
            Some("project")
        );
        assert_eq!(
            field(ad_hoc(Some("Not A Name"), Some("f"), running(), now())).as_deref(),
            Some("project")
        );
        assert_eq!(
            field(ad_hoc(Some("dev"), Some("  "), running(), now())).as_deref(),
            Some("flow")
        );
        assert_eq!(
            field(ad_hoc(Some("dev"), Some("f"), RunRequest::default(), now())).as_deref(),
            Some("state")
        );
    }
}
