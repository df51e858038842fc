//! The IAM policies of the ECS setup (`deploy/iam/ecs-*.json`), checked: the least-privilege
//! rules Weir promises, and `parliament` (from PyPI, installed by `scripts/test-iam.sh`) finds
//! nothing. The files are templates (`${region}`, `${account_id}`, …, as Terraform's
//! `templatefile` fills them); the test fills them with example values first.

use serde_json::Value;
use std::path::PathBuf;

const VALUES: [(&str, &str); 9] = [
    ("${region}", "us-east-1"),
    ("${account_id}", "123456789012"),
    ("${cluster}", "weir"),
    ("${task_role}", "weir-flow-task"),
    ("${execution_role}", "weir-flow-execution"),
    ("${log_group}", "/weir/flows"),
    ("${repository}", "weir-flows"),
    ("${ssm_prefix}", "/weir/dev"),
    ("${secrets_prefix}", "weir/dev"),
];

/// Actions that must never be granted on `*`.
const SCOPED: [&str; 7] = [
    "ecs:RunTask",
    "ecs:DescribeTasks",
    "ecs:StopTask",
    "ecs:ListTasks",
    "iam:PassRole",
    "logs:GetLogEvents",
    "ecs:RegisterTaskDefinition",
];

fn policy_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../deploy/iam")
}

fn filled(name: &str) -> String {
    let path = policy_dir().join(name);
    let mut text =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    for (k, v) in VALUES {
        text = text.replace(k, v);
    }
    assert!(
        !text.contains("${"),
        "{name}: a placeholder without an example value"
    );
    text
}

/// Every (actions, resources, condition) statement of a policy.
fn statements(text: &str) -> Vec<(Vec<String>, Vec<String>, Value)> {
    let doc: Value = serde_json::from_str(text).expect("policy is JSON");
    let list = |v: &Value| match v {
        Value::String(s) => vec![s.clone()],
        Value::Array(a) => a
            .iter()
            .filter_map(|x| x.as_str().map(String::from))
            .collect(),
        _ => vec![],
    };
    doc["Statement"]
        .as_array()
        .expect("Statement")
        .iter()
        .map(|s| {
            assert_eq!(s["Effect"], "Allow");
            (
                list(&s["Action"]),
                list(&s["Resource"]),
                s["Condition"].clone(),
            )
        })
        .collect()
}

fn actions(text: &str) -> Vec<String> {
    statements(text)
        .into_iter()
        .flat_map(|(a, _, _)| a)
        .collect()
}

#[test]
fn no_scoped_action_is_granted_on_every_resource() {
    for name in ["ecs-agent.json", "ecs-ci.json", "ecs-task-execution.json"] {
        for (acts, resources, _) in statements(&filled(name)) {
            assert!(
                acts.iter().all(|a| !a.contains('*')),
                "{name}: wildcard action in {acts:?}"
            );
            for a in &acts {
                if SCOPED.contains(&a.as_str()) {
                    assert!(
                        resources.iter().all(|r| r != "*"),
                        "{name}: {a} on Resource \"*\""
                    );
                }
            }
        }
    }
}

#[test]
fn the_agent_may_only_start_watch_and_stop_tasks_of_its_cluster() {
    let agent = filled("ecs-agent.json");
    let acts = actions(&agent);
    for forbidden in [
        "ecs:RegisterTaskDefinition",
        "ssm:",
        "secretsmanager:",
        "kms:",
    ] {
        assert!(
            acts.iter().all(|a| !a.starts_with(forbidden)),
            "the agent must not have {forbidden}: {acts:?}"
        );
    }
    let cluster = "arn:aws:ecs:us-east-1:123456789012:cluster/weir";
    for (acts, resources, cond) in statements(&agent) {
        for a in &acts {
            match a.as_str() {
                "ecs:RunTask" | "ecs:DescribeTasks" | "ecs:StopTask" | "ecs:ListTasks" => {
                    assert_eq!(
                        cond["ArnEquals"]["ecs:cluster"], cluster,
                        "{a} not conditioned on the cluster"
                    );
                }
                "iam:PassRole" => {
                    assert_eq!(
                        resources,
                        [
                            "arn:aws:iam::123456789012:role/weir-flow-task",
                            "arn:aws:iam::123456789012:role/weir-flow-execution"
                        ]
                    );
                    assert_eq!(
                        cond["StringEquals"]["iam:PassedToService"],
                        "ecs-tasks.amazonaws.com"
                    );
                }
                "logs:GetLogEvents" => assert_eq!(
                    resources,
                    ["arn:aws:logs:us-east-1:123456789012:log-group:/weir/flows:log-stream:*"]
                ),
                _ => {}
            }
        }
    }
    for needed in [
        "ecs:RunTask",
        "ecs:DescribeTasks",
        "ecs:StopTask",
        "ecs:ListTasks",
        "iam:PassRole",
        "logs:GetLogEvents",
    ] {
        assert!(acts.iter().any(|a| a == needed), "the agent lacks {needed}");
    }
    // CI registers; the execution role (used by ECS, not the agent) reads the secrets.
    assert!(
        actions(&filled("ecs-ci.json"))
            .iter()
            .any(|a| a == "ecs:RegisterTaskDefinition")
    );
    let exec = actions(&filled("ecs-task-execution.json"));
    assert!(exec.iter().any(|a| a == "ssm:GetParameters"));
    assert!(exec.iter().any(|a| a == "secretsmanager:GetSecretValue"));
}

#[test]
fn parliament_finds_nothing() {
    let Some(parliament) = std::env::var_os("WEIR_TEST_PARLIAMENT") else {
        assert!(
            std::env::var_os("CI").is_none(),
            "WEIR_TEST_PARLIAMENT is not set and CI is: run `eval \"$(scripts/test-iam.sh)\"` (scripts/test.sh does)"
        );
        eprintln!("skipped: WEIR_TEST_PARLIAMENT is not set (eval \"$(scripts/test-iam.sh)\")");
        return;
    };
    for name in ["ecs-agent.json", "ecs-ci.json", "ecs-task-execution.json"] {
        // parliament reads a policy from stdin (its --file refuses to run without a terminal).
        let mut child = std::process::Command::new(&parliament)
            .arg("--json")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("run parliament");
        use std::io::Write;
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(filled(name).as_bytes())
            .expect("write policy");
        let out = child.wait_with_output().expect("parliament output");
        let findings = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && findings.trim().is_empty(),
            "parliament on {name}: {findings}{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // And it does catch a mismatch (so an empty answer means something).
    let mut child = std::process::Command::new(&parliament)
        .arg("--json")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("run parliament");
    use std::io::Write;
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(br#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ecs:RunTask","Resource":"arn:aws:ecs:us-east-1:123456789012:cluster/weir"}]}"#)
        .expect("write");
    let out = child.wait_with_output().expect("output");
    assert!(String::from_utf8_lossy(&out.stdout).contains("RESOURCE_MISMATCH"));
}
