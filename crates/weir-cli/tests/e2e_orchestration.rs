//! End-to-end tests of orchestration with real processes and real signals: schedules firing
//! on time, `kill -9` of flow processes and of agents, cancellation, an agent restarted over
//! its state directory, and agents racing for hundreds of runs. See `common/mod.rs` for the
//! fixture.
//!
//! Needs `cargo build --workspace --bins` first (for `example-flows`).

mod common;

use common::{ServerOptions, Weir, describe, is_alive, params, wait_until};
use serde_json::json;
use std::collections::HashSet;
use std::time::Duration;
use weir_core::StateKind;

/// A deployment file with the example flows binary as the default command.
fn toml(deployments: &str) -> String {
    format!("project = \"dev\"\n\n[defaults]\ncommand = [\"{{flows}}\"]\n\n{deployments}")
}

/// Run `id`'s log messages, in order.
fn messages(w: &Weir, id: uuid::Uuid) -> Result<Vec<String>, String> {
    let logs = w
        .block_on(w.client.logs(id, 0, 1000))
        .map_err(|e| e.to_string())?;
    Ok(logs.items.into_iter().map(|l| l.message).collect())
}

/// A deployment with an interval schedule gets a run that starts on time and completes.
#[test]
fn scheduled_run_fires_on_time() {
    let mut w = Weir::start(ServerOptions::default());
    w.start_agent(4);
    w.deploy(&toml(
        "[deployments.tick]\nflow = \"chain\"\nparameters = { n = 1 }\nschedules = [{ interval = \"2s\" }]\n",
    ));
    let run = wait_until(
        "a Completed scheduled run of dev/tick",
        Duration::from_secs(8),
        || {
            let runs = w.all_runs("dev", "tick");
            runs.iter()
                .find(|r| r.state == StateKind::Completed)
                .cloned()
                .ok_or_else(|| format!("{:?}", common::count_states(&runs)))
        },
    );
    let started = run.started_at.expect("a Completed run has started_at");
    let late = started - run.scheduled_at;
    assert!(
        late >= chrono::Duration::zero() && late <= chrono::Duration::milliseconds(1500),
        "run {} was scheduled at {} and started at {} ({} ms late)",
        run.id,
        run.scheduled_at,
        started,
        late.num_milliseconds()
    );
    // The CLI shows the same fields.
    let show = w
        .weir(&["runs", "show", &run.id.to_string(), "--json"])
        .ok();
    let v: serde_json::Value = serde_json::from_str(&show.stdout).expect("runs show --json");
    assert_eq!(v["run"]["state"], "Completed");
    assert!(v["run"]["scheduled_at"].is_string() && v["run"]["started_at"].is_string());
}

/// `kill -9` of a running flow process: the agent reports the crash (naming SIGKILL), the
/// run is retried because a retry remains, and attempt 2 really starts.
#[test]
fn killed_flow_process_crashes_and_is_retried() {
    let mut w = Weir::start(ServerOptions::default());
    let agent = w.start_agent(4);
    w.deploy(&toml(
        "[deployments.slow]\nparameters = { seconds = 30 }\nretries = 1\nretry_delay = \"0s\"\n",
    ));
    let id = w.run_cli("dev/slow", &[]);
    w.wait_state(id, StateKind::Running, Duration::from_secs(20));
    let pid = w.flow_pid(&w.agent_home(agent), id);
    wait_until(
        "attempt 1 to record its start",
        Duration::from_secs(10),
        || {
            let seen = w.sb.witness();
            if seen.contains(&(id, 1)) {
                Ok(())
            } else {
                Err(format!("{seen:?}"))
            }
        },
    );
    assert!(is_alive(pid), "flow process {pid} runs");
    common::signal(pid, "KILL");

    wait_until(
        "attempt 2 to start (witness)",
        Duration::from_secs(20),
        || {
            let seen = w.sb.witness();
            if seen.contains(&(id, 2)) {
                Ok(())
            } else {
                Err(format!("{seen:?}; run: {}", describe(&w.detail(id))))
            }
        },
    );
    let d = w.wait_run(
        id,
        "to be Running on attempt 2",
        Duration::from_secs(10),
        |d| d.run.attempt == 2 && d.run.state == StateKind::Running,
    );
    // A crash with a retry left is recorded as AwaitingRetry whose message starts with
    // the crash ("Crashed: … killed by signal 9 (SIGKILL) …").
    let crash = d
        .history
        .iter()
        .find(|h| h.state == StateKind::AwaitingRetry)
        .unwrap_or_else(|| panic!("no AwaitingRetry in history: {}", describe(&d)));
    let msg = crash.message.as_deref().unwrap_or_default();
    assert_eq!(crash.attempt, 1, "{}", describe(&d));
    assert!(
        msg.starts_with("Crashed") && msg.contains("signal 9") && msg.contains("SIGKILL"),
        "the crash names SIGKILL: {msg}"
    );
    let order: Vec<(StateKind, u32)> = d.history.iter().map(|h| (h.state, h.attempt)).collect();
    let awaiting = order
        .iter()
        .position(|s| *s == (StateKind::AwaitingRetry, 1))
        .expect("AwaitingRetry@1");
    assert!(
        order[..awaiting].contains(&(StateKind::Running, 1))
            && order[awaiting..].contains(&(StateKind::Running, 2)),
        "Running@1 → AwaitingRetry@1 → Running@2: {}",
        describe(&d)
    );
    assert_eq!(d.run.retries_used, 1);

    // Finish quickly.
    w.weir(&["runs", "cancel", &id.to_string()]).ok();
    let d = w.wait_terminal(id, Duration::from_secs(15));
    assert_eq!(d.run.state, StateKind::Cancelled, "{}", describe(&d));
    assert_eq!(
        w.sb.witness().iter().filter(|(r, _)| *r == id).count(),
        2,
        "exactly two launches: {:?}",
        w.sb.witness()
    );
}

