//! Shared set-up of the SDK integration tests: a quiet local tracker, a runner, and result
//! storage in a temporary directory.

#![allow(dead_code)]

use std::sync::Arc;
use weir::Runner;
use weir::local::LocalTracker;
use weir::results::ResultStore;

/// A tracker, a runner reporting to it, and the temporary result directory (kept alive).
pub struct Setup {
    /// The tracker (records).
    pub tracker: Arc<LocalTracker>,
    /// A runner reporting to it.
    pub runner: Runner,
    /// The result directory.
    pub dir: tempfile::TempDir,
}

/// A quiet tracker, a runner and a temporary result directory.
pub fn setup() -> Setup {
    weir::logging::install(weir::logging::WeirLayer::new().quiet_outside());
    let dir = tempfile::tempdir().expect("tempdir");
    let tracker = Arc::new(LocalTracker::new().quiet());
    let runner = Runner::new(tracker.clone()).with_results(ResultStore::in_dir(dir.path()));
    Setup {
        tracker,
        runner,
        dir,
    }
}

/// A runner around `tracker` with results in `dir`.
pub fn with_tracker(tracker: LocalTracker, dir: &std::path::Path) -> (Arc<LocalTracker>, Runner) {
    weir::logging::install(weir::logging::WeirLayer::new().quiet_outside());
    let tracker = Arc::new(tracker);
    let runner = Runner::new(tracker.clone()).with_results(ResultStore::in_dir(dir));
    (tracker, runner)
}
