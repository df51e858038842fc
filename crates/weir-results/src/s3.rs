//! Opening an S3 bucket through `object_store`, configured the way the AWS tools are.
//!
//! * Credentials: the standard chain `object_store` implements — `AWS_ACCESS_KEY_ID` /
//!   `AWS_SECRET_ACCESS_KEY` / `AWS_SESSION_TOKEN`, web identity
//!   (`AWS_WEB_IDENTITY_TOKEN_FILE`), the ECS container credentials endpoint
//!   (`AWS_CONTAINER_CREDENTIALS_RELATIVE_URI` / `_FULL_URI`, what a Fargate task role
//!   provides), then the EC2 instance metadata service.
//! * Endpoint: `AWS_ENDPOINT_URL_S3`, else `AWS_ENDPOINT_URL` (moto, MinIO, LocalStack…);
//!   plain `http://` is allowed only for such an explicit endpoint.
//! * Region: `AWS_REGION`, else `AWS_DEFAULT_REGION`, else `us-east-1`.
//! * Path-style requests (`endpoint/bucket/key`), which every S3-compatible server accepts.
//! * Signing and TLS use ring, the workspace's one crypto provider.

use object_store::aws::AmazonS3Builder;
use object_store::{ObjectStore, RetryConfig};
use std::sync::Arc;
use std::time::Duration;

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// An `object_store` client for `bucket`, through `endpoint` when given (else the
/// environment's).
pub(crate) fn open(bucket: &str, endpoint: Option<&str>) -> Result<Arc<dyn ObjectStore>, String> {
    // reqwest is built without a bundled TLS provider: install the workspace's (ring) once.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut b = AmazonS3Builder::from_env()
        .with_bucket_name(bucket)
        .with_virtual_hosted_style_request(false)
        .with_retry(RetryConfig {
            max_retries: 3,
            retry_timeout: Duration::from_secs(20),
            ..RetryConfig::default()
        });
    if env("AWS_REGION").is_none() && env("AWS_DEFAULT_REGION").is_none() {
        b = b.with_region("us-east-1");
    }
    let endpoint = endpoint
        .map(str::to_string)
        .or_else(|| env("AWS_ENDPOINT_URL_S3"))
        .or_else(|| env("AWS_ENDPOINT_URL"));
    if let Some(e) = endpoint {
        b = b.with_allow_http(e.starts_with("http://")).with_endpoint(e);
    }
    b.build()
        .map(|s| Arc::new(s) as Arc<dyn ObjectStore>)
        .map_err(|e| e.to_string())
}
