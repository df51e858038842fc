//! Agents, claims by launcher kind, and work queues.

use crate::common::now;
use crate::helpers::*;

use chrono::Duration;
use uuid::Uuid;
use weir_core::StateKind;
use weir_core::api::RegisterAgent;
use weir_store::{Error, Store};

pub(crate) async fn case_agents(store: Store) {
    let t = now();
    let req = RegisterAgent {
        name: "worker-1".into(),
        queues: queues(&["default", "gpu"]),
        limit: 4,
        launchers: vec![weir_core::infrastructure::InfrastructureKind::Process],
    };
    let a = store.register_agent(&req, None, t).await.expect("register");
    assert_eq!((a.name.as_str(), a.limit, a.running), ("worker-1", 4, 0));
    assert_eq!(a.queues, req.queues);
    assert_eq!((a.created_at, a.last_heartbeat_at), (t, t));
    assert_eq!(store.agent(a.id).await.expect("get"), a);
    let b = store
        .register_agent(
            &RegisterAgent {
                name: "worker-2".into(),
                queues: queues(&["default"]),
                limit: 1,
                launchers: vec![weir_core::infrastructure::InfrastructureKind::Process],
            },
            None,
            t,
        )
        .await
        .expect("register");
    let t1 = t + Duration::minutes(5);
    store.touch_agent(a.id, t1).await.expect("touch");
    assert_eq!(store.agent(a.id).await.expect("get").last_heartbeat_at, t1);
    let listed: Vec<Uuid> = store
        .agents(t)
        .await
        .expect("list")
        .into_iter()
        .map(|a| a.id)
        .collect();
    assert_eq!(listed, vec![a.id, b.id], "most recent heartbeat first");
    let recent: Vec<Uuid> = store
        .agents(t + Duration::minutes(1))
        .await
        .expect("list")
        .into_iter()
        .map(|a| a.id)
        .collect();
    assert_eq!(recent, vec![a.id]);
    assert!(matches!(
        store.touch_agent(Uuid::now_v7(), t).await,
        Err(Error::NotFound(_))
    ));
    assert!(matches!(
        store.agent(Uuid::now_v7()).await,
        Err(Error::NotFound(_))
    ));
    // Running counts the runs it holds.
    let d = deploy(&store, "dev", "etl", spec("etl")).await;
    let r = create(&store, &d, t, t).await;
    create(&store, &d, t, t).await;
    assert_eq!(
        store
            .claim(a.id, &a.queues, 5, LEASE, t)
            .await
            .expect("claim")
            .len(),
        2
    );
    assert_eq!(store.agent(a.id).await.expect("get").running, 2);
    store
        .propose_state(r.id, &propose(StateKind::Completed, 1), LEASE, t)
        .await
        .expect("done");
    assert_eq!(store.agent(a.id).await.expect("get").running, 1);
}

/// A run goes only to an agent that can launch its deployment's infrastructure kind; the
/// kind follows the deployment's current spec; ad-hoc runs are processes.
pub(crate) async fn case_claim_by_launcher(store: Store) {
    use weir_core::infrastructure::{DockerInfrastructure, Infrastructure, InfrastructureKind};
    let t = now();
    let register = |name: &str, launchers: Vec<InfrastructureKind>| RegisterAgent {
        name: name.into(),
        queues: queues(&["default"]),
        limit: 10,
        launchers,
    };
    let process = store
        .register_agent(&register("p", vec![InfrastructureKind::Process]), None, t)
        .await
        .expect("register");
    assert_eq!(process.launchers, [InfrastructureKind::Process]);
    let both = vec![InfrastructureKind::Process, InfrastructureKind::Docker];
    let docker = store
        .register_agent(&register("d", both.clone()), None, t)
        .await
        .expect("register");
    assert_eq!(store.agent(docker.id).await.expect("get").launchers, both);
    let mut docker_spec = spec("etl");
    docker_spec.infrastructure = Infrastructure::Docker(DockerInfrastructure::new("flows:dev"));
    let d = deploy(&store, "dev", "etl-docker", docker_spec).await;
    let r = create(&store, &d, t, t).await;
    let q = queues(&["default"]);
    let none = store
        .claim(process.id, &q, 5, LEASE, t)
        .await
        .expect("claim");
    assert!(
        none.is_empty(),
        "a process-only agent must not get a docker run"
    );
    let got = store
        .claim(docker.id, &q, 5, LEASE, t)
        .await
        .expect("claim");
    assert_eq!(got.iter().map(|r| r.id).collect::<Vec<_>>(), [r.id]);
    // The deployment moves back to processes: its next run is any agent's.
    let d = deploy(&store, "dev", "etl-docker", spec("etl")).await;
    let r2 = create(&store, &d, t, t).await;
    let got = store
        .claim(process.id, &q, 5, LEASE, t)
        .await
        .expect("claim");
    assert_eq!(got.iter().map(|r| r.id).collect::<Vec<_>>(), [r2.id]);
}

pub(crate) async fn case_work_queues(store: Store) {
    let t = now();
    let mut etl_spec = spec("etl");
    etl_spec.work_queue = "etl".into();
    let etl = deploy(&store, "dev", "etl", etl_spec).await;
    deploy(&store, "dev", "idle", spec("idle")).await;
    let agent = store
        .register_agent(
            &RegisterAgent {
                name: "w".into(),
                queues: queues(&["gpu"]),
                limit: 1,
                launchers: vec![weir_core::infrastructure::InfrastructureKind::Process],
            },
            None,
            t,
        )
        .await
        .expect("register");
    let old_agent = store
        .register_agent(
            &RegisterAgent {
                name: "gone".into(),
                queues: queues(&["ancient"]),
                limit: 1,
                launchers: vec![weir_core::infrastructure::InfrastructureKind::Process],
            },
            None,
            t - Duration::days(3),
        )
        .await
        .expect("register");
    for _ in 0..3 {
        create(&store, &etl, t - Duration::seconds(1), t).await;
    }
    create(&store, &etl, t + Duration::hours(1), t).await;
    let done = create(&store, &etl, t - Duration::seconds(1), t).await;
    store.cancel_flow_run(done.id, t).await.expect("cancel");
    let claimed = store
        .claim(agent.id, &queues(&["etl"]), 1, LEASE, t)
        .await
        .expect("claim");
    assert_eq!(claimed.len(), 1);
    let qs = store
        .work_queues(t, t - Duration::days(1))
        .await
        .expect("queues");
    let got: Vec<(String, u64, u64)> = qs
        .into_iter()
        .map(|q| (q.name, q.ready, q.running))
        .collect();
    assert_eq!(
        got,
        vec![
            ("default".into(), 0, 0),
            ("etl".into(), 2, 1),
            ("gpu".into(), 0, 0)
        ],
        "{} is not listed: its agent is long gone",
        old_agent.name
    );
}
