//! moto, the one home of every test's view of it: the endpoint from `WEIR_TEST_AWS_ENDPOINT`
//! (start it with `eval "$(scripts/test-moto.sh)"`; scripts/test.sh does), fresh S3 buckets,
//! its default VPC's network, the lock on its one ECS task lifecycle, and (feature `aws`) the
//! production SDK config pointed at it.
//!
//! Without the variable, tests print a "skipped" line and pass — except when `CI` is set, where
//! a missing endpoint is a failure.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Environment variable naming moto's endpoint (`http://127.0.0.1:55500`).
pub const ENDPOINT_ENV: &str = "WEIR_TEST_AWS_ENDPOINT";

/// The endpoint, or `None` (after printing why) when `test` should be skipped.
pub fn endpoint(test: &str) -> Option<String> {
    match std::env::var(ENDPOINT_ENV) {
        Ok(url) if !url.trim().is_empty() => Some(url.trim().trim_end_matches('/').to_string()),
        _ if std::env::var_os("CI").is_some() => panic!(
            "{ENDPOINT_ENV} is not set and CI is: start moto with `eval \"$(scripts/test-moto.sh)\"` (scripts/test.sh does)"
        ),
        _ => {
            eprintln!(
                "skipped {test}: {ENDPOINT_ENV} is not set (eval \"$(scripts/test-moto.sh)\")"
            );
            None
        }
    }
}

/// The standard AWS environment of a process that reaches moto the way it would reach AWS in
/// production: the endpoint, moto's dummy credentials, the region, no EC2 instance metadata
/// and no shared config or credentials file of the machine's user.
pub fn client_env(endpoint: &str) -> Vec<(&'static str, &str)> {
    vec![
        ("AWS_ENDPOINT_URL", endpoint),
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
        ("AWS_REGION", "us-east-1"),
        ("AWS_EC2_METADATA_DISABLED", "true"),
        ("AWS_CONFIG_FILE", "/nonexistent/weir-tests/aws-config"),
        (
            "AWS_SHARED_CREDENTIALS_FILE",
            "/nonexistent/weir-tests/aws-credentials",
        ),
    ]
}

/// A bucket name no other test uses: `weir-test-<what>-<nanos>`.
pub fn bucket_name(what: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("weir-test-{what}-{nanos:x}")
}

/// Creates a fresh bucket on moto and returns its name.
pub fn create_bucket(endpoint: &str, what: &str) -> String {
    let name = bucket_name(what);
    let (status, answer) = send(endpoint, "PUT", &format!("/{name}"), "text/plain", None, "");
    assert_eq!(
        status, 200,
        "moto at {endpoint} created bucket {name} (answer: {answer})"
    );
    name
}

/// Sends `body` (JSON) with `POST path` to `endpoint` (moto's own API, such as
/// `/moto-api/state-manager/set-transition`); returns the status code (0: no answer).
pub fn post_json(endpoint: &str, path: &str, body: &str) -> u16 {
    send(endpoint, "POST", path, "application/json", None, body).0
}

/// The first subnet and security group of moto's default VPC: what a FARGATE `RunTask` on
/// moto needs. Calls EC2's query API directly (the EC2 SDK is too heavy to build for two
/// calls); moto checks only the service named in the credential scope, not the signature.
pub fn default_network(endpoint: &str) -> Option<(String, String)> {
    let ec2 = |action: &str, tag: &str| {
        let auth = "AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/ec2/aws4_request, \
                    SignedHeaders=host, Signature=0";
        let body = format!("Action={action}&Version=2016-11-15");
        let (_, text) = send(
            endpoint,
            "POST",
            "/",
            "application/x-www-form-urlencoded",
            Some(auth),
            &body,
        );
        let open = format!("<{tag}>");
        let start = text.find(&open)? + open.len();
        let end = text[start..].find('<')? + start;
        Some(text[start..end].to_string())
    };
    Some((
        ec2("DescribeSubnets", "subnetId")?,
        ec2("DescribeSecurityGroups", "groupId")?,
    ))
}

