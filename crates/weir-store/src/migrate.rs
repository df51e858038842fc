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
    (
        15,
        "task_history_order",
        include_str!("../migrations/sqlite/0015_task_history_order.sql"),
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
    (
        15,
        "task_history_order",
        include_str!("../migrations/postgres/0015_task_history_order.sql"),
    ),
];

/// Applies every migration not yet applied. Safe to run from several processes at once on
/// PostgreSQL (the migrator takes an advisory lock). A fresh SQLite database gets them all in
/// one transaction first ([`fresh_sqlite`]); sqlx's migrator then finds them applied and
/// checks their checksums, as on every later start.
pub(crate) async fn run(store: &Store) -> Result<()> {
    let set = match store.dialect {
        Dialect::Sqlite => SQLITE,
        Dialect::Postgres => POSTGRES,
    };
    let migrations = of(set);
    if store.dialect == Dialect::Sqlite {
        fresh_sqlite(store, &migrations).await?;
    }
    Migrator::with_migrations(migrations)
        .run(&store.write)
        .await?;
    Ok(())
}

/// The migrations of one dialect, as sqlx's migrator takes them.
fn of(set: &[(i64, &'static str, &'static str)]) -> Vec<Migration> {
    set.iter()
        .map(|(version, name, sql)| {
            Migration::new(
                *version,
                (*name).into(),
                MigrationType::Simple,
                sqlx::AssertSqlSafe(*sql).into_sql_str(),
                false,
            )
        })
        .collect()
}

/// On an SQLite database that has no migrations table yet (a new file), applies every
/// migration and records each in `_sqlx_migrations` exactly as sqlx's migrator does (same
/// table, version, description, success and SHA-384 checksum), in one `BEGIN IMMEDIATE`
/// transaction sent as one script: all or nothing, like each of sqlx's own. sqlx's migrator
/// runs each migration in a transaction of its own, with its bookkeeping statements: ~70
/// statements on a new database, each a hop to the connection's thread and back (on a loaded
/// machine each hop waits for a core). Does nothing on a database that has the table.
async fn fresh_sqlite(store: &Store, migrations: &[Migration]) -> Result<()> {
    use sqlx::Executor;
    let mut conn = store.write.acquire().await?;
    (&mut *conn).execute("BEGIN IMMEDIATE").await?;
    let applied: Result<()> = async {
        let (tables,): (i64,) = sqlx::query_as(
            "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'",
        )
        .fetch_one(&mut *conn)
        .await?;
        if tables > 0 {
            (&mut *conn).execute("ROLLBACK").await?;
            return Ok(());
        }
        let script = fresh_script(migrations);
        (&mut *conn).execute(sqlx::AssertSqlSafe(script)).await?;
        Ok(())
    }
    .await;
    if applied.is_err() {
        // A connection handed back inside a transaction is closed anyway (`sqlite_pool`).
        let _ = (&mut *conn).execute("ROLLBACK").await;
    }
    applied
}

