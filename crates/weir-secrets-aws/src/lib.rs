//! AWS secret stores for Weir's agent: `ssm:` and `secretsmanager:` references.
//!
//! Deployments name secrets by reference; the agent resolves them at launch through
//! [`weir_agent::secrets::Resolver`]. This crate adds two [`SecretStore`]s backed by the
//! official AWS SDK:
//!
//! | reference | store | resolves to |
//! |---|---|---|
//! | `ssm:/DataFlows/Dev/DB_PASSWORD` | [`SsmStore`] | the parameter's value, SecureStrings decrypted |
//! | `secretsmanager:Shared/DockerHub` | [`SecretsManagerStore`] | the secret string, as is |
//! | `secretsmanager:Shared/DockerHub#password` | [`SecretsManagerStore`] | key `password` of the JSON object in the secret string |
//!
//! Both are built from one [`SdkConfig`] ([`stores_from_env`]: the default AWS chain for
//! region and credentials, and `AWS_ENDPOINT_URL` / `AWS_ENDPOINT_URL_SSM` /
//! `AWS_ENDPOINT_URL_SECRETS_MANAGER` to point at another endpoint, such as a local moto
//! server), so they share one HTTPS client and one credential cache. [`stores_from_env`]
//! loads that configuration on the first resolve, not before: an agent built with AWS
//! support that never meets an AWS reference starts as fast as one without, and never looks
//! for a region or credentials (which may mean asking the EC2 instance metadata service).
//!
//! **Invariant:** an [`Error`] names the reference and why it failed, never a secret value
//! (JSON parse errors are not quoted, since they may echo the text they failed on).
//!
//! This is a leaf crate: the SDK is the heaviest build in the workspace, so nothing but
//! `weir-cli` (behind its `aws` feature) depends on it. HTTPS is hyper 1 with rustls on the
//! `ring` crypto provider, so the build needs no C toolchain beyond `cc` (no aws-lc-sys,
//! cmake or nasm).

use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, ConfigLoader, SdkConfig};
use aws_sdk_ssm::error::{ProvideErrorMetadata, SdkError};
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};
use futures::future::BoxFuture;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::OnceCell;
use weir_agent::secrets::SecretStore;

/// The SDK's configuration crate, re-exported so callers and tests use the same version.
pub use aws_config;
/// The Secrets Manager SDK, re-exported so callers and tests use the same version.
pub use aws_sdk_secretsmanager;
/// The SSM SDK, re-exported so callers and tests use the same version.
pub use aws_sdk_ssm;

/// Longest one call to AWS may take, retries included, before the launch fails.
const OPERATION_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest one attempt of a call may take.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest a TCP/TLS connection may take to open.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// Why a reference could not be resolved. Names the reference, never a value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The reference is malformed (e.g. empty name or key).
    #[error("malformed reference {reference:?}: expected {expected}")]
    BadReference {
        /// The part after the scheme, as written.
        reference: String,
        /// What a well-formed reference looks like.
        expected: &'static str,
    },
    /// The parameter or secret does not exist (in this region).
    #[error("{what} {name} not found (region {region})")]
    NotFound {
        /// "SSM parameter" or "Secrets Manager secret".
        what: &'static str,
        /// The parameter's or secret's name, as the reference gives it.
        name: String,
        /// The region the client asked, from its config (`(none configured)` when it
        /// had none).
        region: String,
    },
    /// The credentials may not read it (or may not decrypt it with its KMS key).
    #[error("access denied to {what} {name}: {detail}")]
    AccessDenied {
        /// "SSM parameter" or "Secrets Manager secret".
        what: &'static str,
        /// The parameter's or secret's name, as the reference gives it.
        name: String,
        /// The service's code and message.
        detail: String,
    },
    /// A `#key` was asked of a secret whose string is not a JSON object.
    #[error(
        "Secrets Manager secret {name} is not a JSON object, so key {key:?} cannot be taken from it"
    )]
    NotJsonObject {
        /// The secret's name or ARN, as the reference gives it.
        name: String,
        /// The key asked for.
        key: String,
    },
    /// A `#key` was asked that the secret's JSON object does not have.
    #[error("Secrets Manager secret {name} has no key {key:?} in its JSON object")]
    MissingKey {
        /// The secret's name or ARN, as the reference gives it.
        name: String,
        /// The key asked for.
        key: String,
    },
    /// The secret holds binary data, not a string.
    #[error("Secrets Manager secret {name} holds binary data, not a string")]
    NotAString {
        /// The secret's name or ARN, as the reference gives it.
        name: String,
    },
    /// Any other failure: network, timeout, throttling, missing region or credentials, an
    /// unexpected response.
    #[error("cannot read {what} {name}: {detail}")]
    Service {
        /// "SSM parameter" or "Secrets Manager secret".
        what: &'static str,
        /// The parameter's or secret's name, as the reference gives it.
        name: String,
        /// The SDK's error, as it said it (never a value).
        detail: String,
    },
}