/// One plain HTTP/1.1 request to `endpoint` (an `http://` URL: moto accepts unsigned
/// requests); returns the status code (0 when nothing answered) and the body.
fn send(
    endpoint: &str,
    method: &str,
    path: &str,
    content_type: &str,
    authorization: Option<&str>,
    body: &str,
) -> (u16, String) {
    let Some(authority) = endpoint.strip_prefix("http://") else {
        return (0, String::new());
    };
    let authority = authority.trim_end_matches('/');
    let Ok(mut s) = TcpStream::connect(authority) else {
        return (0, String::new());
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(30)));
    let auth = authorization
        .map(|a| format!("Authorization: {a}\r\n"))
        .unwrap_or_default();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {authority}\r\nContent-Type: {content_type}\r\n{auth}\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    if s.write_all(request.as_bytes()).is_err() {
        return (0, String::new());
    }
    let mut answer = String::new();
    let _ = s.read_to_string(&mut answer);
    let status = answer
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = answer
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

/// The production SDK config (`weir_secrets_aws::config_loader`, as the agent and the CLI build
/// it) pointed at `endpoint`, in `us-east-1`, with moto's dummy credentials: tests do not depend
/// on the environment's AWS settings.
#[cfg(feature = "aws")]
pub async fn sdk_config(endpoint: &str) -> weir_secrets_aws::aws_config::SdkConfig {
    use weir_secrets_aws::aws_sdk_ssm::config::Credentials;
    weir_secrets_aws::config_loader()
        .endpoint_url(endpoint)
        .region(weir_secrets_aws::aws_config::Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "weir-tests"))
        .load()
        .await
}

/// Writes SSM SecureString parameter `name` = `value` (replacing it if it exists); panics,
/// quoting the SDK's error, when the endpoint refuses.
#[cfg(feature = "aws")]
pub async fn put_secure_string(
    config: &weir_secrets_aws::aws_config::SdkConfig,
    name: &str,
    value: &str,
) {
    use weir_secrets_aws::aws_sdk_ssm as ssm;
    ssm::Client::new(config)
        .put_parameter()
        .name(name)
        .value(value)
        .r#type(ssm::types::ParameterType::SecureString)
        .overwrite(true)
        .send()
        .await
        .unwrap_or_else(|e| {
            panic!(
                "put parameter {name}: {}",
                ssm::error::DisplayErrorContext(&e)
            )
        });
}

/// How moto moves ECS tasks (one setting for all of moto's tasks: hold [`EcsLifecycle`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskLifecycle {
    /// One step per `DescribeTasks`: RUNNING → … → STOPPED after four (moto's default).
    StepPerDescribe,
    /// RUNNING until `StopTask`.
    Frozen,
}

/// moto's ECS task lifecycle, set and held for the life of the value: a file lock every
/// test process (and `weir-bench ecs`) takes before it sets the lifecycle, since nextest runs
/// each test in a process of its own and moto has one setting for them all.
pub struct EcsLifecycle {
    _lock: std::fs::File,
}

impl EcsLifecycle {
    /// Waits for the lock (blocking: async callers run it on a blocking thread), then sets
    /// `lifecycle`. Fails when the lock cannot be taken or moto refuses the setting.
    pub fn hold(endpoint: &str, lifecycle: TaskLifecycle) -> std::io::Result<EcsLifecycle> {
        let path = lock_path();
        let file = std::fs::File::create(&path)?;
        file.lock()?;
        let times: u64 = match lifecycle {
            TaskLifecycle::StepPerDescribe => 1,
            TaskLifecycle::Frozen => 1_000_000_000,
        };
        let body = format!(
            r#"{{"model_name":"ecs::task","transition":{{"progression":"manual","times":{times}}}}}"#
        );
        let status = post_json(endpoint, "/moto-api/state-manager/set-transition", &body);
        if !(200..300).contains(&status) {
            return Err(std::io::Error::other(format!(
                "moto at {endpoint} refused to set its ECS task lifecycle to {lifecycle:?} \
                 (HTTP {status}): is the endpoint moto's server?"
            )));
        }
        Ok(EcsLifecycle { _lock: file })
    }
}

/// The lock file of moto's ECS task lifecycle, shared by every process of this machine.
fn lock_path() -> PathBuf {
    std::env::temp_dir().join("weir-test-moto-ecs.lock")
}
