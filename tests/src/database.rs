//! One fresh database per test: a SQLite file in a temporary directory, or a Postgres
//! database named `umbra_test_<uuid>` created on the server `TEST_DATABASE_URL` points to and
//! dropped (with its connections) when the test ends.
use sea_orm::{ConnectionTrait, Database};
use std::path::PathBuf;

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
    PostgresDatabase { admin_url: String, name: String },
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
                let admin_url = postgres_admin_url()?;
                let name = format!("umbra_test_{id}");
                let admin = Database::connect(&admin_url)
                    .await
                    .expect("connect to TEST_DATABASE_URL");
                admin
                    .execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
                    .await
                    .expect("create the test database");
                admin.close().await.ok();
                Some(Self {
                    url: with_database(&admin_url, &name),
                    cleanup: Cleanup::PostgresDatabase { admin_url, name },
                })
            }
        }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// The server-level URL of a Postgres test database (to administer it), if it is one.
    pub fn admin_url(&self) -> Option<(&str, &str)> {
        match &self.cleanup {
            Cleanup::PostgresDatabase { admin_url, name } => Some((admin_url, name)),
            Cleanup::Directory(_) => None,
        }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        match &self.cleanup {
            Cleanup::Directory(dir) => {
                std::fs::remove_dir_all(dir).ok();
            }
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

/// `TEST_DATABASE_URL`, or `None` (skip) outside CI; in CI its absence is a failure.
fn postgres_admin_url() -> Option<String> {
    match std::env::var("TEST_DATABASE_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var_os("CI").is_some() => {
            panic!("TEST_DATABASE_URL must be set in CI: Postgres tests may not be skipped")
        }
        _ => {
            eprintln!("skipping a Postgres test: TEST_DATABASE_URL is not set");
            None
        }
    }
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