const SSM: &str = "SSM parameter";
const SECRETS_MANAGER: &str = "Secrets Manager secret";

/// A config loader for the default AWS chain (environment, profile files, container and
/// instance credentials; `AWS_ENDPOINT_URL*`), with Weir's HTTPS client and timeouts.
/// Callers may override parts before `.load()` (tests set an endpoint and credentials).
pub fn config_loader() -> ConfigLoader {
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(CryptoMode::Ring))
        .build_https();
    aws_config::defaults(BehaviorVersion::latest())
        .http_client(http)
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(CONNECT_TIMEOUT)
                .operation_attempt_timeout(ATTEMPT_TIMEOUT)
                .operation_timeout(OPERATION_TIMEOUT)
                .build(),
        )
}

/// Both stores, sharing `config`.
pub fn stores(config: &SdkConfig) -> Vec<Arc<dyn SecretStore>> {
    let shared = SharedConfig::ready(config.clone());
    vec![
        Arc::new(SsmStore::with_shared(shared.clone())),
        Arc::new(SecretsManagerStore::with_shared(shared)),
    ]
}

/// Both stores, configured by the default AWS chain ([`config_loader`]), which they load
/// together on the first resolve of either. Does no I/O itself and never fails: a missing
/// region or credentials surface as an [`Error`] naming the reference being resolved.
pub async fn stores_from_env() -> Vec<Arc<dyn SecretStore>> {
    let shared = SharedConfig::from_env();
    vec![
        Arc::new(SsmStore::with_shared(shared.clone())),
        Arc::new(SecretsManagerStore::with_shared(shared)),
    ]
}

/// The SDK configuration both stores share: given, or loaded from the environment once, on
/// first use.
#[derive(Debug, Clone)]
struct SharedConfig(Arc<OnceCell<SdkConfig>>);

impl SharedConfig {
    fn ready(config: SdkConfig) -> SharedConfig {
        SharedConfig(Arc::new(OnceCell::new_with(Some(config))))
    }

    fn from_env() -> SharedConfig {
        SharedConfig(Arc::new(OnceCell::new()))
    }

    async fn get(&self) -> &SdkConfig {
        self.0
            .get_or_init(|| async {
                let config = config_loader().load().await;
                tracing::info!(
                    message = "AWS configuration loaded for secret references",
                    region = config.region().map(|r| r.as_ref()).unwrap_or("(none)"),
                    endpoint = config.endpoint_url().unwrap_or("(default)"),
                );
                config
            })
            .await
    }
}

/// Classifies an SDK failure for `what` `name`. `not_found` tells whether the service error
/// means "does not exist".
fn sdk_error<E, R>(
    what: &'static str,
    name: &str,
    region: &str,
    err: &SdkError<E, R>,
    not_found: impl FnOnce(&E) -> bool,
) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug + 'static,
{
    if let Some(service) = err.as_service_error() {
        if not_found(service) {
            return Error::NotFound {
                what,
                name: name.to_string(),
                region: region.to_string(),
            };
        }
        let code = service.code().unwrap_or("unknown error");
        let detail = match service.message() {
            Some(m) => format!("{code}: {m}"),
            None => code.to_string(),
        };
        if code.contains("AccessDenied") || code == "UnrecognizedClientException" {
            return Error::AccessDenied {
                what,
                name: name.to_string(),
                detail,
            };
        }
        return Error::Service {
            what,
            name: name.to_string(),
            detail,
        };
    }
    Error::Service {
        what,
        name: name.to_string(),
        detail: error_chain(err),
    }
}

/// `err` and its sources, each by its `Display`, joined by `: ` (a source whose text the
/// previous one already ends with is left out): how Weir's AWS crates quote an SDK error, since
/// the SDK's own `DisplayErrorContext` appends a `Debug` dump as well.
pub fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(e) = source {
        let part = e.to_string();
        if !text.ends_with(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = e.source();
    }
    text
}

/// `ssm:NAME`: a parameter of SSM Parameter Store, SecureStrings decrypted with their KMS
/// key. `NAME` is the parameter's name or path, optionally with a `:version` or `:label`
/// selector.
#[derive(Debug)]
pub struct SsmStore {
    config: SharedConfig,
    client: OnceCell<aws_sdk_ssm::Client>,
}

