//! The API end to end over real HTTP: a run's whole life through the typed client, the
//! long-poll claim's latency, the live SSE stream, the OpenAPI document and the metrics.

mod common;

use common::*;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use uuid::Uuid;
use weir_core::StateKind;
use weir_core::api::{
    CreateFlowRun, LogBatch, LogLevel, NewLogLine, ProposeState, TaskRunBatch, TaskRunReport,
};
use weir_testkit::{Backend, TestDb};

both! {
    run_lifecycle => sqlite_run_lifecycle, postgres_run_lifecycle;
    long_poll_claim => sqlite_long_poll_claim, postgres_long_poll_claim;
    sse_stream => sqlite_sse_stream, postgres_sse_stream;
    claims_respect_the_agent_limit => sqlite_claims_respect_the_agent_limit, postgres_claims_respect_the_agent_limit;
}

fn propose(state: StateKind, attempt: u32) -> ProposeState {
    ProposeState {
        state,
        message: None,
        attempt,
        transition_id: None,
        result: None,
    }
}

fn log(run: Uuid, message: &str) -> NewLogLine {
    NewLogLine {
        flow_run_id: run,
        task_run_id: None,
        at: chrono::Utc::now(),
        level: LogLevel::Info,
        message: message.into(),
        attempt: None,
        stream: None,
        seq: None,
    }
}

