//! `weir server`, `weir agent` and `weir up`: the long-running processes.

use crate::cli::{AgentArgs, ServerArgs};
use crate::config;
use anyhow::{Context, Result};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;
use weir_agent::launcher::{Launcher, ProcessLauncher};
use weir_agent::secrets::Resolver;
use weir_agent::{Agent, AgentOptions};
use weir_core::infrastructure::InfrastructureKind;
use weir_server::{Options, Server};

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("WEIR_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn"));
    // Colours only on a terminal; logs go to stderr, results and listings to stdout.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_ansi(ansi)
        .with_writer(std::io::stderr)
        .try_init();
}

/// Resolves when the process gets SIGINT or SIGTERM.
async fn stop_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = ctrl_c => {}
                _ = term.recv() => {}
            }
        }
        Err(_) => {
            let _ = ctrl_c.await;
        }
    }
}

async fn start_server(args: &ServerArgs) -> Result<Server> {
    if let Some(days) = args.retain_days {
        weir_core::retention::check_days(days)
            .map_err(|m| anyhow::anyhow!("--retain-days: {m}"))?;
    }
    let home = config::ensure_home()?;
    let options = Options {
        database_url: args.db.clone().unwrap_or_else(|| config::default_db(&home)),
        bind: args.bind.clone(),
        lease: Duration::from_secs(args.lease_s.max(1)),
        late_after: Duration::from_secs(args.late_after_s),
        tick: Duration::from_millis(args.tick_ms.max(10)),
        tls: match (&args.tls_cert, &args.tls_key) {
            (Some(cert), Some(key)) => Some(weir_server::TlsFiles {
                cert: cert.clone(),
                key: key.clone(),
            }),
            _ => None,
        },
        admin_key: args.admin_key.clone(),
        retain_days: args.retain_days,
        retain_export: args.retain_export.clone(),
        retain_interval: Duration::from_secs(args.retain_interval_s.max(1)),
        notify: notify_hooks().await,
        ..Options::default()
    };
    let server = Server::start(options)
        .await
        .context("cannot start the server")?;
    let state = server.state.clone();
    let store = server.state.store.clone();
    tokio::spawn(crate::memory::trim_when_idle(
        move || state.activity(),
        move || {
            let store = store.clone();
            async move {
                if let Err(error) = store.release_memory().await {
                    tracing::debug!(message = "could not free SQLite's cached pages", %error);
                }
            }
        },
    ));
    let url = server_url(&server);
    config::record_server(&url)?;
    if let Some(key) = &server.bootstrap_key {
        let path = config::store_admin_key(key)?;
        eprintln!(
            "created the first admin key and stored it in {} (mode 0600); the CLI on this machine uses it",
            path.display()
        );
    }
    if !server.addr.ip().is_loopback() && server.state.options.tls.is_none() {
        tracing::warn!(
            message = "listening on a non-loopback address without TLS: API keys cross the network in clear text",
            addr = %server.addr
        );
    }
    Ok(server)
}

/// The URL the server really serves: `https://` when it was given a certificate.
fn server_url(server: &Server) -> String {
    let scheme = if server.state.options.tls.is_some() {
        "https"
    } else {
        "http"
    };
    format!("{scheme}://{}", server.addr)
}

/// `weir server`.
pub async fn server(args: ServerArgs) -> Result<ExitCode> {
    init_logging();
    let server = start_server(&args).await?;
    println!(
        "weir server listening on {} ({} database)",
        server_url(&server),
        server.state.store.dialect().as_str()
    );
    stop_signal().await;
    tracing::info!(message = "stopping");
    server.stop().await;
    Ok(ExitCode::SUCCESS)
}

/// The agent's secret resolver: `env:` and `file:` references, plus `ssm:` and
/// `secretsmanager:` (the default AWS config chain; `AWS_ENDPOINT_URL` points it elsewhere)
/// when built with the `aws` feature.
async fn resolver() -> Resolver {
    #[cfg_attr(not(feature = "aws"), allow(unused_mut))]
    let mut resolver = Resolver::default();
    #[cfg(feature = "aws")]
    for store in weir_secrets_aws::stores_from_env().await {
        resolver = resolver.with_store(store);
    }
    resolver
}

