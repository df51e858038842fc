//! Wire types of tag concurrency limits.

use crate::Timestamp;
use crate::limits::TAG_PATTERN;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A tag's concurrency limit: at most `slots` runs carrying the tag hold a slot at once,
/// across deployments and projects.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ConcurrencyLimit {
    /// The tag whose runs the limit counts, as deployments' and runs' `tags` name it.
    pub tag: String,
    /// How many runs may hold a slot at once.
    pub slots: u32,
    /// The runs holding a slot now (their attempt holds a live lease), oldest claim first.
    pub holders: Vec<Uuid>,
    /// When the limit was first set.
    pub created_at: Timestamp,
    /// When its number of slots last changed.
    pub updated_at: Timestamp,
}

/// Body of `PUT /concurrency_limits/{tag}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SetConcurrencyLimit {
    /// How many runs carrying the tag may hold a slot at once.
    #[schemars(range(min = 1, max = crate::limits::MAX_SLOTS))]
    pub slots: u32,
}

/// Path of the tag-limit endpoints: `/concurrency_limits/{tag}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TagPath {
    /// The tag whose limit is read, set or removed.
    #[schemars(pattern(TAG_PATTERN))]
    pub tag: String,
}
