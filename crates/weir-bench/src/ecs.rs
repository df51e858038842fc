//! `weir-bench ecs --endpoint URL [--runs N]`: N runs of one ECS deployment through a real
//! agent (the `weir-agent` loop with the ECS launcher, in this process) against an
//! AWS-compatible endpoint — moto's server, whose tasks the test kit's local Fargate runs on
//! the Docker engine — with a real `weir server` process.
//!
//! Every figure is counted, none assumed:
//! - `task_definition_registrations`: revisions of the deployment's family on the endpoint
//!   after the runs (one registration by the deploy step, by content hash), plus any
//!   `RegisterTaskDefinition` the agent sent (it never should);
//! - `run_task_calls`, `describe_tasks_calls`: the requests the agent's ECS client sent, by
//!   an SDK interceptor (every attempt on the wire, retries included);
//! - `launch_p50_ms`: run created → the agent's Running report, which it sends as soon as
//!   `RunTask` accepted the task (both times on the server's clock).

use crate::procs::{self, round};
use anyhow::{Context, Result, bail};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use uuid::Uuid;
use weir_agent::agent::{Agent, AgentOptions};
use weir_agent::secrets::Resolver;
use weir_client::Client;
use weir_core::StateKind;
use weir_core::api::{CreateFlowRun, DeploymentSpec};
use weir_core::infrastructure::{EcsInfrastructure, Infrastructure};
use weir_launcher_ecs::{
    Clients, EcsLauncher, EcsOptions, TaskSpec, agent::AgentLauncher, taskdef,
};
use weir_testkit::fargate::{self, LocalFargate, MotoEcs};
use weir_testkit::moto;

/// Options of `weir-bench ecs`.
#[derive(clap::Args)]
pub struct Args {
    /// The AWS-compatible endpoint (moto's server: `eval "$(scripts/test-moto.sh)"` starts
    /// one on http://127.0.0.1:55500).
    #[arg(long)]
    endpoint: String,
    /// Runs of the deployment.
    #[arg(long, default_value_t = 100)]
    runs: u32,
    /// The flow image (scripts/build-images.sh builds it).
    #[arg(long, default_value = "weir-example-flows:dev")]
    image: String,
    /// The reconciler's time between two `DescribeTasks` rounds, in milliseconds.
    #[arg(long, default_value_t = 2000)]
    poll_ms: u64,
}

const PROJECT: &str = "bench";
const DEPLOYMENT: &str = "ecs-chain";
const QUEUE: &str = "bench-ecs";

/// Measures and returns the figures.
pub fn run(args: &Args) -> Result<Value> {
    if args.runs == 0 {
        bail!("--runs must be at least 1");
    }
    image_present(&args.image)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(bench(args))
}

fn image_present(image: &str) -> Result<()> {
    let ok = std::process::Command::new("docker")
        .args(["image", "inspect", "--format", "{{.Id}}", image])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        bail!(
            "image {image} is not on the Docker engine (or no engine answers): build it with \
             scripts/build-images.sh, or name another with --image"
        );
    }
    Ok(())
}

async fn bench(args: &Args) -> Result<Value> {
    let endpoint = args.endpoint.trim_end_matches('/').to_string();
    let _moto = MotoEcs::lock(&endpoint).await?;
    let config = moto::sdk_config(&endpoint).await;
    // What CI does (create the cluster, register), on a client of its own: not counted.
    let ci = Clients::new(&config);
    let cluster = create_cluster(&ci, &endpoint).await?;
    let home = tempfile::tempdir()?;
    let server = procs::start_server(home.path(), None, &[])?;
    let client = Client::new(&server.url, Some(server.key.clone()))?;
    let task = register_deployment(&ci, &client, &args.image).await?;

    let fargate = LocalFargate::start(&config, fargate::Options::new(&cluster)).await?;
    let agent_clients = Clients::new(&config);
    let requests = agent_clients.requests.clone();
    let agent = ecs_agent(
        agent_clients,
        &endpoint,
        &cluster,
        &server,
        home.path(),
        args,
    )?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let agent = tokio::spawn(agent.run(async {
        let _ = stopped.await;
    }));

    let started = Instant::now();
    let ids = create_runs(&client, args.runs).await?;
    let (completed, launch_ms, states) = wait_all(&client, &ids).await?;
    let wall = started.elapsed();
    let _ = stop.send(());
    let _ = agent.await;
    let counts = fargate.counts();
    let (ran, failed) = (
        fargate::load(&counts.started),
        fargate::load(&counts.failed),
    );
    fargate.stop().await;
    let revisions = ci
        .ecs
        .list_task_definitions()
        .family_prefix(task.family())
        .send()
        .await?
        .task_definition_arns()
        .len() as u64;
    let sent = requests.snapshot();
    let get = |op: &str| sent.get(op).copied().unwrap_or(0);
    Ok(json!({
        "runs": args.runs,
        "completed": completed,
        "task_definition_registrations": revisions + get("RegisterTaskDefinition"),
        "run_task_calls": get("RunTask"),
        "describe_tasks_calls": get("DescribeTasks"),
        "describe_tasks_per_run": round(get("DescribeTasks") as f64 / f64::from(args.runs), 2),
        "launch_p50_ms": round(median(launch_ms), 1),
        "agent_ecs_requests": sent,
        "poll_ms": args.poll_ms,
        "containers_run": ran,
        "tasks_failed_to_start": failed,
        "final_states": states,
        "wall_s": round(wall.as_secs_f64(), 1),
    }))
}

