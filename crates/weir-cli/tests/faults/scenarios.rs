//! The faults, one function each. Every scenario starts witness runs (ticks of a few hundred
//! milliseconds, so runs are mid-flight when the fault hits), injects one fault, heals it (or
//! leaves the system to heal itself), and returns; [`crate::runner`] then waits for the runs
//! and checks the invariants. Leases are 4 s, heartbeats at least every lease / 3.

use crate::cluster::{Cluster, Db, Spec};
use crate::common::wait_until;
use crate::runner::{Outcome, run};
use std::time::Duration;
use uuid::Uuid;
use weir_core::StateKind;

const LEASE_S: u64 = 4;
const SETTLE: Duration = Duration::from_secs(90);

fn spec(db: Db, replicas: usize, agents: usize) -> Spec {
    Spec {
        db,
        replicas,
        agents,
        limit: 4,
        lease_s: LEASE_S,
        db_delay_ms: 0,
        faketime: None,
        agent_delay_ms: 0,
        healthy: false,
    }
}

/// Creates `n` witness runs of `ticks` × `interval_ms`, spread over the replicas.
fn start_runs(c: &Cluster, n: usize, ticks: u64, interval_ms: u64) -> Vec<Uuid> {
    (0..n)
        .map(|i| c.create_run(i % c.servers.len(), ticks, interval_ms).id)
        .collect()
}

/// Waits until at least `k` of `ids` are Running.
fn wait_running(c: &Cluster, ids: &[Uuid], k: usize) {
    wait_until(
        &format!("{k} runs to be Running"),
        Duration::from_secs(30),
        || {
            let mut running = 0;
            for id in ids {
                if let Ok(d) = c.rt.block_on(c.clients[0].flow_run(*id))
                    && d.run.state == StateKind::Running
                {
                    running += 1;
                }
            }
            if running >= k {
                Ok(())
            } else {
                Err(format!("{running} Running"))
            }
        },
    );
}

/// Every scenario, by name, with whether the trimmed CI suite runs it.
pub const ALL: [(&str, bool); 15] = [
    ("kill_server", true),
    ("kill_agent", true),
    ("kill_both", true),
    ("kill_flow", true),
    ("kill_replica_mid_claim", false),
    ("pg_restart", false),
    ("pg_stop_beyond_lease", false),
    ("partition_short", true),
    ("partition_long", true),
    ("sqlite_disk_full", false),
    ("clock_step", true),
    ("slow_db", false),
    ("slow_link", false),
    ("scale_pg", false),
    ("scale_sqlite", false),
];

/// Runs scenario `name`; `full` picks the full sizes (scale).
pub fn by_name(name: &str, full: bool) -> Outcome {
    match name {
        "kill_server" => kill_server(),
        "kill_agent" => kill_agent(),
        "kill_both" => kill_both(),
        "kill_flow" => kill_flow(),
        "kill_replica_mid_claim" => kill_replica_mid_claim(),
        "pg_restart" => pg_restart(),
        "pg_stop_beyond_lease" => pg_stop_beyond_lease(),
        "partition_short" => partition(false),
        "partition_long" => partition(true),
        "sqlite_disk_full" => sqlite_disk_full(),
        "clock_step" => clock_step(),
        "slow_db" => slow_db(),
        "slow_link" => slow_link(),
        "scale_pg" => scale(Db::Postgres, 2, full),
        "scale_sqlite" => scale(Db::Sqlite(None), 1, full),
        other => panic!("unknown scenario {other:?}; known: {ALL:?}"),
    }
}

fn kill_server() -> Outcome {
    run(
        "kill_server",
        "kill -9 of the only server mid-run, restarted 2 s later",
        spec(Db::Postgres, 1, 2),
        SETTLE,
        |c, notes| {
            let ids = start_runs(c, 6, 12, 250);
            wait_running(c, &ids, 4);
            c.kill_server(0);
            std::thread::sleep(Duration::from_secs(2));
            c.restart_server(0);
            notes.push("server down 2 s".into());
        },
    )
}

