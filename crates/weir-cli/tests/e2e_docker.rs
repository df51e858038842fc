//! End to end: infrastructure per deployment, agents that launch only some kinds, and the
//! Docker launcher on the machine's real Docker engine.

mod common;

use common::{ServerOptions, Weir};
use std::time::Duration;
use weir_core::StateKind;
use weir_core::api::Parameters;

/// A docker deployment's run waits for an agent that can launch containers: a process-only
/// agent never takes it, `weir runs show` says why, and `weir deployments show` and the plan
/// show the infrastructure.
#[test]
fn runs_wait_for_an_agent_with_their_launcher() {
    let mut w = Weir::start(ServerOptions::default());
    let file = r#"
project = "dev"

[deployments.hello-docker]
command = ["/weir", "exec", "--", "/bin/echo", "hello"]
plain = true
infrastructure = { type = "docker", image = "weir-test-none:dev", memory = "64Mi", pull = "never" }
"#;
    w.deploy(file);
    let home = w.sb.path("agent-process");
    w.start_agent_with(&home, 2, &["--launchers", "process"], &[]);
    let run = w.create_run("dev", "hello-docker", Parameters::new());
    let show = common::wait_until(
        "runs show to explain the wait",
        Duration::from_secs(20),
        || {
            let out = w.weir(&["runs", "show", &run.id.to_string()]).ok();
            if out.stdout.contains("can launch docker runs") {
                Ok(out)
            } else {
                Err(out.stdout)
            }
        },
    );
    assert!(
        show.stdout.contains("agent-0 (process)") && show.stdout.contains("--launchers docker"),
        "{show:#?}"
    );
    assert_eq!(w.detail(run.id).run.state, StateKind::Scheduled);

    let shown = w.weir(&["deployments", "show", "dev/hello-docker"]).ok();
    for needle in [
        "infrastructure: docker",
        "image:        weir-test-none:dev",
        "memory:       64Mi",
        "pull:         never",
        "plain command",
    ] {
        assert!(shown.stdout.contains(needle), "{needle:?} in {shown:#?}");
    }
    let json = w
        .weir(&["--json", "deployments", "show", "dev/hello-docker"])
        .ok();
    let d: weir_core::api::Deployment = serde_json::from_str(&json.stdout).expect("JSON");
    assert_eq!(d.spec.infrastructure.image(), Some("weir-test-none:dev"));

    w.write_toml(&file.replace("64Mi", "128Mi"));
    let plan = w.weir(&["deploy", "--plan"]).ok();
    assert!(
        plan.stdout
            .contains("infrastructure.memory: \"64Mi\" → \"128Mi\""),
        "{plan:#?}"
    );
}

/// Whether a Docker engine answers; when none does, the container tests say so and skip.
fn engine() -> bool {
    let ok = std::process::Command::new("docker")
        .args(["version", "--format", "{{.Server.APIVersion}}"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        eprintln!("SKIPPED: no Docker engine answers (`docker version` failed)");
    }
    ok
}

/// The test images, `weir-test-weir-example-flows:dev` (and `weir-test-weir:dev`), built once
/// per test binary from the binaries under test by scripts/build-images.sh.
fn test_image() -> &'static str {
    static BUILT: std::sync::OnceLock<()> = std::sync::OnceLock::new();
    BUILT.get_or_init(|| {
        let dir = common::weir_bin().parent().expect("bin dir").to_path_buf();
        let script =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/build-images.sh");
        let out = std::process::Command::new(script)
            .args([
                "--from",
                &dir.display().to_string(),
                "--prefix",
                "weir-test",
            ])
            .output()
            .expect("run build-images.sh");
        assert!(
            out.status.success(),
            "build-images.sh: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    });
    "weir-test-weir-example-flows:dev"
}

/// Containers labelled with run `id` that still exist.
fn containers_of(id: uuid::Uuid) -> String {
    let out = std::process::Command::new("docker")
        .args([
            "ps",
            "-aq",
            "--filter",
            &format!("label=dev.weir.run-id={id}"),
        ])
        .output()
        .expect("docker ps");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn docker_weir() -> Option<Weir> {
    if !engine() {
        return None;
    }
    let image = test_image();
    let mut w = Weir::start(ServerOptions::default());
    w.deploy(&format!(
        r#"
project = "dev"

[defaults]
command = ["/usr/local/bin/example-flows"]
infrastructure = {{ type = "docker", image = "{image}", memory = "128Mi", pull = "never" }}

[deployments.etl-docker]
flow = "etl"
parameters = {{ rows = 20 }}

[deployments.slow-docker]
flow = "slow"
parameters = {{ seconds = 30 }}

[deployments.exit-docker]
command = ["/usr/local/bin/example-flows", "no-such-subcommand"]
plain = true

[deployments.missing-image]
plain = true
infrastructure = {{ type = "docker", image = "weir-test-absent:dev", pull = "never" }}
"#
    ));
    let home = w.sb.path("agent-docker");
    w.start_agent_with(&home, 4, &["--launchers", "process,docker"], &[]);
    Some(w)
}

/// A flow in a container completes with its logs in order; a plain command's exit code
/// decides its state; a missing image fails before anything runs; cancel ends Cancelled
/// within the grace (2 s) + 2 s; no container is left behind.
#[test]
fn container_runs_complete_fail_and_cancel() {
    let Some(w) = docker_weir() else { return };
    let ok = w.create_run("dev", "etl-docker", Parameters::new());
    let d = w.wait_terminal(ok.id, Duration::from_secs(60));
    assert_eq!(
        d.run.state,
        StateKind::Completed,
        "{}",
        common::describe(&d)
    );

    let bad = w.create_run("dev", "exit-docker", Parameters::new());
    let d = w.wait_terminal(bad.id, Duration::from_secs(60));
    assert_eq!(d.run.state, StateKind::Failed, "{}", common::describe(&d));
    let msg = d.run.state_message.clone().unwrap_or_default();
    assert!(msg.contains("exit code 2"), "{msg}");
    let logs = w.weir(&["logs", &bad.id.to_string()]).ok();
    assert!(
        logs.stdout.contains("no-such-subcommand"),
        "stderr of the container is logged: {logs:#?}"
    );

    let missing = w.create_run("dev", "missing-image", Parameters::new());
    let d = w.wait_terminal(missing.id, Duration::from_secs(30));
    assert_eq!(d.run.state, StateKind::Failed, "{}", common::describe(&d));
    let msg = d.run.state_message.clone().unwrap_or_default();
    assert!(
        msg.contains("image weir-test-absent:dev not found")
            && msg.contains("scripts/build-images.sh"),
        "{msg}"
    );

    let slow = w.create_run("dev", "slow-docker", Parameters::new());
    w.wait_state(slow.id, StateKind::Running, Duration::from_secs(30));
    std::thread::sleep(Duration::from_millis(500));
    let asked = std::time::Instant::now();
    w.weir(&["runs", "cancel", &slow.id.to_string()]).ok();
    let d = w.wait_terminal(slow.id, Duration::from_secs(20));
    assert_eq!(
        d.run.state,
        StateKind::Cancelled,
        "{}",
        common::describe(&d)
    );
    assert!(
        asked.elapsed() < Duration::from_secs(2 + 2 + 1),
        "cancelled in {:?}",
        asked.elapsed()
    );

    for id in [ok.id, bad.id, missing.id, slow.id] {
        common::wait_until(
            "the run's container to be removed",
            Duration::from_secs(10),
            || match containers_of(id) {
                s if s.is_empty() => Ok(()),
                s => Err(s),
            },
        );
    }
}
