//! Flows whose only job is their parameter schemas: `weir-schema-zoo describe` prints what the
//! Rust SDK emits for common parameter types. The Python SDK's tests compare its own schemas
//! for the same signatures (`sdk/python/tests/test_schema.py`) against this output, so the two
//! SDKs keep one schema shape for server-side validation and the Quick-run form.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use weir::prelude::*;

// Variants and fields carry no doc comments: a Python `Enum` or dataclass has nowhere to put
// them, and the schemas are compared as they are.
/// How to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
enum Mode {
    Fast,
    Slow,
}

/// A data source.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
struct Source {
    bucket: String,
    key: String,
    attempts: i64,
}

/// Scalars with and without defaults.
#[flow]
async fn scalars(
    name: String,
    #[param(default = 3)] count: i64,
    #[param(default = 0.5, description = "Share of rows to keep")] ratio: f64,
    #[param(default = false)] dry_run: bool,
) -> anyhow::Result<String> {
    Ok(format!("{name} {count} {ratio} {dry_run}"))
}

/// Optional values, lists and maps.
#[flow]
async fn containers(
    region: Option<String>,
    #[param(default = Vec::new())] tags: Vec<String>,
    #[param(default = BTreeMap::new())] limits: BTreeMap<String, i64>,
    #[param(default = None)] sample: Option<f64>,
) -> anyhow::Result<usize> {
    Ok(tags.len() + limits.len() + usize::from(region.is_some()) + usize::from(sample.is_some()))
}

/// Enumerations and structures.
#[flow]
async fn structured(
    #[param(default = Mode::Fast)] mode: Mode,
    source: Source,
    #[param(default = None)] fallback: Option<Source>,
) -> anyhow::Result<String> {
    Ok(format!("{mode:?} {} {}", source.bucket, fallback.is_some()))
}

weir::main!(scalars, containers, structured);
