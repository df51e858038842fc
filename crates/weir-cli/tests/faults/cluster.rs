//! A Weir cluster of real processes on separate hosts ([`crate::net`]): PostgreSQL on `pg` (or
//! an SQLite file), `weir server` replicas on `s1`, `s2`…, `weir agent`s on `a1`, `a2`…, and the
//! flow processes the agents launch on the agents' hosts. The test talks to them over the
//! switch like any client.
//!
//! Directory of a cluster (`/tmp/weir-faults-<pid>/<scenario>`, readable by the postgres
//! user): `pg/` (its data), `db/` (the SQLite file, on a small tmpfs when asked),
//! `s1/`, `a1/`… (each process's `WEIR_HOME`), `shared/` (`witness.log`, `events.log`,
//! `results/`), `project/weir.toml`, `logs/<process>.log`.
//!
//! [`Drop`] SIGKILLs every process, stops PostgreSQL, deletes the hosts, unmounts the tmpfs
//! and removes the directory — also when the scenario panicked.

use crate::common::{flows_bin, wait_until, weir_bin};
use crate::net::{Host, Net};
use crate::pg::Postgres;
use crate::proxy::DelayProxy;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use uuid::Uuid;
use weir_client::Client;
use weir_core::api::{CreateApiKey, CreateFlowRun, FlowRun, Parameters};

/// The database of a cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Db {
    /// PostgreSQL on a host of its own (replicas share it).
    Postgres,
    /// An SQLite file next to the one server; `Some(kib)`: on a tmpfs of that size.
    Sqlite(Option<u64>),
}

/// What to start.
#[derive(Debug, Clone)]
pub struct Spec {
    /// The database every replica shares: PostgreSQL on its own host, or SQLite
    /// (one replica only).
    pub db: Db,
    /// Server replicas.
    pub replicas: usize,
    /// Agents (agent `i` talks to replica `i % replicas`).
    pub agents: usize,
    /// Runs per agent at once.
    pub limit: u32,
    /// The servers' `--lease-s`.
    pub lease_s: u64,
    /// Milliseconds added each way between the servers and PostgreSQL (a delaying proxy).
    pub db_delay_ms: u64,
    /// Replica index whose clock is faked by libfaketime, steered by [`Cluster::step_clock`].
    pub faketime: Option<usize>,
    /// Milliseconds added each way between agent a1 (and its flow processes) and its server
    /// (a delaying proxy).
    pub agent_delay_ms: u64,
    /// The fault stops no run: every run must complete at its first attempt.
    pub healthy: bool,
}

/// One process of the cluster, restartable with the same command.
struct Proc {
    name: String,
    ns: String,
    args: Vec<String>,
    env: Vec<(String, String)>,
    child: Option<Child>,
    starts: usize,
    dir: PathBuf,
}

impl Proc {
    fn start(&mut self) {
        let log_path = self
            .dir
            .join("logs")
            .join(format!("{}-{}.log", self.name, self.starts));
        self.starts += 1;
        let log = std::fs::File::create(&log_path).expect("create a process log");
        let err = log.try_clone().expect("clone the log file");
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.ns])
            .args(&self.args)
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err)
            .env_remove("WEIR_API_URL")
            .env_remove("WEIR_API_KEY")
            .env_remove("WEIR_DB");
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        self.child = Some(cmd.spawn().expect("start a cluster process"));
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A server replica or an agent.
#[derive(Debug, Clone)]
pub struct Node {
    /// Its network namespace and address, to kill or cut off alone.
    pub host: Host,
    /// For a server, its URL; for an agent, the URL of the server it talks to.
    pub url: String,
    proc: usize,
}

/// The running cluster; see the module docs.
pub struct Cluster {
    /// The scenario's directory.
    pub dir: PathBuf,
    /// The spec it was started from.
    pub spec: Spec,
    /// The database URL as the checker (in the test's namespace) reaches it.
    pub db_url: String,
    /// Server replicas.
    pub servers: Vec<Node>,
    /// Agents.
    pub agents: Vec<Node>,
    /// The admin key every replica was given.
    pub admin_key: String,
    /// The secret value the witness deployment injects as `$CANARY`.
    pub canary: String,
    /// An API client per replica (admin).
    pub clients: Vec<Client>,
    /// Runtime for the clients.
    pub rt: tokio::runtime::Runtime,
    procs: Vec<Proc>,
    proxy: Option<DelayProxy>,
    agent_proxy: Option<DelayProxy>,
    tmpfs: Option<PathBuf>,
    /// PostgreSQL (before `net`: it stops first).
    pub pg: Option<Postgres>,
    /// The hosts (dropped last).
    pub net: Net,
}

