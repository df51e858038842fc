//! Weir's result storage: where persisted results and cache entries live — a local directory
//! or an S3 bucket the team owns, addressed by URL ([`weir_core::storage::StorageUrl`]). The
//! server never holds result bytes; it keeps a location and a size.
//!
//! # Layout (every SDK writes exactly this; keys are relative to the storage root)
//!
//! | key | content |
//! |---|---|
//! | `{flow_run_id}/result.json` | a flow run's return value as JSON, written when the run reports to a server |
//! | `{flow_run_id}/{task}/{call_index}.json` | a persisted task result (`persist_result`): the value as JSON; `call_index` is the n-th call (from 0) of that task in the flow run |
//! | `cache/{task}/{sha256_hex(cache_key)}.json` | a cache entry: `{"created_at": RFC 3339, "key": cache_key, "value": …}`, written create-only |
//!
//! `flow_run_id` is the UUID in its hyphenated lower-case form, `task` the task's name,
//! `sha256_hex` the 64 lower-case hex digits of the SHA-256 of the key's UTF-8 bytes. Objects
//! are written with content type `application/json`. A location is the root URL joined with
//! the key: `s3://team-results/weir/0190…/result.json`.
//!
//! # Choosing the storage
//!
//! `WEIR_RESULT_STORAGE` (set by an agent from the deployment's `result_storage` or its own
//! `--result-storage`), else `file://$WEIR_HOME/results` with `WEIR_HOME` defaulting to
//! `./.weir`. See [`ResultStore::from_env`].
//!
//! Writes of results overwrite (a retried attempt writes the same value); writes of cache
//! entries are create-only ([`ResultStore::put_new`], `PutMode::Create`: `If-None-Match: *`
//! on S3), so two runs racing on one key leave one whole entry, never a mix.

mod error;
#[cfg(feature = "s3")]
mod s3;

pub use error::Error;
pub use weir_core::storage::StorageUrl;

use futures::TryStreamExt;
use object_store::path::Path as StorePath;
use object_store::{
    Attribute, Attributes, ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload,
};
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

const JSON: &str = "application/json";

/// The environment variable naming the result storage.
pub const ENV_VAR: &str = weir_core::contract::launch::var::RESULT_STORAGE;

/// An object read back, with what the storage says about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Object {
    /// The object's whole content.
    pub bytes: bytes::Bytes,
    /// Its content type, when the storage keeps one (S3 does; a local directory does not).
    pub content_type: Option<String>,
}

/// One listed object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    /// Key relative to the storage root.
    pub key: String,
    /// The object's size in bytes.
    pub size: u64,
}

/// A result storage root: a local directory or an S3 bucket and prefix. Cheap to create;
/// the first read or write opens it (creates the directory, builds the S3 client).
pub struct ResultStore {
    url: StorageUrl,
    text: String,
    endpoint: Option<String>,
    store: OnceLock<Result<Arc<dyn ObjectStore>, String>>,
}

impl std::fmt::Debug for ResultStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResultStore")
            .field("url", &self.text)
            .finish()
    }
}

fn absolute(p: PathBuf) -> PathBuf {
    if p.is_absolute() {
        p
    } else {
        std::env::current_dir().map(|d| d.join(&p)).unwrap_or(p)
    }
}

/// `$WEIR_HOME`, default `./.weir`, absolute.
pub fn default_home() -> PathBuf {
    use weir_core::contract::launch::{DEFAULT_HOME, var};
    let home = std::env::var_os(var::HOME)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_HOME));
    absolute(home)
}

impl ResultStore {
    /// The store named by `url` (see [`StorageUrl`]); a relative path is made absolute.
    pub fn open(url: &str) -> Result<Self, Error> {
        Ok(ResultStore::at(StorageUrl::parse(url)?))
    }

    /// The store at a parsed URL.
    pub fn at(url: StorageUrl) -> Self {
        let url = match url {
            StorageUrl::Local(p) => StorageUrl::Local(absolute(p)),
            s3 => s3,
        };
        ResultStore {
            text: url.to_string(),
            url,
            endpoint: None,
            store: OnceLock::new(),
        }
    }

