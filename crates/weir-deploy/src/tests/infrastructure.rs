//! Tests of the `infrastructure` table: types, keys per type, `[defaults]` inheritance, the
//! plan diff.

use super::{errors, one_error, with};
use crate::{diff, parse};
use std::path::Path;
use weir_core::infrastructure::{
    DockerInfrastructure, EcsInfrastructure, Infrastructure, PullPolicy,
};

fn infra(text: &str, deployment: usize) -> Infrastructure {
    let file = parse(Path::new("weir.toml"), text).expect("valid");
    file.deployments[deployment].spec.infrastructure.clone()
}

#[test]
fn absent_means_process() {
    assert_eq!(infra(&with(""), 0), Infrastructure::Process);
    assert_eq!(
        infra(&with("infrastructure = { type = \"process\" }"), 0),
        Infrastructure::Process
    );
}

#[test]
fn docker_with_every_setting() {
    let text = with(
        "[deployments.etl.infrastructure]\ntype = \"docker\"\nimage = \"flows:dev\"\ncpu = 0.5\n\
         memory = \"512Mi\"\nnetwork = \"host\"\nenv = { MODE = \"fast\", N = 3 }\n\
         volumes = [\"/data:/in:ro\"]\npull = \"never\"\ninit = false\n",
    );
    let mut expected = DockerInfrastructure::new("flows:dev");
    expected.cpu = Some(0.5);
    expected.memory = Some("512Mi".into());
    expected.network = Some("host".into());
    expected.env = [("MODE", "fast"), ("N", "3")]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    expected.volumes = vec!["/data:/in:ro".into()];
    expected.pull = PullPolicy::Never;
    expected.init = false;
    assert_eq!(infra(&text, 0), Infrastructure::Docker(expected));
}

#[test]
fn defaults_are_inherited_key_by_key_and_a_new_type_replaces_them() {
    let text = "[defaults.infrastructure]\ntype = \"docker\"\nimage = \"flows:dev\"\n\
                memory = \"256Mi\"\nenv = { A = \"1\" }\n\n\
                [deployments.a]\ncommand = [\"f\"]\n\n\
                [deployments.b]\ncommand = [\"f\"]\n\
                infrastructure = { memory = \"1Gi\", env = { B = \"2\" } }\n\n\
                [deployments.c]\ncommand = [\"f\"]\ninfrastructure = { type = \"process\" }\n\n\
                [deployments.d]\ncommand = [\"f\"]\n\
                infrastructure = { type = \"ecs\", image = \"x:1\", cpu = 1, \
                execution_role_arn = \"arn:aws:iam::1:role/e\", capacity = \"FARGATE_SPOT\" }\n";
    let mut a = DockerInfrastructure::new("flows:dev");
    a.memory = Some("256Mi".into());
    a.env.insert("A".into(), "1".into());
    assert_eq!(infra(text, 0), Infrastructure::Docker(a.clone()));
    let mut b = a;
    b.memory = Some("1Gi".into());
    b.env.insert("B".into(), "2".into());
    assert_eq!(infra(text, 1), Infrastructure::Docker(b));
    assert_eq!(infra(text, 2), Infrastructure::Process);
    assert_eq!(
        infra(text, 3),
        Infrastructure::Ecs(EcsInfrastructure {
            image: "x:1".into(),
            cpu: Some(1.0),
            memory: None,
            execution_role_arn: Some("arn:aws:iam::1:role/e".into()),
            task_role_arn: None,
            log_group: None,
            capacity: Some("FARGATE_SPOT".into()),
        })
    );
}

#[test]
fn an_unknown_ecs_capacity_is_refused() {
    let e = one_error(&with(
        "infrastructure = { type = \"ecs\", image = \"x\", capacity = \"SPOT\" }",
    ));
    assert!(
        e.contains("expected \"FARGATE\" or \"FARGATE_SPOT\""),
        "{e}"
    );
    let e = one_error(&with(
        "infrastructure = { type = \"docker\", image = \"x\", log_group = \"/g\" }",
    ));
    assert!(e.contains("log_group"), "{e}");
}

