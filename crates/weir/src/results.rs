//! Result storage: where persisted task results and cache entries live.
//!
//! Addressed by URL through `object_store`: `file:///abs/dir` today (`s3://` later). The root
//! comes from `WEIR_RESULTS_URL`, else `file://$WEIR_HOME/results` with `WEIR_HOME` defaulting
//! to `./.weir` (made absolute). Keys:
//! * `{flow_run_id}/{task_name}/{call_index}.json` — a persisted result (plain JSON of the value);
//! * `cache/{task_name}/{sha256(cache_key)}.json` — a cache entry (`{created_at, key, value}`).
//!
//! The store is opened lazily, on the first read or write, so flows that neither persist nor
//! cache never touch the file system.

use object_store::{ObjectStore, ObjectStoreExt, PutPayload, path::Path as StorePath};
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use uuid::Uuid;

/// A result-storage failure.
#[derive(Debug, thiserror::Error)]
pub enum ResultStoreError {
    /// The URL's scheme is not supported (yet).
    #[error("unsupported results URL {0:?}: only file:// URLs are supported for now")]
    Unsupported(String),
    /// The local directory could not be created.
    #[error("cannot create results directory {path}: {source}")]
    CreateDir {
        /// The directory.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The store could not be opened.
    #[error("cannot open results store {url}: {message}")]
    Open {
        /// The store URL.
        url: String,
        /// The cause.
        message: String,
    },
    /// A read or write failed.
    #[error("result storage: {0}")]
    Store(#[from] object_store::Error),
}

/// Where results go; see the module docs.
pub struct ResultStore {
    url: String,
    dir: PathBuf,
    store: OnceLock<Result<Arc<dyn ObjectStore>, String>>,
}

impl std::fmt::Debug for ResultStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResultStore")
            .field("url", &self.url)
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

impl ResultStore {
    /// The store named by `WEIR_RESULTS_URL`, else `file://$WEIR_HOME/results`.
    ///
    /// An unsupported URL is reported on the first use, as a task failure naming it.
    pub fn from_env() -> Self {
        match std::env::var("WEIR_RESULTS_URL") {
            Ok(url) if !url.trim().is_empty() => match ResultStore::new(url.trim()) {
                Ok(s) => s,
                Err(e) => ResultStore {
                    url: url.clone(),
                    dir: PathBuf::new(),
                    store: OnceLock::from(Err(e.to_string())),
                },
            },
            _ => ResultStore::in_dir(default_home().join("results")),
        }
    }

    /// A store at `url` (`file:///path`; a relative path is made absolute).
    pub fn new(url: &str) -> Result<Self, ResultStoreError> {
        match url.strip_prefix("file://") {
            Some(path) if !path.is_empty() => Ok(ResultStore::in_dir(PathBuf::from(path))),
            _ => Err(ResultStoreError::Unsupported(url.to_string())),
        }
    }

    /// A store in a local directory.
    pub fn in_dir(dir: impl Into<PathBuf>) -> Self {
        let dir = absolute(dir.into());
        let url = format!("file://{}", dir.display());
        ResultStore {
            url: url.trim_end_matches('/').to_string(),
            dir,
            store: OnceLock::new(),
        }
    }

    /// The root URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The full URL of `key`.
    pub fn location(&self, key: &str) -> String {
        format!("{}/{}", self.url, key)
    }

    /// The key of the persisted result of call `index` of `task` in `flow_run_id`.
    pub fn result_key(flow_run_id: Uuid, task: &str, index: u32) -> String {
        format!("{flow_run_id}/{task}/{index}.json")
    }

    fn store(&self) -> Result<&Arc<dyn ObjectStore>, ResultStoreError> {
        let r = self.store.get_or_init(|| {
            std::fs::create_dir_all(&self.dir).map_err(|e| {
                ResultStoreError::CreateDir {
                    path: self.dir.display().to_string(),
                    source: e,
                }
                .to_string()
            })?;
            object_store::local::LocalFileSystem::new_with_prefix(&self.dir)
                .map(|s| Arc::new(s) as Arc<dyn ObjectStore>)
                .map_err(|e| e.to_string())
        });
        r.as_ref().map_err(|m| ResultStoreError::Open {
            url: self.url.clone(),
            message: m.clone(),
        })
    }

    /// Writes `bytes` at `key` (atomically).
    pub async fn put(&self, key: &str, bytes: Vec<u8>) -> Result<(), ResultStoreError> {
        let store = self.store()?;
        store
            .put(&StorePath::from(key), PutPayload::from(bytes))
            .await?;
        Ok(())
    }

    /// Reads `key`; `None` when it does not exist.
    pub async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, ResultStoreError> {
        let store = self.store()?;
        match store.get(&StorePath::from(key)).await {
            Ok(r) => Ok(Some(r.bytes().await?.to_vec())),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }
}

/// `$WEIR_HOME`, default `./.weir`, absolute.
pub fn default_home() -> PathBuf {
    absolute(weir_client::weir_home())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_urls() {
        let id = Uuid::nil();
        assert_eq!(
            ResultStore::result_key(id, "extract", 2),
            "00000000-0000-0000-0000-000000000000/extract/2.json"
        );
        let s = ResultStore::new("file:///tmp/x/").expect("file url");
        assert_eq!(s.url(), "file:///tmp/x");
        assert_eq!(s.location("a/b.json"), "file:///tmp/x/a/b.json");
        assert!(ResultStore::new("s3://bucket").is_err());
    }

    #[tokio::test]
    async fn put_then_get() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = ResultStore::in_dir(dir.path().join("r"));
        assert_eq!(s.get("a/b.json").await.expect("get"), None);
        s.put("a/b.json", b"[1]".to_vec()).await.expect("put");
        assert_eq!(s.get("a/b.json").await.expect("get"), Some(b"[1]".to_vec()));
    }
}
