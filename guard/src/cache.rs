//! Optional caches of introspection answers, keyed by the SHA-256 of the token so that no
//! token is kept in memory longer than its request.
//!
//! A positive cache trades revocation latency for fewer calls: a token revoked at Umbra is
//! still accepted from the cache until its entry expires, so the entry lifetime **is** the
//! longest revocation delay. Entries never outlive the token's own `exp`. A negative cache
//! spares Umbra repeated calls for the same dead token (a client retrying in a loop), or for a
//! token meant for another resource.
//!
//! Only answers that passed every check of the introspector (issuer, audience, expiry) enter
//! the positive cache, and the introspector checks a hit again before serving it.
use crate::error::GuardError;
use crate::token::ValidatedToken;
use moka::Expiry;
use moka::sync::Cache;
use sha2::{Digest, Sha256};
use std::time::{Duration, Instant};

/// Bounds of one cache: how many entries, and how long each lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheSettings {
    /// Entries kept at most; the least useful are evicted beyond it.
    pub max_entries: u64,
    /// How long an entry lives. For the positive cache this is the longest time a revoked
    /// token is still accepted.
    pub ttl: Duration,
}

impl CacheSettings {
    pub const fn new(max_entries: u64, ttl: Duration) -> Self {
        Self { max_entries, ttl }
    }
}

impl Default for CacheSettings {
    /// 10 000 entries for 5 seconds: at most 5 s of revocation delay.
    fn default() -> Self {
        Self::new(10_000, Duration::from_secs(5))
    }
}

type Key = [u8; 32];

#[derive(Clone)]
struct Positive {
    token: ValidatedToken,
    lifetime: Duration,
}

/// Each positive entry lives for the smaller of the configured lifetime and the time left
/// until the token's `exp`.
struct UntilExpiry;

impl Expiry<Key, Positive> for UntilExpiry {
    fn expire_after_create(&self, _: &Key, value: &Positive, _: Instant) -> Option<Duration> {
        Some(value.lifetime)
    }

    fn expire_after_update(
        &self,
        _: &Key,
        value: &Positive,
        _: Instant,
        _: Option<Duration>,
    ) -> Option<Duration> {
        Some(value.lifetime)
    }
}

/// A refusal that a later answer about the same token would repeat.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    /// Inactive, or expired: it will not come back to life.
    Inactive,
    /// A token's audience does not change.
    NotForThisResource,
}

impl Refusal {
    /// `None` for refusals that depend on something else than the token (an outage, the
    /// guard's configuration) and must be asked again.
    fn of(err: &GuardError) -> Option<Self> {
        match err {
            GuardError::Inactive | GuardError::Expired => Some(Self::Inactive),
            GuardError::NotForThisResource => Some(Self::NotForThisResource),
            _ => None,
        }
    }

    fn error(self) -> GuardError {
        match self {
            Self::Inactive => GuardError::Inactive,
            Self::NotForThisResource => GuardError::NotForThisResource,
        }
    }
}

/// Both caches; each is absent unless configured. Clones share the entries.
#[derive(Clone)]
pub(crate) struct Caches {
    positive: Option<(Cache<Key, Positive>, Duration)>,
    negative: Option<Cache<Key, Refusal>>,
}

impl Caches {
    pub(crate) fn new(positive: Option<CacheSettings>, negative: Option<CacheSettings>) -> Self {
        Self {
            positive: positive.map(|s| {
                let cache = Cache::builder()
                    .max_capacity(s.max_entries)
                    .expire_after(UntilExpiry)
                    .support_invalidation_closures()
                    .build();
                (cache, s.ttl)
            }),
            negative: negative.map(|s| {
                Cache::builder()
                    .max_capacity(s.max_entries)
                    .time_to_live(s.ttl)
                    .build()
            }),
        }
    }

    pub(crate) fn is_enabled(&self) -> bool {
        self.positive.is_some() || self.negative.is_some()
    }

    pub(crate) fn key(token: &str) -> Key {
        Sha256::digest(token.as_bytes()).into()
    }

    /// A cached positive answer still within the token's `exp` at `now`.
    pub(crate) fn active(&self, key: &Key, now: i64) -> Option<ValidatedToken> {
        let (cache, _) = self.positive.as_ref()?;
        let hit = cache.get(key)?;
        if hit.token.exp <= now {
            cache.invalidate(key);
            return None;
        }
        Some(hit.token)
    }

