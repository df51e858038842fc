//! The output spool: a local process's stdout and stderr written to files the agent tails,
//! instead of pipes the agent reads.
//!
//! A pipe dies with its reader: output a flow process writes while its agent is down is lost
//! (or the process gets `EPIPE`). Files outlive the agent. The process launcher, when the
//! agent gives it a spool ([`LaunchSpec::spool`](super::LaunchSpec::spool)), points the
//! child's stdout and stderr at `<spool>/<run>/<attempt>.out` and `.err` (files `0600`,
//! directories `0700`) and tails them; an agent that restarts and takes the run over tails
//! them again from the start ([`follow`]).
//!
//! Lines are numbered deterministically: the log stream of a spool file is derived from run,
//! attempt and stream name ([`stream_id`]) and a line's number is its position in the file
//! (as cut by the [`LineSplitter`]), so every agent that reads the file sends the same line
//! under the same `(attempt, stream, seq)` and the server stores each once.
//!
//! Nobody but the agent removes a spool: after the attempt's end was reported and all its
//! lines were shipped ([`Spool::remove`]). Until then it holds the run's raw output, secrets
//! it printed included (redaction happens when a line is read), readable by the agent's user
//! only. The files grow with the run's output (a child is never paused by a slow reader, as a
//! full pipe would pause it); the agent's memory stays bounded: per stream one read chunk and
//! one unfinished line of at most [`MAX_LINE_BYTES`](super::MAX_LINE_BYTES), plus the bounded
//! channel of lines.

use super::group::group_empty;
use super::{ExitStatus, LineSplitter, OutputLine, Redactor, Stream};
use std::io::{ErrorKind, Read};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use uuid::Uuid;

/// The spool of an agent whose state directory is `state_dir`.
pub fn dir(state_dir: &Path) -> PathBuf {
    state_dir.join("spool")
}

/// The log stream of the lines of one spool file: FNV-1a over run, attempt and stream name,
/// the same in every agent and every build (a [`std::hash::Hasher`] promises neither).
pub fn stream_id(run: Uuid, attempt: u32, stream: Stream) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    let bytes = run
        .as_bytes()
        .iter()
        .copied()
        .chain(attempt.to_be_bytes())
        .chain(stream.as_str().bytes());
    for b in bytes {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h
}

/// A spool directory: `<root>/<run>/<attempt>.out` and `<attempt>.err`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spool {
    root: PathBuf,
}

impl Spool {
    /// The spool under `root` (created when a run is first spooled).
    pub fn new(root: impl Into<PathBuf>) -> Spool {
        Spool { root: root.into() }
    }

    /// The directory the spool files are kept in.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn run_dir(&self, run: Uuid) -> PathBuf {
        self.root.join(run.to_string())
    }

    /// The file of `stream` of attempt `attempt` of `run`.
    pub fn path(&self, run: Uuid, attempt: u32, stream: Stream) -> PathBuf {
        let ext = match stream {
            Stream::Stdout => "out",
            Stream::Stderr => "err",
        };
        self.run_dir(run).join(format!("{attempt}.{ext}"))
    }

    /// Creates (empties) the two files of an attempt, for the child to write: `0600` in
    /// directories `0700`.
    pub fn create(
        &self,
        run: Uuid,
        attempt: u32,
    ) -> std::io::Result<(std::fs::File, std::fs::File)> {
        for dir in [self.root.clone(), self.run_dir(run)] {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&dir)?;
            // An existing directory keeps its mode otherwise.
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))?;
        }
        let open = |stream| {
            std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(self.path(run, attempt, stream))
        };
        Ok((open(Stream::Stdout)?, open(Stream::Stderr)?))
    }

    /// Whether attempt `attempt` of `run` has a spool.
    pub fn exists(&self, run: Uuid, attempt: u32) -> bool {
        self.path(run, attempt, Stream::Stdout).exists()
            || self.path(run, attempt, Stream::Stderr).exists()
    }

    /// Removes an attempt's files, and the run's directory once it is empty.
    pub fn remove(&self, run: Uuid, attempt: u32) {
        for stream in [Stream::Stdout, Stream::Stderr] {
            let _ = std::fs::remove_file(self.path(run, attempt, stream));
        }
        // Fails while another attempt's files are there: that is the point.
        let _ = std::fs::remove_dir(self.run_dir(run));
    }

    /// Every spooled `(run, attempt)`.
    pub fn attempts(&self) -> Vec<(Uuid, u32)> {
        let Ok(runs) = std::fs::read_dir(&self.root) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for run_dir in runs.flatten() {
            let Some(run) = run_dir
                .file_name()
                .to_str()
                .and_then(|n| Uuid::parse_str(n).ok())
            else {
                continue;
            };
            let Ok(files) = std::fs::read_dir(run_dir.path()) else {
                continue;
            };
            for f in files.flatten() {
                let name = f.file_name();
                let Some(attempt) = name
                    .to_str()
                    .and_then(|n| n.split_once('.'))
                    .and_then(|(a, _)| a.parse::<u32>().ok())
                else {
                    continue;
                };
                if !out.contains(&(run, attempt)) {
                    out.push((run, attempt));
                }
            }
            if std::fs::read_dir(run_dir.path()).is_ok_and(|mut d| d.next().is_none()) {
                let _ = std::fs::remove_dir(run_dir.path());
            }
        }
        out
    }
}

