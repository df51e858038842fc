//! Projects, deployments and flows.

use crate::access::{Require, perm};
use crate::error::{ApiError, ApiResult};
use crate::extract::{Json, Path, Query};
use crate::openapi::MaybeCreated;
use crate::ops;
use crate::state::AppState;
use axum::extract::State;
use chrono::Utc;
use serde::Serialize;
use weir_core::api::{
    CreateProject, Deployment, DeploymentPath, Project, ProjectQuery, SetRetention,
    UpsertDeployment, UpsertResult,
};
use weir_core::audit::AuditAction;
use weir_core::{names, retention};

/// `GET /api/v1/projects`.
pub(crate) async fn list_projects(
    State(st): State<AppState>,
    caller: Require<perm::Read>,
) -> ApiResult<axum::Json<Vec<Project>>> {
    let mut projects = st.store.projects().await?;
    projects.retain(|p| caller.sees(&p.name));
    Ok(axum::Json(
        projects
            .into_iter()
            .map(|p| with_retention(&st, p))
            .collect(),
    ))
}

/// `POST /api/v1/projects`.
pub(crate) async fn create_project(
    State(st): State<AppState>,
    caller: Require<perm::Deploy>,
    Json(req): Json<CreateProject>,
) -> ApiResult<MaybeCreated<Project>> {
    names::check("project", &req.name).map_err(|m| ApiError::field("name", m))?;
    if !caller.sees(&req.name) {
        return Err(ApiError::Forbidden(format!(
            "this key may only use its own project, not {:?}",
            req.name
        )));
    }
    let created = st.store.ensure_project(&req.name, Utc::now()).await?;
    let project = find_project(&st, &req.name).await?;
    Ok(MaybeCreated {
        created,
        body: project,
    })
}

async fn find_project(st: &AppState, name: &str) -> ApiResult<Project> {
    st.store
        .projects()
        .await?
        .into_iter()
        .find(|p| p.name == name)
        .map(|p| with_retention(st, p))
        .ok_or_else(|| ApiError::NotFound(format!("project {name:?} not found")))
}

/// `project` with the retention in force (its own, else the server's default).
fn with_retention(st: &AppState, mut project: Project) -> Project {
    project.effective_retain_days =
        retention::effective_days(project.retain_days, st.options.retain_days);
    project
}

/// `PUT /api/v1/projects/{project}/retention`: the project's own retention (`null`: the
/// server's default; 0: forever).
pub(crate) async fn set_retention(
    State(st): State<AppState>,
    caller: Require<perm::Deploy>,
    Path(project): Path<String>,
    Json(req): Json<SetRetention>,
) -> ApiResult<axum::Json<Project>> {
    caller.check_project(&project, || format!("project {project:?}"))?;
    if let Some(days) = req.retain_days {
        retention::check_days(days).map_err(|m| ApiError::field("retain_days", m))?;
    }
    let updated = st.store.set_retention(&project, req.retain_days).await?;
    let detail = match req.retain_days {
        None => "server default".to_string(),
        Some(0) => "forever".to_string(),
        Some(d) => format!("{d} days"),
    };
    caller
        .audit(&st, AuditAction::RetentionSet, &project, Some(detail))
        .await;
    Ok(axum::Json(with_retention(&st, updated)))
}

/// `GET /api/v1/projects/{project}`.
pub(crate) async fn get_project(
    State(st): State<AppState>,
    caller: Require<perm::Read>,
    Path(project): Path<String>,
) -> ApiResult<axum::Json<Project>> {
    caller.check_project(&project, || format!("project {project:?}"))?;
    Ok(axum::Json(find_project(&st, &project).await?))
}

/// `GET /api/v1/deployments?project=`.
pub(crate) async fn list_deployments(
    State(st): State<AppState>,
    caller: Require<perm::Read>,
    Query(f): Query<ProjectQuery>,
) -> ApiResult<axum::Json<Vec<Deployment>>> {
    let projects = caller.narrow(f.project);
    let deployments = st.store.deployments(projects.as_deref()).await?;
    Ok(axum::Json(
        deployments.into_iter().map(Deployment::from).collect(),
    ))
}

/// A flow as known from deployments.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub(crate) struct FlowInfo {
    /// The flow's name, as its deployments give it.
    name: String,
    /// Its parameter schema, from the newest deployment that has one.
    parameter_schema: Option<serde_json::Value>,
    /// Deployments running it, as `project/name`.
    deployments: Vec<String>,
}