/// The script of [`fresh_sqlite`]: sqlx's migrations table, every migration, its rows, and
/// the commit.
fn fresh_script(migrations: &[Migration]) -> String {
    // sqlx-sqlite's own definition of the table (`ensure_migrations_table`).
    let mut script = String::from(
        "CREATE TABLE _sqlx_migrations (
    version BIGINT PRIMARY KEY,
    description TEXT NOT NULL,
    installed_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    success BOOLEAN NOT NULL,
    checksum BLOB NOT NULL,
    execution_time BIGINT NOT NULL
);
",
    );
    for m in migrations {
        script.push_str(m.sql.as_str());
        script.push('\n');
    }
    for m in migrations {
        let checksum: String = m.checksum.iter().map(|b| format!("{b:02x}")).collect();
        script.push_str(&format!(
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
             VALUES ({}, '{}', TRUE, X'{checksum}', 0);\n",
            m.version,
            m.description.replace('\'', "''"),
        ));
    }
    script.push_str("COMMIT;\n");
    script
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlx::any::AnyPoolOptions;

    /// Everything a database's schema and sqlx's bookkeeping hold, in a comparable order.
    async fn schema(pool: &sqlx::AnyPool) -> Vec<(String, String, String)> {
        let mut rows: Vec<(String, String, String)> = sqlx::query_as(
            "SELECT type, name, COALESCE(sql, '') FROM sqlite_master ORDER BY type, name",
        )
        .fetch_all(pool)
        .await
        .expect("schema");
        let applied: Vec<(i64, String, i64, Vec<u8>)> = sqlx::query_as(
            "SELECT version, description, CAST(success AS INTEGER), checksum \
             FROM _sqlx_migrations ORDER BY version",
        )
        .fetch_all(pool)
        .await
        .expect("applied migrations");
        rows.extend(applied.into_iter().map(|(v, d, s, c)| {
            (
                "applied".to_string(),
                format!("{v} {d} {s}"),
                format!("{c:?}"),
            )
        }));
        rows
    }

    /// A new SQLite database migrated in one transaction has the schema and the migrations
    /// table sqlx's migrator gives it one migration at a time, so every later start (and
    /// every later migration) treats it like any other.
    #[tokio::test]
    async fn a_fresh_sqlite_database_gets_the_schema_sqlx_would_give_it() {
        sqlx::any::install_default_drivers();
        let dir = tempfile::tempdir().expect("tempdir");
        let url = |name: &str| format!("sqlite://{}?mode=rwc", dir.path().join(name).display());
        let stepwise = AnyPoolOptions::new()
            .max_connections(1)
            .connect(&url("stepwise.db"))
            .await
            .expect("stepwise database");
        let migrations = of(SQLITE);
        Migrator::with_migrations(migrations)
            .run(&stepwise)
            .await
            .expect("sqlx's migrator");
        let fresh = Store::connect(&url("fresh.db")).await.expect("fresh store");
        assert_eq!(schema(&fresh.write).await, schema(&stepwise).await);
        // A second start finds every migration applied, with matching checksums.
        fresh.close().await;
        let again = Store::connect(&url("fresh.db"))
            .await
            .expect("second start");
        assert_eq!(schema(&again.write).await, schema(&stepwise).await);
    }
    /// Task-run history rows stored before migration 0015 are numbered in the order they were
    /// read in until then (by time, ties in the order stored), and a row stored after follows
    /// them all: a database migrated up to 0014, given rows, then migrated on.
    async fn task_history_before_0015_keeps_its_order(backend: weir_testkit::Backend) {
        sqlx::any::install_default_drivers();
        let name = format!("migrate_task_history_{backend:?}").to_lowercase();
        let Some(db) = weir_testkit::TestDb::new(backend, &name).await else {
            return;
        };
        let set = match backend {
            weir_testkit::Backend::Sqlite => SQLITE,
            weir_testkit::Backend::Postgres => POSTGRES,
        };
        let url = match backend {
            weir_testkit::Backend::Sqlite => format!("{}?mode=rwc", db.url),
            weir_testkit::Backend::Postgres => db.url.clone(),
        };
        let pool = AnyPoolOptions::new()
            .max_connections(1)
            .connect(&url)
            .await
            .expect("database");
        let before: Vec<_> = set.iter().copied().filter(|(v, _, _)| *v < 15).collect();
        Migrator::with_migrations(of(&before))
            .run(&pool)
            .await
            .expect("migrations up to 0014");
        // Stored in this order: `b` of task run `a` ties with `c` on its time.
        for (task, message, at) in [
            ("a", "d", 40),
            ("a", "b", 20),
            ("x", "x", 20),
            ("a", "a", 10),
            ("a", "c", 20),
        ] {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "INSERT INTO task_run_states (task_run_id, state, message, attempt, at) \
                 VALUES ('{task}', 'Running', '{message}', 1, {at})"
            )))
            .execute(&pool)
            .await
            .expect("insert");
        }
        Migrator::with_migrations(of(set))
            .run(&pool)
            .await
            .expect("every migration");
        sqlx::query(
            "INSERT INTO task_run_states (task_run_id, state, message, attempt, at) \
             VALUES ('a', 'Completed', 'e', 1, 0)",
        )
        .execute(&pool)
        .await
        .expect("insert after");
        let order: Vec<(String, String)> =
            sqlx::query_as("SELECT task_run_id, message FROM task_run_states ORDER BY seq")
                .fetch_all(&pool)
                .await
                .expect("read");
        let order: Vec<String> = order.into_iter().map(|(t, m)| t + &m).collect();
        assert_eq!(order, ["aa", "ab", "xx", "ac", "ad", "ae"]);
        pool.close().await;
    }

    #[tokio::test]
    async fn sqlite_task_history_before_0015_keeps_its_order() {
        task_history_before_0015_keeps_its_order(weir_testkit::Backend::Sqlite).await;
    }

    #[tokio::test]
    async fn postgres_task_history_before_0015_keeps_its_order() {
        task_history_before_0015_keeps_its_order(weir_testkit::Backend::Postgres).await;
    }
}
