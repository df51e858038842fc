//! Authentication and authorisation over real HTTP against `Server::start` (SQLite; the role
//! matrix on PostgreSQL too):
//!
//! - every way of not being authenticated gets 401 with one byte-identical body;
//! - a role × endpoint matrix walks every route of `src/routes/mod.rs` (read from its source,
//!   so a new route without a declared expectation fails) for each kind of caller, with
//!   real, valid requests, and checks each cell against the one table [`MATRIX`];
//! - project scoping answers 404 (as for something that does not exist) and filters lists;
//! - agent keys touch only the runs their agents claimed, run tokens only their run (and
//!   its subflows) and only for the current attempt;
//! - no key creates a key with more power than its own;
//! - the database holds key digests, never key secrets, and the API never returns them;
//! - the audit log records who did what, and only unscoped admins read it.

mod common;

use common::*;
use reqwest::Method;
use serde_json::{Value, json};
use sha2::Digest;
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};
use uuid::Uuid;
use weir_client::Client;
use weir_core::StateKind;
use weir_core::api::notifications::{
    Destination, NotificationEvent, NotificationRuleSpec, RateLimit, RuleSource,
};
use weir_core::api::{CreateApiKey, CreateFlowRun, CreatedApiKey, FlowRun, RegisterAgent};
use weir_core::auth::{Permission, Role};
use weir_testkit::{Backend, TestDb};

both! {
    role_matrix => sqlite_role_matrix, postgres_role_matrix;
}

/// Expected outcome of one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Exp {
    /// Any 2xx.
    Ok,
    /// 401.
    Unauth,
    /// 403.
    Forbidden,
    /// 404.
    NotFound,
}

const OK: Exp = Exp::Ok;
const U: Exp = Exp::Unauth;
const F: Exp = Exp::Forbidden;
const N: Exp = Exp::NotFound;

impl Exp {
    /// Whether an HTTP status is this outcome.
    fn matches(self, status: u16) -> bool {
        match self {
            Exp::Ok => (200..300).contains(&status),
            Exp::Unauth => status == 401,
            Exp::Forbidden => status == 403,
            Exp::NotFound => status == 404,
        }
    }
}

/// The callers of [`MATRIX`], in column order.
const CALLERS: [&str; 7] = [
    "no key",
    "admin",
    "developer",
    "agent",
    "viewer",
    "developer scoped to dev",
    "run token",
];

/// What each caller gets from each route. Every request targets project `main`: its
/// deployment `main/etl` (`main/sched` for pause/resume/archive), and for run routes a fresh run of
/// `main/etl` claimed by the agent key's agent, whose run token is the run-token column.
/// Agent routes name the agent key's agent; revoke names a fresh viewer key.
///
/// Columns: no key, admin, developer, agent, viewer, developer scoped to `dev`, run token.
const MATRIX: &[(&str, &str, [Exp; 7])] = &[
    ("get", "/api/v1/projects", [U, OK, OK, F, OK, OK, F]),
    ("post", "/api/v1/projects", [U, OK, OK, F, F, F, F]),
    (
        "get",
        "/api/v1/projects/{project}",
        [U, OK, OK, F, OK, N, F],
    ),
    (
        "put",
        "/api/v1/projects/{project}/retention",
        [U, OK, OK, F, F, N, F],
    ),
    ("get", "/api/v1/deployments", [U, OK, OK, F, OK, OK, F]),
    ("get", "/api/v1/flows", [U, OK, OK, F, OK, OK, F]),
    (
        "put",
        "/api/v1/projects/{project}/deployments/{name}",
        [U, OK, OK, F, F, N, F],
    ),
    (
        "get",
        "/api/v1/projects/{project}/deployments/{name}",
        [U, OK, OK, F, OK, N, F],
    ),
    (
        "post",
        "/api/v1/projects/{project}/deployments/{name}/pause",
        [U, OK, OK, F, F, N, F],
    ),
    (
        "post",
        "/api/v1/projects/{project}/deployments/{name}/resume",
        [U, OK, OK, F, F, N, F],
    ),
    (
        "post",
        "/api/v1/projects/{project}/deployments/{name}/archive",
        [U, OK, OK, F, F, N, F],
    ),
    (
        "post",
        "/api/v1/projects/{project}/deployments/{name}/backfill",
        [U, OK, OK, F, F, N, F],
    ),
    ("get", "/api/v1/notifications", [U, OK, OK, F, OK, OK, F]),
    (
        "get",
        "/api/v1/notifications/deliveries",
        [U, OK, OK, F, OK, OK, F],
    ),
    (
        "put",
        "/api/v1/projects/{project}/notifications/{name}",
        [U, OK, OK, F, F, N, F],
    ),
    (
        "get",
        "/api/v1/projects/{project}/notifications/{name}",
        [U, OK, OK, F, OK, N, F],
    ),
    (
        "delete",
        "/api/v1/projects/{project}/notifications/{name}",
        [U, OK, OK, F, F, N, F],
    ),
    (
        "post",
        "/api/v1/projects/{project}/notifications/{name}/test",
        [U, OK, OK, F, F, N, F],
    ),
    ("get", "/api/v1/flow_runs", [U, OK, OK, F, OK, OK, F]),
    ("post", "/api/v1/flow_runs", [U, OK, OK, F, F, N, F]),
    ("get", "/api/v1/flow_runs/{id}", [U, OK, OK, OK, OK, N, OK]),
    (
        "post",
        "/api/v1/flow_runs/{id}/state",
        [U, OK, OK, OK, F, N, OK],
    ),
    (
        "post",
        "/api/v1/flow_runs/{id}/cancel",
        [U, OK, OK, F, F, N, F],
    ),
    (
        "post",
        "/api/v1/flow_runs/{id}/retry",
        [U, OK, OK, F, F, N, F],
    ),
    (
        "post",
        "/api/v1/flow_runs/{id}/heartbeat",
        [U, OK, OK, OK, F, N, OK],
    ),
    (
        "get",
        "/api/v1/flow_runs/{id}/task_runs",
        [U, OK, OK, OK, OK, N, OK],
    ),
    (
        "get",
        "/api/v1/flow_runs/{id}/logs",
        [U, OK, OK, OK, OK, N, OK],
    ),
    (
        "get",
        "/api/v1/flow_runs/{id}/stream",
        [U, OK, OK, OK, OK, N, OK],
    ),
    ("post", "/api/v1/task_runs/batch", [U, OK, OK, OK, F, N, OK]),
    ("get", "/api/v1/task_runs/{id}", [U, OK, OK, OK, OK, N, OK]),
    ("post", "/api/v1/logs/batch", [U, OK, OK, OK, F, N, OK]),
    ("get", "/api/v1/work_queues", [U, OK, OK, F, OK, F, F]),
    ("get", "/api/v1/agents", [U, OK, OK, F, OK, OK, F]),
    ("post", "/api/v1/agents", [U, OK, F, OK, F, F, F]),
    (
        "post",
        "/api/v1/agents/{id}/heartbeat",
        [U, OK, F, OK, F, F, F],
    ),
    ("post", "/api/v1/agents/{id}/claim", [U, OK, F, OK, F, F, F]),
    (
        "get",
        "/api/v1/flow_runs/{id}/why",
        [U, OK, OK, OK, OK, N, OK],
    ),
    (
        "get",
        "/api/v1/concurrency_limits",
        [U, OK, OK, F, OK, F, F],
    ),
    (
        "put",
        "/api/v1/concurrency_limits/{tag}",
        [U, OK, OK, F, F, F, F],
    ),
    (
        "delete",
        "/api/v1/concurrency_limits/{tag}",
        [U, OK, OK, F, F, F, F],
    ),
    ("get", "/api/v1/keys", [U, OK, F, F, F, F, F]),
    ("post", "/api/v1/keys", [U, OK, F, F, F, F, F]),
    ("post", "/api/v1/keys/{id}/revoke", [U, OK, F, F, F, F, F]),
    ("get", "/api/v1/audit", [U, OK, F, F, F, F, F]),
    ("get", "/api/openapi.json", [OK; 7]),
    ("get", "/healthz", [OK; 7]),
    ("get", "/readyz", [OK; 7]),
    ("get", "/metrics", [OK; 7]),
];

