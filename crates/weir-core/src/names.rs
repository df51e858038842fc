//! Names of projects, deployments and work queues.

/// The work queue runs go to when a deployment names none.
pub const DEFAULT_QUEUE: &str = "default";

/// The names [`check`] accepts, as a JSON Schema (ECMA-262) pattern, for the OpenAPI document.
pub const PATTERN: &str = "^[a-z0-9][a-z0-9_-]{0,62}$";

/// Checks a project, deployment or queue name: 1–63 characters of lowercase letters,
/// digits, `-` and `_`, starting with a letter or digit. `kind` names the thing in the error.
pub fn check(kind: &str, name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        && name
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphanumeric());
    if ok {
        Ok(())
    } else {
        Err(format!(
            "invalid {kind} name {name:?}: use 1-63 lowercase letters, digits, '-' or '_', starting with a letter or digit"
        ))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn names() {
        assert!(super::check("project", "dev").is_ok());
        assert!(super::check("project", "data-flows_2").is_ok());
        assert!(super::check("project", "").is_err());
        assert!(super::check("project", "Dev").is_err_and(|e| e.contains("\"Dev\"")));
        assert!(super::check("project", "-x").is_err());
        assert!(super::check("project", &"a".repeat(64)).is_err());
    }
}
