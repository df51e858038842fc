//! PostgreSQL 15 as a host of its own: the real `postgres` binary in the `pg` namespace,
//! listening on that host's address only, so killing, stopping or slowing it is a fault of one
//! host.
//!
//! The cluster is made once per test process with `initdb` (a template directory) and copied
//! for every scenario. It runs as the `postgres` OS user (PostgreSQL refuses root), through
//! `setpriv`, which execs, so the process started is the postmaster itself.

use crate::net::{Host, kill_all_in};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Where PostgreSQL's binaries are (`WEIR_TEST_PG_BIN` overrides).
fn bin(name: &str) -> PathBuf {
    let dir = std::env::var("WEIR_TEST_PG_BIN")
        .unwrap_or_else(|_| "/usr/lib/postgresql/15/bin".to_string());
    Path::new(&dir).join(name)
}

/// `cmd` run as the `postgres` OS user (created if missing).
fn as_postgres(program: &Path) -> Command {
    let mut c = Command::new("setpriv");
    c.args([
        "--reuid=postgres",
        "--regid=postgres",
        "--init-groups",
        "--",
    ])
    .arg(program);
    c
}

fn ensure_user() {
    let exists = Command::new("id")
        .arg("postgres")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !exists {
        let status = Command::new("useradd")
            .args([
                "--system",
                "--no-create-home",
                "--shell",
                "/usr/sbin/nologin",
                "postgres",
            ])
            .status();
        assert!(
            status.is_ok_and(|s| s.success()),
            "cannot create the postgres OS user"
        );
    }
}

/// A freshly initialised cluster directory, made once per test process.
fn template(root: &Path) -> &'static Path {
    static TEMPLATE: OnceLock<PathBuf> = OnceLock::new();
    TEMPLATE.get_or_init(|| {
        ensure_user();
        assert!(
            bin("initdb").exists(),
            "PostgreSQL 15 is not installed at {} (set WEIR_TEST_PG_BIN to the directory of initdb)",
            bin("initdb").display()
        );
        let dir = root.join("pg-template");
        std::fs::create_dir_all(&dir).expect("create the template directory");
        chown_postgres(&dir);
        let out = as_postgres(&bin("initdb"))
            .args(["-D"])
            .arg(&dir)
            .args(["-U", "postgres", "--auth=trust", "--encoding=UTF8", "--locale=C"])
            .output()
            .expect("run initdb");
        assert!(
            out.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        // Trust every host of the test switches (test data only).
        let hba = dir.join("pg_hba.conf");
        let mut text = std::fs::read_to_string(&hba).expect("read pg_hba.conf");
        text.push_str("host all all 10.213.0.0/16 trust\n");
        std::fs::write(&hba, text).expect("write pg_hba.conf");
        dir
    })
}

fn chown_postgres(path: &Path) {
    let status = Command::new("chown")
        .args(["-R", "postgres:postgres"])
        .arg(path)
        .status();
    assert!(
        status.is_ok_and(|s| s.success()),
        "chown {}",
        path.display()
    );
}

/// The PostgreSQL server of one scenario.
pub struct Postgres {
    /// The host it runs on.
    pub host: Host,
    data: PathBuf,
    log: PathBuf,
    child: Option<Child>,
}

impl Postgres {
    /// Copies the template into `dir/pg` and starts PostgreSQL on `host`. `dir` must be
    /// readable by others (the postgres user walks through it).
    pub fn start(host: Host, dir: &Path) -> Postgres {
        let data = dir.join("pg");
        let status = Command::new("cp")
            .arg("-a")
            .arg(template(dir.parent().unwrap_or(dir)))
            .arg(&data)
            .status();
        assert!(
            status.is_ok_and(|s| s.success()),
            "copy the cluster template"
        );
        let mut pg = Postgres {
            host,
            log: dir.join("logs").join("postgres.log"),
            data,
            child: None,
        };
        pg.resume();
        pg
    }

    /// `postgres://postgres@<host>:5432/postgres`.
    pub fn url(&self) -> String {
        format!("postgres://postgres@{}:5432/postgres", self.host.ip)
    }

    /// Starts the server again (after [`Postgres::kill`] or [`Postgres::stop`]) and waits
    /// until it accepts connections.
    pub fn resume(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("open the postgres log");
        let err = log.try_clone().expect("clone the log file");
        let child = Command::new("ip")
            .args(["netns", "exec", &self.host.ns])
            .args([
                "setpriv",
                "--reuid=postgres",
                "--regid=postgres",
                "--init-groups",
                "--",
            ])
            .arg(bin("postgres"))
            .arg("-D")
            .arg(&self.data)
            .args(["-c", &format!("listen_addresses={}", self.host.ip)])
            .args(["-c", "port=5432"])
            .args([
                "-c",
                &format!("unix_socket_directories={}", self.data.display()),
            ])
            // Durable against a crash of PostgreSQL itself (the faults kill it), not of the
            // machine: commits are written to the OS before they are acknowledged, never
            // flushed to the disk. With `synchronous_commit=off` a kill -9 lost commits it had
            // acknowledged (`pg_restart`: log lines the server had stored, gone after recovery).
            .args(["-c", "fsync=off", "-c", "synchronous_commit=on"])
            .args(["-c", "full_page_writes=off", "-c", "max_connections=200"])
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err)
            .spawn()
            .expect("start postgres");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while !self.ready() {
            assert!(
                Instant::now() < deadline,
                "PostgreSQL did not start on {}; see {}",
                self.host.ip,
                self.log.display()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn ready(&self) -> bool {
        Command::new(bin("pg_isready"))
            .args(["-q", "-h", &self.host.ip, "-p", "5432", "-U", "postgres"])
            .status()
            .is_ok_and(|s| s.success())
    }

    /// `kill -9` of every PostgreSQL process (postmaster and backends).
    pub fn kill(&mut self) {
        kill_all_in(&self.host.ns);
        self.reap();
    }

    /// A clean fast shutdown (SIGINT to the postmaster), waiting for it to exit.
    pub fn stop(&mut self) {
        if let Some(c) = &self.child {
            let _ = Command::new("kill")
                .args(["-INT", &c.id().to_string()])
                .status();
        }
        self.reap();
    }

    fn reap(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.wait();
        }
        // Backends of a killed postmaster exit on their own; wait until the host is empty.
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline && !pids_in(&self.host.ns).is_empty() {
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = std::fs::remove_file(self.data.join("postmaster.pid"));
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        kill_all_in(&self.host.ns);
        if let Some(mut c) = self.child.take() {
            let _ = c.wait();
        }
    }
}

fn pids_in(ns: &str) -> Vec<String> {
    Command::new("ip")
        .args(["netns", "pids", ns])
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .split_whitespace()
                .map(String::from)
                .collect()
        })
        .unwrap_or_default()
}
