//! moto's S3, for the result-storage tests: the endpoint from `WEIR_TEST_AWS_ENDPOINT` (start
//! it with `eval "$(scripts/test-moto.sh)"`; scripts/test.sh does) and fresh buckets on it.
//!
//! Without the variable, tests print a "skipped" line and pass — except when `CI` is set, where
//! a missing endpoint is a failure.

use std::io::{Read, Write};
use std::net::TcpStream;
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

/// A bucket name no other test uses: `weir-test-<what>-<nanos>`.
pub fn bucket_name(what: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("weir-test-{what}-{nanos:x}")
}

/// One plain HTTP/1.1 request to `endpoint` (moto accepts unsigned requests); returns the
/// status code (0: an answer without one).
fn request(endpoint: &str, method: &str, path: &str) -> std::io::Result<u16> {
    let authority = endpoint.strip_prefix("http://").ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("{ENDPOINT_ENV}={endpoint} is not a plain http:// URL"),
        )
    })?;
    let mut s = TcpStream::connect(authority)?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {authority}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )?;
    let mut answer = String::new();
    let _ = s.read_to_string(&mut answer);
    Ok(answer
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0))
}

/// Creates a fresh bucket on moto and returns its name.
pub fn create_bucket(endpoint: &str, what: &str) -> String {
    let name = bucket_name(what);
    let status = request(endpoint, "PUT", &format!("/{name}"))
        .unwrap_or_else(|e| panic!("moto at {endpoint} did not take PUT /{name}: {e}"));
    assert_eq!(status, 200, "moto created bucket {name}");
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

/// One HTTP/1.1 request; returns the status code (0 when nothing answered) and the body.
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
