//! Notification rules, and writing the outbox rows a change triggers.
//!
//! [`enqueue_run_events`] and [`enqueue_deployment_event`] run inside the transaction of the
//! state change or deployment write they are about, so the event and its notifications
//! commit together or not at all: a crash never loses one. Which rules want which event is
//! `weir_core::notify`'s decision. Delivering is the outbox's (`outbox.rs`). The JSON columns
//! of both, a rule's spec and an outbox row's message and destination, are written and read
//! only through [`stored`], in versioned shapes of the store's own.

use crate::codec::{self, micros};
use crate::{Error, Result, Store};
use sqlx::{Any, Row, Transaction};
use std::collections::HashMap;
use uuid::Uuid;
use weir_core::Timestamp;
use weir_core::api::notifications::{
    DeliveryStatus, NotificationEvent, NotificationRule, NotificationRuleSpec, RuleSource,
};
use weir_core::deployment::Deployment;
use weir_core::notify::{self, Message};
use weir_core::run::Run;

pub(crate) mod stored;

const RULE_COLUMNS: &str = "id, project, name, spec, source, created_at, updated_at";

impl Store {
    /// Creates or replaces rule `name` of `project` (creating the project if needed). The
    /// boolean is true when the rule is new.
    pub async fn upsert_notification_rule(
        &self,
        project: &str,
        name: &str,
        spec: &NotificationRuleSpec,
        source: RuleSource,
        now: Timestamp,
    ) -> Result<(NotificationRule, bool)> {
        self.ensure_project(project, now).await?;
        let id = Uuid::now_v7();
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO notification_rules (id, project, name, spec, source, created_at, \
             updated_at) VALUES ($1, $2, $3, $4, $5, $6, $6) \
             ON CONFLICT (project, name) DO UPDATE SET spec = excluded.spec, \
             source = excluded.source, updated_at = excluded.updated_at",
        )
        .bind(id.to_string())
        .bind(project)
        .bind(name)
        .bind(stored::encode_rule(spec))
        .bind(source.as_str())
        .bind(micros(now))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        let rule = self.notification_rule(project, name).await?;
        let created = rule.id == id;
        Ok((rule, created))
    }

    /// One rule.
    pub async fn notification_rule(&self, project: &str, name: &str) -> Result<NotificationRule> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {RULE_COLUMNS} FROM notification_rules WHERE project = $1 AND name = $2"
        )))
        .bind(project)
        .bind(name)
        .fetch_optional(&self.write)
        .await?
        .ok_or_else(|| Error::NotFound(format!("notification rule {project}/{name}")))?;
        rule(&row)
    }

    /// The rules of `projects` (`None`: all), by project and name. Only those projects' rows
    /// are read (the filter is in SQL), so a rule of another project that this Weir cannot
    /// read does not fail the listing.
    pub async fn notification_rules(
        &self,
        projects: Option<&[String]>,
    ) -> Result<Vec<NotificationRule>> {
        let filter = match projects {
            None => String::new(),
            Some([]) => return Ok(vec![]),
            Some(ps) => format!(" WHERE project IN ({})", codec::placeholders(1, ps.len())),
        };
        let sql =
            format!("SELECT {RULE_COLUMNS} FROM notification_rules{filter} ORDER BY project, name");
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for p in projects.unwrap_or_default() {
            q = q.bind(p.clone());
        }
        let rows = q.fetch_all(&self.read).await?;
        rows.iter().map(rule).collect()
    }

    /// Deletes a rule; its deliveries stay in the log. Returns whether it existed.
    pub async fn delete_notification_rule(&self, project: &str, name: &str) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        let n = sqlx::query("DELETE FROM notification_rules WHERE project = $1 AND name = $2")
            .bind(project)
            .bind(name)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        Ok(n > 0)
    }

    /// Puts a test notification of `rule` in the outbox, due now. Returns its id.
    pub async fn enqueue_test_notification(
        &self,
        rule: &NotificationRule,
        now: Timestamp,
    ) -> Result<Uuid> {
        let message = notify::test_message(&rule.project, &rule.name, now);
        let mut tx = self.begin_write().await?;
        let id = insert(&mut tx, rule.id, &rule.name, &rule.spec, &message, now).await?;
        tx.commit().await?;
        Ok(id)
    }
}

fn rule(row: &sqlx::any::AnyRow) -> Result<NotificationRule> {
    let source: String = row.try_get("source")?;
    let project: String = row.try_get("project")?;
    let name: String = row.try_get("name")?;
    let spec: String = row.try_get("spec")?;
    let spec = stored::decode_rule(&spec, || format!("notification rule {project}/{name}"))?;
    Ok(NotificationRule {
        id: codec::uuid(row, "id")?,
        project,
        name,
        spec,
        source: match source.as_str() {
            "file" => RuleSource::File,
            _ => RuleSource::Api,
        },
        created_at: codec::time(row, "created_at")?,
        updated_at: codec::time(row, "updated_at")?,
    })
}

