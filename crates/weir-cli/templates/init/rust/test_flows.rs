//! Runs the flows binary as a process, as an agent would (no server): `cargo test`.

use std::process::Command;

fn flows(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_flows"))
        .args(args)
        .env_remove("WEIR_API_URL")
        .output()
        .expect("run the flows binary")
}

#[test]
fn describe_lists_the_flow() {
    let out = flows(&["describe"]);
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("\"hello\""));
}

#[test]
fn hello_sums_the_squares() {
    let out = flows(&["run", "hello", "--param", "items=3"]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "14");
}
