//! The command line of a flows binary, written by `weir::main!(flow, ...)`:
//!
//! * `describe` — JSON `{"flows":[{"name", "parameters": <JSON Schema>, "tasks": [...]}]}`;
//! * `run FLOW [--param KEY=VALUE]... [--params-json JSON]` — runs one flow run locally:
//!   state changes and logs on stderr (none with `WEIR_QUIET=1`), the result as JSON on stdout.
//!
//! Exit codes: 0 Completed, 1 Failed (or could not start), 2 bad input (unknown flow or
//! parameter, ill-typed value, bad arguments), 130 on SIGINT and 143 on SIGTERM (the flow run
//! is reported Cancelled first).
//!
//! Parameters: `WEIR_PARAMETERS` (a JSON object, as an agent may pass them) is the base,
//! `--params-json` is merged over it, then each `--param` (VALUE parsed as JSON when it parses,
//! else taken as a string).

use crate::flow::FlowDef;
use crate::params::{ParamError, as_object, parse_assignment};
use crate::runner::Runner;
use clap::{Parser, Subcommand};
use std::process::ExitCode;
use std::time::Duration;
use weir_core::api::Parameters;

#[derive(Parser)]
#[command(about = "A Weir flows binary: describe its flows or run one", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print the flows, their parameter schemas and tasks as JSON.
    Describe,
    /// Run one flow locally.
    Run {
        /// The flow to run, by its name (as `describe` lists it).
        flow: String,
        /// A parameter: KEY=VALUE (VALUE is JSON if it parses, else a string). Repeatable.
        #[arg(long = "param", value_name = "KEY=VALUE")]
        params: Vec<String>,
        /// All parameters as one JSON object (merged under the --param values).
        #[arg(long, value_name = "JSON")]
        params_json: Option<String>,
    },
}

/// Exit code for bad input.
const USAGE: u8 = 2;

/// Runs the command line for `flows`; the `main` that `weir::main!` writes calls this.
pub fn main(flows: &[&'static FlowDef]) -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Describe => describe(flows),
        Command::Run {
            flow,
            params,
            params_json,
        } => run(flows, &flow, &params, params_json.as_deref()),
    }
}

fn describe(flows: &[&'static FlowDef]) -> ExitCode {
    let doc = weir_core::contract::Description {
        flows: flows.iter().map(|f| f.describe()).collect(),
    };
    match serde_json::to_string_pretty(&doc) {
        Ok(s) => {
            crate::say::out!("{s}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            crate::say::err!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Gathers parameters from `WEIR_PARAMETERS`, `--params-json` and `--param`.
fn collect_params(assignments: &[String], json: Option<&str>) -> Result<Parameters, String> {
    let mut params = Parameters::new();
    let mut merge = |source: &str, text: &str| -> Result<(), String> {
        let v: serde_json::Value =
            serde_json::from_str(text).map_err(|e| format!("{source} is not valid JSON: {e}"))?;
        let obj = as_object(v).map_err(|e| format!("{source}: {e}"))?;
        params.extend(obj);
        Ok(())
    };
    use weir_core::contract::launch::var;
    if let Ok(env) = std::env::var(var::PARAMETERS)
        && !env.trim().is_empty()
    {
        merge(var::PARAMETERS, &env)?;
    }
    if let Some(j) = json {
        merge("--params-json", j)?;
    }
    for a in assignments {
        let (k, v) = parse_assignment(a)?;
        params.insert(k, v);
    }
    Ok(params)
}

fn install_panic_hook() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        // A panic inside a task or flow is reported as that run's Failed state.
        if crate::context::current_flow_run().is_none() {
            default(info);
        }
    }));
}

fn run(
    flows: &[&'static FlowDef],
    name: &str,
    assignments: &[String],
    json: Option<&str>,
) -> ExitCode {
    let Some(def) = flows.iter().find(|f| f.name == name) else {
        let names: Vec<&str> = flows.iter().map(|f| f.name).collect();
        crate::say::err!(
            "error: unknown flow {name:?}; this binary has: {}",
            names.join(", ")
        );
        return ExitCode::from(USAGE);
    };
    let params = match collect_params(assignments, json) {
        Ok(p) => p,
        Err(e) => {
            crate::say::err!("error: {e}");
            return ExitCode::from(USAGE);
        }
    };
    let runner = Runner::new(crate::environment::tracker_from_env());
    // Validate before anything starts (and before the runtime exists).
    let fut = match runner.start(def, params) {
        Ok(f) => f,
        Err(e) => return param_error(name, &e),
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            crate::say::err!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    crate::logging::init();
    install_panic_hook();
    let code = rt.block_on(async move {
        // Signal handlers are in place before the flow starts.
        let signal = signals();
        let mut fut = Box::pin(fut);
        tokio::pin!(signal);
        tokio::select! {
            out = &mut fut => match out {
                Ok(v) => {
                    match serde_json::to_string(&v) {
                        Ok(s) => crate::say::out!("{s}"),
                        Err(e) => crate::say::err!("error: cannot print the result: {e}"),
                    }
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    crate::say::err!("error: flow {name:?} failed: {e:#}");
                    ExitCode::FAILURE
                }
            },
            (signame, code) = &mut signal => {
                drop(fut);
                // A process that stopped itself because its attempt is over was not cancelled.
                let stopped = crate::transport::stop_reason();
                let msg = match stopped {
                    Some(reason) => format!("stopped: {reason}"),
                    None => format!("cancelled by {signame}"),
                };
                let _ = tokio::time::timeout(Duration::from_secs(5), runner.cancel_active(&msg)).await;
                crate::say::err!("weir: flow run {msg}");
                ExitCode::from(code)
            }
        }
    });
    rt.shutdown_timeout(Duration::from_millis(200));
    code
}

fn param_error(flow: &str, e: &ParamError) -> ExitCode {
    crate::say::err!("error: flow {flow:?}: {e}");
    ExitCode::from(USAGE)
}

/// Installs SIGINT/SIGTERM handlers now; the future resolves on the first of them with the
/// signal's name and exit code.
fn signals() -> impl std::future::Future<Output = (&'static str, u8)> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let term = signal(SignalKind::terminate());
        let int = signal(SignalKind::interrupt());
        async move {
            match (term, int) {
                (Ok(mut term), Ok(mut int)) => tokio::select! {
                    _ = term.recv() => ("SIGTERM", 143),
                    _ = int.recv() => ("SIGINT", 130),
                },
                _ => std::future::pending().await,
            }
        }
    }
    #[cfg(not(unix))]
    {
        async move {
            match tokio::signal::ctrl_c().await {
                Ok(()) => ("SIGINT", 130),
                Err(_) => std::future::pending().await,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_merge_json_then_assignments() {
        let p = collect_params(
            &["n=5".into(), "s=x".into()],
            Some(r#"{"n": 1, "m": true}"#),
        )
        .expect("params");
        assert_eq!(p.get("n"), Some(&serde_json::json!(5)));
        assert_eq!(p.get("m"), Some(&serde_json::json!(true)));
        assert_eq!(p.get("s"), Some(&serde_json::json!("x")));
        assert!(collect_params(&[], Some("[1]")).is_err());
        assert!(collect_params(&[], Some("{")).is_err());
        assert!(collect_params(&["bad".into()], None).is_err());
    }
}
