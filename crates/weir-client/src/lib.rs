//! A typed client of Weir's HTTP API (`/api/v1`).
//!
//! One method per endpoint, taking and returning `weir_core::api` types. Errors keep the
//! server's [`ErrorBody`] so callers can show its message and act on its kind.

use reqwest::{Method, RequestBuilder, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::time::Duration;
use uuid::Uuid;
use weir_core::api::*;

mod notifications;
pub mod transport;

/// What can go wrong calling the API.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The server answered with an error.
    #[error("{} ({status})", body.message)]
    Api {
        /// The answer's HTTP status (4xx or 5xx).
        status: StatusCode,
        /// The server's error body.
        body: Box<ErrorBody>,
    },
    /// The server could not be reached, the connection broke, or TLS failed. The message
    /// says which, and what to do ([`transport::explain`]).
    #[error("{}", transport::explain(url, source))]
    Transport {
        /// The server's base URL the client was made with.
        url: String,
        /// reqwest's error: connect, TLS, timeout or a broken connection.
        source: reqwest::Error,
    },
    /// The answer was not what the API promises.
    #[error("unexpected answer from the server: {0}")]
    Decode(String),
}

impl Error {
    /// The HTTP status, for API errors.
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            Error::Api { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// Whether retrying the same request later may succeed: the connection failed (but not
    /// TLS verification, which fails the same way every time), or the server answered that it
    /// is unavailable (503, or 502/504/429 from a proxy). A 409 or a 4xx is final.
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Transport { source, .. } => !transport::is_tls_failure(source),
            Error::Api { status, body } => {
                body.error.is_transient()
                    || matches!(
                        *status,
                        StatusCode::SERVICE_UNAVAILABLE
                            | StatusCode::BAD_GATEWAY
                            | StatusCode::GATEWAY_TIMEOUT
                            | StatusCode::TOO_MANY_REQUESTS
                    )
            }
            Error::Decode(_) => false,
        }
    }
}

/// The result of every API call: the answer's type, or why there is none.
pub type Result<T> = std::result::Result<T, Error>;

/// Weir's data directory: `$WEIR_HOME` when set and not empty, else `./.weir` (relative to
/// the working directory). Every Weir program finds the local server's key and URL there.
pub fn weir_home() -> std::path::PathBuf {
    use weir_core::contract::launch::{DEFAULT_HOME, var};
    std::env::var_os(var::HOME)
        .filter(|v| !v.is_empty())
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::PathBuf::from(DEFAULT_HOME))
}

/// The API key to use when none is given explicitly: `WEIR_API_KEY`, else the local admin
/// key a local server stored in the data directory (`$WEIR_HOME/admin.key`, `$WEIR_HOME`
/// defaulting to `./.weir`).
pub fn key_from_env() -> Option<String> {
    if let Ok(k) = std::env::var(weir_core::contract::launch::var::API_KEY)
        && !k.trim().is_empty()
    {
        return Some(k.trim().to_string());
    }
    std::fs::read_to_string(weir_home().join("admin.key"))
        .ok()
        .map(|k| k.trim().to_string())
        .filter(|k| !k.is_empty())
}

/// A new log stream number (`NewLogLine::stream`): random, so the senders of one attempt's
/// lines (the flow process itself; an agent following its output, and another one after a
/// take-over) never share one, and each numbers its own lines from 0.
pub fn new_log_stream() -> u32 {
    use std::hash::{BuildHasher, Hasher};
    static SENDERS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    // `RandomState` is seeded from the operating system's randomness.
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    h.write_u64(SENDERS.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    h.write_u128(nanos);
    (h.finish() >> 32) as u32
}

/// A client of one Weir server; cheap to clone.
#[derive(Clone, Debug)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
}

/// Filters of [`Client::list_flow_runs`]: the server's own query type.
pub use weir_core::api::FlowRunsQuery as RunQuery;

impl Client {
    /// A client of the server at `base` (e.g. `http://127.0.0.1:4200`), authenticating with
    /// `token` when given. For `https://` servers, certificates are verified against the
    /// system's roots plus the PEM file named by `WEIR_CA_FILE`, if set; a plain `http://`
    /// client reads no roots (see [`Client::with_ca`]).
    pub fn new(base: &str, token: Option<String>) -> Result<Client> {
        let ca = std::env::var_os("WEIR_CA_FILE").filter(|v| !v.is_empty());
        Client::with_ca(base, token, ca.as_deref().map(std::path::Path::new))
    }

