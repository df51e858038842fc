//! Wire types of API keys and the audit log.

use super::NOT_BLANK;
use crate::Timestamp;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Longest API key lifetime: ten years, in seconds.
pub const MAX_KEY_LIFETIME_S: u64 = 10 * 365 * 86400;

/// Body of `POST /api/v1/keys`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateApiKey {
    /// A name for the service account, e.g. `ci`, at most 100 characters.
    #[schemars(length(max = 100), pattern(NOT_BLANK))]
    pub name: String,
    /// What the key may do: admin, developer, agent or viewer.
    pub role: crate::auth::Role,
    /// Restrict it to one project.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(crate::names::PATTERN))]
    pub project: Option<String>,
    /// Lifetime in seconds, at most ten years (none: no expiry).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = MAX_KEY_LIFETIME_S))]
    pub expires_in_s: Option<u64>,
}

/// An API key as listed: never its secret.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ApiKey {
    /// Public key id (the part after `weir_`).
    pub id: String,
    /// The service account's name, given when the key was created (not unique).
    pub name: String,
    /// What the key may do: admin, developer, agent or viewer.
    pub role: crate::auth::Role,
    /// The one project it may see; absent for a key of every project.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
    /// When it was created (the server's clock).
    pub created_at: Timestamp,
    /// When it stops working; absent for a key that never expires.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<Timestamp>,
    /// When it was revoked (it works no more); absent while it is not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<Timestamp>,
    /// Who created it (a key id, or `bootstrap`).
    pub created_by: String,
}

/// Answer to a key creation: the only time the secret is shown.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CreatedApiKey {
    /// The key as it will be listed from now on (without its secret).
    pub key: ApiKey,
    /// The full key to pass as `Authorization: Bearer …`. Store it now: it is not kept.
    pub secret: String,
}

/// One entry of the audit log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct AuditEntry {
    /// The entry's id (UUIDv7: id order is the order entries were written).
    pub id: Uuid,
    /// When the action was taken (the server's clock).
    pub at: Timestamp,
    /// Who: `name (key id)`.
    pub actor: String,
    /// What, e.g. `deploy`, `run`, `cancel`, `retry`, `key.create`, `key.revoke`.
    pub action: String,
    /// On what, e.g. `dev/etl` or a run id.
    pub target: String,
    /// What else the action recorded (such as the name of a revoked key); absent when
    /// nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}