impl SsmStore {
    /// A store using `config`.
    pub fn new(config: &SdkConfig) -> SsmStore {
        SsmStore::with_shared(SharedConfig::ready(config.clone()))
    }

    fn with_shared(config: SharedConfig) -> SsmStore {
        SsmStore {
            config,
            client: OnceCell::new(),
        }
    }

    async fn client(&self) -> &aws_sdk_ssm::Client {
        self.client
            .get_or_init(|| async { aws_sdk_ssm::Client::new(self.config.get().await) })
            .await
    }

    /// The value of parameter `name`.
    pub async fn get(&self, name: &str) -> Result<String, Error> {
        if name.is_empty() {
            return Err(Error::BadReference {
                reference: name.to_string(),
                expected: "ssm:/Path/Name",
            });
        }
        let client = self.client().await;
        let region = region_of(client.config().region());
        let out = client
            .get_parameter()
            .name(name)
            .with_decryption(true)
            .send()
            .await
            .map_err(|e| {
                sdk_error(SSM, name, &region, &e, |s| {
                    s.is_parameter_not_found() || s.is_parameter_version_not_found()
                })
            })?;
        out.parameter
            .and_then(|p| p.value)
            .ok_or_else(|| Error::Service {
                what: SSM,
                name: name.to_string(),
                detail: "the response has no value".into(),
            })
    }
}

impl SecretStore for SsmStore {
    fn scheme(&self) -> weir_agent::secrets::SecretScheme {
        weir_agent::secrets::SecretScheme::Ssm
    }

    fn resolve<'a>(&'a self, path: &'a str) -> BoxFuture<'a, Result<String, String>> {
        Box::pin(async move { self.get(path).await.map_err(|e| e.to_string()) })
    }
}

/// `secretsmanager:NAME` or `secretsmanager:NAME#KEY`: the current value of a Secrets
/// Manager secret (by name or ARN); with `#KEY`, the value of `KEY` in the JSON object the
/// secret string holds (a string as is, any other JSON value as compact JSON text).
#[derive(Debug)]
pub struct SecretsManagerStore {
    config: SharedConfig,
    client: OnceCell<aws_sdk_secretsmanager::Client>,
}

impl SecretsManagerStore {
    /// A store using `config`.
    pub fn new(config: &SdkConfig) -> SecretsManagerStore {
        SecretsManagerStore::with_shared(SharedConfig::ready(config.clone()))
    }

    fn with_shared(config: SharedConfig) -> SecretsManagerStore {
        SecretsManagerStore {
            config,
            client: OnceCell::new(),
        }
    }

    async fn client(&self) -> &aws_sdk_secretsmanager::Client {
        self.client
            .get_or_init(|| async { aws_sdk_secretsmanager::Client::new(self.config.get().await) })
            .await
    }

    /// The value `reference` (`NAME` or `NAME#KEY`) names.
    pub async fn get(&self, reference: &str) -> Result<String, Error> {
        let (name, key) = match reference.split_once('#') {
            Some((name, key)) => (name, Some(key)),
            None => (reference, None),
        };
        if name.is_empty() || key.is_some_and(str::is_empty) {
            return Err(Error::BadReference {
                reference: reference.to_string(),
                expected: "secretsmanager:NAME or secretsmanager:NAME#JSON_KEY",
            });
        }
        let client = self.client().await;
        let region = region_of(client.config().region());
        let out = client
            .get_secret_value()
            .secret_id(name)
            .send()
            .await
            .map_err(|e| {
                sdk_error(SECRETS_MANAGER, name, &region, &e, |s| {
                    s.is_resource_not_found_exception()
                })
            })?;
        let Some(text) = out.secret_string else {
            return Err(Error::NotAString {
                name: name.to_string(),
            });
        };
        match key {
            None => Ok(text),
            Some(key) => pick_key(name, &text, key),
        }
    }
}

/// Key `key` of the JSON object in secret `name`'s string `text`.
fn pick_key(name: &str, text: &str, key: &str) -> Result<String, Error> {
    let not_object = || Error::NotJsonObject {
        name: name.to_string(),
        key: key.to_string(),
    };
    // The parse error is dropped on purpose: it may quote the secret text.
    let value: serde_json::Value = serde_json::from_str(text).map_err(|_| not_object())?;
    let serde_json::Value::Object(mut map) = value else {
        return Err(not_object());
    };
    match map.remove(key) {
        Some(serde_json::Value::String(s)) => Ok(s),
        Some(other) => Ok(other.to_string()),
        None => Err(Error::MissingKey {
            name: name.to_string(),
            key: key.to_string(),
        }),
    }
}

