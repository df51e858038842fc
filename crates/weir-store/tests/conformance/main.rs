//! Conformance suite of [`weir_store::Store`]: every behaviour the server relies on, written
//! once as `async fn case_x(store: Store)` and run against both backends — an SQLite file in
//! a temporary directory and a fresh database on a real PostgreSQL server (see
//! `weir-testkit` and `scripts/test-postgres.sh`).
//!
//! The store takes `now` as an argument everywhere, so time-dependent rules (leases, retry
//! delays, due times) are tested by passing later times instead of sleeping.
//!
//! The cases are grouped one file per subject; the tests themselves are written here, at the
//! root, so their names do not depend on the grouping.

#[macro_use]
#[path = "../common/mod.rs"]
mod common;

mod agents;
mod claims;
mod deployments;
mod helpers;
mod runs;
mod schedules;
mod states;
mod stored_rows;
mod tasks;

use agents::*;
use claims::*;
use deployments::*;
use runs::*;
use schedules::*;
use states::*;
use stored_rows::*;
use tasks::*;

use common::connect;
use weir_testkit::{Backend, TestDb};

both_backends! {
    case_projects => sqlite_projects, postgres_projects;
    case_deployment_upsert => sqlite_deployment_upsert, postgres_deployment_upsert;
    case_dry_run_upserts => sqlite_dry_run_upserts, postgres_dry_run_upserts;
    case_create_idempotent => sqlite_create_idempotent, postgres_create_idempotent;
    case_ad_hoc_run => sqlite_ad_hoc_run, postgres_ad_hoc_run;
    case_concurrent_upserts => sqlite_concurrent_upserts, postgres_concurrent_upserts;
    case_list_filters => sqlite_list_filters, postgres_list_filters;
    case_list_pagination => sqlite_list_pagination, postgres_list_pagination;
    case_propose_state => sqlite_propose_state, postgres_propose_state;
    case_transition_id_idempotent => sqlite_transition_id_idempotent, postgres_transition_id_idempotent;
    case_concurrent_proposals => sqlite_concurrent_proposals, postgres_concurrent_proposals;
    case_failed_with_retries => sqlite_failed_with_retries, postgres_failed_with_retries;
    case_cancel => sqlite_cancel, postgres_cancel;
    case_retry_and_resume => sqlite_retry_and_resume, postgres_retry_and_resume;
    case_claim_once => sqlite_claim_once, postgres_claim_once;
    case_renew_leases => sqlite_renew_leases, postgres_renew_leases;
    case_expired_leases => sqlite_expired_leases, postgres_expired_leases;
    case_overdue_runs => sqlite_overdue_runs, postgres_overdue_runs;
    case_task_runs => sqlite_task_runs, postgres_task_runs;
    case_task_run_pagination => sqlite_task_run_pagination, postgres_task_run_pagination;
    case_task_runs_close_with_flow_run => sqlite_task_runs_close_with_flow_run, postgres_task_runs_close_with_flow_run;
    case_logs => sqlite_logs, postgres_logs;
    case_logs_sent_again => sqlite_logs_sent_again, postgres_logs_sent_again;
    case_agents => sqlite_agents, postgres_agents;
    case_claim_by_launcher => sqlite_claim_by_launcher, postgres_claim_by_launcher;
    case_work_queues => sqlite_work_queues, postgres_work_queues;
    case_materialise_idempotent => sqlite_materialise_idempotent, postgres_materialise_idempotent;
    case_schedule_change => sqlite_schedule_change, postgres_schedule_change;
    case_set_paused => sqlite_set_paused, postgres_set_paused;
    case_archive => sqlite_archive, postgres_archive;
    case_restore => sqlite_restore, postgres_restore;
    case_dst => sqlite_dst, postgres_dst;
    case_claim_race_shared => sqlite_claim_race_shared, postgres_claim_race_shared;
    case_import_flow_runs => sqlite_import_flow_runs, postgres_import_flow_runs;
}

weir_testkit::both_backends!(legacy_inline_result => sqlite_legacy_inline_result_reads_as_none, postgres_legacy_inline_result_reads_as_none);

/// The claim race over separate `Store` instances (separate pools and connections), so
/// claimers really compete in the database rather than queueing in one pool.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_claim_race_separate_stores() {
    if let Some(db) = TestDb::new(Backend::Sqlite, "sqlite_claim_race_separate_stores").await {
        claim_race_separate(&db).await;
    }
}

/// See [`sqlite_claim_race_separate_stores`].
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_claim_race_separate_stores() {
    if let Some(db) = TestDb::new(Backend::Postgres, "postgres_claim_race_separate_stores").await {
        claim_race_separate(&db).await;
    }
}

/// Work notifications cross stores (replicas): a listener on one store is woken by
/// `notify_work` on another over the same PostgreSQL database. SQLite has one server: no
/// listener, and notifying is a no-op.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_work_notifications_cross_replicas() {
    let Some(db) = TestDb::new(Backend::Postgres, "postgres_work_notifications").await else {
        return;
    };
    let (a, b) = (connect(&db).await, connect(&db).await);
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let listener = b.listen_work(move || {
        let _ = tx.send(());
    });
    let listener = listener.expect("a listener on PostgreSQL");
    // The first wake-up says the listener is connected (and anything missed must be looked at).
    tokio::time::timeout(std::time::Duration::from_secs(10), rx.recv())
        .await
        .expect("listening")
        .expect("woken");
    for _ in 0..3 {
        a.notify_work().await.expect("notify");
        tokio::time::timeout(std::time::Duration::from_secs(10), rx.recv())
            .await
            .expect("the other store was woken")
            .expect("woken");
    }
    listener.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_work_notifications_are_local() {
    let db = TestDb::new(Backend::Sqlite, "sqlite_work_notifications")
        .await
        .expect("sqlite");
    let store = connect(&db).await;
    assert!(store.listen_work(|| {}).is_none());
    store.notify_work().await.expect("a no-op");
}
