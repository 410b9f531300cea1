//! Failed sign-in attempts, limited per account and per client address over a sliding window.
//!
//! Only failures count, so that a person who knows their password is never refused. To hold
//! under concurrency, an attempt takes a slot *before* its password is verified
//! ([`LoginLimiter::reserve`]): slots in use and recent failures together may not exceed the
//! limit, so dozens of parallel guesses get at most `limit` verifications. The slot becomes a
//! failure, or is handed back on success ([`Attempt::succeeded`]) or when no password was
//! checked ([`Attempt::abandon`]). An attempt dropped without a verdict counts as a failure.
//!
//! IPv4 addresses count one by one; IPv6 addresses per /64, the block one subscriber gets.
//!
//! Kept in this instance's memory and bounded: at most [`MAX_KEYS`] accounts and as many
//! address blocks. When a map is full, keys with nothing left to remember are dropped first;
//! if none is, an arbitrary idle key is forgotten, so a flood of new keys can cost at most the
//! forgotten keys' history, never memory.
use super::password::{PasswordError, Passwords};
use crate::settings::LoginSettings;
use secrecy::SecretString;
use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Most keys each map holds (about 100 bytes per key plus its failure times).
pub const MAX_KEYS: usize = 100_000;

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

/// The per-account and per-address limits of this instance.
pub struct LoginLimiter {
    state: Arc<Mutex<State>>,
}

struct State {
    window: Duration,
    accounts: Counters<String>,
    addresses: Counters<IpAddr>,
}

/// Why a password was not checked.
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    /// Too many recent failures (or checks under way) for the account or the address.
    #[error("too many failed sign-ins; retry in {0:?}")]
    TooMany(Duration),
    #[error(transparent)]
    Password(#[from] PasswordError),
}

/// A slot taken by one sign-in attempt; report how it ended.
#[must_use = "an attempt dropped without a verdict counts as a failure"]
pub struct Attempt {
    state: Arc<Mutex<State>>,
    account: String,
    address: Option<IpAddr>,
    settled: bool,
}

impl LoginLimiter {
    pub fn new(settings: &LoginSettings) -> Self {
        Self {
            state: Arc::new(Mutex::new(State {
                window: Duration::from_secs(settings.window_secs),
                accounts: Counters::new(settings.max_attempts_per_account),
                addresses: Counters::new(settings.max_attempts_per_address),
            })),
        }
    }

    /// Checks `password` against `stored` (see [`Passwords::verify_off_runtime`]) in a slot of
    /// both limits, counting a wrong password (or unknown user) as a failure of `account` and
    /// of `address`.
    pub async fn verify(
        &self,
        passwords: &Arc<Passwords>,
        account: &str,
        address: Option<IpAddr>,
        password: SecretString,
        stored: Option<String>,
    ) -> Result<bool, Refused> {
        let attempt = self.reserve(account, address).map_err(Refused::TooMany)?;
        match passwords.verify_off_runtime(password, stored).await {
            Ok(true) => {
                attempt.succeeded();
                Ok(true)
            }
            Ok(false) => {
                attempt.failed();
                Ok(false)
            }
            Err(err) => {
                attempt.abandon();
                Err(err.into())
            }
        }
    }

    /// Takes a slot for one attempt on `account` from `address`; `Err(wait)` when either
    /// limit has no slot left.
    pub fn reserve(&self, account: &str, address: Option<IpAddr>) -> Result<Attempt, Duration> {
        self.reserve_at(account, address, Instant::now())
    }

    fn reserve_at(
        &self,
        account: &str,
        address: Option<IpAddr>,
        now: Instant,
    ) -> Result<Attempt, Duration> {
        let address = address.map(address_bucket);
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let window = state.window;
        if let Some(address) = address {
            state.addresses.room(&address, window, now)?;
        }
        state.accounts.room(account, window, now)?;
        if let Some(address) = address {
            state.addresses.take(address, window, now);
        }
        state.accounts.take(account.to_owned(), window, now);
        Ok(Attempt {
            state: Arc::clone(&self.state),
            account: account.to_owned(),
            address,
            settled: false,
        })
    }
}

impl Attempt {
    /// The password was right: the slot is handed back and nothing is counted.
    pub fn succeeded(mut self) {
        self.settle(None);
    }

    /// No password was checked (the service was busy): the slot is handed back.
    pub fn abandon(mut self) {
        self.settle(None);
    }

    /// The password was wrong (or the user unknown): the attempt counts for the window.
    pub fn failed(mut self) {
        self.settle(Some(Instant::now()));
    }

    fn settle(&mut self, failed_at: Option<Instant>) {
        if self.settled {
            return;
        }
        self.settled = true;
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(address) = &self.address {
            state.addresses.release(address, failed_at);
        }
        state.accounts.release(&self.account, failed_at);
    }
}

impl Drop for Attempt {
    fn drop(&mut self) {
        self.settle(Some(Instant::now()));
    }
}

/// One limit: per key, the attempts in flight and the failures of the window (never more
/// than `limit` of them are kept: the oldest is what the wait is measured from).
struct Counters<K> {
    limit: usize,
    keys: HashMap<K, Entry>,
}

#[derive(Default)]
struct Entry {
    in_flight: usize,
    failures: VecDeque<Instant>,
}

impl Entry {
    fn forget_before(&mut self, window: Duration, now: Instant) {
        while self
            .failures
            .front()
            .is_some_and(|at| now.saturating_duration_since(*at) >= window)
        {
            self.failures.pop_front();
        }
    }

    fn idle(&self) -> bool {
        self.in_flight == 0 && self.failures.is_empty()
    }
}

