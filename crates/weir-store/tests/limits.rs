//! Concurrency limits in the store, on both backends: a deployment's `concurrency` and tag
//! limits are enforced at claim time, a slot is held only while its run's lease is live (an
//! expired lease frees it, with no other step), `on_limit = "skip"` ends a blocked first
//! attempt Cancelled, concurrent claims on PostgreSQL never exceed a limit, and the facts of
//! "why isn't it running" name the runs holding a full limit.

#[macro_use]
mod common;

use common::now;

use chrono::Duration;
use uuid::Uuid;
use weir_core::api::DeploymentSpec;
use weir_core::deployment::Deployment;
use weir_core::limits::{LimitKey, OnLimit};
use weir_core::run::Run;
use weir_core::why::{Reason, explain};
use weir_core::{StateKind, Timestamp};
use weir_store::{NewFlowRun, Store};

both_backends! {
    case_deployment_limit => sqlite_deployment_limit, postgres_deployment_limit;
    case_tag_limit => sqlite_tag_limit, postgres_tag_limit;
    case_skip => sqlite_skip, postgres_skip;
    case_concurrent_claims => sqlite_concurrent_claims, postgres_concurrent_claims;
}

const LEASE: Duration = Duration::seconds(30);

async fn deploy(
    store: &Store,
    name: &str,
    concurrency: Option<u32>,
    on_limit: OnLimit,
    tags: &[&str],
) -> Deployment {
    let spec = DeploymentSpec {
        flow: name.into(),
        work_queue: "default".into(),
        concurrency,
        on_limit,
        tags: tags.iter().map(|t| t.to_string()).collect(),
        ..Default::default()
    };
    store
        .upsert_deployment("main", name, &spec, false, now())
        .await
        .expect("upsert")
        .deployment
        .expect("deployment")
}

async fn runs(store: &Store, d: &Deployment, n: usize, at: Timestamp) -> Vec<Run> {
    let mut out = Vec::new();
    for i in 0..n {
        let run = NewFlowRun {
            project: d.project.clone(),
            deployment: Some((d.id, d.name.clone())),
            flow: d.spec.flow.clone(),
            parameters: Default::default(),
            work_queue: d.spec.work_queue.clone(),
            scheduled_at: at - Duration::seconds(100 - i as i64),
            tick_at: None,
            state: StateKind::Scheduled,
            retries: 0,
            retry_delay_s: 0,
            idempotency_key: None,
            parent_flow_run_id: None,
            tags: d.spec.tags.clone(),
            auto_scheduled: false,
        };
        out.push(
            store
                .create_flow_run(run, LEASE, at)
                .await
                .expect("create")
                .run,
        );
    }
    out
}

async fn claim(store: &Store, agent: Uuid, limit: u32, at: Timestamp) -> Vec<Run> {
    store
        .claim(agent, &["default".to_string()], limit, LEASE, at)
        .await
        .expect("claim")
}

async fn case_deployment_limit(store: Store) {
    let d = deploy(&store, "etl", Some(2), OnLimit::Wait, &[]).await;
    let free = deploy(&store, "free", None, OnLimit::Wait, &[]).await;
    let t = now();
    let limited = runs(&store, &d, 4, t).await;
    let unlimited = runs(&store, &free, 2, t).await;
    let agent = Uuid::now_v7();
    let got = claim(&store, agent, 10, t).await;
    let ids: Vec<Uuid> = got.iter().map(|r| r.id).collect();
    assert_eq!(
        got.len(),
        4,
        "two of the limited deployment, both unlimited: {got:?}"
    );
    assert!(
        ids.contains(&limited[0].id) && ids.contains(&limited[1].id),
        "oldest first"
    );
    assert!(unlimited.iter().all(|r| ids.contains(&r.id)));
    assert!(
        claim(&store, agent, 10, t).await.is_empty(),
        "the limit is full"
    );

    // Why: the third run waits for a slot held by the first two.
    let facts = store
        .why_facts(limited[2].id, t, t - Duration::hours(1))
        .await
        .expect("facts");
    let e = explain(&facts, t, LEASE);
    let full = e.reasons.iter().find_map(|r| match r {
        Reason::LimitFull { limit, holders, .. } => Some((limit.clone(), holders.clone())),
        _ => None,
    });
    let (key, mut holders) = full.expect("a full limit is a reason");
    holders.sort();
    assert_eq!(key, LimitKey::Deployment("main/etl".into()));
    assert_eq!(holders, vec![limited[0].id, limited[1].id]);

    // A finished run frees its slot.
    let done = store
        .propose_state(limited[0].id, &propose(StateKind::Completed, 1), LEASE, t)
        .await
        .expect("complete");
    assert_eq!(done.state, StateKind::Completed);
    let next = claim(&store, agent, 10, t).await;
    assert_eq!(
        next.iter().map(|r| r.id).collect::<Vec<_>>(),
        vec![limited[2].id]
    );

    // A crashed run (its agent and process died: no heartbeat) frees its slot when its lease
    // expires, before anyone marks it Crashed: no leak.
    assert!(
        claim(&store, agent, 10, t + LEASE).await.is_empty(),
        "leases still live at expiry"
    );
    let later = t + LEASE + Duration::seconds(1);
    let after = claim(&store, agent, 10, later).await;
    assert_eq!(
        after.iter().map(|r| r.id).collect::<Vec<_>>(),
        vec![limited[3].id]
    );

    // Removing the limit (a new version without it) lifts it.
    let d2 = deploy(&store, "etl", None, OnLimit::Wait, &[]).await;
    assert_eq!(d2.spec.concurrency, None);
}

