//! Result-storage URLs: where persisted results and cache entries live.
//!
//! One rule, used by `weir deploy` (to refuse a bad `result_storage` before anything is
//! written), by the agent and by the SDK. Accepted forms:
//!
//! * `file:///abs/dir` — a local directory;
//! * a plain path (`/abs/dir`, `rel/dir`) — the same, relative to the process's directory;
//! * `s3://bucket` or `s3://bucket/prefix` — an S3 bucket (or any S3-compatible endpoint:
//!   `AWS_ENDPOINT_URL`), optionally under a key prefix.
//!
//! Parsing does no IO: whether the bucket exists or the caller may write to it is checked by
//! the storage layer (`weir-results`).

use std::fmt;
use std::path::PathBuf;

/// A parsed result-storage URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StorageUrl {
    /// A local directory (possibly relative: the caller makes it absolute).
    Local(PathBuf),
    /// An S3 bucket and a key prefix (no leading or trailing `/`; empty for the bucket root).
    S3 {
        /// The bucket's name, as in `s3://bucket/…` (no slashes).
        bucket: String,
        /// Key prefix, `a/b` for `s3://bucket/a/b/`.
        prefix: String,
    },
}

/// Why a result-storage URL was refused. Every message quotes the URL and says what to write.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StorageUrlError {
    /// Nothing was given.
    #[error("result storage URL is empty: give file:///path, a path, or s3://bucket/prefix")]
    Empty,
    /// A scheme other than `file` or `s3`.
    #[error(
        "unsupported result storage URL {url:?}: scheme {scheme:?} is not supported; use \
         file:///path, a path, or s3://bucket/prefix"
    )]
    Scheme {
        /// The URL as given.
        url: String,
        /// The scheme found before `:`, e.g. `gs`.
        scheme: String,
    },
    /// A scheme without `//` (`s3:/bucket`): a mistyped URL.
    #[error(
        "invalid result storage URL {url:?}: {scheme:?} followed by ':' but not '://'; write \
         s3://bucket/prefix or file:///path (a path meant as a plain path: start it with ./)"
    )]
    Malformed {
        /// The URL as given.
        url: String,
        /// What stands before the ':'.
        scheme: String,
    },
    /// `file://` with a host or a relative path.
    #[error(
        "invalid result storage URL {url:?}: a file URL needs an absolute path \
         (file:///var/lib/weir/results), or give a plain path"
    )]
    FilePath {
        /// The URL as given.
        url: String,
    },
    /// A bucket name S3 would refuse.
    #[error(
        "invalid result storage URL {url:?}: {problem} (bucket names are 3 to 63 lower-case \
         letters, digits, '.' and '-', starting and ending with a letter or digit)"
    )]
    Bucket {
        /// The URL as given.
        url: String,
        /// What is wrong with the bucket name.
        problem: String,
    },
    /// A key prefix with an empty, `.` or `..` segment, or with `?`/`#`.
    #[error("invalid result storage URL {url:?}: {problem}")]
    Prefix {
        /// The URL as given.
        url: String,
        /// What is wrong with the prefix.
        problem: String,
    },
}

fn check_bucket(url: &str, bucket: &str) -> Result<(), StorageUrlError> {
    let problem = if bucket.is_empty() {
        Some("no bucket name after s3://".to_string())
    } else if !(3..=63).contains(&bucket.len()) {
        Some(format!(
            "bucket name {bucket:?} has {} characters",
            bucket.len()
        ))
    } else if let Some(c) = bucket
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '.' || *c == '-'))
    {
        Some(format!("bucket name {bucket:?} contains {c:?}"))
    } else if !bucket.starts_with(|c: char| c.is_ascii_alphanumeric())
        || !bucket.ends_with(|c: char| c.is_ascii_alphanumeric())
    {
        Some(format!(
            "bucket name {bucket:?} must start and end with a letter or digit"
        ))
    } else {
        None
    };
    match problem {
        Some(problem) => Err(StorageUrlError::Bucket {
            url: url.to_string(),
            problem,
        }),
        None => Ok(()),
    }
}

fn check_prefix(url: &str, prefix: &str) -> Result<String, StorageUrlError> {
    let err = |problem: String| StorageUrlError::Prefix {
        url: url.to_string(),
        problem,
    };
    if let Some(c) = prefix
        .chars()
        .find(|c| matches!(c, '?' | '#') || c.is_control())
    {
        return Err(err(format!("the key prefix contains {c:?}")));
    }
    let trimmed = prefix.trim_matches('/');
    if trimmed.is_empty() {
        return Ok(String::new());
    }
    for segment in trimmed.split('/') {
        match segment {
            "" => return Err(err("the key prefix has an empty segment (\"//\")".into())),
            "." | ".." => {
                return Err(err(format!(
                    "the key prefix has a {segment:?} segment: write the prefix out"
                )));
            }
            _ => {}
        }
    }
    Ok(trimmed.to_string())
}

