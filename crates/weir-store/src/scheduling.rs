//! What the scheduler needs: deployments with schedules and idempotent creation of their
//! future runs.

use crate::codec::micros;
use crate::{Result, Store};
use chrono::Duration;
use sqlx::Row;
use std::collections::HashSet;
use weir_core::Timestamp;
use weir_core::api::Deployment;

impl Store {
    /// Deployments that are neither paused nor archived and have schedules.
    pub async fn scheduled_deployments(&self) -> Result<Vec<Deployment>> {
        Ok(self
            .deployments(None)
            .await?
            .into_iter()
            .filter(|d| !d.paused && d.archived_at.is_none() && !d.spec.schedules.is_empty())
            .collect())
    }

    /// Creates the deployment's runs at `times` that do not exist yet. Each run's
    /// idempotency key is derived from the deployment and the time, so however many
    /// schedulers run this at once, each time gets one run. Returns how many were created.
    pub async fn materialise_runs(
        &self,
        deployment: &Deployment,
        times: &[Timestamp],
        now: Timestamp,
    ) -> Result<u32> {
        let Some(first) = times.first() else {
            return Ok(0);
        };
        let existing: HashSet<i64> = sqlx::query(
            "SELECT scheduled_at FROM flow_runs WHERE deployment_id = $1 AND auto_scheduled = 1 \
             AND scheduled_at >= $2",
        )
        .bind(deployment.id.to_string())
        .bind(micros(*first))
        .fetch_all(&self.read)
        .await?
        .iter()
        .map(|r| r.try_get::<i64, _>("scheduled_at"))
        .collect::<Result<_, _>>()?;
        let mut created = 0;
        for t in times.iter().filter(|t| !existing.contains(&micros(**t))) {
            let new = weir_core::create::scheduled(deployment, *t);
            let (_, new) = self.create_flow_run(new, Duration::zero(), now).await?;
            created += u32::from(new);
        }
        Ok(created)
    }
}

/// Removes the runs a deployment's schedules put in the future and that have not started,
/// with their history, so the scheduler can recreate them from the current schedules.
pub(crate) async fn delete_future_runs(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    deployment: uuid::Uuid,
    now: Timestamp,
) -> Result<()> {
    let future = format!(
        "SELECT id FROM flow_runs WHERE deployment_id = $1 \
         AND auto_scheduled = 1 AND state = {} AND scheduled_at > $2",
        crate::states::one(weir_core::StateKind::Scheduled)
    );
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DELETE FROM flow_run_states WHERE flow_run_id IN ({future})"
    )))
    .bind(deployment.to_string())
    .bind(micros(now))
    .execute(&mut **tx)
    .await?;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DELETE FROM flow_runs WHERE id IN ({future})"
    )))
    .bind(deployment.to_string())
    .bind(micros(now))
    .execute(&mut **tx)
    .await?;
    Ok(())
}
