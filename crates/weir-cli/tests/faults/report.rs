//! The suite's output: a Markdown table (scenario × invariant → held / broken) with the
//! evidence of every broken cell and each scenario's notes, and a JSON summary with
//! everything, both written to `$WEIR_FAULTS_OUT` (default `target/faults/`).

use crate::invariants::INVARIANTS;
use crate::runner::Outcome;
use std::fmt::Write;
use std::path::PathBuf;

/// Where the table and the summary go.
pub fn out_dir() -> PathBuf {
    std::env::var_os("WEIR_FAULTS_OUT")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/faults"))
}

/// The Markdown table of `rows`.
pub fn table(rows: &[Outcome]) -> String {
    let mut s = String::from("| scenario |");
    for (name, _) in INVARIANTS {
        let _ = write!(s, " {name} |");
    }
    s.push_str(" s |\n|---|");
    for _ in INVARIANTS {
        s.push_str("---|");
    }
    s.push_str("---|\n");
    for r in rows {
        let _ = write!(s, "| {} |", r.scenario);
        for c in &r.checks {
            let _ = write!(s, " {} |", if c.held { "held" } else { "**broken**" });
        }
        let _ = writeln!(s, " {:.0} |", r.seconds);
    }
    s.push('\n');
    for r in rows {
        let _ = writeln!(
            s,
            "- **{}** — {}: {}",
            r.scenario,
            r.fault,
            r.notes.join("; ")
        );
        for c in &r.checks {
            if !c.held {
                let _ = writeln!(s, "  - {} broken: {}", c.name, c.evidence);
            }
        }
    }
    s
}

/// Prints the table and writes `faults.md` and `faults.json`.
pub fn write(rows: &[Outcome]) {
    let t = table(rows);
    eprintln!("\n{t}");
    let dir = out_dir();
    let _ = std::fs::create_dir_all(&dir);
    let summary = serde_json::json!({
        "invariants": INVARIANTS.iter().map(|(n, d)| serde_json::json!({"name": n, "meaning": d})).collect::<Vec<_>>(),
        "scenarios": rows,
        "all_held": rows.iter().all(|r| r.held()),
    });
    let _ = std::fs::write(dir.join("faults.md"), &t);
    let _ = std::fs::write(
        dir.join("faults.json"),
        serde_json::to_string_pretty(&summary).unwrap_or_default(),
    );
    eprintln!("faults: wrote {}/faults.md and faults.json", dir.display());
}
