//! What moto cannot produce — capacity failures, throttling, stop codes, non-zero exits, OOM,
//! tasks stuck in PROVISIONING — played back to the real SDK from recorded AWS answers
//! (`recorded/ecs.json`) by a small HTTP endpoint, through the launcher and its reconciler.

mod common;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use uuid::Uuid;
use weir_agent::launcher::ExitStatus;
use weir_core::StateKind;
use weir_launcher_ecs::agent::AgentLauncher;
use weir_launcher_ecs::aws_sdk_ecs as ecs;
use weir_launcher_ecs::status::EndKind;
use weir_launcher_ecs::{Capacity, EcsLauncher, EcsOptions, Error, LogSpec, RunRequest};

const TASK_ARN: &str =
    "arn:aws:ecs:us-east-1:123456789012:task/weir/5c3f0a0e9b1d4f7aa1c2b3d4e5f60718";

fn recorded(name: &str) -> Value {
    let all: Value =
        serde_json::from_str(include_str!("recorded/ecs.json")).expect("recorded JSON");
    let text = all[name].to_string().replace("TASK_ARN", TASK_ARN);
    serde_json::from_str(&text).expect("recorded answer")
}

/// Scripted answers per operation (the last one repeats) and every request received.
#[derive(Default)]
struct Script {
    answers: HashMap<String, VecDeque<(u16, Value)>>,
    requests: Vec<(String, Value)>,
}

type Shared = Arc<Mutex<Script>>;

async fn answer(
    State(s): State<Shared>,
    headers: HeaderMap,
    body: String,
) -> (StatusCode, HeaderMap, String) {
    let op = headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .and_then(|t| t.rsplit('.').next())
        .unwrap_or("")
        .to_string();
    let mut script = s.lock().expect("script");
    script.requests.push((
        op.clone(),
        serde_json::from_str(&body).unwrap_or(Value::Null),
    ));
    let (status, value) = match script.answers.get_mut(&op) {
        Some(q) if q.len() > 1 => q.pop_front().expect("answer"),
        Some(q) if !q.is_empty() => q[0].clone(),
        _ => (
            400,
            json!({"__type": "InvalidParameterException", "message": format!("no recorded answer for {op}")}),
        ),
    };
    let mut h = HeaderMap::new();
    h.insert(
        "content-type",
        "application/x-amz-json-1.1".parse().expect("header"),
    );
    (
        StatusCode::from_u16(status).expect("status"),
        h,
        value.to_string(),
    )
}

struct Fake {
    script: Shared,
    url: String,
}