    /// The same store, talking to the S3-compatible `endpoint` (e.g. `http://127.0.0.1:9000`)
    /// instead of `AWS_ENDPOINT_URL`'s. No effect on a local directory.
    pub fn with_endpoint(mut self, endpoint: &str) -> Self {
        self.endpoint = Some(endpoint.to_string());
        self.store = OnceLock::new();
        self
    }

    /// A store in a local directory.
    pub fn in_dir(dir: impl Into<PathBuf>) -> Self {
        ResultStore::at(StorageUrl::Local(dir.into()))
    }

    /// `WEIR_RESULT_STORAGE` when set (an error when it is not a valid URL), else
    /// `file://$WEIR_HOME/results`. The second value says whether it was configured
    /// explicitly.
    pub fn from_env() -> Result<(Self, bool), Error> {
        match std::env::var(ENV_VAR) {
            Ok(url) if !url.trim().is_empty() => Ok((ResultStore::open(&url)?, true)),
            _ => Ok((ResultStore::in_dir(default_home().join("results")), false)),
        }
    }

    /// The root URL (`file:///abs/dir` or `s3://bucket[/prefix]`).
    pub fn url(&self) -> &str {
        &self.text
    }

    /// Whether this is an S3 bucket (as opposed to a local directory).
    pub fn is_remote(&self) -> bool {
        matches!(self.url, StorageUrl::S3 { .. })
    }

    /// The full URL of `key`.
    pub fn location(&self, key: &str) -> String {
        self.url.location(key)
    }

    /// The key of the persisted result of call `index` of `task` in `flow_run_id`.
    pub fn result_key(flow_run_id: impl std::fmt::Display, task: &str, index: u32) -> String {
        format!("{flow_run_id}/{task}/{index}.json")
    }

    /// The key of a flow run's own result.
    pub fn flow_result_key(flow_run_id: impl std::fmt::Display) -> String {
        format!("{flow_run_id}/result.json")
    }

    fn bucket(&self) -> Option<&str> {
        match &self.url {
            StorageUrl::S3 { bucket, .. } => Some(bucket),
            StorageUrl::Local(_) => None,
        }
    }

    fn err(&self, e: object_store::Error) -> Error {
        error::classify(&self.text, self.bucket(), self.endpoint.as_deref(), e)
    }

    fn store(&self) -> Result<&Arc<dyn ObjectStore>, Error> {
        let r = self.store.get_or_init(|| match &self.url {
            StorageUrl::Local(dir) => {
                std::fs::create_dir_all(dir)
                    .map_err(|e| format!("cannot create directory {}: {e}", dir.display()))?;
                object_store::local::LocalFileSystem::new_with_prefix(dir)
                    .map(|s| Arc::new(s) as Arc<dyn ObjectStore>)
                    .map_err(|e| e.to_string())
            }
            #[cfg(feature = "s3")]
            StorageUrl::S3 { bucket, .. } => s3::open(bucket, self.endpoint.as_deref()),
            #[cfg(not(feature = "s3"))]
            StorageUrl::S3 { .. } => Err(String::new()),
        });
        r.as_ref().map_err(|message| match &self.url {
            StorageUrl::S3 { .. } if message.is_empty() => Error::NoS3 {
                url: self.text.clone(),
            },
            _ => Error::Open {
                url: self.text.clone(),
                message: message.clone(),
            },
        })
    }

    /// The object path of `key` (under the S3 prefix, if any).
    fn path(&self, key: &str) -> StorePath {
        match &self.url {
            StorageUrl::S3 { prefix, .. } if !prefix.is_empty() => {
                StorePath::from(format!("{prefix}/{}", key.trim_start_matches('/')))
            }
            _ => StorePath::from(key),
        }
    }

    /// Put options: `mode`, and the content type where the storage keeps one (S3; a local
    /// directory has nowhere to put it).
    fn options(&self, mode: PutMode, content_type: &str) -> PutOptions {
        let mut attributes = Attributes::new();
        if self.is_remote() {
            attributes.insert(Attribute::ContentType, content_type.to_string().into());
        }
        PutOptions {
            mode,
            attributes,
            ..PutOptions::default()
        }
    }

