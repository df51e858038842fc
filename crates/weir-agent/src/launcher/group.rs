//! Process groups of the agent's local runs: whether a process is alive, signalling a
//! group, whether a group is empty, and cancelling a group the agent did not start itself.
//! The process launcher and the spool's follower share them.

use super::{Cancel, Canceller};
use nix::errno::Errno;
use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;
use std::io::ErrorKind;
use std::time::Duration;

/// Whether a process with this pid exists and has not yet exited. A zombie (exited, not yet
/// reaped by its parent) counts as gone on Linux, where `/proc` tells them apart.
pub fn is_alive(pid: u32) -> bool {
    let raw = match i32::try_from(pid) {
        Ok(raw) if raw > 0 => raw,
        _ => return false,
    };
    match kill(Pid::from_raw(raw), None) {
        Ok(()) | Err(Errno::EPERM) => {}
        Err(_) => return false,
    }
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // Format: `pid (comm) state ...`; comm may itself contain `)`.
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.trim_start().chars().next())
            .is_none_or(|state| state != 'Z' && state != 'X'),
        Err(e)
            if e.kind() == ErrorKind::NotFound && std::path::Path::new("/proc/self").exists() =>
        {
            false
        }
        Err(_) => true,
    }
}

/// Sends `signal` to process group `pgid`; a group that no longer exists is not an error.
pub(super) fn signal_group(pgid: Pid, signal: Signal) {
    // Never 0 or 1: that would signal the agent's own group, or everything.
    if pgid.as_raw() <= 1 {
        return;
    }
    match killpg(pgid, signal) {
        Ok(()) | Err(Errno::ESRCH) => {}
        Err(e) => {
            tracing::warn!(pgid = pgid.as_raw(), %signal, error = %e, "could not signal process group")
        }
    }
}

/// Whether no process is left in process group `pgid` (the writers of a spool).
pub(super) fn group_empty(pgid: i32) -> bool {
    if pgid <= 1 {
        return true;
    }
    matches!(killpg(Pid::from_raw(pgid), None), Err(Errno::ESRCH))
}

/// A [`Canceller`] for a process group this agent did not start itself (a run taken over
/// after an agent restart): SIGTERM to the group, SIGKILL after the grace period.
pub fn pid_canceller(pid: u32) -> Canceller {
    Canceller::new(GroupCancel { pid })
}

/// [`Cancel`] of an adopted process group.
struct GroupCancel {
    pid: u32,
}

impl Cancel for GroupCancel {
    fn cancel(&self, grace: Duration) {
        let Ok(raw) = i32::try_from(self.pid) else {
            return;
        };
        let pgid = Pid::from_raw(raw);
        if grace.is_zero() {
            signal_group(pgid, Signal::SIGKILL);
            return;
        }
        signal_group(pgid, Signal::SIGTERM);
        let pid = self.pid;
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                tokio::time::sleep(grace).await;
                if is_alive(pid) {
                    signal_group(pgid, Signal::SIGKILL);
                }
            });
        }
    }
}
