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
    bad_bodies => sqlite_bad_bodies, postgres_bad_bodies;
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
async fn snapshot(s: &TestServer) -> (usize, Vec<(String, u32)>, Vec<String>, usize) {
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

#[expect(
    clippy::too_many_lines,
    reason = "a scenario read top to bottom; not yet split into named steps (issue #9)"
)]
async fn bad_bodies(db: &TestDb) {
    let mut opts = options(db);
    opts.max_body_bytes = 1024;
    let s = TestServer::start(opts).await;
    deploy(&s.client, "etl", spec("etl")).await;
    let before = snapshot(&s).await;
    let put = |body: Value| body.to_string();
    let dep = "/api/v1/projects/dev/deployments/etl";

    // Malformed JSON.
    let r = send(
        &s,
        Method::POST,
        "/api/v1/flow_runs",
        Some(r#"{"project": "dev", "#),
    )
    .await;
    assert_refusal(&r, 400, "invalid_request", None, &["invalid request body"]);
    let r = send(&s, Method::PUT, dep, Some("not json")).await;
    assert_refusal(&r, 400, "invalid_request", None, &["invalid request body"]);
    // Unknown field: a typo is an error, not a silent no-op.
    let r = send(
        &s,
        Method::PUT,
        dep,
        Some(&put(json!({"spec": {"flow": "etl", "shedule": []}}))),
    )
    .await;
    assert_refusal(
        &r,
        400,
        "invalid_request",
        Some("spec.shedule"),
        &["shedule"],
    );
    let r = send(
        &s,
        Method::POST,
        "/api/v1/flow_runs",
        Some(&put(
            json!({"project": "dev", "deployment": "etl", "paramters": {}}),
        )),
    )
    .await;
    assert_refusal(
        &r,
        400,
        "invalid_request",
        Some("paramters"),
        &["paramters"],
    );
    // Wrong types.
    let r = send(
        &s,
        Method::PUT,
        dep,
        Some(&put(json!({"spec": {"flow": 5}}))),
    )
    .await;
    assert_refusal(
        &r,
        400,
        "invalid_request",
        Some("spec.flow"),
        &["spec.flow"],
    );
    let r = send(
        &s,
        Method::PUT,
        dep,
        Some(&put(json!({"spec": {"flow": "etl", "retries": -1}}))),
    )
    .await;
    assert_refusal(&r, 400, "invalid_request", Some("spec.retries"), &["-1"]);
    let r = send(
        &s,
        Method::POST,
        "/api/v1/flow_runs",
        Some(&put(
            json!({"project": "dev", "deployment": "etl", "state": "Runing"}),
        )),
    )
    .await;
    assert_refusal(&r, 400, "invalid_request", Some("state"), &["Runing"]);
    // Missing required field.
    let r = send(&s, Method::PUT, dep, Some(&put(json!({"spec": {}})))).await;
    assert_refusal(&r, 400, "invalid_request", Some("spec.flow"), &["flow"]);
    let r = send(
        &s,
        Method::POST,
        "/api/v1/flow_runs/00000000-0000-0000-0000-000000000000/state",
        Some("{}"),
    )
    .await;
    assert_refusal(&r, 400, "invalid_request", Some("state"), &["state"]);
    // Invalid schedules name the schedule and the field, and quote the input.
    let r = send(
        &s,
        Method::PUT,
        dep,
        Some(&put(
            json!({"spec": {"flow": "etl", "schedules": [{"cron": "61 * * * *"}]}}),
        )),
    )
    .await;
    assert_refusal(
        &r,
        400,
        "invalid_request",
        Some("spec.schedules[0].cron"),
        &["61 * * * *"],
    );
    let r = send(&s, Method::PUT, dep, Some(&put(json!({"spec": {"flow": "etl", "schedules": [{"interval": "1h"}, {"cron": "0 * * * *", "timezone": "Mars/Olympus"}]}})))).await;
    assert_refusal(
        &r,
        400,
        "invalid_request",
        Some("spec.schedules[1].timezone"),
        &["Mars/Olympus"],
    );
    let r = send(
        &s,
        Method::PUT,
        dep,
        Some(&put(
            json!({"spec": {"flow": "etl", "schedules": [{"interval": "0s"}]}}),
        )),
    )
    .await;
    assert_refusal(
        &r,
        400,
        "invalid_request",
        Some("spec.schedules[0].interval"),
        &["0s"],
    );
    let r = send(
        &s,
        Method::PUT,
        dep,
        Some(&put(json!({"spec": {"flow": "etl", "schedules": [{}]}}))),
    )
    .await;
    assert_refusal(
        &r,
        400,
        "invalid_request",
        Some("spec.schedules[0]"),
        &["cron", "interval"],
    );
    // Other validation.
    let r = send(
        &s,
        Method::PUT,
        dep,
        Some(&put(
            json!({"spec": {"flow": "etl", "secrets": {"TOKEN": "hunter2"}}}),
        )),
    )
    .await;
    assert_refusal(
        &r,
        400,
        "invalid_request",
        Some("spec.secrets.TOKEN"),
        &["TOKEN"],
    );
    // Found by the API fuzzer: a retry delay beyond what a time can hold crashed the handler
    // that cancelled or retried the deployment's runs.
    let r = send(
        &s,
        Method::PUT,
        dep,
        Some(&put(
            json!({"spec": {"flow": "etl", "retry_delay_s": u64::MAX}}),
        )),
    )
    .await;
    assert_refusal(
        &r,
        400,
        "invalid_request",
        Some("spec.retry_delay_s"),
        &["longer than a year"],
    );
    let r = send(
        &s,
        Method::PUT,
        "/api/v1/projects/Dev/deployments/etl",
        Some(&put(json!({"spec": {"flow": "etl"}}))),
    )
    .await;
    assert_refusal(&r, 400, "invalid_request", Some("project"), &["\"Dev\""]);
    let r = send(
        &s,
        Method::POST,
        "/api/v1/projects",
        Some(&put(json!({"name": "no spaces"}))),
    )
    .await;
    assert_refusal(&r, 400, "invalid_request", Some("name"), &["no spaces"]);
    let r = send(
        &s,
        Method::POST,
        "/api/v1/agents",
        Some(&put(json!({"name": "a", "queues": [], "limit": 1}))),
    )
    .await;
    assert_refusal(&r, 400, "invalid_request", Some("queues"), &["queue"]);
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
    // Oversized body: 413, still in the one shape, naming the limit.
    let big = put(json!({"spec": {"flow": "etl", "description": "x".repeat(2000)}}));
    let r = send(&s, Method::PUT, dep, Some(&big)).await;
    assert_refusal(&r, 413, "payload_too_large", None, &["1024"]);
    let r = send(&s, Method::POST, "/api/v1/logs/batch", Some(&big)).await;
    assert_refusal(&r, 413, "payload_too_large", None, &["1024"]);
    let run = run_of(&s.client, "etl").await;
    let r = send(
        &s,
        Method::POST,
        &format!("/api/v1/flow_runs/{}/retry", run.id),
        Some(&big),
    )
    .await;
    assert_refusal(&r, 413, "payload_too_large", None, &["1024"]);
    let r = send(
        &s,
        Method::POST,
        &format!("/api/v1/flow_runs/{}/retry", run.id),
        Some("{\"from_faild\": true}"),
    )
    .await;
    assert_refusal(
        &r,
        400,
        "invalid_request",
        Some("from_faild"),
        &["from_faild"],
    );
    s.client.cancel(run.id).await.expect("cancel");

    let mut after = snapshot(&s).await;
    after.0 -= 1; // the run created (and cancelled) above on purpose
    assert_eq!(after, before, "bad requests wrote nothing");
    s.stop().await;
}

#[expect(
    clippy::too_many_lines,
    reason = "a scenario read top to bottom; not yet split into named steps (issue #9)"
)]
async fn bad_paths_and_queries(db: &TestDb) {
    let s = TestServer::start(options(db)).await;
    deploy(&s.client, "etl", spec("etl")).await;
    let before = snapshot(&s).await;
    let unknown = Uuid::now_v7();
    // Unknown ids: 404.
    let r = send(
        &s,
        Method::GET,
        &format!("/api/v1/flow_runs/{unknown}"),
        None,
    )
    .await;
    assert_refusal(&r, 404, "not_found", None, &[&unknown.to_string()]);
    let r = send(
        &s,
        Method::POST,
        &format!("/api/v1/flow_runs/{unknown}/cancel"),
        None,
    )
    .await;
    assert_refusal(&r, 404, "not_found", None, &[&unknown.to_string()]);
    let r = send(
        &s,
        Method::POST,
        &format!("/api/v1/flow_runs/{unknown}/state"),
        Some(&json!({"state": "Running", "attempt": 1}).to_string()),
    )
    .await;
    assert_refusal(&r, 404, "not_found", None, &[&unknown.to_string()]);
    let r = send(
        &s,
        Method::GET,
        &format!("/api/v1/flow_runs/{unknown}/logs"),
        None,
    )
    .await;
    assert_refusal(&r, 404, "not_found", None, &[]);
    let r = send(
        &s,
        Method::POST,
        &format!("/api/v1/agents/{unknown}/claim"),
        Some(r#"{"limit": 1}"#),
    )
    .await;
    assert_refusal(&r, 404, "not_found", None, &["agent"]);
    let r = send(
        &s,
        Method::GET,
        "/api/v1/projects/dev/deployments/nope",
        None,
    )
    .await;
    assert_refusal(&r, 404, "not_found", None, &["nope"]);
    let r = send(&s, Method::POST, "/api/v1/logs/batch", Some(&json!({"lines": [{"flow_run_id": unknown, "at": "2026-01-01T00:00:00Z", "level": "info", "message": "x"}]}).to_string())).await;
    assert_refusal(&r, 404, "not_found", None, &[&unknown.to_string()]);
    let r = send(&s, Method::GET, "/api/v1/no_such_thing", None).await;
    assert_refusal(&r, 404, "not_found", None, &["/api/v1/no_such_thing"]);
    // Wrong method on a known path.
    let r = send(&s, Method::DELETE, "/api/v1/flow_runs", None).await;
    assert_refusal(&r, 405, "method_not_allowed", None, &["DELETE"]);
    // Non-UUID ids: 400 naming the parameter.
    let r = send(&s, Method::GET, "/api/v1/flow_runs/not-a-uuid", None).await;
    assert_refusal(&r, 400, "invalid_request", Some("id"), &["not-a-uuid"]);
    let r = send(
        &s,
        Method::POST,
        "/api/v1/agents/123/heartbeat",
        Some(r#"{"runs": []}"#),
    )
    .await;
    assert_refusal(&r, 400, "invalid_request", Some("id"), &["123"]);
    // Absurd or malformed query parameters.
    let r = send(&s, Method::GET, "/api/v1/flow_runs?limit=100000", None).await;
    assert_refusal(&r, 400, "invalid_request", Some("limit"), &["100000"]);
    let r = send(&s, Method::GET, "/api/v1/flow_runs?limit=0", None).await;
    assert_refusal(&r, 400, "invalid_request", Some("limit"), &[]);
    let r = send(&s, Method::GET, "/api/v1/flow_runs?limit=lots", None).await;
    assert_refusal(&r, 400, "invalid_request", Some("limit"), &["lots"]);
    let r = send(
        &s,
        Method::GET,
        "/api/v1/flow_runs?state=Scheduled,Bogus",
        None,
    )
    .await;
    assert_refusal(&r, 400, "invalid_request", Some("state"), &["Bogus"]);
    let r = send(&s, Method::GET, "/api/v1/flow_runs?cursor=zzz", None).await;
    assert_refusal(&r, 400, "invalid_request", Some("cursor"), &[]);
    let r = send(&s, Method::GET, "/api/v1/flow_runs?since=yesterday", None).await;
    assert_refusal(&r, 400, "invalid_request", Some("since"), &[]);
    let r = send(&s, Method::GET, "/api/v1/flow_runs?projet=dev", None).await;
    assert_refusal(&r, 400, "invalid_request", Some("projet"), &["projet"]);
    let r = send(&s, Method::GET, "/api/v1/flow_runs?deployment=etl", None).await;
    assert_refusal(&r, 400, "invalid_request", Some("deployment"), &["project"]);
    let r = send(
        &s,
        Method::GET,
        &format!("/api/v1/flow_runs/{unknown}/task_runs?limit=5000"),
        None,
    )
    .await;
    assert_refusal(&r, 400, "invalid_request", Some("limit"), &[]);
    assert_eq!(snapshot(&s).await, before, "bad requests wrote nothing");
    s.stop().await;
}

#[expect(
    clippy::too_many_lines,
    reason = "a scenario read top to bottom; not yet split into named steps (issue #9)"
)]
async fn refused_by_the_rules(db: &TestDb) {
    // A lease long enough that the crash detector leaves the Running run alone however slow
    // the machine: the test compares its history before and after the refusals.
    let s = TestServer::start(Options {
        lease: Duration::from_secs(120),
        ..options(db)
    })
    .await;
    let c = &s.client;
    deploy(c, "etl", spec("etl")).await;
    let run = run_of(c, "etl").await;
    let agent = agent(c).await;
    assert_eq!(
        c.claim(agent, 1, Duration::ZERO)
            .await
            .expect("claim")
            .len(),
        1
    );
    c.propose_state(
        run.id,
        &ProposeState {
            state: StateKind::Running,
            message: None,
            attempt: 1,
            transition_id: None,
            result: None,
        },
    )
    .await
    .expect("running");
    let before = snapshot(&s).await;
    let history_len = c.flow_run(run.id).await.expect("get").history.len();

    // A stale attempt: 409 with the run as it is now.
    let path = format!("/api/v1/flow_runs/{}/state", run.id);
    let r = send(
        &s,
        Method::POST,
        &path,
        Some(&json!({"state": "Completed", "attempt": 0}).to_string()),
    )
    .await;
    assert_refusal(&r, 409, "conflict", None, &["stale"]);
    let current: weir_core::api::FlowRun =
        serde_json::from_value(r.body["current"].clone()).expect("current run");
    assert_eq!(
        (current.id, current.state, current.attempt),
        (run.id, StateKind::Running, 1)
    );
    // An illegal transition: 409 too.
    let r = send(
        &s,
        Method::POST,
        &path,
        Some(&json!({"state": "Scheduled", "attempt": 1}).to_string()),
    )
    .await;
    assert_refusal(&r, 409, "conflict", None, &["Running", "Scheduled"]);
    assert!(r.body.get("current").is_some());
    // Retrying a run that is not over.
    let r = send(
        &s,
        Method::POST,
        &format!("/api/v1/flow_runs/{}/retry", run.id),
        None,
    )
    .await;
    assert_refusal(&r, 409, "conflict", None, &[]);
    // An ad-hoc run must be created Running by its own process.
    let r = send(
        &s,
        Method::POST,
        "/api/v1/flow_runs",
        Some(&json!({"project": "dev", "flow": "script"}).to_string()),
    )
    .await;
    assert_refusal(&r, 400, "invalid_request", Some("state"), &["Running"]);
    let r = send(
        &s,
        Method::POST,
        "/api/v1/flow_runs",
        Some(&json!({"project": "dev", "state": "Running"}).to_string()),
    )
    .await;
    assert_refusal(&r, 400, "invalid_request", Some("flow"), &["flow"]);
    let r = send(
        &s,
        Method::POST,
        "/api/v1/flow_runs",
        Some(&json!({"flow": "script", "state": "Running"}).to_string()),
    )
    .await;
    assert_refusal(&r, 400, "invalid_request", Some("project"), &["project"]);
    let r = send(
        &s,
        Method::POST,
        "/api/v1/flow_runs",
        Some(&json!({"project": "dev", "deployment": "etl", "state": "Running"}).to_string()),
    )
    .await;
    assert_refusal(&r, 400, "invalid_request", Some("state"), &["Scheduled"]);
    let r = send(
        &s,
        Method::POST,
        "/api/v1/flow_runs",
        Some(&json!({"project": "dev", "deployment": "nope"}).to_string()),
    )
    .await;
    assert_refusal(&r, 404, "not_found", None, &["nope"]);
    // Claims with a wait beyond the longest long-poll.
    let claim = format!("/api/v1/agents/{agent}/claim");
    let r = send(
        &s,
        Method::POST,
        &claim,
        Some(&json!({"limit": 1, "wait_ms": 600000}).to_string()),
    )
    .await;
    assert_refusal(&r, 400, "invalid_request", Some("wait_ms"), &["30000"]);
    let r = send(
        &s,
        Method::POST,
        &claim,
        Some(&json!({"limit": -1}).to_string()),
    )
    .await;
    assert_refusal(&r, 400, "invalid_request", Some("limit"), &[]);

    assert_eq!(snapshot(&s).await, before, "refused requests wrote nothing");
    assert_eq!(
        c.flow_run(run.id).await.expect("get").history.len(),
        history_len
    );
    s.stop().await;
}
