//! End to end: infrastructure per deployment, agents that launch only some kinds, and the
//! Docker launcher on the machine's real Docker engine.

mod common;

use common::images::{Images, engine};
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

/// A server, an agent launching processes and containers, and the test deployments; `None`
/// (said on stderr) when no engine answers. Drop the `Weir` before the `Images`.
fn docker_weir() -> Option<(Weir, Images)> {
    if !engine() {
        return None;
    }
    let images = Images::build();
    let image = images.flows();
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

[deployments.lines-docker]
command = ["sh", "-c", "for i in 1 2 3 4 5; do echo line $i; done; echo on-stderr >&2"]
plain = true

[deployments.hello-docker]
command = ["/usr/local/bin/weir", "exec", "--", "sh", "-c", "for i in 1 2 3 4 5; do echo line $i; done; echo \"hello from a container\"; echo \"parameters: $WEIR_PARAMETERS\""]
plain = true
parameters = {{ greeting = "hi" }}

[deployments.oom-docker]
command = ["sh", "-c", "s=x; while :; do s=\"$s$s\"; done"]
plain = true
infrastructure = {{ type = "docker", image = "{image}", memory = "512Mi", pull = "never" }}

[deployments.oom-exec-docker]
command = ["/usr/local/bin/weir", "exec", "--", "sh", "-c", "s=x; while :; do s=\"$s$s\"; done"]
plain = true
infrastructure = {{ type = "docker", image = "{image}", memory = "512Mi", pull = "never" }}

[deployments.ticks-docker]
command = ["/usr/local/bin/weir", "exec", "--", "sh", "-c", "for i in 1 2 3 4 5 6 7 8; do echo tick $i; sleep 1; done"]
plain = true

[deployments.plain-ticks-docker]
command = ["sh", "-c", "for i in 1 2 3 4 5 6 7 8; do echo plain $i; sleep 1; done"]
plain = true
"#
    ));
    let home = w.sb.path("agent-docker");
    w.start_agent_with(&home, 4, &["--launchers", "process,docker"], &[]);
    Some((w, images))
}

/// The run's log messages, in order.
fn messages(w: &Weir, id: uuid::Uuid) -> Vec<String> {
    let page = w
        .block_on(w.client.logs(id, 0, 1000))
        .expect("read the run's logs");
    page.items.into_iter().map(|l| l.message).collect()
}

/// Waits until no container of `ids` is left.
fn no_container_left(ids: &[uuid::Uuid]) {
    for id in ids {
        common::wait_until(
            "the run's container to be removed",
            Duration::from_secs(10),
            || match containers_of(*id) {
                s if s.is_empty() => Ok(()),
                s => Err(s),
            },
        );
    }
}

/// `line 1` … `line 5` appear once each and in order.
fn assert_lines_once_in_order(logs: &[String]) {
    let lines: Vec<&str> = logs
        .iter()
        .map(String::as_str)
        .filter(|m| m.starts_with("line "))
        .collect();
    assert_eq!(
        lines,
        ["line 1", "line 2", "line 3", "line 4", "line 5"],
        "{logs:#?}"
    );
}