/// Creates a key with `c` (an admin's client) and returns it with its secret.
async fn create_key(c: &Client, name: &str, role: Role, project: Option<&str>) -> CreatedApiKey {
    c.create_key(&CreateApiKey {
        name: name.into(),
        role,
        project: project.map(str::to_string),
        expires_in_s: None,
    })
    .await
    .unwrap_or_else(|e| panic!("create key {name}: {e}"))
}

/// A server with one key of each kind, deployments `main/etl`, `main/sched` and `dev/etl`
/// (queue `default`), and an agent registered with the agent key.
struct World {
    s: TestServer,
    /// A client sending no credentials of its own: each request names its token.
    raw: reqwest::Client,
    admin: String,
    developer: CreatedApiKey,
    agent: String,
    viewer: String,
    /// A developer key scoped to project `dev`.
    scoped: String,
    /// The agent registered with `agent`.
    agent_id: Uuid,
}

/// A status and a body.
#[derive(Debug, Clone)]
struct Answer {
    status: u16,
    body: String,
}

impl World {
    /// Starts the server on `db` (60 s leases, so claimed runs stay claimed) and creates
    /// the keys, deployments and agent.
    async fn start(db: &TestDb) -> World {
        let mut opts = options(db);
        opts.lease = Duration::from_secs(60);
        let s = TestServer::start(opts).await;
        let admin = s.admin_key.clone();
        let c = &s.client;
        let developer = create_key(c, "ci", Role::Developer, None).await;
        let agent = create_key(c, "agent-key", Role::Agent, None).await.secret;
        let viewer = create_key(c, "viewer-key", Role::Viewer, None).await.secret;
        let scoped = create_key(c, "dev-ci", Role::Developer, Some("dev"))
            .await
            .secret;
        for (project, name) in [("main", "etl"), ("main", "sched"), ("dev", "etl")] {
            c.upsert_deployment(project, name, &spec("etl"), false)
                .await
                .unwrap_or_else(|e| panic!("deploy {project}/{name}: {e}"));
        }
        // Backfills need ticks: an hourly deployment.
        let mut hourly = spec("etl");
        hourly.schedules = vec![common::every("1h")];
        c.upsert_deployment("main", "hourly", &hourly, false)
            .await
            .unwrap_or_else(|e| panic!("deploy main/hourly: {e}"));
        let agent_id = s
            .client_with(&agent)
            .register_agent(&RegisterAgent {
                name: "agent-1".into(),
                queues: vec!["default".into()],
                limit: 100,
                launchers: vec![weir_core::infrastructure::InfrastructureKind::Process],
            })
            .await
            .expect("the agent key registers an agent")
            .id;
        World {
            raw: http_client(None),
            s,
            admin,
            developer,
            agent,
            viewer,
            scoped,
            agent_id,
        }
    }

    /// Sends `method path` with `Authorization: Bearer TOKEN` (none when `token` is None)
    /// and the JSON `body`. Streams (`/stream`) are not read past their headers.
    async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> Answer {
        let header = token.map(|t| format!("Bearer {t}"));
        self.call_with_header(method, path, header.as_deref(), body)
            .await
    }

    /// `call` with a raw `Authorization` header value (or none).
    async fn call_with_header(
        &self,
        method: Method,
        path: &str,
        header: Option<&str>,
        body: Option<&Value>,
    ) -> Answer {
        let mut rb = self.raw.request(method.clone(), self.s.url(path));
        if let Some(h) = header {
            rb = rb.header("authorization", h);
        }
        if let Some(b) = body {
            rb = rb.json(b);
        }
        let resp = rb
            .send()
            .await
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let status = resp.status().as_u16();
        let body = if path.ends_with("/stream") && status == 200 {
            String::new()
        } else {
            resp.text().await.expect("body")
        };
        Answer { status, body }
    }

    /// A new run of `project/etl` claimed by the agent key's agent: the run (Pending,
    /// attempt 1) and its run token.
    async fn claimed_run(&self, project: &str) -> (FlowRun, String) {
        let run = self
            .s
            .client
            .create_flow_run(&CreateFlowRun {
                project: Some(project.into()),
                deployment: Some("etl".into()),
                ..Default::default()
            })
            .await
            .expect("create run");
        let claimed = self
            .s
            .client_with(&self.agent)
            .claim(self.agent_id, 100, Duration::ZERO)
            .await
            .expect("the agent key claims");
        let c = claimed
            .into_iter()
            .find(|c| c.run.id == run.id)
            .expect("the new run was claimed");
        let token = c.run_token.expect("a claimed run comes with a run token");
        (c.run, token)
    }

    /// Reports a Completed task run of `run` with the admin key; returns its id.
    async fn task_run_of(&self, run: Uuid) -> Uuid {
        let id = Uuid::now_v7();
        let a = self
            .call(
                Method::POST,
                "/api/v1/task_runs/batch",
                Some(&self.admin),
                Some(&task_batch(run, id)),
            )
            .await;
        assert_eq!(a.status, 200, "{a:?}");
        id
    }

    /// Proposes `state` for `run`'s attempt `attempt` with the admin key.
    async fn admin_propose(&self, run: Uuid, state: &str, attempt: u32) {
        let a = self
            .call(
                Method::POST,
                &format!("/api/v1/flow_runs/{run}/state"),
                Some(&self.admin),
                Some(&json!({"state": state, "attempt": attempt})),
            )
            .await;
        assert_eq!(a.status, 200, "propose {state}: {a:?}");
    }

    /// Sends each of `requests` with `token` (none when `None`) and checks it answers
    /// `status`; `what` names the case in a failure.
    async fn expect_status(
        &self,
        token: Option<&str>,
        requests: Vec<Request>,
        status: u16,
        what: &str,
    ) {
        for (m, path, body) in requests {
            let a = self.call(m.clone(), &path, token, body.as_ref()).await;
            assert_eq!(a.status, status, "{what}: {m} {path}: {a:?}");
        }
    }

