//! `weir`: the one command for Weir — run the server and agents, deploy flows, run and watch
//! them.
//!
//! Parsing happens in two stages: clap turns arguments into [`cli::Cli`], then each command
//! module validates and resolves what it needs (server URL, data directory) in
//! [`config`] before doing any work.

mod cli;
mod commands;
mod config;
mod memory;
mod output;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    memory::limit_arenas();
    let cli = cli::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(commands::dispatch(cli)) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(1)
        }
    }
}