/// A flow in a container completes with its logs in order; a plain command's exit code
/// decides its state; a missing image fails before anything runs; cancel ends Cancelled
/// within the grace (2 s) + 2 s; no container is left behind.
#[test]
fn container_runs_complete_fail_and_cancel() {
    let Some((w, _images)) = docker_weir() else {
        return;
    };
    let ok = w.create_run("dev", "etl-docker", Parameters::new());
    let d = w.wait_terminal(ok.id, Duration::from_secs(60));
    assert_eq!(
        d.run.state,
        StateKind::Completed,
        "{}",
        common::describe(&d)
    );

    // The container may write the outcome file in the agent's (mounted) state directory.
    let logs = messages(&w, ok.id);
    assert!(
        !logs
            .iter()
            .any(|m| m.contains("cannot write the outcome file")),
        "{logs:#?}"
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

    no_container_left(&[ok.id, bad.id, missing.id, slow.id]);
}

/// A plain command's output is forwarded by the agent, and `weir exec`'s by the shim over
/// HTTP: either way every line arrives once, in order.
#[test]
fn container_logs_arrive_once_in_order_with_or_without_weir_exec() {
    let Some((w, _images)) = docker_weir() else {
        return;
    };
    let plain = w.create_run("dev", "lines-docker", Parameters::new());
    let hello = w.create_run("dev", "hello-docker", Parameters::new());
    for id in [plain.id, hello.id] {
        let d = w.wait_terminal(id, Duration::from_secs(60));
        assert_eq!(
            d.run.state,
            StateKind::Completed,
            "{}",
            common::describe(&d)
        );
    }
    let logs = messages(&w, plain.id);
    assert_lines_once_in_order(&logs);
    assert!(logs.contains(&"on-stderr".to_string()), "{logs:#?}");
    let logs = messages(&w, hello.id);
    assert_lines_once_in_order(&logs);
    let hellos = logs
        .iter()
        .filter(|m| *m == "hello from a container")
        .count();
    assert_eq!(hellos, 1, "{logs:#?}");
    assert!(
        logs.contains(&r#"parameters: {"greeting":"hi"}"#.to_string()),
        "{logs:#?}"
    );
    no_container_left(&[plain.id, hello.id]);
}

/// Out of memory ends the run Crashed with the limit, whether the launcher sees it (a plain
/// command) or `weir exec` does (its command killed inside the container).
#[test]
fn out_of_memory_is_crashed_with_the_limit() {
    let Some((w, _images)) = docker_weir() else {
        return;
    };
    let ids = [
        w.create_run("dev", "oom-docker", Parameters::new()).id,
        w.create_run("dev", "oom-exec-docker", Parameters::new()).id,
    ];
    for id in ids {
        let d = w.wait_terminal(id, Duration::from_secs(60));
        assert_eq!(d.run.state, StateKind::Crashed, "{}", common::describe(&d));
        let msg = d.run.state_message.clone().unwrap_or_default();
        assert!(msg.contains("out of memory (limit 512Mi)"), "{msg}");
    }
    no_container_left(&ids);
}

/// The lines of `docker logs` of run `id`'s container (stdout and stderr).
fn docker_logs(id: uuid::Uuid) -> Vec<String> {
    let out = std::process::Command::new("docker")
        .args(["logs", &containers_of(id)])
        .output()
        .expect("docker logs");
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    text.lines().map(str::to_string).collect()
}

/// `prefix 1` … `prefix 8`, each once and in order, among `logs`.
fn assert_eight_once_in_order(logs: &[String], prefix: &str) {
    let seen: Vec<&str> = logs
        .iter()
        .map(String::as_str)
        .filter(|m| m.starts_with(prefix))
        .collect();
    let expected: Vec<String> = (1..=8).map(|i| format!("{prefix}{i}")).collect();
    assert_eq!(seen, expected, "{logs:#?}");
}

/// An agent killed (`kill -9`) and restarted mid-run takes its containers over instead of
/// launching them again: a flow, a `weir exec` command and a plain command complete on
/// attempt 1 with one container each, every line logged once in order — the plain command's
/// lines printed while no agent ran too (the new agent reads the container's logs from its
/// start, the server stores each numbered line once) — containers removed by the new agent;
/// a container removed while no agent ran ends its run Crashed, saying so.
#[test]
fn a_restarted_agent_takes_its_containers_over() {
    let Some((mut w, _images)) = docker_weir() else {
        return;
    };
    let flow = w.create_run(
        "dev",
        "slow-docker",
        common::params(&[("seconds", 6.into())]),
    );
    let ticks = w.create_run("dev", "ticks-docker", Parameters::new());
    let plain = w.create_run("dev", "plain-ticks-docker", Parameters::new());
    let gone = w.create_run("dev", "slow-docker", Parameters::new());
    for id in [flow.id, ticks.id, plain.id, gone.id] {
        w.wait_state(id, StateKind::Running, Duration::from_secs(30));
    }
    for (id, first) in [(ticks.id, "tick 1"), (plain.id, "plain 1")] {
        common::wait_until(first, Duration::from_secs(20), || {
            let logs = messages(&w, id);
            if logs.iter().any(|m| m == first) {
                Ok(())
            } else {
                Err(format!("{logs:?}"))
            }
        });
    }
    w.kill_agent(0);
    let removed = std::process::Command::new("docker")
        .args(["rm", "-f", &containers_of(gone.id)])
        .output()
        .expect("docker rm");
    assert!(removed.status.success(), "{removed:?}");
    // Lines the plain command prints while no agent runs: in `docker logs`, not on the server.
    let unsent = common::wait_until(
        "a line printed while no agent runs",
        Duration::from_secs(15),
        || {
            let stored = messages(&w, plain.id);
            let unsent: Vec<String> = docker_logs(plain.id)
                .into_iter()
                .filter(|l| !stored.contains(l))
                .collect();
            if unsent.is_empty() {
                Err(format!("{stored:?}"))
            } else {
                Ok(unsent)
            }
        },
    );
    let home = w.agent_home(0);
    let again = w.start_agent_with(&home, 4, &["--launchers", "process,docker"], &[]);

    for id in [flow.id, ticks.id, plain.id] {
        let d = w.wait_terminal(id, Duration::from_secs(60));
        assert_eq!(
            d.run.state,
            StateKind::Completed,
            "{}",
            common::describe(&d)
        );
        assert_eq!(d.run.attempt, 1, "launched once: {}", common::describe(&d));
    }
    let d = w.wait_terminal(gone.id, Duration::from_secs(30));
    assert_eq!(d.run.state, StateKind::Crashed, "{}", common::describe(&d));
    let msg = d.run.state_message.clone().unwrap_or_default();
    assert!(msg.contains("disappeared"), "{msg}");

    assert_eight_once_in_order(&messages(&w, ticks.id), "tick ");
    let logs = messages(&w, plain.id);
    assert_eight_once_in_order(&logs, "plain ");
    for line in &unsent {
        assert!(
            logs.contains(line),
            "{line:?} printed while no agent ran: {logs:#?}"
        );
    }
    let log = w.agent_log(again);
    assert!(
        log.matches("taking over a run still on its infrastructure")
            .count()
            >= 3,
        "{log}"
    );
    no_container_left(&[flow.id, ticks.id, plain.id, gone.id]);
}

/// Agents sharing an engine never take each other's containers: started while the agent that
/// launched a flow and a plain command still runs them, an instance of the same name (a
/// rolling redeploy, a new state directory) and an agent of another name, both with the same
/// key and queue, touch neither; the first agent completes both on attempt 1 and removes their
/// containers. (A Docker agent finds containers again only through its own records: a new
/// instance cannot tell one whose agent died from one whose agent lives and would stop it.)
#[test]
fn agents_sharing_an_engine_leave_each_others_containers_alone() {
    let Some((mut w, _images)) = docker_weir() else {
        return;
    };
    let flow = w.create_run(
        "dev",
        "slow-docker",
        common::params(&[("seconds", 6.into())]),
    );
    let plain = w.create_run("dev", "plain-ticks-docker", Parameters::new());
    for id in [flow.id, plain.id] {
        w.wait_state(id, StateKind::Running, Duration::from_secs(30));
    }
    let home = w.agent_home(0);
    let launchers = ["--launchers", "process,docker"];
    let mut others = Vec::new();
    for (name, dir) in [("agent-0", "agent-twin"), ("agent-other", "agent-other")] {
        let to = w.sb.path(dir);
        w.share_agent_key(&home, &to);
        others.push(w.start_agent_named(name, &to, 4, &launchers, &[]));
    }
    for &n in &others {
        common::wait_until("another agent to start", Duration::from_secs(20), || {
            let log = w.agent_log(n);
            if log.contains("agent registered") {
                Ok(())
            } else {
                Err(log)
            }
        });
    }
    for id in [flow.id, plain.id] {
        let d = w.wait_terminal(id, Duration::from_secs(60));
        assert_eq!(
            d.run.state,
            StateKind::Completed,
            "{}",
            common::describe(&d)
        );
        assert_eq!(d.run.attempt, 1, "launched once: {}", common::describe(&d));
    }
    assert_eight_once_in_order(&messages(&w, plain.id), "plain ");
    let first = w.agent_log(0);
    for id in [flow.id, plain.id] {
        assert!(
            first
                .lines()
                .any(|l| l.contains("run finished") && l.contains(&id.to_string())),
            "the first agent settled {id}: {first}"
        );
    }
    for n in others {
        let log = w.agent_log(n);
        assert!(!log.contains("taking over"), "{log}");
        assert!(!log.contains("following a container"), "{log}");
    }
    no_container_left(&[flow.id, plain.id]);
}
