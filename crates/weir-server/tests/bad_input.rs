//! Bad input over real HTTP: every refusal is a 4xx with the one JSON error shape
//! (`{"error", "message", "field"?}`) naming what is wrong, never a 500, and writes nothing.

mod common;

use common::*;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::time::Duration;
use uuid::Uuid;
use weir_core::StateKind;
use weir_core::api::ProposeState;
use weir_server::Options;
use weir_testkit::TestDb;

both! {
    malformed_bodies => sqlite_malformed_bodies, postgres_malformed_bodies;
    invalid_deployment_specs => sqlite_invalid_deployment_specs, postgres_invalid_deployment_specs;
    invalid_run_project_and_agent_bodies => sqlite_invalid_run_project_and_agent_bodies,
        postgres_invalid_run_project_and_agent_bodies;
    oversized_bodies => sqlite_oversized_bodies, postgres_oversized_bodies;
    bad_paths_and_queries => sqlite_bad_paths_and_queries, postgres_bad_paths_and_queries;
    refused_by_the_rules => sqlite_refused_by_the_rules, postgres_refused_by_the_rules;
}

/// The error of one bad request.
#[derive(Debug)]
struct Refusal {
    status: StatusCode,
    error: String,
    message: String,
    field: Option<String>,
    body: Value,
}

/// Sends a raw request and checks the answer is an error in the one shape.
async fn send(s: &TestServer, method: Method, path: &str, body: Option<&str>) -> Refusal {
    let mut rb = s.http.request(method.clone(), s.url(path));
    if let Some(b) = body {
        rb = rb
            .header("content-type", "application/json")
            .body(b.to_string());
    }
    let resp = rb.send().await.expect("send");
    let status = resp.status();
    let text = resp.text().await.expect("body");
    assert!(
        status.is_client_error(),
        "{method} {path}: expected a 4xx, got {status}: {text}"
    );
    let body: Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{method} {path}: error body is not JSON ({e}): {text:?}"));
    let obj = body.as_object().expect("error body is an object");
    for key in obj.keys() {
        assert!(
            ["error", "message", "field", "current"].contains(&key.as_str()),
            "unexpected key {key} in {body}"
        );
    }
    let error = obj
        .get("error")
        .and_then(Value::as_str)
        .expect("`error` is a string")
        .to_string();
    let message = obj
        .get("message")
        .and_then(Value::as_str)
        .expect("`message` is a string")
        .to_string();
    assert!(!message.is_empty());
    let field = obj
        .get("field")
        .map(|f| f.as_str().expect("`field` is a string").to_string());
    Refusal {
        status,
        error,
        message,
        field,
        body,
    }
}

fn assert_refusal(r: &Refusal, status: u16, error: &str, field: Option<&str>, mentions: &[&str]) {
    assert_eq!(r.status.as_u16(), status, "{r:?}");
    assert_eq!(r.error, error, "{r:?}");
    assert_eq!(r.field.as_deref(), field, "{r:?}");
    for m in mentions {
        assert!(r.message.contains(m), "message should mention {m:?}: {r:?}");
    }
}

/// What the database holds, as seen through the API.
async fn snapshot(s: &TestServer) -> Snapshot {
    let runs = s
        .client
        .list_flow_runs(&weir_client::RunQuery {
            limit: Some(1000),
            ..Default::default()
        })
        .await
        .expect("runs");
    let deployments = s.client.deployments(None).await.expect("deployments");
    let projects = s.client.projects().await.expect("projects");
    let agents = s.client.agents().await.expect("agents");
    (
        runs.items.len(),
        deployments
            .into_iter()
            .map(|d| (d.name, d.version))
            .collect(),
        projects.into_iter().map(|p| p.name).collect(),
        agents.len(),
    )
}

/// The deployment the bad requests aim at (created by [`server_with_etl`]).
const DEP: &str = "/api/v1/projects/dev/deployments/etl";

/// What the database holds, as [`snapshot`] reads it: runs, deployments with their versions,
/// projects, agents.
type Snapshot = (usize, Vec<(String, u32)>, Vec<String>, usize);

/// A server on `db` taking bodies of at most 1 KiB, with deployment dev/etl, and what it
/// holds before any bad request.
async fn server_with_etl(db: &TestDb) -> (TestServer, Snapshot) {
    let mut opts = options(db);
    opts.max_body_bytes = 1024;
    let s = TestServer::start(opts).await;
    deploy(&s.client, "etl", spec("etl")).await;
    let before = snapshot(&s).await;
    (s, before)
}

/// Sends `body` to `path` and checks the refusal is a 400 `invalid_request` naming `field`
/// and mentioning every word of `mentions`.
async fn invalid(
    s: &TestServer,
    method: Method,
    path: &str,
    body: &str,
    field: &str,
    mentions: &[&str],
) {
    let r = send(s, method, path, Some(body)).await;
    assert_refusal(&r, 400, "invalid_request", Some(field), mentions);
}