fn propose(state: StateKind, attempt: u32) -> weir_core::api::ProposeState {
    weir_core::api::ProposeState {
        state,
        message: None,
        attempt,
        transition_id: None,
        result: None,
    }
}

async fn case_tag_limit(store: Store) {
    let a = deploy(&store, "load-a", None, OnLimit::Wait, &["db"]).await;
    let b = deploy(&store, "load-b", None, OnLimit::Wait, &["db", "other"]).await;
    let t = now();
    let l = store.set_tag_limit("db", 1, t).await.expect("set");
    assert_eq!((l.tag.as_str(), l.slots, l.holders.len()), ("db", 1, 0));
    let ra = runs(&store, &a, 2, t).await;
    let rb = runs(&store, &b, 1, t).await;
    let agent = Uuid::now_v7();
    let got = claim(&store, agent, 10, t).await;
    assert_eq!(
        got.iter().map(|r| r.id).collect::<Vec<_>>(),
        vec![ra[0].id],
        "one db run across deployments"
    );
    let listed = store.tag_limits(t).await.expect("list");
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].holders, vec![ra[0].id]);
    let facts = store
        .why_facts(rb[0].id, t, t - Duration::hours(1))
        .await
        .expect("facts");
    assert!(
        explain(&facts, t, LEASE).reasons.iter().any(|r| matches!(r,
            Reason::LimitFull { limit: LimitKey::Tag(tag), holders, .. } if tag == "db" && holders == &vec![ra[0].id])),
        "{facts:?}"
    );
    let raised = store.set_tag_limit("db", 3, t).await.expect("raise");
    assert_eq!(raised.slots, 3);
    assert_eq!(
        claim(&store, agent, 10, t).await.len(),
        2,
        "raising the limit frees slots"
    );
    assert!(store.remove_tag_limit("db").await.expect("rm"));
    assert!(!store.remove_tag_limit("db").await.expect("rm again"));
    assert!(store.tag_limits(t).await.expect("list").is_empty());
}

async fn case_skip(store: Store) {
    let d = deploy(&store, "report", Some(1), OnLimit::Skip, &[]).await;
    let t = now();
    let rs = runs(&store, &d, 3, t).await;
    let agent = Uuid::now_v7();
    let got = claim(&store, agent, 10, t).await;
    assert_eq!(got.iter().map(|r| r.id).collect::<Vec<_>>(), vec![rs[0].id]);
    // The next claim finds the limit full: the waiting first attempts end Cancelled.
    assert!(claim(&store, agent, 10, t).await.is_empty());
    for r in &rs[1..] {
        let r = store.flow_run(r.id).await.expect("run");
        assert_eq!(r.state, weir_core::limits::SKIPPED, "{r:?}");
        let msg = r.state_message.unwrap_or_default();
        assert!(
            msg.contains("skipped") && msg.contains("main/report"),
            "{msg}"
        );
        assert!(r.ended_at.is_some());
    }
}

/// Eight agents claim at once, again and again: the limit of 3 is never exceeded.
async fn case_concurrent_claims(store: Store) {
    let d = deploy(&store, "busy", Some(3), OnLimit::Wait, &["shared"]).await;
    let other = deploy(&store, "busy-too", None, OnLimit::Wait, &["shared"]).await;
    let t = now();
    store.set_tag_limit("shared", 4, t).await.expect("set");
    runs(&store, &d, 12, t).await;
    runs(&store, &other, 12, t).await;
    for round in 0..3 {
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let s = store.clone();
            tasks.push(tokio::spawn(async move {
                claim(&s, Uuid::now_v7(), 2, t).await
            }));
        }
        let mut got = Vec::new();
        for task in tasks {
            got.extend(task.await.expect("join"));
        }
        let of_d = got.iter().filter(|r| r.deployment_id == Some(d.id)).count();
        assert!(
            got.len() <= 4,
            "round {round}: tag limit exceeded: {}",
            got.len()
        );
        assert!(
            of_d <= 3,
            "round {round}: deployment limit exceeded: {of_d}"
        );
        if round == 0 {
            assert_eq!(got.len(), 4, "the tag limit's slots are all taken");
        }
        // Free everything for the next round.
        for r in got {
            store
                .propose_state(r.id, &propose(StateKind::Completed, r.attempt), LEASE, t)
                .await
                .expect("complete");
        }
    }
}
