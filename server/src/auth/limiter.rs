//! Failed sign-in attempts, limited per account and per client address over a window, and
//! shared by every instance through the database, so that N instances allow what one allows.
//!
//! Only failures count, so that a person who knows their password is never refused. To hold
//! under concurrency, an attempt takes a slot *before* its password is verified
//! ([`LoginLimiter::reserve`]): slots in use and failures together may not exceed the limit,
//! so dozens of parallel guesses, on any number of instances, get at most `limit`
//! verifications. Taking a slot is one conditional upsert per key, decided by the database on
//! the row as it is at that instant (`store/sign_in_limits.rs`). The slot becomes a failure,
//! or is handed back on success ([`Attempt::succeeded`]) or when no password was checked
//! ([`Attempt::abandon`]). An attempt dropped without a verdict (the request was cancelled)
//! counts as a failure; a slot left behind by a crashed instance counts as one until its
//! window ends.
//!
//! The window is fixed: it starts with the first slot taken of a fresh count (none of the
//! key's earlier attempts failed or is under way, or the last window is over) and lasts
//! `window_secs`; a refused attempt is told to wait until it ends ([`Limit::wait`]). Across a
//! window's end an attacker may thus get up to twice the limit in a short time, never more.
//!
//! IPv4 addresses count one by one; IPv6 addresses per /64, the block one subscriber gets.
//! Keys are stored as a SHA-256 of the normalized username or the address block, not as
//! themselves: what people type in the username field (sometimes their password, sometimes
//! someone else's address) and where they come from does not become readable in a table that
//! nobody needs to read. A username can still be confirmed by hashing a guess; the hash is
//! for discretion, not secrecy.
//!
//! Bounded: a row lives until its window ends, then the next attempt starts it afresh or
//! cleanup deletes it (`Store::purge`).
use super::password::{PasswordError, Passwords};
use crate::clock;
use crate::settings::LoginSettings;
use crate::store::{SignInSlot, Store, StoreError, normalize_username};
use secrecy::SecretString;
use sha2::{Digest, Sha256};
use std::net::{IpAddr, Ipv6Addr};
use std::sync::Arc;
use std::time::Duration;

/// The key an address is limited under: itself for IPv4 (and IPv4-mapped IPv6), its /64 for
/// IPv6.
pub fn address_bucket(address: IpAddr) -> IpAddr {
    match address.to_canonical() {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => {
            let prefix = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(Ipv6Addr::from(prefix))
        }
    }
}

/// The stored key of an account: the hash of its normalized username.
pub fn account_key(username: &str) -> [u8; 32] {
    key_hash("account", &normalize_username(username))
}

/// The stored key of an address: the hash of its bucket ([`address_bucket`]).
pub fn address_key(address: IpAddr) -> [u8; 32] {
    key_hash("address", &address_bucket(address).to_string())
}

/// The stored key of an address's open registrations (RFC 7591 without an initial access
/// token), counted apart from its sign-in failures.
pub fn registration_key(address: Option<IpAddr>) -> [u8; 32] {
    match address {
        Some(address) => key_hash("registration", &address_bucket(address).to_string()),
        None => key_hash("registration", "unknown"),
    }
}

// The kind is part of the hash so that no username can share a row with an address.
fn key_hash(kind: &str, key: &str) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(kind.as_bytes());
    hasher.update([0]);
    hasher.update(key.as_bytes());
    hasher.finalize().into()
}

/// One limit: at most `max` slots (failures, and passwords being verified) per key in a fixed
/// window of `window_secs`.
///
/// These functions are the rule; `store/sign_in_limits.rs` implements them in SQL, on the
/// stored row, so that attempts on every instance obey it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    /// Slots per key and window, at least 1.
    pub max: i32,
    /// Length of a window, at least a second.
    pub window_secs: i64,
}

/// The stored count of one key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Count {
    /// Passwords being verified in a slot of this window.
    pub in_flight: i32,
    /// Wrong passwords (and unknown users) of this window.
    pub failures: i32,
    /// When the window ends, in Unix seconds.
    pub window_ends_at: i64,
}

