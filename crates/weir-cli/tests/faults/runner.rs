//! Runs one scenario: starts its cluster, lets it inject and heal its fault, waits until every
//! run has ended, proves recovery with fresh runs through every replica, then checks every
//! invariant. A scenario that panics (a wait that timed out) is a row of broken invariants
//! with the panic as evidence, and the suite goes on.

use crate::cluster::{Cluster, Spec};
use crate::invariants::{self, Check, INVARIANTS};
use std::panic::AssertUnwindSafe;
use std::time::{Duration, Instant};
use weir_core::StateKind;

/// A scenario's result row.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Outcome {
    /// The scenario's name, as `WEIR_FAULTS` names it.
    pub scenario: String,
    /// What the fault was.
    pub fault: String,
    /// One verdict per invariant.
    pub checks: Vec<Check>,
    /// What the scenario observed (timings, states).
    pub notes: Vec<String>,
    /// Wall time, seconds.
    pub seconds: f64,
}

impl Outcome {
    /// Whether every invariant held.
    pub fn held(&self) -> bool {
        self.checks.iter().all(|c| c.held)
    }
}

/// Runs scenario `name` on a cluster of `spec`; `body` injects and heals the fault, pushing
/// notes.
pub fn run(
    name: &str,
    fault: &str,
    spec: Spec,
    settle: Duration,
    body: impl FnOnce(&mut Cluster, &mut Vec<String>),
) -> Outcome {
    let started = Instant::now();
    eprintln!("faults: {name}: {fault}");
    let mut notes = Vec::new();
    let result = std::panic::catch_unwind(AssertUnwindSafe(|| {
        let mut c = Cluster::start(name, spec);
        body(&mut c, &mut notes);
        wait_all_ended(&c, settle, &mut notes);
        let recovered = probe(&c, &mut notes);
        wait_spools_shipped(&c, Duration::from_secs(15), &mut notes);
        let checks = checks(&c, recovered);
        (checks, c)
    }));
    let checks = match result {
        Ok((checks, c)) => {
            drop(c);
            checks
        }
        Err(panic) => {
            let msg = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "panicked".into());
            INVARIANTS
                .iter()
                .map(|(n, _)| Check {
                    name: n.to_string(),
                    held: false,
                    evidence: format!("not checked: the scenario failed: {msg}"),
                })
                .collect()
        }
    };
    let out = Outcome {
        scenario: name.to_string(),
        fault: fault.to_string(),
        checks,
        notes,
        seconds: started.elapsed().as_secs_f64(),
    };
    for c in &out.checks {
        let verdict = if c.held { "held" } else { "BROKEN" };
        eprintln!("faults: {name}: {} {verdict}: {}", c.name, c.evidence);
    }
    out
}

/// States of every run of the scenario's project, straight from the database.
fn open_runs(c: &Cluster) -> Result<usize, String> {
    let db =
        c.rt.block_on(invariants::read_states(&c.db_url))
            .map_err(|e| e.to_string())?;
    Ok(db
        .iter()
        .filter(|s| !s.parse::<StateKind>().is_ok_and(|k| k.is_terminal()))
        .count())
}

/// Waits (at most `within`) until no agent has spooled output left: a run's end reaches the
/// server from its flow, before the agent has shipped the last lines it printed, which the
/// agent does before it removes the spool (`weir_agent::launcher::spool`). Spools still there
/// afterwards are noted, and their lines count as lost if they are.
fn wait_spools_shipped(c: &Cluster, within: Duration, notes: &mut Vec<String>) {
    let left = || -> Vec<std::path::PathBuf> {
        let Ok(hosts) = std::fs::read_dir(&c.dir) else {
            return Vec::new();
        };
        hosts
            .flatten()
            .filter_map(|h| std::fs::read_dir(h.path().join("agent").join("spool")).ok())
            .flat_map(|runs| runs.flatten().map(|r| r.path()))
            .collect()
    };
    let deadline = Instant::now() + within;
    loop {
        let spools = left();
        if spools.is_empty() {
            return;
        }
        if Instant::now() >= deadline {
            notes.push(format!(
                "spooled output not shipped within {within:?}: {spools:?}"
            ));
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn wait_all_ended(c: &Cluster, within: Duration, notes: &mut Vec<String>) {
    let t = Instant::now();
    let deadline = t + within;
    let mut last = String::new();
    while Instant::now() < deadline {
        match open_runs(c) {
            Ok(0) => {
                notes.push(format!(
                    "every run ended {:.1} s after the fault was healed",
                    t.elapsed().as_secs_f64()
                ));
                return;
            }
            Ok(n) => last = format!("{n} runs still open"),
            Err(e) => last = e,
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    notes.push(format!("not every run ended within {within:?}: {last}"));
}

/// One short run created through each replica must complete: the cluster works again with
/// nobody touching it.
fn probe(c: &Cluster, notes: &mut Vec<String>) -> Check {
    let t = Instant::now();
    let ids: Vec<_> = (0..c.servers.len())
        .map(|r| c.create_run(r, 2, 50).id)
        .collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut problems = Vec::new();
    for id in &ids {
        loop {
            let seen = c.rt.block_on(c.clients[0].flow_run(*id));
            match seen {
                Ok(d) if d.run.state.is_terminal() => {
                    if d.run.state != StateKind::Completed {
                        problems.push(format!("probe {id} ended {}", d.run.state));
                    }
                    break;
                }
                Ok(d) if Instant::now() >= deadline => {
                    problems.push(format!("probe {id} still {} after 60 s", d.run.state));
                    break;
                }
                Err(e) if Instant::now() >= deadline => {
                    problems.push(format!("probe {id} unreadable: {e}"));
                    break;
                }
                _ => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    }
    let secs = t.elapsed().as_secs_f64();
    notes.push(format!(
        "probe runs through {} replicas took {secs:.1} s",
        ids.len()
    ));
    Check {
        name: "recovered".into(),
        held: problems.is_empty(),
        evidence: if problems.is_empty() {
            format!("{} probe runs Completed in {secs:.1} s", ids.len())
        } else {
            problems.join("; ")
        },
    }
}

fn checks(c: &Cluster, recovered: Check) -> Vec<Check> {
    let db = match c.rt.block_on(invariants::read_db(&c.db_url)) {
        Ok(db) => db,
        Err(e) => panic!("cannot read the database {}: {e}", c.db_url),
    };
    let ev = invariants::events(&c.dir.join("shared"));
    vec![
        invariants::terminal(&db, &ev, c.spec.healthy),
        invariants::one_launch(&db, &ev),
        invariants::no_overlap(&ev),
        invariants::tasks_closed(&db),
        invariants::logs_exact(&db, &ev),
        invariants::history(&db),
        invariants::no_secret(&c.dir, &c.canary),
        recovered,
    ]
}