#[test]
fn bad_tables_are_reported_with_positions() {
    assert_eq!(
        one_error(&with(
            "infrastructure = { type = \"docker\", imag = \"x\" }"
        )),
        "weir.toml:4:37: unknown key \"imag\" in the infrastructure in deployment \"etl\" (did \
         you mean \"image\"?)"
    );
    assert_eq!(
        one_error(&with("infrastructure = { type = \"k8s\" }")),
        "weir.toml:4:27: key \"type\" in the infrastructure in deployment \"etl\": unknown \
         infrastructure type \"k8s\": expected process, docker or ecs"
    );
    assert_eq!(
        one_error(&with("infrastructure = { type = \"docker\" }")),
        "weir.toml:4:18: the docker infrastructure of deployment \"etl\" needs an image, e.g. \
         image = \"weir-example-flows:dev\""
    );
    assert_eq!(
        one_error(&with("infrastructure = { image = \"x\" }")),
        "weir.toml:4:18: the infrastructure of deployment \"etl\" has no type: add type = \
         \"process\", \"docker\" or \"ecs\" (here or in [defaults.infrastructure])"
    );
    assert_eq!(
        one_error(&with(
            "infrastructure = { type = \"process\", memory = \"1Gi\" }"
        )),
        "weir.toml:4:38: key \"memory\" is not a setting of process infrastructure (deployment \
         \"etl\"; type \"process\" takes no other keys)"
    );
    assert_eq!(
        one_error(&with(
            "infrastructure = { type = \"ecs\", image = \"x\", volumes = [] }"
        )),
        "weir.toml:4:47: key \"volumes\" is not a setting of ecs infrastructure (deployment \
         \"etl\"; type \"ecs\" takes image, cpu, memory, execution_role_arn, task_role_arn, log_group, \
         capacity)"
    );
    assert_eq!(
        one_error(&with("image = \"x\"")),
        "weir.toml:4:1: key \"image\" in deployment \"etl\" belongs in the infrastructure \
         table: infrastructure = { type = \"docker\", image = \"…\" }"
    );
}

#[test]
fn bad_values_are_each_reported() {
    let e = errors(&with(
        "infrastructure = { type = \"docker\", image = \"x\", memory = \"512MB\", cpu = 0, \
         pull = \"sometimes\", init = \"yes\", volumes = [\"/a\"], env = { WEIR_X = \"1\" } }",
    ));
    let text = e.join("\n");
    assert_eq!(e.len(), 6, "{text}");
    for needle in [
        "unknown unit \"MB\"",
        "must be a number of CPUs above 0",
        "unknown pull policy \"sometimes\"",
        "key \"init\" in the infrastructure in deployment \"etl\": expected true or false",
        "invalid volume \"/a\"",
        "reserved for Weir itself",
    ] {
        assert!(text.contains(needle), "{needle} missing from:\n{text}");
    }
}

#[test]
fn the_plan_shows_infrastructure_changes() {
    let old = parse(
        Path::new("weir.toml"),
        &with("infrastructure = { type = \"docker\", image = \"flows:1\" }"),
    )
    .expect("valid");
    let new = parse(
        Path::new("weir.toml"),
        &with("infrastructure = { type = \"docker\", image = \"flows:2\", memory = \"1Gi\" }"),
    )
    .expect("valid");
    let lines = diff(&old.deployments[0].spec, &new.deployments[0].spec);
    assert_eq!(
        lines,
        [
            "  infrastructure.image: \"flows:1\" → \"flows:2\"",
            "  + infrastructure.memory: \"1Gi\""
        ]
    );
    let process = parse(Path::new("weir.toml"), &with("")).expect("valid");
    let lines = diff(&process.deployments[0].spec, &old.deployments[0].spec);
    assert_eq!(
        lines,
        ["  + infrastructure: {\"image\":\"flows:1\",\"type\":\"docker\"}"]
    );
}