    /// Checks that the storage can be used: the directory can be created, or the bucket exists
    /// and the credentials may list it. Run before user code, so a misconfigured run fails at
    /// once with an error naming the URL.
    pub async fn check(&self) -> Result<(), Error> {
        let store = self.store()?;
        if self.is_remote() {
            let prefix = self.path("");
            let prefix = (!prefix.as_ref().is_empty()).then_some(prefix);
            store
                .list_with_delimiter(prefix.as_ref())
                .await
                .map_err(|e| self.err(e))?;
        }
        Ok(())
    }

    /// Writes `bytes` (JSON) at `key`, replacing what was there; returns the size.
    pub async fn put(&self, key: &str, bytes: Vec<u8>) -> Result<u64, Error> {
        let size = bytes.len() as u64;
        self.store()?
            .put_opts(
                &self.path(key),
                PutPayload::from(bytes),
                self.options(PutMode::Overwrite, JSON),
            )
            .await
            .map_err(|e| self.err(e))?;
        Ok(size)
    }

    /// Writes `bytes` with content type `content_type` at `key`, replacing what was there.
    pub async fn put_object(
        &self,
        key: &str,
        bytes: impl Into<PutPayload>,
        content_type: &str,
    ) -> Result<(), Error> {
        let opts = self.options(PutMode::Overwrite, content_type);
        self.store()?
            .put_opts(&self.path(key), bytes.into(), opts)
            .await
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Writes `bytes` (JSON) at `key` only if nothing is there (`PutMode::Create`). Returns
    /// `false`, writing nothing, when an object already exists — written by a racing run.
    pub async fn put_new(&self, key: &str, bytes: Vec<u8>) -> Result<bool, Error> {
        let r = self
            .store()?
            .put_opts(
                &self.path(key),
                PutPayload::from(bytes),
                self.options(PutMode::Create, JSON),
            )
            .await;
        match r {
            Ok(_) => Ok(true),
            Err(
                object_store::Error::AlreadyExists { .. }
                | object_store::Error::Precondition { .. },
            ) => Ok(false),
            Err(e) => Err(self.err(e)),
        }
    }

    /// Reads `key`; `None` when nothing is there.
    pub async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, Error> {
        Ok(self.get_object(key).await?.map(|o| o.bytes.to_vec()))
    }

    /// Reads `key` with its content type; `None` when nothing is there.
    pub async fn get_object(&self, key: &str) -> Result<Option<Object>, Error> {
        let store = self.store()?;
        match store.get(&self.path(key)).await {
            Ok(r) => {
                let content_type = r
                    .attributes
                    .get(&Attribute::ContentType)
                    .map(|v| v.to_string());
                let bytes = r.bytes().await.map_err(|e| self.err(e))?;
                Ok(Some(Object {
                    bytes,
                    content_type,
                }))
            }
            Err(e @ object_store::Error::NotFound { .. }) => {
                // S3 answers 404 for a missing bucket too: that is a configuration error.
                match self.err(e) {
                    Error::Store {
                        source: object_store::Error::NotFound { .. },
                        ..
                    } => Ok(None),
                    other => Err(other),
                }
            }
            Err(e) => Err(self.err(e)),
        }
    }

    /// Deletes `key` (nothing there is not an error).
    pub async fn delete(&self, key: &str) -> Result<(), Error> {
        match self.store()?.delete(&self.path(key)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.err(e)),
        }
    }

