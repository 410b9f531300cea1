//! Sign-in attempts limited per account and per client address (GCRA from `governor`).
//!
//! Kept in this instance's memory and bounded: stale keys are dropped as the map grows.
use crate::settings::LoginSettings;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::Duration;

/// How many keys a limiter holds before it forgets the ones that are back to full.
const MAX_KEYS: usize = 100_000;

pub struct LoginLimiter {
    per_account: DefaultKeyedRateLimiter<String>,
    per_address: DefaultKeyedRateLimiter<IpAddr>,
}

impl LoginLimiter {
    pub fn new(settings: &LoginSettings) -> Self {
        let quota = |attempts: u32| {
            let burst = NonZeroU32::new(attempts).unwrap_or(NonZeroU32::MIN);
            let period = Duration::from_secs(settings.window_secs) / burst.get();
            Quota::with_period(period.max(Duration::from_millis(1)))
                .unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN))
                .allow_burst(burst)
        };
        Self {
            per_account: RateLimiter::keyed(quota(settings.max_attempts_per_account)),
            per_address: RateLimiter::keyed(quota(settings.max_attempts_per_address)),
        }
    }

    /// Counts one attempt; `Err(wait)` when either limit is exhausted.
    pub fn check(&self, account: &str, address: Option<IpAddr>) -> Result<(), Duration> {
        for limiter_len in [self.per_account.len(), self.per_address.len()] {
            if limiter_len > MAX_KEYS {
                self.per_account.retain_recent();
                self.per_address.retain_recent();
            }
        }
        let now = DefaultClock::default().now();
        if let Some(address) = address {
            self.per_address
                .check_key(&address)
                .map_err(|not_until| not_until.wait_time_from(now))?;
        }
        self.per_account
            .check_key(&account.to_owned())
            .map_err(|not_until| not_until.wait_time_from(now))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_account_limit_applies_across_addresses() {
        let limiter = LoginLimiter::new(&LoginSettings {
            max_attempts_per_account: 2,
            max_attempts_per_address: 100,
            window_secs: 60,
        });
        let (a, b) = ("10.0.0.1".parse().ok(), "10.0.0.2".parse().ok());
        assert!(limiter.check("ada", a).is_ok());
        assert!(limiter.check("ada", b).is_ok());
        let wait = limiter.check("ada", a).unwrap_err();
        assert!(wait > Duration::ZERO && wait <= Duration::from_secs(30));
        assert!(
            limiter.check("bob", a).is_ok(),
            "other accounts are not affected"
        );
    }

    #[test]
    fn the_address_limit_applies_across_accounts() {
        let limiter = LoginLimiter::new(&LoginSettings {
            max_attempts_per_account: 100,
            max_attempts_per_address: 2,
            window_secs: 60,
        });
        let a = "10.0.0.1".parse().ok();
        assert!(limiter.check("u1", a).is_ok());
        assert!(limiter.check("u2", a).is_ok());
        assert!(limiter.check("u3", a).is_err());
    }
}