/// `weir runs cancel` of a running flow: Cancelled within the grace period, process gone.
#[test]
fn cancel_stops_the_process() {
    let mut w = Weir::start(ServerOptions::default());
    let agent = w.start_agent(4);
    w.deploy(&toml("[deployments.slow]\nparameters = { seconds = 60 }\n"));
    let id = w.run_cli("dev/slow", &[]);
    w.wait_state(id, StateKind::Running, Duration::from_secs(20));
    let pid = w.flow_pid(&w.agent_home(agent), id);
    assert!(is_alive(pid), "flow process {pid} runs");

    let out = w.weir(&["runs", "cancel", &id.to_string()]).ok();
    assert!(out.stdout.contains("Cancelling"), "{out:#?}");
    // Grace 2 s (agent --cancel-grace-s 2), plus 3 s.
    let d = w.wait_terminal(id, Duration::from_secs(5));
    assert_eq!(d.run.state, StateKind::Cancelled, "{}", describe(&d));
    wait_until(
        &format!("flow process {pid} to be gone"),
        Duration::from_secs(2),
        || {
            if is_alive(pid) {
                Err("alive".into())
            } else {
                Ok(())
            }
        },
    );
}

/// `kill -9` of the agent with runs in flight.
///
/// Plain commands are only watched by their agent: once it is gone nobody heartbeats them,
/// so the crash detector marks them Crashed when the lease expires. SDK flow processes are
/// different: they survive the agent (their own process group), heartbeat their own run and
/// report their own final state, so an SDK run started before the crash still Completes —
/// here one that sleeps for more than two leases, so it lives on its own heartbeats alone.
#[test]
fn agent_killed_with_runs_in_flight() {
    let lease_s = 3;
    let sdk_seconds = 2 * lease_s + 1;
    let mut w = Weir::start(ServerOptions { lease_s });
    let agent = w.start_agent(4);
    w.deploy(&toml(&format!(
        r#"[deployments.sleeper]
command = ["sh", "-c", "sleep 60"]
plain = true

[deployments.slow]
parameters = {{ seconds = {sdk_seconds} }}
"#
    )));
    let plain = [
        w.create_run("dev", "sleeper", params(&[])).id,
        w.create_run("dev", "sleeper", params(&[])).id,
    ];
    let sdk = w.create_run("dev", "slow", params(&[])).id;
    for id in plain.iter().chain([&sdk]) {
        w.wait_state(*id, StateKind::Running, Duration::from_secs(20));
    }
    let sdk_pid = w.flow_pid(&w.agent_home(agent), sdk);
    w.kill_agent(agent);
    let killed_at = std::time::Instant::now();

    for id in plain {
        let d = w.wait_terminal(id, Duration::from_secs(lease_s + 5));
        assert_eq!(d.run.state, StateKind::Crashed, "{}", describe(&d));
        let msg = d.run.state_message.clone().unwrap_or_default();
        assert!(msg.contains("lease expired"), "names the lease: {msg}");
    }
    assert!(
        killed_at.elapsed() >= Duration::from_secs(1),
        "crashes come from lease expiry, not sooner"
    );

    let d = w.wait_terminal(sdk, Duration::from_secs(15));
    assert_eq!(
        d.run.state,
        StateKind::Completed,
        "the SDK run outlives its agent: {}",
        describe(&d)
    );
    let result = d
        .run
        .result
        .clone()
        .expect("a Completed SDK run has a result location");
    let path = result
        .location
        .strip_prefix("file://")
        .expect("local storage");
    let bytes = std::fs::read(path).expect("the result is in the result storage");
    assert_eq!(result.size, bytes.len() as u64);
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&bytes).expect("json"),
        json!(sdk_seconds)
    );
    wait_until(
        "the SDK flow process to exit",
        Duration::from_secs(5),
        || {
            if is_alive(sdk_pid) {
                Err("alive".into())
            } else {
                Ok(())
            }
        },
    );
}

