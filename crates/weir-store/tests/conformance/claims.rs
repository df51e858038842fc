//! Claims and leases: claiming once, renewing and expiring leases, overdue runs, and claim
//! races over one store and over several.

use crate::common::{connect, now};
use crate::helpers::*;

use chrono::Duration;
use std::collections::HashSet;
use uuid::Uuid;
use weir_core::StateKind;
use weir_core::run::Run;
use weir_store::{RunFilter, Store};
use weir_testkit::TestDb;

pub(crate) async fn case_claim_once(store: Store) {
    let d = deploy(&store, "dev", "etl", spec("etl")).await;
    let mut gpu = spec("train");
    gpu.work_queue = "gpu".into();
    let g = deploy(&store, "dev", "train", gpu).await;
    let t = now();
    let due: Vec<Run> = vec![
        create(&store, &d, t - Duration::seconds(3), t).await,
        create(&store, &d, t - Duration::seconds(2), t).await,
        create(&store, &d, t, t).await,
    ];
    let future = create(&store, &d, t + Duration::minutes(5), t).await;
    let other_queue = create(&store, &g, t, t).await;
    let agent = Uuid::now_v7();
    let claimed = store
        .claim(agent, &queues(&["default"]), 10, LEASE, t)
        .await
        .expect("claim");
    let ids: Vec<Uuid> = claimed.iter().map(|r| r.id).collect();
    assert_eq!(
        ids,
        due.iter().map(|r| r.id).collect::<Vec<_>>(),
        "oldest due first"
    );
    for r in &claimed {
        assert_eq!(
            (r.state, r.attempt, r.agent_id),
            (StateKind::Pending, 1, Some(agent))
        );
        assert_eq!(r.lease_expires_at, Some(t + LEASE));
        assert!(!r.resume);
        assert_eq!(&store.flow_run(r.id).await.expect("get"), r);
        let h = store.flow_run_history(r.id).await.expect("history");
        assert_eq!(
            h.last().map(|h| (h.state, h.attempt)),
            Some((StateKind::Pending, 1))
        );
    }
    assert!(
        store
            .claim(agent, &queues(&["default"]), 10, LEASE, t)
            .await
            .expect("again")
            .is_empty()
    );
    assert!(
        store
            .claim(agent, &queues(&["default"]), 0, LEASE, t)
            .await
            .expect("zero")
            .is_empty()
    );
    assert!(
        store
            .claim(agent, &[], 10, LEASE, t)
            .await
            .expect("no queues")
            .is_empty()
    );
    // Limit is honoured; other queues and future runs are left alone.
    let later = t + Duration::minutes(10);
    let both = store
        .claim(agent, &queues(&["default", "gpu"]), 1, LEASE, later)
        .await
        .expect("claim");
    assert_eq!(both.len(), 1);
    let rest = store
        .claim(agent, &queues(&["default", "gpu"]), 5, LEASE, later)
        .await
        .expect("claim");
    let mut got: Vec<Uuid> = both.iter().chain(&rest).map(|r| r.id).collect();
    got.sort();
    let mut want = vec![future.id, other_queue.id];
    want.sort();
    assert_eq!(got, want);
}