impl SecretStore for SecretsManagerStore {
    fn scheme(&self) -> weir_agent::secrets::SecretScheme {
        weir_agent::secrets::SecretScheme::SecretsManager
    }

    fn resolve<'a>(&'a self, path: &'a str) -> BoxFuture<'a, Result<String, String>> {
        Box::pin(async move { self.get(path).await.map_err(|e| e.to_string()) })
    }
}

fn region_of(region: Option<&aws_config::Region>) -> String {
    region.map_or_else(|| "(none configured)".to_string(), |r| r.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_json_keys_without_quoting_the_secret() {
        let text = r#"{"username":"weir","password":"hunter2","port":5432}"#;
        assert_eq!(pick_key("db", text, "password").expect("key"), "hunter2");
        assert_eq!(pick_key("db", text, "port").expect("key"), "5432");

        let e = pick_key("db", text, "token").expect_err("missing");
        assert_eq!(
            e.to_string(),
            r#"Secrets Manager secret db has no key "token" in its JSON object"#
        );
        assert!(!e.to_string().contains("hunter2"));

        for text in ["hunter2", "[\"hunter2\"]", "\"hunter2\"", "{\"a\": hunter2"] {
            let e = pick_key("db", text, "password").expect_err("not an object");
            assert!(matches!(e, Error::NotJsonObject { .. }), "{e:?}");
            assert!(!e.to_string().contains("hunter2"), "{e}");
        }
    }

    #[tokio::test]
    async fn malformed_references_are_refused_before_any_call() {
        let config = SdkConfig::builder()
            .behavior_version(BehaviorVersion::latest())
            .build();
        let e = SecretsManagerStore::new(&config)
            .get("Shared/DockerHub#")
            .await
            .expect_err("empty key");
        assert!(matches!(e, Error::BadReference { .. }), "{e:?}");
        let e = SsmStore::new(&config)
            .get("")
            .await
            .expect_err("empty name");
        assert!(e.to_string().contains("ssm:/Path/Name"), "{e}");
    }

    #[test]
    fn service_errors_are_classified() {
        use aws_sdk_ssm::error::ErrorMetadata;
        use aws_sdk_ssm::operation::get_parameter::GetParameterError;
        let failure = |code: &str| {
            let err = GetParameterError::generic(
                ErrorMetadata::builder()
                    .code(code)
                    .message("User: arn:aws:iam::1:user/agent is not authorized")
                    .build(),
            );
            sdk_error(
                SSM,
                "/a/b",
                "eu-west-1",
                &SdkError::service_error(err, ()),
                |e| e.is_parameter_not_found(),
            )
        };
        let e = failure("AccessDeniedException");
        assert!(matches!(e, Error::AccessDenied { .. }), "{e:?}");
        assert_eq!(
            e.to_string(),
            "access denied to SSM parameter /a/b: AccessDeniedException: User: arn:aws:iam::1:user/agent is not authorized"
        );
        let e = failure("ThrottlingException");
        assert!(matches!(e, Error::Service { .. }), "{e:?}");

        let not_found = GetParameterError::ParameterNotFound(
            aws_sdk_ssm::types::error::ParameterNotFound::builder().build(),
        );
        let e = sdk_error(
            SSM,
            "/a/b",
            "eu-west-1",
            &SdkError::service_error(not_found, ()),
            |e| e.is_parameter_not_found(),
        );
        assert_eq!(
            e.to_string(),
            "SSM parameter /a/b not found (region eu-west-1)"
        );
    }

    #[tokio::test]
    async fn without_a_region_the_error_names_the_parameter_and_the_cause() {
        let config = SdkConfig::builder()
            .behavior_version(BehaviorVersion::latest())
            .credentials_provider(aws_sdk_ssm::config::SharedCredentialsProvider::new(
                aws_sdk_ssm::config::Credentials::new("test", "test", None, None, "tests"),
            ))
            .build();
        let e = SsmStore::new(&config)
            .get("/DataFlows/Dev/DB_PASSWORD")
            .await
            .expect_err("no region");
        let text = e.to_string();
        assert!(text.contains("/DataFlows/Dev/DB_PASSWORD"), "{text}");
        assert!(text.to_lowercase().contains("region"), "{text}");
        assert!(!text.contains("DispatchFailure {"), "no Debug dump: {text}");
    }
}
