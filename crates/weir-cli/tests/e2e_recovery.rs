//! Recovery from a crash of `weir up` (server and agent in one process) with a flow run in
//! flight, exactly as a user meets it: real `weir up` processes, a real flow process, a real
//! `kill -9`.

mod common;

use common::{
    Sandbox, ServerOptions, Weir, describe, flows_bin, is_alive, params, result_value, wait_until,
};
use std::path::Path;
use std::time::Duration;
use uuid::Uuid;
use weir_client::Client;
use weir_core::StateKind;
use weir_core::api::FlowRunDetail;

/// A loopback port nobody listens on now (the restarted `weir up` must take the same one:
/// the flow process keeps the URL it was launched with).
fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    l.local_addr().expect("local address").port()
}

/// Run `id` once its state satisfies `pred`, waiting at most `timeout` (`what` names the wait).
fn wait_run(
    rt: &tokio::runtime::Runtime,
    client: &Client,
    id: Uuid,
    what: &str,
    pred: &dyn Fn(StateKind) -> bool,
    timeout: Duration,
) -> FlowRunDetail {
    wait_until(&format!("run {id} {what}"), timeout, || {
        let d = rt
            .block_on(client.flow_run(id))
            .map_err(|e| e.to_string())?;
        if pred(d.run.state) {
            Ok(d)
        } else {
            Err(describe(&d))
        }
    })
}

/// `weir up` on `bind` (process `name`, home `home`, environment `env`), with a runtime and
/// an API client for it once it answers; the process's index.
fn start_up(
    sb: &mut Sandbox,
    name: &str,
    home: &Path,
    bind: &str,
    env: &[(&str, &str)],
) -> (usize, tokio::runtime::Runtime, Client) {
    let up = sb.spawn(name, &["up", "--bind", bind], home, env);
    let url = sb.wait_server_url(home, Duration::from_secs(30));
    let key = sb.wait_admin_key(home, Duration::from_secs(30));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let client = Client::new(&url, Some(key)).expect("API client");
    (up, rt, client)
}

/// `weir run TARGET` through `weir up`'s home: the new run's id.
fn start_run(sb: &Sandbox, home: &Path, target: &str) -> Uuid {
    let out = sb
        .cli(None, home, &["run", target], Duration::from_secs(20))
        .ok();
    Uuid::parse_str(out.stdout.trim())
        .unwrap_or_else(|_| panic!("`weir run` printed a run id: {out:#?}"))
}

/// Exactly one launch of run `id` (`weir up` also deploys a schedule of its own: only this
/// run's launches count).
fn launched_once(sb: &Sandbox, id: Uuid) {
    let launches: Vec<_> = sb.witness().into_iter().filter(|(r, _)| *r == id).collect();
    assert_eq!(launches, vec![(id, 1)], "exactly one launch of the run");
}

/// Run `id`'s log lines starting with `prefix`, once there are as many as `want` (waiting
/// `what` at most 30 s).
fn wait_lines(
    rt: &tokio::runtime::Runtime,
    client: &Client,
    id: Uuid,
    what: &str,
    prefix: &str,
    want: &[String],
) -> Vec<String> {
    wait_until(what, Duration::from_secs(30), || {
        let logs = rt
            .block_on(client.logs(id, 0, 1000))
            .map_err(|e| e.to_string())?;
        let printed: Vec<String> = logs
            .items
            .iter()
            .map(|l| l.message.clone())
            .filter(|m| m.starts_with(prefix))
            .collect();
        if printed.len() >= want.len() {
            Ok(printed)
        } else {
            Err(format!("{} of {} lines", printed.len(), want.len()))
        }
    })
}