    /// Registers an agent `name` on the default queue with the agent key `key`; its id.
    async fn register_agent(&self, key: &str, name: &str) -> Uuid {
        let body = json!({"name": name, "queues": ["default"], "limit": 5});
        let reg = self
            .call(Method::POST, "/api/v1/agents", Some(key), Some(&body))
            .await;
        assert_eq!(reg.status, 201, "{reg:?}");
        serde_json::from_str::<Value>(&reg.body).expect("json")["id"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .expect("agent id")
    }

    /// Heartbeats agent `agent` with `token`, naming attempt 1 of `run`; the runs the
    /// answer says the agent lost.
    async fn heartbeat_runs(&self, token: Option<&str>, agent: Uuid, run: Uuid) -> Value {
        let path = format!("/api/v1/agents/{agent}/heartbeat");
        let body = json!({"runs": [{"id": run, "attempt": 1}]});
        let hb = self.call(Method::POST, &path, token, Some(&body)).await;
        assert_eq!(hb.status, 200, "{hb:?}");
        let reply: Value = serde_json::from_str(&hb.body).expect("json");
        reply["lost"].clone()
    }

    /// The run as the admin sees it.
    async fn run(&self, id: Uuid) -> FlowRun {
        self.s.client.flow_run(id).await.expect("read run").run
    }
}

/// A task-run batch with one Completed report `id` of `run`.
fn task_batch(run: Uuid, id: Uuid) -> Value {
    json!({"reports": [{
        "id": id, "flow_run_id": run, "task": "extract", "state": "Completed",
        "at": chrono::Utc::now(), "attempt": 1
    }]})
}

/// A log batch with one line `message` for `run`.
fn log_batch(run: Uuid, message: &str) -> Value {
    json!({"lines": [{
        "flow_run_id": run, "at": chrono::Utc::now(), "level": "info", "message": message
    }]})
}

/// A notification rule to a webhook nothing listens on (deliveries fail in the background).
fn rule_spec() -> NotificationRuleSpec {
    NotificationRuleSpec {
        on: vec![NotificationEvent::Failed],
        deployments: vec![],
        destination: Destination::Webhook {
            url: "http://127.0.0.1:9/nowhere".into(),
            signing_key: None,
        },
        rate_limit: RateLimit::default(),
    }
}

/// The request of one matrix cell: method, concrete path and body, with the resources it
/// needs created fresh; and the run token of the run it targets, if it targets one.
async fn cell_request(
    w: &World,
    method: &str,
    route: &str,
) -> (Method, String, Option<Value>, Option<String>) {
    let method = match method {
        "get" => Method::GET,
        "post" => Method::POST,
        "put" => Method::PUT,
        "delete" => Method::DELETE,
        other => panic!("unexpected method {other}"),
    };
    let mut path = route.replace("{project}", "main");
    path = if route.ends_with("/pause") || route.ends_with("/resume") || route.ends_with("/archive")
    {
        path.replace("{name}", "sched")
    } else if route.ends_with("/backfill") {
        path.replace("{name}", "hourly")
    } else {
        path.replace("{name}", "etl")
    };
    let (mut token, mut run_id) = (None, None);
    let runs_route = route.starts_with("/api/v1/flow_runs/{id}")
        || route.starts_with("/api/v1/task_runs")
        || route == "/api/v1/logs/batch";
    if runs_route {
        let (run, t) = w.claimed_run("main").await;
        token = Some(t);
        run_id = Some(run.id);
        if route.ends_with("/retry") {
            w.admin_propose(run.id, "Running", 1).await;
            w.admin_propose(run.id, "Failed", 1).await;
        }
        let id = if route == "/api/v1/task_runs/{id}" {
            w.task_run_of(run.id).await
        } else {
            run.id
        };
        path = path.replace("{id}", &id.to_string());
    }
    path = cell_resources(w, &method, route, path).await;
    let body = cell_body(&method, route, run_id);
    (method, path, body, token)
}

/// Creates what a cell of a route that is not a run's needs (a tag limit to delete, a rule
/// to read, a key to revoke) and fills in `path`'s ids.
async fn cell_resources(w: &World, method: &Method, route: &str, mut path: String) -> String {
    if route.starts_with("/api/v1/agents/{id}") {
        path = path.replace("{id}", &w.agent_id.to_string());
    }
    if route == "/api/v1/concurrency_limits/{tag}" {
        path = path.replace("{tag}", "matrix");
        if method == Method::DELETE {
            w.s.client
                .set_tag_limit("matrix", 2)
                .await
                .unwrap_or_else(|e| panic!("set a tag limit: {e}"));
        }
    }
    if route.starts_with("/api/v1/projects/{project}/notifications/{name}") {
        // Each cell gets the rule it reads, tests or deletes.
        w.s.client
            .upsert_notification_rule("main", "etl", &rule_spec(), RuleSource::Api)
            .await
            .expect("create rule main/etl");
    }
    if route == "/api/v1/keys/{id}/revoke" {
        let k = create_key(&w.s.client, "to-revoke", Role::Viewer, None).await;
        path = path.replace("{id}", &k.key.id);
    }
    path
}

/// The body a cell sends to `method route`; `run` is the run it targets, if any.
fn cell_body(method: &Method, route: &str, run: Option<Uuid>) -> Option<Value> {
    match (method.as_str(), route) {
        ("POST", "/api/v1/projects") => Some(json!({"name": "main"})),
        ("PUT", "/api/v1/projects/{project}/retention") => Some(json!({"retain_days": 30})),
        ("PUT", "/api/v1/concurrency_limits/{tag}") => Some(json!({"slots": 2})),
        ("PUT", "/api/v1/projects/{project}/notifications/{name}") => {
            Some(json!({"spec": rule_spec()}))
        }
        ("PUT", _) => Some(json!({"spec": spec("etl")})),
        ("POST", "/api/v1/flow_runs") => Some(json!({"project": "main", "deployment": "etl"})),
        ("POST", "/api/v1/projects/{project}/deployments/{name}/backfill") => {
            let now = chrono::Utc::now();
            let from = now - chrono::Duration::hours(3);
            Some(json!({"from": from, "to": now, "dry_run": true}))
        }
        ("POST", "/api/v1/flow_runs/{id}/state") => Some(json!({"state": "Running", "attempt": 1})),
        ("POST", "/api/v1/flow_runs/{id}/heartbeat") => Some(json!({"attempt": 1})),
        ("POST", "/api/v1/task_runs/batch") => run.map(|r| task_batch(r, Uuid::now_v7())),
        ("POST", "/api/v1/logs/batch") => run.map(|r| log_batch(r, "matrix")),
        ("POST", "/api/v1/agents") => {
            Some(json!({"name": "matrix-agent", "queues": ["default"], "limit": 1}))
        }
        ("POST", "/api/v1/agents/{id}/heartbeat") => Some(json!({"runs": []})),
        ("POST", "/api/v1/agents/{id}/claim") => Some(json!({"limit": 1, "wait_ms": 0})),
        ("POST", "/api/v1/keys") => Some(json!({"name": "matrix", "role": "viewer"})),
        _ => None,
    }
}

/// Every route × every caller, against [`MATRIX`].
async fn role_matrix(db: &TestDb) {
    let w = World::start(db).await;
    let (_, standing_token) = w.claimed_run("main").await;
    let documented = documented_routes(&w.s).await;
    matrix_covers_the_router(&documented);
    rows_follow_the_permissions(&documented);

    let mut failures = Vec::new();
    let mut cells = 0;
    for (method, route, expected) in MATRIX {
        // Requests that change what the next caller would find get fresh resources per
        // cell; the others share one set per route (fewer runs to create and claim).
        let fresh = ["/state", "/cancel", "/retry", "/revoke"]
            .iter()
            .any(|e| route.ends_with(e))
            || *method == "delete";
        let mut shared = None;
        for (col, exp) in expected.iter().enumerate() {
            let (m, path, body, run_token) = match &shared {
                Some(req) if !fresh => Clone::clone(req),
                _ => {
                    let req = cell_request(&w, method, route).await;
                    shared = Some(req.clone());
                    req
                }
            };
            let token = match col {
                0 => None,
                1 => Some(w.admin.clone()),
                2 => Some(w.developer.secret.clone()),
                3 => Some(w.agent.clone()),
                4 => Some(w.viewer.clone()),
                5 => Some(w.scoped.clone()),
                _ => Some(run_token.unwrap_or_else(|| standing_token.clone())),
            };
            let a = w
                .call(m.clone(), &path, token.as_deref(), body.as_ref())
                .await;
            cells += 1;
            if !exp.matches(a.status) {
                failures.push(format!(
                    "{m} {route} as {}: expected {exp:?}, got {} {}",
                    CALLERS[col], a.status, a.body
                ));
            }
        }
    }
    assert_eq!(cells, MATRIX.len() * CALLERS.len());
    assert!(
        failures.is_empty(),
        "{} of {cells} cells differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
    w.s.stop().await;
}

/// The table and the router agree: no route without an expectation, no stale row.
fn matrix_covers_the_router(documented: &BTreeMap<(String, String), Needs>) {
    let served: BTreeSet<(String, String)> = documented.keys().cloned().collect();
    assert!(served.len() >= 30, "read the router's routes: {served:?}");
    let declared: BTreeSet<(String, String)> = MATRIX
        .iter()
        .map(|(m, p, _)| (m.to_string(), p.to_string()))
        .collect();
    assert_eq!(
        declared.len(),
        MATRIX.len(),
        "a route is declared twice in MATRIX"
    );
    let missing: Vec<_> = served.difference(&declared).collect();
    assert!(
        missing.is_empty(),
        "routes without an expected row in MATRIX: {missing:?}"
    );
    let stale: Vec<_> = declared.difference(&served).collect();
    assert!(
        stale.is_empty(),
        "MATRIX rows for routes that are not served: {stale:?}"
    );
}

/// Each row agrees with the permission its route is registered with: a role that lacks it
/// is refused (403) and a role that has it is not; a route registered without one is
/// public. (Agent keys and run tokens read the runs they hold beyond their role, so on
/// run-checked routes only the admin, developer and viewer columns follow the role.)
fn rows_follow_the_permissions(documented: &BTreeMap<(String, String), Needs>) {
    for (method, route, expected) in MATRIX {
        let needs = &documented[&(method.to_string(), route.to_string())];
        let Some((permission, checked)) = needs else {
            assert_eq!(expected, &[OK; 7], "{method} {route} is public");
            continue;
        };
        let p = Permission::ALL
            .into_iter()
            .find(|p| p.as_str() == permission)
            .unwrap_or_else(|| panic!("{method} {route}: unknown permission {permission}"));
        assert_eq!(expected[0], U, "{method} {route} needs a key");
        let columns: &[(usize, Role)] = match checked.as_str() {
            "role" => &[
                (1, Role::Admin),
                (2, Role::Developer),
                (3, Role::Agent),
                (4, Role::Viewer),
            ],
            _ => &[(1, Role::Admin), (2, Role::Developer), (4, Role::Viewer)],
        };
        for (col, role) in columns {
            assert_eq!(
                expected[*col] == F,
                !role.allows(p),
                "{method} {route} is registered with permission {permission}, but MATRIX \
                 expects {:?} for {}",
                expected[*col],
                CALLERS[*col]
            );
        }
        if checked == "role" {
            assert_eq!(
                expected[6] == F,
                p != Permission::Report,
                "{method} {route}: a run token has only the report permission"
            );
        }
    }
}

/// A SQLite database for one test.
async fn sqlite(name: &str) -> TestDb {
    TestDb::new(Backend::Sqlite, name).await.expect("sqlite")
}

/// Missing, malformed, wrong, revoked and expired credentials all get 401 with the same
/// bytes, on any endpoint; revocation and expiry apply to the very next request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unauthenticated_requests_get_one_uniform_401() {
    let db = sqlite("uniform_401").await;
    let w = World::start(&db).await;
    let c = &w.s.client;
    let expiring = c
        .create_key(&CreateApiKey {
            name: "short".into(),
            role: Role::Viewer,
            project: None,
            expires_in_s: Some(1),
        })
        .await
        .expect("create expiring key");
    let expiring_made = Instant::now();
    let revocable = create_key(c, "revocable", Role::Viewer, None).await;
    let list = "/api/v1/flow_runs";
    for key in [&expiring.secret, &revocable.secret] {
        let a = w.call(Method::GET, list, Some(key), None).await;
        assert_eq!(a.status, 200, "the key works before: {a:?}");
    }

    let mut cases = malformed_credentials(&w.admin);
    // Revocation applies to the very next request.
    c.revoke_key(&revocable.key.id).await.expect("revoke");
    cases.push((
        "revoked key".into(),
        Some(format!("Bearer {}", revocable.secret)),
    ));

    // Expiry: wait out the 1 s lifetime (with margin) before the expired case.
    let lifetime = Duration::from_millis(1100);
    if let Some(left) = lifetime.checked_sub(expiring_made.elapsed()) {
        tokio::time::sleep(left).await;
    }
    cases.push((
        "expired key".into(),
        Some(format!("Bearer {}", expiring.secret)),
    ));

    let first = all_get_one_401(&w, &cases).await;
    let body: Value = serde_json::from_str(&first).expect("JSON body");
    assert_eq!(body["error"], "unauthorized", "{body}");
    // The revoked and expired keys are listed as such, and still nothing was changed.
    let keys = c.keys().await.expect("list keys");
    let revoked = keys
        .iter()
        .find(|k| k.id == revocable.key.id)
        .expect("listed");
    assert!(revoked.revoked_at.is_some(), "{revoked:?}");
    assert!(
        !keys.iter().any(|k| k.name == "x"),
        "no key was created by a refused request: {keys:?}"
    );
    w.s.stop().await;
}

/// `Authorization` headers (or none) that name no valid key or token, each with what it is:
/// no header, malformed ones, unknown or forged ones, and the valid `admin` key sent under
/// the wrong scheme or none.
fn malformed_credentials(admin: &str) -> Vec<(String, Option<String>)> {
    let (id, _) = weir_core::auth::parse_key(admin).expect("the admin key is well-formed");
    let hex64 = "ab".repeat(32);
    let wrong_secret = format!("weir_{id}_{hex64}");
    let short_secret = format!("weir_{id}_{}", &hex64[1..]);
    let bad_id = format!("weir_zzzzzzzzzzzz_{hex64}");
    let unknown_id = format!("weir_0123456789ab_{hex64}");
    let forged_run = format!("weirrun_{}_1_{}", Uuid::now_v7().simple(), "0".repeat(32));
    let bearer = |t: &str| format!("Bearer {t}");
    vec![
        ("no Authorization header".into(), None),
        ("Bearer x".into(), Some("Bearer x".into())),
        ("empty bearer".into(), Some("Bearer ".into())),
        ("non-hex id".into(), Some(bearer(&bad_id))),
        ("unknown id".into(), Some(bearer(&unknown_id))),
        (
            "wrong secret for a real id".into(),
            Some(bearer(&wrong_secret)),
        ),
        ("truncated secret".into(), Some(bearer(&short_secret))),
        ("Basic scheme".into(), Some("Basic YWRtaW46YWRtaW4=".into())),
        (
            "Token scheme with a valid key".into(),
            Some(format!("Token {admin}")),
        ),
        (
            "bare valid key without a scheme".into(),
            Some(admin.to_string()),
        ),
        ("forged run token".into(), Some(bearer(&forged_run))),
    ]
}

/// Sends a read and a key creation with each of `cases`' headers and checks every answer
/// is a 401 with the same bytes; returns that body.
async fn all_get_one_401(w: &World, cases: &[(String, Option<String>)]) -> String {
    let mut first: Option<String> = None;
    for (what, header) in cases {
        for (m, path, body) in [
            (Method::GET, "/api/v1/flow_runs", None),
            (
                Method::POST,
                "/api/v1/keys",
                Some(json!({"name": "x", "role": "admin"})),
            ),
        ] {
            let a = w
                .call_with_header(m.clone(), path, header.as_deref(), body.as_ref())
                .await;
            assert_eq!(a.status, 401, "{what}: {m} {path}: {a:?}");
            match &first {
                None => first = Some(a.body.clone()),
                Some(f) => assert_eq!(&a.body, f, "{what}: {m} {path}: the 401 body differs"),
            }
        }
    }
    first.expect("at least one case")
}

/// A developer key scoped to `dev` sees `main` as if it did not exist: 404 for its
/// deployment, runs, logs and task runs, exactly what a run that does not exist gets, and
/// writing to main's run is 404 too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scoped_keys_see_other_projects_as_missing() {
    let db = sqlite("scoped_404").await;
    let w = World::start(&db).await;
    let (main_run, _) = w.claimed_run("main").await;
    let main_task = w.task_run_of(main_run.id).await;
    let s = Some(w.scoped.as_str());

