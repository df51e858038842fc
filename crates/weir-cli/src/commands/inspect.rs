//! `weir deployments ls`, `weir schedule pause|resume`, `weir agents ls`, `weir queues ls`.

use crate::cli::{DeploymentsCommand, ScheduleCommand};
use crate::config::split_target;
use crate::output;
use anyhow::Result;
use std::process::ExitCode;
use weir_core::api::Deployment;

/// `weir deployments …`.
pub async fn deployments(api: &str, cmd: DeploymentsCommand, json: bool) -> Result<ExitCode> {
    match cmd {
        DeploymentsCommand::Ls { project } => list(api, project, json).await,
        DeploymentsCommand::Rm { target } => super::prune::remove(api, &target, json).await,
        DeploymentsCommand::Show { target } => super::show::deployment(api, &target, json).await,
    }
}

/// `weir deployments ls`.
async fn list(api: &str, project: Option<String>, json: bool) -> Result<ExitCode> {
    let list = super::client(api)?
        .deployments(project.as_deref())
        .await
        .map_err(super::explain)?;
    output::list(
        json,
        &list,
        &list,
        Some("no deployments yet: register some with `weir deploy -f weir.toml`"),
        &[
            "DEPLOYMENT",
            "FLOW",
            "VERSION",
            "QUEUE",
            "SCHEDULE",
            "STATUS",
        ],
        deployment_row,
    );
    Ok(ExitCode::SUCCESS)
}

/// A deployment's row of `weir deployments ls`: its schedules described in words, and
/// whether it is archived, paused or active.
fn deployment_row(d: &Deployment) -> Vec<String> {
    let schedule = d
        .spec
        .schedules
        .iter()
        .filter_map(|s| weir_core::Schedule::parse(s).ok().map(|s| s.describe()))
        .collect::<Vec<_>>()
        .join("; ");
    vec![
        format!("{}/{}", d.project, d.name),
        d.spec.flow.clone(),
        format!("v{}", d.version),
        d.spec.work_queue.clone(),
        if schedule.is_empty() {
            "-".into()
        } else {
            schedule
        },
        if d.archived_at.is_some() {
            "archived".into()
        } else if d.paused {
            "paused".into()
        } else {
            "active".into()
        },
    ]
}

/// `weir schedule pause|resume`.
pub async fn schedule(api: &str, cmd: ScheduleCommand, json: bool) -> Result<ExitCode> {
    let (target, paused) = match cmd {
        ScheduleCommand::Pause { target } => (target, true),
        ScheduleCommand::Resume { target } => (target, false),
        ScheduleCommand::Preview(_) => {
            anyhow::bail!("`weir schedule preview` needs no server (dispatched earlier)")
        }
    };
    let (project, name) = split_target(&target)?;
    let d = super::client(api)?
        .set_paused(&project, &name, paused)
        .await
        .map_err(super::explain)?;
    if json {
        output::json(&d);
    } else {
        println!(
            "{project}/{name}: schedules {}",
            if d.paused { "paused" } else { "resumed" }
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `weir agents ls`.
pub async fn agents(api: &str, json: bool) -> Result<ExitCode> {
    let list = super::client(api)?.agents().await.map_err(super::explain)?;
    output::list(
        json,
        &list,
        &list,
        Some("no agents seen in the last 24 hours: start one with `weir agent --queue default`"),
        &["ID", "NAME", "QUEUES", "RUNNING", "LAST HEARTBEAT"],
        |a| {
            vec![
                a.id.to_string(),
                a.name.clone(),
                a.queues.join(","),
                format!("{}/{}", a.running, a.limit),
                output::time(&a.last_heartbeat_at),
            ]
        },
    );
    Ok(ExitCode::SUCCESS)
}

/// `weir queues ls`.
pub async fn queues(api: &str, json: bool) -> Result<ExitCode> {
    let list = super::client(api)?
        .work_queues()
        .await
        .map_err(super::explain)?;
    output::list(
        json,
        &list,
        &list,
        None,
        &["QUEUE", "READY", "RUNNING"],
        |q| vec![q.name.clone(), q.ready.to_string(), q.running.to_string()],
    );
    Ok(ExitCode::SUCCESS)
}
