//! Concurrency limits: how many runs of a deployment, or of every run carrying a tag, may hold
//! a slot at once, and what a new run does when its limit is full.
//!
//! A slot is held by a run whose current attempt holds a *live* lease (a state that
//! [`StateKind::holds_lease`] and a lease not yet expired). Nothing is acquired or released
//! separately: a run that ends, or whose process and agent die, stops holding its slot when
//! its state leaves the lease-holding set or its lease expires, so slots cannot leak. The
//! store enforces the limits in its claim statement; this module has the rules it applies, and
//! [`crate::orchestration::skip`] what a skipped run becomes.

use crate::StateKind;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The most slots a limit may have.
pub const MAX_SLOTS: u32 = 10_000;

/// The tags a tag limit may name, as a JSON Schema (ECMA-262) pattern.
pub const TAG_PATTERN: &str = "^[A-Za-z0-9][A-Za-z0-9_.:-]{0,62}$";

/// What a run of a deployment does when it is due and a limit it falls under is full.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum OnLimit {
    /// Stay queued (Scheduled, then Late) until a slot frees: the default.
    #[default]
    Wait,
    /// End at once as [`SKIPPED`], with a message naming the full limit. Only a run's first
    /// attempt is skipped; a retry of a run that already ran waits like any other.
    Skip,
}

impl OnLimit {
    /// `wait` or `skip`, as `weir.toml` spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            OnLimit::Wait => "wait",
            OnLimit::Skip => "skip",
        }
    }

    /// Whether this is the default (for `skip_serializing_if`).
    pub fn is_wait(&self) -> bool {
        *self == OnLimit::Wait
    }
}

/// The terminal state of a run skipped because its limit was full: Cancelled, because it
/// never started (it is no failure, so it does not count as one nor trigger a retry).
pub const SKIPPED: StateKind = StateKind::Cancelled;

/// Which limit: a deployment's own (`concurrency = N`) or a tag's across deployments.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind", content = "name", rename_all = "snake_case")]
pub enum LimitKey {
    /// The deployment `project/name`.
    Deployment(String),
    /// Every run carrying this tag.
    Tag(String),
}

impl std::fmt::Display for LimitKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LimitKey::Deployment(d) => write!(f, "deployment {d}'s concurrency limit"),
            LimitKey::Tag(t) => write!(f, "the concurrency limit of tag {t:?}"),
        }
    }
}

/// Checks a tag a limit is set on: 1–63 letters, digits, `_`, `.`, `:` or `-`, starting
/// with a letter or digit.
pub fn check_tag(tag: &str) -> Result<(), String> {
    let ok = !tag.is_empty()
        && tag.len() <= 63
        && tag
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphanumeric())
        && tag
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b':' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "invalid tag {tag:?} for a concurrency limit: use 1-63 letters, digits, '_', '.', ':' or '-', starting with a letter or digit"
        ))
    }
}

/// Checks a number of slots: 1 to [`MAX_SLOTS`].
pub fn check_slots(slots: u32) -> Result<(), String> {
    if (1..=MAX_SLOTS).contains(&slots) {
        Ok(())
    } else {
        Err(format!(
            "a concurrency limit of {slots} is out of range: use 1 to {MAX_SLOTS} (remove the limit to lift it)"
        ))
    }
}

/// A deployment's limit and policy in words, for `weir deployments show` and its page.
pub fn describe(concurrency: Option<u32>, on_limit: OnLimit) -> String {
    match concurrency {
        Some(n) => format!("at most {n} at once; when full: {}", on_limit.as_str()),
        None => format!(
            "no limit of its own; when a tag limit is full: {}",
            on_limit.as_str()
        ),
    }
}

/// The message a skipped run ends with.
pub fn skip_message(limit: &LimitKey, slots: u32) -> String {
    format!(
        "skipped: {limit} ({slots} running) was full when the run was due (on_limit = \"skip\")"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_and_slots() {
        assert!(check_tag("etl").is_ok());
        assert!(check_tag("team:data.v2").is_ok());
        assert!(check_tag("").is_err());
        assert!(check_tag("-x").is_err());
        assert!(check_tag("has space").is_err_and(|e| e.contains("\"has space\"")));
        assert!(check_tag(&"a".repeat(64)).is_err());
        assert!(check_slots(1).is_ok());
        assert!(check_slots(0).is_err_and(|e| e.contains("remove the limit")));
        assert!(check_slots(MAX_SLOTS + 1).is_err());
    }

    #[test]
    fn on_limit_spelling() {
        assert_eq!(
            serde_json::to_string(&OnLimit::Skip).expect("serialize"),
            "\"skip\""
        );
        assert_eq!(
            serde_json::from_str::<OnLimit>("\"wait\"").expect("parse"),
            OnLimit::Wait
        );
        assert!(OnLimit::default().is_wait());
    }
}
