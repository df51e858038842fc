//! End to end on ECS with flows that really run: `weir deploy` registers the task definition
//! (once), a real `weir agent --launchers ecs` starts each run with `RunTask` on moto's
//! server, and the test kit's local Fargate runs each task's image on the Docker engine with
//! the task definition, the overrides and the `valueFrom` secrets resolved from moto's SSM.
//! The flow reports its logs, result and final state over HTTP; moto (exit code always 0)
//! never decides a run's state. Also: cancel through the agent (`StopTask` → Cancelled), a
//! restarted agent re-adopting its task by `startedBy`, and a blue/green hand-over to a new
//! agent instance while the old one drains.
//!
//! Needs `cargo build --workspace --bins --features weir-cli/aws,weir-cli/ecs`,
//! `eval "$(scripts/test-moto.sh)"` and a Docker engine (skipped without one).

#![cfg(feature = "ecs")]

mod common;

use common::images::{Images, engine};
use common::{ServerOptions, Weir, describe, wait_until};
use std::time::Duration;
use uuid::Uuid;
use weir_core::StateKind;
use weir_core::api::Parameters;
use weir_launcher_ecs::aws_sdk_ecs as ecs;
use weir_testkit::fargate::{self, LocalFargate, MotoEcs};

/// Containers of the local Fargate still there.
fn fargate_containers() -> String {
    let out = std::process::Command::new("docker")
        .args([
            "ps",
            "-aq",
            "--filter",
            &format!("label={}", fargate::LABEL),
        ])
        .output()
        .expect("docker ps");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// `project`'s four ECS deployments of the flows image `image`: `etl` (20 rows), `leaky`
/// (with `CANARY` from SSM parameter `secret`), `slow` (60 seconds) and `plain` (a plain
/// command that sleeps 10 seconds and exits 0).
fn deployments(project: &str, image: &str, secret: &str) -> String {
    format!(
        r#"
project = "{project}"

[defaults]
command = ["/usr/local/bin/example-flows"]

[defaults.infrastructure]
type = "ecs"
image = "{image}"
cpu = 0.25
memory = "512Mi"
execution_role_arn = "arn:aws:iam::123456789012:role/weir-flow-execution"
log_group = "/weir/flows"

[deployments.etl]
flow = "etl"
parameters = {{ rows = 20 }}

[deployments.leaky]
flow = "leaky"
secrets = {{ CANARY = "ssm:{secret}" }}

[deployments.slow]
flow = "slow"
parameters = {{ seconds = 60 }}

[deployments.plain]
command = ["sh", "-c", "echo plain start; sleep 10; echo plain end"]
plain = true
"#
    )
}

/// A Weir server, moto (lifecycle frozen, a fresh cluster), the local Fargate, and the
/// deployments registered by `weir deploy`.
struct Ecs {
    w: Weir,
    rt: tokio::runtime::Runtime,
    endpoint: String,
    cluster: String,
    project: String,
    subnet: String,
    sg: String,
    client: ecs::Client,
    fargate: Option<LocalFargate>,
    _moto: MotoEcs,
    /// Dropped last: after every container is gone.
    _images: Images,
}

impl Ecs {
    fn start() -> Option<Ecs> {
        let endpoint = weir_testkit::moto::endpoint("e2e_ecs_fargate")?;
        if !engine() {
            return None;
        }
        let images = Images::build();
        let image = images.flows();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let moto = rt.block_on(MotoEcs::lock(&endpoint)).expect("moto lock");
        let config = rt.block_on(weir_testkit::moto::sdk_config(&endpoint));
        let client = ecs::Client::new(&config);
        let suffix = Uuid::now_v7().simple().to_string()[20..].to_string();
        let cluster = format!("weir-fargate-{suffix}");
        // Task definition families are per project: a project of its own per test run.
        let project = format!("e2e-{suffix}");
        rt.block_on(client.create_cluster().cluster_name(&cluster).send())
            .expect("cluster");
        let (subnet, sg) = weir_testkit::moto::default_network(&endpoint).expect("moto's VPC");
        let secret = format!("/weir/e2e/{cluster}/canary");
        rt.block_on(weir_testkit::moto::put_secure_string(
            &config,
            &secret,
            "canary-value-7d1f",
        ));
        let fargate = rt
            .block_on(LocalFargate::start(
                &config,
                fargate::Options::new(&cluster),
            ))
            .expect("local Fargate");
        let w = Weir::start(ServerOptions::default());
        let toml = deployments(&project, &image, &secret);
        let file = w.write_toml(&toml).display().to_string();
        let mut env = weir_testkit::moto::client_env(&endpoint);
        env.push(("WEIR_API_KEY", &w.admin_key));
        let deploy = |w: &Weir| {
            w.sb.cli_env(
                Some(&w.url),
                &w.sb.path("cli"),
                &env,
                &["deploy", "--file", &file],
                Duration::from_secs(60),
            )
            .ok()
        };
        let task_definitions = |out: &common::Output, word: &str| {
            out.stdout
                .lines()
                .filter(|l| l.contains("task definition") && l.ends_with(word))
                .count()
        };
        let first = deploy(&w);
        assert_eq!(task_definitions(&first, "registered"), 4, "{first:#?}");
        let again = deploy(&w);
        assert_eq!(
            task_definitions(&again, "unchanged"),
            4,
            "nothing registered again: {again:#?}"
        );
        Some(Ecs {
            w,
            rt,
            endpoint,
            cluster,
            project,
            subnet,
            sg,
            client,
            fargate: Some(fargate),
            _moto: moto,
            _images: images,
        })
    }

    /// Starts `weir agent --launchers ecs` in `home` (its state directory).
    fn agent(&mut self, home: &str) -> usize {
        let home = self.w.sb.path(home);
        let env = weir_testkit::moto::client_env(&self.endpoint);
        let args = [
            "--launchers",
            "ecs",
            "--ecs-cluster",
            &self.cluster,
            "--ecs-subnets",
            &self.subnet,
            "--ecs-security-groups",
            &self.sg,
            "--ecs-poll-ms",
            "200",
        ];
        self.w.start_agent_with(&home, 4, &args, &env)
    }

    /// The tasks of the cluster started for `run` (attempt 1), by `startedBy`.
    fn tasks_of(&self, run: Uuid) -> Vec<ecs::types::Task> {
        let by = weir_launcher_ecs::started_by(run, 1);
        self.rt.block_on(async {
            let mut arns = Vec::new();
            for status in [
                ecs::types::DesiredStatus::Running,
                ecs::types::DesiredStatus::Stopped,
            ] {
                let out = self
                    .client
                    .list_tasks()
                    .cluster(&self.cluster)
                    .started_by(&by)
                    .desired_status(status)
                    .send()
                    .await
                    .expect("list tasks");
                arns.extend(out.task_arns().iter().cloned());
            }
            if arns.is_empty() {
                return Vec::new();
            }
            let out = self
                .client
                .describe_tasks()
                .cluster(&self.cluster)
                .set_tasks(Some(arns))
                .send()
                .await
                .expect("describe tasks");
            out.tasks().to_vec()
        })
    }

    /// Waits for `run`'s one task to be STOPPED (by `StopTask` or its container's exit).
    fn wait_stopped(&self, run: Uuid) {
        wait_until("the run's task to stop", Duration::from_secs(30), || {
            let tasks = self.tasks_of(run);
            match tasks.first().and_then(|t| t.last_status()) {
                Some("STOPPED") if tasks.len() == 1 => Ok(()),
                other => Err(format!("{} tasks, status {other:?}", tasks.len())),
            }
        });
    }

    fn logs(&self, run: Uuid) -> String {
        self.w.weir(&["logs", &run.to_string()]).ok().stdout
    }

    /// Stops the local Fargate and checks it left no container behind.
    fn finish(mut self) {
        if let Some(f) = self.fargate.take() {
            self.rt.block_on(f.stop());
        }
        assert_eq!(fargate_containers(), "", "no container is left behind");
    }
}

impl Drop for Ecs {
    /// Removes the local Fargate's containers even when the test failed (the moto lock, held
    /// until after this, keeps other users of the local Fargate out meanwhile).
    fn drop(&mut self) {
        let ids = fargate_containers();
        if !ids.is_empty() {
            let mut rm = std::process::Command::new("docker");
            rm.args(["rm", "-f"]).args(ids.split_whitespace());
            let _ = rm.output();
        }
    }
}

/// A flow completes from its own report (logs and result over HTTP); another fails from its
/// own report although moto says exit code 0, with its `valueFrom` secret injected and
/// redacted; a run cancelled through the agent is stopped with `StopTask` and Cancelled.
#[test]
fn ecs_runs_complete_fail_and_cancel_from_the_flow_itself() {
    let Some(mut e) = Ecs::start() else { return };
    let agent = e.agent("agent-ecs");
    completes_from_its_own_report(&e, agent);
    fails_from_its_own_report_with_its_secret_redacted(&e);
    a_cancel_stops_the_task(&e, agent);
    e.finish();
}

/// The `etl` flow completes from its own report: its result and its task logs came over
/// HTTP, and its one task stops once the container exited.
fn completes_from_its_own_report(e: &Ecs, agent: usize) {
    let ok = e.w.create_run(&e.project, "etl", Parameters::new());
    let d = e.w.wait_terminal(ok.id, Duration::from_secs(90));
    assert_eq!(
        d.run.state,
        StateKind::Completed,
        "{}\nagent: {}",
        describe(&d),
        e.w.agent_log(agent)
    );
    let result = d.run.result.clone().expect("the flow reported its result");
    assert!(result.size > 0, "{result:?}");
    let logs = e.logs(ok.id);
    assert!(
        logs.contains("kept ") && logs.contains("cents over"),
        "the flow's task logs came over HTTP: {logs}"
    );
    // The flow reports Completed over HTTP before its container exits, so the task reaches
    // STOPPED a moment after the run ends.
    e.wait_stopped(ok.id);
    let tasks = e.tasks_of(ok.id);
    assert_eq!(tasks.len(), 1, "one task for one run");
    assert!(
        tasks[0]
            .stopped_reason()
            .unwrap_or("")
            .contains("Essential container in task exited"),
        "STOPPED only once the container exited: {:?}",
        tasks[0].stopped_reason()
    );
}

/// The `leaky` flow fails from its own report although moto says exit code 0; its SSM
/// secret reached the task, redacted in its logs and absent from the task's overrides.
fn fails_from_its_own_report_with_its_secret_redacted(e: &Ecs) {
    let bad = e.w.create_run(&e.project, "leaky", Parameters::new());
    let d = e.w.wait_terminal(bad.id, Duration::from_secs(90));
    assert_eq!(
        d.run.state,
        StateKind::Failed,
        "the flow's own report wins over moto's exit 0: {}",
        describe(&d)
    );
    let logs = e.logs(bad.id);
    assert!(
        logs.contains("using token ***"),
        "the SSM value reached the task (and was redacted): {logs}"
    );
    assert!(!logs.contains("canary-value-7d1f") && !describe(&d).contains("canary-value-7d1f"));
    let env = e.tasks_of(bad.id)[0]
        .overrides()
        .map(|o| format!("{:?}", o.container_overrides()))
        .unwrap_or_default();
    assert!(
        !env.contains("canary-value-7d1f") && !env.contains("CANARY\""),
        "no secret in the overrides: {env}"
    );
}

/// A `slow` run cancelled through the agent is Cancelled, its task stopped with `StopTask`
/// and its container gone.
fn a_cancel_stops_the_task(e: &Ecs, agent: usize) {
    let slow = e.w.create_run(&e.project, "slow", Parameters::new());
    wait_until("the slow flow to log", Duration::from_secs(60), || {
        if e.logs(slow.id).contains("slept 1/") {
            Ok(())
        } else {
            Err("not yet".to_string())
        }
    });
    e.w.weir(&["runs", "cancel", &slow.id.to_string()]).ok();
    let d = e.w.wait_terminal(slow.id, Duration::from_secs(30));
    assert_eq!(d.run.state, StateKind::Cancelled, "{}", describe(&d));
    e.wait_stopped(slow.id);
    let log = e.w.agent_log(agent);
    assert!(
        log.contains("cancelling run"),
        "the agent carried the cancel: {log}"
    );
    wait_until(
        "the cancelled task's container to go",
        Duration::from_secs(20),
        || {
            let n = e.fargate.as_ref().map_or(0, |f| f.live());
            if n == 0 {
                Ok(())
            } else {
                Err(format!("{n} containers"))
            }
        },
    );
}

/// A restarted agent (same state directory) re-adopts its task by `startedBy` and the run
/// completes without a second `RunTask`; then a new agent instance (new identity and
/// directory, same cluster and queue) takes over a running task while the old one drains,
/// without launching it again, and sees the task's end when the flow cannot report it.
#[test]
fn ecs_tasks_are_readopted_after_restart_and_handed_over_blue_green() {
    let Some(mut e) = Ecs::start() else { return };
    let blue = e.agent("agent-blue");
    let run =
        e.w.create_run(&e.project, "slow", common::params(&[("seconds", 6.into())]));
    e.w.wait_state(run.id, StateKind::Running, Duration::from_secs(60));
    e.w.kill_agent(blue);
    let again = e.agent("agent-blue");
    let d = e.w.wait_terminal(run.id, Duration::from_secs(60));
    assert_eq!(d.run.state, StateKind::Completed, "{}", describe(&d));
    assert_eq!(d.run.attempt, 1);
    assert_eq!(e.tasks_of(run.id).len(), 1, "no second RunTask");
    let log = e.w.agent_log(again);
    assert!(
        log.contains("taking over a run still on its infrastructure"),
        "{log}"
    );

    let run = e.w.create_run(&e.project, "slow", Parameters::new());
    wait_until("the flow to log", Duration::from_secs(60), || {
        if e.logs(run.id).contains("slept 1/") {
            Ok(())
        } else {
            Err("not yet".to_string())
        }
    });
    // Green is deployed from the same secret as blue: the server shows an agent key only the
    // runs it launched.
    let (blue_home, green_home) = (e.w.sb.path("agent-blue"), e.w.sb.path("agent-green"));
    e.w.share_agent_key(&blue_home, &green_home);
    let green = e.agent("agent-green");
    wait_until(
        "green to take the task over",
        Duration::from_secs(30),
        || {
            let log = e.w.agent_log(green);
            if log.contains("taking over a run another agent launched") {
                Ok(())
            } else {
                Err(log)
            }
        },
    );
    // Blue drains: it stops claiming and leaves its ECS task running.
    common::signal(e.w.agent_pid(again), "TERM");
    e.w.wait_agent_exit(again, Duration::from_secs(30));
    assert_eq!(
        e.w.detail(run.id).run.state,
        StateKind::Running,
        "the task outlives blue"
    );
    // Green alone follows the task now. Its container is killed, so the flow cannot report
    // its end: the run's end reaches the server only through green's reconciler.
    let arn = e.tasks_of(run.id)[0]
        .task_arn()
        .expect("the task has an ARN")
        .to_string();
    let kill = std::process::Command::new("sh")
        .args([
            "-c",
            &format!(
                "docker kill $(docker ps -q --filter label={}={arn})",
                fargate::LABEL
            ),
        ])
        .output()
        .expect("docker kill");
    assert!(kill.status.success(), "{kill:?}");
    let d = e.w.wait_terminal(run.id, Duration::from_secs(60));
    assert_eq!(d.run.state, StateKind::Crashed, "{}", describe(&d));
    // Said by the agent that saw the task stop (the crash detector would say "no heartbeat";
    // moto reports exit code 0 for every container).
    let message = d.run.state_message.clone().unwrap_or_default();
    assert!(
        message.contains("without reporting a final state"),
        "green settled the run from the task's end: {message}"
    );
    let log = e.w.agent_log(green);
    assert!(
        log.lines()
            .any(|l| l.contains("run finished") && l.contains(&run.id.to_string())),
        "green saw the task's end: {log}"
    );
    e.wait_stopped(run.id);
    assert_eq!(e.tasks_of(run.id).len(), 1, "no task launched again");
    e.finish();
}

/// A plain command's task found by a new agent instance (the one that launched it killed, no
/// state directory in common) ends Completed by its exit status: the task's tag says it runs
/// a plain command, so the new agent settles it as one. Regression (#10): it read that from
/// the deployment, which its agent key may not read (403), and settled the task as a flow
/// that never reported, Crashed. (moto says exit code 0 for every container, so a non-zero
/// exit cannot be shown here; the Docker and process e2e tests show Failed by the code.)
#[test]
fn a_discovered_plain_command_ends_by_its_exit_status() {
    let Some(mut e) = Ecs::start() else { return };
    let blue = e.agent("agent-blue");
    let run = e.w.create_run(&e.project, "plain", Parameters::new());
    e.w.wait_state(run.id, StateKind::Running, Duration::from_secs(60));
    e.w.kill_agent(blue);
    let (blue_home, green_home) = (e.w.sb.path("agent-blue"), e.w.sb.path("agent-green"));
    e.w.share_agent_key(&blue_home, &green_home);
    let green = e.agent("agent-green");
    let d = e.w.wait_terminal(run.id, Duration::from_secs(60));
    let log = e.w.agent_log(green);
    assert_eq!(d.run.state, StateKind::Completed, "{}\n{log}", describe(&d));
    assert_eq!(d.run.attempt, 1, "{}", describe(&d));
    assert!(
        log.contains("taking over a run another agent launched"),
        "green discovered the task: {log}"
    );
    assert!(
        log.lines()
            .any(|l| l.contains("run finished") && l.contains(&run.id.to_string())),
        "green settled the run: {log}"
    );
    assert_eq!(e.tasks_of(run.id).len(), 1, "no task launched again");
    e.finish();
}
