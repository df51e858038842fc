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
