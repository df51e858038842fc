//! Fixture of the end-to-end tests: real `weir` and `example-flows` processes talking real
//! HTTP, in a throwaway directory per test.
//!
//! - [`Sandbox`]: a temporary directory and the processes a test started in it. On drop it
//!   SIGKILLs them, reaps them, and kills the flow processes they left behind (found by the
//!   sandbox's unique `WEIR_WITNESS_DIR` in their environment, so nothing else is touched).
//!   When the test is failing, it prints the tail of every process's log first.
//! - [`Weir`]: a sandbox with a `weir server` on a free port, agents (each with its own
//!   `WEIR_HOME`), the `weir` CLI pointed at the server, and polling helpers over the API.
//!   The server bootstraps an admin key into `server/admin.key`; the fixture's API client and
//!   CLI invocations use it (`WEIR_API_KEY`), and each agent home gets an agent-role key of
//!   its own, created with `weir keys create --role agent`.
//!
//! Layout of a sandbox: `server/` (the server's `WEIR_HOME`), `agent-N/` (agents'),
//! `cli/` (the CLI's, so it never finds another server), `project/` (the `weir.toml`),
//! `shared/` (`witness.log` and `results/`, shared by every flow process), `logs/`.
//!
//! Every wait is a bounded poll that panics with what it was waiting for and what it saw.

#![allow(dead_code)]

pub mod images;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tempfile::TempDir;
use uuid::Uuid;
use weir_client::{Client, RunQuery};
use weir_core::StateKind;
use weir_core::api::{CreateFlowRun, FlowRun, FlowRunDetail, Parameters};

/// How often polling helpers look again.
const POLL: Duration = Duration::from_millis(100);

/// The `weir` binary under test.
pub fn weir_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_weir"))
}

/// The `example-flows` binary, next to `weir` in the same target profile directory.
/// Panics with what to do when it has not been built.
pub fn flows_bin() -> PathBuf {
    let path = weir_bin()
        .parent()
        .expect("the weir binary has a directory")
        .join("example-flows");
    assert!(
        path.exists(),
        "{} is missing: run `cargo build --workspace --bins` first (scripts/test.sh does)",
        path.display()
    );
    path
}

/// Polls `check` every 100 ms until it returns `Ok`, for at most `timeout`. `Err` carries
/// what was seen, quoted in the panic message on timeout.
pub fn wait_until<T>(
    what: &str,
    timeout: Duration,
    mut check: impl FnMut() -> Result<T, String>,
) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        match check() {
            Ok(v) => return v,
            Err(seen) if Instant::now() >= deadline => {
                panic!("timed out after {timeout:?} waiting for {what}; last seen: {seen}")
            }
            Err(_) => std::thread::sleep(POLL),
        }
    }
}

/// How a finished CLI command went.
#[derive(Debug, Clone)]
pub struct Output {
    /// Exit code (-1 when killed by a signal).
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl Output {
    /// Panics unless the command exited 0, showing its output.
    #[track_caller]
    pub fn ok(self) -> Output {
        assert_eq!(self.code, 0, "command failed: {self:#?}");
        self
    }
}

/// Whether process `pid` exists and is not a zombie.
pub fn is_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.trim_start().chars().next())
            .is_some_and(|s| s != 'Z' && s != 'X'),
        Err(_) => false,
    }
}

/// Sends `signal` (e.g. `"KILL"`, `"TERM"`) to process `pid` with the real `kill` command.
pub fn signal(pid: u32, signal: &str) {
    let status = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -{signal} {pid} failed");
}

/// One process a sandbox started.
struct Proc {
    name: String,
    child: Child,
    log: PathBuf,
}

/// A temporary directory and the processes started in it; see the module docs.
pub struct Sandbox {
    dir: TempDir,
    procs: Vec<Proc>,
}

