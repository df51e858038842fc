//! Resolving secret references at launch, for the one run being launched.
//!
//! Deployments name secrets by reference (`env:NAME`, `file:PATH`, `ssm:/Path`,
//! `secretsmanager:name#key`); the server only ever stores references. The agent resolves
//! them here, injects the values into the child's environment, and redacts them from output.
//! Cloud stores plug in through [`SecretStore`].

use futures::future::BoxFuture;
use std::collections::BTreeMap;
use std::sync::Arc;
use weir_core::secret::SecretRef;
pub use weir_core::secret::SecretScheme;

/// A reference that could not be resolved. Names the reference, never a value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("secret {var} ({reference}): {reason}")]
pub struct SecretError {
    /// Environment variable it was for.
    pub var: String,
    /// The reference as written in the deployment.
    pub reference: String,
    /// Why it could not be resolved: missing, denied, unreachable (never a value).
    pub reason: String,
}

/// A backend for one reference scheme (e.g. `ssm`).
pub trait SecretStore: Send + Sync + 'static {
    /// The scheme it serves.
    fn scheme(&self) -> SecretScheme;
    /// Resolves the part of the reference after `scheme:`.
    fn resolve<'a>(&'a self, path: &'a str) -> BoxFuture<'a, Result<String, String>>;
}

/// Resolves references with the built-in `env:` and `file:` schemes plus any registered
/// stores.
#[derive(Clone, Default)]
pub struct Resolver {
    stores: Vec<Arc<dyn SecretStore>>,
}

impl Resolver {
    /// Adds a store for its scheme.
    pub fn with_store(mut self, store: Arc<dyn SecretStore>) -> Self {
        self.stores.push(store);
        self
    }

    /// Resolves every `var → reference`; fails on the first that cannot be resolved.
    pub async fn resolve_all(
        &self,
        refs: &BTreeMap<String, String>,
    ) -> Result<BTreeMap<String, String>, SecretError> {
        let mut out = BTreeMap::new();
        for (var, reference) in refs {
            let fail = |reason: String| SecretError {
                var: var.clone(),
                reference: reference.clone(),
                reason,
            };
            let SecretRef { scheme, path } =
                SecretRef::parse(reference).map_err(|e| match reference.split_once(':') {
                    Some((unknown, _)) => fail(format!("no `{unknown}` secret store: {e}")),
                    None => fail(e.to_string()),
                })?;
            let value = match scheme {
                SecretScheme::Env => std::env::var(path).map_err(|_| {
                    fail(format!(
                        "environment variable {path} is not set on the agent"
                    ))
                })?,
                SecretScheme::File => tokio::fs::read_to_string(path)
                    .await
                    .map(|s| s.trim_end_matches(['\n', '\r']).to_string())
                    .map_err(|e| fail(format!("cannot read {path}: {e}")))?,
                other => {
                    let store = self.stores.iter().find(|s| s.scheme() == other).ok_or_else(|| {
                        fail(format!(
                            "this agent has no `{other}` secret store (built without its feature)"
                        ))
                    })?;
                    store.resolve(path).await.map_err(fail)?
                }
            };
            out.insert(var.clone(), value);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn env_and_file_references() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("token");
        std::fs::write(&path, "s3cr3t\n").expect("write");
        let refs = BTreeMap::from([
            ("TOKEN".to_string(), format!("file:{}", path.display())),
            ("HOME_DIR".to_string(), "env:PATH".to_string()),
        ]);
        let got = Resolver::default()
            .resolve_all(&refs)
            .await
            .expect("resolves");
        assert_eq!(got["TOKEN"], "s3cr3t");
        assert_eq!(got["HOME_DIR"], std::env::var("PATH").expect("PATH"));
    }

    #[tokio::test]
    async fn failures_name_the_reference_not_a_value() {
        let refs = BTreeMap::from([("X".to_string(), "env:WEIR_SURELY_UNSET_VAR".to_string())]);
        let e = Resolver::default()
            .resolve_all(&refs)
            .await
            .expect_err("unset");
        assert!(e.to_string().contains("env:WEIR_SURELY_UNSET_VAR"), "{e}");
        let refs = BTreeMap::from([("X".to_string(), "vault:/a".to_string())]);
        let e = Resolver::default()
            .resolve_all(&refs)
            .await
            .expect_err("unknown scheme");
        assert!(e.to_string().contains("no `vault` secret store"), "{e}");
    }
}