    /// Every object under `prefix` (a key prefix ending at a `/` boundary), keys relative to
    /// the storage root, in key order.
    pub async fn list(&self, prefix: &str) -> Result<Vec<Listed>, Error> {
        let store = self.store()?;
        let root = self.path("");
        let under = self.path(prefix.trim_matches('/'));
        let under = (!under.as_ref().is_empty()).then_some(under);
        let metas: Vec<_> = store
            .list(under.as_ref())
            .try_collect()
            .await
            .map_err(|e| self.err(e))?;
        let strip = root.as_ref().trim_end_matches('/');
        let mut out: Vec<Listed> = metas
            .into_iter()
            .map(|m| {
                let full = m.location.as_ref();
                let key = if strip.is_empty() {
                    full
                } else {
                    full.strip_prefix(strip)
                        .map(|k| k.trim_start_matches('/'))
                        .unwrap_or(full)
                };
                Listed {
                    key: key.to_string(),
                    size: m.size,
                }
            })
            .collect();
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    /// Reads the object at a full `location` (as the server reports it), with the caller's own
    /// credentials: `s3://bucket/key`, `file:///path` or a path.
    pub async fn fetch(location: &str) -> Result<Object, Error> {
        let (root, key) = match StorageUrl::parse(location)? {
            StorageUrl::S3 { bucket, prefix } => (
                StorageUrl::S3 {
                    bucket,
                    prefix: String::new(),
                },
                prefix,
            ),
            StorageUrl::Local(path) => {
                let path = absolute(path);
                let key = path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                let dir = path.parent().map(PathBuf::from).unwrap_or_default();
                (StorageUrl::Local(dir), key)
            }
        };
        Self::read(ResultStore::at(root), &key, location).await
    }

    /// Like [`ResultStore::fetch`], through `endpoint` for `s3://` locations.
    pub async fn fetch_via(location: &str, endpoint: &str) -> Result<Object, Error> {
        match StorageUrl::parse(location)? {
            StorageUrl::S3 { bucket, prefix } => {
                let root = StorageUrl::S3 {
                    bucket,
                    prefix: String::new(),
                };
                Self::read(
                    ResultStore::at(root).with_endpoint(endpoint),
                    &prefix,
                    location,
                )
                .await
            }
            StorageUrl::Local(_) => Self::fetch(location).await,
        }
    }

    async fn read(store: ResultStore, key: &str, location: &str) -> Result<Object, Error> {
        if key.is_empty() {
            return Err(Error::NotFound {
                location: location.to_string(),
            });
        }
        if let StorageUrl::Local(dir) = &store.url
            && !dir.is_dir()
        {
            return Err(Error::NotFound {
                location: location.to_string(),
            });
        }
        store.get_object(key).await?.ok_or_else(|| Error::NotFound {
            location: location.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_urls() {
        assert_eq!(
            ResultStore::result_key("f", "extract", 2),
            "f/extract/2.json"
        );
        assert_eq!(ResultStore::flow_result_key("f"), "f/result.json");
        let s = ResultStore::open("file:///tmp/x/").expect("file url");
        assert_eq!(s.url(), "file:///tmp/x");
        assert_eq!(s.location("a/b.json"), "file:///tmp/x/a/b.json");
        let s = ResultStore::open("s3://team-results/weir").expect("s3 url");
        assert_eq!(s.location("a/b.json"), "s3://team-results/weir/a/b.json");
        assert_eq!(s.path("a/b.json").as_ref(), "weir/a/b.json");
        assert!(ResultStore::open("gs://bucket").is_err());
    }

    #[tokio::test]
    async fn local_put_get_create_list_fetch() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = ResultStore::in_dir(dir.path().join("r"));
        s.check().await.expect("check");
        assert_eq!(s.get("a/b.json").await.expect("get"), None);
        assert_eq!(s.put("a/b.json", b"[1]".to_vec()).await.expect("put"), 3);
        assert_eq!(s.get("a/b.json").await.expect("get"), Some(b"[1]".to_vec()));
        assert!(s.put_new("c/d.json", b"1".to_vec()).await.expect("new"));
        assert!(!s.put_new("c/d.json", b"2".to_vec()).await.expect("exists"));
        assert_eq!(s.get("c/d.json").await.expect("get"), Some(b"1".to_vec()));
        let keys: Vec<String> = s
            .list("")
            .await
            .expect("list")
            .into_iter()
            .map(|l| l.key)
            .collect();
        assert_eq!(keys, ["a/b.json", "c/d.json"]);
        let o = ResultStore::fetch(&s.location("a/b.json"))
            .await
            .expect("fetch");
        assert_eq!(&o.bytes[..], b"[1]");
        let missing = ResultStore::fetch(&s.location("a/zz.json"))
            .await
            .expect_err("missing");
        assert!(matches!(missing, Error::NotFound { .. }), "{missing}");
    }
}
