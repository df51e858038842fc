//! Embedded migrations, one set per dialect, applied on connect by sqlx's migrator.

use crate::{Dialect, Result, Store};
use sqlx::SqlSafeStr;
use sqlx::migrate::{Migration, MigrationType, Migrator};

const SQLITE: &[(i64, &str, &str)] = &[
    (
        1,
        "init",
        include_str!("../migrations/sqlite/0001_init.sql"),
    ),
    (
        2,
        "auth",
        include_str!("../migrations/sqlite/0002_auth.sql"),
    ),
    (
        3,
        "ui_indexes",
        include_str!("../migrations/sqlite/0003_ui_indexes.sql"),
    ),
    (
        4,
        "dashboard_indexes",
        include_str!("../migrations/sqlite/0004_dashboard_indexes.sql"),
    ),
    (
        5,
        "deployment_archive",
        include_str!("../migrations/sqlite/0005_deployment_archive.sql"),
    ),
    (
        6,
        "infrastructure",
        include_str!("../migrations/sqlite/0006_infrastructure.sql"),
    ),
    (
        7,
        "notifications",
        include_str!("../migrations/sqlite/0007_notifications.sql"),
    ),
    (
        8,
        "concurrency_limits",
        include_str!("../migrations/sqlite/0008_concurrency_limits.sql"),
    ),
    (
        9,
        "schedules",
        include_str!("../migrations/sqlite/0009_schedules.sql"),
    ),
    (
        10,
        "retention",
        include_str!("../migrations/sqlite/0010_retention.sql"),
    ),
    (
        11,
        "log_origin",
        include_str!("../migrations/sqlite/0011_log_origin.sql"),
    ),
    (
        12,
        "trends",
        include_str!("../migrations/sqlite/0012_trends.sql"),
    ),
    (
        13,
        "run_hours",
        include_str!("../migrations/sqlite/0013_run_hours.sql"),
    ),
    (
        14,
        "history_order",
        include_str!("../migrations/sqlite/0014_history_order.sql"),
    ),
];
const POSTGRES: &[(i64, &str, &str)] = &[
    (
        1,
        "init",
        include_str!("../migrations/postgres/0001_init.sql"),
    ),
    (
        2,
        "auth",
        include_str!("../migrations/postgres/0002_auth.sql"),
    ),
    (
        3,
        "ui_indexes",
        include_str!("../migrations/postgres/0003_ui_indexes.sql"),
    ),
    (
        4,
        "dashboard_indexes",
        include_str!("../migrations/postgres/0004_dashboard_indexes.sql"),
    ),
    (
        5,
        "deployment_archive",
        include_str!("../migrations/postgres/0005_deployment_archive.sql"),
    ),
    (
        6,
        "infrastructure",
        include_str!("../migrations/postgres/0006_infrastructure.sql"),
    ),
    (
        7,
        "notifications",
        include_str!("../migrations/postgres/0007_notifications.sql"),
    ),
    (
        8,
        "concurrency_limits",
        include_str!("../migrations/postgres/0008_concurrency_limits.sql"),
    ),
    (
        9,
        "schedules",
        include_str!("../migrations/postgres/0009_schedules.sql"),
    ),
    (
        10,
        "retention",
        include_str!("../migrations/postgres/0010_retention.sql"),
    ),
    (
        11,
        "log_origin",
        include_str!("../migrations/postgres/0011_log_origin.sql"),
    ),
    (
        12,
        "trends",
        include_str!("../migrations/postgres/0012_trends.sql"),
    ),
    (
        13,
        "run_hours",
        include_str!("../migrations/postgres/0013_run_hours.sql"),
    ),
    (
        14,
        "history_order",
        include_str!("../migrations/postgres/0014_history_order.sql"),
    ),
];

/// Applies every migration not yet applied. Safe to run from several processes at once on
/// PostgreSQL (the migrator takes an advisory lock).
pub(crate) async fn run(store: &Store) -> Result<()> {
    let set = match store.dialect {
        Dialect::Sqlite => SQLITE,
        Dialect::Postgres => POSTGRES,
    };
    let migrations = set
        .iter()
        .map(|(version, name, sql)| {
            Migration::new(
                *version,
                (*name).into(),
                MigrationType::Simple,
                sqlx::AssertSqlSafe(*sql).into_sql_str(),
                false,
            )
        })
        .collect();
    Migrator::with_migrations(migrations)
        .run(&store.write)
        .await?;
    Ok(())
}
