//! Supervision records: one file per supervised run in the state directory,
//! `<state_dir>/<run>.json`, written when the run is launched or taken over and read by the
//! agent's next start ([`super::adopt`]).

use super::Shared;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;
use uuid::Uuid;

/// A supervision record, `<state_dir>/<run>.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct Record {
    /// The flow run supervised; the record's file is named after it.
    pub run: Uuid,
    /// The attempt this agent claimed and launched.
    pub attempt: u32,
    /// The launch's id on its infrastructure ([`crate::launcher::Launched::id`]): a pid, a
    /// task ARN.
    pub pid: String,
    /// The launcher's name; records without one are processes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub launcher: Option<String>,
    /// Whether the deployment runs a plain command (its exit code decides its state).
    #[serde(default)]
    pub plain: bool,
    /// The process is known to have ended (its record stays for its spooled output to be
    /// shipped): its pid is never looked at again, it may be another process's by now.
    #[serde(default)]
    pub ended: bool,
    /// The references (never the values) of the secrets the launch was given, by variable:
    /// an agent taking over a process that ended while no agent ran resolves them again to
    /// redact its spooled output. Its agent's key may not read the deployment, and the
    /// deployment may have changed since. `None` in records of agents before this field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secrets: Option<BTreeMap<String, String>>,
}

/// Where run `run`'s record is.
pub(super) fn path(sh: &Shared, run: Uuid) -> PathBuf {
    sh.options.state_dir.join(format!("{run}.json"))
}

/// Writes the record of a run being supervised.
pub(super) fn write(sh: &Shared, record: &Record) {
    if let Ok(text) = serde_json::to_string(record) {
        let _ = std::fs::write(path(sh, record.run), text);
    }
}

/// Removes run `run`'s record.
pub(super) fn remove(sh: &Shared, run: Uuid) {
    let _ = std::fs::remove_file(path(sh, run));
}

/// Removes run `run`'s record if it is attempt `attempt`'s (a later attempt's stays).
pub(super) fn remove_attempt(sh: &Shared, run: Uuid, attempt: u32) {
    let current = std::fs::read_to_string(path(sh, run))
        .ok()
        .and_then(|s| serde_json::from_str::<Record>(&s).ok());
    if current.is_none_or(|r| r.attempt == attempt) {
        remove(sh, run);
    }
}

/// Every record in the state directory; a file that is not one is removed.
pub(super) fn read_all(sh: &Shared) -> Vec<Record> {
    let Ok(entries) = std::fs::read_dir(&sh.options.state_dir) else {
        return Vec::new();
    };
    let mut records = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().and_then(|e| e.to_str()) != Some("json") {
            continue;
        }
        match std::fs::read_to_string(&path)
            .ok()
            .and_then(|s| serde_json::from_str::<Record>(&s).ok())
        {
            Some(r) => records.push(r),
            None => {
                let _ = std::fs::remove_file(&path);
            }
        }
    }
    records
}