impl Sandbox {
    /// A new empty sandbox with its `shared/`, `cli/`, `project/` and `logs/` directories.
    /// Panics first if `example-flows` has not been built.
    pub fn new() -> Sandbox {
        flows_bin();
        let dir = tempfile::Builder::new()
            .prefix("weir-e2e-")
            .tempdir()
            .expect("create a temporary directory");
        for d in ["shared/results", "cli", "project", "logs"] {
            std::fs::create_dir_all(dir.path().join(d)).expect("create sandbox directories");
        }
        Sandbox {
            dir,
            procs: Vec::new(),
        }
    }

    /// The sandbox root.
    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    /// `root/rel`.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// The directory every flow process shares: `witness.log` and `results/`.
    pub fn shared(&self) -> PathBuf {
        self.path("shared")
    }

    /// Environment every long-running process gets: results and witness in `shared/`, no
    /// inherited server URL or key.
    fn base_env(&self, cmd: &mut Command) {
        cmd.env_remove("WEIR_API_URL")
            .env_remove("WEIR_API_KEY")
            .env_remove("WEIR_DB")
            .env_remove("WEIR_BIND")
            .env(
                "WEIR_RESULT_STORAGE",
                format!("file://{}", self.shared().join("results").display()),
            )
            .env("WEIR_WITNESS_DIR", self.shared())
            .env("WEIR_LOG", "info,sqlx=warn");
    }

    /// Starts `weir ARGS` in the background with `WEIR_HOME=home` and `env`; its output goes
    /// to `logs/<name>.log`. Returns its index for [`Sandbox::pid`], [`Sandbox::kill`] and
    /// [`Sandbox::wait_exit`].
    pub fn spawn(&mut self, name: &str, args: &[&str], home: &Path, env: &[(&str, &str)]) -> usize {
        std::fs::create_dir_all(home).expect("create WEIR_HOME");
        let log = self.path(&format!("logs/{name}.log"));
        let out = std::fs::File::create(&log).expect("create log file");
        let err = out.try_clone().expect("clone log file");
        let mut cmd = Command::new(weir_bin());
        cmd.args(args)
            .current_dir(self.root())
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        self.base_env(&mut cmd);
        cmd.env("WEIR_HOME", home);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start weir {args:?}: {e}"));
        self.procs.push(Proc {
            name: name.to_string(),
            child,
            log,
        });
        self.procs.len() - 1
    }

    /// The pid of process `idx`.
    pub fn pid(&self, idx: usize) -> u32 {
        self.procs[idx].child.id()
    }

    /// The output process `idx` has written so far.
    pub fn log(&self, idx: usize) -> String {
        std::fs::read_to_string(&self.procs[idx].log).unwrap_or_default()
    }

    /// SIGKILLs process `idx` and reaps it.
    pub fn kill(&mut self, idx: usize) {
        let p = &mut self.procs[idx];
        let _ = p.child.kill();
        let _ = p.child.wait();
    }

    /// Waits at most `timeout` for process `idx` to exit; returns its exit code (-1 when a
    /// signal ended it).
    pub fn wait_exit(&mut self, idx: usize, timeout: Duration) -> i32 {
        let name = self.procs[idx].name.clone();
        let child = &mut self.procs[idx].child;
        let status = wait_until(&format!("{name} to exit"), timeout, || {
            match child.try_wait() {
                Ok(Some(s)) => Ok(s),
                Ok(None) => Err("still running".into()),
                Err(e) => Err(format!("try_wait failed: {e}")),
            }
        });
        status.code().unwrap_or(-1)
    }

    /// Runs `weir ARGS` to completion (at most `timeout`) from `project/`, talking to `api`
    /// (none: the URL recorded in `cli_home`, if any) with `WEIR_HOME=cli_home`.
    pub fn cli(
        &self,
        api: Option<&str>,
        cli_home: &Path,
        args: &[&str],
        timeout: Duration,
    ) -> Output {
        self.cli_env(api, cli_home, &[], args, timeout)
    }