/// The suite's root directory, readable by the postgres user; leftovers of dead runs go.
pub fn suite_root() -> PathBuf {
    let root = PathBuf::from(format!("/tmp/weir-faults-{}", std::process::id()));
    if !root.exists() {
        if let Ok(entries) = std::fs::read_dir("/tmp") {
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().to_string();
                let dead = name
                    .strip_prefix("weir-faults-")
                    .and_then(|p| p.parse::<u32>().ok())
                    .is_some_and(|p| !Path::new(&format!("/proc/{p}")).exists());
                if dead {
                    let _ = Command::new("umount")
                        .arg("-l")
                        .arg(e.path().join("db"))
                        .status();
                    let _ = std::fs::remove_dir_all(e.path());
                }
            }
        }
        std::fs::create_dir_all(&root).expect("create the suite directory");
        chmod(&root, "755");
    }
    root
}

fn chmod(path: &Path, mode: &str) {
    let _ = Command::new("chmod").arg(mode).arg(path).status();
}

/// A fresh admin key in the server's format: `weir_<12 hex>_<64 hex>`.
fn new_admin_key() -> String {
    let hex = |n: usize| {
        let mut s = String::new();
        while s.len() < n {
            s.push_str(&Uuid::now_v7().simple().to_string());
        }
        s.truncate(n);
        s
    };
    format!("weir_{}_{}", hex(12), hex(64))
}

impl Cluster {
    /// Starts the cluster of `spec` for scenario `name` and waits until every replica answers.
    pub fn start(name: &str, spec: Spec) -> Cluster {
        let dir = suite_root().join(name);
        let _ = std::fs::remove_dir_all(&dir);
        for d in ["logs", "shared/results", "project", "db"] {
            std::fs::create_dir_all(dir.join(d)).expect("create the cluster directories");
        }
        chmod(&dir, "755");
        chmod(&dir.join("logs"), "777");
        let mut net = Net::new();
        let mut tmpfs = None;
        let mut pg = None;
        let mut proxy = None;
        let (server_db, db_url) = match spec.db {
            Db::Postgres => {
                let p = Postgres::start(net.host("pg"), &dir);
                let direct = p.url();
                let server_url = if spec.db_delay_ms > 0 {
                    let px = DelayProxy::start(
                        &format!("{}:0", net.gateway()),
                        &format!("{}:5432", p.host.ip),
                        Duration::from_millis(spec.db_delay_ms),
                    );
                    let u = format!("postgres://postgres@{}/postgres", px.addr());
                    proxy = Some(px);
                    u
                } else {
                    direct.clone()
                };
                pg = Some(p);
                (server_url, direct)
            }
            Db::Sqlite(size) => {
                if let Some(kib) = size {
                    let target = dir.join("db");
                    let status = Command::new("mount")
                        .args(["-t", "tmpfs", "-o", &format!("size={kib}k")])
                        .arg("tmpfs")
                        .arg(&target)
                        .status();
                    assert!(status.is_ok_and(|s| s.success()), "mount a tmpfs");
                    tmpfs = Some(target);
                }
                let url = format!("sqlite://{}/weir.db", dir.join("db").display());
                (url.clone(), url)
            }
        };
        let admin_key = new_admin_key();
        let mut c = Cluster {
            dir: dir.clone(),
            spec: spec.clone(),
            db_url,
            servers: Vec::new(),
            agents: Vec::new(),
            admin_key: admin_key.clone(),
            canary: format!("canary-{}", Uuid::now_v7().simple()),
            clients: Vec::new(),
            rt: tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("tokio runtime"),
            procs: Vec::new(),
            proxy,
            agent_proxy: None,
            tmpfs,
            pg,
            net,
        };
        for i in 0..spec.replicas {
            c.add_server(i, &server_db);
        }
        c.deploy_witness();
        for i in 0..spec.agents {
            c.add_agent(i);
        }
        c
    }

    fn add_server(&mut self, i: usize, db: &str) {
        let host = self.net.host(&format!("s{}", i + 1));
        let url = format!("http://{}:4200", host.ip);
        let home = self.dir.join(&host.name);
        std::fs::create_dir_all(&home).expect("create a server home");
        let mut args = vec![weir_bin().display().to_string()];
        args.extend(
            [
                "server",
                "--db",
                db,
                "--bind",
                &format!("{}:4200", host.ip),
                "--lease-s",
                &self.spec.lease_s.to_string(),
                "--tick-ms",
                "200",
                "--late-after-s",
                "600",
            ]
            .map(String::from),
        );
        let mut env = vec![
            ("WEIR_HOME".to_string(), home.display().to_string()),
            ("WEIR_ADMIN_KEY".to_string(), self.admin_key.clone()),
            ("WEIR_LOG".to_string(), "info,sqlx=warn".to_string()),
        ];
        if self.spec.faketime == Some(i) {
            env.extend(crate::clock::faketime_env(&self.dir));
        }
        let proc = self.spawn(&host.name, &host.ns, args, env);
        let client = Client::new(&url, Some(self.admin_key.clone())).expect("API client");
        self.wait_ready(&client, &url);
        self.clients.push(client);
        self.servers.push(Node { host, url, proc });
    }

