//! Schedules in the store, on both backends: backfills are idempotent and share the
//! scheduler's tick key (twice creates nothing, and never a second run for a tick the scheduler
//! made), the watermark moves once per pass even when replicas race, and catch-up removes the
//! unclaimed runs of missed ticks but the kept ones, creates kept ticks that had none, and never
//! touches a run an agent claimed; a backfill longer than one batch creates each tick's run
//! once; a database without a watermark (an upgrade) catches up from its last activity.

#[macro_use]
mod common;

use chrono::{Duration, TimeZone, Utc};
use uuid::Uuid;
use weir_core::api::{DeploymentSpec, ScheduleSpec};
use weir_core::deployment::Deployment;
use weir_core::run::Run;
use weir_core::schedule::{self, Catchup, catchup};
use weir_core::{StateKind, Timestamp};
use weir_store::{RunFilter, Store};

both_backends! {
    case_backfill_is_idempotent => sqlite_backfill_is_idempotent, postgres_backfill_is_idempotent;
    case_watermark => sqlite_watermark, postgres_watermark;
    case_catch_up => sqlite_catch_up, postgres_catch_up;
    case_backfill_in_batches => sqlite_backfill_in_batches, postgres_backfill_in_batches;
    case_catch_up_without_a_watermark => sqlite_catch_up_without_a_watermark, postgres_catch_up_without_a_watermark;
}

fn at(h: u32, m: u32) -> Timestamp {
    Utc.with_ymd_and_hms(2026, 11, 30, h, m, 0)
        .single()
        .expect("valid time")
}

async fn deploy(store: &Store, name: &str, cron: &str, policy: Catchup) -> Deployment {
    let spec = DeploymentSpec {
        flow: name.into(),
        work_queue: "default".into(),
        schedules: vec![ScheduleSpec {
            cron: Some(cron.into()),
            ..Default::default()
        }],
        catchup: policy,
        ..Default::default()
    };
    store
        .upsert_deployment("main", name, &spec, false, at(0, 0))
        .await
        .expect("upsert")
        .deployment
        .expect("deployment")
}

/// A backfill's answer as `(tick, run, created)`.
fn triples(v: Vec<(Timestamp, weir_store::Created)>) -> Vec<(Timestamp, Run, bool)> {
    v.into_iter().map(|(t, c)| (t, c.run, c.created)).collect()
}

async fn runs_of(store: &Store, d: &Deployment) -> Vec<Run> {
    let mut runs = store
        .list_flow_runs(&RunFilter {
            deployment_id: Some(d.id),
            limit: 500,
            ..Default::default()
        })
        .await
        .expect("list")
        .items;
    runs.sort_by_key(|r| r.tick_at);
    runs
}

