//! The invariants checked after every scenario, from two independent records: the database
//! itself (read with its own driver, not through the API) and the flow processes' witness
//! file (`shared/events.log`: `start`/`tick`/`end` lines with run, attempt, step, time, pid —
//! what the processes really did, written outside Weir).
//!
//! Each check gives held/broken with its evidence; see [`INVARIANTS`] for the list.

use sqlx::Row;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::str::FromStr;
use weir_core::StateKind;

/// The invariants, in table order, with what each means.
pub const INVARIANTS: [(&str, &str); 8] = [
    (
        "terminal",
        "every run ended, and a run whose process finished is Completed",
    ),
    ("one_launch", "no attempt was launched twice"),
    (
        "no_overlap",
        "no two attempts of a run ran at the same time",
    ),
    (
        "tasks_closed",
        "no task run is open under an ended flow run",
    ),
    ("logs_exact", "no log line lost or duplicated"),
    (
        "history",
        "state history is legal and monotonic, ending in the run's state",
    ),
    (
        "no_secret",
        "the secret value is nowhere on disk (database, logs, homes)",
    ),
    (
        "recovered",
        "new runs complete after the fault, with no manual step",
    ),
];

/// One invariant's verdict.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Check {
    /// Its name (one of [`INVARIANTS`]).
    pub name: String,
    /// Whether it held.
    pub held: bool,
    /// What was seen.
    pub evidence: String,
}

fn check(name: &str, problems: Vec<String>, ok: String) -> Check {
    Check {
        name: name.to_string(),
        held: problems.is_empty(),
        evidence: if problems.is_empty() {
            ok
        } else {
            let n = problems.len();
            let mut shown: Vec<String> = problems.into_iter().take(3).collect();
            if n > 3 {
                shown.push(format!("… {} more", n - 3));
            }
            shown.join("; ")
        },
    }
}

/// One line of the witness file.
#[derive(Debug, Clone)]
pub struct Event {
    /// `start`, `tick` or `end`.
    pub kind: String,
    /// The flow run's id, as the witness flow logged it.
    pub run: String,
    /// The attempt that logged the event.
    pub attempt: i64,
    /// Step (tick) or result (end).
    pub n: u64,
    /// Unix time in microseconds.
    pub at_us: u128,
}

/// Reads `events.log` in `shared`.
pub fn events(shared: &Path) -> Vec<Event> {
    let text = std::fs::read_to_string(shared.join("events.log")).unwrap_or_default();
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            if f.len() < 5 {
                return None;
            }
            Some(Event {
                kind: f[0].to_string(),
                run: f[1].to_string(),
                attempt: f[2].parse().ok()?,
                n: f[3].parse().ok()?,
                at_us: f[4].parse().ok()?,
            })
        })
        .collect()
}

/// What the database holds, read once.
pub struct DbView {
    /// id → (state, attempt, message, parameters).
    pub runs: BTreeMap<String, (String, i64, Option<String>, String)>,
    /// run → [(state, attempt, at)], in order.
    pub history: BTreeMap<String, Vec<(String, i64, i64)>>,
    /// (task id, run, state).
    pub tasks: Vec<(String, String, String)>,
    /// run → messages, in order.
    pub logs: BTreeMap<String, Vec<String>>,
}

/// Reads the tables the invariants need (any database URL sqlx's `Any` driver takes).
pub async fn read_db(url: &str) -> Result<DbView, sqlx::Error> {
    sqlx::any::install_default_drivers();
    let pool = sqlx::any::AnyPoolOptions::new()
        .max_connections(1)
        .connect(url)
        .await?;
    let mut runs = BTreeMap::new();
    for r in sqlx::query(
        "SELECT id, state, attempt, state_message, parameters FROM flow_runs WHERE project = 'faults'",
    )
    .fetch_all(&pool)
    .await?
    {
        runs.insert(
            r.try_get::<String, _>("id")?,
            (
                r.try_get("state")?,
                r.try_get("attempt")?,
                r.try_get("state_message")?,
                r.try_get("parameters")?,
            ),
        );
    }
    let mut history: BTreeMap<String, Vec<(String, i64, i64)>> = BTreeMap::new();
    for r in sqlx::query(
        "SELECT flow_run_id, state, attempt, at FROM flow_run_states ORDER BY flow_run_id, seq",
    )
    .fetch_all(&pool)
    .await?
    {
        history.entry(r.try_get("flow_run_id")?).or_default().push((
            r.try_get("state")?,
            r.try_get("attempt")?,
            r.try_get("at")?,
        ));
    }
    let mut tasks = Vec::new();
    for r in sqlx::query("SELECT id, flow_run_id, state FROM task_runs")
        .fetch_all(&pool)
        .await?
    {
        tasks.push((
            r.try_get("id")?,
            r.try_get("flow_run_id")?,
            r.try_get("state")?,
        ));
    }
    let mut logs: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for r in sqlx::query("SELECT flow_run_id, message FROM logs ORDER BY seq")
        .fetch_all(&pool)
        .await?
    {
        logs.entry(r.try_get("flow_run_id")?)
            .or_default()
            .push(r.try_get("message")?);
    }
    pool.close().await;
    Ok(DbView {
        runs,
        history,
        tasks,
        logs,
    })
}

