//! The wire type of a flow run stays at the edge: weir-core's rules and weir-store work on
//! the domain's `weir_core::run::Run`, and `api::FlowRun` is made from it in one place
//! (`weir-core/src/run.rs`), where the server answers. Read from the sources (through
//! `weir_testkit::modules::sources`), so a rule or a store function that takes or returns the
//! wire type again fails here.

use std::path::Path;

/// Where `FlowRun` (the word itself, not `CreateFlowRun` or `FlowRunDetail`) is named outside
/// comments in the `.rs` files under `src`, as `path:line`, leaving out `allowed` paths.
fn uses(src: &Path, allowed: &[&str]) -> Vec<String> {
    let files = weir_testkit::modules::sources(src)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", src.display()));
    assert!(
        files.len() > 10,
        "{} has {} source files: the reader lost track of the sources",
        src.display(),
        files.len()
    );
    let ident = |c: char| c.is_alphanumeric() || c == '_';
    let mut out = Vec::new();
    for (path, text) in &files {
        if allowed
            .iter()
            .any(|a| path == a || path.starts_with(&format!("{a}/")))
        {
            continue;
        }
        for (i, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            let named = code.match_indices("FlowRun").any(|(at, w)| {
                let before = code[..at].chars().next_back().is_some_and(ident);
                let after = code[at + w.len()..].chars().next().is_some_and(ident);
                !before && !after
            });
            if named {
                out.push(format!("{path}:{}: {}", i + 1, line.trim()));
            }
        }
    }
    out
}

#[test]
fn the_store_never_names_the_wire_run() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let found = uses(&src, &[]);
    assert!(
        found.is_empty(),
        "weir-store reads and returns weir_core::run::Run, never api::FlowRun:\n{}",
        found.join("\n")
    );
}

#[test]
fn core_rules_never_name_the_wire_run() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../weir-core/src");
    // The wire types themselves; the one conversion (and `Standing`, read from either shape);
    // the retention export's line format, which is serialised and so carries the wire shape.
    let found = uses(&src, &["api", "api.rs", "run.rs", "retention.rs"]);
    assert!(
        found.is_empty(),
        "weir-core's rules take weir_core::run::Run, never api::FlowRun:\n{}",
        found.join("\n")
    );
    // retention.rs names it only in the export line's field.
    let retention = std::fs::read_to_string(src.join("retention.rs")).expect("retention.rs");
    let lines: Vec<&str> = retention
        .lines()
        .filter(|l| !l.trim_start().starts_with("//") && l.contains("FlowRun"))
        .map(str::trim)
        .collect();
    assert_eq!(
        lines,
        [
            "use crate::api::{FlowRun, LogLine, StateChange, TaskRunDetail};",
            "pub run: FlowRun,"
        ],
        "retention.rs may name api::FlowRun only as the export line's run"
    );
}
