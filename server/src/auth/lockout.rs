//! When repeated second-factor failures lock an account's sign-in, and for how long.
//!
//! Failures are counted in a fixed window that starts with the first failure; reaching the
//! limit inside the window locks sign-in until `now + lock_secs`. A success clears the count.
use crate::settings::SecondFactorSettings;

/// The stored state of one account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LockoutState {
    pub failures: i32,
    pub window_started_at: i64,
    pub locked_until: Option<i64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockoutPolicy {
    pub max_failures: i32,
    pub window_secs: i64,
    pub lock_secs: i64,
}

impl LockoutPolicy {
    pub fn from_settings(settings: &SecondFactorSettings) -> Self {
        Self {
            max_failures: settings.max_failures,
            window_secs: settings.failure_window_secs,
            lock_secs: settings.lockout_secs,
        }
    }

    /// Seconds until the lock ends, if the account is locked at `now`.
    pub fn locked_for(&self, state: Option<&LockoutState>, now: i64) -> Option<i64> {
        let until = state?.locked_until?;
        (until > now).then(|| until - now)
    }

    /// The state after one more failure at `now`; `locked_until` is set when this failure
    /// reaches the limit.
    pub fn after_failure(&self, state: Option<&LockoutState>, now: i64) -> LockoutState {
        let fresh = LockoutState {
            failures: 0,
            window_started_at: now,
            locked_until: None,
        };
        let current = match state {
            Some(s) if now - s.window_started_at < self.window_secs && s.locked_until.is_none() => {
                *s
            }
            _ => fresh,
        };
        let failures = current.failures.saturating_add(1);
        LockoutState {
            failures,
            window_started_at: current.window_started_at,
            locked_until: (failures >= self.max_failures).then_some(now + self.lock_secs),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: LockoutPolicy = LockoutPolicy {
        max_failures: 3,
        window_secs: 600,
        lock_secs: 900,
    };

    #[test]
    fn the_limit_inside_the_window_locks_for_the_configured_time() {
        let s1 = POLICY.after_failure(None, 1000);
        let s2 = POLICY.after_failure(Some(&s1), 1100);
        assert_eq!(POLICY.locked_for(Some(&s2), 1100), None);
        let s3 = POLICY.after_failure(Some(&s2), 1200);
        assert_eq!(s3.locked_until, Some(2100));
        assert_eq!(POLICY.locked_for(Some(&s3), 1200), Some(900));
        assert_eq!(POLICY.locked_for(Some(&s3), 2100), None);
    }

    #[test]
    fn failures_outside_the_window_start_a_new_count() {
        let s1 = POLICY.after_failure(None, 1000);
        let s2 = POLICY.after_failure(Some(&s1), 1100);
        let s3 = POLICY.after_failure(Some(&s2), 1700);
        assert_eq!(s3.failures, 1);
        assert_eq!(s3.locked_until, None);
    }

    #[test]
    fn a_failure_after_an_expired_lock_starts_over() {
        let locked = LockoutState {
            failures: 3,
            window_started_at: 1000,
            locked_until: Some(1100),
        };
        let next = POLICY.after_failure(Some(&locked), 1200);
        assert_eq!(next.failures, 1);
        assert_eq!(next.locked_until, None);
    }
}
