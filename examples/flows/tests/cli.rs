//! The example flows binary as a real process: `describe`, `run` exit codes and output,
//! parameter errors, cancellation by SIGTERM, agent-provided run ids and the witness file.

use serde_json::Value;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_example-flows");

fn cmd(home: &std::path::Path) -> Command {
    let mut c = Command::new(BIN);
    c.env("WEIR_HOME", home)
        .env_remove("WEIR_RESULT_STORAGE")
        .env_remove("WEIR_FLOW_RUN_ID")
        .env_remove("WEIR_ATTEMPT")
        .env_remove("WEIR_RESUME")
        .env_remove("WEIR_PARAMETERS")
        .env_remove("WEIR_QUIET")
        .env_remove("WEIR_WITNESS_DIR")
        .env_remove("WEIR_BENCH_MARK_FILE");
    c
}

fn run(args: &[&str]) -> (Output, tempfile::TempDir) {
    let home = tempfile::tempdir().expect("tempdir");
    let out = cmd(home.path()).args(args).output().expect("spawn");
    (out, home)
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn stdout_json(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}): {:?}\nstderr: {}",
            String::from_utf8_lossy(&o.stdout),
            stderr(o)
        )
    })
}

#[test]
fn describe_lists_every_flow_with_schemas_and_tasks() {
    let (out, _h) = run(&["describe"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let doc = stdout_json(&out);
    let flows = doc["flows"].as_array().expect("flows");
    let names: Vec<&str> = flows.iter().filter_map(|f| f["name"].as_str()).collect();
    assert_eq!(
        names,
        [
            "witness",
            "etl",
            "chain",
            "fanout",
            "flaky",
            "slow",
            "fails",
            "leaky",
            "s3_download",
            "s3_roundtrip"
        ]
    );
    for f in flows {
        assert_eq!(f["parameters"]["type"], "object", "{}", f["name"]);
        assert_eq!(f["parameters"]["additionalProperties"], false);
    }
    let flow = |name: &str| {
        flows
            .iter()
            .find(|f| f["name"] == name)
            .unwrap_or_else(|| panic!("{name} is described"))
    };
    let chain = flow("chain");
    assert_eq!(chain["parameters"]["properties"]["n"]["type"], "integer");
    assert_eq!(chain["parameters"]["properties"]["n"]["default"], 10);
    let etl_tasks: Vec<&str> = flow("etl")["tasks"]
        .as_array()
        .expect("tasks")
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    assert_eq!(etl_tasks, ["clean", "extract", "summarize"]);
    let flaky_task = &flow("flaky")["tasks"][0];
    assert_eq!(flaky_task["name"], "unreliable");
    assert_eq!(flaky_task["retries"], 3);
}

#[test]
fn run_etl_completes_and_prints_its_result() {
    let (out, _h) = run(&["run", "etl"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v = stdout_json(&out);
    assert_eq!(v["rows"], 86);
    assert_eq!(v["dropped"], 14);
    let err = stderr(&out);
    assert!(err.contains("extract-0 Running"), "{err}");
    assert!(err.contains("extract-0 INFO extracted 100 rows"), "{err}");
    assert!(err.contains("etl Completed"), "{err}");
}

#[test]
fn run_chain_and_fanout_with_params() {
    let (out, _h) = run(&["run", "chain", "--param", "n=25"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout_json(&out), 25);
    let (out, _h) = run(&["run", "fanout", "--params-json", r#"{"n": 4}"#]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout_json(&out), 14);
}

#[test]
fn run_flaky_succeeds_after_two_retries() {
    let (out, _h) = run(&["run", "flaky"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout_json(&out), "succeeded on attempt 3");
    assert_eq!(stderr(&out).matches("AwaitingRetry").count(), 2);
}

#[test]
fn run_fails_exits_1_naming_the_task() {
    let (out, _h) = run(&["run", "fails"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    let err = stderr(&out);
    assert!(
        err.contains(
            "task 'load_orders' failed after 1 attempt: the source table 'orders' does not exist"
        ),
        "{err}"
    );
    assert!(err.contains("fails Failed"), "{err}");
}

#[test]
fn bad_parameters_exit_2_naming_them() {
    let (out, _h) = run(&["run", "chain", "--param", "n=nope"]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("parameter \"n\": expected an integer (uint32), got \"nope\""),
        "{err}"
    );
    let (out, _h) = run(&["run", "chain", "--param", "m=1"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("unknown parameter \"m\""),
        "{}",
        stderr(&out)
    );
    let (out, _h) = run(&["run", "nope"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("unknown flow \"nope\""),
        "{}",
        stderr(&out)
    );
    let (out, _h) = run(&["run", "chain", "--params-json", "{not json"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--params-json is not valid JSON"));
    let (out, _h) = run(&["run", "chain", "--param", "novalue"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("KEY=VALUE"));
    let (out, _h) = run(&["run", "chain", "--param", "n=-3"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("parameter \"n\""));
}

#[test]
fn sigterm_cancels_the_flow_run_quickly() {
    use std::io::BufRead;
    let home = tempfile::tempdir().expect("tempdir");
    let mut child = cmd(home.path())
        .args(["run", "slow", "--param", "seconds=30"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let stderr_pipe = child.stderr.take().expect("stderr");
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr_pipe)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(line);
        }
    });
    // Wait until the task runs (the signal handler is installed before the flow starts).
    let mut err = String::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !err.contains("nap-0 Running") {
        let line = rx
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .expect("the task starts");
        err.push_str(&line);
        err.push('\n');
    }
    let t0 = Instant::now();
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    let status = child.wait().expect("wait");
    assert!(t0.elapsed() < Duration::from_secs(3), "{:?}", t0.elapsed());
    reader.join().expect("reader");
    err.extend(rx.try_iter().map(|l| l + "\n"));
    assert_eq!(status.code(), Some(143), "{err}");
    assert!(err.contains("nap-0 Cancelled"), "{err}");
    assert!(
        err.contains("slow Cancelled: cancelled by SIGTERM"),
        "{err}"
    );
}

#[test]
fn agent_provided_run_id_attempt_and_witness() {
    let home = tempfile::tempdir().expect("tempdir");
    let id = uuid::Uuid::now_v7().to_string();
    let mark = home.path().join("marks.txt");
    for _ in 0..2 {
        let out = cmd(home.path())
            .args(["run", "chain", "--param", "n=2"])
            .env("WEIR_FLOW_RUN_ID", &id)
            .env("WEIR_ATTEMPT", "3")
            .env("WEIR_WITNESS_DIR", home.path())
            .env("WEIR_BENCH_MARK_FILE", &mark)
            .output()
            .expect("run");
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        assert!(
            stderr(&out).contains(&format!("(flow run {id}, attempt 3)")),
            "{}",
            stderr(&out)
        );
    }
    let witness = std::fs::read_to_string(home.path().join("witness.log")).expect("witness");
    assert_eq!(witness, format!("{id} 3\n{id} 3\n"));
    let marks = std::fs::read_to_string(&mark).expect("marks");
    let lines: Vec<&str> = marks.lines().collect();
    assert_eq!(lines.len(), 2);
    for l in lines {
        let (us, rid) = l.split_once(' ').expect("two fields");
        assert!(us.parse::<u128>().expect("micros") > 1_600_000_000_000_000);
        assert_eq!(rid, id);
    }
}

#[test]
fn quiet_mode_and_parameters_from_the_environment() {
    let home = tempfile::tempdir().expect("tempdir");
    let out = cmd(home.path())
        .args(["run", "chain"])
        .env("WEIR_QUIET", "1")
        .env("WEIR_PARAMETERS", r#"{"n": 3}"#)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout_json(&out), 3);
    assert!(!stderr(&out).contains("Running"), "{}", stderr(&out));
}
