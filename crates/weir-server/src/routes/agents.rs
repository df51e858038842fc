//! Agents: registration, heartbeats, claiming runs (with long-poll), and work queues.

use crate::access::{Require, perm};
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Json, Path};
use crate::openapi::Created;
use crate::state::AppState;
use axum::extract::State;
use chrono::Utc;
use std::time::{Duration, Instant};
use uuid::Uuid;
use weir_core::api::{
    Agent, ClaimRequest, ClaimedRun, Heartbeat, HeartbeatReply, RegisterAgent, WorkQueue,
};
use weir_core::auth::{Permission, Role};
use weir_core::names;

/// Agents silent for longer than this are not listed.
const AGENT_LISTED_FOR: chrono::Duration = chrono::Duration::hours(24);
/// The longest a claim waits for work before answering empty, whatever the
/// agent asks, in milliseconds.
const MAX_WAIT_MS: u64 = 30_000;
/// Most runs one claim hands out.
const MAX_CLAIM: u32 = 100;

/// `POST /api/v1/agents`.
pub(crate) async fn register(
    State(st): State<AppState>,
    caller: Require<perm::AgentWork>,
    Json(req): Json<RegisterAgent>,
) -> ApiResult<Created<Agent>> {
    if req.queues.is_empty() {
        return Err(ApiError::field(
            "queues",
            "an agent needs at least one queue",
        ));
    }
    for (i, q) in req.queues.iter().enumerate() {
        names::check("work queue", q).map_err(|m| ApiError::field(format!("queues[{i}]"), m))?;
    }
    if req.name.trim().is_empty() || req.name.chars().count() > 200 {
        return Err(ApiError::field(
            "name",
            "agent name must be 1-200 characters",
        ));
    }
    if req.limit == 0 {
        return Err(ApiError::field("limit", "limit must be at least 1"));
    }
    let agent = st
        .store
        .register_agent(&req, caller.key_id(), Utc::now())
        .await?;
    Ok(Created(agent))
}

/// `GET /api/v1/agents`: agents seen in the last 24 hours.
pub(crate) async fn list(
    State(st): State<AppState>,
    _caller: Require<perm::Read>,
) -> ApiResult<axum::Json<Vec<Agent>>> {
    Ok(axum::Json(
        st.store.agents(Utc::now() - AGENT_LISTED_FOR).await?,
    ))
}

/// `GET /api/v1/work_queues`.
pub(crate) async fn queues(
    State(st): State<AppState>,
    caller: Require<perm::Read>,
) -> ApiResult<axum::Json<Vec<WorkQueue>>> {
    if caller.projects().is_some() {
        return Err(ApiError::Forbidden(
            "work queues span projects: list them with a key that is not scoped to a project"
                .into(),
        ));
    }
    let now = Utc::now();
    Ok(axum::Json(
        st.store.work_queues(now, now - AGENT_LISTED_FOR).await?,
    ))
}

/// `POST /api/v1/agents/{id}/heartbeat`: renews the leases of the runs the agent holds and
/// tells it which to cancel and which it lost.
pub(crate) async fn heartbeat(
    State(st): State<AppState>,
    caller: Require<perm::AgentWork>,
    Path(id): Path<Uuid>,
    Json(hb): Json<Heartbeat>,
) -> ApiResult<axum::Json<HeartbeatReply>> {
    own_agent(&st, &caller, id).await?;
    // Renewing a lease also hands the run to this agent (how a restarted agent takes over
    // its live runs), so only runs the caller's key may report on are renewed: an agent key
    // cannot take another key's runs. The others are answered as lost.
    let mut held = Vec::with_capacity(hb.runs.len());
    let mut refused = Vec::new();
    let unscoped_admin = caller.role() == Some(Role::Admin) && caller.projects().is_none();
    for h in hb.runs {
        let allowed = unscoped_admin
            || match st.store.flow_run(h.id).await {
                Ok(run) => caller
                    .check_run(&st, &run, Permission::Report)
                    .await
                    .is_ok(),
                Err(weir_store::Error::NotFound(_)) => false,
                Err(e) => return Err(e.into()),
            };
        if allowed {
            held.push(h);
        } else {
            refused.push(h.id);
        }
    }
    let now = st.now();
    st.store.touch_agent(id, now).await?;
    let (cancel, mut lost) = st
        .store
        .renew_leases(Some(id), &held, st.lease(), now)
        .await?;
    lost.extend(refused);
    Ok(axum::Json(HeartbeatReply {
        cancel,
        lost,
        lease_s: st.options.lease.as_secs(),
    }))
}

