//! Whether the memory cgroup this process lives in killed something for lack of memory, and
//! its limit: how `weir exec` in a container tells an out-of-memory kill from another SIGKILL.
//!
//! Read from the cgroup files visible at `/sys/fs/cgroup` (v1 `memory/`, or v2), which inside a
//! container are the container's own. A cgroup without a memory limit (a process on the host)
//! never counts as out of memory.

use std::path::Path;

const ROOT: &str = "/sys/fs/cgroup";

/// Whether the cgroup has a memory limit and the kernel killed a process for exceeding it.
pub(crate) fn killed() -> bool {
    limit_bytes().is_some() && oom_kills(Path::new(ROOT)).is_some_and(|n| n > 0)
}

/// The cgroup's memory limit as a size such as `512Mi`, if it has one.
pub(crate) fn limit() -> Option<String> {
    limit_bytes().map(weir_core::infrastructure::format_memory)
}

fn limit_bytes() -> Option<u64> {
    let root = Path::new(ROOT);
    let v1 = std::fs::read_to_string(root.join("memory/memory.limit_in_bytes"));
    let text = v1
        .or_else(|_| std::fs::read_to_string(root.join("memory.max")))
        .ok()?;
    // "max" (v2) or a page-rounded 2^63 (v1) mean no limit.
    text.trim().parse::<u64>().ok().filter(|b| *b < 1 << 62)
}

fn oom_kills(root: &Path) -> Option<u64> {
    let v1 = std::fs::read_to_string(root.join("memory/memory.oom_control"));
    let text = v1
        .or_else(|_| std::fs::read_to_string(root.join("memory.events")))
        .ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("oom_kill "))
        .and_then(|n| n.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_as_a_deployment_writes_them() {
        use weir_core::infrastructure::{format_memory, parse_memory};
        for written in ["512Mi", "1Gi", "1536Mi", "1000"] {
            assert_eq!(
                format_memory(parse_memory(written).expect("parses")),
                written
            );
        }
    }

    #[test]
    fn oom_kill_counter_from_either_cgroup_version() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(
            dir.path().join("memory.events"),
            "low 0\noom 1\noom_kill 2\n",
        )
        .expect("write");
        assert_eq!(oom_kills(dir.path()), Some(2));
        std::fs::create_dir(dir.path().join("memory")).expect("mkdir");
        std::fs::write(
            dir.path().join("memory/memory.oom_control"),
            "oom_kill_disable 0\nunder_oom 0\noom_kill 0\n",
        )
        .expect("write");
        assert_eq!(oom_kills(dir.path()), Some(0));
    }
}
