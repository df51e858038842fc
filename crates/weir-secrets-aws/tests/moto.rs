//! The AWS secret stores against a real AWS-compatible endpoint (moto's server), through the
//! official SDK both for writing the secrets and for resolving them.
//!
//! Start the endpoint with `eval "$(scripts/test-moto.sh)"`, which exports
//! `WEIR_TEST_AWS_ENDPOINT`. Without it every test prints a "skipped" line and passes —
//! except when `CI` is set, where a missing endpoint is a failure. Credentials are moto's
//! dummies (`test`/`test`) and the region is `us-east-1`, set by `weir_testkit::moto::sdk_config` so the
//! tests do not depend on the environment's AWS settings.

use std::collections::BTreeMap;
use uuid::Uuid;
use weir_agent::secrets::Resolver;
use weir_secrets_aws::aws_config::SdkConfig;
use weir_secrets_aws::aws_sdk_secretsmanager as sm;
use weir_secrets_aws::aws_sdk_ssm as ssm;
use weir_secrets_aws::{Error, SecretsManagerStore, SsmStore};
use weir_testkit::moto;

/// A value no test run has used before, so finding it anywhere proves a leak.
fn fresh_value(what: &str) -> String {
    format!("{what}-{}", Uuid::now_v7().simple())
}

/// Makes secret `name` hold string `value` (creating it, or adding a new current version).
async fn put_secret(config: &SdkConfig, name: &str, value: &str) {
    let client = sm::Client::new(config);
    match client
        .create_secret()
        .name(name)
        .secret_string(value)
        .send()
        .await
    {
        Ok(_) => {}
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_resource_exists_exception()) =>
        {
            client
                .put_secret_value()
                .secret_id(name)
                .secret_string(value)
                .send()
                .await
                .unwrap_or_else(|e| {
                    panic!(
                        "put secret value {name}: {}",
                        sm::error::DisplayErrorContext(&e)
                    )
                });
        }
        Err(e) => panic!(
            "create secret {name}: {}",
            sm::error::DisplayErrorContext(&e)
        ),
    }
}

/// A resolver with both AWS stores, as the agent builds it.
fn resolver(config: &SdkConfig) -> Resolver {
    weir_secrets_aws::stores(config)
        .into_iter()
        .fold(Resolver::default(), Resolver::with_store)
}

/// The three reference forms resolve through the agent's `Resolver`: a SecureString
/// parameter (decrypted: moto returns the KMS-wrapped text without decryption), a key of a
/// JSON secret, and a plain-string secret.
#[tokio::test]
async fn resolves_parameters_json_keys_and_plain_secrets() {
    let Some(endpoint) = moto::endpoint("resolves_parameters_json_keys_and_plain_secrets") else {
        return;
    };
    let config = moto::sdk_config(&endpoint).await;
    let db_password = fresh_value("db-password");
    let docker_password = fresh_value("docker-password");
    let plain = fresh_value("plain");
    let plain_name = format!("weir/tests/plain-{}", Uuid::now_v7().simple());
    moto::put_secure_string(&config, "/DataFlows/Dev/DB_PASSWORD", &db_password).await;
    put_secret(
        &config,
        "Shared/DockerHub",
        &serde_json_text(&[("username", "weir"), ("password", &docker_password)]),
    )
    .await;
    put_secret(&config, &plain_name, &plain).await;

    let refs = BTreeMap::from([
        (
            "DB_PASSWORD".to_string(),
            "ssm:/DataFlows/Dev/DB_PASSWORD".to_string(),
        ),
        (
            "DOCKER_PASSWORD".to_string(),
            "secretsmanager:Shared/DockerHub#password".to_string(),
        ),
        (
            "DOCKER_USER".to_string(),
            "secretsmanager:Shared/DockerHub#username".to_string(),
        ),
        ("PLAIN".to_string(), format!("secretsmanager:{plain_name}")),
    ]);
    let got = resolver(&config)
        .resolve_all(&refs)
        .await
        .unwrap_or_else(|e| panic!("resolve: {e}"));
    assert_eq!(got["DB_PASSWORD"], db_password);
    assert_eq!(got["DOCKER_PASSWORD"], docker_password);
    assert_eq!(got["DOCKER_USER"], "weir");
    assert_eq!(got["PLAIN"], plain);
}