    /// [`Client::new`], trusting the certificates in the PEM file `ca` as well.
    ///
    /// A client of an `http://` server without `ca` never verifies a certificate (every
    /// request goes to `base`), so it does not read the system's roots: parsing the ~150
    /// certificates of `/etc/ssl/certs` cost every process that makes one several ms of CPU at
    /// start, a flow process launched by an agent included, before its first line of user
    /// code.
    pub fn with_ca(
        base: &str,
        token: Option<String>,
        ca: Option<&std::path::Path>,
    ) -> Result<Client> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut builder = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(60))
            .pool_idle_timeout(Duration::from_secs(30));
        let plain = base.starts_with("http://") && ca.is_none();
        if plain {
            builder = builder.tls_certs_only([]);
        }
        if let Some(path) = ca {
            let pem = std::fs::read(path).map_err(|e| {
                Error::Decode(format!("cannot read CA file {}: {e}", path.display()))
            })?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
                Error::Decode(format!("invalid PEM in CA file {}: {e}", path.display()))
            })?;
            for cert in certs {
                builder = builder.add_root_certificate(cert);
            }
        }
        let http = builder.build().map_err(|source| Error::Transport {
            url: base.to_string(),
            source,
        })?;
        Ok(Client {
            http,
            base: base.trim_end_matches('/').to_string(),
            token,
        })
    }

    /// The same server, connection pool and TLS trust, authenticating with `token` instead
    /// (an agent sends a launch's last output lines with the attempt's run token once the
    /// server no longer shows the run to the agent's own key).
    pub fn with_token(&self, token: String) -> Client {
        Client {
            http: self.http.clone(),
            base: self.base.clone(),
            token: Some(token),
        }
    }

    /// The server's base URL.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    fn req(&self, method: Method, path: &str) -> RequestBuilder {
        let rb = self.http.request(method, format!("{}{path}", self.base));
        match &self.token {
            Some(t) => rb.bearer_auth(t),
            None => rb,
        }
    }

    async fn send<T: DeserializeOwned>(&self, rb: RequestBuilder) -> Result<T> {
        let resp = rb.send().await.map_err(|source| Error::Transport {
            url: self.base.clone(),
            source,
        })?;
        let status = resp.status();
        let bytes = resp.bytes().await.map_err(|source| Error::Transport {
            url: self.base.clone(),
            source,
        })?;
        if status.is_success() {
            serde_json::from_slice(&bytes).map_err(|e| Error::Decode(e.to_string()))
        } else {
            let body = serde_json::from_slice::<ErrorBody>(&bytes).unwrap_or_else(|_| ErrorBody {
                error: ErrorKind::Other,
                message: format!(
                    "HTTP {status}: {}",
                    String::from_utf8_lossy(&bytes)
                        .chars()
                        .take(200)
                        .collect::<String>()
                ),
                field: None,
                current: None,
            });
            Err(Error::Api {
                status,
                body: Box::new(body),
            })
        }
    }

    async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T> {
        self.send(self.req(Method::GET, path)).await
    }

    async fn post<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T> {
        self.send(self.req(Method::POST, path).json(body)).await
    }

    /// `GET /api/v1/concurrency_limits`.
    pub async fn tag_limits(&self) -> Result<Vec<weir_core::api::ConcurrencyLimit>> {
        self.get("/api/v1/concurrency_limits").await
    }

    /// `PUT /api/v1/concurrency_limits/{tag}`.
    pub async fn set_tag_limit(
        &self,
        tag: &str,
        slots: u32,
    ) -> Result<weir_core::api::ConcurrencyLimit> {
        let body = weir_core::api::SetConcurrencyLimit { slots };
        self.send(
            self.req(Method::PUT, &format!("/api/v1/concurrency_limits/{tag}"))
                .json(&body),
        )
        .await
    }

    /// `DELETE /api/v1/concurrency_limits/{tag}`.
    pub async fn remove_tag_limit(&self, tag: &str) -> Result<weir_core::api::ConcurrencyLimit> {
        self.send(self.req(Method::DELETE, &format!("/api/v1/concurrency_limits/{tag}")))
            .await
    }

    /// `GET /api/v1/flow_runs/{id}/why`.
    pub async fn why(&self, id: Uuid) -> Result<weir_core::api::Explanation> {
        self.get(&format!("/api/v1/flow_runs/{id}/why")).await
    }

    /// `GET /readyz`: whether the server is up and its database answers.
    pub async fn ready(&self) -> Result<Health> {
        self.get("/readyz").await
    }

    /// `GET /api/v1/projects`.
    pub async fn projects(&self) -> Result<Vec<Project>> {
        self.get("/api/v1/projects").await
    }

    /// `GET /api/v1/projects/{project}`.
    pub async fn project(&self, project: &str) -> Result<Project> {
        self.get(&format!("/api/v1/projects/{project}")).await
    }

    /// `PUT /api/v1/projects/{project}/retention`: days finished runs are kept (`Some(0)`:
    /// forever; `None`: the server's default).
    pub async fn set_retention(&self, project: &str, days: Option<u32>) -> Result<Project> {
        let body = SetRetention { retain_days: days };
        self.send(
            self.req(
                Method::PUT,
                &format!("/api/v1/projects/{project}/retention"),
            )
            .json(&body),
        )
        .await
    }

    /// `PUT /api/v1/projects/{project}/deployments/{name}`.
    pub async fn upsert_deployment(
        &self,
        project: &str,
        name: &str,
        spec: &DeploymentSpec,
        dry_run: bool,
    ) -> Result<UpsertResult> {
        let body = UpsertDeployment {
            spec: spec.clone(),
            dry_run,
        };
        self.send(
            self.req(
                Method::PUT,
                &format!("/api/v1/projects/{project}/deployments/{name}"),
            )
            .json(&body),
        )
        .await
    }

    /// `GET /api/v1/projects/{project}/deployments/{name}`.
    pub async fn deployment(&self, project: &str, name: &str) -> Result<Deployment> {
        self.get(&format!("/api/v1/projects/{project}/deployments/{name}"))
            .await
    }

    /// `GET /api/v1/deployments`.
    pub async fn deployments(&self, project: Option<&str>) -> Result<Vec<Deployment>> {
        let rb = self.req(Method::GET, "/api/v1/deployments");
        let rb = match project {
            Some(p) => rb.query(&[("project", p)]),
            None => rb,
        };
        self.send(rb).await
    }

    /// Pauses (`true`) or resumes a deployment's schedules.
    pub async fn set_paused(&self, project: &str, name: &str, paused: bool) -> Result<Deployment> {
        let verb = if paused { "pause" } else { "resume" };
        self.post(
            &format!("/api/v1/projects/{project}/deployments/{name}/{verb}"),
            &(),
        )
        .await
    }

    /// `POST /api/v1/projects/{project}/deployments/{name}/backfill`: the runs of every tick
    /// of the deployment's schedules in a window (idempotent), or with `dry_run` what would be
    /// created.
    pub async fn backfill(
        &self,
        project: &str,
        name: &str,
        req: &weir_core::api::Backfill,
    ) -> Result<weir_core::api::BackfillResult> {
        self.post(
            &format!("/api/v1/projects/{project}/deployments/{name}/backfill"),
            req,
        )
        .await
    }

    /// Archives a deployment (removed from its file): no schedules, no new runs, history
    /// kept. Idempotent; deploying it again restores it.
    pub async fn archive_deployment(&self, project: &str, name: &str) -> Result<Deployment> {
        self.post(
            &format!("/api/v1/projects/{project}/deployments/{name}/archive"),
            &(),
        )
        .await
    }

    /// `POST /api/v1/flow_runs`.
    pub async fn create_flow_run(&self, req: &CreateFlowRun) -> Result<FlowRun> {
        self.post("/api/v1/flow_runs", req).await
    }

    /// `GET /api/v1/flow_runs/{id}`.
    pub async fn flow_run(&self, id: Uuid) -> Result<FlowRunDetail> {
        self.get(&format!("/api/v1/flow_runs/{id}")).await
    }

    /// `GET /api/v1/flow_runs`.
    pub async fn list_flow_runs(&self, q: &RunQuery) -> Result<Page<FlowRun>> {
        self.send(self.req(Method::GET, "/api/v1/flow_runs").query(q))
            .await
    }

    /// `POST /api/v1/flow_runs/{id}/state`.
    pub async fn propose_state(&self, id: Uuid, p: &ProposeState) -> Result<FlowRun> {
        self.post(&format!("/api/v1/flow_runs/{id}/state"), p).await
    }

    /// `POST /api/v1/flow_runs/{id}/cancel`.
    pub async fn cancel(&self, id: Uuid) -> Result<FlowRun> {
        self.post(&format!("/api/v1/flow_runs/{id}/cancel"), &())
            .await
    }

    /// `POST /api/v1/flow_runs/{id}/retry`.
    pub async fn retry(&self, id: Uuid, from_failed: bool) -> Result<FlowRun> {
        self.post(
            &format!("/api/v1/flow_runs/{id}/retry"),
            &RetryFlowRun { from_failed },
        )
        .await
    }

    /// `POST /api/v1/flow_runs/{id}/heartbeat`.
    pub async fn run_heartbeat(&self, id: Uuid, attempt: u32) -> Result<RunHeartbeatReply> {
        self.post(
            &format!("/api/v1/flow_runs/{id}/heartbeat"),
            &RunHeartbeat { attempt },
        )
        .await
    }

    /// `GET /api/v1/flow_runs/{id}/task_runs`.
    pub async fn task_runs(
        &self,
        id: Uuid,
        cursor: Option<Uuid>,
        limit: u32,
    ) -> Result<Page<TaskRun>> {
        let q = PageQuery {
            cursor,
            limit: Some(limit),
        };
        let path = format!("/api/v1/flow_runs/{id}/task_runs");
        self.send(self.req(Method::GET, &path).query(&q)).await
    }

    /// `GET /api/v1/flow_runs/{id}/logs` after sequence number `after`.
    pub async fn logs(&self, id: Uuid, after: i64, limit: u32) -> Result<Page<LogLine>> {
        let q = LogsQuery {
            after: Some(after),
            limit: Some(limit),
            task_run: None,
        };
        let path = format!("/api/v1/flow_runs/{id}/logs");
        self.send(self.req(Method::GET, &path).query(&q)).await
    }

    /// `POST /api/v1/task_runs/batch`.
    pub async fn ingest_task_runs(&self, batch: &TaskRunBatch) -> Result<BatchAccepted> {
        self.post("/api/v1/task_runs/batch", batch).await
    }

    /// `POST /api/v1/logs/batch`.
    pub async fn ingest_logs(&self, batch: &LogBatch) -> Result<BatchAccepted> {
        self.post("/api/v1/logs/batch", batch).await
    }

    /// `POST /api/v1/agents`.
    pub async fn register_agent(&self, req: &RegisterAgent) -> Result<Agent> {
        self.post("/api/v1/agents", req).await
    }

    /// `GET /api/v1/agents`.
    pub async fn agents(&self) -> Result<Vec<Agent>> {
        self.get("/api/v1/agents").await
    }

    /// `GET /api/v1/work_queues`.
    pub async fn work_queues(&self) -> Result<Vec<WorkQueue>> {
        self.get("/api/v1/work_queues").await
    }

    /// `POST /api/v1/agents/{id}/heartbeat`.
    pub async fn agent_heartbeat(&self, id: Uuid, hb: &Heartbeat) -> Result<HeartbeatReply> {
        self.post(&format!("/api/v1/agents/{id}/heartbeat"), hb)
            .await
    }

    /// `POST /api/v1/keys`: the answer holds the secret, shown once.
    pub async fn create_key(&self, req: &CreateApiKey) -> Result<CreatedApiKey> {
        self.post("/api/v1/keys", req).await
    }

    /// `GET /api/v1/keys`.
    pub async fn keys(&self) -> Result<Vec<ApiKey>> {
        self.get("/api/v1/keys").await
    }

    /// `POST /api/v1/keys/{id}/revoke`.
    pub async fn revoke_key(&self, id: &str) -> Result<ApiKey> {
        self.post(&format!("/api/v1/keys/{id}/revoke"), &()).await
    }

    /// `GET /api/v1/audit`.
    pub async fn audit(&self, cursor: Option<Uuid>, limit: u32) -> Result<Page<AuditEntry>> {
        let q = PageQuery {
            cursor,
            limit: Some(limit),
        };
        self.send(self.req(Method::GET, "/api/v1/audit").query(&q))
            .await
    }

    /// `POST /api/v1/agents/{id}/claim`, long-polling up to `wait`.
    pub async fn claim(&self, id: Uuid, limit: u32, wait: Duration) -> Result<Vec<ClaimedRun>> {
        let body = ClaimRequest {
            limit,
            wait_ms: u64::try_from(wait.as_millis()).unwrap_or(30_000),
        };
        self.send(
            self.req(Method::POST, &format!("/api/v1/agents/{id}/claim"))
                .timeout(wait + Duration::from_secs(30))
                .json(&body),
        )
        .await
    }
}
