//! Making the image present and creating the container of one attempt.

use super::{infra, label};
use crate::launcher::{LaunchError, LaunchSpec};
use bollard::Docker;
use bollard::errors::Error as DockerError;
use bollard::models::{ContainerCreateBody, HostConfig};
use bollard::query_parameters::{CreateContainerOptionsBuilder, CreateImageOptionsBuilder};
use futures::StreamExt;
use std::collections::HashMap;
use std::path::Path;
use weir_core::contract::launch::var;
use weir_core::infrastructure::{DockerInfrastructure, PullPolicy, parse_memory};

/// Whether the engine answered 404 (no such image or container).
pub(crate) fn not_found(e: &DockerError) -> bool {
    matches!(
        e,
        DockerError::DockerResponseServerError {
            status_code: 404,
            ..
        }
    )
}

/// Makes sure the image is on the engine, pulling it as the pull policy says.
pub(crate) async fn ensure_image(
    docker: &Docker,
    d: &DockerInfrastructure,
) -> Result<(), LaunchError> {
    let present = match docker.inspect_image(&d.image).await {
        Ok(_) => true,
        Err(e) if not_found(&e) => false,
        Err(e) => return Err(infra(format!("cannot inspect image {}: {e}", d.image))),
    };
    let pull = match d.pull {
        PullPolicy::Never => false,
        PullPolicy::IfMissing => !present,
        PullPolicy::Always => true,
    };
    if !pull {
        return if present {
            Ok(())
        } else {
            Err(LaunchError::ImageNotFound {
                image: d.image.clone(),
                detail: "it is not on the agent's Docker engine and pull = \"never\"".into(),
            })
        };
    }
    let options = CreateImageOptionsBuilder::default()
        .from_image(&d.image)
        .build();
    let mut progress = docker.create_image(Some(options), None, None);
    while let Some(item) = progress.next().await {
        if let Err(e) = item {
            if present {
                tracing::warn!(message = "pull failed; using the image already on the engine", image = %d.image, error = %e);
                return Ok(());
            }
            return Err(LaunchError::ImageNotFound {
                image: d.image.clone(),
                detail: format!(
                    "it is not on the agent's Docker engine and pulling it failed: {e}"
                ),
            });
        }
    }
    Ok(())
}

/// Creates the attempt's container (not started); returns its id.
pub(crate) async fn create(
    docker: &Docker,
    agent: &str,
    spec: &LaunchSpec,
    d: &DockerInfrastructure,
) -> Result<String, LaunchError> {
    let name = format!(
        "weir-{}-a{}",
        &spec.flow_run_id.simple().to_string()[..12],
        spec.attempt
    );
    let options = CreateContainerOptionsBuilder::default().name(&name).build();
    let body = body(agent, spec, d)?;
    match docker.create_container(Some(options), body).await {
        Ok(r) => Ok(r.id),
        Err(DockerError::DockerResponseServerError {
            status_code: 409, ..
        }) => Err(infra(format!(
            "a container named {name} already exists: this attempt was launched before; \
             remove it with `docker rm -f {name}` if it is a leftover"
        ))),
        Err(e) if not_found(&e) => Err(LaunchError::ImageNotFound {
            image: d.image.clone(),
            detail: format!("the engine says: {e}"),
        }),
        Err(e) => Err(infra(format!("cannot create the container: {e}"))),
    }
}

/// Local result storage (a directory on the agent's machine) is mounted at the same path,
/// and the container runs as the directory's owner (returned as `uid:gid`), so results land
/// where a process run puts them and the image's own user needs no write access to the host.
/// `None`: the run's result storage is not a local directory.
fn mount_local_result_storage(
    env: &std::collections::BTreeMap<String, String>,
    binds: &mut Vec<String>,
) -> Result<Option<String>, LaunchError> {
    let Some(weir_core::storage::StorageUrl::Local(dir)) = env
        .get(var::RESULT_STORAGE)
        .and_then(|url| weir_core::storage::StorageUrl::parse(url).ok())
    else {
        return Ok(None);
    };
    if !dir.is_absolute() {
        return Ok(None);
    }
    use std::os::unix::fs::MetadataExt;
    std::fs::create_dir_all(&dir).map_err(|e| {
        infra(format!(
            "cannot create the result storage directory {}: {e}",
            dir.display()
        ))
    })?;
    let owner = std::fs::metadata(&dir).map_err(|e| {
        infra(format!(
            "cannot read the result storage directory {}: {e}",
            dir.display()
        ))
    })?;
    let dir = dir.display().to_string();
    binds.push(format!("{dir}:{dir}"));
    Ok(Some(format!("{}:{}", owner.uid(), owner.gid())))
}