fn kill_agent() -> Outcome {
    run(
        "kill_agent",
        "kill -9 of an agent mid-run, restarted 1 s later (its flow processes live on)",
        spec(Db::Postgres, 1, 2),
        SETTLE,
        |c, _| {
            let ids = start_runs(c, 6, 12, 250);
            wait_running(c, &ids, 4);
            c.kill_agent(0);
            std::thread::sleep(Duration::from_secs(1));
            c.restart_agent(0);
        },
    )
}

fn kill_both() -> Outcome {
    run(
        "kill_both",
        "kill -9 of the server and an agent together, both restarted 1 s later",
        spec(Db::Postgres, 1, 2),
        SETTLE,
        |c, _| {
            let ids = start_runs(c, 6, 12, 250);
            wait_running(c, &ids, 4);
            c.kill_server(0);
            c.kill_agent(0);
            std::thread::sleep(Duration::from_secs(1));
            c.restart_server(0);
            c.restart_agent(0);
        },
    )
}

fn kill_flow() -> Outcome {
    run(
        "kill_flow",
        "kill -9 of two flow processes mid-run (the deployment retries twice)",
        spec(Db::Postgres, 1, 2),
        SETTLE,
        |c, notes| {
            let ids = start_runs(c, 4, 12, 250);
            wait_running(c, &ids, 4);
            std::thread::sleep(Duration::from_millis(700));
            let mut killed = 0;
            for id in &ids[..2] {
                for pid in c.flow_pids(*id) {
                    crate::common::signal(pid, "KILL");
                    killed += 1;
                }
            }
            notes.push(format!("killed {killed} flow processes"));
        },
    )
}

fn kill_replica_mid_claim() -> Outcome {
    run(
        "kill_replica_mid_claim",
        "kill -9 of one of two replicas while 24 runs are being claimed, restarted 1 s later",
        spec(Db::Postgres, 2, 4),
        SETTLE,
        |c, _| {
            let ids: Vec<Uuid> = (0..12).map(|_| c.create_run(1, 3, 100).id).collect();
            c.kill_server(0);
            let more: Vec<Uuid> = (0..12).map(|_| c.create_run(1, 3, 100).id).collect();
            std::thread::sleep(Duration::from_secs(1));
            c.restart_server(0);
            let _ = (ids, more);
        },
    )
}

fn pg_restart() -> Outcome {
    run(
        "pg_restart",
        "kill -9 of PostgreSQL mid-run and an immediate restart (2 replicas)",
        spec(Db::Postgres, 2, 2),
        SETTLE,
        |c, _| {
            let ids = start_runs(c, 6, 12, 250);
            wait_running(c, &ids, 4);
            if let Some(pg) = c.pg.as_mut() {
                pg.kill();
                pg.resume();
            }
        },
    )
}

fn pg_stop_beyond_lease() -> Outcome {
    run(
        "pg_stop_beyond_lease",
        "PostgreSQL stopped for 2.5 leases (10 s) mid-run, then started",
        spec(Db::Postgres, 2, 2),
        SETTLE,
        |c, _| {
            let ids = start_runs(c, 6, 16, 250);
            wait_running(c, &ids, 4);
            if let Some(pg) = c.pg.as_mut() {
                pg.stop();
                std::thread::sleep(Duration::from_secs(LEASE_S * 5 / 2));
                pg.resume();
            }
        },
    )
}

fn partition(long: bool) -> Outcome {
    let (name, cut) = if long {
        ("partition_long", Duration::from_secs(LEASE_S * 3))
    } else {
        ("partition_short", Duration::from_millis(LEASE_S * 1000 / 2))
    };
    run(
        name,
        &format!(
            "agent a1's host cut off from the server for {:.0} s ({} the {LEASE_S} s lease)",
            cut.as_secs_f64(),
            if long { "longer than" } else { "shorter than" }
        ),
        spec(Db::Postgres, 1, 2),
        SETTLE,
        |c, notes| {
            let ids = start_runs(c, 6, 30, 250);
            wait_running(c, &ids, 6);
            let host = c.agents[0].host.clone();
            c.net.cut(&host);
            std::thread::sleep(cut);
            c.net.heal(&host);
            notes.push(format!("a1 partitioned {cut:?}"));
        },
    )
}