async fn malformed_bodies(db: &TestDb) {
    let (s, before) = server_with_etl(db).await;
    for (method, path, body) in [
        (Method::POST, "/api/v1/flow_runs", r#"{"project": "dev", "#),
        (Method::PUT, DEP, "not json"),
    ] {
        let r = send(&s, method, path, Some(body)).await;
        assert_refusal(&r, 400, "invalid_request", None, &["invalid request body"]);
    }
    // Not JSON at all.
    let resp = s
        .http
        .post(s.url("/api/v1/flow_runs"))
        .header("content-type", "text/plain")
        .body("project=dev")
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status().as_u16(), 400);
    let body: Value = resp.json().await.expect("json error");
    assert!(
        body["message"]
            .as_str()
            .unwrap_or_default()
            .contains("application/json"),
        "{body}"
    );
    assert_eq!(snapshot(&s).await, before, "bad requests wrote nothing");
    s.stop().await;
}

async fn invalid_deployment_specs(db: &TestDb) {
    let (s, before) = server_with_etl(db).await;
    let specs: [(Value, &str, &[&str]); 10] = [
        // Unknown field: a typo is an error, not a silent no-op.
        (
            json!({"flow": "etl", "shedule": []}),
            "spec.shedule",
            &["shedule"],
        ),
        // Wrong types.
        (json!({"flow": 5}), "spec.flow", &["spec.flow"]),
        (
            json!({"flow": "etl", "retries": -1}),
            "spec.retries",
            &["-1"],
        ),
        // Missing required field.
        (json!({}), "spec.flow", &["flow"]),
        // Invalid schedules name the schedule and the field, and quote the input.
        (
            json!({"flow": "etl", "schedules": [{"cron": "61 * * * *"}]}),
            "spec.schedules[0].cron",
            &["61 * * * *"],
        ),
        (
            json!({"flow": "etl", "schedules": [
                {"interval": "1h"},
                {"cron": "0 * * * *", "timezone": "Mars/Olympus"}
            ]}),
            "spec.schedules[1].timezone",
            &["Mars/Olympus"],
        ),
        (
            json!({"flow": "etl", "schedules": [{"interval": "0s"}]}),
            "spec.schedules[0].interval",
            &["0s"],
        ),
        (
            json!({"flow": "etl", "schedules": [{}]}),
            "spec.schedules[0]",
            &["cron", "interval"],
        ),
        // Other validation.
        (
            json!({"flow": "etl", "secrets": {"TOKEN": "hunter2"}}),
            "spec.secrets.TOKEN",
            &["TOKEN"],
        ),
        // Found by the API fuzzer: a retry delay beyond what a time can hold crashed the
        // handler that cancelled or retried the deployment's runs.
        (
            json!({"flow": "etl", "retry_delay_s": u64::MAX}),
            "spec.retry_delay_s",
            &["longer than a year"],
        ),
    ];
    for (spec, field, mentions) in specs {
        let body = json!({ "spec": spec }).to_string();
        invalid(&s, Method::PUT, DEP, &body, field, mentions).await;
    }
    let body = json!({"spec": {"flow": "etl"}}).to_string();
    let upper = "/api/v1/projects/Dev/deployments/etl";
    invalid(&s, Method::PUT, upper, &body, "project", &["\"Dev\""]).await;
    assert_eq!(snapshot(&s).await, before, "bad requests wrote nothing");
    s.stop().await;
}

async fn invalid_run_project_and_agent_bodies(db: &TestDb) {
    let (s, before) = server_with_etl(db).await;
    let runs = "/api/v1/flow_runs";
    let cases: [(&str, Value, &str, &[&str]); 5] = [
        (
            runs,
            json!({"project": "dev", "deployment": "etl", "paramters": {}}),
            "paramters",
            &["paramters"],
        ),
        (
            runs,
            json!({"project": "dev", "deployment": "etl", "state": "Runing"}),
            "state",
            &["Runing"],
        ),
        (
            "/api/v1/flow_runs/00000000-0000-0000-0000-000000000000/state",
            json!({}),
            "state",
            &["state"],
        ),
        (
            "/api/v1/projects",
            json!({"name": "no spaces"}),
            "name",
            &["no spaces"],
        ),
        (
            "/api/v1/agents",
            json!({"name": "a", "queues": [], "limit": 1}),
            "queues",
            &["queue"],
        ),
    ];
    for (path, body, field, mentions) in cases {
        invalid(&s, Method::POST, path, &body.to_string(), field, mentions).await;
    }
    assert_eq!(snapshot(&s).await, before, "bad requests wrote nothing");
    s.stop().await;
}