/// `POST /api/v1/agents/{id}/claim`: claims due runs from the agent's queues, waiting up to
/// `wait_ms` for one to appear.
pub(crate) async fn claim(
    State(st): State<AppState>,
    caller: Require<perm::AgentWork>,
    Path(id): Path<Uuid>,
    Json(req): Json<ClaimRequest>,
) -> ApiResult<axum::Json<Vec<ClaimedRun>>> {
    // Leases are dated from the claim; the agent bounds them from when it sent this request.
    let received = Instant::now();
    own_agent(&st, &caller, id).await?;
    let project = match &*caller {
        Caller::Key { project, .. } => project.clone(),
        Caller::Run { .. } => None,
    };
    if req.wait_ms > MAX_WAIT_MS {
        return Err(ApiError::field(
            "wait_ms",
            format!("wait_ms must be at most {MAX_WAIT_MS}"),
        ));
    }
    let mut limit = req.limit.min(MAX_CLAIM);
    let now = st.now();
    st.store.touch_agent(id, now).await?;
    let agent = st.store.agent(id).await?;
    // Never more than the agent registered for, counting the runs it already holds.
    limit = limit.min(agent.limit.saturating_sub(agent.running));
    let deadline = Instant::now() + Duration::from_millis(req.wait_ms);
    loop {
        let notified = st.work.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let started = Instant::now();
        let claimed_after_ms =
            u64::try_from(started.duration_since(received).as_millis()).unwrap_or(u64::MAX);
        let claimed = st
            .store
            .claim_in(
                id,
                &agent.queues,
                project.as_deref(),
                limit,
                st.lease(),
                st.now(),
            )
            .await?;
        metrics::histogram!("weir_claim_seconds").record(started.elapsed().as_secs_f64());
        if !claimed.is_empty() {
            st.touched();
            let mut out = Vec::with_capacity(claimed.len());
            for run in claimed {
                let spec = match run.deployment_id {
                    Some(d) => claimed_spec(&st, d).await?,
                    None => None,
                };
                let run_token = Some(crate::auth::run_token(&st.run_secret, run.id, run.attempt));
                let resume = run.resume;
                out.push(ClaimedRun {
                    run: run.into(),
                    spec,
                    run_token,
                    resume,
                    lease_s: st.options.lease.as_secs(),
                    claimed_after_ms,
                });
            }
            return Ok(axum::Json(out));
        }
        let now = Instant::now();
        if now >= deadline || limit == 0 {
            return Ok(axum::Json(vec![]));
        }
        // Wake on new work, or poll again soon for runs that become due by time.
        let nap = (deadline - now).min(Duration::from_millis(250));
        let _ = tokio::time::timeout(nap, notified).await;
    }
}

/// Checks the caller (who has the agent permission) may act as agent `id`: unless it is an
/// admin, the agent must have been registered with its key. Otherwise 404.
async fn own_agent(st: &AppState, caller: &Caller, id: Uuid) -> ApiResult<()> {
    let owner = st.store.agent_key(id).await?;
    match caller {
        Caller::Key {
            role: Role::Admin,
            project: None,
            ..
        } => Ok(()),
        Caller::Key { id: key, .. } if owner.as_deref() == Some(key.as_str()) => Ok(()),
        _ => Err(ApiError::NotFound(format!("agent {id} not found"))),
    }
}

/// The spec of a claimed run's deployment: `None` only when the deployment is gone. The claim
/// is already committed, so a database hiccup is retried here rather than handing the agent a
/// run without its spec (which it would have to crash); if the database stays away, the error
/// answers 503 and the claimed runs fall to the crash detector when their lease expires.
async fn claimed_spec(
    st: &AppState,
    deployment: uuid::Uuid,
) -> ApiResult<Option<weir_core::api::DeploymentSpec>> {
    let mut delay = Duration::from_millis(50);
    for _ in 0..5 {
        match st.store.deployment_by_id(deployment).await {
            Ok(d) => return Ok(Some(d.spec)),
            Err(weir_store::Error::NotFound(_)) => return Ok(None),
            Err(e) if e.is_transient() => {
                tokio::time::sleep(delay).await;
                delay *= 2;
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(Some(st.store.deployment_by_id(deployment).await?.spec))
}
