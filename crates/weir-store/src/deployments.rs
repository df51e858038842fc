//! Projects and deployments: idempotent, versioned upserts. Specs are stored in a shape of
//! the store's own (`stored.rs`), versioned and tolerant of old rows.

mod stored;

use crate::codec::{self, micros};
use crate::scheduling::delete_future_runs;
use crate::{Error, Result, Store};
use sqlx::any::AnyRow;
use sqlx::{AssertSqlSafe, Row};
use uuid::Uuid;
use weir_core::Timestamp;
use weir_core::api::notifications::NotificationEvent;
use weir_core::api::{DeploymentSpec, Project, UpsertOutcome};
use weir_core::deployment::{Deployment, Upserted};

const DEPLOYMENT_COLUMNS: &str =
    "id, project, name, version, spec, paused, created_at, updated_at, archived_at";

fn deployment(row: &AnyRow) -> Result<Deployment> {
    let paused: i64 = row.try_get("paused")?;
    let project: String = row.try_get("project")?;
    let name: String = row.try_get("name")?;
    let spec: String = row.try_get("spec")?;
    let spec = stored::decode(&spec, "deployments.spec", || {
        format!("deployment {project}/{name}")
    })?;
    Ok(Deployment {
        id: codec::uuid(row, "id")?,
        project,
        name,
        version: codec::u32_col(row, "version")?,
        spec,
        paused: paused != 0,
        created_at: codec::time(row, "created_at")?,
        updated_at: codec::time(row, "updated_at")?,
        archived_at: codec::opt_time(row, "archived_at")?,
    })
}

/// A project row; `effective_retain_days` is the server's to fill in.
fn project(r: &AnyRow) -> Result<Project> {
    Ok(Project {
        name: r.try_get("name")?,
        created_at: codec::time(r, "created_at")?,
        retain_days: codec::opt_u32_col(r, "retain_days")?,
        effective_retain_days: None,
        pruned_runs: codec::u64_col(r, "pruned_runs")?,
        pruned_at: codec::opt_time(r, "pruned_at")?,
    })
}