fn sqlite_disk_full() -> Outcome {
    run(
        "sqlite_disk_full",
        "the SQLite file's disk (an 8 MiB tmpfs) full for 4 s mid-run",
        spec(Db::Sqlite(Some(8 * 1024)), 1, 2),
        SETTLE,
        |c, notes| {
            let ids = start_runs(c, 6, 16, 250);
            wait_running(c, &ids, 4);
            let Some(fs) = c.tmpfs().map(|p| p.to_path_buf()) else {
                panic!("no tmpfs");
            };
            let filler = fs.join("filler");
            let out = std::process::Command::new("dd")
                .args(["if=/dev/zero", "bs=64k"])
                .arg(format!("of={}", filler.display()))
                .output()
                .expect("run dd");
            notes.push(format!(
                "filled the disk: {}",
                String::from_utf8_lossy(&out.stderr)
                    .lines()
                    .last()
                    .unwrap_or_default()
            ));
            std::thread::sleep(Duration::from_secs(4));
            let _ = std::fs::remove_file(&filler);
        },
    )
}

fn clock_step() -> Outcome {
    let mut s = spec(Db::Postgres, 2, 2);
    s.faketime = Some(1);
    run(
        "clock_step",
        "replica s2's wall clock stepped +1 h mid-run, then -1 h (libfaketime)",
        s,
        SETTLE,
        |c, _| {
            let ids = start_runs(c, 6, 16, 250);
            wait_running(c, &ids, 4);
            c.step_clock(3600);
            std::thread::sleep(Duration::from_secs(LEASE_S + 2));
            c.step_clock(-3600);
            let _ = start_runs(c, 4, 4, 100);
        },
    )
}

fn slow_db() -> Outcome {
    let mut s = spec(Db::Postgres, 2, 2);
    s.db_delay_ms = 1;
    run(
        "slow_db",
        "50 ms added each way between the replicas and PostgreSQL mid-run, for 10 s",
        s,
        SETTLE,
        |c, _| {
            let ids = start_runs(c, 6, 16, 250);
            wait_running(c, &ids, 4);
            c.set_db_delay(Duration::from_millis(50));
            let _ = start_runs(c, 4, 4, 100);
            std::thread::sleep(Duration::from_secs(10));
            c.set_db_delay(Duration::from_millis(1));
        },
    )
}

/// Heartbeats answered later than their interval are no lost lease: the server renewed it
/// (regression: the agent gave up on each answer after the 1 s interval and fenced every run of
/// a1 3.4 s in, retried on a2).
fn slow_link() -> Outcome {
    let mut s = spec(Db::Postgres, 1, 2);
    s.agent_delay_ms = 600;
    s.healthy = true;
    run(
        "slow_link",
        "600 ms added each way between agent a1 (and its flows) and the server, throughout: \
         each heartbeat answered after its 1 s interval",
        s,
        SETTLE,
        |c, notes| {
            let ids = start_runs(c, 6, 24, 250);
            wait_running(c, &ids, 6);
            notes.push("6 runs of 6 s, a1's heartbeats answered in ≥ 1.2 s".into());
        },
    )
}

fn scale(db: Db, replicas: usize, full: bool) -> Outcome {
    let (batches, per) = if full { (20, 500) } else { (2, 60) };
    let name = if db == Db::Postgres {
        "scale_pg"
    } else {
        "scale_sqlite"
    };
    let mut s = spec(db, replicas, 8);
    s.limit = 8;
    run(
        name,
        &format!("8 agents on {replicas} replica(s) race for {batches} × {per} runs"),
        s,
        Duration::from_secs(if full { 3600 } else { 120 }),
        move |c, notes| {
            let t = std::time::Instant::now();
            c.create_runs(batches * per);
            notes.push(format!(
                "{} runs created in {:.1} s",
                batches * per,
                t.elapsed().as_secs_f64()
            ));
        },
    )
}