    let m = main_run.id;
    for path in [
        "/api/v1/projects/main".to_string(),
        "/api/v1/projects/main/deployments/etl".to_string(),
        format!("/api/v1/flow_runs/{m}"),
        format!("/api/v1/flow_runs/{m}/logs"),
        format!("/api/v1/flow_runs/{m}/task_runs"),
        format!("/api/v1/flow_runs/{m}/stream"),
        format!("/api/v1/task_runs/{main_task}"),
        "/api/v1/flow_runs?project=main&deployment=etl".to_string(),
    ] {
        let a = w.call(Method::GET, &path, s, None).await;
        assert_eq!(a.status, 404, "GET {path}: {a:?}");
        // Exactly what a run that does not exist gets.
        if path.contains(&m.to_string()) {
            let ghost = Uuid::now_v7().to_string();
            let ghost_path = path.replace(&m.to_string(), &ghost);
            let g = w.call(Method::GET, &ghost_path, s, None).await;
            assert_eq!(g.status, 404, "{g:?}");
            assert_eq!(a.body, g.body.replace(&ghost, &m.to_string()), "GET {path}");
        }
    }
    let writes = vec![
        post(
            format!("/api/v1/flow_runs/{m}/state"),
            json!({"state": "Running", "attempt": 1}),
        ),
        post(format!("/api/v1/flow_runs/{m}/cancel"), json!({})),
        post("/api/v1/logs/batch".into(), log_batch(m, "x")),
        post(
            "/api/v1/task_runs/batch".into(),
            task_batch(m, Uuid::now_v7()),
        ),
        post(
            "/api/v1/flow_runs".into(),
            json!({"project": "main", "deployment": "etl"}),
        ),
    ];
    w.expect_status(s, writes, 404, "a write to main").await;
    assert_eq!(
        w.run(m).await.state,
        StateKind::Pending,
        "nothing changed on main's run"
    );
    w.s.stop().await;
}

