//! The notification outbox: claiming due deliveries, recording how each attempt went, and
//! the delivery log.
//!
//! A delivery is claimed with a lease (`claimed_by`, `claim_expires_at`) in one statement
//! (`FOR UPDATE SKIP LOCKED` on PostgreSQL; SQLite's single writer), so with several server
//! replicas each delivery is attempted by one at a time. A replica that dies mid-delivery
//! leaves its claim to expire, and another takes the row again: at least once. Recording an
//! outcome names the claimer, so a replica whose lease was taken over cannot overwrite the
//! newer attempt's outcome.

use crate::codec::{self, micros, placeholders};
use crate::notify::stored;
use crate::{Dialect, Error, Result, Store};
use chrono::Duration;
use sqlx::{AssertSqlSafe, Row};
use std::collections::BTreeMap;
use uuid::Uuid;
use weir_core::Timestamp;
use weir_core::api::Page;
use weir_core::api::notifications::{
    Delivery, DeliveryStatus, Destination, NotificationEvent, RateLimit, UNREADABLE_DESTINATION,
};
use weir_core::notify::Message;

/// A delivery handed to one delivery loop.
#[derive(Debug, Clone)]
pub struct ClaimedDelivery {
    /// The outbox row.
    pub id: Uuid,
    /// The rule that made it.
    pub rule_id: Uuid,
    /// The rule's name.
    pub rule: String,
    /// What to send.
    pub message: Message,
    /// Where (secret references, unresolved).
    pub destination: Destination,
    /// The rule's rate limit when the event happened.
    pub rate_limit: RateLimit,
    /// This attempt's number (1 for the first).
    pub attempt: u32,
}

const DELIVERY_COLUMNS: &str = "id, rule_id, rule, project, event, title, destination, status, \
     attempts, next_at, last_error, created_at, delivered_at";