/// `GET /api/v1/flows?project=`.
pub(crate) async fn list_flows(
    State(st): State<AppState>,
    caller: Require<perm::Read>,
    Query(f): Query<ProjectQuery>,
) -> ApiResult<axum::Json<Vec<FlowInfo>>> {
    let projects = caller.narrow(f.project);
    let mut flows: std::collections::BTreeMap<String, FlowInfo> = Default::default();
    for d in st.store.deployments(projects.as_deref()).await? {
        let info = flows
            .entry(d.spec.flow.clone())
            .or_insert_with(|| FlowInfo {
                name: d.spec.flow.clone(),
                parameter_schema: None,
                deployments: vec![],
            });
        if d.spec.parameter_schema.is_some() {
            info.parameter_schema = d.spec.parameter_schema.clone();
        }
        info.deployments.push(format!("{}/{}", d.project, d.name));
    }
    Ok(axum::Json(flows.into_values().collect()))
}

/// `PUT /api/v1/projects/{project}/deployments/{name}`: idempotent upsert.
pub(crate) async fn upsert(
    State(st): State<AppState>,
    caller: Require<perm::Deploy>,
    Path(DeploymentPath { project, name }): Path<DeploymentPath>,
    Json(req): Json<UpsertDeployment>,
) -> ApiResult<axum::Json<UpsertResult>> {
    caller.check_project(&project, || format!("project {project:?}"))?;
    names::check("project", &project).map_err(|m| ApiError::field("project", m))?;
    names::check("deployment", &name).map_err(|m| ApiError::field("name", m))?;
    validate_spec(&req.spec)?;
    let result = st
        .store
        .upsert_deployment(&project, &name, &req.spec, req.dry_run, Utc::now())
        .await?;
    if !req.dry_run && result.outcome != weir_core::api::UpsertOutcome::Unchanged {
        let version = result
            .deployment
            .as_ref()
            .map(|d| format!("v{}", d.version));
        caller
            .audit(
                &st,
                AuditAction::Deploy,
                &format!("{project}/{name}"),
                version,
            )
            .await;
    }
    Ok(axum::Json(result.into()))
}

fn validate_spec(spec: &weir_core::api::DeploymentSpec) -> ApiResult<()> {
    weir_core::deployment::check_spec(spec).map_err(|e| ApiError::field(e.field, e.message))
}

/// `GET /api/v1/projects/{project}/deployments/{name}`.
pub(crate) async fn get_deployment(
    State(st): State<AppState>,
    caller: Require<perm::Read>,
    Path(DeploymentPath { project, name }): Path<DeploymentPath>,
) -> ApiResult<axum::Json<Deployment>> {
    caller.check_project(&project, || format!("deployment {project}/{name}"))?;
    Ok(axum::Json(
        st.store.deployment(&project, &name).await?.into(),
    ))
}

/// `POST …/pause`.
pub(crate) async fn pause(
    st: State<AppState>,
    caller: Require<perm::Deploy>,
    path: Path<DeploymentPath>,
) -> ApiResult<axum::Json<Deployment>> {
    set_paused(st, caller, path, true).await
}

/// `POST …/resume`.
pub(crate) async fn resume(
    st: State<AppState>,
    caller: Require<perm::Deploy>,
    path: Path<DeploymentPath>,
) -> ApiResult<axum::Json<Deployment>> {
    set_paused(st, caller, path, false).await
}

async fn set_paused(
    State(st): State<AppState>,
    caller: Require<perm::Deploy>,
    Path(DeploymentPath { project, name }): Path<DeploymentPath>,
    paused: bool,
) -> ApiResult<axum::Json<Deployment>> {
    let d = ops::deployments::set_paused(&st, &caller, &project, &name, paused).await?;
    Ok(axum::Json(d.into()))
}

/// `POST …/archive`: what `weir deploy --prune` and `weir deployments rm` call. The
/// deployment stops scheduling and gets no new runs; its history stays readable. Idempotent;
/// deploying it again restores it.
pub(crate) async fn archive(
    State(st): State<AppState>,
    caller: Require<perm::Deploy>,
    Path((project, name)): Path<(String, String)>,
) -> ApiResult<axum::Json<Deployment>> {
    caller.check_project(&project, || format!("deployment {project}/{name}"))?;
    let d = st.store.deployment(&project, &name).await?;
    if st.store.archive_deployment(d.id, Utc::now()).await? {
        caller
            .audit(
                &st,
                AuditAction::DeploymentArchive,
                &format!("{project}/{name}"),
                None,
            )
            .await;
    }
    Ok(axum::Json(
        st.store.deployment(&project, &name).await?.into(),
    ))
}