/// A developer key scoped to `dev` lists only dev's items, whatever the filter asks for, and
/// sees all of dev.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scoped_keys_list_only_their_project() {
    let db = sqlite("scoped_lists").await;
    let w = World::start(&db).await;
    let (main_run, _) = w.claimed_run("main").await;
    let (dev_run, _) = w.claimed_run("dev").await;
    let dev_task = w.task_run_of(dev_run.id).await;
    let s = Some(w.scoped.as_str());

    for path in [
        "/api/v1/projects",
        "/api/v1/deployments",
        "/api/v1/deployments?project=main",
        "/api/v1/flows",
        "/api/v1/flow_runs",
        "/api/v1/flow_runs?project=main",
    ] {
        let a = w.call(Method::GET, path, s, None).await;
        assert_eq!(a.status, 200, "GET {path}: {a:?}");
        let items = no_main_items(path, &a.body);
        assert!(
            !a.body.contains(&main_run.id.to_string()),
            "GET {path} mentions main's run"
        );
        if !path.contains("main") {
            assert!(items > 0, "GET {path} lists dev's items");
        }
    }
    // And dev is fully visible.
    let d = dev_run.id;
    let reads = vec![
        get(format!("/api/v1/flow_runs/{d}")),
        get(format!("/api/v1/flow_runs/{d}/logs")),
        get(format!("/api/v1/flow_runs/{d}/task_runs")),
        get(format!("/api/v1/task_runs/{dev_task}")),
        get("/api/v1/projects/dev/deployments/etl".into()),
    ];
    w.expect_status(s, reads, 200, "dev").await;
    let create = vec![post(
        "/api/v1/flow_runs".into(),
        json!({"project": "dev", "deployment": "etl"}),
    )];
    w.expect_status(s, create, 201, "a dev run").await;
    w.s.stop().await;
}