pub(crate) async fn case_renew_leases(store: Store) {
    let d = deploy(&store, "dev", "etl", spec("etl")).await;
    let t = now();
    let r1 = create(&store, &d, t, t).await;
    let r2 = create(&store, &d, t, t).await;
    let done = create(&store, &d, t, t).await;
    let a = Uuid::now_v7();
    let b = Uuid::now_v7();
    let claimed = store
        .claim(a, &queues(&["default"]), 3, LEASE, t)
        .await
        .expect("claim");
    assert_eq!(claimed.len(), 3);
    store
        .propose_state(done.id, &propose(StateKind::Completed, 1), LEASE, t)
        .await
        .expect("done");
    store.cancel_flow_run(r2.id, t).await.expect("cancel");
    let t1 = t + Duration::seconds(20);
    let unknown = Uuid::now_v7();
    let all = [r1.id, r2.id, done.id, unknown].map(|id| held(id, 1));
    let (cancel, lost) = store
        .renew_leases(Some(a), &all, LEASE, t1)
        .await
        .expect("renew");
    assert_eq!(cancel, vec![r2.id]);
    assert_eq!(lost, vec![done.id, unknown]);
    assert_eq!(
        store.flow_run(r1.id).await.expect("get").lease_expires_at,
        Some(t1 + LEASE)
    );
    assert_eq!(
        store.flow_run(r2.id).await.expect("get").lease_expires_at,
        Some(t1 + LEASE)
    );
    // A stale attempt does not hold the run: the attempt is the fencing token.
    let (_, lost) = store
        .renew_leases(Some(a), &[held(r1.id, 0)], LEASE, t1)
        .await
        .expect("renew");
    assert_eq!(lost, vec![r1.id]);
    // An agent that restarted under a new id takes over the runs it still supervises by
    // heartbeating them with their current attempt.
    let (_, lost) = store
        .renew_leases(Some(b), &[held(r1.id, 1)], LEASE, t1)
        .await
        .expect("renew");
    assert!(lost.is_empty());
    assert_eq!(store.flow_run(r1.id).await.expect("get").agent_id, Some(b));
    // The run's own process (no agent) may renew.
    let t2 = t1 + Duration::seconds(1);
    let (cancel, lost) = store
        .renew_leases(None, &[held(r1.id, 1)], LEASE, t2)
        .await
        .expect("renew");
    assert!(cancel.is_empty() && lost.is_empty());
    let r = store.flow_run(r1.id).await.expect("get");
    assert_eq!(
        (r.lease_expires_at, r.agent_id),
        (Some(t2 + LEASE), Some(b)),
        "the agent is kept"
    );
    assert_eq!(
        store
            .renew_leases(Some(a), &[], LEASE, t2)
            .await
            .expect("empty"),
        (vec![], vec![])
    );
}

pub(crate) async fn case_expired_leases(store: Store) {
    let d = deploy(&store, "dev", "etl", spec("etl")).await;
    let t = now();
    let pending = create(&store, &d, t, t).await;
    let running = create(&store, &d, t, t).await;
    let waiting = create(&store, &d, t + Duration::hours(1), t).await;
    let a = Uuid::now_v7();
    assert_eq!(
        store
            .claim(a, &queues(&["default"]), 2, LEASE, t)
            .await
            .expect("claim")
            .len(),
        2
    );
    store
        .propose_state(running.id, &propose(StateKind::Running, 1), LEASE, t)
        .await
        .expect("run");
    assert!(
        store
            .expired_leases(t + LEASE - Duration::seconds(1), 100)
            .await
            .expect("expired")
            .is_empty()
    );
    // The Pending run never heartbeated: its claim lease expires like any other.
    let expired: Vec<Uuid> = store
        .expired_leases(t + LEASE + Duration::seconds(1), 100)
        .await
        .expect("expired")
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(expired.len(), 2);
    assert!(expired.contains(&pending.id) && expired.contains(&running.id));
    assert!(!expired.contains(&waiting.id));
    // A heartbeat pushes the expiry out.
    let t1 = t + Duration::seconds(20);
    store
        .renew_leases(Some(a), &[held(running.id, 1)], LEASE, t1)
        .await
        .expect("renew");
    let expired = store
        .expired_leases(t + LEASE + Duration::seconds(1), 100)
        .await
        .expect("expired");
    assert_eq!(
        expired.iter().map(|r| r.id).collect::<Vec<_>>(),
        vec![pending.id]
    );
    assert_eq!(
        store
            .expired_leases(t1 + LEASE + Duration::seconds(1), 1)
            .await
            .expect("limit")
            .len(),
        1
    );
    // Terminal runs hold no lease.
    store
        .propose_state(running.id, &propose(StateKind::Completed, 1), LEASE, t1)
        .await
        .expect("done");
    let expired = store
        .expired_leases(t1 + LEASE * 10, 100)
        .await
        .expect("expired");
    assert_eq!(
        expired.iter().map(|r| r.id).collect::<Vec<_>>(),
        vec![pending.id]
    );
}

