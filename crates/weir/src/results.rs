//! Result storage: where persisted task results, flow results and cache entries live — a local
//! directory or an S3 bucket, by URL. The storage layer and the key layout are
//! [`weir_results`]'s (re-exported here); this module adds when the SDK checks it.
//!
//! The storage comes from `WEIR_RESULT_STORAGE` (`file:///path`, a path, or
//! `s3://bucket/prefix`; an agent sets it from the deployment's `result_storage` or its own
//! `--result-storage`), else `file://$WEIR_HOME/results`. It is checked once per process,
//! before the first top-level flow body runs, whenever it was configured explicitly or the run
//! reports to a server: a bad URL, a missing bucket or refused credentials fail the flow run
//! before any user code runs, with an error naming the URL. Flows that run locally on the
//! default storage and neither persist nor cache never touch the file system.

pub use weir_results::{ENV_VAR, Error, Listed, Object, ResultStore, StorageUrl, default_home};

use std::sync::Arc;
use tokio::sync::OnceCell;

/// A runner's result storage, with the outcome of its one check.
pub(crate) struct Storage {
    pub store: Arc<ResultStore>,
    /// Configured explicitly (environment or [`crate::Runner::with_results`]).
    explicit: bool,
    /// `WEIR_RESULT_STORAGE` was set to something unusable.
    config_error: Option<String>,
    checked: OnceCell<Result<(), String>>,
}

impl Storage {
    /// From `WEIR_RESULT_STORAGE`, else the default directory.
    pub fn from_env() -> Self {
        match ResultStore::from_env() {
            Ok((store, explicit)) => Storage::new(store, explicit),
            Err(e) => {
                let mut s = Storage::new(ResultStore::in_dir(default_home().join("results")), true);
                s.config_error = Some(format!("{ENV_VAR}: {e}"));
                s
            }
        }
    }

    /// A given store.
    pub fn new(store: ResultStore, explicit: bool) -> Self {
        Storage {
            store: Arc::new(store),
            explicit,
            config_error: None,
            checked: OnceCell::new(),
        }
    }

    /// Whether the storage is usable; checked at most once. `reported`: the run reports to a
    /// server (so its result will be written).
    pub async fn ready(&self, reported: bool) -> Result<(), String> {
        if let Some(e) = &self.config_error {
            return Err(e.clone());
        }
        if !(self.explicit || reported) {
            return Ok(());
        }
        self.checked
            .get_or_init(|| async { self.store.check().await.map_err(|e| e.to_string()) })
            .await
            .clone()
    }
}
