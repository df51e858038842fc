//! A "local Fargate" for ECS tests and benchmarks: it watches an ECS cluster on moto's server
//! (which runs no containers) and runs each new task's image on the real Docker engine, so a
//! flow really starts, reports itself over HTTP and ends.
//!
//! What a task gets, as on Fargate:
//! - the image, `command` and `environment` of its task definition's container, with the
//!   `RunTask` container overrides on top (command replaced, environment merged);
//! - its `secrets[].valueFrom` resolved from moto's SSM Parameter Store and Secrets Manager
//!   (what ECS does with the execution role) and set as environment variables;
//! - [`Options::task_env`], standing in for what ECS itself gives a task (region, the task
//!   role's credentials);
//! - the host network, so a Weir server on 127.0.0.1 is reachable.
//!
//! moto's side is kept faithful to AWS: [`MotoEcs::lock`] freezes moto's task lifecycle
//! (tasks stay RUNNING however often they are described) and the task is STOPPED — with
//! `StopTask` and reason "Essential container in task exited" — only once its container has
//! really exited. A task stopped by someone else (Weir cancelling it) has its container
//! stopped: SIGTERM, then SIGKILL after [`Options::stop_timeout`], as ECS's `stopTimeout`.
//! With an `awslogs` log configuration the container's output is written to moto's
//! CloudWatch Logs stream `<prefix>/<container>/<task id>`, where ECS would put it.
//!
//! What moto cannot hold stays out: the exit code (moto reports 0 for every container).
//!
//! Every container is labelled [`LABEL`] and removed once its task is settled, and any left
//! are removed by [`LocalFargate::stop`].

mod container;
mod plan;

use crate::moto;
use bollard::Docker;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;
use weir_launcher_ecs::aws_sdk_ecs as ecs;
use weir_launcher_ecs::aws_sdk_ecs::types::DesiredStatus;
use weir_secrets_aws::aws_config::SdkConfig;

pub use plan::Plan;

/// Label on every container the local Fargate runs (value: the task ARN).
pub const LABEL: &str = "dev.weir.local-fargate.task";

/// Why the local Fargate could not start or do something.
#[derive(Debug, thiserror::Error)]
#[error("local Fargate: {0}")]
pub struct Error(pub String);

fn err(what: impl std::fmt::Display) -> Error {
    Error(what.to_string())
}

/// How the local Fargate watches its cluster and runs tasks ([`Options::new`] has the
/// defaults).
#[derive(Debug, Clone)]
pub struct Options {
    /// The cluster to watch.
    pub cluster: String,
    /// Time between two looks at the cluster.
    pub poll_every: Duration,
    /// Between SIGTERM and SIGKILL when a task is stopped (ECS's `stopTimeout`).
    pub stop_timeout: Duration,
    /// Environment ECS itself would give every task (region, task role credentials, an
    /// endpoint for the flow's own AWS calls).
    pub task_env: BTreeMap<String, String>,
}

impl Options {
    /// Watching `cluster` every 100 ms, with a 10 s stop timeout and no extra environment.
    pub fn new(cluster: impl Into<String>) -> Options {
        Options {
            cluster: cluster.into(),
            poll_every: Duration::from_millis(100),
            stop_timeout: Duration::from_secs(10),
            task_env: BTreeMap::new(),
        }
    }
}

/// What the local Fargate did so far.
#[derive(Debug, Default)]
pub struct Counts {
    /// Containers started, one per task run.
    pub started: AtomicU64,
    /// Tasks whose container exited on its own.
    pub exited: AtomicU64,
    /// Tasks stopped from outside (their container was stopped).
    pub stopped: AtomicU64,
    /// Tasks that could not be run (image or secret missing): stopped with the reason.
    pub failed: AtomicU64,
}

pub(crate) struct Inner {
    pub(crate) ecs: ecs::Client,
    pub(crate) logs: weir_launcher_ecs::aws_sdk_cloudwatchlogs::Client,
    pub(crate) ssm: weir_secrets_aws::SsmStore,
    pub(crate) secrets: weir_secrets_aws::SecretsManagerStore,
    pub(crate) docker: Docker,
    pub(crate) options: Options,
    /// Task ARN → its container id, while the container exists.
    pub(crate) containers: Mutex<HashMap<String, String>>,
    /// Tasks being settled (stopped from outside, or ended on their own): left alone.
    pub(crate) settling: Mutex<HashSet<String>>,
    pub(crate) counts: Counts,
}

