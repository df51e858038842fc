//! What can go wrong with result storage, each error naming the URL and what to check.
//!
//! `object_store` reports S3 failures as HTTP statuses with the response body; [`classify`]
//! turns the ones a user can fix (a missing bucket, refused credentials, an unreachable
//! endpoint) into errors that say so.

use weir_core::storage::StorageUrlError;

/// A result-storage failure.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The URL itself is wrong.
    #[error(transparent)]
    Url(#[from] StorageUrlError),
    /// The store could not be opened (a directory that cannot be created, a bad S3 setting).
    #[error("cannot open result storage {url}: {message}")]
    Open {
        /// The storage URL as configured.
        url: String,
        /// Why it could not be opened, in the storage's words.
        message: String,
    },
    /// This binary was built without S3 support.
    #[error(
        "result storage {url}: this program was built without S3 support (enable the `s3` \
         feature of the weir SDK)"
    )]
    NoS3 {
        /// The `s3://` storage URL this binary cannot open.
        url: String,
    },
    /// The bucket does not exist.
    #[error(
        "result storage {url}: bucket {bucket:?} does not exist{at}: create it, or fix the \
         bucket name in the URL"
    )]
    NoSuchBucket {
        /// The storage URL as configured.
        url: String,
        /// The bucket the URL names.
        bucket: String,
        /// ` at <endpoint>` when a custom endpoint is used, else empty.
        at: String,
    },
    /// The credentials in use may not do this.
    #[error(
        "result storage {url}: access denied ({detail}): check that the AWS credentials in use \
         (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or the ECS task role) allow s3:ListBucket, \
         s3:GetObject and s3:PutObject on it"
    )]
    AccessDenied {
        /// The storage URL as configured.
        url: String,
        /// What S3 answered, as it said it.
        detail: String,
    },
    /// No credentials were found (the SDK fell back to the EC2 instance metadata service).
    #[error(
        "result storage {url}: no AWS credentials found: set AWS_ACCESS_KEY_ID and \
         AWS_SECRET_ACCESS_KEY (or AWS_PROFILE, a web identity or the ECS task role) where the \
         run executes; under an agent, pass them to runs with `weir agent --pass-env 'AWS_*'`"
    )]
    NoCredentials {
        /// The storage URL as configured.
        url: String,
    },
    /// The endpoint did not answer.
    #[error(
        "result storage {url}: cannot reach S3{at} ({detail}): check AWS_ENDPOINT_URL, \
         AWS_REGION and the network"
    )]
    Unreachable {
        /// The storage URL as configured.
        url: String,
        /// ` at <endpoint>` when a custom endpoint is used, else empty.
        at: String,
        /// The connection error, as the HTTP client said it.
        detail: String,
    },
    /// A fetched location holds nothing.
    #[error("no result at {location}: it was deleted, or the location belongs to other storage")]
    NotFound {
        /// The location asked for, as a result reference gives it.
        location: String,
    },
    /// Any other failure.
    #[error("result storage {url}: {source}")]
    Store {
        /// The storage URL as configured.
        url: String,
        /// The object store's error.
        source: object_store::Error,
    },
}

/// The custom S3 endpoint in use (`given`, else the environment's), as ` at URL`, or empty.
fn endpoint_note(given: Option<&str>) -> String {
    given
        .map(str::to_string)
        .or_else(|| {
            ["AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL", "AWS_ENDPOINT"]
                .iter()
                .find_map(|k| std::env::var(k).ok().filter(|v| !v.trim().is_empty()))
        })
        .map(|e| format!(" at {e}"))
        .unwrap_or_default()
}

fn chain_text(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        text.push_str(": ");
        text.push_str(&s.to_string());
        cur = s.source();
    }
    text
}

/// Whether `e` is an HTTP connection failure or timeout (S3 only: `object_store`'s HTTP client
/// exists only with the `s3` feature).
#[cfg(not(feature = "s3"))]
fn is_connect(_: &(dyn std::error::Error + 'static)) -> bool {
    false
}

#[cfg(feature = "s3")]
fn is_connect(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur = Some(e);
    while let Some(s) = cur {
        if let Some(h) = s.downcast_ref::<object_store::client::HttpError>() {
            return matches!(
                h.kind(),
                object_store::client::HttpErrorKind::Connect
                    | object_store::client::HttpErrorKind::Timeout
            );
        }
        cur = s.source();
    }
    false
}

/// The first `<Code>…</Code>` of an S3 error body in `text`, if any.
fn s3_code(text: &str) -> Option<&str> {
    let start = text.find("<Code>")? + "<Code>".len();
    let len = text[start..].find("</Code>")?;
    Some(&text[start..start + len])
}

/// Turns an `object_store` error on storage `url` (bucket `bucket` through `endpoint`, for
/// S3) into an [`Error`].
pub(crate) fn classify(
    url: &str,
    bucket: Option<&str>,
    endpoint: Option<&str>,
    e: object_store::Error,
) -> Error {
    let text = chain_text(&e);
    let code = s3_code(&text);
    if let Some(bucket) = bucket {
        if code == Some("NoSuchBucket") || text.contains("NoSuchBucket") {
            return Error::NoSuchBucket {
                url: url.to_string(),
                bucket: bucket.to_string(),
                at: endpoint_note(endpoint),
            };
        }
        let denied = matches!(
            e,
            object_store::Error::PermissionDenied { .. }
                | object_store::Error::Unauthenticated { .. }
        ) || matches!(
            code,
            Some(
                "AccessDenied"
                    | "InvalidAccessKeyId"
                    | "SignatureDoesNotMatch"
                    | "ExpiredToken"
                    | "InvalidToken"
            )
        );
        // With nothing else in the chain, the last place asked for credentials is the EC2
        // instance metadata service; off EC2 it refuses or does not answer.
        if text.contains("169.254.169.254") {
            return Error::NoCredentials {
                url: url.to_string(),
            };
        }
        if denied {
            return Error::AccessDenied {
                url: url.to_string(),
                detail: code.unwrap_or("403 Forbidden").to_string(),
            };
        }
        if is_connect(&e) {
            let detail = std::error::Error::source(&e)
                .map(chain_text)
                .unwrap_or_else(|| text.clone());
            return Error::Unreachable {
                url: url.to_string(),
                at: endpoint_note(endpoint),
                detail: shorten(&detail),
            };
        }
    }
    Error::Store {
        url: url.to_string(),
        source: e,
    }
}

fn shorten(s: &str) -> String {
    const MAX: usize = 300;
    match s.char_indices().nth(MAX) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s3_codes_are_found() {
        let body = "<?xml version=\"1.0\"?><Error><Code>NoSuchBucket</Code><Message>x</Message>";
        assert_eq!(s3_code(body), Some("NoSuchBucket"));
        assert_eq!(s3_code("no xml"), None);
    }

    #[test]
    fn no_credentials_says_where_to_set_them() {
        let e = object_store::Error::Generic {
            store: "S3",
            source: "Error performing PUT http://169.254.169.254/latest/api/token in 4ms - \
                     Server returned non-2xx status code: 403 Forbidden"
                .into(),
        };
        let text = classify("s3://team/results", Some("team"), None, e).to_string();
        assert!(text.contains("s3://team/results"), "{text}");
        assert!(text.contains("no AWS credentials found"), "{text}");
        assert!(text.contains("--pass-env 'AWS_*'"), "{text}");
    }
}
