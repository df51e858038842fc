//! Outcome files: how a flow process hands its final state to its agent.
//!
//! The agent names a file per attempt in `WEIR_OUTCOME_FILE`
//! (`<state dir>/outcomes/<run>-<attempt>.json`); the SDK writes the final state it is
//! about to propose there first. When the process exits and the run is still not final
//! (the server was unreachable until the process gave up, or the process was killed between
//! writing and sending), the agent — the one that launched it, or the one that took it over
//! after a restart — proposes that state itself. Its transition id makes a second delivery
//! harmless.

use std::path::{Path, PathBuf};
use uuid::Uuid;
use weir_core::api::{FlowRun, ProposeState};

/// The directory of outcome files inside the agent's state directory.
pub(crate) fn dir(state_dir: &Path) -> PathBuf {
    state_dir.join("outcomes")
}

/// The outcome file of `run`'s `attempt`.
pub(crate) fn path(state_dir: &Path, run: Uuid, attempt: u32) -> PathBuf {
    dir(state_dir).join(format!("{run}-{attempt}.json"))
}

/// The exit file of `run`'s `attempt`: where the supervisor of a plain command records how it
/// ended ([`crate::supervise`]).
pub(crate) fn exit_path(state_dir: &Path, run: Uuid, attempt: u32) -> PathBuf {
    dir(state_dir).join(format!("{run}-{attempt}.exit"))
}

/// The final state the process of `run`'s current attempt left, if it left a valid one.
pub(crate) fn read(state_dir: &Path, run: &FlowRun) -> Option<ProposeState> {
    let text = std::fs::read(path(state_dir, run.id, run.attempt)).ok()?;
    serde_json::from_slice::<ProposeState>(&text)
        .ok()
        .filter(|p| p.attempt == run.attempt && p.state.is_terminal())
}