/// Checks the list `body` of `GET path` has no item of project `main` (by its `project` or
/// `name`, or a `main/…` deployment); returns how many items it has.
fn no_main_items(path: &str, body: &str) -> usize {
    let v: Value = serde_json::from_str(body).expect("JSON");
    let items = v.get("items").unwrap_or(&v).as_array().expect("a list");
    for item in items {
        let project = item["project"]
            .as_str()
            .or(item["name"].as_str())
            .unwrap_or_default();
        assert_ne!(project, "main", "GET {path} lists a main item: {item}");
        if let Some(deps) = item["deployments"].as_array() {
            assert!(
                deps.iter()
                    .all(|d| !d.as_str().unwrap_or_default().starts_with("main/")),
                "{item}"
            );
        }
    }
    items.len()
}

/// Agent keys heartbeat their agent, and never deploy, create runs or read lists.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_keys_do_not_deploy_run_or_list() {
    let db = sqlite("agent_keys_lists").await;
    let w = World::start(&db).await;
    let g1 = Some(w.agent.as_str());
    let a1 = w.agent_id;
    let hb = vec![post(
        format!("/api/v1/agents/{a1}/heartbeat"),
        json!({"runs": []}),
    )];
    w.expect_status(g1, hb, 200, "its own agent's heartbeat")
        .await;
    let refused = vec![
        (
            Method::PUT,
            "/api/v1/projects/dev/deployments/x".into(),
            Some(json!({"spec": spec("x")})),
        ),
        get("/api/v1/flow_runs".into()),
        get("/api/v1/deployments".into()),
        get("/api/v1/keys".into()),
        post(
            "/api/v1/flow_runs".into(),
            json!({"project": "main", "deployment": "etl"}),
        ),
    ];
    w.expect_status(g1, refused, 403, "agent key").await;
    w.s.stop().await;
}

/// Agent keys report only on runs their own agents claimed, and never act as (or take runs
/// from) another key's agent; the owner can do all of it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_keys_touch_only_their_claimed_runs() {
    let db = sqlite("agent_keys").await;
    let w = World::start(&db).await;
    let g1 = Some(w.agent.as_str());
    let other = create_key(&w.s.client, "agent-2", Role::Agent, None)
        .await
        .secret;
    let g2 = Some(other.as_str());
    let a1 = w.agent_id;
    let a2 = w.register_agent(&other, "agent-2").await;
    let (r1, _) = w.claimed_run("main").await; // claimed by a1 with g1

    // Another agent key: the run does not exist for it, and it cannot act as a1.
    let id = r1.id;
    let writes = |message: &str| {
        vec![
            post(
                format!("/api/v1/flow_runs/{id}/state"),
                json!({"state": "Running", "attempt": 1}),
            ),
            post(
                format!("/api/v1/flow_runs/{id}/heartbeat"),
                json!({"attempt": 1}),
            ),
            post("/api/v1/logs/batch".into(), log_batch(id, message)),
            post(
                "/api/v1/task_runs/batch".into(),
                task_batch(id, Uuid::now_v7()),
            ),
        ]
    };
    let mut hidden = writes("from agent 2");
    hidden.push(get(format!("/api/v1/flow_runs/{id}")));
    w.expect_status(g2, hidden, 404, "agent 2").await;
    let as_a1 = vec![
        post(
            format!("/api/v1/agents/{a1}/heartbeat"),
            json!({"runs": []}),
        ),
        post(format!("/api/v1/agents/{a1}/claim"), json!({"limit": 1})),
    ];
    w.expect_status(g2, as_a1, 404, "agent 2 as agent 1").await;
    // Heartbeating someone else's run through its own agent does not take it over.
    assert_eq!(
        w.heartbeat_runs(g2, a2, id).await,
        json!([id]),
        "told the run is not its own"
    );
    assert_eq!(w.run(id).await.agent_id, Some(a1), "still agent 1's run");
    let state = writes("from agent 2").swap_remove(0);
    w.expect_status(g2, vec![state], 404, "still not agent 2's")
        .await;
    assert_eq!(
        w.run(id).await.state,
        StateKind::Pending,
        "nothing agent 2 sent changed the run"
    );

    // The owner can do all of it.
    let mut owned = writes("from agent 1");
    owned.push(get(format!("/api/v1/flow_runs/{id}")));
    w.expect_status(g1, owned, 200, "agent 1").await;
    assert_eq!(w.heartbeat_runs(g1, a1, id).await, json!([]));
    let run = w.run(id).await;
    assert_eq!(run.state, StateKind::Running);
    let logs = w.s.client.logs(id, 0, 100).await.expect("logs");
    assert!(
        logs.items
            .iter()
            .map(|l| l.message.as_str())
            .collect::<Vec<_>>()
            == ["from agent 1"],
        "{logs:?}"
    );
    w.s.stop().await;
}

/// Run tokens reach their own run: its state, heartbeat, logs and task runs, reading it, and
/// subflows of it, created in the run's project and reportable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_tokens_reach_their_own_run_and_its_subflows() {
    let db = sqlite("run_tokens_own").await;
    let w = World::start(&db).await;
    let (run, token) = w.claimed_run("main").await;
    let t = Some(token.as_str());
    let id = run.id;
    let own = vec![
        post(
            format!("/api/v1/flow_runs/{id}/state"),
            json!({"state": "Running", "attempt": 1}),
        ),
        post(
            format!("/api/v1/flow_runs/{id}/heartbeat"),
            json!({"attempt": 1}),
        ),
        post("/api/v1/logs/batch".into(), log_batch(id, "hello")),
        post(
            "/api/v1/task_runs/batch".into(),
            task_batch(id, Uuid::now_v7()),
        ),
        get(format!("/api/v1/flow_runs/{id}")),
    ];
    w.expect_status(t, own, 200, "own run").await;

    // A subflow of its own run: created in the run's project, and reportable.
    let child =
        json!({"flow": "child", "state": "Running", "parent_flow_run_id": id, "project": "dev"});
    let sub = w
        .call(Method::POST, "/api/v1/flow_runs", t, Some(&child))
        .await;
    assert_eq!(sub.status, 201, "{sub:?}");
    let sub: FlowRun = serde_json::from_str(&sub.body).expect("run");
    assert_eq!(sub.parent_flow_run_id, Some(id));
    assert_eq!(
        sub.project, "main",
        "a subflow stays in its parent's project"
    );
    let done = json!({"state": "Completed", "attempt": sub.attempt});
    let path = format!("/api/v1/flow_runs/{}/state", sub.id);
    let a = w.call(Method::POST, &path, t, Some(&done)).await;
    assert_eq!(a.status, 200, "reports on its subflow: {a:?}");
    w.s.stop().await;
}

