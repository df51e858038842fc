//! `weir-bench`: Weir's benchmarks. Each subcommand measures one part and prints ONE JSON
//! object on stdout. Subcommands live in their own modules (`sdk`; `server`, `launch`, `ui`
//! can be added beside it).

mod sdk;

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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Sdk(args) => sdk::run(&args),
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
