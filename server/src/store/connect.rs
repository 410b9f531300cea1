//! Opening the pool.
use super::StoreError;
use crate::settings::DatabaseSettings;
use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sea_orm::{ConnectOptions, Database, DatabaseConnection, DbErr, RuntimeErr};
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
    Database::connect(options)
        .await
        .map_err(|err| explain_connect_error(&settings.url, err))
}

/// Turns a failed first connection into a line that says where Umbra tried and what to do,
/// instead of the driver's "pool timed out" or the server's source position.
fn explain_connect_error(url: &str, err: DbErr) -> StoreError {
    let Some(target) = Target::of(url) else {
        return StoreError::from(err);
    };
    let sqlx = match &err {
        DbErr::Conn(RuntimeErr::SqlxError(e)) | DbErr::Exec(RuntimeErr::SqlxError(e)) => {
            Some(e.as_ref())
        }
        _ => None,
    };
    let code = sqlx
        .and_then(|e| e.as_database_error())
        .and_then(|e| e.code().map(|c| c.into_owned()));
    let Target {
        host,
        port,
        database,
    } = target;
    match code.as_deref() {
        // invalid_catalog_name
        Some("3D000") => StoreError::Setup(format!(
            "the database \"{database}\" does not exist on {host}:{port}; create it (e.g. \
             `createdb -h {host} -p {port} {database}`) or point DATABASE_URL at another one"
        )),
        // invalid_authorization_specification, invalid_password
        Some("28000") | Some("28P01") => StoreError::Setup(format!(
            "the database server at {host}:{port} refused the user of DATABASE_URL \
             (database \"{database}\"): check the user name and password"
        )),
        _ if super::is_unavailable(&err) => StoreError::Setup(format!(
            "cannot reach the database server at {host}:{port} (DATABASE_URL / database.url): {}",
            reason(sqlx)
        )),
        _ => StoreError::from(err),
    }
}

/// The short cause of an unreachable server, without the driver's wrapping.
fn reason(err: Option<&sea_orm::sqlx::Error>) -> String {
    use sea_orm::sqlx::Error as Sqlx;
    match err {
        Some(Sqlx::Io(io)) => io.to_string(),
        Some(Sqlx::Tls(tls)) => format!("TLS failed: {tls}"),
        Some(Sqlx::PoolTimedOut) | None => {
            "no connection within database.acquire_timeout_secs".to_owned()
        }
        Some(other) => other.to_string(),
    }
}

/// Where a server URL points, for messages (never the user or password).
struct Target {
    host: String,
    port: u16,
    database: String,
}

impl Target {
    fn of(url: &str) -> Option<Self> {
        let parsed = url::Url::parse(url).ok()?;
        if !matches!(parsed.scheme(), "postgres" | "postgresql") {
            return None;
        }
        Some(Self {
            host: parsed.host_str().unwrap_or("localhost").to_owned(),
            port: parsed.port().unwrap_or(5432),
            database: parsed.path().trim_start_matches('/').to_owned(),
        })
    }
}

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