/// Issue 10: `weir up`, `weir run dev/slow --param seconds=10`, after 3 s `kill -9` of
/// `weir up`, start it again 1 s later. The flow process outlives both its agent and its
/// server; it must still deliver every report itself, so the run ends Completed with its
/// result, all ten log lines exactly once, every task run terminal, and one launch.
#[test]
fn weir_up_killed_mid_run_ends_completed_with_all_logs() {
    let mut sb = Sandbox::new();
    let home = sb.path("up");
    let bind = format!("127.0.0.1:{}", free_port());
    let flows_dir = flows_bin().parent().expect("a directory").to_path_buf();
    let path = format!(
        "{}:{}",
        flows_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let env = [("PATH", path.as_str())];
    let (up, rt, client) = start_up(&mut sb, "up-1", &home, &bind, &env);
    wait_until("dev/slow to be deployed", Duration::from_secs(30), || {
        rt.block_on(client.deployment("dev", "slow"))
            .map(|_| ())
            .map_err(|e| e.to_string())
    });

    let out = sb.cli(
        None,
        &home,
        &["run", "dev/slow", "--param", "seconds=10"],
        Duration::from_secs(20),
    );
    let out = out.ok();
    let id = Uuid::parse_str(out.stdout.trim())
        .unwrap_or_else(|_| panic!("`weir run` printed a run id: {out:#?}"));
    let detail = |what: &str, pred: &dyn Fn(StateKind) -> bool, timeout: Duration| {
        wait_run(&rt, &client, id, what, pred, timeout)
    };
    detail(
        "to be Running",
        &|s| s == StateKind::Running,
        Duration::from_secs(20),
    );
    std::thread::sleep(Duration::from_secs(3));
    sb.kill(up);
    std::thread::sleep(Duration::from_secs(1));
    let _up2 = sb.spawn("up-2", &["up", "--bind", &bind], &home, &env);

    let d = detail("to end", &|s| s.is_terminal(), Duration::from_secs(60));
    assert_eq!(d.run.state, StateKind::Completed, "{}", describe(&d));
    assert_eq!(
        result_value(&d.run),
        Some(serde_json::json!(10)),
        "{}",
        describe(&d)
    );
    assert_eq!(d.run.attempt, 1, "{}", describe(&d));
    launched_once(&sb, id);
    every_slept_line_once(&rt, &client, id);
    every_task_run_completed(&rt, &client, id);
}

/// Every log line of the `slow` run `id` (ten seconds) exactly once, in order, including
/// those after the kill.
fn every_slept_line_once(rt: &tokio::runtime::Runtime, client: &Client, id: Uuid) {
    let logs = rt
        .block_on(client.logs(id, 0, 1000))
        .expect("read the run's logs");
    let slept: Vec<&str> = logs
        .items
        .iter()
        .map(|l| l.message.as_str())
        .filter(|m| m.starts_with("slept "))
        .collect();
    let expected: Vec<String> = (1..=10).map(|s| format!("slept {s}/10 s")).collect();
    assert_eq!(
        slept, expected,
        "every log line exactly once, in order, including those after the kill"
    );
}

/// Run `id` ran its task, and every task run of it is Completed.
fn every_task_run_completed(rt: &tokio::runtime::Runtime, client: &Client, id: Uuid) {
    let tasks = rt
        .block_on(client.task_runs(id, None, 100))
        .expect("read the run's task runs");
    assert!(!tasks.items.is_empty(), "the flow ran its task");
    for t in &tasks.items {
        assert_eq!(
            t.state,
            StateKind::Completed,
            "task run {} ({}) is {}",
            t.id,
            t.task,
            t.state
        );
    }
}

/// #10, the flow's own output: a flow that prints a line to stdout every 100 ms (the
/// `witness` flow, 100 ticks) while `weir up` is killed with `kill -9` and started again 1 s
/// later. Its stdout goes to the agent's spool, not a pipe, so the lines printed while no
/// agent was alive are not lost: the restarted agent reads the spool again from its start and
/// the server keeps each line once. The run is Completed, every printed line is in its logs
/// exactly once and in order, and the spool is removed afterwards.
#[test]
fn weir_up_killed_mid_run_keeps_every_stdout_line() {
    let mut sb = Sandbox::new();
    let home = sb.path("up");
    let bind = format!("127.0.0.1:{}", free_port());
    let (up, rt, client) = start_up(&mut sb, "up-1", &home, &bind, &[]);
    std::fs::write(
        sb.path("project/weir.toml"),
        format!(
            "project = \"dev\"\n\n[deployments.ticker]\nflow = \"witness\"\ncommand = [{:?}]\n\
             parameters = {{ ticks = 100, interval_ms = 100 }}\n",
            flows_bin().display().to_string()
        ),
    )
    .expect("write weir.toml");
    sb.cli(None, &home, &["deploy"], Duration::from_secs(30))
        .ok();
    let id = start_run(&sb, &home, "dev/ticker");
    let detail = |what: &str, pred: &dyn Fn(StateKind) -> bool, timeout: Duration| {
        wait_run(&rt, &client, id, what, pred, timeout)
    };
    detail(
        "to be Running",
        &|s| s == StateKind::Running,
        Duration::from_secs(20),
    );
    std::thread::sleep(Duration::from_secs(3));
    sb.kill(up);
    let killed = now_us();
    std::thread::sleep(Duration::from_secs(1));
    let restarted = now_us();
    let _up2 = sb.spawn("up-2", &["up", "--bind", &bind], &home, &[]);

    let d = detail("to end", &|s| s.is_terminal(), Duration::from_secs(90));
    assert_eq!(d.run.state, StateKind::Completed, "{}", describe(&d));
    assert_eq!(d.run.attempt, 1, "{}", describe(&d));
    launched_once(&sb, id);
    ticks_were_printed_while_down(&sb, id, killed, restarted);

    // The agent's shipping of the spool ends after the run's end: wait for the last line.
    let want: Vec<String> = (1..=100)
        .map(|n| format!("stdout tick {n}/100 attempt 1"))
        .collect();
    let printed = wait_lines(
        &rt,
        &client,
        id,
        "every stdout line in the logs",
        "stdout tick ",
        &want,
    );
    assert_eq!(
        printed, want,
        "every printed line exactly once, in order, including those printed while the agent was down"
    );
    let spool = home.join("agent").join("spool").join(id.to_string());
    wait_until(
        "the run's spool to be removed",
        Duration::from_secs(30),
        || {
            if spool.exists() {
                Err(format!("{} is still there", spool.display()))
            } else {
                Ok(())
            }
        },
    );
}

/// The flow's own record of its ticks: every tick of run `id` once, some printed while no
/// agent was alive (between `killed` and `restarted`, in µs since the epoch).
fn ticks_were_printed_while_down(sb: &Sandbox, id: Uuid, killed: u64, restarted: u64) {
    let events = std::fs::read_to_string(sb.shared().join("events.log")).unwrap_or_default();
    let ticks: Vec<(u64, u64)> = events
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            (f.len() >= 5 && f[0] == "tick" && f[1] == id.to_string())
                .then(|| Some((f[3].parse().ok()?, f[4].parse().ok()?)))
                .flatten()
        })
        .collect();
    assert_eq!(
        ticks.iter().map(|t| t.0).collect::<Vec<_>>(),
        (1..=100).collect::<Vec<_>>(),
        "the flow ran every tick once"
    );
    let while_down = ticks
        .iter()
        .filter(|(_, at)| *at > killed && *at < restarted)
        .count();
    assert!(
        while_down >= 3,
        "the flow printed lines while no agent was alive (ticks {killed}..{restarted}: {while_down})"
    );
}

