//! Two server replicas over one PostgreSQL database, with the clock of one stepped an hour
//! ahead: leases are dated by the database's clock, so the stepped replica neither hands
//! out hour-long leases nor crashes runs the other replica keeps alive.

mod common;

use common::{TestServer, agent, deploy, options, run_of, spec};
use std::time::Duration;
use weir_core::StateKind;
use weir_core::api::{HeldRun, ProposeState};
use weir_testkit::{Backend, TestDb};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_clock_step_on_one_replica_changes_no_lease() {
    let Some(db) = TestDb::new(Backend::Postgres, "postgres_clock_step").await else {
        return;
    };
    let mut opts = options(&db);
    opts.lease = Duration::from_secs(2);
    let a = TestServer::start(opts.clone()).await;
    let mut stepped = opts;
    stepped.clock_skew = chrono::Duration::hours(1);
    let b = TestServer::start_with_key(stepped, &a.admin_key).await;

    deploy(&a.client, "etl", spec("etl")).await;
    let id = run_of(&a.client, "etl").await.id;
    let me = agent(&b.client).await;
    let claimed = b
        .client
        .claim(me, 1, Duration::from_secs(5))
        .await
        .expect("claim through the stepped replica");
    assert_eq!(claimed.len(), 1);
    let lease_end = claimed[0].run.lease_expires_at.expect("a lease");
    let real = chrono::Utc::now();
    assert!(
        lease_end < real + chrono::Duration::seconds(30),
        "the lease is dated by the database's clock, not the stepped one: {lease_end} vs now {real}"
    );
    a.client
        .propose_state(
            id,
            &ProposeState {
                state: StateKind::Running,
                message: None,
                attempt: 1,
                transition_id: None,
                result: None,
            },
        )
        .await
        .expect("running");
    // Heartbeats through the normal replica for three leases: the stepped replica's crash
    // detector (which would see every lease long expired by its own clock) leaves it alone.
    for _ in 0..12 {
        a.client
            .agent_heartbeat(
                me,
                &weir_core::api::Heartbeat {
                    runs: vec![HeldRun { id, attempt: 1 }],
                },
            )
            .await
            .expect("heartbeat");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let run = b.client.flow_run(id).await.expect("read").run;
    assert_eq!(run.state, StateKind::Running, "{run:?}");
    b.stop().await;
    a.stop().await;
}