async fn case_backfill_is_idempotent(store: Store) {
    let d = deploy(&store, "hourly", "0 * * * *", Catchup::Latest).await;
    let schedules = schedule::parse_all(&d.spec.schedules).expect("valid");
    // The scheduler put 02:00 and 03:00 ahead earlier.
    let made = store
        .materialise_runs(&d, &[at(2, 0), at(3, 0)], at(1, 30))
        .await
        .expect("materialise");
    assert_eq!(made, 2);
    let ticks = schedule::ticks(&schedules, at(0, 0), at(4, 0), 100);
    assert_eq!(ticks.len(), 4, "01:00 to 04:00");
    let plan = store.tick_runs(&d, &ticks).await.expect("plan");
    assert_eq!(
        plan.len(),
        2,
        "the scheduler's two ticks have runs: {plan:?}"
    );
    assert!(plan.contains_key(&at(2, 0)) && plan.contains_key(&at(3, 0)));
    let now = at(5, 0);
    let first = triples(store.backfill(&d, &ticks, now).await.expect("backfill"));
    let created: Vec<_> = first
        .iter()
        .filter(|(_, _, new)| *new)
        .map(|(t, _, _)| *t)
        .collect();
    assert_eq!(
        created,
        vec![at(1, 0), at(4, 0)],
        "only the ticks without a run"
    );
    for (t, run, new) in &first {
        assert_eq!(run.tick_at, Some(*t), "each run keeps its tick");
        if *new {
            assert_eq!(run.scheduled_at, now, "a backfilled run is due at once");
            assert_eq!(run.state, StateKind::Scheduled);
        }
    }
    let again = triples(
        store
            .backfill(&d, &ticks, now)
            .await
            .expect("backfill again"),
    );
    assert!(
        again.iter().all(|(_, _, new)| !new),
        "twice creates nothing new"
    );
    let ids: Vec<Uuid> = first.iter().map(|(_, r, _)| r.id).collect();
    assert_eq!(ids, again.iter().map(|(_, r, _)| r.id).collect::<Vec<_>>());
    // The scheduler meeting a backfilled tick adds nothing either.
    let made = store
        .materialise_runs(&d, &[at(4, 0), at(5, 0)], at(3, 59))
        .await
        .expect("materialise");
    assert_eq!(made, 1, "05:00 only");
    let runs = runs_of(&store, &d).await;
    let ticks_seen: Vec<_> = runs.iter().map(|r| r.tick_at).collect();
    assert_eq!(
        ticks_seen,
        (1..=5).map(|h| Some(at(h, 0))).collect::<Vec<_>>(),
        "one run per tick"
    );
}

async fn case_watermark(store: Store) {
    assert_eq!(store.scheduler_watermark().await.expect("read"), None);
    assert!(
        store
            .advance_scheduler_watermark(None, at(1, 0))
            .await
            .expect("first")
    );
    assert!(
        !store
            .advance_scheduler_watermark(None, at(1, 0))
            .await
            .expect("racing first"),
        "a replica that read the same nothing loses"
    );
    let seen = store.scheduler_watermark().await.expect("read");
    assert_eq!(seen, Some(at(1, 0)));
    assert!(
        store
            .advance_scheduler_watermark(seen, at(1, 5))
            .await
            .expect("advance")
    );
    assert!(
        !store
            .advance_scheduler_watermark(seen, at(1, 6))
            .await
            .expect("stale"),
        "a pass that read an older watermark does not close the window again"
    );
    assert_eq!(
        store.scheduler_watermark().await.expect("read"),
        Some(at(1, 5))
    );
    // Never backwards, even from a pass whose clock is behind.
    assert!(
        store
            .advance_scheduler_watermark(Some(at(1, 5)), at(1, 1))
            .await
            .expect("behind")
    );
    assert_eq!(
        store.scheduler_watermark().await.expect("read"),
        Some(at(1, 5))
    );
}

/// What a catch-up did: runs `removed`, runs `created`.
fn outcome(removed: u64, created: u32) -> weir_store::CatchUpOutcome {
    weir_store::CatchUpOutcome { removed, created }
}