async fn oversized_bodies(db: &TestDb) {
    let (s, before) = server_with_etl(db).await;
    let run = run_of(&s.client, "etl").await;
    let retry = format!("/api/v1/flow_runs/{}/retry", run.id);
    // 413, still in the one shape, naming the limit.
    let big = json!({"spec": {"flow": "etl", "description": "x".repeat(2000)}}).to_string();
    for (method, path) in [
        (Method::PUT, DEP),
        (Method::POST, "/api/v1/logs/batch"),
        (Method::POST, retry.as_str()),
    ] {
        let r = send(&s, method, path, Some(&big)).await;
        assert_refusal(&r, 413, "payload_too_large", None, &["1024"]);
    }
    let typo = r#"{"from_faild": true}"#;
    invalid(
        &s,
        Method::POST,
        &retry,
        typo,
        "from_faild",
        &["from_faild"],
    )
    .await;
    s.client.cancel(run.id).await.expect("cancel");

    let mut after = snapshot(&s).await;
    after.0 -= 1; // the run created (and cancelled) above on purpose
    assert_eq!(after, before, "bad requests wrote nothing");
    s.stop().await;
}

async fn bad_paths_and_queries(db: &TestDb) {
    let s = TestServer::start(options(db)).await;
    deploy(&s.client, "etl", spec("etl")).await;
    let before = snapshot(&s).await;
    unknown_ids_are_not_found(&s).await;
    // Wrong method on a known path.
    let r = send(&s, Method::DELETE, "/api/v1/flow_runs", None).await;
    assert_refusal(&r, 405, "method_not_allowed", None, &["DELETE"]);
    // Non-UUID ids: 400 naming the parameter.
    let r = send(&s, Method::GET, "/api/v1/flow_runs/not-a-uuid", None).await;
    assert_refusal(&r, 400, "invalid_request", Some("id"), &["not-a-uuid"]);
    let heartbeat = "/api/v1/agents/123/heartbeat";
    invalid(
        &s,
        Method::POST,
        heartbeat,
        r#"{"runs": []}"#,
        "id",
        &["123"],
    )
    .await;
    // Absurd or malformed query parameters.
    let task_runs = format!("/api/v1/flow_runs/{}/task_runs?limit=5000", Uuid::now_v7());
    let queries: [(&str, &str, &[&str]); 9] = [
        ("/api/v1/flow_runs?limit=100000", "limit", &["100000"]),
        ("/api/v1/flow_runs?limit=0", "limit", &[]),
        ("/api/v1/flow_runs?limit=lots", "limit", &["lots"]),
        (
            "/api/v1/flow_runs?state=Scheduled,Bogus",
            "state",
            &["Bogus"],
        ),
        ("/api/v1/flow_runs?cursor=zzz", "cursor", &[]),
        ("/api/v1/flow_runs?since=yesterday", "since", &[]),
        ("/api/v1/flow_runs?projet=dev", "projet", &["projet"]),
        (
            "/api/v1/flow_runs?deployment=etl",
            "deployment",
            &["project"],
        ),
        (&task_runs, "limit", &[]),
    ];
    for (path, field, mentions) in queries {
        let r = send(&s, Method::GET, path, None).await;
        assert_refusal(&r, 400, "invalid_request", Some(field), mentions);
    }
    assert_eq!(snapshot(&s).await, before, "bad requests wrote nothing");
    s.stop().await;
}

