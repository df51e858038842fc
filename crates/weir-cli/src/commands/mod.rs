//! One module per group of commands; [`dispatch`] routes a parsed command line.

mod deploy;
mod deploy_notify;
#[cfg(feature = "ecs")]
mod ecs;
mod exec;
mod init;
mod inspect;
mod keys;
mod limits;
mod notifications;
mod projects;
mod prune;
mod result;
mod run;
mod schedule;
mod serve;
mod show;

use crate::cli::{Cli, Command};
use anyhow::Result;
use std::process::ExitCode;

/// How `weir deploy` treats the server (read by `deploy` and `prune`): `plan` writes
/// nothing; `prune` also archives the project's deployments the file no longer has.
#[derive(Debug, Clone, Copy)]
pub struct Mode {
    /// Show what would change, change nothing.
    pub plan: bool,
    /// Archive deployments missing from the file.
    pub prune: bool,
}

/// Runs the command; the exit code says how it went.
pub async fn dispatch(cli: Cli) -> Result<ExitCode> {
    // Every client of this process (CLI, agent, `weir up`) trusts it; agents pass it on to
    // the flow processes they launch.
    let _ = CA_FILE.set(cli.ca_file.clone());
    let api = crate::config::api_url(cli.api_url.as_deref());
    let json = cli.json;
    match cli.command {
        Command::Server(args) => serve::server(args).await,
        Command::Agent(args) => serve::agent(&api, args).await,
        Command::Up {
            server,
            agent,
            no_examples,
        } => serve::up(server, agent, no_examples).await,
        Command::Deploy {
            file,
            project,
            plan,
            prune,
            vars,
        } => {
            let mode = Mode { plan, prune };
            deploy::deploy(&api, &file, project, mode, &vars, json).await
        }
        Command::Run {
            target,
            params,
            params_json,
            watch,
            idempotency_key,
        } => {
            run::run(
                &api,
                &target,
                &params,
                params_json.as_deref(),
                watch,
                idempotency_key,
                json,
            )
            .await
        }
        Command::Runs(cmd) => run::runs(&api, cmd, json).await,
        Command::Logs { id, follow } => run::logs(&api, &id, follow).await,
        Command::Deployments(cmd) => inspect::deployments(&api, cmd, json).await,
        Command::Projects(cmd) => projects::projects(&api, cmd, json).await,
        Command::Schedule(crate::cli::ScheduleCommand::Preview(args)) => {
            Ok(schedule::preview(args, json))
        }
        Command::Schedule(cmd) => inspect::schedule(&api, cmd, json).await,
        Command::Backfill {
            target,
            from,
            to,
            max,
            plan,
        } => schedule::backfill(&api, &target, (&from, &to), max, plan, json).await,
        Command::Agents(_) => inspect::agents(&api, json).await,
        Command::Queues(_) => inspect::queues(&api, json).await,
        Command::Limits(cmd) => limits::limits(&api, cmd, json).await,
        Command::Keys(cmd) => keys::keys(&api, cmd, json).await,
        Command::Notifications(cmd) => notifications::notifications(&api, cmd, json).await,
        Command::Audit { limit } => keys::audit(&api, limit, json).await,
        Command::Exec { grace_s, command } => exec::exec(grace_s, command).await,
        Command::Supervise { exit_file, command } => {
            let code = weir_agent::supervise::run(&exit_file, &command).await;
            Ok(std::process::ExitCode::from(
                u8::try_from(code).unwrap_or(1),
            ))
        }
        Command::Init {
            dir,
            lang,
            weir_path,
        } => init::init(&dir, lang, weir_path.as_deref()),
    }
}

/// A client of the server at `api`.
pub(crate) fn client(api: &str) -> Result<weir_client::Client> {
    Ok(weir_client::Client::with_ca(
        api,
        weir_client::key_from_env(),
        ca_file(),
    )?)
}

/// `--ca-file` (or `WEIR_CA_FILE`), set once at start.
static CA_FILE: std::sync::OnceLock<Option<std::path::PathBuf>> = std::sync::OnceLock::new();

/// The extra CA file to trust, if any.
pub(crate) fn ca_file() -> Option<&'static std::path::Path> {
    CA_FILE.get().and_then(|c| c.as_deref())
}

/// Turns an API error into advice on what to do next.
pub(crate) fn explain(e: weir_client::Error) -> anyhow::Error {
    match &e {
        weir_client::Error::Transport { url, .. } => anyhow::anyhow!(
            "{e}\nhint: is a server running? Start one with `weir up` (or `weir server`), or point at one with --api-url / WEIR_API_URL (now {url})"
        ),
        weir_client::Error::Api { status, .. } if status.as_u16() == 401 => anyhow::anyhow!(
            "{e}\nhint: set WEIR_API_KEY to a key from `weir keys create` (a local `weir up` stores its admin key in $WEIR_HOME/admin.key)"
        ),
        _ => anyhow::Error::new(e),
    }
}
