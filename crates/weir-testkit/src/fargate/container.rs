//! One task's container on the Docker engine: created, started, waited for; its output sent
//! to CloudWatch Logs; its task stopped on moto once it exited; removed.

use super::plan::{Plan, plan};
use super::{Inner, LABEL, lock, stop_task};
use bollard::Docker;
use bollard::container::LogOutput;
use bollard::models::{ContainerCreateBody, HostConfig};
use bollard::query_parameters::{
    LogsOptionsBuilder, RemoveContainerOptionsBuilder, StopContainerOptionsBuilder,
    WaitContainerOptionsBuilder,
};
use futures::StreamExt;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use weir_launcher_ecs::aws_sdk_cloudwatchlogs::types::InputLogEvent;
use weir_launcher_ecs::aws_sdk_ecs::types::Task;

/// Runs `task` to its end.
pub(crate) async fn run(inner: Arc<Inner>, task: Task) {
    let Some(arn) = task.task_arn().map(str::to_string) else {
        return;
    };
    let plan = match plan(&inner, &task).await {
        Ok(p) => p,
        Err(e) => return fail(&inner, &arn, &e.0).await,
    };
    let id = match create(&inner.docker, &arn, &plan).await {
        Ok(id) => id,
        Err(e) => {
            let why = format!("CannotPullContainerError: {e}");
            return fail(&inner, &arn, &why).await;
        }
    };
    lock(&inner.containers).insert(arn.clone(), id.clone());
    if let Err(e) = inner.docker.start_container(&id, None).await {
        remove(&inner.docker, &id).await;
        lock(&inner.containers).remove(&arn);
        return fail(&inner, &arn, &format!("CannotStartContainerError: {e}")).await;
    }
    inner.counts.started.fetch_add(1, Ordering::Relaxed);
    let code = wait(&inner.docker, &id).await;
    if let Some((group, stream)) = &plan.log {
        ship_logs(&inner, &id, group, stream).await;
    }
    // Unless the task was stopped from outside (then `stop` settles it), it ended on its own.
    if !lock(&inner.settling).insert(arn.clone()) {
        return;
    }
    inner.counts.exited.fetch_add(1, Ordering::Relaxed);
    let reason = format!("Essential container in task exited (exit code {code})");
    if let Err(e) = stop_task(&inner, &arn, &reason).await {
        eprintln!("{e}");
    }
    settled(&inner, &arn, &id).await;
}

/// Removes the container, then forgets the task.
async fn settled(inner: &Inner, arn: &str, id: &str) {
    remove(&inner.docker, id).await;
    lock(&inner.containers).remove(arn);
    lock(&inner.settling).remove(arn);
}

/// The task could not run: stopped with `why`, as ECS stops a task that failed to start.
async fn fail(inner: &Inner, arn: &str, why: &str) {
    eprintln!("local Fargate: task {arn} failed to start: {why}");
    inner.counts.failed.fetch_add(1, Ordering::Relaxed);
    if let Err(e) = stop_task(inner, arn, why).await {
        eprintln!("{e}");
    }
}

/// The task was stopped from outside: SIGTERM, SIGKILL after the stop timeout, removal.
pub(crate) async fn stop(inner: Arc<Inner>, arn: String, id: String) {
    if !lock(&inner.settling).insert(arn.clone()) {
        return;
    }
    inner.counts.stopped.fetch_add(1, Ordering::Relaxed);
    let t = i32::try_from(inner.options.stop_timeout.as_secs()).unwrap_or(i32::MAX);
    let options = StopContainerOptionsBuilder::default().t(t).build();
    if let Err(e) = inner.docker.stop_container(&id, Some(options)).await {
        eprintln!("local Fargate: cannot stop container {id}: {e}");
    }
    settled(&inner, &arn, &id).await;
}

/// Removes container `id` (and its anonymous volumes), whatever its state.
pub(crate) async fn remove(docker: &Docker, id: &str) {
    let options = RemoveContainerOptionsBuilder::default()
        .force(true)
        .v(true)
        .build();
    let _ = docker.remove_container(id, Some(options)).await;
}

async fn create(docker: &Docker, arn: &str, plan: &Plan) -> Result<String, bollard::errors::Error> {
    let body = ContainerCreateBody {
        image: Some(plan.image.clone()),
        cmd: (!plan.command.is_empty()).then(|| plan.command.clone()),
        env: Some(plan.env.iter().map(|(k, v)| format!("{k}={v}")).collect()),
        labels: Some(HashMap::from([(LABEL.to_string(), arn.to_string())])),
        host_config: Some(HostConfig {
            // Fargate's tasks run an init of their own; SIGTERM reaches the flow.
            init: Some(true),
            network_mode: Some("host".into()),
            auto_remove: Some(false),
            ..Default::default()
        }),
        ..Default::default()
    };
    docker
        .create_container(
            None::<bollard::query_parameters::CreateContainerOptions>,
            body,
        )
        .await
        .map(|r| r.id)
}

/// The container's exit code, once it is not running (-1 when the engine cannot tell).
async fn wait(docker: &Docker, id: &str) -> i64 {
    let options = WaitContainerOptionsBuilder::default()
        .condition("not-running")
        .build();
    match docker.wait_container(id, Some(options)).next().await {
        Some(Ok(r)) => r.status_code,
        // bollard reports a non-zero exit as an error carrying the code.
        Some(Err(bollard::errors::Error::DockerContainerWaitError { code, .. })) => code,
        _ => -1,
    }
}

/// The container's whole output into CloudWatch stream `group`/`stream` (awslogs does this
/// as the container runs; at the end is enough for the tail Weir reads of a dead task).
async fn ship_logs(inner: &Inner, id: &str, group: &str, stream: &str) {
    let options = LogsOptionsBuilder::default()
        .stdout(true)
        .stderr(true)
        .timestamps(false)
        .build();
    let mut text = String::new();
    let mut logs = inner.docker.logs(id, Some(options));
    while let Some(Ok(item)) = logs.next().await {
        if let LogOutput::StdOut { message } | LogOutput::StdErr { message } = item {
            text.push_str(&String::from_utf8_lossy(&message));
        }
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default();
    let events: Vec<InputLogEvent> = text
        .lines()
        .filter_map(|l| {
            InputLogEvent::builder()
                .timestamp(now)
                .message(l)
                .build()
                .ok()
        })
        .collect();
    if events.is_empty() {
        return;
    }
    let _ = inner
        .logs
        .create_log_group()
        .log_group_name(group)
        .send()
        .await;
    let _ = inner
        .logs
        .create_log_stream()
        .log_group_name(group)
        .log_stream_name(stream)
        .send()
        .await;
    for chunk in events.chunks(1000) {
        if let Err(e) = inner
            .logs
            .put_log_events()
            .log_group_name(group)
            .log_stream_name(stream)
            .set_log_events(Some(chunk.to_vec()))
            .send()
            .await
        {
            eprintln!("local Fargate: PutLogEvents {group}/{stream}: {e}");
        }
    }
}