async fn run_lifecycle(db: &TestDb) {
    let s = TestServer::start(options(db)).await;
    let c = &s.client;
    assert_eq!(
        c.ready().await.expect("ready").database,
        match db.backend {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    );
    deploy_etl_twice(c).await;
    let first = create_twice(&s).await;

    let agent = agent(c).await;
    let claimed = c.claim(agent, 5, Duration::ZERO).await.expect("claim");
    assert_eq!(claimed.len(), 1);
    assert_eq!(
        claimed[0].spec.as_ref().map(|s| s.flow.as_str()),
        Some("etl")
    );
    assert!(!claimed[0].resume);
    let id = first.id;
    let running = c
        .propose_state(id, &propose(StateKind::Running, 1))
        .await
        .expect("running");
    assert_eq!(
        c.flow_run(id).await.expect("get").run,
        running,
        "the answer is what is stored"
    );
    report_a_task_and_five_lines(c, id).await;
    let mut done = propose(StateKind::Completed, 1);
    let result = weir_core::api::ResultRef {
        location: "s3://team-results/weir/run/result.json".into(),
        size: 11,
    };
    done.result = Some(result.clone());
    c.propose_state(id, &done).await.expect("completed");
    completed_as_reported(c, id, result).await;

    // Retry from failed tasks: the next claim says resume.
    let retried = c.retry(id, true).await.expect("retry");
    assert_eq!(retried.state, StateKind::Scheduled);
    let claimed = c.claim(agent, 5, Duration::ZERO).await.expect("claim");
    assert_eq!((claimed[0].run.attempt, claimed[0].resume), (2, true));
    ad_hoc_run_in_a_new_project(c).await;
    let q = c.work_queues().await.expect("queues");
    assert_eq!(
        q.iter().find(|q| q.name == "default").map(|q| q.running),
        Some(2),
        "the retried run, claimed again, and the ad-hoc run"
    );
    s.stop().await;
}

/// Deploys dev/etl (with a default parameter `day`) twice: created, then unchanged.
async fn deploy_etl_twice(c: &weir_client::Client) {
    let mut sp = spec("etl");
    sp.parameters.insert("day".into(), json!("2026-01-01"));
    let r = c
        .upsert_deployment("dev", "etl", &sp, false)
        .await
        .expect("deploy");
    assert_eq!(r.outcome, weir_core::api::UpsertOutcome::Created);
    let r = c
        .upsert_deployment("dev", "etl", &sp, false)
        .await
        .expect("again");
    assert_eq!(r.outcome, weir_core::api::UpsertOutcome::Unchanged);
}

/// Creates a run of dev/etl twice with one idempotency key: 201 then 200 with the same run,
/// its parameters the request's over the deployment's defaults. Returns it.
async fn create_twice(s: &TestServer) -> weir_core::api::FlowRun {
    let body = json!({"project": "dev", "deployment": "etl", "idempotency_key": "k1", "parameters": {"n": 2}});
    let create = || s.http.post(s.url("/api/v1/flow_runs")).json(&body).send();
    let first = create().await.expect("send");
    assert_eq!(first.status().as_u16(), 201);
    let first: weir_core::api::FlowRun = first.json().await.expect("run");
    let again = create().await.expect("send");
    assert_eq!(again.status().as_u16(), 200);
    assert_eq!(
        again
            .json::<weir_core::api::FlowRun>()
            .await
            .expect("run")
            .id,
        first.id
    );
    assert_eq!(
        first.parameters.get("day"),
        Some(&json!("2026-01-01")),
        "deployment defaults merged"
    );
    assert_eq!(first.parameters.get("n"), Some(&json!(2)));
    first
}

/// Reports task run `extract` of run `id` Completed then Running (out of order) and five
/// log lines; both batches are accepted whole.
async fn report_a_task_and_five_lines(c: &weir_client::Client, id: Uuid) {
    let t = chrono::Utc::now();
    let task = Uuid::now_v7();
    let report = |state, ms| TaskRunReport {
        id: task,
        flow_run_id: id,
        task: "extract".into(),
        state,
        at: t + chrono::Duration::milliseconds(ms),
        message: None,
        attempt: 1,
        inputs_fingerprint: None,
        cache_key: None,
        result_location: None,
        map_index: None,
        tags: vec![],
    };
    let accepted = c
        .ingest_task_runs(&TaskRunBatch {
            reports: vec![
                report(StateKind::Completed, 20),
                report(StateKind::Running, 10),
            ],
        })
        .await
        .expect("task runs");
    assert_eq!(accepted.accepted, 2);
    let lines: Vec<NewLogLine> = (0..5).map(|i| log(id, &format!("line {i}"))).collect();
    assert_eq!(
        c.ingest_logs(&LogBatch { lines })
            .await
            .expect("logs")
            .accepted,
        5
    );
}

/// Run `id` reads back Completed with `result`, its whole history, its one task run in its
/// latest state and its five lines in order across two pages.
async fn completed_as_reported(
    c: &weir_client::Client,
    id: Uuid,
    result: weir_core::api::ResultRef,
) {
    let detail = c.flow_run(id).await.expect("detail");
    assert_eq!(detail.run.state, StateKind::Completed);
    assert_eq!(detail.run.result, Some(result));
    let states: Vec<StateKind> = detail.history.iter().map(|h| h.state).collect();
    assert_eq!(
        states,
        vec![
            StateKind::Scheduled,
            StateKind::Pending,
            StateKind::Running,
            StateKind::Completed
        ]
    );
    assert_eq!(
        detail.task_runs_by_state,
        BTreeMap::from([(StateKind::Completed, 1)])
    );
    let tr = c.task_runs(id, None, 10).await.expect("task runs");
    assert_eq!(tr.items.len(), 1);
    assert_eq!(tr.items[0].state, StateKind::Completed);
    let page = c.logs(id, 0, 3).await.expect("logs");
    assert_eq!(page.items.len(), 3);
    let rest = c.logs(id, page.items[2].seq, 10).await.expect("logs");
    let all: Vec<String> = page
        .items
        .iter()
        .chain(&rest.items)
        .map(|l| l.message.clone())
        .collect();
    assert_eq!(all, (0..5).map(|i| format!("line {i}")).collect::<Vec<_>>());
}

/// An ad-hoc run is created Running by its own process, in a project made for it.
async fn ad_hoc_run_in_a_new_project(c: &weir_client::Client) {
    let adhoc = c
        .create_flow_run(&CreateFlowRun {
            project: Some("scratch".into()),
            flow: Some("script".into()),
            state: Some(StateKind::Running),
            ..Default::default()
        })
        .await
        .expect("ad hoc");
    assert_eq!((adhoc.state, adhoc.attempt), (StateKind::Running, 1));
    assert!(
        c.projects()
            .await
            .expect("projects")
            .iter()
            .any(|p| p.name == "scratch")
    );
}

async fn long_poll_claim(db: &TestDb) {
    let s = TestServer::start(options(db)).await;
    deploy(&s.client, "quick", spec("quick")).await;
    let agent = agent(&s.client).await;
    let waiter = {
        let c = s.client.clone();
        tokio::spawn(async move {
            let started = Instant::now();
            let claimed = c
                .claim(agent, 1, Duration::from_millis(5000))
                .await
                .expect("claim");
            (claimed, started.elapsed(), Instant::now())
        })
    };
    // Let the agent start waiting, then press "Quick run".
    tokio::time::sleep(Duration::from_millis(400)).await;
    let created_at = Instant::now();
    let run = run_of(&s.client, "quick").await;
    let (claimed, waited, claimed_at) = waiter.await.expect("join");
    assert_eq!(
        claimed.iter().map(|c| c.run.id).collect::<Vec<_>>(),
        vec![run.id]
    );
    let latency = claimed_at.saturating_duration_since(created_at);
    assert!(
        waited >= Duration::from_millis(300),
        "the claim waited for work ({waited:?})"
    );
    assert!(
        latency < Duration::from_secs(1),
        "a waiting agent got the new run after {latency:?}"
    );
    // With nothing to claim, the long-poll returns empty after its wait.
    let started = Instant::now();
    assert!(
        s.client
            .claim(agent, 1, Duration::from_millis(300))
            .await
            .expect("claim")
            .is_empty()
    );
    assert!(started.elapsed() >= Duration::from_millis(300));
    s.stop().await;
}

/// One server-sent event.
#[derive(Debug)]
struct SseEvent {
    event: String,
    data: String,
}

async fn sse_stream(db: &TestDb) {
    let s = TestServer::start(options(db)).await;
    let c = &s.client;
    deploy(c, "streamed", spec("streamed")).await;
    let run = run_of(c, "streamed").await;
    c.ingest_logs(&LogBatch {
        lines: vec![log(run.id, "before the stream")],
    })
    .await
    .expect("logs");
    let resp = s
        .http
        .get(s.url(&format!("/api/v1/flow_runs/{}/stream", run.id)))
        .send()
        .await
        .expect("stream");
    assert_eq!(resp.status().as_u16(), 200);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap_or_default()
            .starts_with("text/event-stream")
    );
    let reader = tokio::spawn(read_events(resp));
    // Drive the run while the stream is open.
    let agent = agent(c).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        c.claim(agent, 1, Duration::ZERO)
            .await
            .expect("claim")
            .len(),
        1
    );
    c.propose_state(run.id, &propose(StateKind::Running, 1))
        .await
        .expect("running");
    c.ingest_logs(&LogBatch {
        lines: vec![log(run.id, "working"), log(run.id, "almost done")],
    })
    .await
    .expect("logs");
    tokio::time::sleep(Duration::from_millis(200)).await;
    c.propose_state(run.id, &propose(StateKind::Completed, 1))
        .await
        .expect("completed");
    let events = tokio::time::timeout(Duration::from_secs(15), reader)
        .await
        .expect("stream ended")
        .expect("join");

    stream_told_the_whole_run(&events);
    s.stop().await;
}

