//! The Docker launcher: each attempt is one container on the agent's Docker engine.
//!
//! - The engine is reached on its unix socket (`DOCKER_HOST` or `/var/run/docker.sock`) and
//!   the API version is negotiated, so an older engine (API 1.41 here) is spoken to in its
//!   own version.
//! - The image must be there (or pullable, per the deployment's `pull`); a missing image fails
//!   the attempt before anything runs, naming the image and how to build it.
//! - The deployment's `command` replaces the image's entrypoint. Containers carry labels naming
//!   the run, attempt and agent, run with an init process as PID 1 (so SIGTERM reaches the
//!   program), with the deployment's CPU and memory limits, and are never auto-removed: the
//!   launcher removes each one itself once its logs and exit status are recorded.
//! - Networking: a container reaches a server on the agent's loopback through the host network
//!   (the default when `WEIR_API_URL` is a loopback address); otherwise it joins the
//!   infrastructure's `network` or the engine's default, and `WEIR_API_URL` must be an address
//!   the container can reach.
//! - An agent restarted mid-run takes its containers over ([`Launcher::reattach`], see
//!   `adopt.rs`) instead of launching them again; one that vanished ends its run Crashed. It
//!   finds them through its state directory's records only: there is no discovery, because
//!   an agent cannot tell a container whose agent died from one whose agent (of the same name,
//!   in a rolling redeploy) still lives and would stop it on shutdown.

mod adopt;
mod create;
mod watch;

use super::{LaunchError, LaunchSpec, Launched, Launcher};
use bollard::Docker;
use futures::future::BoxFuture;
use weir_core::infrastructure::{DockerInfrastructure, Infrastructure, InfrastructureKind};

/// Label keys set on every container this launcher creates.
pub mod label {
    /// The flow run id.
    pub const RUN: &str = "dev.weir.run-id";
    /// The attempt number.
    pub const ATTEMPT: &str = "dev.weir.attempt";
    /// The agent's name.
    pub const AGENT: &str = "dev.weir.agent";
    /// The work queue the run was claimed from.
    pub const QUEUE: &str = "dev.weir.queue";
    /// `true` for a plain command (its exit status is its state), `false` for a flow (it
    /// reports its own); a container without it is a flow.
    pub const PLAIN_COMMAND: &str = "dev.weir.plain-command";
}

/// Launches runs as containers.
#[derive(Clone)]
pub struct DockerLauncher {
    docker: Docker,
    agent: String,
}

impl DockerLauncher {
    /// Connects to the local engine and negotiates the API version. `agent` names the agent in
    /// every container's labels. Fails when no engine answers.
    pub async fn connect(agent: impl Into<String>) -> Result<Self, LaunchError> {
        let docker = Docker::connect_with_local_defaults()
            .map_err(infra)?
            .negotiate_version()
            .await
            .map_err(|e| {
                infra(format!(
                    "no Docker engine answers ({e}); start it, or set DOCKER_HOST to its socket"
                ))
            })?;
        Ok(DockerLauncher {
            docker,
            agent: agent.into(),
        })
    }

    /// The engine client, for tests and tools.
    pub fn engine(&self) -> &Docker {
        &self.docker
    }

    async fn start(&self, spec: LaunchSpec) -> Result<Launched, LaunchError> {
        let Infrastructure::Docker(infra_spec) = &spec.infrastructure else {
            return Err(LaunchError::InvalidSpec(format!(
                "the docker launcher cannot launch {} runs",
                spec.infrastructure.kind()
            )));
        };
        if spec.argv.is_empty() {
            return Err(LaunchError::InvalidSpec(
                "the deployment has no command to run in the container".into(),
            ));
        }
        create::ensure_image(&self.docker, infra_spec).await?;
        let id = create::create(&self.docker, &self.agent, &spec, infra_spec).await?;
        if let Err(e) = self.docker.start_container(&id, None).await {
            let _ = watch::remove(&self.docker, &id).await;
            return Err(infra(format!("cannot start the container: {e}")));
        }
        Ok(watch::follow(
            self.docker.clone(),
            id,
            memory_of(infra_spec),
            &spec.redact,
        ))
    }
}

fn memory_of(d: &DockerInfrastructure) -> Option<String> {
    d.memory.clone()
}

pub(crate) fn infra(message: impl ToString) -> LaunchError {
    LaunchError::Infrastructure {
        launcher: "docker",
        message: message.to_string(),
    }
}

impl Launcher for DockerLauncher {
    fn kind(&self) -> InfrastructureKind {
        InfrastructureKind::Docker
    }

    fn forwards_output(&self) -> bool {
        true
    }

    fn launch(&self, spec: LaunchSpec) -> BoxFuture<'_, Result<Launched, LaunchError>> {
        Box::pin(self.start(spec))
    }

    fn reattach(
        &self,
        flow_run_id: uuid::Uuid,
        attempt: u32,
        id: &str,
    ) -> BoxFuture<'_, Result<Option<Launched>, LaunchError>> {
        let id = id.to_string();
        Box::pin(async move { adopt::reattach(&self.docker, flow_run_id, attempt, &id).await })
    }
}