/// An agent restarted over the same state directory takes over the live run of the agent
/// that was killed, instead of letting it be relaunched: one launch, Completed.
#[test]
fn restarted_agent_takes_over_live_runs() {
    let mut w = Weir::start(ServerOptions { lease_s: 5 });
    let a = w.start_agent(4);
    // A retry is allowed, so a lost run would be relaunched (and show up as attempt 2).
    w.deploy(&toml(
        "[deployments.slow]\nparameters = { seconds = 6 }\nretries = 1\nretry_delay = \"0s\"\n",
    ));
    let id = w.run_cli("dev/slow", &[]);
    w.wait_state(id, StateKind::Running, Duration::from_secs(20));
    let home = w.agent_home(a);
    let pid = w.flow_pid(&home, id);
    w.kill_agent(a);
    assert!(is_alive(pid), "the flow process outlives its agent");

    let b = w.start_agent_in(&home, 4);
    let d = w.wait_terminal(id, Duration::from_secs(20));
    assert_eq!(d.run.state, StateKind::Completed, "{}", describe(&d));
    assert_eq!(d.run.attempt, 1, "{}", describe(&d));
    assert_eq!(
        w.sb.witness(),
        vec![(id, 1)],
        "exactly one launch of the run"
    );
    assert!(
        w.agent_log(b).contains("taking over a run"),
        "agent B adopted the run: {}",
        w.agent_log(b)
    );
    // The supervision record is cleaned up once the run is settled.
    let record = home.join("agent").join(format!("{id}.json"));
    wait_until(
        "agent B to remove the run's record",
        Duration::from_secs(5),
        || {
            if record.exists() {
                Err("still there".into())
            } else {
                Ok(())
            }
        },
    );
}

/// Regression (#10, the fault suite's `kill_agent`): a flow process that ends while its agent
/// is down leaves output in its spool that nobody shipped. The restarted agent must resolve the
/// launch's secrets again to redact it; it looked them up in the deployment, which its agent
/// key may not read, took them for unknowable and removed the spool unsent. Every stdout line
/// reaches the run's logs once, the secret in none, and the spool and record are removed.
#[test]
fn output_of_a_run_that_ended_while_its_agent_was_down_is_shipped_by_the_next_start() {
    const TICKS: usize = 20;
    let canary = format!("canary-{}", uuid::Uuid::now_v7().simple());
    let mut w = Weir::start(ServerOptions { lease_s: 10 });
    let home = w.sb.path("agent-a");
    let env = [("E2E_CANARY", canary.as_str())];
    let a = w.start_agent_env(&home, 4, &env);
    w.deploy(&toml(&format!(
        "[deployments.ticker]\nflow = \"witness\"\n\
         parameters = {{ ticks = {TICKS}, interval_ms = 100 }}\n\
         secrets = {{ CANARY = \"env:E2E_CANARY\" }}\n"
    )));
    let id = w.run_cli("dev/ticker", &[]);
    w.wait_state(id, StateKind::Running, Duration::from_secs(20));
    let pid = w.flow_pid(&home, id);
    w.kill_agent(a);
    // The flow reports its own end; its last lines are only in the spool.
    let d = w.wait_terminal(id, Duration::from_secs(30));
    assert_eq!(d.run.state, StateKind::Completed, "{}", describe(&d));
    wait_until("the flow process to exit", Duration::from_secs(10), || {
        if is_alive(pid) {
            Err("alive".into())
        } else {
            Ok(())
        }
    });
    let b = w.start_agent_env(&home, 4, &env);
    let want: Vec<String> = (1..=TICKS)
        .map(|n| format!("stdout tick {n}/{TICKS} attempt 1"))
        .collect();
    let printed = wait_until(
        "every stdout line in the logs",
        Duration::from_secs(30),
        || {
            let messages = messages(&w, id)?;
            let printed: Vec<String> = messages
                .iter()
                .filter(|m| m.starts_with("stdout tick "))
                .cloned()
                .collect();
            if printed.len() >= TICKS {
                Ok((printed, messages))
            } else {
                Err(format!(
                    "{} of {TICKS} lines; agent: {}",
                    printed.len(),
                    w.agent_log(b)
                ))
            }
        },
    );
    assert_eq!(printed.0, want, "every printed line once, in order");
    assert!(
        printed.1.iter().all(|m| !m.contains(&canary)),
        "the secret is redacted: {:?}",
        printed.1
    );
    let spool = home.join("agent").join("spool").join(id.to_string());
    let record = home.join("agent").join(format!("{id}.json"));
    wait_until(
        "the spool and the record to be removed",
        Duration::from_secs(10),
        || {
            if spool.exists() || record.exists() {
                Err(format!(
                    "spool {}, record {}",
                    spool.exists(),
                    record.exists()
                ))
            } else {
                Ok(())
            }
        },
    );
}

