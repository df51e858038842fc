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
/// status code.
fn request(endpoint: &str, method: &str, path: &str) -> u16 {
    let authority = endpoint
        .strip_prefix("http://")
        .expect("moto's endpoint is plain http://");
    let mut s = TcpStream::connect(authority).expect("connect to moto");
    s.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("read timeout");
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {authority}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .expect("send to moto");
    let mut answer = String::new();
    let _ = s.read_to_string(&mut answer);
    answer
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

/// Creates a fresh bucket on moto and returns its name.
pub fn create_bucket(endpoint: &str, what: &str) -> String {
    let name = bucket_name(what);
    let status = request(endpoint, "PUT", &format!("/{name}"));
    assert_eq!(status, 200, "moto created bucket {name}");
    name
}