/// A missing parameter or secret fails with an error naming the reference and saying it
/// does not exist.
#[tokio::test]
async fn missing_parameter_and_secret_name_the_reference() {
    let Some(endpoint) = moto::endpoint("missing_parameter_and_secret_name_the_reference") else {
        return;
    };
    let config = moto::sdk_config(&endpoint).await;
    let id = Uuid::now_v7().simple().to_string();

    let reference = format!("ssm:/weir/tests/missing-{id}");
    let refs = BTreeMap::from([("X".to_string(), reference.clone())]);
    let e = resolver(&config)
        .resolve_all(&refs)
        .await
        .expect_err("missing parameter");
    let text = e.to_string();
    assert!(text.contains(&reference), "{text}");
    assert!(
        text.contains(&format!("SSM parameter /weir/tests/missing-{id} not found")),
        "{text}"
    );

    let e = SecretsManagerStore::new(&config)
        .get(&format!("weir/tests/missing-{id}#password"))
        .await
        .expect_err("missing secret");
    assert!(matches!(e, Error::NotFound { .. }), "{e:?}");
    assert!(
        e.to_string().contains(&format!(
            "Secrets Manager secret weir/tests/missing-{id} not found"
        )),
        "{e}"
    );
}

/// A `#key` the JSON object lacks, or a `#key` of a secret that is not a JSON object, fails
/// naming the key — and the error never carries the secret's value.
#[tokio::test]
async fn missing_json_key_names_the_key_not_the_value() {
    let Some(endpoint) = moto::endpoint("missing_json_key_names_the_key_not_the_value") else {
        return;
    };
    let config = moto::sdk_config(&endpoint).await;
    let id = Uuid::now_v7().simple().to_string();
    let password = fresh_value("json-password");
    let json_name = format!("weir/tests/json-{id}");
    put_secret(
        &config,
        &json_name,
        &serde_json_text(&[("username", "weir"), ("password", &password)]),
    )
    .await;
    let plain = fresh_value("plain");
    let plain_name = format!("weir/tests/plain-{id}");
    put_secret(&config, &plain_name, &plain).await;

    let reference = format!("secretsmanager:{json_name}#token");
    let refs = BTreeMap::from([("TOKEN".to_string(), reference.clone())]);
    let e = resolver(&config)
        .resolve_all(&refs)
        .await
        .expect_err("missing key");
    let text = e.to_string();
    assert!(text.contains(&reference), "{text}");
    assert!(text.contains("no key \"token\""), "{text}");
    assert!(
        !text.contains(&password),
        "the error leaks the value: {text}"
    );

    let e = SecretsManagerStore::new(&config)
        .get(&format!("{plain_name}#password"))
        .await
        .expect_err("not JSON");
    assert!(matches!(e, Error::NotJsonObject { .. }), "{e:?}");
    assert!(e.to_string().contains("\"password\""), "{e}");
    assert!(
        !e.to_string().contains(&plain),
        "the error leaks the value: {e}"
    );
    assert!(
        !format!("{e:?}").contains(&plain),
        "the error leaks the value: {e:?}"
    );
}

/// The SSM store reads plain String parameters too, and selects a version with `:N`.
#[tokio::test]
async fn ssm_versions_and_plain_strings() {
    let Some(endpoint) = moto::endpoint("ssm_versions_and_plain_strings") else {
        return;
    };
    let config = moto::sdk_config(&endpoint).await;
    let name = format!("/weir/tests/versions-{}", Uuid::now_v7().simple());
    moto::put_secure_string(&config, &name, "first").await;
    moto::put_secure_string(&config, &name, "second").await;
    let store = SsmStore::new(&config);
    assert_eq!(store.get(&name).await.expect("latest"), "second");
    assert_eq!(store.get(&format!("{name}:1")).await.expect("v1"), "first");

    let plain = format!("/weir/tests/plain-{}", Uuid::now_v7().simple());
    ssm::Client::new(&config)
        .put_parameter()
        .name(&plain)
        .value("not secret")
        .r#type(ssm::types::ParameterType::String)
        .send()
        .await
        .expect("put a String parameter");
    assert_eq!(store.get(&plain).await.expect("plain"), "not secret");
}

/// `{"k": "v", …}` as JSON text.
fn serde_json_text(pairs: &[(&str, &str)]) -> String {
    let map: serde_json::Map<String, serde_json::Value> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), serde_json::Value::String(v.to_string())))
        .collect();
    serde_json::Value::Object(map).to_string()
}
