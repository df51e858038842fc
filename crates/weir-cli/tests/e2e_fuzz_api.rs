//! The API against its own description: schemathesis (from PyPI, installed by
//! `scripts/test-schemathesis.sh`) fuzzes a real `weir server` from the `/api/openapi.json`
//! it serves, authenticated with the server's admin key, with every one of its default
//! checks: no 5xx, every status and body as documented, schema-valid requests accepted,
//! schema-invalid ones rejected, 405 for undocumented methods, 401 without a key, and
//! stateful sequences that follow the links between operations. It must find nothing.
//!
//! Bounded: `--max-examples` (default 10, `WEIR_FUZZ_MAX_EXAMPLES`) and `--max-time`
//! (default 120 s, `WEIR_FUZZ_MAX_TIME_S`); a fixed seed (`WEIR_FUZZ_SEED`, default 1) keeps
//! CI reproducible. `tests/fuzz/schemathesis.toml` and `tests/fuzz/weir_fuzz_hooks.py` hold
//! the few settings it needs, each with its reason.

mod common;

use common::{ServerOptions, Weir};
use std::path::PathBuf;
use std::process::Command;
use weir_core::api::{CreateFlowRun, DeploymentSpec, ScheduleSpec};

/// The fuzzer's executable: `WEIR_TEST_SCHEMATHESIS`, or the one `scripts/test-schemathesis.sh`
/// installs (run here when the variable is unset).
fn schemathesis() -> PathBuf {
    if let Ok(st) = std::env::var("WEIR_TEST_SCHEMATHESIS") {
        return PathBuf::from(st);
    }
    let script =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scripts/test-schemathesis.sh");
    let out = Command::new(&script)
        .output()
        .unwrap_or_else(|e| panic!("run {}: {e}", script.display()));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{} failed:\n{}",
        script.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let path = stdout
        .lines()
        .find_map(|l| l.strip_prefix("export WEIR_TEST_SCHEMATHESIS="))
        .unwrap_or_else(|| panic!("no export line from {}: {stdout}", script.display()));
    PathBuf::from(path.trim())
}

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_string())
}

/// Something to find: a project with a scheduled and a parameterised deployment, runs of
/// them, and an agent (the fuzzer adds its own through the links it follows).
fn seed_something_to_find(w: &Weir) {
    let every = ScheduleSpec {
        interval: Some("1h".into()),
        ..Default::default()
    };
    let schema = serde_json::json!({
        "type": "object",
        "properties": {"n": {"type": "integer", "minimum": 1}},
    });
    for (name, spec) in [
        (
            "etl",
            DeploymentSpec {
                flow: "etl".into(),
                work_queue: "default".into(),
                schedules: vec![every],
                ..Default::default()
            },
        ),
        (
            "chain",
            DeploymentSpec {
                flow: "chain".into(),
                work_queue: "default".into(),
                parameter_schema: Some(schema),
                ..Default::default()
            },
        ),
    ] {
        w.block_on(w.client.upsert_deployment("dev", name, &spec, false))
            .unwrap_or_else(|e| panic!("deploy dev/{name}: {e}"));
        w.block_on(w.client.create_flow_run(&CreateFlowRun {
            project: Some("dev".into()),
            deployment: Some(name.into()),
            ..Default::default()
        }))
        .unwrap_or_else(|e| panic!("run dev/{name}: {e}"));
    }
}

#[test]
fn the_api_survives_its_own_fuzzer() {
    let st = schemathesis();
    let w = Weir::start(ServerOptions::default());
    seed_something_to_find(&w);
    let key_id = weir_core::auth::parse_key(&w.admin_key)
        .map(|(id, _)| id.to_string())
        .expect("the bootstrap key is well formed");

    let fuzz = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz");
    let out = Command::new(&st)
        .arg("--config-file")
        .arg(fuzz.join("schemathesis.toml"))
        .arg("run")
        .arg(format!("{}/api/openapi.json", w.url))
        .args([
            "--header",
            &format!("Authorization: Bearer {}", w.admin_key),
        ])
        .args(["--max-examples", &env_or("WEIR_FUZZ_MAX_EXAMPLES", "10")])
        .args(["--max-time", &env_or("WEIR_FUZZ_MAX_TIME_S", "120")])
        .args(["--seed", &env_or("WEIR_FUZZ_SEED", "1")])
        .args(["--workers", "2", "--request-timeout", "15", "--no-color"])
        .args(["--generation-database", "none"])
        .env("SCHEMATHESIS_HOOKS", "weir_fuzz_hooks")
        .env("PYTHONPATH", &fuzz)
        .env("WEIR_FUZZ_KEY_ID", &key_id)
        .current_dir(w.sb.root())
        .output()
        .unwrap_or_else(|e| panic!("run {}: {e}", st.display()));
    let report = String::from_utf8_lossy(&out.stdout).into_owned();
    let closing = report
        .lines()
        .rev()
        .find(|l| l.starts_with('=') && l.contains(" in "))
        .unwrap_or("no closing line")
        .trim_matches(|c| c == '=' || c == ' ')
        .to_string();
    assert!(
        out.status.success(),
        "schemathesis found problems ({closing}):\n{report}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The whole API was under test, not a part the fuzzer could not load.
    let operations = report
        .lines()
        .find_map(|l| l.trim().strip_prefix("Tested:"))
        .and_then(|n| n.trim().parse::<usize>().ok())
        .unwrap_or(0);
    assert!(
        operations >= 30,
        "only {operations} operations tested:\n{report}"
    );
    assert!(!report.contains("Failures:"), "{report}");
    println!(
        "e2e_fuzz_api: schemathesis tested {operations} operations with zero findings ({closing})"
    );
}
