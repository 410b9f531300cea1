//! Running a transaction again when the database aborted it for losing a race.
//!
//! Under SERIALIZABLE or REPEATABLE READ (the defaults of CockroachDB and YugabyteDB, and a
//! setting on Postgres) two transactions that touch the same rows do not queue: one of them is
//! aborted with SQLSTATE 40001 (`serialization_failure`), sometimes only at COMMIT. Postgres
//! reports a deadlock as 40P01, and SQLite answers `SQLITE_BUSY` when a read transaction wants
//! to write after another writer committed. None of these is an error of the request: the
//! whole transaction, reads included, must simply run again on a fresh snapshot. Re-running
//! only the statement that failed would act on what the aborted snapshot saw.
//!
//! [`Store::retrying`] is that loop, for every storage call that can race. The closure it runs
//! starts its own transaction each time, so a retry sees what the winner committed: a code
//! redeemed by a concurrent request is then found consumed, and the replay handling revokes
//! the grant exactly as it does without a race.
use super::{Store, StoreError};
use prometheus::{IntCounterVec, Opts};
use sea_orm::DbErr;
use std::future::Future;
use std::time::Duration;

/// Attempts in all, the first included. Writers of one row succeed one per round, so a burst
/// of N racing requests needs up to N rounds; jitter spreads them, and 32 rounds of at most
/// [`MAX_BACKOFF`] bound the wait at about two seconds.
const MAX_ATTEMPTS: u32 = 32;

/// The longest pause between two attempts.
const MAX_BACKOFF: Duration = Duration::from_millis(64);

/// How often each operation was retried, exported as `umbra_store_retries_total{operation}`.
/// The label values are the literals the store passes to [`Store::retrying`], a fixed set.
#[derive(Clone)]
pub struct Retries(IntCounterVec);

impl Retries {
    pub(super) fn new() -> Self {
        let counter = IntCounterVec::new(
            Opts::new(
                "store_retries_total",
                "Transactions run again after a serialization failure, deadlock or busy database",
            ),
            &["operation"],
        )
        .expect("a valid metric definition");
        Self(counter)
    }

    /// The counter, for registering with the metrics registry.
    pub fn collector(&self) -> IntCounterVec {
        self.0.clone()
    }

    /// Retries counted so far for `operation` (tests and diagnostics).
    pub fn count(&self, operation: &str) -> u64 {
        self.0.with_label_values(&[operation]).get()
    }
}

impl std::fmt::Debug for Retries {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Retries")
    }
}

impl Store {
    /// Runs `attempt` until it ends in anything but a lost race ([`StoreError::Contended`]),
    /// at most [`MAX_ATTEMPTS`] times with jittered exponential backoff; after the last one
    /// the error is returned (and becomes a 503, never a 500). `operation` names the call in
    /// the retry metric and must be a literal.
    pub(crate) async fn retrying<T, F, Fut>(
        &self,
        operation: &'static str,
        mut attempt: F,
    ) -> Result<T, StoreError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, StoreError>>,
    {
        let mut tries = 1;
        loop {
            match attempt().await {
                Err(StoreError::Contended(err)) if tries < MAX_ATTEMPTS => {
                    tracing::debug!(operation, attempt = tries, error = %err, "retrying");
                    self.retries.0.with_label_values(&[operation]).inc();
                    tokio::time::sleep(backoff(tries)).await;
                    tries += 1;
                }
                outcome => return outcome,
            }
        }
    }

    /// The retry counter, for the metrics.
    pub fn retries(&self) -> &Retries {
        &self.retries
    }
}

/// The pause after the `tries`-th failed attempt: uniformly random up to an exponentially
/// growing ceiling ("full jitter"), so that the losers of one race do not meet again.
fn backoff(tries: u32) -> Duration {
    let ceiling = Duration::from_millis(1 << tries.min(6)).min(MAX_BACKOFF);
    ceiling.mul_f64(rand::random::<f64>())
}

/// Whether the database aborted the statement because of a concurrent transaction, so that
/// running the whole transaction again can succeed.
pub(super) fn is_contention(err: &DbErr) -> bool {
    use sea_orm::RuntimeErr;
    let sqlx = match err {
        DbErr::Exec(RuntimeErr::SqlxError(e)) | DbErr::Query(RuntimeErr::SqlxError(e)) => e,
        DbErr::Conn(RuntimeErr::SqlxError(e)) => e,
        _ => return false,
    };
    let Some(db) = sqlx.as_database_error() else {
        return false;
    };
    let Some(code) = db.code() else {
        return false;
    };
    if db
        .try_downcast_ref::<sea_orm::sqlx::sqlite::SqliteError>()
        .is_some()
    {
        // Primary codes 5 (BUSY) and 6 (LOCKED), whatever the extended code adds.
        return code
            .parse::<u32>()
            .is_ok_and(|sqlite| matches!(sqlite & 0xff, 5 | 6));
    }
    // serialization_failure, deadlock_detected
    matches!(code.as_ref(), "40001" | "40P01")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_stays_bounded() {
        for tries in 1..=MAX_ATTEMPTS {
            assert!(backoff(tries) <= MAX_BACKOFF);
        }
        let early: Duration = (0..200).map(|_| backoff(1)).sum();
        let late: Duration = (0..200).map(|_| backoff(10)).sum();
        assert!(early < late, "{early:?} vs {late:?}");
    }
}