/// Starts tailing both files of an attempt into `tx`, from their start, with lines numbered
/// in each file. Returns once both readers are running; the future resolves when both
/// ended: once `stop` is set they read to the end of their file and stop. A missing file
/// reads as empty. `token_prefix`: see [`LineSplitter::redact_token`].
pub(super) fn tail_attempt(
    spool: &Spool,
    run: Uuid,
    attempt: u32,
    redactor: Arc<Redactor>,
    token_prefix: Option<String>,
    tx: mpsc::Sender<OutputLine>,
    stop: watch::Receiver<bool>,
) -> impl std::future::Future<Output = ()> + Send + 'static {
    let tasks: Vec<_> = [Stream::Stdout, Stream::Stderr]
        .into_iter()
        .map(|stream| {
            let mut splitter = LineSplitter::numbered(stream, redactor.clone());
            if let Some(prefix) = &token_prefix {
                splitter = splitter.redact_token(prefix.clone());
            }
            tokio::spawn(tail(
                spool.path(run, attempt, stream),
                splitter,
                tx.clone(),
                stop.clone(),
            ))
        })
        .collect();
    async move {
        for t in tasks {
            // A reader only ends early by panicking, which leaves nothing more to read.
            let _ = t.await;
        }
    }
}

/// Shortest and longest wait between reads of a file that has nothing new.
const POLL_MIN: Duration = Duration::from_millis(10);
const POLL_MAX: Duration = Duration::from_millis(100);

/// Reads `path` from its start, sending its redacted lines, until `stop` is set and the end
/// of the file is reached after that. Stops early when the receiver is gone (nobody blocks
/// on a file).
///
/// The file is local and was just written (its pages are in memory), so it is opened and read
/// in place: through `tokio::fs` each open and read was a hand-off to a blocking thread and
/// back, four of them while a launched process started and more on every poll, and on a
/// loaded 2-core machine those thread switches delayed the process's start.
async fn tail(
    path: PathBuf,
    mut splitter: LineSplitter,
    tx: mpsc::Sender<OutputLine>,
    mut stop: watch::Receiver<bool>,
) {
    let mut file = match std::fs::File::open(&path) {
        Ok(f) => Some(f),
        Err(e) if e.kind() == ErrorKind::NotFound => None,
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "cannot read a run's spooled output");
            None
        }
    };
    let mut chunk = vec![0u8; 8192];
    let mut lines = Vec::new();
    let mut idle = POLL_MIN;
    // Set once `stop` was seen: the next end of file is the last.
    let mut ending = false;
    loop {
        let read = match file.as_mut() {
            Some(f) => f.read(&mut chunk),
            None => Ok(0),
        };
        match read {
            Ok(0) => {
                if ending {
                    break;
                }
                if *stop.borrow() {
                    ending = true;
                    continue;
                }
                tokio::select! {
                    () = tokio::time::sleep(idle) => {}
                    // A sender gone without a word: nobody will say more, finish.
                    changed = stop.changed() => if changed.is_err() {
                        ending = true;
                    },
                }
                idle = (idle * 2).min(POLL_MAX);
                continue;
            }
            Ok(n) => {
                idle = POLL_MIN;
                splitter.push(&chunk[..n], &mut lines);
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "reading a run's spooled output failed");
                break;
            }
        }
        for line in lines.drain(..) {
            if tx.send(line).await.is_err() {
                return;
            }
        }
    }
    if let Some(line) = splitter.finish() {
        let _ = tx.send(line).await;
    }
}

