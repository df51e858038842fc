//! Batched ingest of task-run reports and log lines from flow processes and agents.

use crate::access::{Require, perm};
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::extract::Json;
use crate::state::AppState;
use axum::extract::State;
use std::collections::BTreeSet;
use uuid::Uuid;
use weir_core::api::{BatchAccepted, LogBatch, TaskRunBatch};
use weir_core::auth::{Permission, Role};

/// Most items in one batch.
const MAX_BATCH: usize = 50_000;
/// Longest stored log line; longer ones are cut with a marker.
const MAX_LINE: usize = 32 * 1024;

/// Checks every run a batch names exists and the caller (who may report) may report on it.
async fn check_runs(st: &AppState, caller: &Caller, ids: BTreeSet<Uuid>) -> ApiResult<()> {
    let ids: Vec<Uuid> = ids.into_iter().collect();
    let known = st.store.flow_run_owners(&ids).await?;
    let missing = |id: &Uuid| {
        ApiError::NotFound(format!(
            "flow run {id} not found: create the run before reporting its task runs or logs"
        ))
    };
    for id in &ids {
        let Some((project, _, _)) = known.get(id) else {
            return Err(missing(id));
        };
        match caller {
            // Plain keys: the project decides; agent keys and run tokens: the run itself.
            Caller::Key { role, .. } if *role != Role::Agent => {
                if !caller.sees(project) {
                    return Err(missing(id));
                }
            }
            _ => {
                let run = st.store.flow_run(*id).await?;
                // A run token of an old attempt is dead (401), as on every other endpoint.
                caller
                    .check_run(st, &run, Permission::Report)
                    .await
                    .map_err(|e| match e {
                        // A database failure stays a 503 (or 500) the sender retries: as a 404
                        // an agent took it for a run no longer its own and dropped the lines.
                        e @ (ApiError::Unauthorized
                        | ApiError::Unavailable(_)
                        | ApiError::Internal(_)) => e,
                        _ => missing(id),
                    })?;
            }
        }
    }
    Ok(())
}

/// `POST /api/v1/task_runs/batch`.
pub(crate) async fn task_runs(
    State(st): State<AppState>,
    caller: Require<perm::Report>,
    Json(batch): Json<TaskRunBatch>,
) -> ApiResult<axum::Json<BatchAccepted>> {
    if batch.reports.len() > MAX_BATCH {
        return Err(ApiError::field(
            "reports",
            format!(
                "{} reports in one batch; send at most {MAX_BATCH}",
                batch.reports.len()
            ),
        ));
    }
    check_runs(
        &st,
        &caller,
        batch.reports.iter().map(|r| r.flow_run_id).collect(),
    )
    .await?;
    let accepted = st.store.ingest_task_runs(&batch.reports).await?;
    metrics::counter!("weir_task_run_reports_total").increment(accepted);
    st.touched();
    Ok(axum::Json(BatchAccepted { accepted }))
}

/// `POST /api/v1/logs/batch`.
pub(crate) async fn logs(
    State(st): State<AppState>,
    caller: Require<perm::Report>,
    Json(mut batch): Json<LogBatch>,
) -> ApiResult<axum::Json<BatchAccepted>> {
    if batch.lines.len() > MAX_BATCH {
        return Err(ApiError::field(
            "lines",
            format!(
                "{} lines in one batch; send at most {MAX_BATCH}",
                batch.lines.len()
            ),
        ));
    }
    check_runs(
        &st,
        &caller,
        batch.lines.iter().map(|l| l.flow_run_id).collect(),
    )
    .await?;
    if let Some((i, seq)) = batch
        .lines
        .iter()
        .enumerate()
        .find_map(|(i, l)| l.seq.filter(|s| i64::try_from(*s).is_err()).map(|s| (i, s)))
    {
        return Err(ApiError::field(
            format!("lines[{i}].seq"),
            format!(
                "seq {seq} is too large; a line number is at most {}",
                i64::MAX
            ),
        ));
    }
    for line in &mut batch.lines {
        if line.message.len() > MAX_LINE {
            let mut cut = MAX_LINE;
            while !line.message.is_char_boundary(cut) {
                cut -= 1;
            }
            line.message.truncate(cut);
            line.message.push_str(" … [truncated]");
        }
    }
    let accepted = st.store.ingest_logs(&batch.lines).await?;
    metrics::counter!("weir_log_lines_total").increment(accepted);
    st.touched();
    Ok(axum::Json(BatchAccepted { accepted }))
}