/// Requests naming ids nothing has: 404 `not_found`, naming what was missing.
async fn unknown_ids_are_not_found(s: &TestServer) {
    let unknown = Uuid::now_v7();
    let id = unknown.to_string();
    let line = json!({"lines": [{
        "flow_run_id": unknown, "at": "2026-01-01T00:00:00Z", "level": "info", "message": "x"
    }]});
    let state = json!({"state": "Running", "attempt": 1}).to_string();
    let missing: [(Method, String, Option<String>, &[&str]); 8] = [
        (
            Method::GET,
            format!("/api/v1/flow_runs/{unknown}"),
            None,
            &[&id],
        ),
        (
            Method::POST,
            format!("/api/v1/flow_runs/{unknown}/cancel"),
            None,
            &[&id],
        ),
        (
            Method::POST,
            format!("/api/v1/flow_runs/{unknown}/state"),
            Some(state),
            &[&id],
        ),
        (
            Method::GET,
            format!("/api/v1/flow_runs/{unknown}/logs"),
            None,
            &[],
        ),
        (
            Method::POST,
            format!("/api/v1/agents/{unknown}/claim"),
            Some(r#"{"limit": 1}"#.into()),
            &["agent"],
        ),
        (
            Method::GET,
            "/api/v1/projects/dev/deployments/nope".into(),
            None,
            &["nope"],
        ),
        (
            Method::POST,
            "/api/v1/logs/batch".into(),
            Some(line.to_string()),
            &[&id],
        ),
        (
            Method::GET,
            "/api/v1/no_such_thing".into(),
            None,
            &["/api/v1/no_such_thing"],
        ),
    ];
    for (method, path, body, mentions) in missing {
        let r = send(s, method, &path, body.as_deref()).await;
        assert_refusal(&r, 404, "not_found", None, mentions);
    }
}

/// A server on `db` with dev/etl's run claimed by an agent and Running on attempt 1, under a
/// lease long enough that the crash detector leaves it alone however slow the machine (the
/// test compares its history before and after the refusals).
async fn running_run(db: &TestDb) -> (TestServer, weir_core::api::FlowRun, Uuid) {
    let s = TestServer::start(Options {
        lease: Duration::from_secs(120),
        ..options(db)
    })
    .await;
    let c = &s.client;
    deploy(c, "etl", spec("etl")).await;
    let run = run_of(c, "etl").await;
    let agent = agent(c).await;
    let claimed = c.claim(agent, 1, Duration::ZERO).await.expect("claim");
    assert_eq!(claimed.len(), 1);
    let running = ProposeState {
        state: StateKind::Running,
        message: None,
        attempt: 1,
        transition_id: None,
        result: None,
    };
    c.propose_state(run.id, &running).await.expect("running");
    (s, run, agent)
}

async fn refused_by_the_rules(db: &TestDb) {
    let (s, run, agent) = running_run(db).await;
    let c = &s.client;
    let before = snapshot(&s).await;
    let history_len = c.flow_run(run.id).await.expect("get").history.len();

    // A stale attempt: 409 with the run as it is now.
    let path = format!("/api/v1/flow_runs/{}/state", run.id);
    let stale = json!({"state": "Completed", "attempt": 0}).to_string();
    let r = send(&s, Method::POST, &path, Some(&stale)).await;
    assert_refusal(&r, 409, "conflict", None, &["stale"]);
    let current: weir_core::api::FlowRun =
        serde_json::from_value(r.body["current"].clone()).expect("current run");
    assert_eq!(
        (current.id, current.state, current.attempt),
        (run.id, StateKind::Running, 1)
    );
    // An illegal transition: 409 too.
    let illegal = json!({"state": "Scheduled", "attempt": 1}).to_string();
    let r = send(&s, Method::POST, &path, Some(&illegal)).await;
    assert_refusal(&r, 409, "conflict", None, &["Running", "Scheduled"]);
    assert!(r.body.get("current").is_some());
    // Retrying a run that is not over.
    let retry = format!("/api/v1/flow_runs/{}/retry", run.id);
    let r = send(&s, Method::POST, &retry, None).await;
    assert_refusal(&r, 409, "conflict", None, &[]);
    refused_creations(&s).await;
    // Claims with a wait beyond the longest long-poll.
    let claim = format!("/api/v1/agents/{agent}/claim");
    let long = json!({"limit": 1, "wait_ms": 600000}).to_string();
    invalid(&s, Method::POST, &claim, &long, "wait_ms", &["30000"]).await;
    let negative = json!({"limit": -1}).to_string();
    invalid(&s, Method::POST, &claim, &negative, "limit", &[]).await;

    assert_eq!(snapshot(&s).await, before, "refused requests wrote nothing");
    assert_eq!(
        c.flow_run(run.id).await.expect("get").history.len(),
        history_len
    );
    s.stop().await;
}

/// Run creations the rules refuse: an ad-hoc run must be created Running by its own process
/// and name its flow and project; a deployment's run is created Scheduled, of a deployment
/// that exists.
async fn refused_creations(s: &TestServer) {
    let runs = "/api/v1/flow_runs";
    let cases: [(Value, &str, &[&str]); 4] = [
        (
            json!({"project": "dev", "flow": "script"}),
            "state",
            &["Running"],
        ),
        (
            json!({"project": "dev", "state": "Running"}),
            "flow",
            &["flow"],
        ),
        (
            json!({"flow": "script", "state": "Running"}),
            "project",
            &["project"],
        ),
        (
            json!({"project": "dev", "deployment": "etl", "state": "Running"}),
            "state",
            &["Scheduled"],
        ),
    ];
    for (body, field, mentions) in cases {
        invalid(s, Method::POST, runs, &body.to_string(), field, mentions).await;
    }
    let nope = json!({"project": "dev", "deployment": "nope"}).to_string();
    let r = send(s, Method::POST, runs, Some(&nope)).await;
    assert_refusal(&r, 404, "not_found", None, &["nope"]);
}
