//! `weir exec -- CMD…`: the shim that reports a command without an SDK as its flow run (see
//! [`weir_agent::exec`]).

use anyhow::{Context, Result};
use std::process::ExitCode;
use std::time::Duration;
use weir_core::contract::ReportingEnv;

/// Exit code when the launch environment is missing or malformed (bad input: nothing ran).
const BAD_ENV: u8 = 2;

/// Runs `command` for the run named by the launch environment; exits with its exit code.
pub async fn exec(grace_s: u64, command: Vec<String>) -> Result<ExitCode> {
    let filter = tracing_subscriber::EnvFilter::try_from_env("WEIR_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_ansi(false)
        .with_writer(std::io::stderr)
        .try_init();
    let env = match ReportingEnv::from_lookup(|k| std::env::var(k).ok()) {
        Ok(env) => env,
        Err(e) => {
            eprintln!("error: weir exec: {e}");
            return Ok(ExitCode::from(BAD_ENV));
        }
    };
    let client =
        weir_client::Client::with_ca(&env.api_url, Some(env.api_key.clone()), super::ca_file())
            .with_context(|| format!("cannot use WEIR_API_URL {:?}", env.api_url))?;
    let options = weir_agent::exec::Options {
        argv: command,
        grace: Duration::from_secs(grace_s),
        heartbeat_every: Duration::from_secs(5),
    };
    let code = weir_agent::exec::run(client, env, options).await;
    Ok(ExitCode::from(u8::try_from(code).unwrap_or(1)))
}