/// The secret store is down when an agent takes over a plain command that ended while no agent
/// ran: the run is settled (Completed, by the exit status its supervisor recorded) and its
/// spooled output is kept unsent, then shipped once the store answers again, without a
/// restart: every line once, in order, the secret redacted; spool and record removed after.
/// Regression (#10): the spool was removed unsent, losing every line printed after the kill.
#[test]
fn spooled_output_waits_for_its_secret_store_and_is_shipped_once_it_answers() {
    let canary = format!("canary-{}", uuid::Uuid::now_v7().simple());
    let mut w = Weir::start(ServerOptions { lease_s: 10 });
    let (secret, away) = (w.sb.path("canary.secret"), w.sb.path("canary.away"));
    std::fs::write(&secret, &canary).expect("write the secret");
    let home = w.sb.path("agent-a");
    let a = w.start_agent_in(&home, 4);
    w.deploy(&toml(&format!(
        "[deployments.late]\nplain = true\nsecrets = {{ CANARY = \"file:{}\" }}\n\
         command = [\"sh\", \"-c\", \"echo started; sleep 2; echo using $CANARY; \
         for i in 1 2 3; do echo late $i; done\"]\n",
        secret.display()
    )));
    let id = w.run_cli("dev/late", &[]);
    wait_until("the first line", Duration::from_secs(20), || {
        let m = messages(&w, id)?;
        m.contains(&"started".to_string())
            .then_some(())
            .ok_or(format!("{m:?}"))
    });
    let pid = w.flow_pid(&home, id);
    w.kill_agent(a);
    wait_until("the command to exit", Duration::from_secs(10), || {
        if is_alive(pid) {
            Err("alive".into())
        } else {
            Ok(())
        }
    });
    // The store stops answering: the file the reference names is gone.
    std::fs::rename(&secret, &away).expect("take the secret away");
    let b = w.start_agent_in(&home, 4);
    let d = w.wait_terminal(id, Duration::from_secs(20));
    assert_eq!(d.run.state, StateKind::Completed, "{}", describe(&d));
    let spool = home.join("agent").join("spool").join(id.to_string());
    let record = home.join("agent").join(format!("{id}.json"));
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        messages(&w, id).expect("logs"),
        ["started"],
        "{}",
        w.agent_log(b)
    );
    assert!(
        spool.exists() && record.exists(),
        "kept: {}",
        w.agent_log(b)
    );
    std::fs::rename(&away, &secret).expect("bring the secret back");
    let want = ["started", "using ***", "late 1", "late 2", "late 3"];
    let got = wait_until("every line", Duration::from_secs(30), || {
        let m = messages(&w, id)?;
        if m.len() >= want.len() {
            Ok(m)
        } else {
            Err(format!("{m:?}"))
        }
    });
    assert_eq!(got, want, "once each, in order, redacted");
    assert!(!w.agent_log(b).contains(&canary));
    wait_until(
        "the spool and the record to go",
        Duration::from_secs(10),
        || {
            if spool.exists() || record.exists() {
                Err("still there".into())
            } else {
                Ok(())
            }
        },
    );
}

