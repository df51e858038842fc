//! [`Runner`]: runs flows with a chosen tracker and result storage, and cancels what is running.

use crate::context::{RUNNER, RunEnv};
use crate::flow::FlowDef;
use crate::params::ParamError;
use crate::results::{ResultStore, Storage};
use crate::tracker::{FlowRunFinish, Tracker};
use std::future::Future;
use std::sync::Arc;
use weir_core::StateKind;
use weir_core::api::Parameters;

/// Runs flows with a given tracker and result storage.
///
/// A flow awaited outside any runner uses [`crate::environment::tracker_from_env`] and
/// the result storage of `WEIR_RESULT_STORAGE` ([`crate::results`]).
///
/// ```ignore
/// let tracker = Arc::new(LocalTracker::new().quiet());
/// let runner = Runner::new(tracker.clone());
/// let summary = runner.run(etl(100)).await?;
/// let records = tracker.records();
/// ```
#[derive(Clone)]
pub struct Runner {
    env: Arc<RunEnv>,
}

impl std::fmt::Debug for Runner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runner")
            .field("results", &self.env.storage.store)
            .finish()
    }
}

impl Runner {
    /// A runner reporting to `tracker`, with result storage from the environment.
    pub fn new(tracker: Arc<dyn Tracker>) -> Self {
        Runner {
            env: RunEnv::new(tracker, Storage::from_env()),
        }
    }

    /// A runner with [`crate::environment::tracker_from_env`] and result storage from the environment.
    pub fn from_env() -> Self {
        Runner::new(crate::environment::tracker_from_env())
    }

    /// The same runner with another result storage (checked before the first flow body runs).
    pub fn with_results(self, results: ResultStore) -> Self {
        Runner {
            env: RunEnv::new(self.env.tracker.clone(), Storage::new(results, true)),
        }
    }

    /// Where this runner reports runs (the local tracker, or the server's client).
    pub fn tracker(&self) -> &Arc<dyn Tracker> {
        &self.env.tracker
    }

    /// The result storage.
    pub fn results(&self) -> &ResultStore {
        &self.env.storage.store
    }

    /// Awaits `fut` (typically a flow call such as `etl(100)`) with this runner in scope.
    pub async fn run<F: Future>(&self, fut: F) -> F::Output {
        RUNNER.scope(self.env.clone(), fut).await
    }

    /// Validates JSON `parameters` for `flow` and returns its run, yielding the result as JSON.
    pub fn start(
        &self,
        flow: &FlowDef,
        parameters: Parameters,
    ) -> Result<impl Future<Output = anyhow::Result<serde_json::Value>> + Send + 'static, ParamError>
    {
        let fut = flow.prepare(parameters)?;
        Ok(RUNNER.scope(self.env.clone(), fut))
    }

    /// Ends every flow run this runner started and that has not finished (innermost first) as
    /// Cancelled with `message`. Call it after dropping the flow's future. Returns how many.
    pub async fn cancel_active(&self, message: &str) -> usize {
        let active = self.env.take_active();
        for (id, attempt) in active.iter().rev() {
            let _ = self
                .env
                .tracker
                .finish_flow_run(FlowRunFinish {
                    flow_run_id: *id,
                    attempt: *attempt,
                    state: StateKind::Cancelled,
                    message: Some(message.to_string()),
                    result: None,
                    result_ref: None,
                })
                .await;
        }
        active.len()
    }
}