/// Reads the events of an SSE response until the server ends it (10 s without a chunk is a
/// stall); comments and keep-alives (no data) are skipped.
async fn read_events(mut resp: reqwest::Response) -> Vec<SseEvent> {
    let mut buf = String::new();
    let mut events = Vec::new();
    loop {
        let chunk = match tokio::time::timeout(Duration::from_secs(10), resp.chunk()).await {
            Ok(Ok(Some(chunk))) => chunk,
            Ok(Ok(None)) => return events,
            Ok(Err(e)) => panic!("stream broke: {e}"),
            Err(_) => panic!("stream stalled; events so far: {events:?}"),
        };
        buf.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buf.find("\n\n") {
            let block: String = buf.drain(..end + 2).collect();
            let mut ev = SseEvent {
                event: "message".into(),
                data: String::new(),
            };
            for line in block.lines() {
                if let Some(v) = line.strip_prefix("event:") {
                    ev.event = v.trim().to_string();
                } else if let Some(v) = line.strip_prefix("data:") {
                    ev.data.push_str(v.trim_start());
                }
            }
            if !ev.data.is_empty() {
                events.push(ev);
            }
        }
    }
}

/// The stream of a run that went Scheduled → … → Completed told its log lines in order
/// (the one written before the stream opened included), each state change once, and ended
/// with one `end` event naming the final state.
fn stream_told_the_whole_run(events: &[SseEvent]) {
    let logs: Vec<String> = events
        .iter()
        .filter(|e| e.event == "log")
        .map(|e| {
            serde_json::from_str::<Value>(&e.data).expect("log json")["message"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .collect();
    assert_eq!(
        logs,
        vec!["before the stream", "working", "almost done"],
        "{events:?}"
    );
    let states: Vec<StateKind> = events
        .iter()
        .filter(|e| e.event == "state")
        .map(|e| {
            serde_json::from_str::<weir_core::api::FlowRun>(&e.data)
                .expect("state json")
                .state
        })
        .collect();
    assert_eq!(states.first(), Some(&StateKind::Scheduled), "{events:?}");
    assert_eq!(states.last(), Some(&StateKind::Completed), "{events:?}");
    assert!(
        states.windows(2).all(|w| w[0] != w[1]),
        "a state is sent once per change: {states:?}"
    );
    let last = events.last().expect("events");
    assert_eq!(
        (last.event.as_str(), last.data.as_str()),
        ("end", "Completed")
    );
    assert_eq!(events.iter().filter(|e| e.event == "end").count(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn openapi_and_metrics() {
    let db = TestDb::new(Backend::Sqlite, "openapi_and_metrics")
        .await
        .expect("sqlite");
    let s = TestServer::start(options(&db)).await;
    // Some traffic first, so the metrics have samples.
    deploy(&s.client, "etl", spec("etl")).await;
    run_of(&s.client, "etl").await;

    let resp = s
        .http
        .get(s.url("/api/openapi.json"))
        .send()
        .await
        .expect("openapi");
    assert_eq!(resp.status().as_u16(), 200);
    let doc: Value = resp.json().await.expect("openapi is JSON");
    assert!(
        doc["openapi"]
            .as_str()
            .unwrap_or_default()
            .starts_with("3."),
        "{}",
        doc["openapi"]
    );
    let paths = doc["paths"].as_object().expect("paths");
    every_operation_is_documented_and_served(&s, paths).await;
    // Path parameters are named and typed from the handler's extractor.
    let detail = &paths["/api/v1/flow_runs/{id}"]["get"]["parameters"][0];
    assert_eq!(detail["name"], "id");
    assert_eq!(detail["schema"]["format"], "uuid");
    assert_eq!(
        paths["/api/v1/agents"]["post"]["responses"]
            .as_object()
            .map(|r| r.contains_key("201")),
        Some(true)
    );
    // Every schema reference resolves.
    let text = doc.to_string();
    let schemas = doc["components"]["schemas"].as_object().expect("schemas");
    for part in text.split("\"$ref\":\"#/components/schemas/").skip(1) {
        let name = part.split('"').next().unwrap_or_default();
        assert!(schemas.contains_key(name), "dangling $ref to {name}");
    }

    metrics_and_health_answer(&s).await;
    s.stop().await;
}

/// Every operation of the document lists a success answer and its error codes (one shape,
/// no catch-all `default`, so a fuzzer can tell an undocumented status), and the router
/// serves it (not the unknown-path fallback).
async fn every_operation_is_documented_and_served(
    s: &TestServer,
    paths: &serde_json::Map<String, Value>,
) {
    let routes = documented_routes(s).await;
    assert!(
        routes.len() >= 25,
        "found the documented routes: {routes:?}"
    );
    for (method, path) in routes.keys() {
        let op = &paths[path][method];
        let responses = op["responses"].as_object().expect("responses");
        assert!(
            responses.keys().any(|code| code.starts_with('2')),
            "{method} {path} documents no success answer"
        );
        // Every error is one shape, and its codes are listed (no catch-all `default`, so a
        // fuzzer can tell an undocumented status).
        assert!(!responses.contains_key("default"), "{method} {path}");
        for (code, r) in responses {
            if code.starts_with('4') || code.starts_with('5') {
                assert_eq!(
                    r["content"]["application/json"]["schema"]["$ref"],
                    "#/components/schemas/ErrorBody",
                    "{method} {path} {code}"
                );
            }
        }
        // Documented means served: the router answers it (not the unknown-path fallback).
        let url = s.url(
            &path
                .replace("{project}", "dev")
                .replace("{name}", "etl")
                .replace("{id}", "00000000-0000-0000-0000-000000000000"),
        );
        let m = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).expect("method");
        let resp = s.http.request(m, url).send().await.expect("request");
        let status = resp.status().as_u16();
        let body = if path.ends_with("/stream") && status == 200 {
            String::new()
        } else {
            resp.text().await.expect("body")
        };
        assert!(
            status != 405 && !body.contains("no endpoint at"),
            "{method} {path} is documented but not served: {status} {body}"
        );
    }
}

/// `/metrics` has the request histogram and the 24-hour run gauges (the one Scheduled run
/// counted), and `/healthz` says ok.
async fn metrics_and_health_answer(s: &TestServer) {
    let resp = s.http.get(s.url("/metrics")).send().await.expect("metrics");
    assert_eq!(resp.status().as_u16(), 200);
    let text = resp.text().await.expect("text");
    assert!(text.contains("weir_api_request_seconds"), "{text}");
    assert!(text.contains("weir_flow_runs_24h"), "{text}");
    let scheduled = text
        .lines()
        .find(|l| l.starts_with("weir_flow_runs_24h") && l.contains("state=\"Scheduled\""))
        .expect("a Scheduled gauge");
    assert!(scheduled.trim_end().ends_with(" 1"), "{scheduled}");
    let health: Value = s
        .http
        .get(s.url("/healthz"))
        .send()
        .await
        .expect("health")
        .json()
        .await
        .expect("json");
    assert_eq!(health["status"], "ok");
}

/// A claim never hands an agent more runs than the limit it registered with, counting the
/// runs it already holds, whatever the request asks for.
async fn claims_respect_the_agent_limit(db: &TestDb) {
    let s = TestServer::start(options(db)).await;
    deploy(&s.client, "etl", spec("etl")).await;
    for _ in 0..3 {
        run_of(&s.client, "etl").await;
    }
    let agent = s
        .client
        .register_agent(&weir_core::api::RegisterAgent {
            name: "small".into(),
            queues: vec!["default".into()],
            limit: 2,
            launchers: vec![weir_core::infrastructure::InfrastructureKind::Process],
        })
        .await
        .expect("register")
        .id;
    let first = s
        .client
        .claim(agent, 5, Duration::ZERO)
        .await
        .expect("claim");
    assert_eq!(first.len(), 2, "two slots");
    let second = s
        .client
        .claim(agent, 5, Duration::ZERO)
        .await
        .expect("claim");
    assert!(second.is_empty(), "no free slot while it holds two runs");
    s.stop().await;
}

/// A database outage is transient end to end: the store classifies the failure, the API
/// answers 503 with `unavailable` and Retry-After (never a 409), the client calls it
/// transient, and the same proposal succeeds once the database is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_database_outage_is_a_503_and_the_proposal_succeeds_after_it() {
    let Some(db) = TestDb::new(Backend::Postgres, "database_outage").await else {
        return;
    };
    let s = TestServer::start(options(&db)).await;
    let run = s
        .client
        .create_flow_run(&CreateFlowRun {
            project: Some("dev".into()),
            flow: Some("adhoc".into()),
            state: Some(StateKind::Running),
            ..CreateFlowRun::default()
        })
        .await
        .expect("ad-hoc run");
    assert_eq!(run.state, StateKind::Running);

    db.set_reachable(false).await;
    let done = propose(StateKind::Completed, run.attempt);
    let err = s
        .client
        .propose_state(run.id, &done)
        .await
        .expect_err("the database is away");
    assert_eq!(err.status().map(|s| s.as_u16()), Some(503), "{err:?}");
    assert!(
        err.is_transient(),
        "a database outage must be retried: {err:?}"
    );
    match &err {
        weir_client::Error::Api { body, .. } => {
            assert_eq!(
                body.error,
                weir_core::api::ErrorKind::Unavailable,
                "{body:?}"
            );
            assert!(body.message.contains("retry"), "{}", body.message);
        }
        other => panic!("expected an API error, got {other:?}"),
    }
    let raw = s
        .http
        .get(s.url(&format!("/api/v1/flow_runs/{}", run.id)))
        .send()
        .await
        .expect("send");
    assert_eq!(raw.status().as_u16(), 503);
    assert_eq!(
        raw.headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok()),
        Some("1")
    );

    db.set_reachable(true).await;
    // The pool reconnects on the next request; retry as the agent and SDK do.
    let deadline = Instant::now() + Duration::from_secs(20);
    let after = loop {
        match s.client.propose_state(run.id, &done).await {
            Ok(r) => break r,
            Err(e) if e.is_transient() && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("after the outage: {e:?}"),
        }
    };
    assert_eq!(after.state, StateKind::Completed);
    s.stop().await;
}