impl StorageUrl {
    /// Parses `text` (surrounding white space ignored); see the module docs for the forms.
    pub fn parse(text: &str) -> Result<StorageUrl, StorageUrlError> {
        let url = text.trim();
        if url.is_empty() {
            return Err(StorageUrlError::Empty);
        }
        let Some((scheme, rest)) = url.split_once("://") else {
            // `s3:/bucket`, `s3:bucket`: a mistyped URL, not a relative path to keep results in.
            if let Some((scheme, _)) = url.split_once(':')
                && scheme.len() > 1
                && scheme.starts_with(|c: char| c.is_ascii_alphabetic())
                && scheme
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
            {
                return Err(StorageUrlError::Malformed {
                    url: url.to_string(),
                    scheme: scheme.to_string(),
                });
            }
            return Ok(StorageUrl::Local(PathBuf::from(url)));
        };
        match scheme.to_ascii_lowercase().as_str() {
            "file" => {
                if !rest.starts_with('/') {
                    return Err(StorageUrlError::FilePath {
                        url: url.to_string(),
                    });
                }
                Ok(StorageUrl::Local(PathBuf::from(rest)))
            }
            "s3" => {
                let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
                check_bucket(url, bucket)?;
                let prefix = check_prefix(url, prefix)?;
                Ok(StorageUrl::S3 {
                    bucket: bucket.to_string(),
                    prefix,
                })
            }
            _ => Err(StorageUrlError::Scheme {
                url: url.to_string(),
                scheme: scheme.to_string(),
            }),
        }
    }

    /// The full URL of `key` under this storage root.
    pub fn location(&self, key: &str) -> String {
        let root = self.to_string();
        format!(
            "{}/{}",
            root.trim_end_matches('/'),
            key.trim_start_matches('/')
        )
    }
}

impl fmt::Display for StorageUrl {
    /// `file:///dir` (as given, relative paths included) or `s3://bucket[/prefix]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StorageUrl::Local(p) => {
                let s = p.display().to_string();
                let trimmed = match s.trim_end_matches('/') {
                    "" if s.starts_with('/') => "/",
                    t => t,
                };
                if trimmed.starts_with('/') {
                    write!(f, "file://{trimmed}")
                } else {
                    write!(f, "{trimmed}")
                }
            }
            StorageUrl::S3 { bucket, prefix } if prefix.is_empty() => write!(f, "s3://{bucket}"),
            StorageUrl::S3 { bucket, prefix } => write!(f, "s3://{bucket}/{prefix}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepted_forms() {
        assert_eq!(
            StorageUrl::parse("file:///var/r/").expect("file"),
            StorageUrl::Local("/var/r/".into())
        );
        assert_eq!(
            StorageUrl::parse(" rel/dir ").expect("path"),
            StorageUrl::Local("rel/dir".into())
        );
        let s3 = StorageUrl::parse("s3://team-results/weir/dev/").expect("s3");
        assert_eq!(
            s3,
            StorageUrl::S3 {
                bucket: "team-results".into(),
                prefix: "weir/dev".into()
            }
        );
        assert_eq!(s3.to_string(), "s3://team-results/weir/dev");
        assert_eq!(
            s3.location("a/1.json"),
            "s3://team-results/weir/dev/a/1.json"
        );
        let root = StorageUrl::parse("S3://bucket.one").expect("s3 root");
        assert_eq!(root.to_string(), "s3://bucket.one");
        assert_eq!(root.location("k"), "s3://bucket.one/k");
        assert_eq!(
            StorageUrl::parse("file:///var/r/")
                .expect("file")
                .location("k"),
            "file:///var/r/k"
        );
    }

    #[test]
    fn refused_forms_name_the_url() {
        for (url, needle) in [
            ("", "empty"),
            ("gs://b/p", "scheme \"gs\""),
            ("s3:/bad url", "not '://'"),
            ("s3:team/results", "not '://'"),
            ("file://host/dir", "absolute path"),
            ("s3://", "no bucket name"),
            ("s3://ab", "has 2 characters"),
            ("s3://Team", "contains 'T'"),
            ("s3://-team", "start and end"),
            ("s3://team/a//b", "empty segment"),
            ("s3://team/a/../b", "\"..\" segment"),
            ("s3://team/a?x=1", "contains '?'"),
        ] {
            let e = StorageUrl::parse(url).expect_err(url).to_string();
            assert!(e.contains(needle), "{url}: {e}");
            if !url.is_empty() {
                assert!(e.contains(url), "{url}: {e}");
            }
        }
    }
}