/// The state of every run of the suite's project.
pub async fn read_states(url: &str) -> Result<Vec<String>, sqlx::Error> {
    sqlx::any::install_default_drivers();
    let pool = sqlx::any::AnyPoolOptions::new()
        .max_connections(1)
        .connect(url)
        .await?;
    let states = sqlx::query_scalar("SELECT state FROM flow_runs WHERE project = 'faults'")
        .fetch_all(&pool)
        .await;
    pool.close().await;
    states
}

fn state(s: &str) -> Option<StateKind> {
    StateKind::from_str(s).ok()
}

/// Every run terminal; a run whose current attempt's process wrote `end` is Completed; with
/// `healthy` (a fault that stops no run), every run Completed at its first attempt.
pub fn terminal(db: &DbView, ev: &[Event], healthy: bool) -> Check {
    let ended: BTreeSet<(&str, i64)> = ev
        .iter()
        .filter(|e| e.kind == "end")
        .map(|e| (e.run.as_str(), e.attempt))
        .collect();
    let mut problems = Vec::new();
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for (id, (st, attempt, msg, _)) in &db.runs {
        *counts.entry(st.as_str()).or_default() += 1;
        let kind = state(st);
        if !kind.is_some_and(|k| k.is_terminal()) {
            problems.push(format!("run {id} is {st} (attempt {attempt})"));
        } else if ended.contains(&(id.as_str(), *attempt)) && st != "Completed" {
            problems.push(format!(
                "run {id} attempt {attempt} finished its flow but is {st} ({})",
                msg.clone().unwrap_or_default()
            ));
        } else if healthy && (st != "Completed" || *attempt != 1) {
            problems.push(format!(
                "run {id} is {st} at attempt {attempt} though nothing stopped it ({})",
                msg.clone().unwrap_or_default()
            ));
        }
    }
    check(
        "terminal",
        problems,
        format!("{} runs: {counts:?}", db.runs.len()),
    )
}

/// No `(run, attempt)` started twice, and no start for an attempt the database never gave.
pub fn one_launch(db: &DbView, ev: &[Event]) -> Check {
    let mut starts: BTreeMap<(&str, i64), usize> = BTreeMap::new();
    for e in ev.iter().filter(|e| e.kind == "start") {
        *starts.entry((e.run.as_str(), e.attempt)).or_default() += 1;
    }
    let mut problems = Vec::new();
    for ((run, attempt), n) in &starts {
        if *n > 1 {
            problems.push(format!("run {run} attempt {attempt} launched {n} times"));
        }
        match db.runs.get(*run) {
            Some((_, current, _, _)) if attempt > current => problems.push(format!(
                "run {run} attempt {attempt} launched but the database is at attempt {current}"
            )),
            None => problems.push(format!("run {run} launched but not in the database")),
            _ => {}
        }
    }
    check(
        "one_launch",
        problems,
        format!("{} launches, each (run, attempt) once", starts.len()),
    )
}

/// The witness events of different attempts of a run never interleave in time.
pub fn no_overlap(ev: &[Event]) -> Check {
    let mut spans: BTreeMap<&str, BTreeMap<i64, (u128, u128)>> = BTreeMap::new();
    for e in ev {
        let s = spans
            .entry(e.run.as_str())
            .or_default()
            .entry(e.attempt)
            .or_insert((e.at_us, e.at_us));
        s.0 = s.0.min(e.at_us);
        s.1 = s.1.max(e.at_us);
    }
    let mut problems = Vec::new();
    let mut retried = 0;
    for (run, attempts) in &spans {
        let list: Vec<(&i64, &(u128, u128))> = attempts.iter().collect();
        if list.len() > 1 {
            retried += 1;
        }
        for w in list.windows(2) {
            let ((a1, s1), (a2, s2)) = (w[0], w[1]);
            if s2.0 <= s1.1 {
                problems.push(format!(
                    "run {run}: attempt {a2} started {} ms before attempt {a1} stopped",
                    (s1.1 - s2.0) / 1000
                ));
            }
        }
    }
    check(
        "no_overlap",
        problems,
        format!(
            "{} runs, {retried} with several attempts, none overlapping",
            spans.len()
        ),
    )
}