/// Run tokens reach nothing else: another run does not exist for them, and they are not API
/// keys (no deployment runs, keys, cancels or lists).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_tokens_see_no_other_run_and_are_not_keys() {
    let db = sqlite("run_tokens_other").await;
    let w = World::start(&db).await;
    let (run, token) = w.claimed_run("main").await;
    let (other, _) = w.claimed_run("main").await;
    let t = Some(token.as_str());
    let (id, o) = (run.id, other.id);

    let others = vec![
        get(format!("/api/v1/flow_runs/{o}")),
        get(format!("/api/v1/flow_runs/{o}/logs")),
        post(
            format!("/api/v1/flow_runs/{o}/state"),
            json!({"state": "Running", "attempt": 1}),
        ),
        post("/api/v1/logs/batch".into(), log_batch(o, "x")),
        post(
            "/api/v1/task_runs/batch".into(),
            task_batch(o, Uuid::now_v7()),
        ),
        post(
            "/api/v1/flow_runs".into(),
            json!({"flow": "child", "state": "Running", "parent_flow_run_id": o}),
        ),
    ];
    w.expect_status(t, others, 404, "other run").await;
    assert_eq!(w.run(o).await.state, StateKind::Pending);

    let runs = "/api/v1/flow_runs".to_string();
    let not_a_key = vec![
        post(
            runs.clone(),
            json!({"project": "main", "deployment": "etl"}),
        ),
        post(
            runs.clone(),
            json!({"project": "main", "deployment": "etl", "parent_flow_run_id": id}),
        ),
        post(
            "/api/v1/keys".into(),
            json!({"name": "escalate", "role": "admin"}),
        ),
        get(runs),
        get("/api/v1/keys".into()),
        (Method::POST, format!("/api/v1/flow_runs/{id}/cancel"), None),
    ];
    w.expect_status(t, not_a_key, 403, "not a key").await;
    w.s.stop().await;
}

/// A run token works for its attempt only: once the run is claimed again the old attempt's
/// token is dead (401, the uniform body), and when an attempt ends its token stops working
/// at once, even to read its own run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_tokens_die_with_their_attempt() {
    let db = sqlite("run_tokens_attempt").await;
    let w = World::start(&db).await;
    let (run, token) = w.claimed_run("main").await;
    let t = Some(token.as_str());
    let id = run.id;
    let running = json!({"state": "Running", "attempt": 1});
    let state = format!("/api/v1/flow_runs/{id}/state");
    let a = w.call(Method::POST, &state, t, Some(&running)).await;
    assert_eq!(a.status, 200, "{a:?}");

    w.admin_propose(id, "Failed", 1).await;
    w.s.client.retry(id, false).await.expect("retry");
    let reclaimed =
        w.s.client_with(&w.agent)
            .claim(w.agent_id, 100, Duration::ZERO)
            .await
            .expect("claim again")
            .into_iter()
            .find(|c| c.run.id == id)
            .expect("claimed again");
    assert_eq!(reclaimed.run.attempt, 2);
    let uniform = w.call(Method::GET, "/api/v1/flow_runs", None, None).await;
    for (m, path, body) in [
        get(format!("/api/v1/flow_runs/{id}")),
        post(state.clone(), running.clone()),
        post("/api/v1/logs/batch".into(), log_batch(id, "late")),
    ] {
        let a = w.call(m.clone(), &path, t, body.as_ref()).await;
        if path.ends_with("/batch") {
            // Batches answer for all their runs at once: hidden, like any run it may not touch.
            assert!(
                a.status == 401 || a.status == 404,
                "old token: {m} {path}: {a:?}"
            );
        } else {
            assert_eq!(a.status, 401, "old token: {m} {path}: {a:?}");
            assert_eq!(a.body, uniform.body, "the one 401 body");
        }
    }
    let new_token = reclaimed.run_token.expect("token");
    let nt = Some(new_token.as_str());
    let read = vec![get(format!("/api/v1/flow_runs/{id}"))];
    w.expect_status(nt, read, 200, "the new attempt's token works")
        .await;

    let ending =
        ["Running", "Completed"].map(|s| post(state.clone(), json!({"state": s, "attempt": 2})));
    w.expect_status(nt, ending.into(), 200, "the new attempt reports")
        .await;
    let ended = vec![
        get(format!("/api/v1/flow_runs/{id}")),
        post(
            format!("/api/v1/flow_runs/{id}/heartbeat"),
            json!({"attempt": 2}),
        ),
    ];
    w.expect_status(nt, ended, 401, "ended attempt").await;
    w.s.stop().await;
}

/// A request as [`World::expect_status`] takes it: method, path, JSON body.
type Request = (Method, String, Option<Value>);

/// `GET path`.
fn get(path: String) -> Request {
    (Method::GET, path, None)
}

/// `POST path` with the JSON `body`.
fn post(path: String, body: Value) -> Request {
    (Method::POST, path, Some(body))
}

/// Only admins create keys, and a project-scoped admin only for its project.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_key_creates_a_key_with_more_power() {
    let db = sqlite("no_escalation").await;
    let w = World::start(&db).await;
    let (_, token) = w.claimed_run("main").await;
    let scoped_admin = create_key(&w.s.client, "dev-admin", Role::Admin, Some("dev")).await;
    let sa = Some(scoped_admin.secret.as_str());
    let before = w.s.client.keys().await.expect("keys").len();

    for (who, key) in [
        ("developer", &w.developer.secret),
        ("dev developer", &w.scoped),
        ("viewer", &w.viewer),
        ("agent", &w.agent),
        ("run token", &token),
    ] {
        for body in [
            json!({"name": "v", "role": "viewer"}),
            json!({"name": "v", "role": "viewer", "project": "dev"}),
        ] {
            let a = w
                .call(Method::POST, "/api/v1/keys", Some(key), Some(&body))
                .await;
            assert_eq!(a.status, 403, "{who} creates {body}: {a:?}");
        }
    }
    for body in [
        json!({"name": "x", "role": "viewer"}),
        json!({"name": "x", "role": "admin"}),
        json!({"name": "x", "role": "viewer", "project": "main"}),
        json!({"name": "x", "role": "admin", "project": "main"}),
    ] {
        let a = w.call(Method::POST, "/api/v1/keys", sa, Some(&body)).await;
        assert_eq!(a.status, 403, "dev admin creates {body}: {a:?}");
    }
    assert_eq!(
        w.s.client.keys().await.expect("keys").len(),
        before,
        "no key was created"
    );

    w.s.stop().await;
}