/// The running local Fargate; [`stop`](LocalFargate::stop) it (dropping it also ends the
/// loop, but leaves the removal of live containers to the engine's next `stop`).
pub struct LocalFargate {
    inner: Arc<Inner>,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl LocalFargate {
    /// Starts watching `options.cluster` with the SDK configuration `config` (pointed at
    /// moto). Fails when no Docker engine answers.
    pub async fn start(config: &SdkConfig, options: Options) -> Result<LocalFargate, Error> {
        let docker = Docker::connect_with_local_defaults()
            .map_err(err)?
            .negotiate_version()
            .await
            .map_err(|e| err(format!("no Docker engine answers: {e}")))?;
        let inner = Arc::new(Inner {
            ecs: ecs::Client::new(config),
            logs: weir_launcher_ecs::aws_sdk_cloudwatchlogs::Client::new(config),
            ssm: weir_secrets_aws::SsmStore::new(config),
            secrets: weir_secrets_aws::SecretsManagerStore::new(config),
            docker,
            options,
            containers: Mutex::new(HashMap::new()),
            settling: Mutex::new(HashSet::new()),
            counts: Counts::default(),
        });
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(watch_loop(inner.clone(), stopped));
        Ok(LocalFargate { inner, stop, task })
    }

    /// What it did so far.
    pub fn counts(&self) -> &Counts {
        &self.inner.counts
    }

    /// How many of its containers exist right now.
    pub fn live(&self) -> usize {
        lock(&self.inner.containers).len()
    }

    /// Stops watching, lets the containers being settled go (up to the stop timeout), and
    /// removes every container still there (their tasks are stopped).
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
        let deadline = tokio::time::Instant::now() + self.inner.options.stop_timeout;
        while !lock(&self.inner.settling).is_empty() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let left: Vec<(String, String)> = lock(&self.inner.containers).drain().collect();
        for (arn, id) in left {
            container::remove(&self.inner.docker, &id).await;
            let _ = stop_task(&self.inner, &arn, "the local Fargate stopped").await;
        }
    }
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// `StopTask` on moto, which marks the task STOPPED at once with `reason`.
pub(crate) async fn stop_task(inner: &Inner, arn: &str, reason: &str) -> Result<(), Error> {
    inner
        .ecs
        .stop_task()
        .cluster(&inner.options.cluster)
        .task(arn)
        .reason(reason)
        .send()
        .await
        .map(|_| ())
        .map_err(|e| err(format!("StopTask {arn}: {e}")))
}

async fn watch_loop(inner: Arc<Inner>, mut stopped: watch::Receiver<bool>) {
    let mut seen: HashSet<String> = HashSet::new();
    loop {
        tokio::select! {
            _ = stopped.changed() => return,
            _ = tokio::time::sleep(inner.options.poll_every) => {}
        }
        let running = match running_tasks(&inner).await {
            Ok(r) => r,
            Err(e) => {
                eprintln!("{e}; retrying");
                continue;
            }
        };
        let new: Vec<String> = running
            .iter()
            .filter(|a| !seen.contains(*a))
            .cloned()
            .collect();
        for batch in new.chunks(100) {
            match describe(&inner, batch).await {
                Ok(tasks) => {
                    for task in tasks {
                        if let Some(arn) = task.task_arn() {
                            seen.insert(arn.to_string());
                            tokio::spawn(container::run(inner.clone(), task));
                        }
                    }
                }
                Err(e) => eprintln!("{e}; retrying"),
            }
        }
        // Tasks stopped from outside while their container runs: stop the container.
        let gone: Vec<(String, String)> = lock(&inner.containers)
            .iter()
            .filter(|(arn, _)| !running.contains(*arn))
            .map(|(a, c)| (a.clone(), c.clone()))
            .collect();
        for (arn, id) in gone {
            tokio::spawn(container::stop(inner.clone(), arn, id));
        }
    }
}

/// ARNs of the cluster's tasks whose desired status is RUNNING.
async fn running_tasks(inner: &Inner) -> Result<HashSet<String>, Error> {
    let mut arns = HashSet::new();
    let mut token = None;
    loop {
        let out = inner
            .ecs
            .list_tasks()
            .cluster(&inner.options.cluster)
            .desired_status(DesiredStatus::Running)
            .set_next_token(token)
            .send()
            .await
            .map_err(|e| err(format!("ListTasks: {e}")))?;
        arns.extend(out.task_arns().iter().cloned());
        token = out.next_token().map(str::to_string);
        if token.is_none() {
            return Ok(arns);
        }
    }
}

async fn describe(inner: &Inner, arns: &[String]) -> Result<Vec<ecs::types::Task>, Error> {
    let out = inner
        .ecs
        .describe_tasks()
        .cluster(&inner.options.cluster)
        .set_tasks(Some(arns.to_vec()))
        .send()
        .await
        .map_err(|e| err(format!("DescribeTasks: {e}")))?;
    Ok(out.tasks().to_vec())
}

/// moto's ECS task lifecycle frozen (RUNNING until `StopTask`), held across test processes
/// for the life of the value ([`moto::EcsLifecycle`]: other ECS tests set another while they
/// hold the same lock).
pub struct MotoEcs {
    _held: moto::EcsLifecycle,
}

impl MotoEcs {
    /// Takes the lock (waiting for other holders) and freezes moto's task lifecycle.
    pub async fn lock(endpoint: &str) -> Result<MotoEcs, Error> {
        let endpoint = endpoint.to_string();
        let held = tokio::task::spawn_blocking(move || {
            moto::EcsLifecycle::hold(&endpoint, moto::TaskLifecycle::Frozen)
        })
        .await
        .map_err(err)?
        .map_err(|e| err(format!("moto's ECS task lifecycle: {e}")))?;
        Ok(MotoEcs { _held: held })
    }
}

/// Counters read once, for reports.
pub fn load(c: &AtomicU64) -> u64 {
    c.load(Ordering::Relaxed)
}
