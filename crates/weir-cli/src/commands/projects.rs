//! `weir projects ls|show|retention`: projects and how long they keep finished runs.

use crate::cli::ProjectsCommand;
use crate::output;
use anyhow::{Result, bail};
use std::process::ExitCode;
use weir_core::api::Project;

/// `weir projects …`.
pub async fn projects(api: &str, cmd: ProjectsCommand, json: bool) -> Result<ExitCode> {
    let client = super::client(api)?;
    match cmd {
        ProjectsCommand::Ls => {
            let list = client.projects().await.map_err(super::explain)?;
            output::list(
                json,
                &list,
                &list,
                None,
                &["PROJECT", "RETENTION", "PRUNED RUNS", "LAST PRUNED"],
                |p| {
                    vec![
                        p.name.clone(),
                        retention(p),
                        p.pruned_runs.to_string(),
                        p.pruned_at.as_ref().map(output::time).unwrap_or("-".into()),
                    ]
                },
            );
        }
        ProjectsCommand::Show { project } => {
            let p = client.project(&project).await.map_err(super::explain)?;
            show(&p, json);
        }
        ProjectsCommand::Retention {
            project,
            days,
            server_default,
        } => {
            let days = match (days, server_default) {
                (_, true) => None,
                (Some(d), false) => Some(
                    weir_core::retention::check_days(d)
                        .map_err(|m| anyhow::anyhow!("--days: {m}"))?,
                ),
                (None, false) => bail!("give --days N (0: forever) or --server-default"),
            };
            let p = client
                .set_retention(&project, days)
                .await
                .map_err(super::explain)?;
            show(&p, json);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The retention in force, and where it comes from.
fn retention(p: &Project) -> String {
    let source = match p.retain_days {
        Some(_) => "project",
        None => "server default",
    };
    match p.effective_retain_days {
        Some(d) => format!("{d} days ({source})"),
        None => format!("forever ({source})"),
    }
}

fn show(p: &Project, json: bool) {
    if json {
        output::json(p);
        return;
    }
    println!("project:     {}", p.name);
    println!("created:     {}", output::time(&p.created_at));
    println!("retention:   {}", retention(p));
    let last = p
        .pruned_at
        .as_ref()
        .map(|t| format!(", last at {}", output::time(t)))
        .unwrap_or_default();
    println!("pruned:      {} finished runs{last}", p.pruned_runs);
}
