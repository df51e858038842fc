//! Shared harness of the server suites: a real `weir_server::Server` on 127.0.0.1:0 over a
//! real database, a typed `weir_client::Client` and a raw `reqwest::Client` for requests the
//! typed client cannot send (malformed bodies, odd paths).

#![allow(dead_code)]

use std::future::Future;
use std::time::{Duration, Instant};
use uuid::Uuid;
use weir_client::Client;
use weir_core::api::{CreateFlowRun, DeploymentSpec, FlowRun, RegisterAgent, ScheduleSpec};
use weir_server::{Options, Server};
use weir_testkit::TestDb;

/// Writes `sqlite_NAME` and `postgres_NAME` tests running `async fn CASE(db: &TestDb)`.
#[macro_export]
macro_rules! both {
    ($($case:ident => $sqlite:ident, $postgres:ident;)*) => {$(
        weir_testkit::both_backends!($case => $sqlite, $postgres);
    )*};
}

/// Options for a test server on `db`: an ephemeral port, a fast tick, a short lease.
pub fn options(db: &TestDb) -> Options {
    Options {
        database_url: db.url.clone(),
        bind: "127.0.0.1:0".into(),
        lease: Duration::from_secs(1),
        late_after: Duration::from_secs(60),
        tick: Duration::from_millis(100),
        ..Options::default()
    }
}

/// A running server and clients of it.
pub struct TestServer {
    /// The server (taken by [`TestServer::stop`]).
    pub server: Server,
    /// Typed client.
    pub client: Client,
    /// Raw HTTP client.
    pub http: reqwest::Client,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
}

impl TestServer {
    /// Starts a server with `options`.
    pub async fn start(options: Options) -> TestServer {
        let server = match Server::start(options).await {
            Ok(s) => s,
            Err(e) => panic!("server did not start: {e}"),
        };
        let base = format!("http://{}", server.addr);
        let client = Client::new(&base, None).expect("client");
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .expect("http client");
        TestServer {
            server,
            client,
            http,
            base,
        }
    }

    /// `base` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Stops the server and waits for its loops to end.
    pub async fn stop(self) {
        self.server.stop().await;
    }
}

/// A deployment spec running `flow` on the default queue.
pub fn spec(flow: &str) -> DeploymentSpec {
    DeploymentSpec {
        flow: flow.into(),
        work_queue: "default".into(),
        ..Default::default()
    }
}

/// A schedule firing every `every`.
pub fn every(every: &str) -> ScheduleSpec {
    ScheduleSpec {
        interval: Some(every.into()),
        ..Default::default()
    }
}

/// Registers `spec` as `dev/NAME`.
pub async fn deploy(c: &Client, name: &str, spec: DeploymentSpec) -> weir_core::api::Deployment {
    c.upsert_deployment("dev", name, &spec, false)
        .await
        .expect("deploy")
        .deployment
        .expect("deployment")
}

/// Creates a run of `dev/DEPLOYMENT`, due now.
pub async fn run_of(c: &Client, deployment: &str) -> FlowRun {
    c.create_flow_run(&CreateFlowRun {
        project: Some("dev".into()),
        deployment: Some(deployment.into()),
        ..Default::default()
    })
    .await
    .expect("create run")
}

/// Registers an agent on the default queue.
pub async fn agent(c: &Client) -> Uuid {
    c.register_agent(&RegisterAgent {
        name: "test-agent".into(),
        queues: vec!["default".into()],
        limit: 10,
    })
    .await
    .expect("register agent")
    .id
}

/// Polls `check` every 50 ms until it returns `Some`, failing after `within`.
pub async fn eventually<T, F, Fut>(what: &str, within: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + within;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {within:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until the run is in `state`.
pub async fn wait_state(
    c: &Client,
    id: Uuid,
    state: weir_core::StateKind,
    within: Duration,
) -> FlowRun {
    eventually(&format!("run {id} to be {state}"), within, || async {
        let r = c.flow_run(id).await.expect("get run").run;
        (r.state == state).then_some(r)
    })
    .await
}

/// Every run of `dev/DEPLOYMENT`, following cursors.
pub async fn runs_of(c: &Client, deployment: &str) -> Vec<FlowRun> {
    let mut out = Vec::new();
    let mut q = weir_client::RunQuery {
        project: Some("dev".into()),
        deployment: Some(deployment.into()),
        limit: Some(1000),
        ..Default::default()
    };
    loop {
        let page = c.list_flow_runs(&q).await.expect("list runs");
        out.extend(page.items);
        match page.next_cursor {
            Some(cursor) => q.cursor = Some(cursor),
            None => return out,
        }
    }
}