/// Follows attempt `attempt` of `run`, whose process `pid` an earlier agent launched with
/// this spool, after a restart: its output from the start of its files (lines the earlier
/// agent shipped are sent again under the same numbers, and stored once), its end (when its
/// process group is gone, or `drain` after its leader exited: the rest of the group is then
/// killed, and reading stops `drain` later), and a canceller of its group. Its exit status is
/// unknown (it was not this agent's child). `redact` are the values to redact; the attempt's
/// run token is redacted by its start too (`weirrun_<run>_<attempt>_`, the shape the server
/// mints), as its value is not known once the process is gone. Pid 0: the process is gone
/// already, and the files are read to their end.
pub fn follow(
    spool: &Spool,
    run: Uuid,
    attempt: u32,
    pid: u32,
    redact: &[String],
    drain: Duration,
) -> super::Launched {
    let redactor = Arc::new(Redactor::new(redact));
    let (tx, rx) = mpsc::channel(1024);
    let (stop_tx, stop_rx) = watch::channel(false);
    let token_prefix = format!("weirrun_{}_{attempt}_", run.simple());
    let readers = tail_attempt(
        spool,
        run,
        attempt,
        redactor,
        Some(token_prefix),
        tx,
        stop_rx,
    );
    let (status_tx, status_rx) = watch::channel(None);
    let pgid = i32::try_from(pid).unwrap_or(0);
    tokio::spawn(async move {
        while pid > 0 && super::is_alive(pid) {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let mut killed = false;
        let mut deadline = tokio::time::Instant::now() + drain;
        while !group_empty(pgid) {
            if tokio::time::Instant::now() >= deadline {
                if killed {
                    break;
                }
                tracing::debug!(
                    pgid,
                    "process exited but processes it started remain; killing them"
                );
                let _ = nix::sys::signal::killpg(
                    nix::unistd::Pid::from_raw(pgid),
                    nix::sys::signal::Signal::SIGKILL,
                );
                killed = true;
                deadline = tokio::time::Instant::now() + drain;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let _ = stop_tx.send(true);
        readers.await;
        let _ = status_tx.send(Some(ExitStatus::Unknown(
            "the process was taken over after an agent restart; its exit code went to nobody"
                .into(),
        )));
    });
    super::Launched::new(
        rx,
        FollowedHandle {
            pid,
            status: status_rx,
        },
    )
}

/// [`super::LaunchHandle`] of a process followed through its spool.
struct FollowedHandle {
    pid: u32,
    status: watch::Receiver<Option<ExitStatus>>,
}

impl super::LaunchHandle for FollowedHandle {
    fn id(&self) -> String {
        self.pid.to_string()
    }

    fn wait(&mut self) -> futures::future::BoxFuture<'_, ExitStatus> {
        Box::pin(async move {
            let status = match self.status.wait_for(Option::is_some).await {
                Ok(status) => status.clone(),
                Err(_) => None,
            };
            status.unwrap_or_else(|| {
                ExitStatus::Unknown(format!(
                    "the task following process {} stopped (agent shutting down?)",
                    self.pid
                ))
            })
        })
    }

    fn canceller(&self) -> super::Canceller {
        super::group::pid_canceller(self.pid)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn stream_ids_are_stable_and_distinct() {
        let run = Uuid::from_u128(0x0193_0000_0000_7000_8000_0000_0000_0001);
        let out = stream_id(run, 1, Stream::Stdout);
        assert_eq!(out, stream_id(run, 1, Stream::Stdout));
        assert_ne!(out, stream_id(run, 1, Stream::Stderr));
        assert_ne!(out, stream_id(run, 2, Stream::Stdout));
        // Fixed forever: an agent of another build must number the same file the same way.
        assert_eq!(out, 0xe162_8356);
    }

    #[test]
    fn files_are_private_and_removed() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::new(dir.path().join("spool"));
        let run = Uuid::now_v7();
        spool.create(run, 1).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(spool.root()), 0o700);
        assert_eq!(mode(&spool.run_dir(run)), 0o700);
        assert_eq!(mode(&spool.path(run, 1, Stream::Stdout)), 0o600);
        assert_eq!(mode(&spool.path(run, 1, Stream::Stderr)), 0o600);
        assert_eq!(spool.attempts(), vec![(run, 1)]);
        spool.remove(run, 1);
        assert!(!spool.exists(run, 1));
        assert!(!spool.run_dir(run).exists());
        assert!(spool.attempts().is_empty());
    }
}
