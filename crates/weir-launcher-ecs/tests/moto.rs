//! The ECS launcher against moto's server through the official SDK: everything moto can
//! show (registration once per hash, overrides, `valueFrom`, batching, STOPPED mapping,
//! StopTask → Cancelled, re-adoption by `startedBy`, discovery by tags, the CloudWatch tail).
//! What moto cannot produce is in `recorded.rs`.

mod common;

use common::{MotoEcs, TaskLifecycle};
use std::collections::BTreeMap;
use std::time::Duration;
use uuid::Uuid;
use weir_launcher_ecs::aws_sdk_cloudwatchlogs as cwl;
use weir_launcher_ecs::aws_sdk_ecs as ecs;
use weir_launcher_ecs::status::EndKind;
use weir_launcher_ecs::{Capacity, Clients, EcsLauncher, Error, RunRequest, TaskSpec, taskdef};

fn request(spec: &TaskSpec, attempt: u32) -> RunRequest {
    RunRequest {
        flow_run_id: Uuid::now_v7(),
        attempt,
        queue: "ecs".into(),
        plain_command: false,
        task: spec.clone(),
        capacity: Capacity::Fargate,
        command: vec!["example-flows".into(), "run".into(), "chain".into()],
        env: BTreeMap::from([("WEIR_FLOW_RUN_ID".into(), "x".into())]),
        cpu: None,
        memory_mib: None,
    }
}

async fn revisions(ecs: &ecs::Client, family: &str) -> usize {
    ecs.list_task_definitions()
        .family_prefix(family)
        .send()
        .await
        .expect("list task definitions")
        .task_definition_arns()
        .len()
}

#[tokio::test]
async fn a_hundred_runs_cost_one_registration() {
    let Some(endpoint) = weir_testkit::moto::endpoint("a_hundred_runs_cost_one_registration")
    else {
        return;
    };
    let moto = MotoEcs::lock(&endpoint, TaskLifecycle::StepPerDescribe).await;
    let clients = Clients::new(&weir_testkit::moto::sdk_config(moto.endpoint()).await);
    let cluster = common::cluster(&clients.ecs).await;
    let spec = common::spec(&common::unique("etl"));

    // `weir deploy`, twice: one registration, then reuse by the hash tag.
    let first = taskdef::ensure(&clients.ecs, &spec)
        .await
        .expect("register");
    assert!(first.registered);
    let again = taskdef::ensure(&clients.ecs, &spec).await.expect("reuse");
    assert_eq!(
        again,
        taskdef::Registered {
            arn: first.arn.clone(),
            registered: false
        }
    );

    let launcher = EcsLauncher::new(
        clients.ecs.clone(),
        common::options(&endpoint, &cluster).await,
    );
    for _ in 0..100 {
        launcher.run(&request(&spec, 1)).await.expect("run task");
    }
    assert_eq!(revisions(&clients.ecs, &spec.family()).await, 1);
    let calls = launcher.calls();
    assert_eq!(
        calls.run_task.load(std::sync::atomic::Ordering::Relaxed),
        100
    );
    assert_eq!(
        calls
            .find_task_definition
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );

    // A changed spec is a new revision; the old hash is still found among recent ones.
    let mut changed = spec.clone();
    changed.image = "weir-example-flows:v2".into();
    let second = taskdef::ensure(&clients.ecs, &changed)
        .await
        .expect("register v2");
    assert!(second.registered);
    assert_ne!(second.arn, first.arn);
    let old = taskdef::find(&clients.ecs, &spec)
        .await
        .expect("find")
        .expect("old found");
    assert_eq!(old.arn, first.arn);
}

#[tokio::test]
async fn an_unregistered_deployment_fails_naming_weir_deploy() {
    let Some(endpoint) =
        weir_testkit::moto::endpoint("an_unregistered_deployment_fails_naming_weir_deploy")
    else {
        return;
    };
    let moto = MotoEcs::lock(&endpoint, TaskLifecycle::StepPerDescribe).await;
    let clients = Clients::new(&weir_testkit::moto::sdk_config(moto.endpoint()).await);
    let cluster = common::cluster(&clients.ecs).await;
    let launcher = EcsLauncher::new(
        clients.ecs.clone(),
        common::options(&endpoint, &cluster).await,
    );
    let spec = common::spec(&common::unique("never-deployed"));
    let err = launcher
        .run(&request(&spec, 1))
        .await
        .expect_err("must fail");
    assert!(matches!(err, Error::NotRegistered { .. }), "{err}");
    assert!(err.to_string().contains("weir deploy"), "{err}");
    assert_eq!(
        revisions(&clients.ecs, &spec.family()).await,
        0,
        "the agent registered nothing"
    );
}