impl Store {
    /// Claims up to `limit` due deliveries for `claimer` for `lease`; each claim counts as an
    /// attempt. A claimed row this Weir cannot read is not returned, and the rest of the batch
    /// goes out now. A row written by a newer Weir is given its attempt back and released in
    /// the claim's transaction, due again when the lease would have ended, so a Weir that can
    /// read it (a newer replica) takes it then with its attempts intact. A corrupt row (no Weir
    /// can read it) is marked `Failed`, its `last_error` naming the column but not quoting the
    /// stored value. Both are logged.
    pub async fn claim_deliveries(
        &self,
        claimer: &str,
        limit: u32,
        lease: Duration,
        now: Timestamp,
    ) -> Result<Vec<ClaimedDelivery>> {
        let lock = match self.dialect {
            Dialect::Sqlite => "",
            Dialect::Postgres => " FOR UPDATE SKIP LOCKED",
        };
        let sql = format!(
            "UPDATE notification_outbox SET claimed_by = $1, claim_expires_at = $2, \
             attempts = attempts + 1 \
             WHERE id IN (SELECT id FROM notification_outbox WHERE status = $3 \
               AND next_at <= $4 AND (claim_expires_at IS NULL OR claim_expires_at < $4) \
               ORDER BY next_at, id LIMIT $5{lock}) \
             RETURNING id, rule_id, rule, message, destination, rate_count, rate_per_s, attempts"
        );
        let mut tx = self.begin_write().await?;
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(claimer)
            .bind(micros(now + lease))
            .bind(DeliveryStatus::Pending.as_str())
            .bind(micros(now))
            .bind(i64::from(limit))
            .fetch_all(&mut *tx)
            .await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            // The stored id text, to address the row even when it is not a UUID.
            let id: String = row.try_get("id")?;
            match claimed(row) {
                Ok(d) => out.push(d),
                Err(error @ Error::NewerFormat { .. }) => {
                    tracing::error!(
                        message = "delivery released: this Weir cannot read it",
                        delivery = %id,
                        %error
                    );
                    sqlx::query(
                        "UPDATE notification_outbox SET attempts = attempts - 1, \
                         claimed_by = NULL, claim_expires_at = NULL, next_at = $1 \
                         WHERE id = $2 AND claimed_by = $3",
                    )
                    .bind(micros(now + lease))
                    .bind(&id)
                    .bind(claimer)
                    .execute(&mut *tx)
                    .await?;
                }
                Err(Error::Corrupt { column, .. }) => {
                    let column = qualified(column);
                    tracing::error!(
                        message = "delivery failed: its stored value cannot be read",
                        delivery = %id,
                        column
                    );
                    sqlx::query(
                        "UPDATE notification_outbox SET status = $1, last_error = $2, \
                         claimed_by = NULL, claim_expires_at = NULL \
                         WHERE id = $3 AND claimed_by = $4",
                    )
                    .bind(DeliveryStatus::Failed.as_str())
                    .bind(format!(
                        "the stored value of {column} cannot be read; the delivery is given up"
                    ))
                    .bind(&id)
                    .bind(claimer)
                    .execute(&mut *tx)
                    .await?;
                }
                Err(error) => return Err(error),
            }
        }
        tx.commit().await?;
        out.sort_by_key(|d| d.id);
        Ok(out)
    }

    /// How many deliveries of `rule` were delivered at or after `since` (for its rate limit).
    pub async fn delivered_since(&self, rule: Uuid, since: Timestamp) -> Result<u64> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS n FROM notification_outbox \
             WHERE rule_id = $1 AND status = $2 AND delivered_at >= $3",
        )
        .bind(rule.to_string())
        .bind(DeliveryStatus::Delivered.as_str())
        .bind(micros(since))
        .fetch_one(&self.write)
        .await?;
        let n: i64 = row.try_get("n")?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// Records the outcome of `claimer`'s attempt at delivery `id`: `Delivered`,
    /// `Suppressed`, `Failed` (given up), or `Pending` to try again at `retry_at`. Returns
    /// false when the claim was no longer `claimer`'s (another replica took it over).
    pub async fn finish_delivery(
        &self,
        id: Uuid,
        claimer: &str,
        status: DeliveryStatus,
        error: Option<&str>,
        retry_at: Option<Timestamp>,
        now: Timestamp,
    ) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        let n = sqlx::query(
            "UPDATE notification_outbox SET status = $1, last_error = $2, \
             next_at = COALESCE($3, next_at), delivered_at = $4, claimed_by = NULL, \
             claim_expires_at = NULL WHERE id = $5 AND claimed_by = $6",
        )
        .bind(status.as_str())
        .bind(error.map(str::to_string))
        .bind(retry_at.map(micros))
        .bind((status == DeliveryStatus::Delivered).then(|| micros(now)))
        .bind(id.to_string())
        .bind(claimer)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(n > 0)
    }

    /// The delivery log of `projects` (`None`: all), newest first; only rule `rule` when given.
    pub async fn deliveries(
        &self,
        projects: Option<&[String]>,
        rule: Option<&str>,
        before: Option<Uuid>,
        limit: u32,
    ) -> Result<Page<Delivery>> {
        let limit = limit.clamp(1, 1000);
        let mut clauses = vec!["id < $1".to_string(), "($2 IS NULL OR rule = $2)".into()];
        let first = 4;
        if let Some(ps) = projects {
            if ps.is_empty() {
                return Ok(Page {
                    items: vec![],
                    next_cursor: None,
                });
            }
            clauses.push(format!("project IN ({})", placeholders(first, ps.len())));
        }
        let sql = format!(
            "SELECT {DELIVERY_COLUMNS} FROM notification_outbox WHERE {} ORDER BY id DESC LIMIT $3",
            clauses.join(" AND ")
        );
        // `before` defaults to the largest id text, so the cursor clause is always there.
        let mut q = sqlx::query(AssertSqlSafe(sql))
            .bind(before.map(|b| b.to_string()).unwrap_or_else(|| "~".into()))
            .bind(rule.map(str::to_string))
            .bind(i64::from(limit) + 1);
        for p in projects.unwrap_or_default() {
            q = q.bind(p.clone());
        }
        let rows = q.fetch_all(&self.read).await?;
        let mut items = rows.iter().map(delivery).collect::<Result<Vec<_>>>()?;
        let next_cursor = if items.len() > limit as usize {
            items.truncate(limit as usize);
            items.last().map(|d| d.id.to_string())
        } else {
            None
        };
        Ok(Page { items, next_cursor })
    }

    /// One delivery of the log.
    pub async fn delivery(&self, id: Uuid) -> Result<Delivery> {
        let row = sqlx::query(AssertSqlSafe(format!(
            "SELECT {DELIVERY_COLUMNS} FROM notification_outbox WHERE id = $1"
        )))
        .bind(id.to_string())
        .fetch_optional(&self.write)
        .await?
        .ok_or_else(|| Error::NotFound(format!("delivery {id}")))?;
        delivery(&row)
    }

    /// Deliveries by status, for metrics.
    pub async fn delivery_counts(&self) -> Result<BTreeMap<DeliveryStatus, u64>> {
        let rows =
            sqlx::query("SELECT status, COUNT(*) AS n FROM notification_outbox GROUP BY status")
                .fetch_all(&self.read)
                .await?;
        let mut out = BTreeMap::new();
        for row in &rows {
            let s: String = row.try_get("status")?;
            let n: i64 = row.try_get("n")?;
            if let Some(status) = DeliveryStatus::parse(&s) {
                out.insert(status, u64::try_from(n).unwrap_or(0));
            }
        }
        Ok(out)
    }
}

