//! Shared by the ECS tests: moto's endpoint and SDK config, its EC2 network, and its task
//! lifecycle switch.
//!
//! moto keeps one lifecycle setting for all ECS tasks (`ecs::task`), and nextest runs every
//! test in its own process: tests that depend on the setting hold [`MotoEcs`], a file lock
//! across processes, for their whole run.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::time::Duration;
use uuid::Uuid;
use weir_launcher_ecs::aws_sdk_ecs as ecs;
use weir_launcher_ecs::{EcsOptions, TaskSpec};
use weir_secrets_aws::aws_config::{Region, SdkConfig};

/// Environment variable naming the endpoint (set by `scripts/test-moto.sh`).
const ENDPOINT_ENV: &str = "WEIR_TEST_AWS_ENDPOINT";

/// The endpoint, or `None` (after printing why) when the test should be skipped — except
/// under CI, where a missing endpoint fails.
pub fn endpoint() -> Option<String> {
    match std::env::var(ENDPOINT_ENV) {
        Ok(url) if !url.trim().is_empty() => Some(url.trim().to_string()),
        _ if std::env::var_os("CI").is_some() => panic!(
            "{ENDPOINT_ENV} is not set and CI is: start moto with `eval \"$(scripts/test-moto.sh)\"` (scripts/test.sh does)"
        ),
        _ => {
            eprintln!(
                "skipped: {ENDPOINT_ENV} is not set (start moto with `eval \"$(scripts/test-moto.sh)\"`)"
            );
            None
        }
    }
}

/// The production SDK config, pointed at `endpoint` with moto's dummy credentials.
pub async fn config(endpoint: &str) -> SdkConfig {
    weir_secrets_aws::config_loader()
        .endpoint_url(endpoint)
        .region(Region::new("us-east-1"))
        .credentials_provider(ecs::config::Credentials::new(
            "test",
            "test",
            None,
            None,
            "weir-tests",
        ))
        .load()
        .await
}

/// A name no other test uses.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", &Uuid::now_v7().simple().to_string()[20..])
}

/// Creates a fresh cluster and returns its name.
pub async fn cluster(ecs: &ecs::Client) -> String {
    let name = unique("weir-test");
    ecs.create_cluster()
        .cluster_name(&name)
        .send()
        .await
        .expect("create cluster");
    name
}

/// A plain-HTTP client for moto's own API (reqwest is built without a crypto provider:
/// install ring, the workspace's one).
pub fn http() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

/// An EC2 query call to moto (the EC2 SDK is too heavy to build for two calls); moto does
/// not check signatures, only the service named in the credential scope.
async fn ec2(endpoint: &str, action: &str) -> String {
    http()
        .post(endpoint)
        .header(
            "authorization",
            "AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/ec2/aws4_request, SignedHeaders=host, Signature=0",
        )
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("Action={action}&Version=2016-11-15"))
        .send()
        .await
        .expect("EC2 call to moto")
        .text()
        .await
        .expect("EC2 answer")
}

fn first_xml(text: &str, tag: &str) -> String {
    let open = format!("<{tag}>");
    let start = text.find(&open).map(|i| i + open.len()).expect(tag);
    let end = text[start..].find('<').expect(tag) + start;
    text[start..end].to_string()
}

/// A subnet and a security group of moto's default VPC (FARGATE tasks need both).
pub async fn network(endpoint: &str) -> (String, String) {
    let subnet = first_xml(&ec2(endpoint, "DescribeSubnets").await, "subnetId");
    let sg = first_xml(&ec2(endpoint, "DescribeSecurityGroups").await, "groupId");
    (subnet, sg)
}

/// Launcher options for `cluster` with moto's network, polling fast.
pub async fn options(endpoint: &str, cluster: &str) -> EcsOptions {
    let (subnet, sg) = network(endpoint).await;
    EcsOptions {
        cluster: cluster.to_string(),
        subnets: vec![subnet],
        security_groups: vec![sg],
        assign_public_ip: false,
        start_deadline: Duration::from_secs(60),
        poll_every: Duration::from_millis(50),
        capacity_backoff: Duration::from_millis(50),
    }
}

/// A task spec for a fresh deployment of project `test`.
pub fn spec(deployment: &str) -> TaskSpec {
    TaskSpec {
        project: "test".into(),
        deployment: deployment.to_string(),
        image: "weir-example-flows:dev".into(),
        cpu: 256,
        memory_mib: 512,
        execution_role_arn: "arn:aws:iam::123456789012:role/weir-flow-execution".into(),
        task_role_arn: Some("arn:aws:iam::123456789012:role/weir-flow-task".into()),
        log: None,
        secrets: BTreeMap::new(),
    }
}

/// moto's task lifecycle, held for the life of the value (a lock across test processes).
pub struct MotoEcs {
    _lock: std::fs::File,
    endpoint: String,
}

/// How moto moves ECS tasks.
pub enum Lifecycle {
    /// One step per DescribeTasks: RUNNING → … → STOPPED after four (moto's default).
    StepPerDescribe,
    /// RUNNING until StopTask.
    Frozen,
}

impl MotoEcs {
    /// Takes the lock and sets the lifecycle.
    pub async fn lock(endpoint: &str, lifecycle: Lifecycle) -> MotoEcs {
        let path = std::env::temp_dir().join("weir-test-moto-ecs.lock");
        let file = std::fs::File::create(&path).expect("lock file");
        let file = tokio::task::spawn_blocking(move || {
            file.lock().expect("lock");
            file
        })
        .await
        .expect("lock task");
        let times: u64 = match lifecycle {
            Lifecycle::StepPerDescribe => 1,
            Lifecycle::Frozen => 1_000_000_000,
        };
        set_transition(endpoint, times).await;
        MotoEcs {
            _lock: file,
            endpoint: endpoint.to_string(),
        }
    }

    /// The endpoint.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }
}

/// Sets moto's `ecs::task` transition to "manual, one step per `times` describes".
pub async fn set_transition(endpoint: &str, times: u64) {
    let body = serde_json::json!({
        "model_name": "ecs::task",
        "transition": {"progression": "manual", "times": times},
    });
    let r = http()
        .post(format!("{endpoint}/moto-api/state-manager/set-transition"))
        .json(&body)
        .send()
        .await
        .expect("set-transition");
    assert!(r.status().is_success(), "set-transition: {}", r.status());
}