    /// Like [`Sandbox::cli`], with extra environment variables `env` (e.g. `WEIR_API_KEY`).
    pub fn cli_env(
        &self,
        api: Option<&str>,
        cli_home: &Path,
        env: &[(&str, &str)],
        args: &[&str],
        timeout: Duration,
    ) -> Output {
        // Output goes to files, so a chatty command can never block on a full pipe.
        let id = Uuid::now_v7();
        let out_path = self.path(&format!("logs/cli-{id}.out"));
        let err_path = self.path(&format!("logs/cli-{id}.err"));
        let mut cmd = Command::new(weir_bin());
        cmd.args(args)
            .current_dir(self.path("project"))
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&out_path).expect("create stdout file"))
            .stderr(std::fs::File::create(&err_path).expect("create stderr file"));
        self.base_env(&mut cmd);
        cmd.env("WEIR_HOME", cli_home);
        if let Some(api) = api {
            cmd.env("WEIR_API_URL", api);
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run weir {args:?}: {e}"));
        let deadline = Instant::now() + timeout;
        let status = loop {
            if let Some(s) = child.try_wait().expect("wait for weir") {
                break s;
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "`weir {}` did not finish within {timeout:?}; stdout: {}; stderr: {}",
                    args.join(" "),
                    std::fs::read_to_string(&out_path).unwrap_or_default(),
                    std::fs::read_to_string(&err_path).unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        Output {
            code: status.code().unwrap_or(-1),
            stdout: std::fs::read_to_string(&out_path).unwrap_or_default(),
            stderr: std::fs::read_to_string(&err_path).unwrap_or_default(),
        }
    }

    /// Lines of `shared/witness.log`: `(flow run id, attempt)` per flow process start.
    pub fn witness(&self) -> Vec<(Uuid, u32)> {
        let text = std::fs::read_to_string(self.shared().join("witness.log")).unwrap_or_default();
        text.lines()
            .map(|l| {
                let (id, attempt) = l
                    .split_once(' ')
                    .unwrap_or_else(|| panic!("bad witness line {l:?}"));
                (
                    Uuid::parse_str(id).unwrap_or_else(|_| panic!("bad witness id in {l:?}")),
                    attempt
                        .trim()
                        .parse()
                        .unwrap_or_else(|_| panic!("bad witness attempt in {l:?}")),
                )
            })
            .collect()
    }

    /// Waits for `home/admin.key` (the admin key a server bootstraps on an empty database)
    /// and returns the key in it.
    pub fn wait_admin_key(&self, home: &Path, timeout: Duration) -> String {
        let file = home.join("admin.key");
        wait_until(
            &format!("{} to be written", file.display()),
            timeout,
            || match std::fs::read_to_string(&file) {
                Ok(s) if s.trim().starts_with("weir_") => Ok(s.trim().to_string()),
                _ => Err("not there yet".into()),
            },
        )
    }

    /// Waits for `home/server.url` and returns the URL in it.
    pub fn wait_server_url(&self, home: &Path, timeout: Duration) -> String {
        let file = home.join("server.url");
        wait_until(
            &format!("{} to be written", file.display()),
            timeout,
            || match std::fs::read_to_string(&file) {
                Ok(s) if !s.trim().is_empty() => Ok(s.trim().to_string()),
                _ => Err("not there yet".into()),
            },
        )
    }

    /// Pids of live processes whose environment holds this sandbox's `WEIR_WITNESS_DIR`:
    /// the flow processes its agents launched (and the agents and servers themselves).
    pub fn marked_pids(&self) -> Vec<u32> {
        let marker = format!("WEIR_WITNESS_DIR={}", self.shared().display());
        let me = std::process::id();
        let mut out = Vec::new();
        let Ok(entries) = std::fs::read_dir("/proc") else {
            return out;
        };
        for e in entries.flatten() {
            let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
                continue;
            };
            if pid == me {
                continue;
            }
            let Ok(env) = std::fs::read(format!("/proc/{pid}/environ")) else {
                continue;
            };
            if env.split(|b| *b == 0).any(|v| v == marker.as_bytes()) && is_alive(pid) {
                out.push(pid);
            }
        }
        out
    }
}

