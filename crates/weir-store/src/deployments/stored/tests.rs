use super::{VERSION, decode, encode};
use crate::Error;
use chrono::{TimeZone, Utc};
use serde_json::json;
use std::collections::BTreeMap;
use weir_core::api::{DeploymentSpec, ScheduleSpec};
use weir_core::infrastructure::{DockerInfrastructure, EcsInfrastructure, Infrastructure};
use weir_core::limits::OnLimit;
use weir_core::schedule::Catchup;

/// A spec with every field away from its default.
fn full() -> DeploymentSpec {
    let mut docker = DockerInfrastructure::new("flows:dev");
    docker.cpu = Some(0.5);
    docker.memory = Some("512Mi".into());
    docker.network = Some("bridge".into());
    docker.env = BTreeMap::from([("MODE".into(), "fast".into())]);
    docker.volumes = vec!["/data:/data:ro".into()];
    docker.pull = weir_core::infrastructure::PullPolicy::Always;
    docker.init = false;
    DeploymentSpec {
        flow: "etl".into(),
        description: "nightly load".into(),
        command: vec!["example-flows".into()],
        plain_command: true,
        infrastructure: Infrastructure::Docker(docker),
        work_queue: "fast".into(),
        schedules: vec![
            ScheduleSpec {
                cron: Some("0 2 * * *".into()),
                timezone: Some("Europe/Berlin".into()),
                ..Default::default()
            },
            ScheduleSpec {
                interval: Some("15m".into()),
                anchor: Some(
                    Utc.timestamp_opt(1_700_000_000, 0)
                        .single()
                        .expect("a time"),
                ),
                ..Default::default()
            },
        ],
        catchup: Catchup::All,
        parameters: json!({"day": "2026-01-01"})
            .as_object()
            .cloned()
            .expect("an object"),
        parameter_schema: Some(json!({"type": "object"})),
        secrets: BTreeMap::from([("TOKEN".into(), "ssm:/team/token".into())]),
        env: BTreeMap::from([("REGION".into(), "eu".into())]),
        retries: 2,
        retry_delay_s: 30,
        tags: vec!["nightly".into()],
        concurrency: Some(3),
        on_limit: OnLimit::Skip,
        result_storage: Some("s3://bucket/results".into()),
    }
}

/// Row names for errors.
fn row() -> String {
    "deployment dev/etl".into()
}

/// The stored text of a version 1 spec is pinned: changing it needs a new version.
#[test]
fn version_1_is_pinned() {
    let text = encode(&full());
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&text).expect("JSON"),
        json!({
            "v": 1,
            "flow": "etl",
            "description": "nightly load",
            "command": ["example-flows"],
            "plain_command": true,
            "infrastructure": {
                "type": "docker", "image": "flows:dev", "cpu": 0.5, "memory": "512Mi",
                "network": "bridge", "env": {"MODE": "fast"}, "volumes": ["/data:/data:ro"],
                "pull": "always", "init": false
            },
            "work_queue": "fast",
            "schedules": [
                {"cron": "0 2 * * *", "timezone": "Europe/Berlin"},
                {"interval": "15m", "anchor": "2023-11-14T22:13:20Z"}
            ],
            "catchup": "all",
            "parameters": {"day": "2026-01-01"},
            "parameter_schema": {"type": "object"},
            "secrets": {"TOKEN": "ssm:/team/token"},
            "env": {"REGION": "eu"},
            "retries": 2,
            "retry_delay_s": 30,
            "tags": ["nightly"],
            "concurrency": 3,
            "on_limit": "skip",
            "result_storage": "s3://bucket/results"
        })
    );
    assert!(text.starts_with("{\"v\":1,"), "{text}");
    assert_eq!(
        decode(&text, "deployments.spec", row).expect("decodes"),
        full()
    );
}