/// `column` as `notification_outbox.column` (the codec names plain columns by themselves).
fn qualified(column: &str) -> String {
    if column.contains('.') {
        column.to_string()
    } else {
        format!("notification_outbox.{column}")
    }
}

/// A claimed outbox row as its delivery loop needs it.
fn claimed(row: &sqlx::any::AnyRow) -> Result<ClaimedDelivery> {
    let count: i64 = row.try_get("rate_count")?;
    let per: i64 = row.try_get("rate_per_s")?;
    let id = codec::uuid(row, "id")?;
    let (message, destination): (String, String) =
        (row.try_get("message")?, row.try_get("destination")?);
    Ok(ClaimedDelivery {
        id,
        rule_id: codec::uuid(row, "rule_id")?,
        rule: row.try_get("rule")?,
        message: stored::decode_message(&message, || format!("delivery {id}"))?,
        destination: stored::decode_destination(&destination, || format!("delivery {id}"))?,
        rate_limit: RateLimit {
            count: u32::try_from(count).unwrap_or(u32::MAX),
            per_s: u64::try_from(per).unwrap_or(1),
        },
        attempt: codec::u32_col(row, "attempts")?,
    })
}

/// What the delivery log shows of a stored destination: its kind, or [`UNREADABLE_DESTINATION`] when this
/// Weir cannot read it (a newer Weir's, or corrupt), so one such row does not fail the page
/// that holds it. A corrupt row is `failed` with its last error saying so.
fn destination_kind(text: &str, id: Uuid) -> Result<String> {
    match stored::decode_destination(text, || format!("delivery {id}")) {
        Ok(d) => Ok(d.kind().to_string()),
        Err(Error::NewerFormat { .. } | Error::Corrupt { .. }) => {
            Ok(UNREADABLE_DESTINATION.to_string())
        }
        Err(e) => Err(e),
    }
}

fn delivery(row: &sqlx::any::AnyRow) -> Result<Delivery> {
    let event: String = row.try_get("event")?;
    let status: String = row.try_get("status")?;
    let id = codec::uuid(row, "id")?;
    let destination: String = row.try_get("destination")?;
    let destination = destination_kind(&destination, id)?;
    let status = DeliveryStatus::parse(&status).ok_or_else(|| Error::Corrupt {
        column: "notification_outbox.status",
        reason: format!("unknown status {status:?}"),
    })?;
    let next_at: i64 = row.try_get("next_at")?;
    Ok(Delivery {
        id,
        rule_id: codec::uuid(row, "rule_id")?,
        rule: row.try_get("rule")?,
        project: row.try_get("project")?,
        event: NotificationEvent::parse(&event).ok_or_else(|| Error::Corrupt {
            column: "notification_outbox.event",
            reason: format!("unknown event {event:?}"),
        })?,
        title: row.try_get("title")?,
        destination,
        status,
        attempts: codec::u32_col(row, "attempts")?,
        next_attempt_at: (status == DeliveryStatus::Pending)
            .then(|| codec::time_of("next_at", next_at))
            .transpose()?,
        last_error: row.try_get("last_error")?,
        created_at: codec::time(row, "created_at")?,
        delivered_at: codec::opt_time(row, "delivered_at")?,
    })
}