/// #10, a plain command (no SDK: its state is its exit code) taken over after `kill -9` of
/// `weir up`: its process outlives the agent, whose successor cannot wait for a process it did
/// not start. The agent launches it under `weir supervise`, which records its end, so the run
/// ends with its true end — Failed naming exit code 3, every line in its logs — not Crashed.
#[test]
fn plain_command_taken_over_after_weir_up_killed_ends_by_its_exit_code() {
    let mut sb = Sandbox::new();
    let home = sb.path("up");
    let bind = format!("127.0.0.1:{}", free_port());
    let (up, rt, client) = start_up(&mut sb, "up-1", &home, &bind, &[]);
    let script = sb.path("project/count.sh");
    std::fs::write(
        &script,
        "#!/bin/sh\nfor i in 1 2 3 4 5 6 7 8; do echo \"line $i\"; sleep 1; done\nexit 3\n",
    )
    .expect("write the script");
    std::fs::write(
        sb.path("project/weir.toml"),
        format!(
            "project = \"dev\"\n\n[deployments.count]\ncommand = [\"sh\", {:?}]\nplain = true\n",
            script.display().to_string()
        ),
    )
    .expect("write weir.toml");
    sb.cli(None, &home, &["deploy"], Duration::from_secs(30))
        .ok();
    let id = start_run(&sb, &home, "dev/count");
    wait_run(
        &rt,
        &client,
        id,
        "to be Running",
        &|s| s == StateKind::Running,
        Duration::from_secs(20),
    );
    std::thread::sleep(Duration::from_secs(2));
    sb.kill(up);
    std::thread::sleep(Duration::from_secs(1));
    let _up2 = sb.spawn("up-2", &["up", "--bind", &bind], &home, &[]);

    let d = wait_run(
        &rt,
        &client,
        id,
        "to end",
        &|s| s.is_terminal(),
        Duration::from_secs(60),
    );
    assert_eq!(d.run.state, StateKind::Failed, "{}", describe(&d));
    assert_eq!(d.run.attempt, 1, "{}", describe(&d));
    let msg = d.run.state_message.clone().unwrap_or_default();
    assert!(msg.contains("exit code 3"), "names the exit code: {msg}");
    let want: Vec<String> = (1..=8).map(|n| format!("line {n}")).collect();
    let printed = wait_lines(&rt, &client, id, "every line in the logs", "line ", &want);
    assert_eq!(printed, want, "every line once, in order");
}

