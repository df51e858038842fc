//! Shared by the ECS tests: fresh clusters and task specs, launcher options in moto's network,
//! and moto's task lifecycle switch (moto's endpoint, SDK config, network and lifecycle lock
//! are `weir_testkit::moto`'s).
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
use weir_testkit::moto;
pub use weir_testkit::moto::TaskLifecycle;

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

/// Launcher options for `cluster` with moto's network, polling fast.
pub async fn options(endpoint: &str, cluster: &str) -> EcsOptions {
    let (subnet, sg) = moto::default_network(endpoint).expect("moto's default VPC");
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
    _held: moto::EcsLifecycle,
    endpoint: String,
}

impl MotoEcs {
    /// Takes the lock and sets the lifecycle.
    pub async fn lock(endpoint: &str, lifecycle: TaskLifecycle) -> MotoEcs {
        let at = endpoint.to_string();
        let held = tokio::task::spawn_blocking(move || moto::EcsLifecycle::hold(&at, lifecycle))
            .await
            .expect("lock task")
            .unwrap_or_else(|e| panic!("moto's ECS task lifecycle: {e}"));
        MotoEcs {
            _held: held,
            endpoint: endpoint.to_string(),
        }
    }

    /// The endpoint.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }
}
