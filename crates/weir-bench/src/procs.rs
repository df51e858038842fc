//! Real processes for the benchmarks: the release `weir` and `example-flows` binaries next to
//! `weir-bench`, started on a free loopback port with a fresh data directory.

use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A binary next to this one (same cargo profile directory).
pub fn sibling(name: &str) -> Result<PathBuf> {
    let exe = std::env::current_exe().context("cannot locate weir-bench")?;
    let path = exe
        .parent()
        .context("weir-bench has no directory")?
        .join(name);
    if !path.exists() {
        bail!(
            "{} not found: build everything first with `cargo build --release`",
            path.display()
        );
    }
    Ok(path)
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

/// A child process killed when dropped.
pub struct Proc {
    /// The spawned process, killed and reaped on drop.
    pub child: Child,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A running `weir server`.
pub struct ServerProc {
    /// The server's process (killed when this is dropped).
    pub proc: Proc,
    /// Its base URL, `http://127.0.0.1:PORT`.
    pub url: String,
    /// Time from spawn to the first successful `/readyz`.
    pub ready_after: Duration,
    /// An admin API key: the one the server bootstrapped into `home/admin.key`, or
    /// `WEIR_API_KEY` when the database already had keys.
    pub key: String,
}

/// Starts `weir server` with data directory `home` and database `db` (default: SQLite in
/// `home`), and waits until `/readyz` answers.
pub fn start_server(home: &Path, db: Option<&str>, extra: &[&str]) -> Result<ServerProc> {
    let (proc, url, ready_after) = spawn_server(home, db, extra)?;
    let key = admin_key(home, Duration::from_secs(10))?;
    Ok(ServerProc {
        proc,
        url,
        ready_after,
        key,
    })
}

/// Starts another replica on the database of a running server whose admin key is `key`.
pub fn start_replica(home: &Path, db: Option<&str>, key: &str) -> Result<ServerProc> {
    let (proc, url, ready_after) = spawn_server(home, db, &[])?;
    Ok(ServerProc {
        proc,
        url,
        ready_after,
        key: key.to_string(),
    })
}

/// Spawns `weir server` on a free port and waits until it is ready.
fn spawn_server(home: &Path, db: Option<&str>, extra: &[&str]) -> Result<(Proc, String, Duration)> {
    let weir = sibling("weir")?;
    let port = free_port()?;
    let mut cmd = Command::new(weir);
    cmd.arg("server")
        .arg("--bind")
        .arg(format!("127.0.0.1:{port}"))
        .args(extra)
        .env("WEIR_HOME", home)
        .env("WEIR_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if let Some(db) = db {
        cmd.arg("--db").arg(db);
    }
    let started = Instant::now();
    let proc = Proc {
        child: cmd.spawn().context("cannot start weir server")?,
    };
    let url = format!("http://127.0.0.1:{port}");
    let ready_after = wait_ready(&url, started, Duration::from_secs(30))?;
    Ok((proc, url, ready_after))
}

/// The admin key a server stored in `home/admin.key` (written just after it starts serving),
/// waiting at most `limit`; else `WEIR_API_KEY` (a database that already had keys).
fn admin_key(home: &Path, limit: Duration) -> Result<String> {
    let file = home.join("admin.key");
    let since = Instant::now();
    while since.elapsed() < limit {
        if let Ok(k) = std::fs::read_to_string(&file)
            && !k.trim().is_empty()
        {
            return Ok(k.trim().to_string());
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    match std::env::var("WEIR_API_KEY") {
        Ok(k) if !k.trim().is_empty() => Ok(k.trim().to_string()),
        _ => bail!(
            "{} was not written (the database already has keys): set WEIR_API_KEY to an admin key of it",
            file.display()
        ),
    }
}

/// Polls `/readyz` with a raw HTTP/1.1 request every millisecond until it answers 200.
fn wait_ready(url: &str, since: Instant, limit: Duration) -> Result<Duration> {
    use std::io::{Read, Write};
    let addr = url.trim_start_matches("http://");
    while since.elapsed() < limit {
        if let Ok(mut s) = std::net::TcpStream::connect(addr) {
            let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
            let req = format!("GET /readyz HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
            if s.write_all(req.as_bytes()).is_ok() {
                let mut buf = [0u8; 16];
                if let Ok(n) = s.read(&mut buf)
                    && buf[..n].starts_with(b"HTTP/1.1 200")
                {
                    return Ok(since.elapsed());
                }
            }
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    bail!("server at {url} not ready within {limit:?}")
}

/// Resident set size of a process, in MiB.
pub fn rss_mib(pid: u32) -> Result<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .context("no VmRSS")?;
    Ok(kb / 1024.0)
}

/// CPU time a process has used so far (user and system, every thread, living or ended), in
/// seconds: fields 14 and 15 of `/proc/<pid>/stat`, in clock ticks of 1/100 s (Linux's
/// USER_HZ).
pub fn cpu_seconds(pid: u32) -> Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // The command name (field 2) is in parentheses and may hold spaces: count from after it.
    let (_, rest) = stat
        .rsplit_once(')')
        .context("no command name in /proc/<pid>/stat")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let tick = |i: usize| -> Result<f64> {
        let field = fields.get(i).context("/proc/<pid>/stat is too short")?;
        Ok(field.parse::<f64>()?)
    };
    // `fields[0]` is field 3 (the state), so utime (14) and stime (15) are at 11 and 12.
    Ok((tick(11)? + tick(12)?) / 100.0)
}

/// Rounds to `digits` decimals for printing.
pub fn round(x: f64, digits: i32) -> f64 {
    let f = 10f64.powi(digits);
    (x * f).round() / f
}