/// `DescribeTasks` of the task `arn` with its tags. moto's server keeps the `include=TAGS`
/// switch in state shared by all its request threads, so a concurrent `DescribeTasks` without
/// it (another test's reconciler) can strip the tags from this answer; a task Weir started
/// always has tags, so an answer without them is asked again.
async fn described_with_tags(ecs: &ecs::Client, cluster: &str, arn: &str) -> ecs::types::Task {
    for _ in 0..50 {
        let out = ecs
            .describe_tasks()
            .cluster(cluster)
            .tasks(arn)
            .include(ecs::types::TaskField::Tags)
            .send()
            .await
            .expect("describe");
        let task = out.tasks().first().expect("the task is described").clone();
        if !task.tags().is_empty() {
            return task;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("DescribeTasks never returned the tags of {arn}");
}

/// The task definition `arn` of `spec` holds its one secret as a reference (`valueFrom`), no
/// environment, and the spec's hash as a tag.
async fn assert_secret_only_referenced(ecs: &ecs::Client, arn: &str, spec: &TaskSpec) {
    let td = ecs
        .describe_task_definition()
        .task_definition(arn)
        .include(ecs::types::TaskDefinitionField::Tags)
        .send()
        .await
        .expect("describe task definition");
    let def = td.task_definition().expect("definition");
    let secrets = def.container_definitions()[0].secrets();
    assert_eq!(secrets.len(), 1);
    assert_eq!(secrets[0].name(), "DB_PASSWORD");
    assert_eq!(secrets[0].value_from(), "/weir/test/db-password");
    assert!(def.container_definitions()[0].environment().is_empty());
    assert!(
        td.tags()
            .iter()
            .any(|t| t.key() == Some("weir:spec-hash") && t.value() == Some(spec.hash().as_str()))
    );
}

#[tokio::test]
async fn run_task_carries_overrides_tags_and_secret_references() {
    let Some(endpoint) =
        weir_testkit::moto::endpoint("run_task_carries_overrides_tags_and_secret_references")
    else {
        return;
    };
    let moto = MotoEcs::lock(&endpoint, TaskLifecycle::Frozen).await;
    let clients = Clients::new(&weir_testkit::moto::sdk_config(moto.endpoint()).await);
    let cluster = common::cluster(&clients.ecs).await;
    let mut spec = common::spec(&common::unique("secrets"));
    spec.secrets
        .insert("DB_PASSWORD".into(), "/weir/test/db-password".into());
    let registered = taskdef::ensure(&clients.ecs, &spec)
        .await
        .expect("register");
    let launcher = EcsLauncher::new(
        clients.ecs.clone(),
        common::options(&endpoint, &cluster).await,
    );
    let mut req = request(&spec, 3);
    req.cpu = Some(512);
    req.memory_mib = Some(1024);
    req.capacity = Capacity::FargateSpot;
    req.env
        .insert("WEIR_API_KEY".into(), "weir_run_token".into());
    let started = launcher.run(&req).await.expect("run task");

    let task = &described_with_tags(&clients.ecs, &cluster, &started.arn).await;
    assert_eq!(task.task_definition_arn(), Some(registered.arn.as_str()));
    assert_eq!(
        task.started_by(),
        Some(weir_launcher_ecs::started_by(req.flow_run_id, 3).as_str())
    );
    let o = task.overrides().expect("overrides");
    assert_eq!(o.cpu(), Some("512"));
    assert_eq!(o.memory(), Some("1024"));
    let c = &o.container_overrides()[0];
    assert_eq!(c.name(), Some("flow"));
    assert_eq!(c.command(), req.command.as_slice());
    let env: BTreeMap<_, _> = c
        .environment()
        .iter()
        .map(|kv| (kv.name().unwrap_or(""), kv.value().unwrap_or("")))
        .collect();
    assert_eq!(env.get("WEIR_API_KEY"), Some(&"weir_run_token"));
    assert!(
        !env.contains_key("DB_PASSWORD"),
        "secrets never travel in overrides"
    );
    let tags: BTreeMap<_, _> = task
        .tags()
        .iter()
        .map(|t| (t.key().unwrap_or(""), t.value().unwrap_or("")))
        .collect();
    assert_eq!(
        tags.get("weir:run-id"),
        Some(&req.flow_run_id.to_string().as_str())
    );
    assert_eq!(tags.get("weir:attempt"), Some(&"3"));
    assert_eq!(tags.get("weir:deployment"), Some(&spec.deployment.as_str()));
    assert_eq!(task.capacity_provider_name(), Some("FARGATE_SPOT"));

    assert_secret_only_referenced(&clients.ecs, &registered.arn, &spec).await;
    launcher.reconciler().cancel(&started.arn, "test over");
}

#[tokio::test]
async fn the_reconciler_batches_describe_calls_and_maps_stopped() {
    let Some(endpoint) =
        weir_testkit::moto::endpoint("the_reconciler_batches_describe_calls_and_maps_stopped")
    else {
        return;
    };
    let moto = MotoEcs::lock(&endpoint, TaskLifecycle::StepPerDescribe).await;
    let clients = Clients::new(&weir_testkit::moto::sdk_config(moto.endpoint()).await);
    let cluster = common::cluster(&clients.ecs).await;
    let spec = common::spec(&common::unique("batch"));
    taskdef::ensure(&clients.ecs, &spec)
        .await
        .expect("register");
    let mut options = common::options(&endpoint, &cluster).await;
    options.poll_every = Duration::from_millis(700);
    let launcher = EcsLauncher::new(clients.ecs.clone(), options);
    let mut started = Vec::new();
    for _ in 0..150 {
        started.push(launcher.run(&request(&spec, 1)).await.expect("run task"));
    }
    for t in &mut started {
        let end = tokio::time::timeout(Duration::from_secs(60), t.end.wait())
            .await
            .expect("ended");
        // moto: exit code 0, no stop code.
        assert_eq!(end.kind, EndKind::Exited(0), "{}", end.reason);
        assert!(end.reason.contains("exited with code 0"), "{}", end.reason);
    }
    let describes = launcher
        .reconciler()
        .calls()
        .describe_tasks
        .load(std::sync::atomic::Ordering::Relaxed);
    // moto moves a task one step per describe and reports STOPPED on the fourth: four rounds
    // of two batches (100 + 50 ARNs) once all are started, a few more of one batch while
    // they are being started. One call per task per round would be 600.
    assert!(
        (8..=20).contains(&describes),
        "{describes} DescribeTasks calls for 150 tasks"
    );
    assert_eq!(launcher.reconciler().watching(), 0);
}

#[tokio::test]
async fn cancel_is_stop_task_with_a_reason_and_ends_cancelled() {
    let Some(endpoint) =
        weir_testkit::moto::endpoint("cancel_is_stop_task_with_a_reason_and_ends_cancelled")
    else {
        return;
    };
    let moto = MotoEcs::lock(&endpoint, TaskLifecycle::Frozen).await;
    let clients = Clients::new(&weir_testkit::moto::sdk_config(moto.endpoint()).await);
    let cluster = common::cluster(&clients.ecs).await;
    let spec = common::spec(&common::unique("cancel"));
    taskdef::ensure(&clients.ecs, &spec)
        .await
        .expect("register");
    let launcher = EcsLauncher::new(
        clients.ecs.clone(),
        common::options(&endpoint, &cluster).await,
    );
    let mut started = launcher.run(&request(&spec, 1)).await.expect("run task");
    tokio::time::sleep(Duration::from_millis(200)).await;
    launcher
        .reconciler()
        .cancel(&started.arn, "cancelled in Weir by alice");
    let end = tokio::time::timeout(Duration::from_secs(10), started.end.wait())
        .await
        .expect("ended");
    assert_eq!(end.kind, EndKind::Cancelled, "{}", end.reason);
    assert!(
        end.reason.contains("\"cancelled in Weir by alice\""),
        "{}",
        end.reason
    );
    let described = clients
        .ecs
        .describe_tasks()
        .cluster(&cluster)
        .tasks(&started.arn)
        .send()
        .await
        .expect("describe");
    assert_eq!(
        described.tasks()[0].stopped_reason(),
        Some("cancelled in Weir by alice")
    );
}

#[tokio::test]
async fn a_restarted_agent_adopts_its_task_by_started_by() {
    let Some(endpoint) =
        weir_testkit::moto::endpoint("a_restarted_agent_adopts_its_task_by_started_by")
    else {
        return;
    };
    let moto = MotoEcs::lock(&endpoint, TaskLifecycle::Frozen).await;
    let clients = Clients::new(&weir_testkit::moto::sdk_config(moto.endpoint()).await);
    let cluster = common::cluster(&clients.ecs).await;
    let spec = common::spec(&common::unique("adopt"));
    taskdef::ensure(&clients.ecs, &spec)
        .await
        .expect("register");
    let options = common::options(&endpoint, &cluster).await;
    let req = request(&spec, 2);
    let first = EcsLauncher::new(clients.ecs.clone(), options.clone());
    let started = first.run(&req).await.expect("run task");
    drop(first);

    let second = EcsLauncher::new(clients.ecs.clone(), options);
    let mut adopted = second
        .adopt(req.flow_run_id, 2)
        .await
        .expect("adopt")
        .expect("found");
    assert_eq!(adopted.arn, started.arn);
    assert!(
        second
            .adopt(req.flow_run_id, 3)
            .await
            .expect("adopt")
            .is_none(),
        "no task for attempt 3"
    );
    assert_eq!(
        second
            .calls()
            .run_task
            .load(std::sync::atomic::Ordering::Relaxed),
        0,
        "nothing launched again"
    );
    // The adopted task's end still arrives.
    second.reconciler().cancel(&adopted.arn, "test over");
    let end = tokio::time::timeout(Duration::from_secs(10), adopted.end.wait())
        .await
        .expect("ended");
    assert_eq!(end.kind, EndKind::Cancelled);
}

#[tokio::test]
async fn a_new_agent_instance_discovers_weir_tasks_by_their_tags() {
    let Some(endpoint) =
        weir_testkit::moto::endpoint("a_new_agent_instance_discovers_weir_tasks_by_their_tags")
    else {
        return;
    };
    let moto = MotoEcs::lock(&endpoint, TaskLifecycle::Frozen).await;
    let clients = Clients::new(&weir_testkit::moto::sdk_config(moto.endpoint()).await);
    let cluster = common::cluster(&clients.ecs).await;
    let spec = common::spec(&common::unique("discover"));
    taskdef::ensure(&clients.ecs, &spec)
        .await
        .expect("register");
    let options = common::options(&endpoint, &cluster).await;
    let old = EcsLauncher::new(clients.ecs.clone(), options.clone());
    let mut reqs = Vec::new();
    // Attempt 2 runs a plain command: its tag says so, for the agent that discovers it.
    for attempt in 1..=3 {
        let req = RunRequest {
            plain_command: attempt == 2,
            ..request(&spec, attempt)
        };
        let t = old.run(&req).await.expect("run task");
        reqs.push((req.flow_run_id, attempt, req.plain_command, t.arn));
    }
    let new = EcsLauncher::new(clients.ecs.clone(), options);
    let mut found: Vec<_> = new
        .discover()
        .await
        .expect("discover")
        .into_iter()
        .map(|f| {
            assert_eq!(f.queue.as_deref(), Some("ecs"));
            (f.flow_run_id, f.attempt, f.plain_command, f.arn)
        })
        .collect();
    found.sort();
    reqs.sort();
    assert_eq!(found, reqs);
    for (_, _, _, arn) in &reqs {
        old.reconciler().cancel(arn, "test over");
    }
}

#[tokio::test]
async fn the_log_tail_keeps_every_line_of_one_millisecond() {
    let Some(endpoint) =
        weir_testkit::moto::endpoint("the_log_tail_keeps_every_line_of_one_millisecond")
    else {
        return;
    };
    let logs = cwl::Client::new(&weir_testkit::moto::sdk_config(&endpoint).await);
    let group = format!("/weir/test/{}", common::unique("flows"));
    let stream = "etl/flow/0123456789abcdef";
    logs.create_log_group()
        .log_group_name(&group)
        .send()
        .await
        .expect("group");
    logs.create_log_stream()
        .log_group_name(&group)
        .log_stream_name(stream)
        .send()
        .await
        .expect("stream");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as i64;
    // 30 lines, all in the same millisecond.
    let mut put = logs
        .put_log_events()
        .log_group_name(&group)
        .log_stream_name(stream);
    for i in 0..30 {
        put = put.log_events(
            cwl::types::InputLogEvent::builder()
                .timestamp(now)
                .message(format!("line {i}"))
                .build()
                .expect("event"),
        );
    }
    put.send().await.expect("put");

    let tail = weir_launcher_ecs::logs::tail(&logs, &group, stream, 12)
        .await
        .expect("tail");
    let want: Vec<String> = (18..30).map(|i| format!("line {i}")).collect();
    assert_eq!(tail, want);
    let all = weir_launcher_ecs::logs::tail(&logs, &group, stream, 100)
        .await
        .expect("tail");
    assert_eq!(all.len(), 30);
    assert_eq!(all[0], "line 0");
    let none = weir_launcher_ecs::logs::tail(&logs, &group, "etl/flow/never", 10)
        .await
        .expect("missing stream");
    assert!(none.is_empty());
}