pub(crate) async fn case_overdue_runs(store: Store) {
    let d = deploy(&store, "dev", "etl", spec("etl")).await;
    let t = now();
    let old = create(&store, &d, t - Duration::minutes(5), t).await;
    let fresh = create(&store, &d, t, t).await;
    let overdue = store
        .overdue_runs(t - Duration::minutes(1), 10)
        .await
        .expect("overdue");
    assert_eq!(
        overdue.iter().map(|r| r.id).collect::<Vec<_>>(),
        vec![old.id]
    );
    let late = store
        .propose_state(old.id, &propose(StateKind::Late, 0), LEASE, t)
        .await
        .expect("late");
    assert_eq!(late.state, StateKind::Late);
    assert!(
        store
            .overdue_runs(t - Duration::minutes(1), 10)
            .await
            .expect("overdue")
            .is_empty()
    );
    // Late runs are still claimable, oldest first.
    let (c, _) = claim_one(&store, Uuid::now_v7(), t).await;
    assert_eq!((c.id, c.attempt), (old.id, 1));
    assert_eq!(
        store
            .overdue_runs(t + Duration::seconds(1), 10)
            .await
            .expect("overdue")[0]
            .id,
        fresh.id
    );
}

/// How many runs the claim races use.
const RACE_RUNS: usize = 500;
/// How many claimers race.
const CLAIMERS: usize = 8;

async fn seed_race(store: &Store) -> HashSet<Uuid> {
    let d = deploy(store, "dev", "race", spec("race")).await;
    let t = now() - Duration::seconds(1);
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let (store, d) = (store.clone(), d.clone());
        tasks.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            for _ in 0..RACE_RUNS / 4 {
                ids.push(create(&store, &d, t, t).await.id);
            }
            ids
        }));
    }
    let mut all = HashSet::new();
    for t in tasks {
        all.extend(t.await.expect("join"));
    }
    assert_eq!(all.len(), RACE_RUNS);
    all
}

/// Each claimer loops claiming 1..=5 runs at a time until nothing is left.
async fn race(stores: Vec<Store>) -> Vec<(Uuid, Run)> {
    let mut tasks = Vec::new();
    for (i, store) in stores.into_iter().enumerate() {
        tasks.push(tokio::spawn(async move {
            let agent = Uuid::now_v7();
            let mut got = Vec::new();
            let mut round = 0usize;
            loop {
                let limit = 1 + ((i + round) % 5) as u32;
                round += 1;
                let claimed = store
                    .claim(agent, &queues(&["default"]), limit, LEASE, now())
                    .await
                    .unwrap_or_else(|e| panic!("claimer {i}: {e}"));
                assert!(claimed.len() <= limit as usize);
                if claimed.is_empty() {
                    return got;
                }
                got.extend(claimed.into_iter().map(|r| (agent, r)));
            }
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.expect("claimer panicked"));
    }
    all
}

async fn check_race(store: &Store, seeded: &HashSet<Uuid>, claimed: Vec<(Uuid, Run)>) {
    let mut seen = HashSet::new();
    for (agent, run) in &claimed {
        assert!(seen.insert(run.id), "run {} claimed twice", run.id);
        assert_eq!(
            (run.attempt, run.state, run.agent_id),
            (1, StateKind::Pending, Some(*agent))
        );
    }
    assert_eq!(claimed.len(), RACE_RUNS, "every run claimed exactly once");
    assert_eq!(&seen, seeded);
    let stored = all_runs(store, RunFilter::default()).await;
    for r in &stored {
        assert_eq!(
            (r.state, r.attempt),
            (StateKind::Pending, 1),
            "run {}",
            r.id
        );
        let pendings = store
            .flow_run_history(r.id)
            .await
            .expect("history")
            .into_iter()
            .filter(|h| h.state == StateKind::Pending)
            .count();
        assert_eq!(pendings, 1, "one claim in the history of {}", r.id);
    }
    let agents: HashSet<Uuid> = claimed.iter().map(|(a, _)| *a).collect();
    assert!(agents.len() > 1, "the race had more than one winner");
}

pub(crate) async fn case_claim_race_shared(store: Store) {
    let seeded = seed_race(&store).await;
    let claimed = race(vec![store.clone(); CLAIMERS]).await;
    check_race(&store, &seeded, claimed).await;
}

pub(crate) async fn claim_race_separate(db: &TestDb) {
    let store = connect(db).await;
    let seeded = seed_race(&store).await;
    let mut stores = Vec::new();
    for _ in 0..CLAIMERS {
        stores.push(connect(db).await);
    }
    let claimed = race(stores.clone()).await;
    check_race(&store, &seeded, claimed).await;
    for s in stores {
        s.close().await;
    }
}
