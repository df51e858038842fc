//! Secret references: how a deployment names a secret without holding its value.
//!
//! A reference is `SCHEME:PATH` (`env:DB_PASSWORD`, `file:/run/secrets/token`,
//! `ssm:/team/db_password`, `secretsmanager:prod/db#password`). The server stores only
//! references; the agent (or ECS, with its execution role) resolves them at launch.

use std::fmt;

/// Where a secret's value lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SecretScheme {
    /// An environment variable of the agent.
    Env,
    /// A file on the agent's machine (trailing newlines dropped).
    File,
    /// An AWS SSM Parameter Store parameter (decrypted).
    Ssm,
    /// An AWS Secrets Manager secret, optionally one JSON key of it (`name#key`).
    SecretsManager,
}

impl SecretScheme {
    /// Every scheme.
    pub const ALL: [SecretScheme; 4] = [
        SecretScheme::Env,
        SecretScheme::File,
        SecretScheme::Ssm,
        SecretScheme::SecretsManager,
    ];

    /// The scheme's name, as written before the `:`.
    pub fn as_str(self) -> &'static str {
        match self {
            SecretScheme::Env => "env",
            SecretScheme::File => "file",
            SecretScheme::Ssm => "ssm",
            SecretScheme::SecretsManager => "secretsmanager",
        }
    }
}

impl fmt::Display for SecretScheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A parsed secret reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretRef<'a> {
    /// Where the value lives.
    pub scheme: SecretScheme,
    /// What to look up there (never empty).
    pub path: &'a str,
}

/// Why a string is not a secret reference. The message says what to write instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretRefError {
    /// No known `SCHEME:` prefix (perhaps a value pasted where a reference belongs).
    #[error(
        "invalid secret reference {0:?}: start it with env:, file:, ssm: or secretsmanager: \
         (e.g. \"ssm:/team/db_password\")"
    )]
    UnknownScheme(String),
    /// Nothing after the scheme.
    #[error("invalid secret reference {0:?}: nothing after \"{1}:\"")]
    EmptyPath(String, SecretScheme),
}

impl<'a> SecretRef<'a> {
    /// Parses `SCHEME:PATH`.
    pub fn parse(reference: &'a str) -> Result<SecretRef<'a>, SecretRefError> {
        let (scheme, path) = reference
            .split_once(':')
            .and_then(|(s, p)| Some((SecretScheme::ALL.into_iter().find(|k| k.as_str() == s)?, p)))
            .ok_or_else(|| SecretRefError::UnknownScheme(reference.to_string()))?;
        if path.trim().is_empty() {
            return Err(SecretRefError::EmptyPath(reference.to_string(), scheme));
        }
        Ok(SecretRef { scheme, path })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_parse_and_errors_say_what_to_write() {
        let r = SecretRef::parse("secretsmanager:prod/db#password").expect("ok");
        assert_eq!(
            (r.scheme, r.path),
            (SecretScheme::SecretsManager, "prod/db#password")
        );
        assert_eq!(
            SecretRef::parse("env:A").map(|r| r.scheme),
            Ok(SecretScheme::Env)
        );
        let e = SecretRef::parse("hunter2").expect_err("a value");
        assert!(e.to_string().contains("start it with env:"), "{e}");
        assert!(SecretRef::parse("vault:x").is_err());
        let e = SecretRef::parse("ssm: ").expect_err("empty");
        assert!(e.to_string().contains("nothing after \"ssm:\""), "{e}");
    }
}