async fn case_catch_up(store: Store) {
    let lease = Duration::seconds(30);
    // Runs put ahead for 01:00–05:00 every hour; the server then was away 00:30 to 06:00.
    let ahead: Vec<_> = (1..=5).map(|h| at(h, 0)).collect();
    let mut deployments = Vec::new();
    for (name, policy) in [
        ("none", Catchup::None),
        ("latest", Catchup::Latest),
        ("all", Catchup::All),
    ] {
        let d = deploy(&store, name, "0 * * * *", policy).await;
        store
            .materialise_runs(&d, &ahead, at(0, 30))
            .await
            .expect("materialise");
        deployments.push(d);
    }
    // An agent claimed latest's 01:00 run before the outage: catch-up leaves it alone.
    let claimed = store
        .claim(
            Uuid::now_v7(),
            &["default".to_string()],
            100,
            lease,
            at(1, 0),
        )
        .await
        .expect("claim");
    assert_eq!(claimed.len(), 3, "each deployment's 01:00 run: {claimed:?}");
    let now = at(6, 0);
    let (after, until) =
        catchup::missed_window(Some(at(0, 30)), now, Duration::seconds(30)).expect("missed");
    let mut kept = Vec::new();
    for d in &deployments {
        let schedules = schedule::parse_all(&d.spec.schedules).expect("valid");
        let plan = catchup::plan(d.spec.catchup, &schedules, after, until);
        let done = store
            .catch_up(d, after, until, &plan.run, now)
            .await
            .expect("catch up");
        let runs = runs_of(&store, d).await;
        let ticks: Vec<_> = runs.iter().filter_map(|r| r.tick_at).collect();
        kept.push((d.name.clone(), ticks, done));
        for r in &runs {
            if r.attempt == 0 {
                assert_eq!(
                    r.scheduled_at, now,
                    "{}: a catch-up run is due now: {r:?}",
                    d.name
                );
            }
        }
    }
    let one = at(1, 0);
    assert_eq!(
        kept,
        vec![
            ("none".into(), vec![one], outcome(4, 0)),
            ("latest".into(), vec![one, at(5, 0)], outcome(3, 0)),
            (
                "all".into(),
                vec![one, at(2, 0), at(3, 0), at(4, 0), at(5, 0)],
                outcome(0, 0)
            ),
        ],
        "01:00 was claimed and stays; none removes the rest, latest keeps 05:00, all keeps all"
    );
    // A longer outage than the runs put ahead: all creates the missed ticks that had none.
    let all = &deployments[2];
    let schedules = schedule::parse_all(&all.spec.schedules).expect("valid");
    let later = at(9, 30);
    let plan = catchup::plan(Catchup::All, &schedules, at(6, 0), later);
    assert_eq!(plan.run, vec![at(7, 0), at(8, 0), at(9, 0)]);
    let done = store
        .catch_up(all, at(6, 0), later, &plan.run, later)
        .await
        .expect("catch up");
    assert_eq!(done, outcome(0, 3));
    let runs = runs_of(&store, all).await;
    let last = runs.last().expect("runs");
    assert_eq!((last.tick_at, last.scheduled_at), (Some(at(9, 0)), later));
}

/// A window of several batches, with ticks the scheduler made in the middle of two of them:
/// every other tick gets one run, the scheduler's keep theirs, and twice creates nothing.
async fn case_backfill_in_batches(store: Store) {
    let d = deploy(&store, "minutely", "* * * * *", Catchup::Latest).await;
    let schedules = schedule::parse_all(&d.spec.schedules).expect("valid");
    let ticks = schedule::ticks(&schedules, at(0, 0), at(4, 10), 1000);
    assert_eq!(ticks.len(), 250, "00:01 to 04:10");
    assert!(ticks.len() > 2 * weir_store::BACKFILL_BATCH);
    let made = store
        .materialise_runs(&d, &[ticks[50], ticks[150], ticks[249]], at(0, 0))
        .await
        .expect("materialise");
    assert_eq!(made, 3);
    let now = at(5, 0);
    let first = triples(store.backfill(&d, &ticks, now).await.expect("backfill"));
    assert_eq!(
        first.iter().map(|(t, _, _)| *t).collect::<Vec<_>>(),
        ticks,
        "one answer per tick, in order"
    );
    let old: Vec<_> = first
        .iter()
        .filter(|(_, _, new)| !new)
        .map(|(t, r, _)| (*t, r.scheduled_at))
        .collect();
    assert_eq!(
        old,
        vec![
            (ticks[50], ticks[50]),
            (ticks[150], ticks[150]),
            (ticks[249], ticks[249])
        ],
        "the scheduler's runs stay as they were"
    );
    assert!(first.iter().all(|(t, r, _)| r.tick_at == Some(*t)));
    let again = triples(store.backfill(&d, &ticks, now).await.expect("again"));
    assert!(
        again.iter().all(|(_, _, new)| !new),
        "twice creates nothing"
    );
    assert_eq!(
        again.iter().map(|(_, r, _)| r.id).collect::<Vec<_>>(),
        first.iter().map(|(_, r, _)| r.id).collect::<Vec<_>>()
    );
    let runs = runs_of(&store, &d).await;
    assert_eq!(runs.len(), 250, "one run per tick");
}

