//! The ECS launcher as the agent sees it: [`weir_agent::launcher::Launcher`] for
//! `type = "ecs"` deployments.
//!
//! The agent passes secret references, not values ([`Launcher::secrets_by_reference`]); its
//! runs outlive it ([`Launcher::survives_agent`]). A task has no output stream the agent
//! could read — the flow process reports its own logs and state over HTTP — so a launched
//! run's output is empty, except when the task died (a non-zero exit or a crash): then the
//! last lines of its CloudWatch stream are sent as its output before it ends, and the last
//! few are quoted in the reason.

use crate::launcher::{EcsLauncher, RunRequest};
use crate::reconciler::TaskEnd;
use crate::status::{EndKind, Ended};
use futures::future::BoxFuture;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use uuid::Uuid;
use weir_agent::launcher::{
    Cancel, Canceller, ExitStatus, Found, LaunchError, LaunchHandle, LaunchSpec, Launched,
    Launcher, OutputLine, Stream,
};
use weir_core::contract::launch::var;
use weir_core::infrastructure::{Infrastructure, InfrastructureKind};

/// Lines of CloudWatch tail kept for a task that died.
const TAIL_LINES: usize = 50;
/// Of those, quoted in the run's reason.
const QUOTED_LINES: usize = 3;

/// The agent's ECS launcher.
pub struct AgentLauncher {
    ecs: Arc<EcsLauncher>,
    logs: aws_sdk_cloudwatchlogs::Client,
    region: String,
}

impl AgentLauncher {
    /// Wraps `ecs`; `logs` reads tails, `region` is where the task definitions' logs go (as
    /// `weir deploy` computed them).
    pub fn new(
        ecs: Arc<EcsLauncher>,
        logs: aws_sdk_cloudwatchlogs::Client,
        region: String,
    ) -> AgentLauncher {
        AgentLauncher { ecs, logs, region }
    }

    async fn start(&self, spec: LaunchSpec) -> Result<Launched, LaunchError> {
        let invalid = |m: String| LaunchError::InvalidSpec(m);
        let Infrastructure::Ecs(infra) = &spec.infrastructure else {
            return Err(invalid(
                "the ECS launcher runs only ecs infrastructure".into(),
            ));
        };
        let project = spec.env.get(var::PROJECT).cloned().unwrap_or_default();
        let deployment = spec.env.get(var::DEPLOYMENT).cloned().unwrap_or_default();
        let task = crate::deployment::task_spec(
            &project,
            &deployment,
            infra,
            &spec.secret_refs,
            &self.region,
        )
        .map_err(invalid)?;
        let mut env = spec.env.clone();
        // The agent's outcome file and data directory are on the agent's disk, not in the
        // task: the image's WEIR_HOME applies.
        env.remove(var::OUTCOME_FILE);
        env.remove(var::HOME);
        let req = RunRequest {
            flow_run_id: spec.flow_run_id,
            attempt: spec.attempt,
            queue: spec.queue.clone(),
            plain_command: spec.plain_command,
            capacity: crate::deployment::capacity(infra),
            task: task.clone(),
            command: spec.argv.clone(),
            env,
            cpu: None,
            memory_mib: None,
        };
        let started = self.ecs.run(&req).await.map_err(infrastructure)?;
        Ok(self.launched(started.arn, started.end, task.log))
    }

    /// A launched run for a watched task.
    pub fn launched(&self, arn: String, end: TaskEnd, log: Option<crate::LogSpec>) -> Launched {
        let (out_tx, out_rx) = mpsc::channel(TAIL_LINES + 1);
        let (done_tx, done_rx) = watch::channel(None);
        let logs = self.logs.clone();
        let task_id = arn.rsplit('/').next().unwrap_or("").to_string();
        let mut end = end;
        tokio::spawn(async move {
            let ended = end.wait().await;
            let status = settle(&logs, log.as_ref(), &task_id, ended, &out_tx).await;
            drop(out_tx);
            let _ = done_tx.send(Some(status));
        });
        Launched::new(
            out_rx,
            Handle {
                arn: arn.clone(),
                done: done_rx,
                cancel: Canceller::new(Stopper {
                    ecs: self.ecs.clone(),
                    arn,
                }),
            },
        )
    }
}

