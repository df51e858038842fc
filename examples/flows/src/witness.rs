//! Test and benchmark hooks of the example flows (not part of the SDK):
//!
//! * `WEIR_WITNESS_DIR` set: every flow run appends `{flow_run_id} {attempt}` to
//!   `$WEIR_WITNESS_DIR/witness.log` when it starts (one `O_APPEND` write), so tests can prove
//!   each run was launched exactly once;
//! * `WEIR_WITNESS_DIR` set: [`event`] appends `{kind} {flow_run_id} {attempt} {n} {unix_time_us}
//!   {pid}` to `$WEIR_WITNESS_DIR/events.log` (the `witness` flow's start, steps and end), so the
//!   fault suite can tell which attempt did what, and when;
//! * `WEIR_BENCH_MARK_FILE` set: appends `{unix_time_us} {flow_run_id}` to that file at the very
//!   start of user code (for the launch-latency benchmark). `BENCH_MARK_FILE` does the same for
//!   runs whose environment comes from their deployment alone (a container: deployments may not
//!   set `WEIR_` names).

use std::io::Write;
use std::time::{SystemTime, UNIX_EPOCH};

fn append(path: &std::path::Path, line: &str) {
    let written = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .and_then(|mut f| f.write_all(line.as_bytes()));
    if let Err(e) = written {
        eprintln!("example-flows: cannot append to {}: {e}", path.display());
    }
}

/// Records the start of the current flow run where the environment asks for it.
pub fn record() {
    let now_us = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros())
        .unwrap_or(0);
    let Some(run) = weir::context::current_flow_run() else {
        return;
    };
    let mark = ["WEIR_BENCH_MARK_FILE", "BENCH_MARK_FILE"]
        .into_iter()
        .find_map(|name| std::env::var_os(name).filter(|p| !p.is_empty()));
    if let Some(path) = mark {
        append(
            std::path::Path::new(&path),
            &format!("{now_us} {}\n", run.flow_run_id),
        );
    }
    if let Some(dir) = std::env::var_os("WEIR_WITNESS_DIR").filter(|p| !p.is_empty()) {
        let path = std::path::Path::new(&dir).join("witness.log");
        append(&path, &format!("{} {}\n", run.flow_run_id, run.attempt));
    }
}

/// Appends one event of the current flow run to `$WEIR_WITNESS_DIR/events.log` (see the module
/// docs); does nothing outside a flow run or without the variable.
pub fn event(kind: &str, n: u64) {
    let now_us = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros())
        .unwrap_or(0);
    let Some(run) = weir::context::current_flow_run() else {
        return;
    };
    if let Some(dir) = std::env::var_os("WEIR_WITNESS_DIR").filter(|p| !p.is_empty()) {
        let path = std::path::Path::new(&dir).join("events.log");
        let line = format!(
            "{kind} {} {} {n} {now_us} {}\n",
            run.flow_run_id,
            run.attempt,
            std::process::id()
        );
        append(&path, &line);
    }
}
