//! Taking over a run's container after the agent restarted (`Launcher::reattach`): found by
//! its run and attempt labels (the record in the agent's state directory says its predecessor
//! launched that attempt, whatever name either goes by), its logs read again from the
//! container's start, its exit waited for and the container removed as usual. A container
//! that vanished while no agent watched yields a run whose end says so (Crashed with the
//! reason).
//!
//! Reading from the start loses no line the container printed while no agent ran, and
//! stores none twice: every line keeps the number it had for the predecessor (its position
//! in its stream, see `watch::follow`) and the server keeps one line per number.

use super::label;
use super::watch::{follow, vanished};
use crate::launcher::{Cancel, Canceller, ExitStatus, LaunchError, LaunchHandle, Launched};
use bollard::Docker;
use bollard::query_parameters::ListContainersOptionsBuilder;
use futures::future::BoxFuture;
use std::collections::HashMap;
use weir_core::contract::launch::{secret_var_names, var};
use weir_core::infrastructure::format_memory;

/// Finds the container of attempt `attempt` of `run` (recorded as `recorded`), and follows it.
pub(crate) async fn reattach(
    docker: &Docker,
    run: uuid::Uuid,
    attempt: u32,
    recorded: &str,
) -> Result<Option<Launched>, LaunchError> {
    let filters = HashMap::from([(
        "label",
        vec![
            format!("{}={run}", label::RUN),
            format!("{}={attempt}", label::ATTEMPT),
        ],
    )]);
    let options = ListContainersOptionsBuilder::default()
        .all(true)
        .filters(&filters)
        .build();
    let found = docker
        .list_containers(Some(options))
        .await
        .map_err(|e| {
            super::infra(format!(
                "cannot list the agent's containers to take run {run} over: {e}"
            ))
        })?
        .into_iter()
        .find_map(|c| c.id);
    let Some(id) = found else {
        return Ok(Some(ended(recorded, vanished(recorded))));
    };
    Ok(Some(take(docker, run, id).await))
}

/// Follows container `id` of `run`: its logs from its start, its end, its removal. A
/// container gone by now ends the run as vanished.
async fn take(docker: &Docker, run: uuid::Uuid, id: String) -> Launched {
    let inspected = match docker.inspect_container(&id, None).await {
        Ok(c) => c,
        Err(_) => return ended(&id, vanished(&id)),
    };
    // The values to redact live only in the container's environment now: the secrets it was
    // given (named by WEIR_SECRET_VARS) and its run token.
    let env: HashMap<String, String> = inspected
        .config
        .and_then(|c| c.env)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|kv| {
            kv.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
        })
        .collect();
    let names = env.get(var::SECRET_VARS).cloned().unwrap_or_default();
    let redact: Vec<String> = secret_var_names(&names)
        .chain([var::API_KEY])
        .filter_map(|n| env.get(n).cloned())
        .filter(|v| !v.is_empty())
        .collect();
    let memory = inspected
        .host_config
        .and_then(|h| h.memory)
        .and_then(|m| u64::try_from(m).ok())
        .filter(|m| *m > 0)
        .map(format_memory);
    tracing::info!(message = "following a container launched before the agent restarted", %run, container = %id);
    follow(docker.clone(), id, memory, &redact)
}

/// A run that already ended as `status`, with no output and nothing to cancel.
fn ended(id: &str, status: ExitStatus) -> Launched {
    let (_, output) = tokio::sync::mpsc::channel(1);
    Launched::new(
        output,
        Ended {
            id: id.to_string(),
            status,
        },
    )
}

struct Ended {
    id: String,
    status: ExitStatus,
}

impl LaunchHandle for Ended {
    fn id(&self) -> String {
        self.id.clone()
    }

    fn wait(&mut self) -> BoxFuture<'_, ExitStatus> {
        let status = self.status.clone();
        Box::pin(async move { status })
    }

    fn canceller(&self) -> Canceller {
        Canceller::new(Nothing)
    }
}

/// Cancels nothing: the run has ended.
struct Nothing;

impl Cancel for Nothing {
    fn cancel(&self, _grace: std::time::Duration) {}
}