impl<K: Hash + Eq + Clone> Counters<K> {
    fn new(limit: u32) -> Self {
        Self {
            limit: usize::try_from(limit).unwrap_or(usize::MAX).max(1),
            keys: HashMap::new(),
        }
    }

    /// `Err(wait)` when `key` has no free slot.
    fn room<Q>(&mut self, key: &Q, window: Duration, now: Instant) -> Result<(), Duration>
    where
        K: std::borrow::Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let Some(entry) = self.keys.get_mut(key) else {
            return Ok(());
        };
        entry.forget_before(window, now);
        if entry.in_flight + entry.failures.len() < self.limit {
            return Ok(());
        }
        // Full of attempts still being verified: they end within a second or so.
        let wait = entry
            .failures
            .front()
            .map_or(Duration::from_secs(1), |oldest| {
                window.saturating_sub(now.saturating_duration_since(*oldest))
            });
        Err(wait.max(Duration::from_secs(1)))
    }

    fn take(&mut self, key: K, window: Duration, now: Instant) {
        if !self.keys.contains_key(&key) && self.keys.len() >= MAX_KEYS {
            self.make_room(window, now);
        }
        self.keys.entry(key).or_default().in_flight += 1;
    }

    fn release<Q>(&mut self, key: &Q, failed_at: Option<Instant>)
    where
        K: std::borrow::Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let Some(entry) = self.keys.get_mut(key) else {
            return;
        };
        entry.in_flight = entry.in_flight.saturating_sub(1);
        if let Some(at) = failed_at {
            entry.failures.push_back(at);
            while entry.failures.len() > self.limit {
                entry.failures.pop_front();
            }
        }
        if entry.idle() {
            self.keys.remove(key);
        }
    }

    fn make_room(&mut self, window: Duration, now: Instant) {
        self.keys.retain(|_, entry| {
            entry.forget_before(window, now);
            !entry.idle()
        });
        if self.keys.len() >= MAX_KEYS {
            let victim = self
                .keys
                .iter()
                .find(|(_, entry)| entry.in_flight == 0)
                .map(|(key, _)| key.clone());
            if let Some(victim) = victim {
                self.keys.remove(&victim);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(per_account: u32, per_address: u32) -> LoginLimiter {
        LoginLimiter::new(&LoginSettings {
            max_attempts_per_account: per_account,
            max_attempts_per_address: per_address,
            window_secs: 60,
        })
    }

    fn ip(text: &str) -> Option<IpAddr> {
        text.parse().ok()
    }

    #[test]
    fn the_account_limit_counts_failures_across_addresses() {
        let limiter = limiter(2, 100);
        let now = Instant::now();
        limiter
            .reserve_at("ada", ip("10.0.0.1"), now)
            .unwrap()
            .failed();
        limiter
            .reserve_at("ada", ip("10.0.0.2"), now)
            .unwrap()
            .failed();
        let wait = limiter
            .reserve_at("ada", ip("10.0.0.1"), now)
            .err()
            .unwrap();
        assert!(wait > Duration::from_secs(50) && wait <= Duration::from_secs(60));
        assert!(limiter.reserve_at("bob", ip("10.0.0.1"), now).is_ok());
        let later = now + Duration::from_secs(61);
        assert!(
            limiter.reserve_at("ada", ip("10.0.0.1"), later).is_ok(),
            "failures leave the window"
        );
    }

    #[test]
    fn the_address_limit_counts_failures_across_accounts() {
        let limiter = limiter(100, 2);
        let a = ip("10.0.0.1");
        limiter.reserve("u1", a).unwrap().failed();
        limiter.reserve("u2", a).unwrap().failed();
        assert!(limiter.reserve("u3", a).is_err());
        assert!(limiter.reserve("u3", ip("10.0.0.2")).is_ok());
    }

    #[test]
    fn successes_and_abandoned_attempts_are_not_counted() {
        let limiter = limiter(2, 2);
        let a = ip("10.0.0.1");
        for _ in 0..10 {
            limiter.reserve("ada", a).unwrap().succeeded();
            limiter.reserve("ada", a).unwrap().abandon();
        }
        let state = limiter.state.lock().unwrap();
        assert!(state.accounts.keys.is_empty() && state.addresses.keys.is_empty());
    }

    #[test]
    fn slots_in_flight_count_and_a_dropped_attempt_is_a_failure() {
        let limiter = limiter(2, 100);
        let first = limiter.reserve("ada", None).unwrap();
        let second = limiter.reserve("ada", None).unwrap();
        assert!(
            limiter.reserve("ada", None).is_err(),
            "two checks are under way"
        );
        first.succeeded();
        drop(second);
        let third = limiter.reserve("ada", None).unwrap();
        assert!(
            limiter.reserve("ada", None).is_err(),
            "one failure, one in flight"
        );
        third.succeeded();
    }

    #[test]
    fn ipv6_addresses_share_their_64_and_ipv4_counts_alone() {
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

        let limiter = limiter(100, 1);
        limiter.reserve("a", ip("2001:db8::1")).unwrap().failed();
        assert!(limiter.reserve("b", ip("2001:db8::ffff:2")).is_err());
        assert!(limiter.reserve("b", ip("2001:db8:0:1::2")).is_ok());
    }

    #[test]
    fn a_full_map_forgets_idle_keys_and_never_grows_past_the_cap() {
        let limiter = limiter(5, 1_000_000);
        let now = Instant::now();
        for i in 0..MAX_KEYS + 10 {
            limiter
                .reserve_at(&format!("user{i}"), None, now)
                .unwrap()
                .failed();
        }
        let state = limiter.state.lock().unwrap();
        assert_eq!(state.accounts.keys.len(), MAX_KEYS);
    }
}