impl Fake {
    async fn start() -> Fake {
        let script: Shared = Arc::default();
        let app = axum::Router::new()
            .route("/", axum::routing::post(answer))
            .with_state(script.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        tokio::spawn(async move { axum::serve(listener, app).await.expect("serve") });
        Fake { script, url }
    }

    fn then(&self, op: &str, status: u16, body: Value) -> &Fake {
        self.script
            .lock()
            .expect("script")
            .answers
            .entry(op.into())
            .or_default()
            .push_back((status, body));
        self
    }

    fn requests(&self, op: &str) -> Vec<Value> {
        self.script
            .lock()
            .expect("script")
            .requests
            .iter()
            .filter(|(o, _)| o == op)
            .map(|(_, b)| b.clone())
            .collect()
    }

    async fn launcher(&self, start_deadline: Duration) -> Arc<EcsLauncher> {
        let config = weir_testkit::moto::sdk_config(&self.url).await;
        let options = EcsOptions {
            cluster: "weir".into(),
            subnets: vec!["subnet-0a1b2c3d".into()],
            security_groups: vec!["sg-0a1b2c3d".into()],
            assign_public_ip: false,
            start_deadline,
            poll_every: Duration::from_millis(50),
            capacity_backoff: Duration::from_millis(20),
        };
        EcsLauncher::new(ecs::Client::new(&config), options)
    }
}

fn request() -> RunRequest {
    RunRequest {
        flow_run_id: Uuid::now_v7(),
        attempt: 1,
        queue: "ecs".into(),
        plain_command: false,
        task: common::spec("etl"),
        capacity: Capacity::Fargate,
        command: vec!["weir".into(), "exec".into(), "--".into(), "true".into()],
        env: BTreeMap::new(),
        cpu: None,
        memory_mib: None,
    }
}

/// A fake whose task definition is registered with the request's hash.
async fn registered(req: &RunRequest) -> Fake {
    let fake = Fake::start().await;
    fake.then(
        "DescribeTaskDefinition",
        200,
        json!({
            "taskDefinition": {"taskDefinitionArn": "arn:aws:ecs:us-east-1:123456789012:task-definition/weir-test-etl:1", "status": "ACTIVE"},
            "tags": [{"key": "weir:spec-hash", "value": req.task.hash()}]
        }),
    );
    fake
}

fn describe(task: &str) -> Value {
    json!({"tasks": [recorded(task)], "failures": []})
}

#[tokio::test]
async fn capacity_failures_are_retried_until_a_task_starts() {
    let req = request();
    let fake = registered(&req).await;
    fake.then("RunTask", 200, recorded("run_task_no_capacity"))
        .then("RunTask", 200, recorded("run_task_no_memory"))
        .then("RunTask", 200, recorded("run_task_started"));
    let launcher = fake.launcher(Duration::from_secs(30)).await;
    let started = launcher.run(&req).await.expect("started on the third try");
    assert_eq!(started.arn, TASK_ARN);
    let tries = fake.requests("RunTask");
    assert_eq!(tries.len(), 3);
    let tokens: std::collections::BTreeSet<_> =
        tries.iter().map(|t| t["clientToken"].to_string()).collect();
    assert_eq!(tokens.len(), 3, "a new clientToken per try: {tokens:?}");
    for t in &tries {
        assert_eq!(
            t["startedBy"],
            weir_launcher_ecs::started_by(req.flow_run_id, 1)
        );
        assert_eq!(
            t["networkConfiguration"]["awsvpcConfiguration"]["assignPublicIp"],
            "DISABLED"
        );
        assert_eq!(
            t["networkConfiguration"]["awsvpcConfiguration"]["subnets"],
            json!(["subnet-0a1b2c3d"])
        );
        assert_eq!(t["launchType"], "FARGATE");
    }
}

#[tokio::test]
async fn capacity_never_coming_fails_at_the_start_deadline_quoting_aws() {
    let req = request();
    let fake = registered(&req).await;
    fake.then("RunTask", 200, recorded("run_task_no_capacity"));
    let launcher = fake.launcher(Duration::from_millis(300)).await;
    let err = launcher.run(&req).await.expect_err("no capacity");
    let text = err.to_string();
    assert!(matches!(err, Error::RunTaskFailed(_)), "{text}");
    assert!(text.contains("start deadline"), "{text}");
    assert!(text.contains("\"Capacity is unavailable at this time. Please try again later or in a different availability zone\""), "{text}");
    assert!(
        fake.requests("RunTask").len() >= 2,
        "retried before giving up"
    );
}

#[tokio::test]
async fn other_failures_fail_the_attempt_at_once_with_the_reason() {
    let req = request();
    let fake = registered(&req).await;
    fake.then("RunTask", 200, recorded("run_task_bad_attribute"));
    let launcher = fake.launcher(Duration::from_secs(30)).await;
    let err = launcher
        .run(&req)
        .await
        .expect_err("permanent failure")
        .to_string();
    assert!(
        err.contains("\"ATTRIBUTE\" (ecs.cpu-architecture=arm64 not satisfied)"),
        "{err}"
    );
    assert_eq!(fake.requests("RunTask").len(), 1);
}

#[tokio::test]
async fn a_task_stuck_provisioning_is_stopped_and_crashes_with_the_reason() {
    let req = request();
    let fake = registered(&req).await;
    fake.then("RunTask", 200, recorded("run_task_started"));
    // Throttled once (the SDK retries), then PROVISIONING until Weir stops it.
    fake.then("DescribeTasks", 400, recorded("throttled"));
    for _ in 0..8 {
        fake.then("DescribeTasks", 200, describe("task_provisioning"));
    }
    fake.then(
        "DescribeTasks",
        200,
        describe("task_stopped_after_deadline"),
    );
    fake.then(
        "StopTask",
        200,
        json!({"task": recorded("task_stopped_after_deadline")}),
    );
    let launcher = fake.launcher(Duration::from_millis(200)).await;
    let mut started = launcher.run(&req).await.expect("started");
    let end = tokio::time::timeout(Duration::from_secs(20), started.end.wait())
        .await
        .expect("ended");
    assert_eq!(end.kind, EndKind::Crashed, "{}", end.reason);
    assert!(
        end.reason
            .starts_with("the task did not start within 200ms (last status PROVISIONING)"),
        "{}",
        end.reason
    );
    let stops = fake.requests("StopTask");
    assert_eq!(stops.len(), 1);
    assert_eq!(stops[0]["task"], TASK_ARN);
    assert!(
        stops[0]["reason"]
            .as_str()
            .unwrap_or("")
            .contains("did not start")
    );
}

/// Runs a task whose first description is `stopped` and returns how it ended.
async fn end_of(stopped: &str) -> weir_launcher_ecs::status::Ended {
    let req = request();
    let fake = registered(&req).await;
    fake.then("RunTask", 200, recorded("run_task_started"));
    fake.then("DescribeTasks", 200, describe(stopped));
    let launcher = fake.launcher(Duration::from_secs(30)).await;
    let mut started = launcher.run(&req).await.expect("started");
    let end = tokio::time::timeout(Duration::from_secs(10), started.end.wait())
        .await
        .expect("ended");
    let describes = fake.requests("DescribeTasks");
    assert_eq!(
        describes.len(),
        1,
        "one DescribeTasks round settles a stopped task"
    );
    assert_eq!(describes[0]["tasks"], json!([TASK_ARN]));
    end
}

#[tokio::test]
async fn stopped_tasks_map_to_weir_outcomes_quoting_aws_verbatim() {
    let e = end_of("task_failed_to_start").await;
    assert_eq!(e.kind, EndKind::Crashed);
    assert_eq!(
        e.reason,
        "the task failed to start: \"Timeout waiting for network interface provisioning to complete.\""
    );

    let e = end_of("task_pull_failed").await;
    assert_eq!(e.kind, EndKind::Crashed);
    assert!(e.reason.contains("\"CannotPullContainerError: pull image manifest has been retried 5 time(s): failed to resolve ref"), "{}", e.reason);

    let e = end_of("task_exit_1").await;
    assert_eq!(e.kind, EndKind::Exited(1));
    assert_eq!(
        e.reason,
        "the flow container exited with code 1: \"Essential container in task exited\""
    );
    assert_eq!(
        e.exit_status(),
        ExitStatus::Exited {
            code: 1,
            reason: "ECS: \"Essential container in task exited\"".into()
        }
    );

    let e = end_of("task_oom").await;
    assert_eq!(e.kind, EndKind::Crashed);
    assert_eq!(
        e.reason,
        "out of memory (limit 512 MiB): \"Essential container in task exited\" (container: \"OutOfMemoryError: Container killed due to memory usage\")"
    );

    let e = end_of("task_spot_interrupted").await;
    assert_eq!(e.kind, EndKind::Crashed);
    assert_eq!(
        e.reason,
        "the infrastructure stopped the task (SpotInterruption): \"Your Spot Task was interrupted.\""
    );

    let e = end_of("task_stopped_by_someone").await;
    assert_eq!(e.kind, EndKind::Crashed);
    assert_eq!(
        e.reason,
        "the task was stopped outside Weir: \"Task stopped by user\""
    );
}

/// A task whose flow exited 1 without reporting its end, as the agent sees it: its CloudWatch
/// tail becomes the run's output, and the run's final state message (plain command: Failed;
/// a flow: Crashed) quotes ECS's stoppedReason and the last log lines verbatim.
#[tokio::test]
async fn an_unreported_exit_ends_the_run_quoting_aws_and_its_log_tail() {
    let req = request();
    let fake = registered(&req).await;
    fake.then("RunTask", 200, recorded("run_task_started"));
    fake.then("DescribeTasks", 200, describe("task_exit_1"));
    // The tail from the end, then the forward token followed until it repeats.
    fake.then("GetLogEvents", 200, recorded("log_tail")).then(
        "GetLogEvents",
        200,
        recorded("log_tail_end"),
    );
    let ecs = fake.launcher(Duration::from_secs(30)).await;
    let logs = weir_launcher_ecs::aws_sdk_cloudwatchlogs::Client::new(
        &weir_testkit::moto::sdk_config(&fake.url).await,
    );
    let agent = AgentLauncher::new(ecs.clone(), logs, "us-east-1".into());
    let started = ecs.run(&req).await.expect("started");
    let log = LogSpec {
        group: "/weir/flows".into(),
        region: "us-east-1".into(),
        stream_prefix: "etl".into(),
    };
    let mut launched = agent.launched(started.arn, started.end, Some(log));
    let mut output = Vec::new();
    while let Some(line) = tokio::time::timeout(Duration::from_secs(10), launched.output.recv())
        .await
        .expect("the tail arrives")
    {
        output.push(line.text);
    }
    let exit = launched.wait().await;
    assert_eq!(
        output,
        [
            "[cloudwatch] loading orders from s3://team-data/exports/orders.csv",
            "[cloudwatch] Traceback (most recent call last):",
            "[cloudwatch] KeyError: 'order_id'",
        ]
    );
    let quoted = "exit code 1 (ECS: \"Essential container in task exited\"; last log lines: \
                  loading orders from s3://team-data/exports/orders.csv | Traceback (most recent \
                  call last): | KeyError: 'order_id')";
    assert_eq!(exit.to_string(), quoted);
    assert_eq!(
        exit.unreported_end(true),
        (
            StateKind::Failed,
            format!("the command failed with {quoted}")
        )
    );
    assert_eq!(
        exit.unreported_end(false),
        (
            StateKind::Crashed,
            format!("the process ended with {quoted} without reporting a final state")
        )
    );
    let reads = fake.requests("GetLogEvents");
    assert_eq!(
        reads[0]["logStreamName"],
        "etl/flow/5c3f0a0e9b1d4f7aa1c2b3d4e5f60718"
    );
    assert_eq!(reads[0]["logGroupName"], "/weir/flows");
    assert_eq!(reads.len(), 2, "{reads:?}");
    assert_eq!(
        reads[1]["nextToken"],
        recorded("log_tail")["nextForwardToken"]
    );
}
