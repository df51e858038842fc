//! Shared harness of the server suites: a real `weir_server::Server` on 127.0.0.1:0 over a
//! real database, a typed `weir_client::Client` and a raw `reqwest::Client` for requests the
//! typed client cannot send (malformed bodies, odd paths). Both authenticate with the admin
//! key the server created on its empty database ([`TestServer::admin_key`]).

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
    /// Typed client, authenticated with [`TestServer::admin_key`].
    pub client: Client,
    /// Raw HTTP client sending `Authorization: Bearer <admin key>` on every request.
    pub http: reqwest::Client,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// The unscoped admin key: the one the server bootstrapped on an empty database, or the
    /// one given to [`TestServer::start_with_key`].
    pub admin_key: String,
}

/// A raw HTTP client sending `Authorization: Bearer KEY` on every request (none when `key`
/// is `None`).
pub fn http_client(key: Option<&str>) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    if let Some(key) = key {
        let value = reqwest::header::HeaderValue::from_str(&format!("Bearer {key}"))
            .expect("a key is a valid header value");
        headers.insert(reqwest::header::AUTHORIZATION, value);
    }
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .default_headers(headers)
        .build()
        .expect("http client")
}

impl TestServer {
    /// Starts a server with `options` on a database without keys, and uses the admin key it
    /// bootstraps.
    pub async fn start(options: Options) -> TestServer {
        Self::start_inner(options, None).await
    }

    /// Starts a server with `options` on a database that already has keys (a restart, a
    /// second replica), authenticating with `admin_key`.
    pub async fn start_with_key(options: Options, admin_key: &str) -> TestServer {
        Self::start_inner(options, Some(admin_key.to_string())).await
    }

    async fn start_inner(options: Options, admin_key: Option<String>) -> TestServer {
        let server = match Server::start(options).await {
            Ok(s) => s,
            Err(e) => panic!("server did not start: {e}"),
        };
        let admin_key = match (admin_key, server.bootstrap_key.clone()) {
            (Some(k), _) => k,
            (None, Some(k)) => k,
            (None, None) => panic!(
                "the database already had keys, so the server bootstrapped none: use TestServer::start_with_key"
            ),
        };
        let base = format!("http://{}", server.addr);
        let client = Client::new(&base, Some(admin_key.clone())).expect("client");
        let http = http_client(Some(&admin_key));
        TestServer {
            server,
            client,
            http,
            base,
            admin_key,
        }
    }

    /// A typed client of this server authenticating with `key`.
    pub fn client_with(&self, key: &str) -> Client {
        Client::new(&self.base, Some(key.to_string())).expect("client")
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
        launchers: vec![weir_core::infrastructure::InfrastructureKind::Process],
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
            Some(cursor) => q.cursor = Some(cursor.parse().expect("a run cursor is a uuid")),
            None => return out,
        }
    }
}

/// What the OpenAPI document says an operation needs: its `x-weir-permission` (`read`,
/// `run`, …) and how it is checked (`role` or `run`); `None` for a public operation.
pub type Needs = Option<(String, String)>;

/// Every operation of the server's `/api/openapi.json`, `(method, path)` → what it needs. The
/// router and the document come from one registration, so this is the route table the
/// suites walk (the OpenAPI checks, the security matrix).
pub async fn documented_routes(
    s: &TestServer,
) -> std::collections::BTreeMap<(String, String), Needs> {
    let doc: serde_json::Value = s
        .http
        .get(s.url("/api/openapi.json"))
        .send()
        .await
        .expect("openapi")
        .json()
        .await
        .expect("openapi is JSON");
    let mut out = std::collections::BTreeMap::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("path item") {
            let needs = op.get("x-weir-permission").map(|p| {
                (
                    p["permission"].as_str().expect("permission").to_string(),
                    p["checked"].as_str().expect("checked").to_string(),
                )
            });
            out.insert((method.clone(), path.clone()), needs);
        }
    }
    out
}