/// No task run left open under a terminal flow run.
pub fn tasks_closed(db: &DbView) -> Check {
    let mut problems = Vec::new();
    for (task, run, st) in &db.tasks {
        let parent_ended = db
            .runs
            .get(run)
            .and_then(|r| state(&r.0))
            .is_some_and(|k| k.is_terminal());
        if parent_ended && !state(st).is_some_and(|k| k.is_terminal()) {
            problems.push(format!("task run {task} is {st} under ended run {run}"));
        }
    }
    check(
        "tasks_closed",
        problems,
        format!("{} task runs, none open under an ended run", db.tasks.len()),
    )
}

/// Every step the run's finished current attempt witnessed has its two log lines (through the SDK and through
/// stdout) exactly once; no line of any attempt is stored twice.
pub fn logs_exact(db: &DbView, ev: &[Event]) -> Check {
    let mut problems = Vec::new();
    let mut lines = 0;
    for (run, msgs) in &db.logs {
        let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
        for m in msgs.iter().filter(|m| m.contains("tick ")) {
            *seen.entry(m.as_str()).or_default() += 1;
            lines += 1;
        }
        for (m, n) in &seen {
            if *n > 1 {
                problems.push(format!("run {run}: {m:?} stored {n} times"));
            }
        }
    }
    let ticks: BTreeMap<(&str, i64), Vec<u64>> =
        ev.iter()
            .filter(|e| e.kind == "tick")
            .fold(BTreeMap::new(), |mut m, e| {
                m.entry((e.run.as_str(), e.attempt)).or_default().push(e.n);
                m
            });
    // Completeness is owed for the attempt the database holds: a superseded (fenced)
    // attempt's reports are refused on purpose.
    let current = |e: &&Event| db.runs.get(&e.run).is_some_and(|r| r.1 == e.attempt);
    for e in ev.iter().filter(|e| e.kind == "end").filter(current) {
        let of = e.n;
        let stored = db.logs.get(&e.run).cloned().unwrap_or_default();
        for step in ticks
            .get(&(e.run.as_str(), e.attempt))
            .into_iter()
            .flatten()
        {
            for want in [
                format!("tick {step}/{of} attempt {}", e.attempt),
                format!("stdout tick {step}/{of} attempt {}", e.attempt),
            ] {
                if !stored.contains(&want) {
                    problems.push(format!("run {}: {want:?} lost", e.run));
                }
            }
        }
    }
    check(
        "logs_exact",
        problems,
        format!("{lines} step lines, each once; finished attempts complete"),
    )
}

/// Each run's history: every step a legal transition (or a new attempt), times and attempts
/// never going back, the last entry the run's state.
pub fn history(db: &DbView) -> Check {
    let mut problems = Vec::new();
    let mut entries = 0;
    for (id, (st, attempt, _, _)) in &db.runs {
        let h = db.history.get(id).cloned().unwrap_or_default();
        entries += h.len();
        for w in h.windows(2) {
            let ((s1, a1, t1), (s2, a2, t2)) = (&w[0], &w[1]);
            let legal = match (state(s1), state(s2)) {
                (Some(x), Some(y)) => x.can_become(y) || (a2 > a1 && !x.is_terminal()),
                _ => false,
            };
            if !legal || a2 < a1 || t2 < t1 {
                problems.push(format!("run {id}: {s1}@{a1} → {s2}@{a2}"));
            }
        }
        match h.last() {
            Some((last, a, _)) if last == st && a == attempt => {}
            other => problems.push(format!(
                "run {id} is {st}@{attempt} but its history ends {other:?}"
            )),
        }
    }
    check(
        "history",
        problems,
        format!("{entries} entries over {} runs, all legal", db.runs.len()),
    )
}

/// `secret` appears in no file under `dir` (the database's files, every process's log, every
/// home and the shared directory).
pub fn no_secret(dir: &Path, secret: &str) -> Check {
    let mut problems = Vec::new();
    let mut files = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if let Ok(bytes) = std::fs::read(&p) {
                files += 1;
                if bytes.windows(secret.len()).any(|w| w == secret.as_bytes()) {
                    problems.push(format!("in {}", p.display()));
                }
            }
        }
    }
    check("no_secret", problems, format!("absent from {files} files"))
}
