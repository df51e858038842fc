//! What every store test file shares: each `async fn case_x(store: Store)` runs against both
//! backends — an SQLite file in a temporary directory and a fresh database on a real
//! PostgreSQL server (see `weir-testkit` and `scripts/test-postgres.sh`).

#![allow(dead_code)]

use chrono::{Duration, TimeZone, Utc};
use weir_core::api::DeploymentSpec;
use weir_core::deployment::Deployment;
use weir_core::run::Run;
use weir_core::{StateKind, Timestamp};
use weir_store::{NewFlowRun, Store};
use weir_testkit::TestDb;

/// Writes `#[tokio::test] sqlite_x` and `postgres_x` for each `case_x`.
macro_rules! both_backends {
    ($($case:ident => $sqlite:ident, $postgres:ident;)*) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn $sqlite() {
            if let Some(db) = weir_testkit::TestDb::new(weir_testkit::Backend::Sqlite, stringify!($sqlite)).await {
                $case(common::connect(&db).await).await;
            }
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn $postgres() {
            if let Some(db) = weir_testkit::TestDb::new(weir_testkit::Backend::Postgres, stringify!($postgres)).await {
                $case(common::connect(&db).await).await;
            }
        }
    )*};
}

/// Opens the store of a test database (panics naming its URL when it cannot).
pub async fn connect(db: &TestDb) -> Store {
    match Store::connect(&db.url).await {
        Ok(s) => s,
        Err(e) => panic!("cannot open {}: {e}", db.url),
    }
}

/// The current time at the stores' precision (microseconds), so values round-trip exactly.
pub fn now() -> Timestamp {
    micros(Utc::now())
}

/// `t` truncated to microseconds.
pub fn micros(t: Timestamp) -> Timestamp {
    Utc.timestamp_micros(t.timestamp_micros())
        .single()
        .expect("in range")
}

/// Deployment `dev/etl` of flow `etl` on the default queue, its runs retried `retries` times.
pub async fn deploy_etl(store: &Store, retries: u32) -> Deployment {
    let spec = DeploymentSpec {
        flow: "etl".into(),
        work_queue: "default".into(),
        retries,
        ..Default::default()
    };
    store
        .upsert_deployment("dev", "etl", &spec, false, now())
        .await
        .expect("upsert")
        .deployment
        .expect("deployment returned")
}

/// A Scheduled run of `d` due at `at`, with the deployment's parameters, queue and retries.
pub fn new_run(d: &Deployment, at: Timestamp) -> NewFlowRun {
    NewFlowRun {
        project: d.project.clone(),
        deployment: Some((d.id, d.name.clone())),
        flow: d.spec.flow.clone(),
        parameters: d.spec.parameters.clone(),
        work_queue: d.spec.work_queue.clone(),
        scheduled_at: at,
        tick_at: None,
        state: StateKind::Scheduled,
        retries: d.spec.retries,
        retry_delay_s: d.spec.retry_delay_s,
        idempotency_key: None,
        parent_flow_run_id: None,
        tags: vec![],
        auto_scheduled: false,
    }
}

/// A run of `d` due at `at`, created then with a 30 s lease.
pub async fn create_run(store: &Store, d: &Deployment, at: Timestamp) -> Run {
    store
        .create_flow_run(new_run(d, at), Duration::seconds(30), at)
        .await
        .expect("create run")
        .run
}
