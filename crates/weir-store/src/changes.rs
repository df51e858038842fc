//! What written changes of runs imply besides their rows, in the changes' own transaction.

use crate::Result;
use sqlx::{Any, Transaction};
use uuid::Uuid;
use weir_core::run::Run;

/// What written changes of runs (`(prev, next)`, in order) imply besides their rows, in their
/// own transaction: a run that ended closes its open task runs, and a change that is an
/// event writes its notifications (they commit together or not at all). One query finds the
/// ended runs that have open task runs and one reads each project's rules, however many
/// changes a group commit holds: on SQLite every statement waits for the one writer.
pub(crate) async fn after_changes(
    tx: &mut Transaction<'static, Any>,
    changes: &[(&Run, &Run)],
) -> Result<()> {
    let ended: Vec<&Run> = changes
        .iter()
        .filter(|(prev, next)| next.state.is_terminal() && !prev.state.is_terminal())
        .map(|(_, next)| *next)
        .collect();
    if !ended.is_empty() {
        let ids: Vec<Uuid> = ended.iter().map(|r| r.id).collect();
        let open = crate::task_runs::with_open_task_runs(tx, &ids).await?;
        for run in ended.iter().filter(|r| open.contains(&r.id)) {
            crate::task_runs::close_task_runs(tx, run).await?;
        }
    }
    crate::notify::enqueue_run_events(tx, changes).await
}
