//! `weir init`: the scaffolded flows repository, for each language, runs its flow, passes its
//! own tests and deploys to a real `weir server` as it is; an existing directory is refused.
//!
//! Needs `cargo build --workspace --bins` first. The Rust scaffold is built with cargo (its
//! dependencies pinned by this workspace's Cargo.lock, so it builds offline, into the same
//! target directory); the Python one runs with this checkout's SDK on PYTHONPATH.

mod common;

use common::{ServerOptions, Weir, weir_bin};
use std::path::{Path, PathBuf};
use std::process::Command;

fn checkout() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn init(args: &[&str]) -> std::process::Output {
    Command::new(weir_bin())
        .arg("init")
        .args(args)
        .output()
        .expect("run weir init")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// `weir deploy` from `dir` against `w`, with `env`; must succeed.
fn deploy(w: &Weir, dir: &Path, env: &[(&str, String)], args: &[&str]) -> String {
    let mut cmd = Command::new(weir_bin());
    cmd.arg("deploy")
        .args(args)
        .current_dir(dir)
        .env("WEIR_API_URL", &w.url)
        .env("WEIR_API_KEY", &w.admin_key)
        .env("WEIR_HOME", dir.join(".weir"));
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run weir deploy");
    assert!(out.status.success(), "weir deploy {args:?}: {out:?}");
    text(&out.stdout)
}

#[test]
fn python_scaffold_runs_and_deploys_unchanged() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("team-flows");
    let out = init(&[dir.to_str().expect("utf-8")]);
    assert!(out.status.success(), "{out:?}");
    for f in [
        "flows/hello.py",
        "tests/test_hello.py",
        "weir.toml",
        "Dockerfile",
        "scripts/rootfs.sh",
        ".github/workflows/deploy.yml",
        "buildspec.yml",
        "README.md",
    ] {
        assert!(dir.join(f).is_file(), "{f} scaffolded");
    }
    let readme = std::fs::read_to_string(dir.join("README.md")).expect("README");
    assert!(readme.contains("deploy/terraform/modules/weir") && readme.contains("docs/aws.md"));

    // The flow runs locally, as the scaffold's test and its README say.
    let sdk = checkout().join("sdk/python/src");
    let py = [("PYTHONPATH", sdk.display().to_string())];
    let run = Command::new("python3")
        .args(["-m", "weir", "flows", "run", "hello", "--param", "items=3"])
        .current_dir(&dir)
        .env("PYTHONPATH", &py[0].1)
        .env_remove("WEIR_API_URL")
        .output()
        .expect("python3");
    assert!(run.status.success(), "{run:?}");
    assert_eq!(text(&run.stdout).trim(), "14");

    // It deploys to a real server unchanged; a second deploy changes nothing.
    let w = Weir::start(ServerOptions::default());
    let first = deploy(&w, &dir, &py, &[]);
    assert!(first.contains("created  dev/hello (v1)"), "{first}");
    let again = deploy(&w, &dir, &py, &["--plan"]);
    assert!(again.contains("unchanged  dev/hello"), "{again}");
    let d = w
        .block_on(w.client.deployment("dev", "hello"))
        .expect("deployed");
    let schema = d.spec.parameter_schema.expect("schema from describe");
    assert!(schema.to_string().contains("items"), "{schema}");

    // An existing, non-empty directory is refused and left alone.
    let refused = init(&[dir.to_str().expect("utf-8")]);
    assert_eq!(refused.status.code(), Some(2), "{refused:?}");
    assert!(
        text(&refused.stderr).contains("is not empty"),
        "{refused:?}"
    );
}

#[test]
fn rust_scaffold_builds_tests_and_deploys_unchanged() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("rust-flows");
    let out = init(&["--lang", "rust", dir.to_str().expect("utf-8")]);
    assert!(out.status.success(), "{out:?}");
    let manifest = std::fs::read_to_string(dir.join("Cargo.toml")).expect("Cargo.toml");
    let sdk = checkout().join("crates/weir").canonicalize().expect("sdk");
    assert!(
        manifest.contains(&format!("weir = {{ path = \"{}\" }}", sdk.display())),
        "a path dependency on this checkout's SDK: {manifest}"
    );

    // Its own tests (which run the flows binary), built offline with the workspace's pins.
    std::fs::copy(checkout().join("Cargo.lock"), dir.join("Cargo.lock")).expect("lock");
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| checkout().join("target"));
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let test = Command::new(&cargo)
        .args(["test", "--offline", "--quiet"])
        .current_dir(&dir)
        .env("CARGO_TARGET_DIR", &target)
        .env_remove("WEIR_API_URL")
        .output()
        .expect("cargo test");
    assert!(
        test.status.success(),
        "cargo test of the scaffold: {test:?}"
    );

    // Deploys unchanged: `command = ["flows"]`, the binary on PATH.
    let path = format!(
        "{}:{}",
        target.join("debug").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let w = Weir::start(ServerOptions::default());
    let first = deploy(&w, &dir, &[("PATH", path.clone())], &[]);
    assert!(first.contains("created  dev/hello (v1)"), "{first}");
    let again = deploy(&w, &dir, &[("PATH", path)], &["--plan"]);
    assert!(again.contains("unchanged  dev/hello"), "{again}");

    let bad = init(&[
        "--lang",
        "rust",
        "--weir-path",
        "/nonexistent",
        tmp.path().join("x").to_str().expect("utf-8"),
    ]);
    assert_eq!(bad.status.code(), Some(2), "{bad:?}");
    assert!(text(&bad.stderr).contains("--weir-path"), "{bad:?}");
    assert!(!tmp.path().join("x").exists(), "nothing written");
}
