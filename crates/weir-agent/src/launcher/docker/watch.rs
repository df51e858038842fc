//! Following a started container: its logs into lines, its exit status (with OOM and
//! vanished containers told apart), cancellation, and removal once everything is recorded.

use super::create::not_found;
use crate::launcher::{
    Cancel, Canceller, ExitStatus, LaunchHandle, Launched, LineSplitter, OutputLine, Redactor,
    Stream,
};
use bollard::Docker;
use bollard::container::LogOutput;
use bollard::errors::Error as DockerError;
use bollard::query_parameters::{
    KillContainerOptionsBuilder, LogsOptionsBuilder, RemoveContainerOptionsBuilder,
    WaitContainerOptionsBuilder,
};
use futures::StreamExt;
use futures::future::BoxFuture;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Starts following container `id`: returns the launched run whose output and exit come
/// from it. `memory` is the limit as written, for the out-of-memory message.
///
/// The output is always read from the container's start and each line numbered by its
/// position in its stream (as a spool file's lines are), so an agent taking the container
/// over reads every line again under the same numbers, and the server stores once the lines
/// its predecessor had sent: none printed while no agent ran is lost, none is stored twice.
pub(crate) fn follow(
    docker: Docker,
    id: String,
    memory: Option<String>,
    redact: &[String],
) -> Launched {
    let (tx, rx) = mpsc::channel(1024);
    let redactor = Arc::new(Redactor::new(redact.iter().cloned()));
    let task = tokio::spawn(supervise(docker.clone(), id.clone(), memory, redactor, tx));
    Launched::new(
        rx,
        Handle {
            docker,
            id,
            task: Some(task),
            status: None,
        },
    )
}

/// Logs until the container's output ends, then its exit status, then removal.
async fn supervise(
    docker: Docker,
    id: String,
    memory: Option<String>,
    redactor: Arc<Redactor>,
    tx: mpsc::Sender<OutputLine>,
) -> ExitStatus {
    pump_logs(&docker, &id, redactor, &tx).await;
    drop(tx);
    let status = exit_status(&docker, &id, memory).await;
    if let Err(e) = remove(&docker, &id).await
        && !not_found(&e)
    {
        tracing::warn!(message = "cannot remove the run's container", container = %id, error = %e);
    }
    status
}

async fn pump_logs(
    docker: &Docker,
    id: &str,
    redactor: Arc<Redactor>,
    tx: &mpsc::Sender<OutputLine>,
) {
    let options = LogsOptionsBuilder::default()
        .follow(true)
        .stdout(true)
        .stderr(true)
        .build();
    let mut logs = docker.logs(id, Some(options));
    let mut out = LineSplitter::numbered(Stream::Stdout, redactor.clone());
    let mut err = LineSplitter::numbered(Stream::Stderr, redactor);
    let mut lines = Vec::new();
    while let Some(item) = logs.next().await {
        match item {
            Ok(LogOutput::StdOut { message } | LogOutput::Console { message }) => {
                out.push(&message, &mut lines)
            }
            Ok(LogOutput::StdErr { message }) => err.push(&message, &mut lines),
            Ok(LogOutput::StdIn { .. }) => {}
            Err(e) => {
                tracing::debug!(message = "container log stream ended", container = %id, error = %e);
                break;
            }
        }
        for line in lines.drain(..) {
            // A dropped receiver discards output; the container still runs to its end.
            let _ = tx.send(line).await;
        }
    }
    for line in [out.finish(), err.finish()].into_iter().flatten() {
        let _ = tx.send(line).await;
    }
}

/// How the container ended: its exit code, out of memory, or gone.
async fn exit_status(docker: &Docker, id: &str, memory: Option<String>) -> ExitStatus {
    let options = WaitContainerOptionsBuilder::default()
        .condition("not-running")
        .build();
    let waited = docker.wait_container(id, Some(options)).next().await;
    let code = match waited {
        Some(Ok(r)) => r.status_code,
        // bollard reports a non-zero exit as an error carrying the code.
        Some(Err(DockerError::DockerContainerWaitError { code, .. })) => code,
        Some(Err(e)) if not_found(&e) => return vanished(id),
        Some(Err(e)) => return ExitStatus::Unknown(format!("cannot wait for container {id}: {e}")),
        None => {
            return ExitStatus::Unknown(format!(
                "the engine did not report how container {id} ended"
            ));
        }
    };
    match docker.inspect_container(id, None).await {
        Ok(c) if c.state.as_ref().and_then(|s| s.oom_killed) == Some(true) => {
            ExitStatus::Stopped(match memory {
                Some(m) => format!("out of memory (limit {m})"),
                None => "out of memory".into(),
            })
        }
        Err(e) if not_found(&e) => vanished(id),
        _ => ExitStatus::Code(i32::try_from(code).unwrap_or(-1)),
    }
}

pub(crate) fn vanished(id: &str) -> ExitStatus {
    ExitStatus::Stopped(format!(
        "the container {} disappeared (removed outside Weir) before it reported how it ended",
        &id[..id.len().min(12)]
    ))
}

/// Removes the container (forced: it may still be running after a failed start).
pub(crate) async fn remove(docker: &Docker, id: &str) -> Result<(), DockerError> {
    let options = RemoveContainerOptionsBuilder::default().force(true).build();
    docker.remove_container(id, Some(options)).await
}

struct Handle {
    docker: Docker,
    id: String,
    task: Option<JoinHandle<ExitStatus>>,
    status: Option<ExitStatus>,
}

impl LaunchHandle for Handle {
    fn id(&self) -> String {
        self.id.clone()
    }

    fn wait(&mut self) -> BoxFuture<'_, ExitStatus> {
        Box::pin(async move {
            if let Some(task) = self.task.take() {
                self.status = Some(task.await.unwrap_or_else(|e| {
                    ExitStatus::Unknown(format!("the task following the container failed: {e}"))
                }));
            }
            self.status
                .clone()
                .unwrap_or_else(|| ExitStatus::Unknown("not followed".into()))
        })
    }

    fn canceller(&self) -> Canceller {
        Canceller::new(ContainerCancel {
            docker: self.docker.clone(),
            id: self.id.clone(),
        })
    }
}

/// SIGTERM to the container's PID 1 (the init process forwards it), SIGKILL after the grace.
struct ContainerCancel {
    docker: Docker,
    id: String,
}

impl Cancel for ContainerCancel {
    fn cancel(&self, grace: Duration) {
        let docker = self.docker.clone();
        let id = self.id.clone();
        tokio::spawn(async move {
            for (signal, after) in [("SIGTERM", Duration::ZERO), ("SIGKILL", grace)] {
                tokio::time::sleep(after).await;
                let options = KillContainerOptionsBuilder::default()
                    .signal(signal)
                    .build();
                if let Err(e) = docker.kill_container(&id, Some(options)).await {
                    // 404: already removed; 409: not running any more. Either way, done.
                    tracing::debug!(message = "kill not delivered", container = %id, signal, error = %e);
                    return;
                }
            }
        });
    }
}