/// What the server's notification loop resolves secret references and publishes with: this
/// process's environment and files, plus (with the `aws` feature) SSM, Secrets Manager and
/// SNS through the default AWS chain. The server resolves them at delivery time, so the
/// values live only in its memory.
async fn notify_hooks() -> weir_server::notify::Hooks {
    let local = weir_server::notify::Hooks::default();
    let secrets = Arc::new(ServerSecrets {
        local: local.secrets.clone(),
        resolver: resolver().await,
    });
    #[cfg(feature = "aws")]
    let sns: Option<Arc<dyn weir_server::notify::SnsPublisher>> =
        Some(Arc::new(weir_notify_aws::SnsTopics::from_env()));
    #[cfg(not(feature = "aws"))]
    let sns = None;
    weir_server::notify::Hooks { secrets, sns }
}

/// `env:` and `file:` from the server's own environment; other schemes through the secret
/// stores the agent uses.
struct ServerSecrets {
    local: Arc<dyn weir_server::notify::SecretSource>,
    resolver: Resolver,
}

impl weir_server::notify::SecretSource for ServerSecrets {
    fn resolve<'a>(
        &'a self,
        reference: &'a str,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<String, String>> + Send + 'a>>
    {
        Box::pin(async move {
            use weir_core::secret::{SecretRef, SecretScheme};
            match SecretRef::parse(reference).map(|r| r.scheme) {
                Ok(SecretScheme::Env | SecretScheme::File) | Err(_) => {
                    self.local.resolve(reference).await
                }
                Ok(_) => {
                    let refs = std::collections::BTreeMap::from([(
                        "VALUE".to_string(),
                        reference.to_string(),
                    )]);
                    let mut values = self
                        .resolver
                        .resolve_all(&refs)
                        .await
                        .map_err(|e| e.reason)?;
                    values
                        .remove("VALUE")
                        .ok_or_else(|| format!("{reference} resolved to nothing"))
                }
            }
        })
    }
}

/// `--result-storage`, checked; a relative path is made absolute (runs may start elsewhere).
fn result_storage(url: &str) -> Result<String> {
    let parsed = weir_results::StorageUrl::parse(url).context("--result-storage")?;
    Ok(weir_results::ResultStore::at(parsed).url().to_string())
}

fn agent_options(api: &str, args: &AgentArgs) -> Result<AgentOptions> {
    let home = config::ensure_home()?;
    let name = args.name.clone().unwrap_or_else(|| {
        std::fs::read_to_string("/etc/hostname")
            .map(|h| h.trim().to_string())
            .ok()
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "agent".into())
    });
    let mut env = std::collections::BTreeMap::new();
    env.insert("WEIR_HOME".to_string(), home.display().to_string());
    if let Some(ca) = super::ca_file() {
        env.insert("WEIR_CA_FILE".to_string(), ca.display().to_string());
    }
    if let Some(url) = &args.result_storage {
        env.insert(weir_results::ENV_VAR.to_string(), result_storage(url)?);
    }
    Ok(AgentOptions {
        name,
        queues: args.queues.clone(),
        limit: args.limit.max(1),
        poll_wait: Duration::from_secs(10),
        heartbeat_every: Duration::from_secs(args.heartbeat_s.max(1)),
        cancel_grace: Duration::from_secs(args.cancel_grace_s),
        shutdown_grace: Duration::from_secs(args.shutdown_grace_s),
        api_url: api.to_string(),
        state_dir: home.join("agent"),
        workdir: None,
        env,
        // This very program's `weir supervise`.
        supervisor: std::env::current_exe()
            .map(|exe| vec![exe.display().to_string(), "supervise".to_string()])
            .unwrap_or_default(),
    })
}