    /// The refusal remembered for this token, if any.
    pub(crate) fn refusal(&self, key: &Key) -> Option<GuardError> {
        Some(self.negative.as_ref()?.get(key)?.error())
    }

    pub(crate) fn remember_active(&self, key: Key, token: &ValidatedToken, now: i64) {
        let Some((cache, ttl)) = &self.positive else {
            return;
        };
        let left = u64::try_from(token.exp.saturating_sub(now)).unwrap_or(0);
        if left == 0 {
            return;
        }
        let lifetime = (*ttl).min(Duration::from_secs(left));
        cache.insert(
            key,
            Positive {
                token: token.clone(),
                lifetime,
            },
        );
    }

    /// Drops the positive answers about tokens that `revoked` matches.
    pub(crate) fn drop_active_where(
        &self,
        revoked: impl Fn(&ValidatedToken) -> bool + Send + Sync + 'static,
    ) {
        let Some((cache, _)) = &self.positive else {
            return;
        };
        if cache
            .invalidate_entries_if(move |_, entry| revoked(&entry.token))
            .is_err()
        {
            // Dropping more than asked is always safe.
            cache.invalidate_all();
        }
    }

    /// Drops every positive answer.
    pub(crate) fn drop_all_active(&self) {
        if let Some((cache, _)) = &self.positive {
            cache.invalidate_all();
        }
    }

    /// Remembers `err` when it is a refusal that asking again would repeat.
    pub(crate) fn remember_refusal(&self, key: Key, err: &GuardError) {
        if let (Some(cache), Some(refusal)) = (&self.negative, Refusal::of(err)) {
            cache.insert(key, refusal);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scopes::Scopes;

    fn token(exp: i64) -> ValidatedToken {
        ValidatedToken {
            jti: None,
            sub: "svc".into(),
            username: None,
            client_id: "svc".into(),
            scopes: Scopes::parse("read"),
            exp,
            iat: None,
            nbf: None,
            aud: Vec::new(),
            iss: None,
            act: None,
        }
    }

    #[test]
    fn disabled_caches_remember_nothing() {
        let caches = Caches::new(None, None);
        let key = Caches::key("at_x");
        caches.remember_active(key, &token(2_000), 1_000);
        caches.remember_refusal(key, &GuardError::Inactive);
        assert!(!caches.is_enabled());
        assert!(caches.active(&key, 1_000).is_none());
        assert!(caches.refusal(&key).is_none());
    }

    #[test]
    fn a_refusal_is_remembered_as_what_it_was_and_only_if_it_would_repeat() {
        let caches = Caches::new(None, Some(CacheSettings::default()));
        let remembered = |err: GuardError| {
            let key = Caches::key(&format!("at_{err:?}"));
            caches.remember_refusal(key, &err);
            caches.refusal(&key)
        };
        assert!(matches!(
            remembered(GuardError::Inactive),
            Some(GuardError::Inactive)
        ));
        assert!(matches!(
            remembered(GuardError::Expired),
            Some(GuardError::Inactive)
        ));
        assert!(matches!(
            remembered(GuardError::NotForThisResource),
            Some(GuardError::NotForThisResource)
        ));
        assert!(remembered(GuardError::WrongIssuer).is_none());
        assert!(remembered(crate::error::Unavailable::ServerError(502).into()).is_none());
    }

    #[test]
    fn a_positive_entry_is_served_until_exp_and_not_after() {
        let caches = Caches::new(Some(CacheSettings::default()), None);
        let key = Caches::key("at_x");
        caches.remember_active(key, &token(2_000), 1_000);
        assert!(caches.active(&key, 1_999).is_some());
        assert!(caches.active(&key, 2_000).is_none());
        assert!(
            caches.active(&key, 1_000).is_none(),
            "an expired entry is dropped"
        );
    }

    #[test]
    fn an_already_expired_token_is_not_cached() {
        let caches = Caches::new(Some(CacheSettings::default()), None);
        let key = Caches::key("at_x");
        caches.remember_active(key, &token(1_000), 1_000);
        assert!(caches.active(&key, 999).is_none());
    }

    #[test]
    fn keys_differ_per_token_and_do_not_contain_it() {
        assert_ne!(Caches::key("at_a"), Caches::key("at_b"));
        assert_eq!(Caches::key("at_a"), Caches::key("at_a"));
    }
}
