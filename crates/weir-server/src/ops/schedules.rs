//! Backfills: the runs of every tick of a deployment's schedules in a window, created through
//! the scheduler's tick key (`weir_core::create::backfilled`), so a tick never gets two.

use crate::access::{Require, perm};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use weir_core::Timestamp;
use weir_core::api::{
    Backfill, BackfillOutcome, BackfillResult, BackfillTick, DEFAULT_BACKFILL_MAX, MAX_BACKFILL,
};
use weir_core::audit::AuditAction;
use weir_core::deployment::Deployment;
use weir_core::schedule::{self, backfill};

/// Backfills `project/name` over `req`'s window (`weir_core::schedule::backfill` decides the
/// ticks and refusals); with `dry_run`, reports what exists and what would be created.
pub(crate) async fn backfill(
    st: &AppState,
    caller: &Require<perm::Run>,
    project: &str,
    name: &str,
    req: &Backfill,
) -> ApiResult<BackfillResult> {
    caller.check_project(project, || format!("deployment {project}/{name}"))?;
    let d = backfillable(st, project, name).await?;
    let schedules = schedule::parse_all(&d.spec.schedules)
        .map_err(|e| ApiError::Internal(format!("stored schedule is invalid: {e}")))?;
    let now = st.now();
    let max = req.max.unwrap_or(DEFAULT_BACKFILL_MAX);
    let ticks = backfill::window_ticks(&schedules, req.from, req.to, now, max, MAX_BACKFILL)
        .map_err(|e| ApiError::field(e.field(), e.to_string()))?;
    let mut out = Vec::with_capacity(ticks.len());
    let (mut created, mut existing) = (0u32, 0u32);
    if req.dry_run {
        (out, existing) = dry_run(st, &d, &ticks).await?;
    } else {
        for (t, weir_store::Created { run, created: new }) in
            st.store.backfill(&d, &ticks, now).await?
        {
            if new {
                created += 1;
            } else {
                existing += 1;
            }
            out.push(BackfillTick {
                tick_at: t,
                outcome: if new {
                    BackfillOutcome::Created
                } else {
                    BackfillOutcome::Exists
                },
                run_id: Some(run.id),
                run_name: Some(run.name),
                state: Some(run.state),
            });
        }
        if created > 0 {
            st.work_available();
            st.touched();
            let detail = format!(
                "{created} runs for ticks from {} to {}",
                req.from.to_rfc3339(),
                req.to.to_rfc3339()
            );
            caller
                .audit(
                    st,
                    AuditAction::Backfill,
                    &format!("{project}/{name}"),
                    Some(detail),
                )
                .await;
        }
    }
    Ok(BackfillResult {
        project: project.to_string(),
        deployment: name.to_string(),
        from: req.from,
        to: req.to,
        dry_run: req.dry_run,
        ticks: out,
        created,
        existing,
    })
}

/// Deployment `project/name`, if it can be backfilled: not archived, with schedules.
async fn backfillable(st: &AppState, project: &str, name: &str) -> ApiResult<Deployment> {
    let d = st.store.deployment(project, name).await?;
    if d.archived_at.is_some() {
        return Err(ApiError::Conflict {
            message: format!(
                "deployment {project}/{name} is archived (removed from its weir.toml): it takes \
                 no new runs; deploy it again to restore it"
            ),
            current: None,
        });
    }
    if d.spec.schedules.is_empty() {
        return Err(ApiError::Conflict {
            message: format!(
                "deployment {project}/{name} has no schedules, so no ticks to backfill: add \
                 `schedules` in its weir.toml, or start single runs with `weir run`"
            ),
            current: None,
        });
    }
    Ok(d)
}

/// A dry run's ticks: each with the run it has, or would get; and how many have one.
async fn dry_run(
    st: &AppState,
    d: &Deployment,
    ticks: &[Timestamp],
) -> ApiResult<(Vec<BackfillTick>, u32)> {
    let runs = st.store.tick_runs(d, ticks).await?;
    let mut out = Vec::with_capacity(ticks.len());
    let mut existing = 0u32;
    for t in ticks {
        let run = runs.get(t);
        existing += u32::from(run.is_some());
        out.push(BackfillTick {
            tick_at: *t,
            outcome: if run.is_some() {
                BackfillOutcome::Exists
            } else {
                BackfillOutcome::WouldCreate
            },
            run_id: run.map(|r| r.id),
            run_name: run.map(|r| r.name.clone()),
            state: run.map(|r| r.state),
        });
    }
    Ok((out, existing))
}
