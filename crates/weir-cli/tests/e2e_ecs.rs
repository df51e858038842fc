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
use weir_secrets_aws::aws_config::Region;

const ENDPOINT_ENV: &str = "WEIR_TEST_AWS_ENDPOINT";

fn endpoint() -> Option<String> {
    match std::env::var(ENDPOINT_ENV) {
        Ok(url) if !url.trim().is_empty() => Some(url.trim().to_string()),
        _ if std::env::var_os("CI").is_some() => panic!(
            "{ENDPOINT_ENV} is not set and CI is: start moto with `eval \"$(scripts/test-moto.sh)\"`"
        ),
        _ => {
            eprintln!("skipped: {ENDPOINT_ENV} is not set");
            None
        }
    }
}

fn http() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

/// First `<tag>` value of an EC2 query answer from moto.
async fn ec2_first(endpoint: &str, action: &str, tag: &str) -> String {
    let text = http()
        .post(endpoint)
        .header(
            "authorization",
            "AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/ec2/aws4_request, SignedHeaders=host, Signature=0",
        )
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("Action={action}&Version=2016-11-15"))
        .send()
        .await
        .expect("EC2 call")
        .text()
        .await
        .expect("EC2 answer");
    let open = format!("<{tag}>");
    let start = text.find(&open).expect(tag) + open.len();
    let end = text[start..].find('<').expect(tag) + start;
    text[start..end].to_string()
}

#[test]
fn an_ecs_deployment_runs_from_weir_deploy_to_completed() {
    let Some(endpoint) = endpoint() else { return };
    let mut w = Weir::start(ServerOptions::default());
    let suffix = &Uuid::now_v7().simple().to_string()[20..];
    let cluster = format!("weir-e2e-{suffix}");
    let deployment = format!("hello-{suffix}");
    // moto's task lifecycle is one setting for all tests: hold the ECS tests' lock and use
    // its default (one step per DescribeTasks, STOPPED after four).
    let lock = std::fs::File::create(std::env::temp_dir().join("weir-test-moto-ecs.lock"))
        .expect("lock file");
    lock.lock().expect("lock");
    let (subnet, sg, ecs_client) = w.block_on(async {
        let r = http()
            .post(format!("{endpoint}/moto-api/state-manager/set-transition"))
            .json(&serde_json::json!({"model_name": "ecs::task", "transition": {"progression": "manual", "times": 1}}))
            .send()
            .await
            .expect("set-transition");
        assert!(r.status().is_success());
        let config = weir_secrets_aws::config_loader()
            .endpoint_url(&endpoint)
            .region(Region::new("us-east-1"))
            .credentials_provider(ecs::config::Credentials::new("test", "test", None, None, "t"))
            .load()
            .await;
        let client = ecs::Client::new(&config);
        client.create_cluster().cluster_name(&cluster).send().await.expect("cluster");
        (
            ec2_first(&endpoint, "DescribeSubnets", "subnetId").await,
            ec2_first(&endpoint, "DescribeSecurityGroups", "groupId").await,
            client,
        )
    });
    let aws_env = [
        ("AWS_ENDPOINT_URL", endpoint.as_str()),
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
        ("AWS_REGION", "us-east-1"),
        ("AWS_EC2_METADATA_DISABLED", "true"),
    ];
    let toml = format!(
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
    );
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

    w.block_on(async {
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
            .cluster(&cluster)
            .send()
            .await
            .expect("tasks");
        assert_eq!(arns.task_arns().len(), 1, "one task for one run");
        let described = ecs_client
            .describe_tasks()
            .cluster(&cluster)
            .set_tasks(Some(arns.task_arns().to_vec()))
            .send()
            .await
            .expect("describe");
        let task = &described.tasks()[0];
        assert_eq!(
            task.started_by(),
            Some(weir_launcher_ecs::started_by(run.id, 1).as_str())
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
    });
}
