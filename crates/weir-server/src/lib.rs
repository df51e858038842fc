//! Weir's server: the single source of truth for what should run, when, and what happened.
//!
//! [`app`] builds the whole HTTP surface (`/api/v1`, `/api/openapi.json`, `/metrics`,
//! `/healthz`, `/readyz`) as one axum `Router`; [`Server::start`] binds it and starts the
//! background loops (scheduler, crash detector). Only this crate and weir-store touch the
//! database; agents, flow processes and the CLI speak HTTP.

mod access;
pub mod auth;
mod background;
mod error;
mod extract;
mod limits;
mod metrics;
pub mod notify;
mod openapi;
mod ops;
mod retention;
mod routes;
mod state;
mod tls;
mod ui;

pub use error::ApiError;
pub use state::{AppState, Options};
pub use tls::{TlsFiles, install_crypto_provider};

use std::net::SocketAddr;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// The router for `state`: every endpoint, with its error handling, limits and metrics.
pub fn app(state: AppState) -> axum::Router {
    let routes = routes::router(state.options.max_body_bytes, ui::routes());
    serve(routes, state)
}

/// The routes of [`routes::router`] given their state, behind the body limit.
fn serve(routes: axum::Router<AppState>, state: AppState) -> axum::Router {
    routes
        .with_state(state.clone())
        .layer(axum::middleware::from_fn_with_state(state, limits::body))
}

/// A running server: its address, and a way to stop it.
pub struct Server {
    /// Address it listens on.
    pub addr: SocketAddr,
    /// Shared state (the store, options, notifications).
    pub state: AppState,
    /// The admin key created because the database had none (show or store it once).
    pub bootstrap_key: Option<String>,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    /// Wakes this replica's long-polls when another one has work (PostgreSQL only).
    work_listener: Option<JoinHandle<()>>,
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The database could not be opened or migrated.
    #[error("cannot open the database: {0}")]
    Store(#[from] weir_store::Error),
    /// The TLS certificate or key is unusable.
    #[error("cannot serve HTTPS: {0}")]
    Tls(String),
    /// The first admin key could not be created.
    #[error("cannot create the first admin key: {0}")]
    Bootstrap(String),
    /// `retain_export` is not a usable storage URL.
    #[error("--retain-export: {0}")]
    RetainExport(String),
    /// The address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The `--bind` address, as given.
        addr: String,
        /// The operating system's error (address in use, permission denied).
        source: std::io::Error,
    },
}

/// Binds `bind` (`host:port`; port 0 picks a free one); returns the listener and the address
/// it really listens on.
async fn bind(bind: &str) -> Result<(TcpListener, SocketAddr), StartError> {
    let error = |source| StartError::Bind {
        addr: bind.to_string(),
        source,
    };
    let listener = TcpListener::bind(bind).await.map_err(error)?;
    let addr = listener.local_addr().map_err(error)?;
    Ok((listener, addr))
}

/// The key run tokens are signed with: the database's, or 32 random bytes (as hex) stored on
/// first start, so every replica and every restart signs alike.
async fn run_token_secret(store: &weir_store::Store) -> Result<String, StartError> {
    let mut fresh = [0u8; 32];
    getrandom::fill(&mut fresh)
        .map_err(|e| StartError::Bootstrap(format!("no randomness: {e}")))?;
    Ok(store
        .setting_or_init("run_token_secret", || {
            fresh.iter().map(|b| format!("{b:02x}")).collect()
        })
        .await?)
}

/// Serves `router` on `listener` (over TLS with `acceptor`) until `stopped` completes, then
/// lets requests in flight finish.
fn spawn_serving(
    listener: TcpListener,
    acceptor: Option<tokio_rustls::TlsAcceptor>,
    router: axum::Router,
    stopped: impl std::future::Future<Output = ()> + Send + 'static,
) -> JoinHandle<()> {
    match acceptor {
        None => tokio::spawn(async move {
            let serve = axum::serve(listener, router).with_graceful_shutdown(stopped);
            if let Err(error) = serve.await {
                tracing::error!(message = "server stopped", %error);
            }
        }),
        Some(acceptor) => {
            let listener = tls::TlsListener {
                tcp: listener,
                acceptor,
            };
            tokio::spawn(async move {
                let serve = axum::serve(listener, router).with_graceful_shutdown(stopped);
                if let Err(error) = serve.await {
                    tracing::error!(message = "server stopped", %error);
                }
            })
        }
    }
}

impl Server {
    /// Opens the database, binds `options.bind`, and starts serving and the background loops.
    pub async fn start(options: Options) -> Result<Server, StartError> {
        if let Some(url) = &options.retain_export {
            weir_results::ResultStore::open(url)
                .map_err(|e| StartError::RetainExport(e.to_string()))?;
        }
        let acceptor = match &options.tls {
            Some(files) => Some(tls::acceptor(files).map_err(StartError::Tls)?),
            None => None,
        };
        // The routes (and the OpenAPI document) are built on another thread meanwhile.
        let limit = options.max_body_bytes;
        let routes = tokio::task::spawn_blocking(move || routes::router(limit, ui::routes()));
        let store = weir_store::Store::connect(&options.database_url).await?;
        let (listener, addr) = bind(&options.bind).await?;
        let secret = run_token_secret(&store).await?;
        let bootstrap_key = auth::bootstrap_admin_key(&store, options.admin_key.as_deref())
            .await
            .map_err(|e| match e {
                ApiError::BadRequest { message, .. } => StartError::Bootstrap(message),
                other => StartError::Bootstrap(format!("{other:?}")),
            })?;
        let state = AppState::new(store, options, secret.into_bytes());
        // Leases are dated by the database's clock from the first request on.
        state.sync_clock().await?;
        // Catch-up first: ticks missed while no server ran are decided before any agent can
        // claim one of their runs or the crash detector marks it Late.
        if let Err(error) = background::schedule(state.clone()).await {
            tracing::warn!(message = "first scheduler pass failed; the loop retries", %error);
        }
        let (shutdown, mut stop) = watch::channel(false);
        let mut tasks = background::spawn(state.clone(), shutdown.subscribe());
        let work = state.work.clone();
        let work_listener = state.store.listen_work(move || work.notify_waiters());
        let routes = match routes.await {
            Ok(routes) => routes,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            // The runtime is shutting down and dropped the task: build them here.
            Err(_) => routes::router(limit, ui::routes()),
        };
        let router = serve(routes, state.clone());
        let stopped = async move {
            let _ = stop.wait_for(|s| *s).await;
        };
        let scheme = if acceptor.is_some() { "https" } else { "http" };
        tasks.push(spawn_serving(listener, acceptor, router, stopped));
        tracing::info!(
            message = "weir server listening",
            url = %format!("{scheme}://{addr}"),
            database = state.store.dialect().as_str()
        );
        Ok(Server {
            addr,
            state,
            bootstrap_key,
            shutdown,
            tasks,
            work_listener,
        })
    }

    /// Stops accepting requests, finishes those in flight, and stops the background loops.
    pub async fn stop(self) {
        let _ = self.shutdown.send(true);
        if let Some(l) = &self.work_listener {
            l.abort();
        }
        for t in self.tasks {
            let _ = t.await;
        }
        self.state.store.close().await;
    }
}