/// A database a Weir from before the watermark used: runs put ahead, one claimed, an agent's
/// heartbeat, but no watermark. The first pass takes the last activity as the last pass, so
/// the ticks after it are missed and caught up as after any outage.
async fn case_catch_up_without_a_watermark(store: Store) {
    assert_eq!(
        store.inferred_last_pass(at(6, 0)).await.expect("empty"),
        None,
        "a new database shows no server at work: nothing to catch up"
    );
    let d = deploy(&store, "hourly", "0 * * * *", Catchup::Latest).await;
    let ahead: Vec<_> = (1..=5).map(|h| at(h, 0)).collect();
    store
        .materialise_runs(&d, &ahead, at(0, 30))
        .await
        .expect("materialise");
    assert_eq!(
        store.inferred_last_pass(at(6, 0)).await.expect("read"),
        Some(at(0, 30)),
        "the runs put ahead were created at 00:30"
    );
    an_agent_claims_one_run(&store).await;
    assert_eq!(
        store.inferred_last_pass(at(6, 0)).await.expect("read"),
        Some(at(1, 10)),
        "the agent's last heartbeat is the latest activity"
    );
    assert_eq!(
        store.inferred_last_pass(at(1, 5)).await.expect("read"),
        Some(at(1, 0)),
        "nothing after now counts"
    );
    assert_eq!(store.scheduler_watermark().await.expect("read"), None);

    // The first pass after the upgrade, at 06:00.
    let now = at(6, 0);
    let last = store.inferred_last_pass(now).await.expect("read");
    let (after, until) =
        catchup::missed_window(last, now, Duration::seconds(30)).expect("missed ticks");
    assert_eq!(after, at(1, 10));
    assert!(
        store
            .advance_scheduler_watermark(None, now)
            .await
            .expect("first watermark"),
        "the first pass writes the watermark and closes the window"
    );
    let schedules = schedule::parse_all(&d.spec.schedules).expect("valid");
    let plan = catchup::plan(d.spec.catchup, &schedules, after, until);
    assert_eq!(
        plan.run,
        vec![at(5, 0)],
        "latest: the most recent missed tick"
    );
    let done = store
        .catch_up(&d, after, until, &plan.run, now)
        .await
        .expect("catch up");
    assert_eq!(done, outcome(3, 0), "02:00–04:00 removed, 05:00 kept");
    let runs = runs_of(&store, &d).await;
    assert_eq!(
        runs.iter()
            .map(|r| (r.tick_at.unwrap_or(r.scheduled_at), r.attempt))
            .collect::<Vec<_>>(),
        vec![(at(1, 0), 1), (at(5, 0), 0)],
        "the claimed 01:00 run stays; 05:00 is due now"
    );
    assert_eq!(runs[1].scheduled_at, now);
    assert_eq!(
        store.scheduler_watermark().await.expect("read"),
        Some(now),
        "later passes read the watermark"
    );
}

/// An agent registered at 00:40 claims one run at 01:00 and heartbeats last at 01:10.
async fn an_agent_claims_one_run(store: &Store) {
    let agent = store
        .register_agent(
            &weir_core::api::RegisterAgent {
                name: "a".into(),
                queues: vec!["default".into()],
                limit: 10,
                launchers: vec![weir_core::infrastructure::InfrastructureKind::Process],
            },
            None,
            at(0, 40),
        )
        .await
        .expect("agent");
    let claimed = store
        .claim(
            agent.id,
            &["default".to_string()],
            1,
            Duration::seconds(30),
            at(1, 0),
        )
        .await
        .expect("claim");
    assert_eq!(claimed.len(), 1);
    store
        .touch_agent(agent.id, at(1, 10))
        .await
        .expect("heartbeat");
}
