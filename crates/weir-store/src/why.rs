//! The facts behind "why isn't it running" (`weir_core::why::explain` decides).

use crate::{Error, Result, Store};
use uuid::Uuid;
use weir_core::Timestamp;
use weir_core::limits::LimitKey;
use weir_core::why::{DeploymentFacts, Facts, LimitFacts};

impl Store {
    /// What [`weir_core::why::explain`] needs about run `id` at `now`: the run, its
    /// deployment, the agents heard from since `agents_since` that serve its queue, and the
    /// limits it falls under with the other runs holding their slots.
    pub async fn why_facts(
        &self,
        id: Uuid,
        now: Timestamp,
        agents_since: Timestamp,
    ) -> Result<Facts> {
        let run = self.flow_run(id).await?;
        let deployment = match run.deployment_id {
            Some(d) => match self.deployment_by_id(d).await {
                Ok(d) => Some(d),
                Err(Error::NotFound(_)) => None,
                Err(e) => return Err(e),
            },
            None => None,
        };
        let agents = self
            .agents(agents_since)
            .await?
            .into_iter()
            .filter(|a| a.queues.contains(&run.work_queue))
            .collect();
        let mut limits = Vec::new();
        let tag_limits: Vec<(String, u32)> = self
            .tag_limit_slots()
            .await?
            .into_iter()
            .filter(|(tag, _)| run.tags.contains(tag))
            .collect();
        let own = deployment.as_ref().and_then(|d| d.spec.concurrency);
        if own.is_some() || !tag_limits.is_empty() {
            let holders: Vec<_> = self
                .slot_holders(now)
                .await?
                .into_iter()
                .filter(|h| h.id != run.id)
                .collect();
            if let (Some(d), Some(slots)) = (&deployment, own) {
                limits.push(LimitFacts {
                    key: LimitKey::Deployment(format!("{}/{}", d.project, d.name)),
                    slots,
                    holders: holders
                        .iter()
                        .filter(|h| h.deployment == Some(d.id))
                        .map(|h| h.id)
                        .collect(),
                });
            }
            for (tag, slots) in tag_limits {
                limits.push(LimitFacts {
                    holders: holders
                        .iter()
                        .filter(|h| h.tags.contains(&tag))
                        .map(|h| h.id)
                        .collect(),
                    key: LimitKey::Tag(tag),
                    slots,
                });
            }
        }
        Ok(Facts {
            deployment: deployment.map(|d| DeploymentFacts {
                name: format!("{}/{}", d.project, d.name),
                paused: d.paused,
                kind: d.spec.infrastructure.kind(),
                on_limit: d.spec.on_limit,
            }),
            run,
            agents,
            limits,
        })
    }
}