fn now_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

/// The server is down when the flow ends, for longer than the flow process waits for it
/// (`WEIR_FLUSH_TIMEOUT_S=1`): the process leaves its final state in its outcome file and
/// exits; its agent, still alive, delivers that state once the server is back. The run is
/// Completed with its result — not Crashed because its process exited first.
#[test]
fn final_state_outlives_a_server_outage_through_the_agent() {
    let mut w = Weir::start(ServerOptions { lease_s: 30 });
    let home = w.sb.path("agent-0");
    let agent = w.start_agent_env(&home, 2, &[("WEIR_FLUSH_TIMEOUT_S", "1")]);
    w.deploy(
        "project = \"dev\"\n\n[defaults]\ncommand = [\"{flows}\"]\n\n\
         [deployments.slow]\nparameters = { seconds = 2 }\n",
    );
    let id = w.create_run("dev", "slow", params(&[])).id;
    w.wait_state(id, StateKind::Running, Duration::from_secs(20));
    let pid = w.flow_pid(&w.agent_home(agent), id);
    w.kill_server();
    wait_until("the flow process to exit", Duration::from_secs(30), || {
        if is_alive(pid) {
            Err("alive".into())
        } else {
            Ok(())
        }
    });
    w.restart_server(ServerOptions { lease_s: 30 });
    let d = w.wait_terminal(id, Duration::from_secs(60));
    assert_eq!(d.run.state, StateKind::Completed, "{}", describe(&d));
    assert_eq!(
        result_value(&d.run),
        Some(serde_json::json!(2)),
        "{}",
        describe(&d)
    );
    assert!(
        w.agent_log(agent)
            .contains("delivering the final state its process left"),
        "the agent delivered it: {}",
        w.agent_log(agent)
    );
    let outcomes = w.agent_home(agent).join("agent").join("outcomes");
    let left: Vec<_> = std::fs::read_dir(&outcomes)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "outcome files are removed: {left:?}");
}

/// #10: the SDK retries a log batch the server answers with a 500 (its database refused the
/// write — here the `logs` table is renamed away for 3 s, as a full disk or a lost database
/// refuses it) instead of dropping it: once the table is back, every line of the run is
/// stored, each once.
#[test]
fn log_lines_outlive_a_database_that_refuses_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("weir.db");
    let db_url = format!("sqlite://{}", db.display());
    let mut w = Weir::start_with(ServerOptions { lease_s: 30 }, &["--db", &db_url]);
    w.start_agent(2);
    w.deploy(
        "project = \"dev\"\n\n[defaults]\ncommand = [\"{flows}\"]\n\n\
         [deployments.slow]\nparameters = { seconds = 6 }\n",
    );
    let id = w.create_run("dev", "slow", params(&[])).id;
    w.wait_state(id, StateKind::Running, Duration::from_secs(20));
    let rename = |from: &str, to: &str| {
        let sql = format!("ALTER TABLE {from} RENAME TO {to}");
        w.block_on(async {
            use sqlx::ConnectOptions;
            let mut conn = sqlx::sqlite::SqliteConnectOptions::new()
                .filename(&db)
                .busy_timeout(Duration::from_secs(10))
                .connect()
                .await
                .expect("open the server's database");
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .execute(&mut conn)
                .await
                .expect("rename the logs table");
        });
    };
    std::thread::sleep(Duration::from_millis(1500));
    rename("logs", "logs_away");
    std::thread::sleep(Duration::from_secs(3));
    rename("logs_away", "logs");
    let d = w.wait_terminal(id, Duration::from_secs(60));
    assert_eq!(d.run.state, StateKind::Completed, "{}", describe(&d));
    let lines = w
        .block_on(w.client.logs(id, 0, 1000))
        .expect("read the run's logs")
        .items;
    for s in 1..=6 {
        let want = format!("slept {s}/6 s");
        let n = lines.iter().filter(|l| l.message == want).count();
        assert_eq!(
            n,
            1,
            "{want:?} stored {n} times; the run's lines: {:?}",
            lines.iter().map(|l| &l.message).collect::<Vec<_>>()
        );
    }
}
