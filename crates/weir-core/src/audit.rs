//! The actions recorded in the audit log.

use std::fmt;

/// Something a caller did that the audit log records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuditAction {
    /// Created or updated a deployment.
    Deploy,
    /// Started a run of a deployment.
    Run,
    /// Requested a run's cancellation.
    Cancel,
    /// Retried a run.
    Retry,
    /// Paused a deployment's schedules.
    SchedulePause,
    /// Resumed a deployment's schedules.
    ScheduleResume,
    /// Created an API key.
    KeyCreate,
    /// Revoked an API key.
    KeyRevoke,
    /// Archived a deployment (`weir deploy --prune`, `weir deployments rm`).
    DeploymentArchive,
    /// Changed a project's retention.
    RetentionSet,
    /// Retention deleted a project's finished runs (the server itself is the actor).
    RunsPruned,
    /// Set a tag's concurrency limit.
    LimitSet,
    /// Removed a tag's concurrency limit.
    LimitRemove,
    /// Created or changed a notification rule.
    NotificationSet,
    /// Deleted a notification rule.
    NotificationDelete,
    /// Created the runs of a deployment's ticks in a window (`weir backfill`).
    Backfill,
}

impl AuditAction {
    /// Every action.
    pub const ALL: [AuditAction; 16] = [
        AuditAction::Deploy,
        AuditAction::Run,
        AuditAction::Cancel,
        AuditAction::Retry,
        AuditAction::SchedulePause,
        AuditAction::ScheduleResume,
        AuditAction::KeyCreate,
        AuditAction::KeyRevoke,
        AuditAction::DeploymentArchive,
        AuditAction::RetentionSet,
        AuditAction::RunsPruned,
        AuditAction::LimitSet,
        AuditAction::LimitRemove,
        AuditAction::NotificationSet,
        AuditAction::NotificationDelete,
        AuditAction::Backfill,
    ];

    /// The name stored and shown (`weir audit`, the audit page).
    pub fn as_str(self) -> &'static str {
        match self {
            AuditAction::Deploy => "deploy",
            AuditAction::Run => "run",
            AuditAction::Cancel => "cancel",
            AuditAction::Retry => "retry",
            AuditAction::SchedulePause => "schedule.pause",
            AuditAction::ScheduleResume => "schedule.resume",
            AuditAction::KeyCreate => "key.create",
            AuditAction::KeyRevoke => "key.revoke",
            AuditAction::DeploymentArchive => "deployment.archive",
            AuditAction::RetentionSet => "retention.set",
            AuditAction::RunsPruned => "runs.pruned",
            AuditAction::LimitSet => "limit.set",
            AuditAction::LimitRemove => "limit.remove",
            AuditAction::NotificationSet => "notification.set",
            AuditAction::NotificationDelete => "notification.delete",
            AuditAction::Backfill => "backfill",
        }
    }
}

impl fmt::Display for AuditAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