/// The container's settings: command, environment, labels, limits, network, mounts.
fn body(
    agent: &str,
    spec: &LaunchSpec,
    d: &DockerInfrastructure,
) -> Result<ContainerCreateBody, LaunchError> {
    let mut env = spec.env.clone();
    // The agent's own data directory means nothing inside the container: the image's
    // WEIR_HOME (or the SDK's default) applies. But a run given no result storage keeps its
    // results where a process run of the agent would (`$WEIR_HOME/results`, mounted below),
    // not in the container's filesystem, which goes with the container.
    let home = env.remove(var::HOME);
    env.extend(d.env.clone());
    if let Some(home) = home
        && !env.contains_key(var::RESULT_STORAGE)
        && let Ok(home) = std::path::absolute(home)
    {
        let dir = home.join("results");
        env.insert(var::RESULT_STORAGE.into(), dir.display().to_string());
    }
    let mut binds = d.volumes.clone();
    // The outcome file lives in the agent's state directory: mount that directory at the same
    // path, so the process can leave its final state where the agent looks for it, and run as
    // the directory's owner (unless result storage says otherwise, below) so it may write there.
    let mut outcome_owner = None;
    if let Some(dir) = env
        .get(var::OUTCOME_FILE)
        .and_then(|f| Path::new(f).parent())
    {
        use std::os::unix::fs::MetadataExt;
        outcome_owner = std::fs::metadata(dir)
            .ok()
            .map(|m| format!("{}:{}", m.uid(), m.gid()));
        let dir = dir.display().to_string();
        binds.push(format!("{dir}:{dir}"));
    }
    let user = mount_local_result_storage(&env, &mut binds)?.or(outcome_owner);
    let memory = d
        .memory
        .as_deref()
        .map(|m| parse_memory(m).map_err(LaunchError::InvalidSpec))
        .transpose()?
        .map(|b| i64::try_from(b).unwrap_or(i64::MAX));
    let network = d.network.clone().or_else(|| {
        env.get(var::API_URL)
            .filter(|url| is_loopback_url(url))
            .map(|_| "host".to_string())
    });
    let labels = HashMap::from([
        (label::RUN.to_string(), spec.flow_run_id.to_string()),
        (label::ATTEMPT.to_string(), spec.attempt.to_string()),
        (label::AGENT.to_string(), agent.to_string()),
        (label::QUEUE.to_string(), spec.queue.clone()),
        (
            label::PLAIN_COMMAND.to_string(),
            spec.plain_command.to_string(),
        ),
    ]);
    Ok(ContainerCreateBody {
        image: Some(d.image.clone()),
        entrypoint: Some(spec.argv[..1].to_vec()),
        cmd: Some(spec.argv[1..].to_vec()),
        env: Some(env.iter().map(|(k, v)| format!("{k}={v}")).collect()),
        labels: Some(labels),
        working_dir: spec.workdir.as_ref().map(|w| w.display().to_string()),
        user,
        host_config: Some(HostConfig {
            init: Some(d.init),
            auto_remove: Some(false),
            memory,
            // Swap limited to the same amount: the memory limit is the real limit.
            memory_swap: memory,
            nano_cpus: d.cpu.map(|c| (c * 1e9) as i64),
            network_mode: network,
            binds: (!binds.is_empty()).then_some(binds),
            ..Default::default()
        }),
        ..Default::default()
    })
}

/// Whether `url`'s host is a loopback address (`127.0.0.0/8`, `::1`, `localhost`).
fn is_loopback_url(url: &str) -> bool {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let host_port = rest.split('/').next().unwrap_or("");
    let host = if let Some(v6) = host_port.strip_prefix('[') {
        v6.split(']').next().unwrap_or("")
    } else {
        host_port.rsplit_once(':').map_or(host_port, |(h, _)| h)
    };
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::is_loopback_url;

    #[test]
    fn loopback_urls() {
        assert!(is_loopback_url("http://127.0.0.1:4200"));
        assert!(is_loopback_url("https://localhost/api"));
        assert!(is_loopback_url("http://[::1]:80"));
        assert!(!is_loopback_url("https://weir.internal:443"));
        assert!(!is_loopback_url("http://10.0.0.5:4200"));
    }
}