    fn wait_ready(&self, client: &Client, url: &str) {
        wait_until(
            &format!("the server at {url} to be ready"),
            Duration::from_secs(30),
            || {
                self.rt
                    .block_on(client.ready())
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            },
        );
    }

    fn add_agent(&mut self, i: usize) {
        let host = self.net.host(&format!("a{}", i + 1));
        let server = i % self.servers.len();
        let mut url = self.servers[server].url.clone();
        if i == 0 && self.spec.agent_delay_ms > 0 {
            let upstream = format!("{}:4200", self.servers[server].host.ip);
            let px = DelayProxy::start(
                &format!("{}:0", self.net.gateway()),
                &upstream,
                Duration::from_millis(self.spec.agent_delay_ms),
            );
            url = format!("http://{}", px.addr());
            self.agent_proxy = Some(px);
        }
        let home = self.dir.join(&host.name);
        std::fs::create_dir_all(&home).expect("create an agent home");
        let key = self
            .rt
            .block_on(self.clients[0].create_key(&CreateApiKey {
                name: format!("agent-{}", host.name),
                role: weir_core::auth::Role::Agent,
                project: None,
                expires_in_s: None,
            }))
            .expect("create an agent key")
            .secret;
        let mut args = vec![weir_bin().display().to_string()];
        args.extend(
            [
                "agent",
                "--queue",
                "default",
                "--limit",
                &self.spec.limit.to_string(),
                "--heartbeat-s",
                "1",
                "--cancel-grace-s",
                "1",
                "--name",
                &host.name,
            ]
            .map(String::from),
        );
        let shared = self.dir.join("shared");
        let env = vec![
            ("WEIR_HOME".to_string(), home.display().to_string()),
            ("WEIR_API_URL".to_string(), url.clone()),
            ("WEIR_API_KEY".to_string(), key),
            ("WEIR_LOG".to_string(), "info".to_string()),
            ("WEIR_WITNESS_DIR".to_string(), shared.display().to_string()),
            (
                "WEIR_RESULT_STORAGE".to_string(),
                format!("file://{}", shared.join("results").display()),
            ),
            ("FAULTS_CANARY".to_string(), self.canary.clone()),
        ];
        let proc = self.spawn(&host.name, &host.ns, args, env);
        self.agents.push(Node { host, url, proc });
    }

    fn spawn(
        &mut self,
        name: &str,
        ns: &str,
        args: Vec<String>,
        env: Vec<(String, String)>,
    ) -> usize {
        let mut p = Proc {
            name: name.to_string(),
            ns: ns.to_string(),
            args,
            env,
            child: None,
            starts: 0,
            dir: self.dir.clone(),
        };
        p.start();
        self.procs.push(p);
        self.procs.len() - 1
    }

