//! Concurrency limits: tag limits (their own table) and the SQL that counts slots.
//!
//! A deployment's limit is the `concurrency` column copied from its spec; a tag's is a row of
//! `concurrency_limits`. No slot is stored anywhere: a slot is held by a run whose attempt
//! holds a *live* lease (a lease-holding state and `lease_expires_at` not yet passed), counted
//! when a claim needs it — so a run whose process and agent died frees its slot the moment its
//! lease expires, before the crash detector even looks at it.

use crate::codec::{self, micros};
use crate::{Dialect, Error, Result, Store, states};
use sqlx::{AssertSqlSafe, Row};
use uuid::Uuid;
use weir_core::Timestamp;
use weir_core::api::ConcurrencyLimit;

/// `tags` (a JSON array column) contains `tag` (an SQL text expression).
pub(crate) fn has_tag(dialect: Dialect, tags: &str, tag: &str) -> String {
    match dialect {
        Dialect::Sqlite => {
            format!("EXISTS (SELECT 1 FROM json_each({tags}) jt WHERE jt.value = {tag})")
        }
        Dialect::Postgres => format!("(({tags})::jsonb @> jsonb_build_array({tag}))"),
    }
}

/// Run `h` holds a slot at `now` (an SQL expression such as `$3`).
fn holds_slot(h: &str, now: &str) -> String {
    format!(
        "{h}.state IN ({}) AND {h}.lease_expires_at >= {now}",
        *states::LEASED
    )
}

/// Run `c` falls under a limit: its deployment has one, or one of its tags has.
pub(crate) fn limited(dialect: Dialect, c: &str) -> String {
    format!(
        "(EXISTS (SELECT 1 FROM deployments dl WHERE dl.id = {c}.deployment_id \
         AND dl.concurrency IS NOT NULL) \
         OR EXISTS (SELECT 1 FROM concurrency_limits tl WHERE {}))",
        has_tag(dialect, &format!("{c}.tags"), "tl.tag")
    )
}

/// Run `c`'s deployment limit is full at `now`.
pub(crate) fn deployment_full(c: &str, now: &str) -> String {
    format!(
        "EXISTS (SELECT 1 FROM deployments df WHERE df.id = {c}.deployment_id \
         AND df.concurrency IS NOT NULL AND (SELECT COUNT(*) FROM flow_runs hd \
         WHERE hd.deployment_id = df.id AND {}) >= df.concurrency)",
        holds_slot("hd", now)
    )
}

/// The first of run `c`'s tags whose limit is full at `now` (a scalar subquery; NULL if none).
pub(crate) fn full_tag(dialect: Dialect, c: &str, now: &str) -> String {
    format!(
        "(SELECT tf.tag FROM concurrency_limits tf WHERE {} AND (SELECT COUNT(*) FROM flow_runs ht \
         WHERE {} AND {}) >= tf.slots ORDER BY tf.tag LIMIT 1)",
        has_tag(dialect, &format!("{c}.tags"), "tf.tag"),
        holds_slot("ht", now),
        has_tag(dialect, "ht.tags", "tf.tag"),
    )
}

/// Run `c` may take a slot at `now`: none of its limits is full.
pub(crate) fn slot_free(dialect: Dialect, c: &str, now: &str) -> String {
    format!(
        "NOT {} AND {} IS NULL",
        deployment_full(c, now),
        full_tag(dialect, c, now)
    )
}

impl Store {
    /// Whether any limit exists (so claims can skip the limited path entirely when none does).
    pub(crate) async fn any_limit(&self) -> Result<bool> {
        let row = sqlx::query(
            "SELECT (SELECT COUNT(*) FROM concurrency_limits) + \
             (SELECT COUNT(*) FROM deployments WHERE concurrency IS NOT NULL) AS n",
        )
        .fetch_one(&self.read)
        .await?;
        Ok(row.try_get::<i64, _>("n")? > 0)
    }

    /// Sets (creates or changes) the limit of `tag`.
    pub async fn set_tag_limit(
        &self,
        tag: &str,
        slots: u32,
        now: Timestamp,
    ) -> Result<ConcurrencyLimit> {
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO concurrency_limits (tag, slots, created_at, updated_at) \
             VALUES ($1, $2, $3, $3) \
             ON CONFLICT (tag) DO UPDATE SET slots = excluded.slots, updated_at = excluded.updated_at",
        )
        .bind(tag)
        .bind(i64::from(slots))
        .bind(micros(now))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        self.tag_limit(tag, now).await
    }

    /// Removes the limit of `tag`; false if it had none.
    pub async fn remove_tag_limit(&self, tag: &str) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        let n = sqlx::query("DELETE FROM concurrency_limits WHERE tag = $1")
            .bind(tag)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        Ok(n > 0)
    }

    /// One tag's limit with the runs holding its slots at `now`.
    pub async fn tag_limit(&self, tag: &str, now: Timestamp) -> Result<ConcurrencyLimit> {
        self.tag_limits(now)
            .await?
            .into_iter()
            .find(|l| l.tag == tag)
            .ok_or_else(|| Error::NotFound(format!("concurrency limit of tag {tag:?}")))
    }

    /// Every tag limit, by tag, with the runs holding its slots at `now`.
    pub async fn tag_limits(&self, now: Timestamp) -> Result<Vec<ConcurrencyLimit>> {
        let rows = sqlx::query(
            "SELECT tag, slots, created_at, updated_at FROM concurrency_limits ORDER BY tag",
        )
        .fetch_all(&self.read)
        .await?;
        if rows.is_empty() {
            return Ok(vec![]);
        }
        let holders = self.slot_holders(now).await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let tag: String = row.try_get("tag")?;
            let slots = crate::codec::u32_col(&row, "slots")?;
            let holders = holders
                .iter()
                .filter(|h| h.tags.contains(&tag))
                .map(|h| h.id)
                .collect();
            out.push(ConcurrencyLimit {
                tag,
                slots,
                holders,
                created_at: codec::time(&row, "created_at")?,
                updated_at: codec::time(&row, "updated_at")?,
            });
        }
        Ok(out)
    }

    /// Every tag limit's tag and slots.
    pub(crate) async fn tag_limit_slots(&self) -> Result<Vec<(String, u32)>> {
        let rows = sqlx::query("SELECT tag, slots FROM concurrency_limits ORDER BY tag")
            .fetch_all(&self.read)
            .await?;
        rows.iter()
            .map(|row| Ok((row.try_get("tag")?, crate::codec::u32_col(row, "slots")?)))
            .collect()
    }

    /// Every run holding a slot at `now` (whatever its limits), oldest claim first.
    pub(crate) async fn slot_holders(&self, now: Timestamp) -> Result<Vec<Holder>> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT h.id, h.deployment_id, h.tags FROM flow_runs h WHERE {} \
             ORDER BY h.state_at, h.id LIMIT 100000",
            holds_slot("h", "$1")
        )))
        .bind(micros(now))
        .fetch_all(&self.read)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(Holder {
                    id: crate::codec::uuid(row, "id")?,
                    deployment: crate::codec::opt_uuid(row, "deployment_id")?,
                    tags: crate::codec::json(row, "tags")?,
                })
            })
            .collect()
    }
}

/// A run holding a slot.
pub(crate) struct Holder {
    pub(crate) id: Uuid,
    pub(crate) deployment: Option<Uuid>,
    pub(crate) tags: Vec<String>,
}
