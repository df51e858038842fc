//! `weir-bench`: Weir's benchmarks. Each subcommand measures one part and prints ONE JSON
//! object on stdout. Subcommands live in their own modules: `sdk`, `server`, `launch` (and
//! `launch_docker`), `ui`, `python`, `retention`, and `ecs` (with the `ecs` feature).

#[cfg(feature = "ecs")]
mod ecs;
mod ids;
mod launch;
mod launch_docker;
mod procs;
mod python;
mod retention;
mod sdk;
mod server;
mod ui;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser)]
#[command(about = "Weir benchmarks; each subcommand prints one JSON object")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// SDK overhead: in-process chains and fan-outs with a quiet local tracker.
    Sdk(sdk::Args),
    /// Server: tracked task overhead, transitions/s, cold start, idle memory.
    Server(server::Args),
    /// Launch latency: run created → first line of user code, with an idle agent waiting.
    Launch(launch::Args),
    /// Web UI: page times on a seeded database of 1,000,000 runs.
    Ui(ui::Args),
    /// Python SDK: per-task overhead in process and tracked by a server (sdk/python/bench.py).
    Python(python::Args),
    /// Retention: pruning rate and API latency while 1,000,000 runs are pruned.
    Retention(retention::Args),
    /// ECS: N runs through an agent with the ECS launcher against an AWS-compatible endpoint
    /// (moto), tasks run by the local Fargate: registrations, RunTask and DescribeTasks calls,
    /// launch latency.
    #[cfg(feature = "ecs")]
    Ecs(ecs::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Sdk(args) => sdk::run(&args),
        Command::Server(args) => server::run(&args),
        Command::Launch(args) if args.launcher == launch::Kind::Docker => {
            if args.replicas > 1 {
                Err(anyhow::anyhow!(
                    "--replicas applies to the process launcher only"
                ))
            } else {
                launch_docker::run(args.runs)
            }
        }
        Command::Launch(args) => launch::run(&args),
        Command::Ui(args) => ui::run(&args),
        Command::Python(args) => python::run(&args),
        Command::Retention(args) => retention::run(&args),
        #[cfg(feature = "ecs")]
        Command::Ecs(args) => ecs::run(&args),
    };
    match result.and_then(|v| Ok(serde_json::to_string(&v)?)) {
        Ok(json) => {
            println!("{json}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