impl Limit {
    fn new(max: u32, window_secs: u64) -> Self {
        Self {
            max: i32::try_from(max).unwrap_or(i32::MAX).max(1),
            window_secs: i64::try_from(window_secs).unwrap_or(i64::MAX).max(1),
        }
    }

    /// Whether the next slot at `now` starts a new count: the window is over, or nothing of
    /// it is left to remember (every attempt so far succeeded or was handed back).
    pub fn starts_fresh(&self, count: &Count, now: i64) -> bool {
        count.window_ends_at <= now || (count.in_flight <= 0 && count.failures <= 0)
    }

    /// Whether a running window has a slot left.
    pub fn has_room(&self, count: &Count) -> bool {
        count.in_flight.saturating_add(count.failures) < self.max
    }

    /// Seconds a refused attempt waits: until the window ends when its failures alone fill
    /// it; a second when passwords still being verified fill it (they end within a second or
    /// so, and those that succeed hand their slot back). At least a second, so that a
    /// count that changed meanwhile is simply asked again.
    pub fn wait(&self, count: Option<&Count>, now: i64) -> u64 {
        match count {
            Some(count) if !self.starts_fresh(count, now) && count.failures >= self.max => {
                u64::try_from(count.window_ends_at.saturating_sub(now))
                    .unwrap_or(1)
                    .max(1)
            }
            _ => 1,
        }
    }
}

/// The per-account and per-address limits, kept in the database.
pub struct LoginLimiter {
    store: Store,
    account: Limit,
    address: Limit,
}