/// An admin key scoped to `dev` creates keys within `dev`, sees and revokes only dev's keys,
/// and does not read the audit log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn project_admins_manage_only_their_projects_keys() {
    let db = sqlite("project_admin").await;
    let w = World::start(&db).await;
    let scoped_admin = create_key(&w.s.client, "dev-admin", Role::Admin, Some("dev")).await;
    let sa = Some(scoped_admin.secret.as_str());
    let a = w
        .call(
            Method::POST,
            "/api/v1/keys",
            sa,
            Some(&json!({"name": "dev-viewer", "role": "viewer", "project": "dev"})),
        )
        .await;
    assert_eq!(a.status, 201, "{a:?}");
    let created: CreatedApiKey = serde_json::from_str(&a.body).expect("key");
    assert_eq!(created.key.project.as_deref(), Some("dev"));
    // It sees and revokes only its project's keys, and does not read the audit log.
    let listed = w.call(Method::GET, "/api/v1/keys", sa, None).await;
    let listed: Vec<weir_core::api::ApiKey> = serde_json::from_str(&listed.body).expect("keys");
    assert!(
        !listed.is_empty() && listed.iter().all(|k| k.project.as_deref() == Some("dev")),
        "{listed:?}"
    );
    let a = w
        .call(
            Method::POST,
            &format!("/api/v1/keys/{}/revoke", w.developer.key.id),
            sa,
            None,
        )
        .await;
    assert_eq!(a.status, 404, "{a:?}");
    let a = w
        .call(
            Method::GET,
            "/api/v1/flow_runs",
            Some(&w.developer.secret),
            None,
        )
        .await;
    assert_eq!(a.status, 200, "the developer key still works: {a:?}");
    let a = w.call(Method::GET, "/api/v1/audit", sa, None).await;
    assert_eq!(a.status, 403, "{a:?}");
    let a = w
        .call(
            Method::POST,
            &format!("/api/v1/keys/{}/revoke", created.key.id),
            sa,
            None,
        )
        .await;
    assert_eq!(a.status, 200, "{a:?}");
    w.s.stop().await;
}

/// Lower-case hex of SHA-256 of `s`.
fn sha256_hex(s: &str) -> String {
    sha2::Sha256::digest(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The bytes of the SQLite database at `url` and its `-wal` and `-shm` files.
fn sqlite_bytes(url: &str) -> Vec<(String, Vec<u8>)> {
    let path = url.strip_prefix("sqlite://").expect("an sqlite URL");
    ["", "-wal", "-shm"]
        .iter()
        .filter_map(|suffix| {
            let p = format!("{path}{suffix}");
            std::fs::read(&p).ok().map(|b| (p, b))
        })
        .collect()
}

/// Whether `needle` occurs in `hay`.
fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// The database holds digests of key secrets, never the secrets; the API lists keys
/// without secrets or digests.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_key_digests_are_stored() {
    let db = sqlite("digests").await;
    let w = World::start(&db).await;
    let extra = create_key(&w.s.client, "extra", Role::Admin, Some("dev")).await;
    let keys = [
        w.admin.clone(),
        w.developer.secret.clone(),
        w.agent.clone(),
        w.viewer.clone(),
        w.scoped.clone(),
        extra.secret.clone(),
    ];
    let secrets: Vec<(String, String)> = keys
        .iter()
        .map(|k| {
            let (_, secret) = weir_core::auth::parse_key(k).expect("well-formed key");
            (k.clone(), secret.to_string())
        })
        .collect();

    let listed = w
        .call(Method::GET, "/api/v1/keys", Some(&w.admin), None)
        .await;
    assert_eq!(listed.status, 200);
    for (full, secret) in &secrets {
        assert!(
            !listed.body.contains(secret.as_str()),
            "GET /keys shows a secret"
        );
        assert!(
            !listed.body.contains(&sha256_hex(secret)),
            "GET /keys shows a digest"
        );
        assert!(!listed.body.contains(full.as_str()));
    }
    let v: Value = serde_json::from_str(&listed.body).expect("json");
    let allowed = [
        "id",
        "name",
        "role",
        "project",
        "created_at",
        "expires_at",
        "revoked_at",
        "created_by",
    ];
    for k in v.as_array().expect("list") {
        for field in k.as_object().expect("object").keys() {
            assert!(
                allowed.contains(&field.as_str()),
                "unexpected field {field} in {k}"
            );
        }
    }

    let check = |when: &str| {
        let files = sqlite_bytes(&db.url);
        assert!(!files.is_empty(), "found the database files");
        for (full, secret) in &secrets {
            for (path, bytes) in &files {
                assert!(
                    !contains(bytes, secret.as_bytes()),
                    "{when}: a key secret is in {path}"
                );
                assert!(
                    !contains(bytes, full.as_bytes()),
                    "{when}: a key is in {path}"
                );
            }
        }
        // The check reads the right files: the digests are there.
        for (_, secret) in &secrets {
            let digest = sha256_hex(secret);
            assert!(
                files.iter().any(|(_, b)| contains(b, digest.as_bytes())),
                "{when}: the digest of a key is in the database files"
            );
        }
    };
    check("while serving");
    w.s.stop().await;
    check("after stopping");
}

/// Deploying, running, cancelling, retrying, pausing, creating and revoking keys are
/// audited with their actor; only unscoped admins read the log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_log_names_the_actor_and_is_admin_only() {
    let db = sqlite("audit").await;
    let w = World::start(&db).await;
    let dev = w.s.client_with(&w.developer.secret);
    dev.upsert_deployment("dev", "audited", &spec("etl"), false)
        .await
        .expect("deploy");
    let run = dev
        .create_flow_run(&CreateFlowRun {
            project: Some("dev".into()),
            deployment: Some("audited".into()),
            ..Default::default()
        })
        .await
        .expect("run");
    let cancelled = dev.cancel(run.id).await.expect("cancel");
    assert!(cancelled.state.is_terminal(), "{cancelled:?}");
    dev.retry(run.id, false).await.expect("retry");
    dev.set_paused("dev", "audited", true).await.expect("pause");
    let k = create_key(&w.s.client, "audited-key", Role::Viewer, None).await;
    w.s.client.revoke_key(&k.key.id).await.expect("revoke");

    let log = w.s.client.audit(None, 1000).await.expect("audit").items;
    let ci = format!("ci ({})", w.developer.key.id);
    let admin_id = weir_core::auth::parse_key(&w.admin)
        .expect("key")
        .0
        .to_string();
    let admin = format!("local-admin ({admin_id})");
    let rid = run.id.to_string();
    for (action, target, actor) in [
        ("deploy", "dev/audited", &ci),
        ("run", rid.as_str(), &ci),
        ("cancel", rid.as_str(), &ci),
        ("retry", rid.as_str(), &ci),
        ("schedule.pause", "dev/audited", &ci),
        ("key.create", k.key.id.as_str(), &admin),
        ("key.revoke", k.key.id.as_str(), &admin),
    ] {
        assert!(
            log.iter()
                .any(|e| e.action == action && e.target == target && &e.actor == actor),
            "no {action} of {target} by {actor} in {log:#?}"
        );
    }
    assert!(
        log.iter()
            .any(|e| e.action == "key.create" && e.actor == "bootstrap"),
        "the bootstrap key is audited"
    );
    let scoped_admin = create_key(&w.s.client, "dev-admin", Role::Admin, Some("dev"))
        .await
        .secret;
    for (who, key) in [
        ("viewer", &w.viewer),
        ("developer", &w.developer.secret),
        ("agent", &w.agent),
        ("dev-scoped admin", &scoped_admin),
    ] {
        let a = w.call(Method::GET, "/api/v1/audit", Some(key), None).await;
        assert_eq!(a.status, 403, "{who}: {a:?}");
    }
    w.s.stop().await;
}
