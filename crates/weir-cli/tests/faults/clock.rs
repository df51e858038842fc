//! A clock step on one server replica: libfaketime (Debian's `libfaketime`, installed here
//! when missing) preloaded into that replica's dynamically linked `weir` binary. Its
//! wall clock reads `$FAKETIME_TIMESTAMP_FILE` (an offset such as `+3600`, re-read every
//! second), so the scenario steps it mid-run by rewriting the file; the monotonic clock is
//! left alone, as an NTP step would leave it.

use std::path::{Path, PathBuf};
use std::process::Command;

const LIB: &str = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";

/// Makes sure libfaketime is installed (apt-get, once), or says why not.
pub fn ensure() -> Result<(), String> {
    if Path::new(LIB).exists() {
        return Ok(());
    }
    let status = Command::new("apt-get")
        .args(["install", "-y", "--no-install-recommends", "libfaketime"])
        .env("DEBIAN_FRONTEND", "noninteractive")
        .status()
        .map_err(|e| format!("cannot run apt-get: {e}"))?;
    if !status.success() || !Path::new(LIB).exists() {
        let _ = Command::new("apt-get").arg("update").status();
        let again = Command::new("apt-get")
            .args(["install", "-y", "--no-install-recommends", "libfaketime"])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status();
        if !again.is_ok_and(|s| s.success()) || !Path::new(LIB).exists() {
            return Err(format!(
                "libfaketime could not be installed ({LIB} missing)"
            ));
        }
    }
    Ok(())
}

fn file(dir: &Path) -> PathBuf {
    dir.join("faketime.rc")
}

/// The environment that fakes one process's wall clock through `dir/faketime.rc`.
pub fn faketime_env(dir: &Path) -> Vec<(String, String)> {
    if let Err(e) = ensure() {
        panic!("the clock-step scenario needs libfaketime: {e}");
    }
    step(dir, 0);
    vec![
        ("LD_PRELOAD".into(), LIB.into()),
        (
            "FAKETIME_TIMESTAMP_FILE".into(),
            file(dir).display().to_string(),
        ),
        ("FAKETIME_CACHE_DURATION".into(), "1".into()),
        ("FAKETIME_DONT_FAKE_MONOTONIC".into(), "1".into()),
    ]
}

/// Sets the faked clock to the real one plus `offset_s` seconds.
pub fn step(dir: &Path, offset_s: i64) {
    std::fs::write(file(dir), format!("{offset_s:+}\n")).expect("write the faketime file");
}
