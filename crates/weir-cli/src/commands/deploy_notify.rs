//! `weir deploy`'s part for notification rules: the file's `[[notifications]]` become the
//! project's file-owned rules. Rules the file no longer has are deleted if `weir deploy`
//! wrote them; rules added with `weir notifications add` (source `api`) are left alone.

use anyhow::{Context, Result};
use weir_core::api::notifications::RuleSource;
use weir_deploy::NotificationEntry;

/// Creates, updates and deletes the project's file-owned rules to match `rules`, printing
/// what changed (or, with `plan`, what would). Returns the JSON report lines.
pub async fn sync(
    client: &weir_client::Client,
    project: &str,
    rules: &[NotificationEntry],
    plan: bool,
    json: bool,
) -> Result<Vec<serde_json::Value>> {
    let existing = client
        .notification_rules(Some(project))
        .await
        .map_err(super::explain)
        .context("listing notification rules")?;
    let mut report = Vec::new();
    let mut say = |verb: &str, name: &str| {
        if !json {
            println!("{verb:>12}  notification rule {project}/{name}");
        }
        report.push(serde_json::json!({
            "notification_rule": format!("{project}/{name}"),
            "outcome": verb,
        }));
    };
    for rule in rules {
        let current = existing.iter().find(|r| r.name == rule.name);
        let verb = match current {
            Some(r) if r.spec == rule.spec && r.source == RuleSource::File => "unchanged",
            Some(_) if plan => "would update",
            Some(_) => "updated",
            None if plan => "would create",
            None => "created",
        };
        if !plan && verb != "unchanged" {
            client
                .upsert_notification_rule(project, &rule.name, &rule.spec, RuleSource::File)
                .await
                .map_err(super::explain)
                .with_context(|| format!("notification rule {project}/{}", rule.name))?;
        }
        say(verb, &rule.name);
    }
    for old in &existing {
        if old.source != RuleSource::File || rules.iter().any(|r| r.name == old.name) {
            continue;
        }
        if !plan {
            client
                .delete_notification_rule(project, &old.name)
                .await
                .map_err(super::explain)
                .with_context(|| format!("notification rule {project}/{}", old.name))?;
        }
        say(if plan { "would delete" } else { "deleted" }, &old.name);
    }
    Ok(report)
}