/// Why a password was not checked.
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    /// Too many recent failures (or checks under way) for the account or the address.
    #[error("too many failed sign-ins; retry in {0:?}")]
    TooMany(Duration),
    /// The password could not be checked (e.g. every verification slot is busy).
    #[error(transparent)]
    Password(#[from] PasswordError),
    /// The count could not be read or written: nothing is verified without it.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The slots taken by one sign-in attempt; report how it ended.
#[must_use = "an attempt dropped without a verdict counts as a failure"]
pub struct Attempt {
    store: Store,
    /// Slots not settled yet.
    slots: Vec<Slot>,
    /// What the slots still held become: a failure unless a verdict says otherwise.
    failed: bool,
}

/// A slot of one key, in the window it was taken in.
#[derive(Debug, Clone, Copy)]
struct Slot {
    key_hash: [u8; 32],
    window_ends_at: i64,
}

impl LoginLimiter {
    /// The limits of `settings`, counted in `store`.
    pub fn new(store: Store, settings: &LoginSettings) -> Self {
        Self {
            store,
            account: Limit::new(settings.max_attempts_per_account, settings.window_secs),
            address: Limit::new(settings.max_attempts_per_address, settings.window_secs),
        }
    }

    /// Checks `password` against `stored` (see [`Passwords::verify_off_runtime`]) in a slot of
    /// both limits, counting a wrong password (or unknown user) as a failure of `username`
    /// (normalized here) and of `address`.
    pub async fn verify(
        &self,
        passwords: &Arc<Passwords>,
        username: &str,
        address: Option<IpAddr>,
        password: SecretString,
        stored: Option<String>,
    ) -> Result<bool, Refused> {
        let attempt = self.reserve(username, address, clock::now()).await?;
        let verified = passwords.verify_off_runtime(password, stored).await;
        match verified {
            Ok(true) => attempt.succeeded().await?,
            Ok(false) => attempt.failed().await?,
            Err(_) => attempt.abandon().await?,
        }
        Ok(verified?)
    }

    /// Takes a slot of the address's limit, then of the account's, at `now`;
    /// [`Refused::TooMany`] when either has none left.
    ///
    /// Each slot is one statement, not a transaction over both: an attempt the account refuses
    /// holds an address slot for a moment before handing it back, which can only refuse
    /// another attempt, never let one more through.
    pub async fn reserve(
        &self,
        username: &str,
        address: Option<IpAddr>,
        now: i64,
    ) -> Result<Attempt, Refused> {
        let mut attempt = Attempt {
            store: self.store.clone(),
            slots: Vec::with_capacity(2),
            failed: true,
        };
        let keys = address
            .map(|address| (address_key(address), &self.address))
            .into_iter()
            .chain([(account_key(username), &self.account)]);
        for (key_hash, limit) in keys {
            match self.store.take_sign_in_slot(&key_hash, limit, now).await {
                Ok(SignInSlot::Taken { window_ends_at }) => attempt.slots.push(Slot {
                    key_hash,
                    window_ends_at,
                }),
                Ok(SignInSlot::Refused { retry_after_secs }) => {
                    attempt.abandon().await?;
                    return Err(Refused::TooMany(Duration::from_secs(retry_after_secs)));
                }
                Err(err) => {
                    // Whatever is not handed back now is handed back by the drop.
                    let _ = attempt.abandon().await;
                    return Err(err.into());
                }
            }
        }
        Ok(attempt)
    }
}

impl Attempt {
    /// The password was right: the slots are handed back and nothing is counted.
    pub async fn succeeded(self) -> Result<(), StoreError> {
        self.settle(false).await
    }

    /// No password was checked (the service was busy): the slots are handed back.
    pub async fn abandon(self) -> Result<(), StoreError> {
        self.settle(false).await
    }

    /// The password was wrong (or the user unknown): the attempt counts for the window.
    pub async fn failed(self) -> Result<(), StoreError> {
        self.settle(true).await
    }

    async fn settle(mut self, failed: bool) -> Result<(), StoreError> {
        self.failed = failed;
        // One slot at a time, forgotten once settled: if this is cancelled or fails midway,
        // the drop settles the rest with the same verdict.
        while let Some(slot) = self.slots.last().copied() {
            self.store
                .settle_sign_in_slot(&slot.key_hash, slot.window_ends_at, failed)
                .await?;
            self.slots.pop();
        }
        Ok(())
    }
}

impl Drop for Attempt {
    fn drop(&mut self) {
        if self.slots.is_empty() {
            return;
        }
        let (store, slots, failed) = (
            self.store.clone(),
            std::mem::take(&mut self.slots),
            self.failed,
        );
        // Without a runtime (a test's end) the slots stay in flight: counted as failures until
        // their window ends, which errs on the safe side.
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        runtime.spawn(async move {
            for slot in slots {
                if let Err(err) = store
                    .settle_sign_in_slot(&slot.key_hash, slot.window_ends_at, failed)
                    .await
                {
                    tracing::warn!(error = %err, "a sign-in slot was left in flight until its window ends");
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::CleanupSettings;
    use migration::{Migrator, MigratorTrait};
    use sea_orm::{ConnectOptions, Database};

    const NOW: i64 = 1_800_000_000;

    async fn store() -> Store {
        // One connection: each in-memory SQLite connection is a database of its own.
        let mut options = ConnectOptions::new("sqlite::memory:");
        options.max_connections(1).sqlx_logging(false);
        let db = Database::connect(options).await.unwrap();
        Migrator::up(&db, None).await.unwrap();
        Store::new(db)
    }

    async fn limiter(per_account: u32, per_address: u32) -> LoginLimiter {
        LoginLimiter::new(
            store().await,
            &LoginSettings {
                max_attempts_per_account: per_account,
                max_attempts_per_address: per_address,
                window_secs: 60,
            },
        )
    }

    fn ip(text: &str) -> Option<IpAddr> {
        text.parse().ok()
    }

    fn wait_of(refused: Result<Attempt, Refused>) -> Duration {
        match refused {
            Err(Refused::TooMany(wait)) => wait,
            Err(other) => panic!("refused for another reason: {other}"),
            Ok(_) => panic!("a slot was taken"),
        }
    }

    async fn count(limiter: &LoginLimiter, key: [u8; 32]) -> Option<Count> {
        limiter.store.sign_in_count(&key).await.unwrap()
    }

    #[test]
    fn the_rule_waits_for_the_window_only_when_failures_fill_it() {
        let limit = Limit::new(2, 60);
        let full = Count {
            in_flight: 0,
            failures: 2,
            window_ends_at: NOW + 50,
        };
        let busy = Count {
            in_flight: 2,
            failures: 0,
            ..full
        };
        let over = Count {
            window_ends_at: NOW,
            ..full
        };

        assert_eq!(limit.wait(Some(&full), NOW), 50);
        assert_eq!(limit.wait(Some(&busy), NOW), 1);
        assert_eq!(limit.wait(Some(&over), NOW), 1);
        assert_eq!(limit.wait(None, NOW), 1);
        assert!(!limit.has_room(&full) && !limit.has_room(&busy));
        assert!(limit.starts_fresh(&over, NOW));
        assert!(limit.starts_fresh(
            &Count {
                failures: 0,
                ..full
            },
            NOW
        ));
    }

    #[tokio::test]
    async fn the_account_limit_counts_failures_across_addresses() {
        let limiter = limiter(2, 100).await;
        limiter
            .reserve("ada", ip("10.0.0.1"), NOW)
            .await
            .unwrap()
            .failed()
            .await
            .unwrap();
        limiter
            .reserve("Ada ", ip("10.0.0.2"), NOW + 10)
            .await
            .unwrap()
            .failed()
            .await
            .unwrap();

        let wait = wait_of(limiter.reserve("ADA", ip("10.0.0.1"), NOW + 10).await);

        assert_eq!(
            wait,
            Duration::from_secs(50),
            "the window started at the first failure"
        );
        let row = count(&limiter, address_key("10.0.0.1".parse().unwrap()))
            .await
            .unwrap();
        assert_eq!(
            (row.in_flight, row.failures),
            (0, 1),
            "the refused attempt handed its address slot back"
        );
        assert!(limiter.reserve("bob", ip("10.0.0.1"), NOW).await.is_ok());
        assert!(
            limiter
                .reserve("ada", ip("10.0.0.1"), NOW + 60)
                .await
                .is_ok(),
            "failures leave with their window"
        );
    }

    #[tokio::test]
    async fn the_address_limit_counts_failures_across_accounts() {
        let limiter = limiter(100, 2).await;
        let a = ip("10.0.0.1");
        for user in ["u1", "u2"] {
            let attempt = limiter.reserve(user, a, NOW).await.unwrap();
            attempt.failed().await.unwrap();
        }

        assert_eq!(
            wait_of(limiter.reserve("u3", a, NOW + 1).await),
            Duration::from_secs(59)
        );
        assert!(limiter.reserve("u3", ip("10.0.0.2"), NOW).await.is_ok());
    }

    #[tokio::test]
    async fn successes_and_abandoned_attempts_are_not_counted() {
        let limiter = limiter(2, 2).await;
        let a = ip("10.0.0.1");
        for _ in 0..10 {
            let attempt = limiter.reserve("ada", a, NOW).await.unwrap();
            attempt.succeeded().await.unwrap();
            let attempt = limiter.reserve("ada", a, NOW).await.unwrap();
            attempt.abandon().await.unwrap();
        }

        let row = count(&limiter, account_key("ada")).await.unwrap();
        assert_eq!((row.in_flight, row.failures), (0, 0));
    }

    #[tokio::test]
    async fn a_success_after_failures_starts_no_fresh_window() {
        let limiter = limiter(2, 100).await;
        let failure = limiter.reserve("ada", None, NOW).await.unwrap();
        failure.failed().await.unwrap();
        let success = limiter.reserve("ada", None, NOW + 30).await.unwrap();
        success.succeeded().await.unwrap();

        let row = count(&limiter, account_key("ada")).await.unwrap();

        assert_eq!(row.failures, 1, "a success does not forgive the failures");
        assert_eq!(row.window_ends_at, NOW + 60);
    }

    #[tokio::test]
    async fn slots_in_flight_count_and_a_dropped_attempt_is_a_failure() {
        let limiter = limiter(2, 100).await;
        let first = limiter.reserve("ada", None, NOW).await.unwrap();
        let second = limiter.reserve("ada", None, NOW).await.unwrap();
        assert_eq!(
            wait_of(limiter.reserve("ada", None, NOW).await),
            Duration::from_secs(1),
            "two checks are under way"
        );
        first.succeeded().await.unwrap();
        drop(second);

        let mut failures = 0;
        for _ in 0..100 {
            failures = count(&limiter, account_key("ada")).await.unwrap().failures;
            if failures == 1 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(failures, 1, "the dropped attempt was counted");
        let third = limiter.reserve("ada", None, NOW).await.unwrap();
        assert!(
            limiter.reserve("ada", None, NOW).await.is_err(),
            "one failure, one in flight"
        );
        third.succeeded().await.unwrap();
    }

    #[tokio::test]
    async fn a_slot_from_a_window_that_ended_changes_nothing_in_the_next() {
        let limiter = limiter(1, 100).await;
        let late = limiter.reserve("ada", None, NOW).await.unwrap();
        let next = limiter.reserve("ada", None, NOW + 60).await.unwrap();

        late.failed().await.unwrap();

        let row = count(&limiter, account_key("ada")).await.unwrap();
        assert_eq!((row.in_flight, row.failures), (1, 0));
        assert_eq!(row.window_ends_at, NOW + 120);
        next.succeeded().await.unwrap();
    }

    #[tokio::test]
    async fn ipv6_addresses_share_their_64_and_ipv4_counts_alone() {
        let bucket = |text: &str| address_bucket(text.parse().unwrap());
        assert_eq!(
            bucket("2001:db8:1:2:aaaa::1"),
            bucket("2001:db8:1:2:ffff:1:2:3")
        );
        assert_eq!(
            bucket("2001:db8:1:2:aaaa::1"),
            "2001:db8:1:2::".parse::<IpAddr>().unwrap()
        );
        assert_ne!(bucket("2001:db8:1:2::1"), bucket("2001:db8:1:3::1"));
        assert_ne!(bucket("192.0.2.1"), bucket("192.0.2.2"));
        assert_eq!(bucket("::ffff:192.0.2.1"), bucket("192.0.2.1"));

        let limiter = limiter(100, 1).await;
        let attempt = limiter.reserve("a", ip("2001:db8::1"), NOW).await.unwrap();
        attempt.failed().await.unwrap();
        assert!(
            limiter
                .reserve("b", ip("2001:db8::ffff:2"), NOW)
                .await
                .is_err()
        );
        assert!(
            limiter
                .reserve("b", ip("2001:db8:0:1::2"), NOW)
                .await
                .is_ok()
        );
    }

    #[test]
    fn an_account_and_an_address_never_share_a_key() {
        assert_ne!(
            account_key("10.0.0.1"),
            address_key("10.0.0.1".parse().unwrap())
        );
        assert_eq!(account_key(" Ada"), account_key("ada"));
    }

    #[tokio::test]
    async fn rows_are_purged_once_their_window_is_over() {
        let limiter = limiter(5, 5).await;
        for i in 0..3 {
            let attempt = limiter
                .reserve(&format!("user{i}"), ip("10.0.0.1"), NOW)
                .await
                .unwrap();
            attempt.failed().await.unwrap();
        }
        let settings = CleanupSettings {
            batch_size: 2,
            ..crate::settings::Settings::built_in().unwrap().cleanup
        };

        let early = limiter.store.purge(NOW + 59, &settings).await.unwrap();
        let due = limiter.store.purge(NOW + 60, &settings).await.unwrap();

        assert_eq!(early.sign_in_limits, 0);
        assert_eq!(due.sign_in_limits, 4, "three accounts and one address");
        assert!(count(&limiter, account_key("user0")).await.is_none());
    }

    #[tokio::test]
    async fn a_database_that_is_gone_refuses_with_an_outage_not_a_verdict() {
        let limiter = limiter(5, 5).await;
        limiter.store.connection().clone().close().await.unwrap();

        let refused = limiter.reserve("ada", ip("10.0.0.1"), NOW).await;

        assert!(
            matches!(refused, Err(Refused::Store(StoreError::Unavailable(_)))),
            "{:?}",
            refused.err()
        );
    }
}