/// A fresh cluster on the endpoint, named `weir-bench-…`.
async fn create_cluster(ci: &Clients, endpoint: &str) -> Result<String> {
    let cluster = format!("weir-bench-{}", &Uuid::now_v7().simple().to_string()[20..]);
    ci.ecs
        .create_cluster()
        .cluster_name(&cluster)
        .send()
        .await
        .with_context(|| format!("CreateCluster on {endpoint}"))?;
    Ok(cluster)
}

/// The deploy step: registers the deployment's task definition (by content hash) and the
/// deployment itself; returns the task spec.
async fn register_deployment(ci: &Clients, client: &Client, image: &str) -> Result<TaskSpec> {
    let spec = deployment(image);
    let Infrastructure::Ecs(infra) = &spec.infrastructure else {
        bail!("the deployment is not ecs");
    };
    let task = weir_launcher_ecs::deployment::task_spec(
        PROJECT,
        DEPLOYMENT,
        infra,
        &BTreeMap::new(),
        "us-east-1",
    )
    .map_err(anyhow::Error::msg)?;
    taskdef::ensure(&ci.ecs, &task).await?;
    client
        .upsert_deployment(PROJECT, DEPLOYMENT, &spec, false)
        .await?;
    Ok(task)
}

/// An agent of the server with the ECS launcher on `cluster`, in moto's default network.
fn ecs_agent(
    clients: Clients,
    endpoint: &str,
    cluster: &str,
    server: &procs::ServerProc,
    home: &std::path::Path,
    args: &Args,
) -> Result<Agent> {
    let (subnet, sg) = moto::default_network(endpoint)
        .context("cannot read moto's default subnet and security group (is it moto?)")?;
    let options = EcsOptions {
        cluster: cluster.to_string(),
        subnets: vec![subnet],
        security_groups: vec![sg],
        start_deadline: Duration::from_secs(300),
        poll_every: Duration::from_millis(args.poll_ms),
        ..EcsOptions::default()
    };
    let launcher = AgentLauncher::new(
        EcsLauncher::new(clients.ecs, options),
        clients.logs,
        "us-east-1".into(),
    );
    Ok(Agent::new(
        Client::new(&server.url, Some(server.key.clone()))?,
        agent_options(&server.url, home, args.runs),
        vec![Arc::new(launcher)],
        Resolver::default(),
    ))
}

/// Creates `runs` runs of the deployment; returns their ids.
async fn create_runs(client: &Client, runs: u32) -> Result<Vec<Uuid>> {
    let mut ids = Vec::new();
    for _ in 0..runs {
        let run = client
            .create_flow_run(&CreateFlowRun {
                project: Some(PROJECT.into()),
                deployment: Some(DEPLOYMENT.into()),
                ..Default::default()
            })
            .await?;
        ids.push(run.id);
    }
    Ok(ids)
}

/// The lower median of `xs` (0 when empty).
fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs.get(xs.len().saturating_sub(1) / 2)
        .copied()
        .unwrap_or(0.0)
}

fn deployment(image: &str) -> DeploymentSpec {
    DeploymentSpec {
        flow: "chain".into(),
        command: vec!["/usr/local/bin/example-flows".into()],
        work_queue: QUEUE.into(),
        parameters: serde_json::from_value(json!({"n": 1})).unwrap_or_default(),
        infrastructure: Infrastructure::Ecs(EcsInfrastructure {
            image: image.to_string(),
            cpu: Some(0.25),
            memory: Some("512Mi".into()),
            execution_role_arn: Some("arn:aws:iam::123456789012:role/weir-flow-execution".into()),
            task_role_arn: None,
            log_group: None,
            capacity: None,
        }),
        ..Default::default()
    }
}

fn agent_options(api: &str, home: &std::path::Path, limit: u32) -> AgentOptions {
    AgentOptions {
        name: "bench-ecs".into(),
        queues: vec![QUEUE.into()],
        limit,
        poll_wait: Duration::from_secs(2),
        heartbeat_every: Duration::from_secs(5),
        // The agent's default (`weir agent --cancel-grace-s`).
        cancel_grace: Duration::from_secs(10),
        shutdown_grace: Duration::from_secs(1),
        api_url: api.to_string(),
        state_dir: home.join("agent"),
        workdir: None,
        env: BTreeMap::new(),
        // ECS tasks: no local plain commands to supervise.
        supervisor: Vec::new(),
    }
}

/// Waits for every run to end: how many Completed, each launch latency (ms), and how many
/// ended in each state.
async fn wait_all(client: &Client, ids: &[Uuid]) -> Result<(u64, Vec<f64>, BTreeMap<String, u64>)> {
    let deadline = Instant::now() + Duration::from_secs(600);
    let mut pending: Vec<Uuid> = ids.to_vec();
    let mut launch = Vec::new();
    let mut states = BTreeMap::new();
    while !pending.is_empty() {
        if Instant::now() > deadline {
            bail!("{} runs did not finish within 10 minutes", pending.len());
        }
        let mut left = Vec::new();
        for id in pending {
            let d = client.flow_run(id).await?;
            if !d.run.state.is_terminal() {
                left.push(id);
                continue;
            }
            *states.entry(d.run.state.to_string()).or_default() += 1;
            if let Some(running) = d.history.iter().find(|h| h.state == StateKind::Running) {
                let ms = (running.at - d.run.created_at)
                    .num_microseconds()
                    .unwrap_or(0);
                launch.push(ms as f64 / 1000.0);
            }
        }
        pending = left;
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let completed = states.get("Completed").copied().unwrap_or(0);
    Ok((completed, launch, states))
}
