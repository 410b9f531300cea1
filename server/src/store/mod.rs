//! Storage: one repository over SeaORM for clients, grants, tokens and codes.
//!
//! Single-use and rotation rules live here and are enforced atomically (a conditional UPDATE
//! whose affected-row count decides), so two concurrent requests can never both win.
mod assertions;
mod audit;
mod changes;
mod cleanup;
mod client_pages;
mod clients;
mod codes;
mod connect;
mod consents;
mod exchange;
mod factors;
mod grants;
mod issue_batch;
mod keys;
mod leases;
mod lockouts;
mod migrations;
mod registration;
mod resources;
mod retry;
mod roles;
mod sign_in_limits;
mod token_cache;
mod tokens;
mod users;

pub use assertions::AssertionUse;
pub use audit::{Actor, AuditCursor, AuditEntry, AuditKind, AuditPage, AuditQuery, AuditRecord};
pub use changes::{Change, ChangeKind, ChangePoller, Follower};
pub use cleanup::{CleanupReport, spawn_cleanup};
pub use client_pages::{ClientPage, ClientQuery};
pub use clients::{ClientCache, Replaced};
pub use codes::NewAuthorizationCode;
pub use connect::connect;
pub use consents::{Approval, ConsentView};
pub use exchange::{Exchange, TokenPlan};
pub use factors::{CodeCheck, CodeStored, Factor, NewFactor};
pub use grants::{GrantOwner, GrantView, MAX_GRANT_LIST};
pub use issue_batch::IssueBatching;
pub use keys::NewSigningKey;
pub use leases::{Holder, Lease, Renewal};
pub use migrations::{SchemaStatus, check_schema, migrate, migrate_with, schema_status};
pub use registration::{InitialAccessToken, Registered};
pub use resources::{Resource, ResourceChange};
pub use retry::Retries;
pub use roles::{ClientSummary, Counts, UserSummary};
pub use sign_in_limits::SignInSlot;
pub use token_cache::{Lookup, Ticket, TokenCache};
pub use tokens::NewAccessToken;
pub use users::{ProfileChange, User, UserPage, UserQuery, UserUpdate, normalize_username};

use issue_batch::IssueBatch;
use sea_orm::{DatabaseConnection, DbBackend, DbErr, RuntimeErr, SqlErr};

/// The repository. Cheap to clone: it holds a connection pool.
#[derive(Clone, Debug)]
pub struct Store {
    db: DatabaseConnection,
    retries: Retries,
    issue_batch: IssueBatch,
    /// This instance's introspection cache; off unless [`Store::with_token_cache`].
    token_cache: TokenCache,
}

/// Why a storage call failed. Cloneable so that the requests of one group commit can all be
/// told why their shared transaction failed.
#[derive(Clone, Debug, thiserror::Error)]
pub enum StoreError {
    /// The database cannot be reached (connection refused, pool timed out, connection lost).
    #[error("database unavailable: {0}")]
    Unavailable(#[source] DbErr),
    /// A uniqueness rule was broken (e.g. a client id that already exists).
    #[error("{0}")]
    Conflict(String),
    /// The database could not be prepared (e.g. its directory cannot be created).
    #[error("{0}")]
    Setup(String),
    /// A row the write refers to no longer exists (a foreign-key violation, SQLSTATE 23503 on
    /// Postgres, extended code 787 on SQLite): typically a client or user deleted by another
    /// process while this one still held it. The caller's subject is gone, not the database.
    #[error("referenced row is gone: {0}")]
    Gone(String),
    /// A stored row does not hold what the code expects.
    #[error("corrupt row: {0}")]
    Corrupt(String),
    /// The transaction lost a race with a concurrent one (a serialization failure or a
    /// deadlock on Postgres, a busy database on SQLite) and every retry lost too
    /// ([`Store::retrying`]): the service is overloaded on those rows, not broken.
    #[error("transaction conflict: {0}")]
    Contended(#[source] DbErr),
    #[error("database error: {0}")]
    Database(#[source] DbErr),
}

impl From<DbErr> for StoreError {
    fn from(err: DbErr) -> Self {
        if let Some(SqlErr::ForeignKeyConstraintViolation(message)) = err.sql_err() {
            return Self::Gone(message);
        }
        if retry::is_contention(&err) {
            Self::Contended(err)
        } else if is_unavailable(&err) {
            Self::Unavailable(err)
        } else {
            Self::Database(err)
        }
    }
}

/// Failures that mean "the database is not there right now", as opposed to a bad query.
fn is_unavailable(err: &DbErr) -> bool {
    use sea_orm::sqlx::Error as Sqlx;
    match err {
        // Whatever stopped a connection from being made (refused, TLS, or the server saying
        // so, e.g. 55000 "database is not currently accepting connections") is an outage.
        DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => true,
        DbErr::Exec(RuntimeErr::SqlxError(e)) | DbErr::Query(RuntimeErr::SqlxError(e)) => {
            matches!(
                e.as_ref(),
                Sqlx::Io(_)
                    | Sqlx::Tls(_)
                    | Sqlx::PoolTimedOut
                    | Sqlx::PoolClosed
                    | Sqlx::WorkerCrashed
                    | Sqlx::Protocol(_)
            ) || is_postgres_shutdown(e)
        }
        _ => false,
    }
}

/// Postgres tells clients it is going away with SQLSTATE class 57 (operator intervention,
/// e.g. `57P01 admin_shutdown`) and 08 (connection exception).
fn is_postgres_shutdown(err: &sea_orm::sqlx::Error) -> bool {
    err.as_database_error()
        .and_then(|db| db.code())
        .is_some_and(|code| code.starts_with("57") || code.starts_with("08"))
}

impl Store {
    pub fn new(db: DatabaseConnection) -> Self {
        Self {
            db,
            retries: Retries::new(),
            issue_batch: IssueBatch::off(),
            token_cache: TokenCache::off(),
        }
    }

    /// This store with client_credentials issuance committed in groups as `batching` says
    /// ([`IssueBatching`]); a new store commits each issuance on its own.
    #[must_use]
    pub fn with_issue_batching(mut self, batching: IssueBatching) -> Self {
        self.issue_batch = self.issue_batch.configured(batching);
        self
    }

    /// This store with an introspection cache, which its revocations keep coherent.
    pub fn with_token_cache(mut self, cache: TokenCache) -> Self {
        self.token_cache = cache;
        self
    }

    pub fn token_cache(&self) -> &TokenCache {
        &self.token_cache
    }

    pub fn connection(&self) -> &DatabaseConnection {
        &self.db
    }

    /// Connections of the pool in use and idle, for the metrics.
    pub fn pool_usage(&self) -> (i64, i64) {
        // The pool accessors panic on the wrong backend: ask for the one the backend names.
        let (size, idle) = match self.db.get_database_backend() {
            DbBackend::Postgres => {
                let pool = self.db.get_postgres_connection_pool();
                (pool.size(), pool.num_idle())
            }
            DbBackend::Sqlite => {
                let pool = self.db.get_sqlite_connection_pool();
                (pool.size(), pool.num_idle())
            }
            _ => (0, 0),
        };
        let idle = i64::try_from(idle).unwrap_or(i64::MAX);
        (i64::from(size) - idle, idle)
    }

    /// A round trip to the database, for readiness checks.
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.db.ping().await.map_err(StoreError::from)
    }
}
