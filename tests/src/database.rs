//! One fresh database per test: a SQLite file in a temporary directory, or a Postgres
//! database named `umbra_test_<uuid>` created on the server `TEST_DATABASE_URL` points to and
//! dropped (with its connections) when the test ends.
use sea_orm::{ConnectionTrait, Database, DatabaseConnection, DbErr};
use std::io::Write;
use std::path::PathBuf;
use std::sync::Once;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

pub struct TestDatabase {
    url: String,
    cleanup: Cleanup,
}

enum Cleanup {
    Directory(PathBuf),
    PostgresDatabase {
        admin_url: String,
        name: String,
    },
    /// Another handle owns the database.
    Nothing,
}

impl TestDatabase {
    pub async fn create(backend: Backend) -> Option<Self> {
        let id = uuid::Uuid::new_v4().simple().to_string();
        match backend {
            Backend::Sqlite => {
                let dir = std::env::temp_dir().join(format!("umbra-test-{id}"));
                let url = format!("sqlite://{}?mode=rwc", dir.join("umbra.db").display());
                Some(Self {
                    url,
                    cleanup: Cleanup::Directory(dir),
                })
            }
            Backend::Postgres => {
                let (admin_url, admin) = postgres_admin().await?;
                let name = format!("umbra_test_{id}");
                admin
                    .execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
                    .await
                    .expect("create the test database");
                if let Some(level) = isolation_level() {
                    admin
                        .execute_unprepared(&format!(
                            "ALTER DATABASE \"{name}\" SET default_transaction_isolation TO '{level}'"
                        ))
                        .await
                        .expect("set the test database's isolation level");
                }
                admin.close().await.ok();
                Some(Self {
                    url: with_database(&admin_url, &name),
                    cleanup: Cleanup::PostgresDatabase { admin_url, name },
                })
            }
        }
    }

    /// The same database, left in place when this handle is dropped.
    pub fn alias(&self) -> Self {
        Self {
            url: self.url.clone(),
            cleanup: Cleanup::Nothing,
        }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// The server-level URL of a Postgres test database (to administer it), if it is one.
    pub fn admin_url(&self) -> Option<(&str, &str)> {
        match &self.cleanup {
            Cleanup::PostgresDatabase { admin_url, name } => Some((admin_url, name)),
            Cleanup::Directory(_) | Cleanup::Nothing => None,
        }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        match &self.cleanup {
            Cleanup::Directory(dir) => {
                std::fs::remove_dir_all(dir).ok();
            }
            Cleanup::Nothing => {}
            Cleanup::PostgresDatabase { admin_url, name } => {
                let (admin_url, name) = (admin_url.clone(), name.clone());
                // Drop runs inside the test's runtime; a thread with its own runtime can block.
                let dropped = std::thread::spawn(move || {
                    let runtime = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .ok()?;
                    runtime.block_on(async {
                        let admin = Database::connect(&admin_url).await.ok()?;
                        admin
                            .execute_unprepared(&format!(
                                "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
                            ))
                            .await
                            .ok()?;
                        admin.close().await.ok()
                    })
                });
                dropped.join().ok();
            }
        }
    }
}

/// A connection to the Postgres server `TEST_DATABASE_URL` names, with the URL it used; `None`
/// (skip) when the variable is unset outside CI. In CI its absence is a failure.
///
/// Each test creates its own database, so the one named in the URL only serves to reach the
/// server: when it does not exist, the server's `postgres` database is used instead.
async fn postgres_admin() -> Option<(String, DatabaseConnection)> {
    let url = match std::env::var("TEST_DATABASE_URL") {
        Ok(url) if !url.is_empty() => url,
        _ if std::env::var_os("CI").is_some() => {
            panic!("TEST_DATABASE_URL must be set in CI: Postgres tests may not be skipped")
        }
        _ => {
            SKIPPED_NOTICE.call_once(|| {
                // Straight to the terminal: the test harness captures `eprintln!`.
                let _ = std::io::stderr().write_all(
                    b"note: the Postgres variants of the tests are skipped (they pass without \
                      running); set TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres \
                      to run them\n",
                );
            });
            return None;
        }
    };
    let connected = match Database::connect(&url).await {
        Err(err) if is_missing_database(&err) => {
            let fallback = with_database(&url, "postgres");
            Database::connect(&fallback).await.map(|db| (fallback, db))
        }
        other => other.map(|db| (url.clone(), db)),
    };
    match connected {
        Ok(connected) => Some(connected),
        Err(err) => panic!(
            "cannot reach the Postgres server of TEST_DATABASE_URL ({}): {}",
            server_of(&url),
            one_line(&err.to_string())
        ),
    }
}

static SKIPPED_NOTICE: Once = Once::new();

/// The default isolation level of every Postgres test database, from `TEST_PG_ISOLATION`:
/// `serializable` (CockroachDB's default) or `repeatable read` (YugabyteDB's), so that the
/// suite can prove Umbra correct where concurrent transactions abort instead of waiting.
/// Unset: the server's default, READ COMMITTED.
fn isolation_level() -> Option<&'static str> {
    let level = std::env::var("TEST_PG_ISOLATION").ok()?;
    match level
        .trim()
        .to_ascii_lowercase()
        .replace(['-', '_'], " ")
        .as_str()
    {
        "" | "read committed" => None,
        "serializable" => Some("serializable"),
        "repeatable read" => Some("repeatable read"),
        other => panic!("TEST_PG_ISOLATION={other:?}: expected serializable or repeatable read"),
    }
}

/// SQLSTATE 3D000, `invalid_catalog_name`: the database in the URL does not exist.
fn is_missing_database(err: &DbErr) -> bool {
    let text = err.to_string();
    text.contains("3D000") || (text.contains("database") && text.contains("does not exist"))
}

/// `host:port/database` of a URL, without user or password.
fn server_of(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let rest = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
    rest.split('?').next().unwrap_or(rest).to_owned()
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The same server URL with another database name.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let authority_end = base.find("://").map_or(0, |i| i + 3);
    let server = match base[authority_end..].find('/') {
        Some(slash) => &base[..authority_end + slash],
        None => base,
    };
    match query {
        Some(query) => format!("{server}/{name}?{query}"),
        None => format!("{server}/{name}"),
    }
}
