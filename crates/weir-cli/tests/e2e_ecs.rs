//! End to end on ECS (moto's server through the official SDK): `weir deploy` registers the
//! deployment's task definition once (by content hash), a real `weir agent --launchers ecs`
//! claims the run and starts it with `RunTask`, its reconciler sees the task STOPPED with
//! exit code 0 (moto's only exit), and the plain command's run is Completed.
//!
//! moto runs no containers, so here the outcome comes from ECS's answer; the flow process
//! reporting itself from inside a task is not exercised by this test.
//!
//! Needs `cargo build --workspace --bins --features weir-cli/aws,weir-cli/ecs` and
//! `eval "$(scripts/test-moto.sh)"`; scripts/test.sh does both.

#![cfg(feature = "ecs")]

mod common;

use common::{ServerOptions, Weir};
use std::time::Duration;
use uuid::Uuid;
use weir_core::StateKind;
use weir_launcher_ecs::aws_sdk_ecs as ecs;
use weir_testkit::moto;

#[test]
fn an_ecs_deployment_runs_from_weir_deploy_to_completed() {
    let Some(endpoint) = moto::endpoint("an_ecs_deployment_runs_from_weir_deploy_to_completed")
    else {
        return;
    };
    let mut w = Weir::start(ServerOptions::default());
    let suffix = &Uuid::now_v7().simple().to_string()[20..];
    let cluster = format!("weir-e2e-{suffix}");
    let deployment = format!("hello-{suffix}");
    // moto's task lifecycle is one setting for all tests: hold the ECS tests' lock and use
    // its default (one step per DescribeTasks, STOPPED after four).
    let _lock = moto::EcsLifecycle::hold(&endpoint, moto::TaskLifecycle::StepPerDescribe)
        .expect("moto's ECS task lifecycle");
    let (subnet, sg) = moto::default_network(&endpoint).expect("moto's default VPC");
    let ecs_client = w.block_on(async {
        let client = ecs::Client::new(&moto::sdk_config(&endpoint).await);
        client
            .create_cluster()
            .cluster_name(&cluster)
            .send()
            .await
            .expect("cluster");
        client
    });
    let aws_env = moto::client_env(&endpoint);
    let toml = ecs_deployment_file(&deployment);
    let file = w.write_toml(&toml);
    let file = file.display().to_string();
    let mut env = aws_env.to_vec();
    env.push(("WEIR_API_KEY", w.admin_key.as_str()));
    let deploy = |w: &Weir| {
        w.sb.cli_env(
            Some(&w.url),
            &w.sb.path("cli"),
            &env,
            &["deploy", "--file", &file],
            Duration::from_secs(60),
        )
    };
    let first = deploy(&w).ok();
    assert!(first.stdout.contains("registered"), "{first:#?}");
    let second = deploy(&w).ok();
    assert!(
        second.stdout.contains("unchanged"),
        "an unchanged deployment is not registered again: {second:#?}"
    );

    let home = w.sb.path("agent-ecs");
    let agent = w.start_agent_with(
        &home,
        2,
        &[
            "--launchers",
            "ecs",
            "--ecs-cluster",
            &cluster,
            "--ecs-subnets",
            &subnet,
            "--ecs-security-groups",
            &sg,
            "--ecs-poll-ms",
            "200",
        ],
        &aws_env,
    );
    let run = w.create_run("p", &deployment, Default::default());
    let detail = w.wait_terminal(run.id, Duration::from_secs(60));
    assert_eq!(
        detail.run.state,
        StateKind::Completed,
        "{detail:#?}\nagent: {}",
        w.agent_log(agent)
    );

    w.block_on(assert_what_ecs_saw(
        &ecs_client,
        &cluster,
        &deployment,
        run.id,
    ));
}

/// Project `p`'s ECS deployment `deployment`: a plain command in the example-flows image,
/// with one secret from SSM and a log group.
fn ecs_deployment_file(deployment: &str) -> String {
    format!(
        r#"
project = "p"

[deployments.{deployment}]
command = ["sh", "-c", "echo hello from a task"]
plain = true
secrets = {{ DB_PASSWORD = "ssm:/weir/e2e/db-password" }}

[deployments.{deployment}.infrastructure]
type = "ecs"
image = "weir-example-flows:dev"
cpu = 0.25
memory = "512Mi"
execution_role_arn = "arn:aws:iam::123456789012:role/weir-flow-execution"
log_group = "/weir/flows"
"#
    )
}

/// What ECS holds after the run: one task definition (registered by `weir deploy`), one task
/// started for attempt 1 of `run`, the run's token in its overrides but no secret value, and
/// the secret only as a `valueFrom` of the definition.
async fn assert_what_ecs_saw(ecs_client: &ecs::Client, cluster: &str, deployment: &str, run: Uuid) {
    let family = format!("weir-p-{deployment}");
    let defs = ecs_client
        .list_task_definitions()
        .family_prefix(&family)
        .send()
        .await
        .expect("list");
    assert_eq!(
        defs.task_definition_arns().len(),
        1,
        "one registration, by weir deploy"
    );
    let arns = ecs_client
        .list_tasks()
        .cluster(cluster)
        .send()
        .await
        .expect("tasks");
    assert_eq!(arns.task_arns().len(), 1, "one task for one run");
    let described = ecs_client
        .describe_tasks()
        .cluster(cluster)
        .set_tasks(Some(arns.task_arns().to_vec()))
        .send()
        .await
        .expect("describe");
    let task = &described.tasks()[0];
    assert_eq!(
        task.started_by(),
        Some(weir_launcher_ecs::started_by(run, 1).as_str())
    );
    let env: Vec<(&str, &str)> = task.overrides().expect("overrides").container_overrides()[0]
        .environment()
        .iter()
        .map(|kv| (kv.name().unwrap_or(""), kv.value().unwrap_or("")))
        .collect();
    assert!(
        env.iter().any(|(k, _)| *k == "WEIR_API_KEY"),
        "the per-run token travels in the overrides"
    );
    assert!(
        env.iter()
            .all(|(k, _)| *k != "DB_PASSWORD" && *k != "WEIR_OUTCOME_FILE"),
        "{env:?}"
    );
    let td = ecs_client
        .describe_task_definition()
        .task_definition(&family)
        .send()
        .await
        .expect("td");
    let secrets = td.task_definition().expect("td").container_definitions()[0].secrets();
    assert_eq!(secrets[0].value_from(), "/weir/e2e/db-password");
}
