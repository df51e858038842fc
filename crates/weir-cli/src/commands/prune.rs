//! Registration that also removes: `weir deploy --plan` names the project's deployments the
//! file no longer has, `weir deploy --prune` archives them, `weir deployments rm` archives
//! one. Archived deployments keep their history and come back when deployed again.

use super::Mode;
use crate::config::split_target;
use crate::output;
use anyhow::{Context, Result};
use std::process::ExitCode;

/// Handles the project's active deployments that are not in `in_file`: with `--prune`
/// archives them (or, with `--plan`, says it would); without it, says they stay. Returns one
/// report entry each, like the upserts'.
pub async fn removals(
    client: &weir_client::Client,
    project: &str,
    in_file: &[&str],
    mode: Mode,
    json: bool,
) -> Result<Vec<serde_json::Value>> {
    let stale: Vec<_> = client
        .deployments(Some(project))
        .await
        .map_err(super::explain)
        .with_context(|| format!("listing the deployments of project {project}"))?
        .into_iter()
        .filter(|d| {
            d.project == project && d.archived_at.is_none() && !in_file.contains(&d.name.as_str())
        })
        .collect();
    let mut report = Vec::new();
    for d in &stale {
        let verb = match (mode.plan, mode.prune) {
            (true, _) => "would remove",
            (false, true) => {
                client
                    .archive_deployment(project, &d.name)
                    .await
                    .map_err(super::explain)
                    .with_context(|| format!("archiving deployment {project}/{}", d.name))?;
                "removed"
            }
            (false, false) => "kept",
        };
        if !json {
            println!("{verb:>12}  {project}/{} (v{})", d.name, d.version);
        }
        report.push(serde_json::json!({
            "deployment": format!("{project}/{}", d.name),
            "outcome": verb,
            "changes": [],
        }));
    }
    if !json && !stale.is_empty() && !mode.prune {
        let what = if mode.plan {
            "`weir deploy --prune` removes"
        } else {
            "kept active; `weir deploy --prune` removes"
        };
        println!(
            "              not in the file: {what} them (archived: no schedules, no new runs, \
             history kept)"
        );
    }
    Ok(report)
}

/// `weir deployments rm PROJECT/DEPLOYMENT`.
pub async fn remove(api: &str, target: &str, json: bool) -> Result<ExitCode> {
    let (project, name) = split_target(target)?;
    let d = super::client(api)?
        .archive_deployment(&project, &name)
        .await
        .map_err(super::explain)?;
    if json {
        output::json(&d);
    } else {
        println!(
            "archived {project}/{name} (v{}): its schedules stopped and it takes no new runs; \
             its runs stay in `weir runs ls`. `weir deploy` of a file that has it restores it.",
            d.version
        );
    }
    Ok(ExitCode::SUCCESS)
}