/// Writes the notifications the changes of runs (`(prev, next)`, in order) trigger, in the
/// changes' own transaction. Reads each project's rules once, and nothing when no change is
/// an event.
pub(crate) async fn enqueue_run_events(
    tx: &mut Transaction<'static, Any>,
    changes: &[(&Run, &Run)],
) -> Result<()> {
    let mut rules: HashMap<&str, Vec<StoredRule>> = HashMap::new();
    for (prev, next) in changes {
        let events = notify::run_events(prev, next);
        if events.is_empty() {
            continue;
        }
        if !rules.contains_key(next.project.as_str()) {
            let of_project = project_rules(tx, &next.project).await?;
            rules.insert(next.project.as_str(), of_project);
        }
        let of_project = rules
            .get(next.project.as_str())
            .map_or(&[][..], Vec::as_slice);
        enqueue(tx, of_project, next.deployment.as_deref(), &events, |e| {
            notify::run_message(e, next)
        })
        .await?;
    }
    Ok(())
}

/// Writes the notifications of `event` of deployment `d` (as it is after the write), in the
/// write's own transaction.
pub(crate) async fn enqueue_deployment_event(
    tx: &mut Transaction<'static, Any>,
    event: NotificationEvent,
    d: &Deployment,
    now: Timestamp,
) -> Result<()> {
    let rules = project_rules(tx, &d.project).await?;
    enqueue(tx, &rules, Some(&d.name), &[event], |e| {
        notify::deployment_message(e, d, now)
    })
    .await
}

/// A rule as the outbox needs it: id, name and spec.
type StoredRule = (Uuid, String, NotificationRuleSpec);

/// The rules of `project` this Weir can read, read in `tx`. A rule whose stored id or spec it
/// cannot read (written by a newer Weir, or corrupt) is left out with an error logged, so
/// one unreadable rule costs its own notifications, not every state change of its project;
/// the rules API refuses it by name. The log names the rule and, for a corrupt one, only the
/// column, never the stored text. A database error still fails the read.
async fn project_rules(
    tx: &mut Transaction<'static, Any>,
    project: &str,
) -> Result<Vec<StoredRule>> {
    let rows = sqlx::query("SELECT id, name, spec FROM notification_rules WHERE project = $1")
        .bind(project)
        .fetch_all(&mut **tx)
        .await?;
    let mut rules = Vec::with_capacity(rows.len());
    for row in &rows {
        let name: String = row.try_get("name")?;
        let spec: String = row.try_get("spec")?;
        let decoded = codec::uuid(row, "id").and_then(|id| {
            let spec =
                stored::decode_rule(&spec, || format!("notification rule {project}/{name}"))?;
            Ok((id, spec))
        });
        match decoded {
            Ok((id, spec)) => rules.push((id, name, spec)),
            Err(error @ Error::NewerFormat { .. }) => {
                tracing::error!(
                    message = "notification rule skipped: this Weir cannot read it",
                    rule = %format!("{project}/{name}"),
                    %error
                );
            }
            Err(Error::Corrupt { column, .. }) => {
                let column = if column.contains('.') {
                    column.to_string()
                } else {
                    format!("notification_rules.{column}")
                };
                tracing::error!(
                    message = "notification rule skipped: its stored value cannot be read",
                    rule = %format!("{project}/{name}"),
                    column
                );
            }
            Err(error) => return Err(error),
        }
    }
    Ok(rules)
}

async fn enqueue(
    tx: &mut Transaction<'static, Any>,
    rules: &[StoredRule],
    deployment: Option<&str>,
    events: &[NotificationEvent],
    message: impl Fn(NotificationEvent) -> Message,
) -> Result<()> {
    for (id, name, spec) in rules {
        for &event in events {
            if notify::wants(spec, event, deployment) {
                let m = message(event);
                let at = m.at;
                insert(tx, *id, name, spec, &m, at).await?;
            }
        }
    }
    Ok(())
}

async fn insert(
    tx: &mut Transaction<'static, Any>,
    rule_id: Uuid,
    rule: &str,
    spec: &NotificationRuleSpec,
    message: &Message,
    now: Timestamp,
) -> Result<Uuid> {
    let id = Uuid::now_v7();
    sqlx::query(
        "INSERT INTO notification_outbox (id, rule_id, rule, project, event, title, message, \
         destination, rate_count, rate_per_s, status, attempts, next_at, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 0, $12, $12)",
    )
    .bind(id.to_string())
    .bind(rule_id.to_string())
    .bind(rule)
    .bind(&message.project)
    .bind(message.event.as_str())
    .bind(&message.title)
    .bind(stored::encode_message(message))
    .bind(stored::encode_destination(&spec.destination))
    .bind(i64::from(spec.rate_limit.count))
    .bind(i64::try_from(spec.rate_limit.per_s).unwrap_or(i64::MAX))
    .bind(DeliveryStatus::Pending.as_str())
    .bind(micros(now))
    .execute(&mut **tx)
    .await?;
    Ok(id)
}