/// The exit status of an ended task; for a death, its log tail goes to `out` first.
async fn settle(
    logs: &aws_sdk_cloudwatchlogs::Client,
    log: Option<&crate::LogSpec>,
    task_id: &str,
    ended: Ended,
    out: &mpsc::Sender<OutputLine>,
) -> ExitStatus {
    let died = matches!(ended.kind, EndKind::Crashed | EndKind::Exited(1..));
    let (Some(log), true) = (log, died) else {
        return ended.exit_status();
    };
    let tail = match crate::logs::tail(logs, &log.group, &log.stream(task_id), TAIL_LINES).await {
        Ok(t) => t,
        Err(error) => {
            tracing::warn!(message = "cannot read the task's CloudWatch tail", %error);
            return ended.exit_status();
        }
    };
    for line in &tail {
        let _ = out
            .send(OutputLine {
                stream: Stream::Stderr,
                text: format!("[cloudwatch] {line}"),
                seq: None,
            })
            .await;
    }
    let last: Vec<&str> = tail
        .iter()
        .rev()
        .take(QUOTED_LINES)
        .rev()
        .map(String::as_str)
        .collect();
    let status = ended.exit_status();
    if last.is_empty() {
        return status;
    }
    let last = format!("last log lines: {}", last.join(" | "));
    match status {
        ExitStatus::Code(code) => ExitStatus::Exited { code, reason: last },
        ExitStatus::Exited { code, reason } => ExitStatus::Exited {
            code,
            reason: format!("{reason}; {last}"),
        },
        ExitStatus::Unknown(reason) => ExitStatus::Unknown(format!("{reason}; {last}")),
        other => other,
    }
}

struct Handle {
    arn: String,
    done: watch::Receiver<Option<ExitStatus>>,
    cancel: Canceller,
}

impl LaunchHandle for Handle {
    fn id(&self) -> String {
        self.arn.clone()
    }

    fn wait(&mut self) -> BoxFuture<'_, ExitStatus> {
        Box::pin(async move {
            match self.done.wait_for(Option::is_some).await {
                Ok(s) => s
                    .clone()
                    .unwrap_or_else(|| ExitStatus::Unknown("no status".into())),
                Err(_) => ExitStatus::Unknown("the ECS watcher stopped".into()),
            }
        })
    }

    fn canceller(&self) -> Canceller {
        self.cancel.clone()
    }
}

struct Stopper {
    ecs: Arc<EcsLauncher>,
    arn: String,
}

impl Cancel for Stopper {
    /// `StopTask` with a reason; ECS sends SIGTERM and, after the task's `stopTimeout`,
    /// SIGKILL (Weir's grace does not apply).
    fn cancel(&self, _grace: Duration) {
        self.ecs.reconciler().cancel(&self.arn, "cancelled in Weir");
    }
}

impl Launcher for AgentLauncher {
    fn kind(&self) -> InfrastructureKind {
        InfrastructureKind::Ecs
    }

    fn secrets_by_reference(&self) -> bool {
        true
    }

    fn survives_agent(&self) -> bool {
        true
    }

    fn launch(&self, spec: LaunchSpec) -> BoxFuture<'_, Result<Launched, LaunchError>> {
        Box::pin(self.start(spec))
    }

    /// The task of the attempt, found with `ListTasks(startedBy)` (the id recorded is its
    /// ARN, but `startedBy` is what identifies an attempt's task for sure).
    fn reattach(
        &self,
        flow_run_id: Uuid,
        attempt: u32,
        _id: &str,
    ) -> BoxFuture<'_, Result<Option<Launched>, LaunchError>> {
        Box::pin(async move {
            let Some(task) = self
                .ecs
                .adopt(flow_run_id, attempt)
                .await
                .map_err(infrastructure)?
            else {
                return Ok(None);
            };
            let log = self.ecs.log_spec_of_task(&task.arn).await;
            Ok(Some(self.launched(task.arn, task.end, log)))
        })
    }

    /// Every Weir task of the cluster tagged with one of `queues`, found by its tags.
    fn discover(&self, queues: &[String]) -> BoxFuture<'_, Result<Vec<Found>, LaunchError>> {
        let queues = queues.to_vec();
        Box::pin(async move {
            let found = self.ecs.discover().await.map_err(infrastructure)?;
            let mut out = Vec::new();
            for f in found {
                if !f.queue.as_ref().is_some_and(|q| queues.contains(q)) {
                    continue;
                }
                out.push(Found {
                    flow_run_id: f.flow_run_id,
                    attempt: f.attempt,
                    plain_command: f.plain_command,
                    id: f.arn,
                });
            }
            Ok(out)
        })
    }
}

fn infrastructure(e: crate::Error) -> LaunchError {
    LaunchError::Infrastructure {
        launcher: "ecs",
        message: e.to_string(),
    }
}