/// A row written before versions (the wire spec's JSON, no `v`) reads as version 1.
#[test]
fn a_row_without_a_version_is_version_1() {
    let old = r#"{"flow":"etl","description":"nightly load","command":["example-flows"],
        "plain_command":true,"infrastructure":{"type":"docker","image":"flows:dev","cpu":0.5,
        "memory":"512Mi","network":"bridge","env":{"MODE":"fast"},"volumes":["/data:/data:ro"],
        "pull":"always","init":false},"work_queue":"fast","schedules":[{"cron":"0 2 * * *",
        "timezone":"Europe/Berlin"},{"interval":"15m","anchor":"2023-11-14T22:13:20Z"}],
        "catchup":"all","parameters":{"day":"2026-01-01"},"parameter_schema":{"type":"object"},
        "secrets":{"TOKEN":"ssm:/team/token"},"env":{"REGION":"eu"},"retries":2,
        "retry_delay_s":30,"tags":["nightly"],"concurrency":3,"on_limit":"skip",
        "result_storage":"s3://bucket/results"}"#;
    assert_eq!(
        decode(old, "deployments.spec", row).expect("decodes"),
        full()
    );
}

/// Absent keys take their defaults: a spec needs only its flow.
#[test]
fn absent_keys_take_their_defaults() {
    let spec = decode(r#"{"flow":"etl"}"#, "deployments.spec", row).expect("decodes");
    assert_eq!(spec.work_queue, "default");
    assert_eq!(spec.infrastructure, Infrastructure::Process);
    assert_eq!(spec.catchup, Catchup::Latest);
    let docker = r#"{"v":1,"flow":"etl","infrastructure":{"type":"docker","image":"x"}}"#;
    let spec = decode(docker, "deployments.spec", row).expect("decodes");
    assert_eq!(
        spec.infrastructure,
        Infrastructure::Docker(DockerInfrastructure::new("x"))
    );
}

/// Keys this Weir does not know are ignored, at every level.
#[test]
fn unknown_keys_are_ignored() {
    let text = r#"{"v":1,"flow":"etl","colour":"blue","schedules":[{"cron":"* * * * *","jitter":"5s"}],
        "infrastructure":{"type":"ecs","image":"flows:1","gpu":true}}"#;
    let spec = decode(text, "deployments.spec", row).expect("decodes");
    assert_eq!(spec.schedules[0].cron.as_deref(), Some("* * * * *"));
    let Infrastructure::Ecs(EcsInfrastructure { image, .. }) = spec.infrastructure else {
        panic!("ecs infrastructure expected");
    };
    assert_eq!(image, "flows:1");
}

/// A newer version is refused, naming the row and what to do.
#[test]
fn a_newer_version_is_refused_naming_the_row() {
    let err =
        decode(r#"{"v":99,"flow_name":"etl"}"#, "deployments.spec", row).expect_err("refused");
    let Error::NewerFormat { row, found, known } = &err else {
        panic!("a newer format expected, got {err:?}");
    };
    assert_eq!(row, "deployment dev/etl (deployments.spec)");
    assert_eq!((*found, *known), (99, VERSION));
    let message = err.to_string();
    assert!(message.contains("upgrade Weir"), "{message}");
}

/// What no Weir writes is a corrupt row naming the row: a bad version, a missing flow, not
/// JSON.
#[test]
fn malformed_rows_are_corrupt() {
    for text in [
        r#"{"v":0,"flow":"etl"}"#,
        r#"{"v":"1","flow":"etl"}"#,
        r#"{"v":1}"#,
        r#"{"flow":"etl","catchup":"sometimes"}"#,
        "not json",
    ] {
        match decode(text, "deployment_versions.spec", row) {
            Err(Error::Corrupt { column, reason }) => {
                assert_eq!(column, "deployment_versions.spec");
                assert!(reason.starts_with("deployment dev/etl: "), "{reason}");
            }
            other => panic!("{text}: a corrupt row expected, got {other:?}"),
        }
    }
}