impl Default for Sandbox {
    fn default() -> Self {
        Sandbox::new()
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        if std::thread::panicking() {
            for p in &self.procs {
                let log = std::fs::read_to_string(&p.log).unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(60).collect();
                eprintln!("----- last lines of {} ({}) -----", p.name, p.log.display());
                for l in tail.iter().rev() {
                    eprintln!("{l}");
                }
            }
        }
        for p in &mut self.procs {
            let _ = p.child.kill();
            let _ = p.child.wait();
        }
        // Flow processes live in their own process groups and outlive a killed agent.
        for pid in self.marked_pids() {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// Settings of [`Weir::start`].
#[derive(Debug, Clone, Copy)]
pub struct ServerOptions {
    /// `--lease-s`: seconds without heartbeat before a run is Crashed.
    pub lease_s: u64,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions { lease_s: 10 }
    }
}

/// A running `weir server` in a sandbox, with agents and the CLI; see the module docs.
pub struct Weir {
    /// The sandbox (dropped last: it kills every process).
    pub sb: Sandbox,
    /// The server's URL.
    pub url: String,
    /// An API client of the server, authenticated with [`Weir::admin_key`].
    pub client: Client,
    /// The admin key the server bootstrapped (read from `server/admin.key`).
    pub admin_key: String,
    rt: tokio::runtime::Runtime,
    server: usize,
    agents: Vec<(usize, PathBuf)>,
    /// The agent-role key of each agent `WEIR_HOME`, so a restarted agent keeps its key.
    agent_keys: BTreeMap<PathBuf, String>,
    /// How many times the server was restarted (names its log files).
    restarts: usize,
    /// Extra environment of the server process, kept for its restarts.
    server_env: Vec<(String, String)>,
}

impl Weir {
    /// Starts `weir server --bind 127.0.0.1:0 --lease-s N --tick-ms 100 --late-after-s 60`
    /// and waits until it answers `/readyz`.
    pub fn start(opts: ServerOptions) -> Weir {
        Weir::start_with(opts, &[])
    }

    /// Like [`Weir::start`], with extra `weir server` arguments (such as `--db URL`); an
    /// `--late-after-s` among them replaces the default 60.
    pub fn start_with(opts: ServerOptions, extra: &[&str]) -> Weir {
        Weir::start_env(opts, extra, &[])
    }

    /// Like [`Weir::start_with`], with extra environment variables `env` for the server
    /// process (such as `AWS_ENDPOINT_URL`); its restarts get them too.
    pub fn start_env(opts: ServerOptions, extra: &[&str], env: &[(&str, &str)]) -> Weir {
        let mut sb = Sandbox::new();
        let home = sb.path("server");
        let lease = opts.lease_s.to_string();
        let mut args = vec![
            "server",
            "--bind",
            "127.0.0.1:0",
            "--lease-s",
            &lease,
            "--tick-ms",
            "100",
        ];
        if !extra.contains(&"--late-after-s") {
            args.extend(["--late-after-s", "60"]);
        }
        args.extend_from_slice(extra);
        let server = sb.spawn("server", &args, &home, env);
        let url = sb.wait_server_url(&home, Duration::from_secs(20));
        let admin_key = sb.wait_admin_key(&home, Duration::from_secs(20));
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("tokio runtime");
        let client = Client::new(&url, Some(admin_key.clone())).expect("API client");
        wait_until("the server to be ready", Duration::from_secs(20), || {
            rt.block_on(client.ready())
                .map(|_| ())
                .map_err(|e| e.to_string())
        });
        Weir {
            sb,
            url,
            client,
            admin_key,
            rt,
            server,
            agents: Vec::new(),
            agent_keys: BTreeMap::new(),
            restarts: 0,
            server_env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    /// Runs a future of the API client to completion.
    pub fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        self.rt.block_on(f)
    }

    /// Starts `weir agent --queue default --limit N --heartbeat-s 1 --cancel-grace-s 2` with
    /// a new `WEIR_HOME` of its own. Returns its number for [`Weir::kill_agent`] and
    /// [`Weir::agent_home`].
    pub fn start_agent(&mut self, limit: u32) -> usize {
        let home = self.sb.path(&format!("agent-{}", self.agents.len()));
        self.start_agent_in(&home, limit)
    }

    /// Like [`Weir::start_agent`], with `WEIR_HOME=home` (which may be another agent's).
    /// The agent authenticates with the agent-role key of `home` ([`Weir::agent_key`]).
    pub fn start_agent_in(&mut self, home: &Path, limit: u32) -> usize {
        self.start_agent_env(home, limit, &[])
    }

    /// The agent-role key of agent home `home`, created with `weir keys create --role agent`
    /// the first time it is asked for.
    pub fn agent_key(&mut self, home: &Path) -> String {
        if let Some(k) = self.agent_keys.get(home) {
            return k.clone();
        }
        let name = format!("agent-key-{}", self.agent_keys.len());
        let out = self
            .weir(&["keys", "create", "--name", &name, "--role", "agent"])
            .ok();
        let key = out.stdout.trim().to_string();
        assert!(
            key.starts_with("weir_"),
            "`weir keys create` printed a key: {out:#?}"
        );
        self.agent_keys.insert(home.to_path_buf(), key.clone());
        key
    }

    /// Gives agent home `to` the agent key of `from`, as a replacement agent deployed from the
    /// same secret has.
    pub fn share_agent_key(&mut self, from: &Path, to: &Path) {
        let key = self.agent_key(from);
        self.agent_keys.insert(to.to_path_buf(), key);
    }

    /// Like [`Weir::start_agent_in`], with extra environment variables `env` for the agent.
    pub fn start_agent_env(&mut self, home: &Path, limit: u32, env: &[(&str, &str)]) -> usize {
        self.start_agent_with(home, limit, &[], env)
    }

    /// Like [`Weir::start_agent_env`], with extra command-line arguments `args` (such as
    /// `--launchers docker`).
    pub fn start_agent_with(
        &mut self,
        home: &Path,
        limit: u32,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> usize {
        let name = format!("agent-{}", self.agents.len());
        self.start_agent_named(&name, home, limit, args, env)
    }

    /// Like [`Weir::start_agent_with`], under `--name name` (by default agent `n` is named
    /// `agent-n`): a new instance of an agent that lost its `WEIR_HOME`.
    pub fn start_agent_named(
        &mut self,
        name: &str,
        home: &Path,
        limit: u32,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> usize {
        let key = self.agent_key(home);
        let n = self.agents.len();
        let limit = limit.to_string();
        let url = self.url.clone();
        let mut all_env = vec![
            ("WEIR_API_URL", url.as_str()),
            ("WEIR_API_KEY", key.as_str()),
        ];
        all_env.extend_from_slice(env);
        let mut all_args = vec![
            "agent",
            "--queue",
            "default",
            "--limit",
            &limit,
            "--heartbeat-s",
            "1",
            "--cancel-grace-s",
            "2",
            "--name",
            name,
        ];
        all_args.extend_from_slice(args);
        let idx = self.sb.spawn(name, &all_args, home, &all_env);
        self.agents.push((idx, home.to_path_buf()));
        n
    }

    /// Agent `n`'s `WEIR_HOME`.
    pub fn agent_home(&self, n: usize) -> PathBuf {
        self.agents[n].1.clone()
    }

    /// Agent `n`'s output so far.
    pub fn agent_log(&self, n: usize) -> String {
        self.sb.log(self.agents[n].0)
    }

    /// The server's output so far.
    pub fn server_log(&self) -> String {
        self.sb.log(self.server)
    }

    /// `kill -9` of the server (agents and flow processes live on).
    pub fn kill_server(&mut self) {
        self.sb.kill(self.server);
    }

    /// Starts the server again after [`Weir::kill_server`], on the same address and
    /// database, and waits until it answers `/readyz`.
    pub fn restart_server(&mut self, opts: ServerOptions) {
        self.restart_server_with(opts, &[]);
    }

    /// Like [`Weir::restart_server`], with extra `weir server` arguments `extra` (such as
    /// `--retain-days 30`); a flag of `extra` replaces the fixture's default for it (such as
    /// `--late-after-s 2`).
    pub fn restart_server_with(&mut self, opts: ServerOptions, extra: &[&str]) {
        let home = self.sb.path("server");
        let bind = self
            .url
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_string();
        let lease = opts.lease_s.to_string();
        let n = self.restarts;
        self.restarts += 1;
        let mut args = vec!["server", "--bind", &bind];
        // The defaults, unless `extra` sets the flag itself (e.g. `--late-after-s 2`).
        for (flag, value) in [
            ("--lease-s", lease.as_str()),
            ("--tick-ms", "100"),
            ("--late-after-s", "60"),
        ] {
            if !extra.contains(&flag) {
                args.extend([flag, value]);
            }
        }
        args.extend_from_slice(extra);
        let env: Vec<(&str, &str)> = self
            .server_env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        self.server = self.sb.spawn(&format!("server-{n}"), &args, &home, &env);
        wait_until(
            "the server to be ready again",
            Duration::from_secs(20),
            || {
                self.rt
                    .block_on(self.client.ready())
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            },
        );
    }

    /// Agent `n`'s pid (to signal it).
    pub fn agent_pid(&self, n: usize) -> u32 {
        self.sb.pid(self.agents[n].0)
    }

    /// Waits at most `timeout` for agent `n` to exit; returns its exit code.
    pub fn wait_agent_exit(&mut self, n: usize, timeout: Duration) -> i32 {
        let idx = self.agents[n].0;
        self.sb.wait_exit(idx, timeout)
    }

    /// `kill -9` of agent `n` (its flow processes live on).
    pub fn kill_agent(&mut self, n: usize) {
        let idx = self.agents[n].0;
        self.sb.kill(idx);
    }

    /// Runs `weir ARGS` against the server (60 s at most).
    pub fn weir(&self, args: &[&str]) -> Output {
        self.weir_timeout(args, Duration::from_secs(60))
    }

    /// Runs `weir ARGS` against the server with the admin key, at most `timeout`.
    pub fn weir_timeout(&self, args: &[&str], timeout: Duration) -> Output {
        self.weir_as(&self.admin_key, args, timeout)
    }

    /// Runs `weir ARGS` against the server with `WEIR_API_KEY=key`, at most `timeout`.
    pub fn weir_as(&self, key: &str, args: &[&str], timeout: Duration) -> Output {
        self.sb.cli_env(
            Some(&self.url),
            &self.sb.path("cli"),
            &[("WEIR_API_KEY", key)],
            args,
            timeout,
        )
    }

    /// Writes `project/weir.toml`, with every `{flows}` replaced by the absolute path of
    /// `example-flows`. Returns the file's path.
    pub fn write_toml(&self, text: &str) -> PathBuf {
        let path = self.sb.path("project/weir.toml");
        let text = text.replace("{flows}", &flows_bin().display().to_string());
        std::fs::write(&path, text).expect("write weir.toml");
        path
    }

    /// Writes `text` as `weir.toml` and runs `weir deploy`, which must succeed.
    pub fn deploy(&self, text: &str) -> Output {
        self.write_toml(text);
        self.weir(&["deploy"]).ok()
    }

    /// Creates a run of `project/deployment` through the API.
    pub fn create_run(&self, project: &str, deployment: &str, params: Parameters) -> FlowRun {
        let req = CreateFlowRun {
            project: Some(project.into()),
            deployment: Some(deployment.into()),
            parameters: params,
            ..Default::default()
        };
        self.block_on(self.client.create_flow_run(&req))
            .unwrap_or_else(|e| panic!("create a run of {project}/{deployment}: {e}"))
    }

    /// `weir run TARGET ARGS` (no `--watch`): the new run's id.
    pub fn run_cli(&self, target: &str, args: &[&str]) -> Uuid {
        let mut all = vec!["run", target];
        all.extend_from_slice(args);
        let out = self.weir(&all).ok();
        Uuid::parse_str(out.stdout.trim())
            .unwrap_or_else(|_| panic!("`weir run` did not print a run id: {out:#?}"))
    }

    /// A run with its history, through the API.
    pub fn detail(&self, id: Uuid) -> FlowRunDetail {
        self.block_on(self.client.flow_run(id))
            .unwrap_or_else(|e| panic!("read run {id}: {e}"))
    }

    /// Waits at most `timeout` until run `id` satisfies `pred`.
    pub fn wait_run(
        &self,
        id: Uuid,
        what: &str,
        timeout: Duration,
        mut pred: impl FnMut(&FlowRunDetail) -> bool,
    ) -> FlowRunDetail {
        wait_until(&format!("run {id} {what}"), timeout, || {
            let d = self
                .block_on(self.client.flow_run(id))
                .map_err(|e| e.to_string())?;
            if pred(&d) { Ok(d) } else { Err(describe(&d)) }
        })
    }

    /// Waits at most `timeout` until run `id` is in `state`.
    pub fn wait_state(&self, id: Uuid, state: StateKind, timeout: Duration) -> FlowRunDetail {
        self.wait_run(id, &format!("to be {state}"), timeout, |d| {
            d.run.state == state
        })
    }

    /// Waits at most `timeout` until run `id` is terminal.
    pub fn wait_terminal(&self, id: Uuid, timeout: Duration) -> FlowRunDetail {
        self.wait_run(id, "to end", timeout, |d| d.run.state.is_terminal())
    }

    /// Every run of `project/deployment`, following cursors.
    pub fn all_runs(&self, project: &str, deployment: &str) -> Vec<FlowRun> {
        let mut out = Vec::new();
        let mut cursor = None;
        loop {
            let q = RunQuery {
                project: Some(project.into()),
                deployment: Some(deployment.into()),
                cursor,
                limit: Some(1000),
                ..Default::default()
            };
            let page = self
                .block_on(self.client.list_flow_runs(&q))
                .unwrap_or_else(|e| panic!("list runs of {project}/{deployment}: {e}"));
            out.extend(page.items);
            match page.next_cursor {
                Some(c) => cursor = Some(c.parse().expect("a run cursor is a uuid")),
                None => return out,
            }
        }
    }

    /// Reads the flow process pid the agent with `WEIR_HOME=agent_home` recorded for run
    /// `id` (`$WEIR_HOME/agent/<id>.json`, written right after the launch).
    pub fn flow_pid(&self, agent_home: &Path, id: Uuid) -> u32 {
        let file = agent_home.join("agent").join(format!("{id}.json"));
        wait_until(
            &format!("{} to name the flow process", file.display()),
            Duration::from_secs(10),
            || {
                let text = std::fs::read_to_string(&file).map_err(|e| e.to_string())?;
                let v: serde_json::Value =
                    serde_json::from_str(&text).map_err(|e| format!("{e}: {text}"))?;
                v["pid"]
                    .as_str()
                    .and_then(|p| p.parse().ok())
                    .ok_or_else(|| format!("no pid in {text}"))
            },
        )
    }
}

/// A run's state, attempt and history on one line, for panic messages.
/// A run's result, read from its (local) result storage: the server holds only its location
/// and size.
pub fn result_value(run: &FlowRun) -> Option<serde_json::Value> {
    let r = run.result.as_ref()?;
    let path = r
        .location
        .strip_prefix("file://")
        .expect("local result storage");
    let bytes = std::fs::read(path).expect("the result file exists");
    assert_eq!(bytes.len() as u64, r.size, "the recorded size");
    Some(serde_json::from_slice(&bytes).expect("the result is JSON"))
}

pub fn describe(d: &FlowRunDetail) -> String {
    let history: Vec<String> = d
        .history
        .iter()
        .map(|h| {
            format!(
                "{}@{}{}",
                h.state,
                h.attempt,
                h.message
                    .as_deref()
                    .map(|m| format!(" ({m})"))
                    .unwrap_or_default()
            )
        })
        .collect();
    format!(
        "{} attempt {} message {:?}; history: [{}]",
        d.run.state,
        d.run.attempt,
        d.run.state_message,
        history.join(" → ")
    )
}

/// Parameters from `(key, JSON value)` pairs.
pub fn params(pairs: &[(&str, serde_json::Value)]) -> Parameters {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

/// Counts of runs per state, for panic messages.
pub fn count_states(runs: &[FlowRun]) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for r in runs {
        *out.entry(r.state.to_string()).or_insert(0) += 1;
    }
    out
}
