//! What the tests that run the `umbra` binary share: a Postgres database of their own and free
//! ports.
use std::net::TcpListener;

/// A database of its own on the Postgres server `TEST_DATABASE_URL` names, dropped afterwards.
pub struct PostgresDatabase {
    /// The URL of the database itself.
    pub url: url::Url,
    server: url::Url,
    name: String,
}

impl PostgresDatabase {
    /// `None` (the test runs on SQLite only) when `TEST_DATABASE_URL` is unset outside CI.
    pub fn create() -> Option<Self> {
        let Some(server) = test_database_server() else {
            assert!(
                std::env::var_os("CI").is_none(),
                "TEST_DATABASE_URL must be set in CI"
            );
            return None;
        };
        let name = format!("umbra_cli_{}", uuid::Uuid::new_v4().simple());
        let mut url = server.clone();
        url.set_path(&name);
        execute(&server, &format!("CREATE DATABASE \"{name}\""));
        Some(Self { url, server, name })
    }
}

impl Drop for PostgresDatabase {
    fn drop(&mut self) {
        execute(
            &self.server,
            &format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", self.name),
        );
    }
}

/// The Postgres server of `TEST_DATABASE_URL`, reached through its `postgres` database (the
/// one the variable names need not exist).
pub fn test_database_server() -> Option<url::Url> {
    let raw = std::env::var("TEST_DATABASE_URL")
        .ok()
        .filter(|u| !u.is_empty())?;
    let mut server = url::Url::parse(&raw).unwrap();
    server.set_path("postgres");
    Some(server)
}

/// Runs one statement on the database at `url` (a Postgres server or database, or a SQLite
/// file).
pub fn execute(url: &url::Url, statement: &str) {
    use sea_orm::ConnectionTrait;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let db = sea_orm::Database::connect(url.as_str()).await.unwrap();
        db.execute_unprepared(statement).await.unwrap();
        db.close().await.ok();
    });
}

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
