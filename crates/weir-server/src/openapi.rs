//! The OpenAPI 3 document served at `/api/openapi.json`, generated from the same Rust types
//! the handlers use (through schemars), so it cannot drift from the wire format.

use axum::Json;
use schemars::generate::{SchemaGenerator, SchemaSettings};
use schemars::{JsonSchema, Schema};
use serde_json::{Map, Value, json};
use std::sync::OnceLock;
use weir_core::api::*;

struct Op {
    method: &'static str,
    path: &'static str,
    summary: &'static str,
    body: Option<Schema>,
    response: Schema,
}

fn op(
    method: &'static str,
    path: &'static str,
    summary: &'static str,
    body: Option<Schema>,
    response: Schema,
) -> Op {
    Op {
        method,
        path,
        summary,
        body,
        response,
    }
}

fn build() -> Value {
    let mut g: SchemaGenerator = SchemaSettings::openapi3().into_generator();
    let s = |g: &mut SchemaGenerator, f: fn(&mut SchemaGenerator) -> Schema| f(g);
    fn of<T: JsonSchema>(g: &mut SchemaGenerator) -> Schema {
        g.subschema_for::<T>()
    }
    let ops = vec![
        op("get", "/healthz", "Liveness", None, s(&mut g, of::<Health>)),
        op(
            "get",
            "/api/openapi.json",
            "This OpenAPI document",
            None,
            s(&mut g, of::<Value>),
        ),
        op(
            "get",
            "/metrics",
            "Prometheus metrics (text format)",
            None,
            s(&mut g, of::<String>),
        ),
        op(
            "get",
            "/readyz",
            "Readiness (the database answers)",
            None,
            s(&mut g, of::<Health>),
        ),
        op(
            "get",
            "/api/v1/projects",
            "List projects",
            None,
            s(&mut g, of::<Vec<Project>>),
        ),
        op(
            "post",
            "/api/v1/projects",
            "Create a project",
            Some(s(&mut g, of::<CreateProject>)),
            s(&mut g, of::<Project>),
        ),
        op(
            "get",
            "/api/v1/projects/{project}",
            "Get a project",
            None,
            s(&mut g, of::<Project>),
        ),
        op(
            "get",
            "/api/v1/deployments",
            "List deployments (filter: project)",
            None,
            s(&mut g, of::<Vec<Deployment>>),
        ),
        op(
            "get",
            "/api/v1/flows",
            "List flows known from deployments",
            None,
            s(&mut g, of::<Vec<Value>>),
        ),
        op(
            "put",
            "/api/v1/projects/{project}/deployments/{name}",
            "Create or update a deployment (idempotent; unchanged specs are not new versions)",
            Some(s(&mut g, of::<UpsertDeployment>)),
            s(&mut g, of::<UpsertResult>),
        ),
        op(
            "get",
            "/api/v1/projects/{project}/deployments/{name}",
            "Get a deployment",
            None,
            s(&mut g, of::<Deployment>),
        ),
        op(
            "post",
            "/api/v1/projects/{project}/deployments/{name}/pause",
            "Pause a deployment's schedules",
            None,
            s(&mut g, of::<Deployment>),
        ),
        op(
            "post",
            "/api/v1/projects/{project}/deployments/{name}/resume",
            "Resume a deployment's schedules",
            None,
            s(&mut g, of::<Deployment>),
        ),
        op(
            "post",
            "/api/v1/flow_runs",
            "Create a flow run (idempotency_key dedupes)",
            Some(s(&mut g, of::<CreateFlowRun>)),
            s(&mut g, of::<FlowRun>),
        ),
        op(
            "get",
            "/api/v1/flow_runs",
            "List flow runs (filters: project, deployment, flow, state, since, until; cursor, limit)",
            None,
            s(&mut g, of::<Page<FlowRun>>),
        ),
        op(
            "get",
            "/api/v1/flow_runs/{id}",
            "A flow run with its state history",
            None,
            s(&mut g, of::<FlowRunDetail>),
        ),
        op(
            "post",
            "/api/v1/flow_runs/{id}/state",
            "Propose a state (409 with the current run when refused)",
            Some(s(&mut g, of::<ProposeState>)),
            s(&mut g, of::<FlowRun>),
        ),
        op(
            "post",
            "/api/v1/flow_runs/{id}/cancel",
            "Cancel a run",
            None,
            s(&mut g, of::<FlowRun>),
        ),
        op(
            "post",
            "/api/v1/flow_runs/{id}/retry",
            "Retry a terminal run (optionally from failed tasks)",
            Some(s(&mut g, of::<RetryFlowRun>)),
            s(&mut g, of::<FlowRun>),
        ),
        op(
            "post",
            "/api/v1/flow_runs/{id}/heartbeat",
            "Renew a run's lease from its own process",
            Some(s(&mut g, of::<RunHeartbeat>)),
            s(&mut g, of::<RunHeartbeatReply>),
        ),
        op(
            "get",
            "/api/v1/flow_runs/{id}/task_runs",
            "Task runs of a flow run (cursor, limit)",
            None,
            s(&mut g, of::<Page<TaskRun>>),
        ),
        op(
            "get",
            "/api/v1/flow_runs/{id}/logs",
            "Log lines after a sequence number (after, limit, task_run)",
            None,
            s(&mut g, of::<Page<LogLine>>),
        ),
        op(
            "get",
            "/api/v1/flow_runs/{id}/stream",
            "Server-sent events: state, log, end",
            None,
            s(&mut g, of::<LogLine>),
        ),
        op(
            "post",
            "/api/v1/task_runs/batch",
            "Ingest task-run reports",
            Some(s(&mut g, of::<TaskRunBatch>)),
            s(&mut g, of::<BatchAccepted>),
        ),
        op(
            "get",
            "/api/v1/task_runs/{id}",
            "A task run with its history",
            None,
            s(&mut g, of::<TaskRunDetail>),
        ),
        op(
            "post",
            "/api/v1/logs/batch",
            "Ingest log lines",
            Some(s(&mut g, of::<LogBatch>)),
            s(&mut g, of::<BatchAccepted>),
        ),
        op(
            "get",
            "/api/v1/work_queues",
            "Work queues with ready and running counts",
            None,
            s(&mut g, of::<Vec<WorkQueue>>),
        ),
        op(
            "post",
            "/api/v1/agents",
            "Register an agent",
            Some(s(&mut g, of::<RegisterAgent>)),
            s(&mut g, of::<Agent>),
        ),
        op(
            "get",
            "/api/v1/agents",
            "Agents seen in the last 24 hours",
            None,
            s(&mut g, of::<Vec<Agent>>),
        ),
        op(
            "post",
            "/api/v1/agents/{id}/heartbeat",
            "Agent heartbeat: renews leases, returns runs to cancel",
            Some(s(&mut g, of::<Heartbeat>)),
            s(&mut g, of::<HeartbeatReply>),
        ),
        op(
            "post",
            "/api/v1/agents/{id}/claim",
            "Claim due runs (long-poll with wait_ms)",
            Some(s(&mut g, of::<ClaimRequest>)),
            s(&mut g, of::<Vec<ClaimedRun>>),
        ),
        op(
            "post",
            "/api/v1/keys",
            "Create an API key (admin; the secret is shown once)",
            Some(s(&mut g, of::<CreateApiKey>)),
            s(&mut g, of::<CreatedApiKey>),
        ),
        op(
            "get",
            "/api/v1/keys",
            "List API keys (admin; never secrets)",
            None,
            s(&mut g, of::<Vec<ApiKey>>),
        ),
        op(
            "post",
            "/api/v1/keys/{id}/revoke",
            "Revoke an API key at once (admin)",
            None,
            s(&mut g, of::<ApiKey>),
        ),
        op(
            "get",
            "/api/v1/audit",
            "The audit log, newest first (admin)",
            None,
            s(&mut g, of::<Page<AuditEntry>>),
        ),
    ];
    let error = g.subschema_for::<ErrorBody>();
    let mut paths = Map::new();
    for o in ops {
        let params: Vec<Value> = o
            .path
            .split('/')
            .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(|name| json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}))
            .collect();
        let mut operation = json!({
            "summary": o.summary,
            "parameters": params,
            "responses": {
                "200": {"description": "OK", "content": {"application/json": {"schema": o.response}}},
                "default": {"description": "Error", "content": {"application/json": {"schema": error}}},
            }
        });
        if o.path.starts_with("/api/v1") {
            operation["security"] = json!([{"bearer": []}]);
        }
        if let Some(body) = o.body {
            operation["requestBody"] =
                json!({"required": true, "content": {"application/json": {"schema": body}}});
        }
        let entry = paths
            .entry(o.path.to_string())
            .or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(m) = entry {
            m.insert(o.method.to_string(), operation);
        }
    }
    // Two answers are not JSON.
    for (path, media) in [
        ("/metrics", "text/plain"),
        ("/api/v1/flow_runs/{id}/stream", "text/event-stream"),
    ] {
        if let Some(op) = paths.get_mut(path).and_then(|p| p.get_mut("get")) {
            let schema = op["responses"]["200"]["content"]["application/json"]["schema"].take();
            op["responses"]["200"]["content"] = json!({ media: {"schema": schema} });
        }
    }
    json!({
        "openapi": "3.0.3",
        "info": {"title": "Weir API", "version": env!("CARGO_PKG_VERSION")},
        "paths": paths,
        "components": {
            "schemas": g.definitions().clone(),
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    })
}

/// `GET /api/openapi.json`.
pub(crate) async fn document() -> Json<Value> {
    static DOC: OnceLock<Value> = OnceLock::new();
    Json(DOC.get_or_init(build).clone())
}
