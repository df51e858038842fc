//! `weir-bench python`: the Python SDK's per-task overhead, in process and tracked by a real
//! server, for 1,000- and 10,000-task chains. Runs `sdk/python/bench.py` (which starts the
//! `weir` binary next to this one as its server and checks that every task run is on the
//! server when the flow process exits) and passes its JSON object through.

use crate::procs;
use anyhow::{Context, Result, bail};
use std::path::Path;
use std::process::{Command, Stdio};

/// Options of `weir-bench python`.
#[derive(clap::Args)]
pub struct Args {
    /// The Python interpreter that runs sdk/python/bench.py.
    #[arg(long, default_value = "python3")]
    python: String,
    /// Runs of each measurement; the fastest is reported.
    #[arg(long, default_value_t = 3)]
    repeat: u32,
}

/// Runs the script and returns its figures.
pub fn run(args: &Args) -> Result<serde_json::Value> {
    let weir = procs::sibling("weir")?;
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../sdk/python/bench.py");
    if !script.exists() {
        bail!(
            "{} not found (run weir-bench from a checkout)",
            script.display()
        );
    }
    let out = Command::new(&args.python)
        .arg(&script)
        .arg("--weir")
        .arg(&weir)
        .arg("--repeat")
        .arg(args.repeat.to_string())
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("cannot run {} (is Python 3.9+ installed?)", args.python))?;
    if !out.status.success() {
        bail!("{} failed: {}", script.display(), out.status);
    }
    serde_json::from_slice(&out.stdout).context("bench.py did not print one JSON object")
}