    /// Deploys `faults/witness` (the `witness` flow, two retries one second apart, `$CANARY`
    /// from the agents' `FAULTS_CANARY`) with `weir deploy`.
    fn deploy_witness(&self) {
        let toml = format!(
            "project = \"faults\"\n\n[deployments.witness]\ncommand = [\"{}\"]\n\
             secrets = {{ CANARY = \"env:FAULTS_CANARY\" }}\nretries = 2\nretry_delay = \"1s\"\n",
            flows_bin().display()
        );
        std::fs::write(self.dir.join("project/weir.toml"), toml).expect("write weir.toml");
        let out = Command::new(weir_bin())
            .args(["deploy"])
            .current_dir(self.dir.join("project"))
            .env("WEIR_HOME", self.dir.join("project"))
            .env("WEIR_API_URL", &self.servers[0].url)
            .env("WEIR_API_KEY", &self.admin_key)
            .output()
            .expect("run weir deploy");
        assert!(
            out.status.success(),
            "weir deploy failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Creates a witness run of `ticks` steps of `interval_ms` through replica `replica`.
    pub fn create_run(&self, replica: usize, ticks: u64, interval_ms: u64) -> FlowRun {
        let req = witness_run(ticks, interval_ms);
        let client = &self.clients[replica];
        // The database may be away (the scenario's fault): retry like any client would.
        wait_until("a run to be created", Duration::from_secs(60), || {
            self.rt
                .block_on(client.create_flow_run(&req))
                .map_err(|e| e.to_string())
        })
    }

    /// Creates `n` witness runs of no steps, spread over the replicas, up to 32 requests at
    /// once: a scale race measures how fast the agents drain a queue, which one request at a
    /// time (about 250 ms each on a loaded machine) could not fill faster than they drain it.
    pub fn create_runs(&self, n: usize) {
        let mut pending = tokio::task::JoinSet::new();
        for i in 0..n {
            let client = self.clients[i % self.clients.len()].clone();
            let req = witness_run(0, 0);
            pending.spawn_on(
                async move {
                    // The database may be away (the scenario's fault): retry like any client would.
                    for _ in 0..600 {
                        if client.create_flow_run(&req).await.is_ok() {
                            return true;
                        }
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                    false
                },
                self.rt.handle(),
            );
            while pending.len() >= 32 {
                let done = self.rt.block_on(pending.join_next());
                assert!(matches!(done, Some(Ok(true))), "a run could not be created");
            }
        }
        while let Some(done) = self.rt.block_on(pending.join_next()) {
            assert!(matches!(done, Ok(true)), "a run could not be created");
        }
    }

    /// `kill -9` of server replica `i`.
    pub fn kill_server(&mut self, i: usize) {
        let p = self.servers[i].proc;
        self.procs[p].kill();
    }

    /// Starts server replica `i` again (same address and database) and waits until it answers.
    pub fn restart_server(&mut self, i: usize) {
        let p = self.servers[i].proc;
        self.procs[p].start();
        let client = self.clients[i].clone();
        let url = self.servers[i].url.clone();
        self.wait_ready(&client, &url);
    }

    /// `kill -9` of agent `i` (its flow processes live on, in their own process groups).
    pub fn kill_agent(&mut self, i: usize) {
        let p = self.agents[i].proc;
        self.procs[p].kill();
    }

    /// Starts agent `i` again with the same home (it takes over its live runs).
    pub fn restart_agent(&mut self, i: usize) {
        let p = self.agents[i].proc;
        self.procs[p].start();
    }

    /// Pids of the live flow processes of run `run` (any attempt), found by their
    /// environment (`WEIR_FLOW_RUN_ID`).
    pub fn flow_pids(&self, run: Uuid) -> Vec<u32> {
        let marker = format!("WEIR_FLOW_RUN_ID={run}");
        let mut out = Vec::new();
        let Ok(entries) = std::fs::read_dir("/proc") else {
            return out;
        };
        for e in entries.flatten() {
            let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
                continue;
            };
            let Ok(env) = std::fs::read(format!("/proc/{pid}/environ")) else {
                continue;
            };
            if env.split(|b| *b == 0).any(|v| v == marker.as_bytes())
                && crate::common::is_alive(pid)
            {
                out.push(pid);
            }
        }
        out
    }

    /// The tmpfs holding the SQLite file, when the spec asked for one.
    pub fn tmpfs(&self) -> Option<&Path> {
        self.tmpfs.as_deref()
    }

    /// Steps the faked clock of the replica named by `Spec::faketime` by `offset_s` seconds.
    pub fn step_clock(&self, offset_s: i64) {
        crate::clock::step(&self.dir, offset_s);
    }

    /// Sets the delay the proxy adds between the servers and PostgreSQL.
    pub fn set_db_delay(&self, delay: Duration) {
        if let Some(p) = &self.proxy {
            p.set_delay(delay);
        }
    }
}

/// The request creating a witness run of `ticks` steps of `interval_ms`.
fn witness_run(ticks: u64, interval_ms: u64) -> CreateFlowRun {
    let params: Parameters = [
        ("ticks".to_string(), serde_json::json!(ticks)),
        ("interval_ms".to_string(), serde_json::json!(interval_ms)),
    ]
    .into_iter()
    .collect();
    CreateFlowRun {
        project: Some("faults".into()),
        deployment: Some("witness".into()),
        parameters: params,
        ..Default::default()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for p in &mut self.procs {
            p.kill();
        }
        for n in self.agents.iter() {
            crate::net::kill_all_in(&n.host.ns);
        }
        if let Some(p) = self.proxy.take() {
            drop(p);
        }
        if let Some(p) = self.agent_proxy.take() {
            drop(p);
        }
        if let Some(t) = self.tmpfs.take() {
            let _ = Command::new("umount").arg("-l").arg(&t).status();
        }
        if std::env::var_os("WEIR_FAULTS_KEEP").is_none() && !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        } else {
            eprintln!("faults: kept {} for inspection", self.dir.display());
        }
    }
}
