//! API keys (stored as digests only), the audit log, and server settings.

use crate::codec::{self, micros};
use crate::{Error, Result, Store};
use sqlx::Row;
use sqlx::any::AnyRow;
use uuid::Uuid;
use weir_core::Timestamp;
use weir_core::api::{ApiKey, AuditEntry, Page};

const KEY_COLUMNS: &str = "id, name, role, project, created_at, expires_at, revoked_at, created_by";

fn api_key(row: &AnyRow) -> Result<ApiKey> {
    let role: String = row.try_get("role")?;
    Ok(ApiKey {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        role: role.parse().map_err(|reason| Error::Corrupt {
            column: "role",
            reason,
        })?,
        project: row.try_get("project")?,
        created_at: codec::time(row, "created_at")?,
        expires_at: codec::opt_time(row, "expires_at")?,
        revoked_at: codec::opt_time(row, "revoked_at")?,
        created_by: row.try_get("created_by")?,
    })
}

impl Store {
    /// Stores a new key's record and the digest of its secret.
    pub async fn create_api_key(&self, key: &ApiKey, digest: &str) -> Result<()> {
        sqlx::query(
            "INSERT INTO api_keys (id, name, role, project, digest, created_at, expires_at, \
             revoked_at, created_by) VALUES ($1, $2, $3, $4, $5, $6, $7, NULL, $8)",
        )
        .bind(&key.id)
        .bind(&key.name)
        .bind(key.role.as_str())
        .bind(key.project.clone())
        .bind(digest)
        .bind(micros(key.created_at))
        .bind(key.expires_at.map(micros))
        .bind(&key.created_by)
        .execute(&self.write)
        .await?;
        Ok(())
    }

    /// A key's record and digest, by public id.
    pub async fn api_key(&self, id: &str) -> Result<Option<(ApiKey, String)>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {KEY_COLUMNS}, digest FROM api_keys WHERE id = $1"
        )))
        .bind(id)
        .fetch_optional(&self.read)
        .await?;
        row.map(|r| Ok((api_key(&r)?, r.try_get("digest")?)))
            .transpose()
    }

    /// All keys, newest first (never their secrets).
    pub async fn api_keys(&self) -> Result<Vec<ApiKey>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {KEY_COLUMNS} FROM api_keys ORDER BY created_at DESC"
        )))
        .fetch_all(&self.read)
        .await?;
        rows.iter().map(api_key).collect()
    }

    /// How many keys exist (revoked ones included).
    pub async fn api_key_count(&self) -> Result<u64> {
        let n: i64 = sqlx::query("SELECT COUNT(*) AS n FROM api_keys")
            .fetch_one(&self.read)
            .await?
            .try_get("n")?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// Revokes a key at once. Revoking a revoked key keeps the first revocation time. An
    /// active unscoped admin key is revoked only while another unscoped admin key that never
    /// expires remains, so the server can neither lose its last admin by revocation nor by
    /// the expiry of the admins left: otherwise an [`Error::Invalid`] says what to do.
    pub async fn revoke_api_key(&self, id: &str, now: Timestamp) -> Result<ApiKey> {
        // One statement, so the check and the change cannot be split by another revocation.
        let changed = sqlx::query(
            "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, $1) WHERE id = $2 AND NOT ( \
             role = 'admin' AND project IS NULL AND revoked_at IS NULL \
             AND (expires_at IS NULL OR expires_at > $1) \
             AND NOT EXISTS (SELECT 1 FROM api_keys o WHERE o.id <> $2 AND o.role = 'admin' \
             AND o.project IS NULL AND o.revoked_at IS NULL AND o.expires_at IS NULL))",
        )
        .bind(micros(now))
        .bind(id)
        .execute(&self.write)
        .await?
        .rows_affected();
        let key = self
            .api_key(id)
            .await?
            .map(|(k, _)| k)
            .ok_or_else(|| Error::NotFound(format!("API key {id}")))?;
        if changed == 0 {
            return Err(Error::Invalid(format!(
                "API key {id} is the last admin key that does not expire: revoking it would \
                 leave nobody able to manage this server (now, or once the other admin keys \
                 expire). Create another admin key without expiry first (weir keys create \
                 --role admin), then revoke this one"
            )));
        }
        Ok(key)
    }

    /// Appends to the audit log.
    pub async fn audit(
        &self,
        actor: &str,
        action: &str,
        target: &str,
        detail: Option<String>,
        now: Timestamp,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO audit_log (id, at, actor, action, target, detail) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(Uuid::now_v7().to_string())
        .bind(micros(now))
        .bind(actor)
        .bind(action)
        .bind(target)
        .bind(detail)
        .execute(&self.write)
        .await?;
        Ok(())
    }

    /// The audit log, newest first, a page at a time (`before`: the previous page's cursor).
    pub async fn audit_log(&self, before: Option<Uuid>, limit: u32) -> Result<Page<AuditEntry>> {
        let limit = limit.clamp(1, 1000);
        let rows = sqlx::query(
            "SELECT id, at, actor, action, target, detail FROM audit_log WHERE id < $1 \
             ORDER BY id DESC LIMIT $2",
        )
        .bind(before.map(|b| b.to_string()).unwrap_or_else(|| "g".into()))
        .bind(i64::from(limit) + 1)
        .fetch_all(&self.read)
        .await?;
        let mut items = rows
            .iter()
            .map(|r| {
                Ok(AuditEntry {
                    id: crate::codec::uuid(r, "id")?,
                    at: codec::time(r, "at")?,
                    actor: r.try_get("actor")?,
                    action: r.try_get("action")?,
                    target: r.try_get("target")?,
                    detail: r.try_get("detail")?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let next_cursor = if items.len() > limit as usize {
            items.truncate(limit as usize);
            items.last().map(|e| e.id.to_string())
        } else {
            None
        };
        Ok(Page { items, next_cursor })
    }

    /// A server setting, creating it with `init()` if absent (first writer wins, so every
    /// replica ends up with the same value).
    pub async fn setting_or_init(
        &self,
        name: &str,
        init: impl FnOnce() -> String,
    ) -> Result<String> {
        sqlx::query(
            "INSERT INTO settings (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(init())
        .execute(&self.write)
        .await?;
        let value: String = sqlx::query("SELECT value FROM settings WHERE name = $1")
            .bind(name)
            .fetch_one(&self.write)
            .await?
            .try_get("value")?;
        Ok(value)
    }

    /// The key that registered an agent, if any.
    pub async fn agent_key(&self, agent: Uuid) -> Result<Option<String>> {
        let row = sqlx::query("SELECT key_id FROM agents WHERE id = $1")
            .bind(agent.to_string())
            .fetch_optional(&self.read)
            .await?
            .ok_or_else(|| Error::NotFound(format!("agent {agent}")))?;
        Ok(row.try_get("key_id")?)
    }
}