impl Store {
    /// Creates a project if it does not exist. Returns true when it was created.
    pub async fn ensure_project(&self, name: &str, now: Timestamp) -> Result<bool> {
        let n = sqlx::query(
            "INSERT INTO projects (name, created_at) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(micros(now))
        .execute(&self.write)
        .await?
        .rows_affected();
        Ok(n > 0)
    }

    /// All projects, by name.
    pub async fn projects(&self) -> Result<Vec<Project>> {
        let rows = sqlx::query(
            "SELECT name, created_at, retain_days, pruned_runs, pruned_at FROM projects \
             ORDER BY name",
        )
        .fetch_all(&self.read)
        .await?;
        rows.iter().map(project).collect()
    }

    /// Whether a project exists.
    pub async fn project_exists(&self, name: &str) -> Result<bool> {
        Ok(sqlx::query("SELECT 1 FROM projects WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.read)
            .await?
            .is_some())
    }

    /// Creates or updates a deployment. An identical spec is `Unchanged` and writes nothing; a
    /// different one becomes a new version, and the runs its old schedules put ahead are
    /// removed so the scheduler recreates them from the new ones. An archived deployment
    /// becomes active again (`Restored`, a new version too if its spec changed). With
    /// `dry_run`, reports the outcome without writing.
    pub async fn upsert_deployment(
        &self,
        project: &str,
        name: &str,
        spec: &DeploymentSpec,
        dry_run: bool,
        now: Timestamp,
    ) -> Result<Upserted> {
        let existing = self.deployment(project, name).await;
        let existing = match existing {
            Ok(d) => Some(d),
            Err(Error::NotFound(_)) => None,
            Err(e) => return Err(e),
        };
        match existing {
            Some(d) if d.spec == *spec && d.archived_at.is_none() => Ok(Upserted {
                outcome: UpsertOutcome::Unchanged,
                deployment: Some(d),
                previous: None,
            }),
            Some(d) if dry_run => Ok(Upserted {
                outcome: if d.archived_at.is_some() {
                    UpsertOutcome::Restored
                } else {
                    UpsertOutcome::Updated
                },
                previous: Some(d.spec.clone()),
                deployment: Some(d),
            }),
            None if dry_run => Ok(Upserted {
                outcome: UpsertOutcome::Created,
                deployment: None,
                previous: None,
            }),
            Some(d) => self.update_deployment(project, name, d, spec, now).await,
            None => self.create_deployment(project, name, spec, now).await,
        }
    }

    /// The write of an upsert that changes (or restores) the existing deployment `d`.
    async fn update_deployment(
        &self,
        project: &str,
        name: &str,
        d: Deployment,
        spec: &DeploymentSpec,
        now: Timestamp,
    ) -> Result<Upserted> {
        let changed = d.spec != *spec;
        let version = i64::from(d.version) + i64::from(changed);
        // Refused before anything is written: a version past `u32::MAX` cannot be read back.
        let next_version = codec::u32_of("deployments.version", version)?;
        let mut tx = self.begin_write().await?;
        // Compare-and-set on the version read above: a concurrent upsert that wrote first
        // makes this one start over (and find its spec Unchanged or make the next version),
        // instead of failing on the duplicate version.
        let n = sqlx::query(
            "UPDATE deployments SET version = $1, spec = $2, flow = $3, work_queue = $4, \
             updated_at = $5, archived_at = NULL, infrastructure = $8, concurrency = $9, \
             on_limit = $10, catchup = $11 WHERE id = $6 AND version = $7",
        )
        .bind(version)
        .bind(stored::encode(spec))
        .bind(&spec.flow)
        .bind(&spec.work_queue)
        .bind(micros(now))
        .bind(d.id.to_string())
        .bind(i64::from(d.version))
        .bind(spec.infrastructure.kind().as_str())
        .bind(spec.concurrency.map(i64::from))
        .bind(spec.on_limit.as_str())
        .bind(spec.catchup.as_str())
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if n == 0 {
            tx.rollback().await?;
            return Box::pin(self.upsert_deployment(project, name, spec, false, now)).await;
        }
        if changed {
            insert_version(&mut tx, d.id, version, spec, now).await?;
            delete_future_runs(&mut tx, d.id, now).await?;
        }
        let after = Deployment {
            version: next_version,
            spec: spec.clone(),
            updated_at: now,
            archived_at: None,
            ..d.clone()
        };
        let event = NotificationEvent::DeploymentChanged;
        crate::notify::enqueue_deployment_event(&mut tx, event, &after, now).await?;
        tx.commit().await?;
        Ok(Upserted {
            outcome: if d.archived_at.is_some() {
                UpsertOutcome::Restored
            } else {
                UpsertOutcome::Updated
            },
            previous: Some(d.spec),
            deployment: Some(self.deployment(project, name).await?),
        })
    }

    /// The write of an upsert that creates a deployment.
    async fn create_deployment(
        &self,
        project: &str,
        name: &str,
        spec: &DeploymentSpec,
        now: Timestamp,
    ) -> Result<Upserted> {
        self.ensure_project(project, now).await?;
        let id = Uuid::now_v7();
        let mut tx = self.begin_write().await?;
        let n = sqlx::query(
            "INSERT INTO deployments (id, project, name, version, spec, flow, work_queue, \
             paused, created_at, updated_at, infrastructure, concurrency, on_limit, catchup) \
             VALUES ($1, $2, $3, 1, $4, $5, $6, 0, $7, $7, $8, $9, $10, $11) \
             ON CONFLICT (project, name) DO NOTHING",
        )
        .bind(id.to_string())
        .bind(project)
        .bind(name)
        .bind(stored::encode(spec))
        .bind(&spec.flow)
        .bind(&spec.work_queue)
        .bind(micros(now))
        .bind(spec.infrastructure.kind().as_str())
        .bind(spec.concurrency.map(i64::from))
        .bind(spec.on_limit.as_str())
        .bind(spec.catchup.as_str())
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if n == 0 {
            // Another writer created it first: treat as an update of theirs.
            tx.rollback().await?;
            return Box::pin(self.upsert_deployment(project, name, spec, false, now)).await;
        }
        insert_version(&mut tx, id, 1, spec, now).await?;
        let created = Deployment {
            id,
            project: project.to_string(),
            name: name.to_string(),
            version: 1,
            spec: spec.clone(),
            paused: false,
            created_at: now,
            updated_at: now,
            archived_at: None,
        };
        let event = NotificationEvent::DeploymentCreated;
        crate::notify::enqueue_deployment_event(&mut tx, event, &created, now).await?;
        tx.commit().await?;
        Ok(Upserted {
            outcome: UpsertOutcome::Created,
            previous: None,
            deployment: Some(self.deployment(project, name).await?),
        })
    }

    /// Archives a deployment: it stops scheduling (the runs its schedules put ahead are
    /// removed), gets no new runs, and keeps its versions and run history. Archiving an
    /// archived deployment changes nothing. Returns whether this call archived it.
    pub async fn archive_deployment(&self, id: Uuid, now: Timestamp) -> Result<bool> {
        let d = self.deployment_by_id(id).await?;
        let mut tx = self.begin_write().await?;
        let n = sqlx::query(
            "UPDATE deployments SET archived_at = $1, updated_at = $1 \
             WHERE id = $2 AND archived_at IS NULL",
        )
        .bind(micros(now))
        .bind(id.to_string())
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if n == 0 {
            tx.rollback().await?;
            // Already archived, or no such deployment.
            self.deployment_by_id(id).await?;
            return Ok(false);
        }
        delete_future_runs(&mut tx, id, now).await?;
        let archived = Deployment {
            archived_at: Some(now),
            updated_at: now,
            ..d
        };
        let event = NotificationEvent::DeploymentArchived;
        crate::notify::enqueue_deployment_event(&mut tx, event, &archived, now).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// A deployment by project and name.
    pub async fn deployment(&self, project: &str, name: &str) -> Result<Deployment> {
        let row = sqlx::query(AssertSqlSafe(format!(
            "SELECT {DEPLOYMENT_COLUMNS} FROM deployments WHERE project = $1 AND name = $2"
        )))
        .bind(project)
        .bind(name)
        .fetch_optional(&self.read)
        .await?
        .ok_or_else(|| Error::NotFound(format!("deployment {project}/{name}")))?;
        deployment(&row)
    }

    /// A deployment by id.
    pub async fn deployment_by_id(&self, id: Uuid) -> Result<Deployment> {
        let row = sqlx::query(AssertSqlSafe(format!(
            "SELECT {DEPLOYMENT_COLUMNS} FROM deployments WHERE id = $1"
        )))
        .bind(id.to_string())
        .fetch_optional(&self.read)
        .await?
        .ok_or_else(|| Error::NotFound(format!("deployment {id}")))?;
        deployment(&row)
    }

    /// Deployments, optionally of some projects only, by project and name.
    pub async fn deployments(&self, projects: Option<&[String]>) -> Result<Vec<Deployment>> {
        let rows = match projects {
            None => {
                sqlx::query(AssertSqlSafe(format!(
                    "SELECT {DEPLOYMENT_COLUMNS} FROM deployments ORDER BY project, name"
                )))
                .fetch_all(&self.read)
                .await?
            }
            Some([]) => return Ok(vec![]),
            Some(ps) => {
                let sql = format!(
                    "SELECT {DEPLOYMENT_COLUMNS} FROM deployments WHERE project IN ({}) \
                     ORDER BY project, name",
                    codec::placeholders(1, ps.len())
                );
                let mut q = sqlx::query(AssertSqlSafe(sql));
                for p in ps {
                    q = q.bind(p.clone());
                }
                q.fetch_all(&self.read).await?
            }
        };
        rows.iter().map(deployment).collect()
    }

    /// Pauses or resumes a deployment's schedules. Pausing removes the runs its schedules had
    /// put ahead; resuming lets the scheduler create them again.
    pub async fn set_paused(&self, id: Uuid, paused: bool, now: Timestamp) -> Result<()> {
        let mut tx = self.begin_write().await?;
        let n = sqlx::query("UPDATE deployments SET paused = $1, updated_at = $2 WHERE id = $3")
            .bind(i64::from(paused))
            .bind(micros(now))
            .bind(id.to_string())
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if n == 0 {
            return Err(Error::NotFound(format!("deployment {id}")));
        }
        if paused {
            delete_future_runs(&mut tx, id, now).await?;
        }
        tx.commit().await?;
        Ok(())
    }
}

async fn insert_version(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    id: Uuid,
    version: i64,
    spec: &DeploymentSpec,
    now: Timestamp,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO deployment_versions (deployment_id, version, spec, created_at) \
         VALUES ($1, $2, $3, $4)",
    )
    .bind(id.to_string())
    .bind(version)
    .bind(stored::encode(spec))
    .bind(micros(now))
    .execute(&mut **tx)
    .await?;
    Ok(())
}
