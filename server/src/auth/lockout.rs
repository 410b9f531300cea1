//! When repeated second-factor failures lock an account's sign-in, and for how long.
//!
//! Guesses are counted in a fixed window of `window_secs` that starts with the first guess of
//! a fresh count. A guess takes one of the window's `max_failures` slots *before* it is judged
//! ([`LockoutPolicy::reserve`]): otherwise guesses sent in parallel would all be judged before
//! any of their failures was counted. When every slot is taken, further guesses are refused
//! unseen (no code is consumed, no TOTP step used). A failure judged once every slot is taken
//! locks sign-in until `now + lock_secs` ([`LockoutPolicy::after_failure`]); a lock is never
//! restarted, shortened or cleared by a guess, and a failure during one changes nothing. A
//! success forgives the count, but not a running lock ([`LockoutPolicy::forgives`]).
//!
//! These functions are the rule; `store/lockouts.rs` implements each of them as one SQL
//! statement, so that parallel guesses on any number of instances obey it.
use crate::settings::SecondFactorSettings;

/// The stored state of one account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LockoutState {
    /// Slots taken in the current window: failures, and guesses still being judged.
    pub failures: i32,
    pub window_started_at: i64,
    pub locked_until: Option<i64>,
}

/// Whether a guess may be judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempt {
    /// It took a slot; the state after taking it.
    Allowed(LockoutState),
    /// Locked, or every slot is taken: refused without judging the guess.
    Refused { retry_after_secs: i64 },
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

    /// Whether the next guess at `now` starts a new count: the lock is over, or (without a
    /// lock) the window is.
    pub fn starts_fresh(&self, state: &LockoutState, now: i64) -> bool {
        match state.locked_until {
            Some(until) => until <= now,
            None => state.window_started_at <= now.saturating_sub(self.window_secs),
        }
    }

    /// Takes a slot for a guess at `now`, or refuses it: while locked, until the lock ends;
    /// with every slot taken (by failures or by guesses still being judged), until the window
    /// ends, saying `lock_secs`: the lock one of those guesses is about to set if it fails.
    pub fn reserve(&self, state: Option<&LockoutState>, now: i64) -> Attempt {
        if let Some(retry_after_secs) = self.locked_for(state, now) {
            return Attempt::Refused { retry_after_secs };
        }
        match state {
            Some(s) if !self.starts_fresh(s, now) => {
                if s.failures < self.max_failures {
                    Attempt::Allowed(LockoutState {
                        failures: s.failures.saturating_add(1),
                        ..*s
                    })
                } else {
                    Attempt::Refused {
                        retry_after_secs: self.lock_secs,
                    }
                }
            }
            _ => Attempt::Allowed(LockoutState {
                failures: 1,
                window_started_at: now,
                locked_until: None,
            }),
        }
    }

    /// The locked state after a guess that took its slot in the window started at `window`
    /// failed at `now`; `None` when this failure does not lock: slots are left, a lock was set
    /// already (by another failure, never restarted), or that window is over.
    pub fn after_failure(
        &self,
        state: Option<&LockoutState>,
        window: i64,
        now: i64,
    ) -> Option<LockoutState> {
        let s = state?;
        (s.window_started_at == window
            && s.locked_until.is_none()
            && s.failures >= self.max_failures)
            .then(|| LockoutState {
                locked_until: Some(now.saturating_add(self.lock_secs)),
                ..*s
            })
    }

    /// Whether a success at `now` forgets the count: always, except a running lock (set by a
    /// guess judged in parallel), which only its end lifts.
    pub fn forgives(&self, state: Option<&LockoutState>, now: i64) -> bool {
        self.locked_for(state, now).is_none()
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

    fn allowed(attempt: Attempt) -> LockoutState {
        match attempt {
            Attempt::Allowed(state) => state,
            Attempt::Refused { .. } => panic!("refused: {attempt:?}"),
        }
    }

    #[test]
    fn the_failure_that_fills_the_window_locks_for_the_configured_time() {
        let s1 = allowed(POLICY.reserve(None, 1000));
        assert_eq!(POLICY.after_failure(Some(&s1), 1000, 1000), None);
        let s2 = allowed(POLICY.reserve(Some(&s1), 1100));
        assert_eq!(POLICY.after_failure(Some(&s2), 1000, 1100), None);
        let s3 = allowed(POLICY.reserve(Some(&s2), 1200));
        let locked = POLICY.after_failure(Some(&s3), 1000, 1200).unwrap();
        assert_eq!(locked.locked_until, Some(2100));
        assert_eq!(POLICY.locked_for(Some(&locked), 1200), Some(900));
        assert_eq!(POLICY.locked_for(Some(&locked), 2100), None);
    }

    #[test]
    fn guesses_beyond_the_slots_are_refused_while_the_others_are_judged() {
        let mut state = None;
        for _ in 0..3 {
            state = Some(allowed(POLICY.reserve(state.as_ref(), 1000)));
        }
        // Nothing judged yet, so no lock; still no fourth guess before the window ends.
        for now in [1010, 1599] {
            assert_eq!(
                POLICY.reserve(state.as_ref(), now),
                Attempt::Refused {
                    retry_after_secs: 900
                }
            );
        }
        assert!(matches!(
            POLICY.reserve(state.as_ref(), 1600),
            Attempt::Allowed(_)
        ));
        // Whichever failure is judged first locks, and only that one.
        let locked = POLICY.after_failure(state.as_ref(), 1000, 1020).unwrap();
        assert_eq!(POLICY.after_failure(Some(&locked), 1000, 1030), None);
    }

    #[test]
    fn a_guess_during_a_lock_is_refused_and_the_lock_keeps_its_end() {
        let locked = LockoutState {
            failures: 3,
            window_started_at: 1000,
            locked_until: Some(2100),
        };
        assert_eq!(
            POLICY.reserve(Some(&locked), 2000),
            Attempt::Refused {
                retry_after_secs: 100
            }
        );
        // Past the window, but not past the lock.
        assert_eq!(
            POLICY.reserve(Some(&locked), 1700),
            Attempt::Refused {
                retry_after_secs: 400
            }
        );
        assert_eq!(POLICY.after_failure(Some(&locked), 1000, 2000), None);
        assert!(!POLICY.forgives(Some(&locked), 2000));
    }

    #[test]
    fn guesses_outside_the_window_start_a_new_count() {
        let s1 = allowed(POLICY.reserve(None, 1000));
        let s2 = allowed(POLICY.reserve(Some(&s1), 1100));
        let s3 = allowed(POLICY.reserve(Some(&s2), 1600));
        assert_eq!(
            s3,
            LockoutState {
                failures: 1,
                window_started_at: 1600,
                locked_until: None
            }
        );
        // A failure counted in the old window does not lock the new one.
        let full = LockoutState { failures: 3, ..s3 };
        assert_eq!(POLICY.after_failure(Some(&full), 1000, 1610), None);
    }

    #[test]
    fn a_guess_after_an_expired_lock_starts_over() {
        let locked = LockoutState {
            failures: 3,
            window_started_at: 1000,
            locked_until: Some(1100),
        };
        let next = allowed(POLICY.reserve(Some(&locked), 1200));
        assert_eq!(next.failures, 1);
        assert_eq!(next.window_started_at, 1200);
        assert_eq!(next.locked_until, None);
        assert!(POLICY.forgives(Some(&locked), 1200));
    }

    #[test]
    fn a_success_forgives_failures_without_a_lock() {
        let s1 = allowed(POLICY.reserve(None, 1000));
        assert!(POLICY.forgives(Some(&s1), 1000));
        assert!(POLICY.forgives(None, 1000));
    }
}
