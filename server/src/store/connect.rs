//! Opening the pool and applying migrations.
use super::StoreError;
use crate::settings::DatabaseSettings;
use migration::{Migrator, MigratorTrait};
use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend, Statement,
};
use std::time::Duration;

/// Opens the connection pool. A SQLite file and its directory are created when missing.
pub async fn connect(settings: &DatabaseSettings) -> Result<DatabaseConnection, StoreError> {
    let sqlite_dir = sqlite_file(&settings.url)
        .and_then(|path| std::path::Path::new(path).parent())
        .filter(|dir| !dir.as_os_str().is_empty());
    if let Some(dir) = sqlite_dir {
        std::fs::create_dir_all(dir).map_err(|e| {
            StoreError::Setup(format!(
                "cannot create the database directory {}: {e}",
                dir.display()
            ))
        })?;
    }
    let mut options = ConnectOptions::new(settings.url.clone());
    options
        .max_connections(settings.max_connections)
        .min_connections(settings.min_connections)
        .acquire_timeout(Duration::from_secs(settings.acquire_timeout_secs))
        .connect_timeout(Duration::from_secs(settings.acquire_timeout_secs))
        // Ping only connections that sat idle long enough to have been dropped; a ping on
        // every checkout would double the round trips of the introspection hot path.
        .test_before_acquire_if_idle_for(Duration::from_secs(30))
        .sqlx_logging(false)
        .map_sqlx_sqlite_opts(|opts| {
            // WAL lets readers run beside the one writer; the busy timeout makes concurrent
            // writers queue instead of failing with "database is locked".
            opts.journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(10))
                .foreign_keys(true)
        });
    Database::connect(options).await.map_err(StoreError::from)
}

/// Applies pending migrations. On Postgres they run under an advisory lock on a dedicated
/// connection, so replicas starting together apply them once, one after the other.
pub async fn migrate(settings: &DatabaseSettings) -> Result<(), StoreError> {
    let mut single = settings.clone();
    single.max_connections = 1;
    single.min_connections = 1;
    let db = connect(&single).await?;
    let result = if db.get_database_backend() == DbBackend::Postgres {
        let lock = |sql: &str| Statement::from_string(DbBackend::Postgres, sql.to_owned());
        db.execute_raw(lock(&format!(
            "SELECT pg_advisory_lock({MIGRATION_LOCK_KEY})"
        )))
        .await?;
        let applied = Migrator::up(&db, None).await;
        let unlocked = db
            .execute_raw(lock(&format!(
                "SELECT pg_advisory_unlock({MIGRATION_LOCK_KEY})"
            )))
            .await;
        applied.and(unlocked.map(|_| ()))
    } else {
        Migrator::up(&db, None).await
    };
    let closed = db.close().await;
    result?;
    closed?;
    Ok(())
}

/// An arbitrary constant shared by every Umbra instance ("umbra" in ASCII).
const MIGRATION_LOCK_KEY: i64 = 0x0075_6d62_7261;

/// The file path of a `sqlite:` URL, unless it is an in-memory database.
fn sqlite_file(url: &str) -> Option<&str> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or(rest);
    (!path.is_empty() && path != ":memory:").then_some(path)
}

#[cfg(test)]
mod tests {
    use super::sqlite_file;

    #[test]
    fn finds_the_file_of_a_sqlite_url() {
        assert_eq!(
            sqlite_file("sqlite://data/umbra.db?mode=rwc"),
            Some("data/umbra.db")
        );
        assert_eq!(sqlite_file("sqlite:///tmp/x.db"), Some("/tmp/x.db"));
        assert_eq!(sqlite_file("sqlite::memory:"), None);
        assert_eq!(sqlite_file("postgres://localhost/umbra"), None);
    }
}