/// Three agents race for 300 queued runs: every run is launched exactly once and Completes.
#[test]
fn agents_race_for_queued_runs_without_double_launch() {
    const RUNS: usize = 300;
    let mut w = Weir::start(ServerOptions { lease_s: 30 });
    w.deploy(&toml(
        "[deployments.chain1]\nflow = \"chain\"\nparameters = { n = 1 }\n",
    ));
    let started = std::time::Instant::now();
    let mut ids = HashSet::new();
    for _ in 0..RUNS {
        ids.insert(w.create_run("dev", "chain1", params(&[])).id);
    }
    assert_eq!(ids.len(), RUNS);
    for _ in 0..3 {
        w.start_agent(8);
    }
    let runs = wait_until("all runs to end", Duration::from_secs(150), || {
        let runs = w.all_runs("dev", "chain1");
        if runs.len() == RUNS && runs.iter().all(|r| r.state.is_terminal()) {
            Ok(runs)
        } else {
            Err(format!(
                "{} runs: {:?}",
                runs.len(),
                common::count_states(&runs)
            ))
        }
    });
    eprintln!("{RUNS} runs over 3 agents took {:?}", started.elapsed());
    assert!(
        runs.iter()
            .all(|r| r.state == StateKind::Completed && r.attempt == 1),
        "all Completed on attempt 1: {:?}",
        common::count_states(&runs)
    );
    let witness = w.sb.witness();
    assert_eq!(witness.len(), RUNS, "one launch per run");
    let launched: HashSet<_> = witness.iter().map(|(id, _)| *id).collect();
    assert_eq!(launched, ids, "every run launched, each once");
    assert!(witness.iter().all(|(_, a)| *a == 1), "all attempt 1");
}

/// A flow whose attempt fails while a retry remains says what happened — the attempt failed
/// and a retry is scheduled — and never that the run is "no longer held by this process" or
/// that it was "cancelled by SIGTERM" (which users read as something killing their flow): in
/// the flow's own output (shipped as the run's logs) and in the agent's log. Both attempts
/// run to their own end: the second one fails for good and says nothing of a retry.
#[test]
fn a_failed_attempt_with_a_retry_left_says_so() {
    let mut w = Weir::start(ServerOptions::default());
    w.start_agent(1);
    w.deploy(&toml(
        "[deployments.fails]\nretries = 1\nretry_delay = \"1s\"\n",
    ));
    let run = w.create_run("dev", "fails", Default::default());
    let done = w.wait_state(run.id, StateKind::Failed, Duration::from_secs(60));
    assert_eq!(
        (done.run.attempt, done.run.retries_used),
        (2, 1),
        "{}",
        describe(&done)
    );
    assert_eq!(
        done.history
            .iter()
            .filter(|s| s.state == StateKind::AwaitingRetry)
            .count(),
        1,
        "one retry: {}",
        describe(&done)
    );
    // The flow's stderr reaches the run's logs through the agent, after the run ends.
    let lines = wait_until(
        "the flow's lines of both attempts in the run's logs",
        Duration::from_secs(20),
        || {
            let lines: Vec<String> = w
                .block_on(w.client.logs(run.id, 0, 1000))
                .map_err(|e| e.to_string())?
                .items
                .into_iter()
                .map(|l| l.message)
                .collect();
            let failures = lines
                .iter()
                .filter(|l| l.contains("the source table 'orders' does not exist"))
                .count();
            if failures >= 2 && lines.iter().any(|l| l.contains("retry 1 of 1")) {
                Ok(lines)
            } else {
                Err(format!("{lines:#?}"))
            }
        },
    );
    let said: Vec<&String> = lines
        .iter()
        .filter(|l| l.contains("attempt 1 failed; retry 1 of 1 is scheduled at "))
        .collect();
    assert_eq!(said.len(), 1, "the flow says it once: {lines:#?}");
    assert!(
        said[0].contains("(Failed reported)"),
        "and what it reported: {}",
        said[0]
    );
    let agent = w.agent_log(0);
    for wrong in [
        "no longer held",
        "cancelled by SIGTERM",
        "cancellation requested",
        "retry 2 of",
    ] {
        assert!(
            !lines.iter().any(|l| l.contains(wrong)),
            "the flow never says {wrong:?}: {lines:#?}"
        );
        assert!(
            !agent.contains(wrong),
            "the agent never says {wrong:?}:\n{agent}"
        );
    }
    assert_eq!(
        w.sb.witness()
            .iter()
            .filter(|(id, _)| *id == run.id)
            .map(|(_, a)| *a)
            .collect::<Vec<_>>(),
        [1, 2],
        "each attempt ran once, to its own end"
    );
}