/// The launchers for `kinds`, or an error naming a kind this build cannot launch (or whose
/// infrastructure does not answer). `agent` is the agent's name, for container labels.
#[cfg_attr(not(feature = "docker"), allow(unused_variables))]
async fn launchers(
    args: &AgentArgs,
    agent: &str,
    kinds: &[InfrastructureKind],
) -> Result<Vec<Arc<dyn Launcher>>> {
    let mut out: Vec<Arc<dyn Launcher>> = Vec::new();
    for kind in kinds {
        match kind {
            InfrastructureKind::Process => out.push(Arc::new(
                ProcessLauncher::new().with_pass_env(args.pass_env.clone()),
            )),
            #[cfg(feature = "ecs")]
            InfrastructureKind::Ecs => out.push(super::ecs::launcher(args).await?),
            #[cfg(feature = "docker")]
            InfrastructureKind::Docker => out.push(Arc::new(
                weir_agent::launcher::docker::DockerLauncher::connect(agent)
                    .await
                    .context("--launchers docker")?,
            )),
            // Reached only in builds without some launcher feature.
            #[allow(unreachable_patterns)]
            other => anyhow::bail!(
                "this weir cannot launch {other} runs: it was built without the {other} launcher"
            ),
        }
    }
    Ok(out)
}

/// What `weir up` launches: processes, plus containers when a Docker engine answers (said
/// either way, so a user knows why docker deployments would wait).
async fn up_kinds() -> Vec<InfrastructureKind> {
    let mut kinds = vec![InfrastructureKind::Process];
    #[cfg(feature = "docker")]
    match weir_agent::launcher::docker::DockerLauncher::connect("probe").await {
        Ok(_) => {
            kinds.push(InfrastructureKind::Docker);
            tracing::info!(
                message = "a Docker engine answers: the agent also launches docker deployments"
            );
        }
        Err(e) => tracing::warn!(
            message = "docker deployments will wait: the agent launches processes only",
            reason = %e
        ),
    }
    #[cfg(not(feature = "docker"))]
    tracing::warn!(
        message = "docker deployments will wait: this weir was built without the docker launcher"
    );
    kinds
}

/// `weir agent`.
pub async fn agent(api: &str, args: AgentArgs) -> Result<ExitCode> {
    init_logging();
    let options = agent_options(api, &args)?;
    let client = super::client(api)?;
    let kinds = args
        .launchers
        .clone()
        .unwrap_or_else(|| vec![InfrastructureKind::Process]);
    let launchers = launchers(&args, &options.name, &kinds).await?;
    let agent = Agent::new(client, options, launchers, resolver().await);
    agent.run(stop_signal()).await?;
    Ok(ExitCode::SUCCESS)
}

/// `weir up`: server + agent in one process, with the example flows deployed.
pub async fn up(
    server_args: ServerArgs,
    agent_args: AgentArgs,
    no_examples: bool,
) -> Result<ExitCode> {
    init_logging();
    let server = start_server(&server_args).await?;
    let url = config::api_url(None);
    let mut deployed = Vec::new();
    if !no_examples {
        match super::deploy::deploy_examples(&url).await {
            Ok(names) => deployed = names,
            Err(e) => {
                tracing::warn!(message = "example flows not deployed", error = %format!("{e:#}"))
            }
        }
        match super::deploy::deploy_python_examples(&url).await {
            Ok(names) => deployed.extend(names),
            Err(e) => {
                tracing::info!(message = "Python example flows not deployed", reason = %format!("{e:#}"))
            }
        }
    }
    let options = agent_options(&url, &agent_args)?;
    let client = super::client(&url)?;
    let kinds = match agent_args.launchers.clone() {
        Some(kinds) => kinds,
        None => up_kinds().await,
    };
    let launchers = launchers(&agent_args, &options.name, &kinds).await?;
    let agent = Agent::new(client, options, launchers, resolver().await);
    println!();
    println!("  Weir is up.");
    println!("  API and UI:   {url}");
    println!("  OpenAPI:      {url}/api/openapi.json");
    println!("  Data:         {}", config::ensure_home()?.display());
    if !deployed.is_empty() {
        println!("  Deployments:  {}", deployed.join(", "));
        println!("  Try:          weir run dev/etl --watch");
    }
    println!("  Stop with Ctrl-C.");
    println!();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let agent_task = tokio::spawn(agent.run(async move {
        let _ = stop_rx.await;
    }));
    stop_signal().await;
    tracing::info!(message = "stopping");
    let _ = stop_tx.send(());
    match agent_task.await {
        Ok(Err(e)) => tracing::warn!(message = "agent stopped with an error", error = %e),
        Err(e) => tracing::warn!(message = "agent task failed", error = %e),
        Ok(Ok(())) => {}
    }
    server.stop().await;
    Ok(ExitCode::SUCCESS)
}
