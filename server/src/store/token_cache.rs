//! The introspection cache: active access-token records kept in memory, keyed by token hash,
//! so that a hot token is answered without the database while a revocation still takes
//! effect at once.
//!
//! # Coherence
//!
//! Only records that were active when read are kept, and never past the token's `exp`. Every
//! change that can make a token inactive reaches the cache in two ways:
//! - on this instance, the store function that made it evicts what it touched right after its
//!   transaction commits, before the request that caused it returns;
//! - on every instance, the change log ([`super::changes`]) carries it (`token`, `grant`,
//!   `user`, `client`, `resource` rows written in the transaction of the change), and
//!   [`TokenCache::apply`] evicts what the row names.
//!
//! A lookup that misses reads the database and then offers the record back. Between the two,
//! a revocation may commit and evict nothing (the record was not cached yet); the record read
//! before it would then be cached stale. So each miss carries a [`Ticket`], the eviction
//! generation it started at, and the record is kept only if no eviction happened meanwhile:
//! whatever the read could have missed was evicted after the ticket was taken.
//!
//! The cache serves only while the change log is followed closely: the last successful poll
//! started less than `changes.max_staleness_ms` ago and, where the database can push
//! (Postgres `NOTIFY`), the listening connection is up. Otherwise every lookup reads the
//! database ([`Lookup::Bypass`]), and the poll that succeeds again applies what was missed
//! before the cache serves.
//!
//! # Memory
//!
//! Each entry holds the token's own values and a pointer to what it shares with other tokens:
//! the clients, scope and audience repeat across tokens and are interned together (a bounded
//! table); a grant's single token is indexed without an allocation. 100,000 entries cost
//! about 20 MB.
//!
//! # Revoked tokens
//!
//! A revoked token (or one of a revoked grant) never becomes active again, so the cache also
//! remembers that it is revoked: a token that keeps being presented after its revocation is
//! refused without the database too. Nothing else inactive is kept: a disabled user may be
//! enabled again, and an unknown token is only garbage.
use crate::oauth::introspection::{RecordKind, TokenRecord, TokenUser};
use crate::oauth::resource::{Actor, Audience};
use crate::oauth::token::TokenHash;
use prometheus::core::Collector;
use prometheus::{IntCounterVec, IntGauge, Opts};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};
use uuid::Uuid;

use super::changes::{Change, ChangeKind};

/// Distinct shared strings kept; beyond it new strings are simply not shared.
const INTERNED_MAX: usize = 4096;

/// The cache of one instance. Cheap to clone; clones share the entries.
#[derive(Clone)]
pub struct TokenCache {
    inner: Option<Arc<Inner>>,
}

/// The outcome of [`TokenCache::lookup`].
pub enum Lookup {
    /// The cached record, still within its `exp`.
    Hit(TokenRecord),
    /// Not cached: read the database, then offer the record with this ticket.
    Miss(Ticket),
    /// The cache may not serve now (off, or the change log is not followed closely).
    Bypass,
}

/// The eviction generation a database read started at (see the module documentation).
#[derive(Debug, Clone, Copy)]
pub struct Ticket(u64);

struct Inner {
    entries: RwLock<Entries>,
    /// Incremented by every eviction, under the write lock.
    generation: AtomicU64,
    capacity: usize,
    max_staleness: Duration,
    /// When the last successful poll of the change log started, in milliseconds after
    /// `epoch` plus one (0: never).
    polled_at_ms: AtomicU64,
    epoch: Instant,
    /// Whether the database's push channel is up; stays true where there is none.
    listening: AtomicBool,
    /// Only a poll that started after this (same scale as `polled_at_ms`) counts: set when the
    /// push channel comes back, since what it missed is read only by a poll after it.
    caught_up_after_ms: AtomicU64,
    lookups: IntCounterVec,
    size: IntGauge,
}

#[derive(Default)]
struct Entries {
    tokens: HashMap<[u8; 32], Cached>,
    by_grant: HashMap<Uuid, GrantTokens>,
    interned: HashMap<String, Arc<Shared>>,
}

/// The cached tokens of one grant: nearly always one.
enum GrantTokens {
    One([u8; 32]),
    Many(Vec<[u8; 32]>),
}

impl GrantTokens {
    fn keys(&self) -> &[[u8; 32]] {
        match self {
            Self::One(key) => std::slice::from_ref(key),
            Self::Many(keys) => keys,
        }
    }
}

/// What many tokens of one client have in common.
struct Shared {
    client_id: String,
    grant_client_id: String,
    scope: String,
    audience: String,
}

/// What introspection needs of an access token, compactly.
struct Cached {
    grant: Uuid,
    shared: Arc<Shared>,
    /// Revoked for good (see the module documentation).
    revoked: bool,
    act: Option<Box<Actor>>,
    issued_at: i64,
    expires_at: i64,
    user: Option<Box<TokenUser>>,
}

impl TokenCache {
    /// A cache of at most `capacity` tokens that serves while the last poll of the change
    /// log started less than `max_staleness` ago.
    #[allow(
        clippy::expect_used,
        reason = "literal names and help that prometheus accepts, as every start shows"
    )]
    pub fn new(capacity: usize, max_staleness: Duration) -> Self {
        let lookups = IntCounterVec::new(
            Opts::new(
                "introspection_cache_lookups_total",
                "Introspection cache lookups by outcome: hit, miss, or bypass (the change log \
                 not followed closely enough to serve)",
            ),
            &["outcome"],
        )
        .expect("valid metric");
        let size = IntGauge::with_opts(Opts::new(
            "introspection_cache_entries",
            "Access tokens held by the introspection cache",
        ))
        .expect("valid metric");
        Self {
            inner: (capacity > 0).then(|| {
                Arc::new(Inner {
                    entries: RwLock::new(Entries::default()),
                    generation: AtomicU64::new(0),
                    capacity,
                    max_staleness,
                    polled_at_ms: AtomicU64::new(0),
                    epoch: Instant::now(),
                    listening: AtomicBool::new(true),
                    caught_up_after_ms: AtomicU64::new(0),
                    lookups,
                    size,
                })
            }),
        }
    }

    /// No cache: every lookup bypasses it.
    pub fn off() -> Self {
        Self { inner: None }
    }

    /// Its metrics, for the registry (none when off).
    pub fn collectors(&self) -> Vec<Box<dyn Collector>> {
        match &self.inner {
            Some(inner) => vec![
                Box::new(inner.lookups.clone()),
                Box::new(inner.size.clone()),
            ],
            None => Vec::new(),
        }
    }

    /// The cached record of the access token `hash` at `now`, or how to go on without one.
    pub fn lookup(&self, hash: &TokenHash, now: i64) -> Lookup {
        let Some(inner) = self.serving() else {
            if let Some(inner) = &self.inner {
                inner.lookups.with_label_values(&["bypass"]).inc();
            }
            return Lookup::Bypass;
        };
        // The ticket is taken before the entry is read: an eviction after it voids the offer.
        let ticket = Ticket(inner.generation.load(Ordering::Acquire));
        let hit = inner
            .read()
            .tokens
            .get(hash.as_bytes())
            .filter(|cached| cached.expires_at > now)
            .map(Cached::record);
        let outcome = if hit.is_some() { "hit" } else { "miss" };
        inner.lookups.with_label_values(&[outcome]).inc();
        match hit {
            Some(record) => Lookup::Hit(record),
            None => Lookup::Miss(ticket),
        }
    }

    /// Offers the record read from the database after a miss. Kept only if it is an access
    /// token that is active or revoked for good at `now`, and nothing was evicted since the
    /// ticket was taken.
    pub fn offer(
        &self,
        ticket: Ticket,
        hash: &TokenHash,
        record: &TokenRecord,
        grant: Uuid,
        now: i64,
    ) {
        let Some(inner) = &self.inner else { return };
        let keep = record.kind == RecordKind::Access
            && record.expires_at > now
            && (record.revoked || !record.user.as_ref().is_some_and(|user| user.disabled));
        if !keep {
            return;
        }
        let mut entries = inner.write();
        if inner.generation.load(Ordering::Acquire) != ticket.0 {
            return;
        }
        if entries.tokens.len() >= inner.capacity && !entries.tokens.contains_key(hash.as_bytes()) {
            entries.make_room(inner.capacity, now);
        }
        let cached = Cached {
            grant,
            shared: entries.intern(record),
            revoked: record.revoked,
            act: record.act.clone().map(Box::new),
            issued_at: record.issued_at,
            expires_at: record.expires_at,
            user: record.user.clone().map(Box::new),
        };
        let key = *hash.as_bytes();
        if let Some(before) = entries.tokens.insert(key, cached) {
            entries.unlink(&key, before.grant);
        }
        entries.link(key, grant);
        inner.size.set(len_gauge(entries.tokens.len()));
    }

    /// Forgets the access token `hash`.
    pub fn evict_token(&self, hash: &[u8; 32]) {
        self.evict(|entries| {
            if let Some(cached) = entries.tokens.remove(hash) {
                entries.unlink(hash, cached.grant);
            }
        });
    }

    /// Forgets every token of the grant `id`.
    pub fn evict_grant(&self, id: Uuid) {
        self.evict(|entries| {
            if let Some(tokens) = entries.by_grant.remove(&id) {
                for key in tokens.keys() {
                    entries.tokens.remove(key);
                }
            }
        });
    }

    /// Forgets every token of the user `id` (a rare, administrative event: a scan).
    pub fn evict_user(&self, id: &str) {
        self.evict_where(|cached| cached.user.as_ref().is_some_and(|user| user.id == id));
    }

    /// Forgets every token issued to the client `id` or in its grants.
    pub fn evict_client(&self, id: &str) {
        self.evict_where(|cached| {
            cached.shared.client_id == id || cached.shared.grant_client_id == id
        });
    }

    /// Forgets everything.
    pub fn clear(&self) {
        self.evict(|entries| *entries = Entries::default());
    }

    /// Evicts what a change-log row names. A kind this version does not know may make tokens
    /// inactive: everything goes.
    pub fn apply(&self, change: &Change) {
        match change.kind {
            Some(ChangeKind::Token) => match decode_hash(&change.subject) {
                Some(hash) => self.evict_token(&hash),
                None => self.clear(),
            },
            Some(ChangeKind::Grant) => match Uuid::parse_str(&change.subject) {
                Ok(id) => self.evict_grant(id),
                Err(_) => self.clear(),
            },
            Some(ChangeKind::User) => self.evict_user(&change.subject),
            Some(ChangeKind::Client) => self.evict_client(&change.subject),
            Some(ChangeKind::Key) => {}
            Some(ChangeKind::Resource) | None => self.clear(),
        }
    }

    /// Records that a poll that started at `started` read the whole change log.
    pub fn polled(&self, started: Instant) {
        if let Some(inner) = &self.inner {
            inner
                .polled_at_ms
                .fetch_max(inner.millis(started), Ordering::AcqRel);
        }
    }

    /// Records whether the push channel (Postgres `NOTIFY`) is up. While it is down the cache
    /// does not serve; when it comes back, it serves again after the next successful poll.
    pub fn set_listening(&self, up: bool) {
        if let Some(inner) = &self.inner {
            if up {
                // Strictly after: a poll that started in this same millisecond may have
                // started before the channel was back.
                let now = inner.millis(Instant::now()) + 1;
                inner.caught_up_after_ms.fetch_max(now, Ordering::AcqRel);
            }
            inner.listening.store(up, Ordering::Release);
        }
    }

    /// Whether the cache serves now (see the module documentation).
    pub fn is_serving(&self) -> bool {
        self.serving().is_some()
    }

    /// Tokens held (tests and diagnostics).
    pub fn len(&self) -> usize {
        self.inner
            .as_ref()
            .map_or(0, |inner| inner.read().tokens.len())
    }

    /// Whether no token is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn serving(&self) -> Option<&Inner> {
        let inner = self.inner.as_deref()?;
        if !inner.listening.load(Ordering::Acquire) {
            return None;
        }
        let polled = inner.polled_at_ms.load(Ordering::Acquire);
        if polled == 0 || polled < inner.caught_up_after_ms.load(Ordering::Acquire) {
            return None;
        }
        let since = Duration::from_millis(polled - 1);
        let fresh = inner.epoch.elapsed().saturating_sub(since) <= inner.max_staleness;
        fresh.then_some(inner)
    }

    fn evict(&self, change: impl FnOnce(&mut Entries)) {
        let Some(inner) = &self.inner else { return };
        let mut entries = inner.write();
        change(&mut entries);
        inner.generation.fetch_add(1, Ordering::AcqRel);
        inner.size.set(len_gauge(entries.tokens.len()));
    }

    fn evict_where(&self, doomed: impl Fn(&Cached) -> bool) {
        self.evict(|entries| {
            let keys: Vec<([u8; 32], Uuid)> = entries
                .tokens
                .iter()
                .filter(|(_, cached)| doomed(cached))
                .map(|(key, cached)| (*key, cached.grant))
                .collect();
            for (key, grant) in keys {
                entries.tokens.remove(&key);
                entries.unlink(&key, grant);
            }
        });
    }
}

impl std::fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenCache")
            .field("enabled", &self.inner.is_some())
            .finish()
    }
}

impl Inner {
    /// `at` in milliseconds after `epoch`, plus one so that 0 means never.
    fn millis(&self, at: Instant) -> u64 {
        let since = at.saturating_duration_since(self.epoch).as_millis();
        u64::try_from(since).unwrap_or(u64::MAX - 1) + 1
    }

    fn read(&self) -> RwLockReadGuard<'_, Entries> {
        // A panic while holding the lock leaves entries that are still each consistent.
        self.entries.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, Entries> {
        self.entries.write().unwrap_or_else(|e| e.into_inner())
    }
}

impl Entries {
    fn intern(&mut self, record: &TokenRecord) -> Arc<Shared> {
        let audience = record.audience.to_string();
        // NUL separates the parts: none of them can hold one.
        let key = [
            record.client_id.as_str(),
            &record.grant_client_id,
            &record.scope,
            &audience,
        ]
        .join("\0");
        if let Some(shared) = self.interned.get(&key) {
            return shared.clone();
        }
        let shared = Arc::new(Shared {
            client_id: record.client_id.clone(),
            grant_client_id: record.grant_client_id.clone(),
            scope: record.scope.clone(),
            audience,
        });
        if self.interned.len() < INTERNED_MAX {
            self.interned.insert(key, shared.clone());
        }
        shared
    }

    /// Adds `key` to its grant's tokens.
    fn link(&mut self, key: [u8; 32], grant: Uuid) {
        match self.by_grant.get_mut(&grant) {
            None => {
                self.by_grant.insert(grant, GrantTokens::One(key));
            }
            Some(GrantTokens::One(first)) => {
                let first = *first;
                self.by_grant
                    .insert(grant, GrantTokens::Many(vec![first, key]));
            }
            Some(GrantTokens::Many(keys)) => keys.push(key),
        }
    }

    /// Removes `key` from its grant's tokens.
    fn unlink(&mut self, key: &[u8; 32], grant: Uuid) {
        let emptied = match self.by_grant.get_mut(&grant) {
            Some(GrantTokens::One(only)) => only == key,
            Some(GrantTokens::Many(keys)) => {
                keys.retain(|k| k != key);
                keys.is_empty()
            }
            None => false,
        };
        if emptied {
            self.by_grant.remove(&grant);
        }
    }

    /// Drops expired entries and, if that is not enough, an arbitrary sixty-fourth of the
    /// rest: eviction in bulk keeps the cost of a full cache low per insertion.
    fn make_room(&mut self, capacity: usize, now: i64) {
        let mut doomed: Vec<([u8; 32], Uuid)> = self
            .tokens
            .iter()
            .filter(|(_, cached)| cached.expires_at <= now)
            .map(|(key, cached)| (*key, cached.grant))
            .collect();
        if self.tokens.len() - doomed.len() >= capacity {
            let more = (capacity / 64).max(1);
            doomed.extend(
                self.tokens
                    .iter()
                    .filter(|(_, cached)| cached.expires_at > now)
                    .take(more)
                    .map(|(key, cached)| (*key, cached.grant)),
            );
        }
        for (key, grant) in doomed {
            self.tokens.remove(&key);
            self.unlink(&key, grant);
        }
        if self.interned.len() >= INTERNED_MAX {
            // Strings no entry shares any more are dropped; live ones are found again.
            self.interned
                .retain(|_, shared| Arc::strong_count(shared) > 1);
        }
    }
}

impl Cached {
    fn record(&self) -> TokenRecord {
        TokenRecord {
            kind: RecordKind::Access,
            client_id: self.shared.client_id.clone(),
            grant_client_id: self.shared.grant_client_id.clone(),
            scope: self.shared.scope.clone(),
            audience: Audience::from_stored(&self.shared.audience),
            act: self.act.as_deref().cloned(),
            issued_at: self.issued_at,
            expires_at: self.expires_at,
            revoked: self.revoked,
            user: self.user.as_deref().cloned(),
        }
    }
}

fn len_gauge(len: usize) -> i64 {
    i64::try_from(len).unwrap_or(i64::MAX)
}

/// The subject of a `token` change: the token hash in lower-case hex.
pub(super) fn encode_hash(hash: &[u8; 32]) -> String {
    hash.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// The hash a `token` change names; `None` for a malformed subject.
pub(super) fn decode_hash(subject: &str) -> Option<[u8; 32]> {
    if subject.len() != 64 || !subject.is_ascii() {
        return None;
    }
    let mut hash = [0u8; 32];
    for (i, byte) in hash.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&subject[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(hash)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_000;

    fn record(client: &str, user: Option<&str>) -> TokenRecord {
        TokenRecord {
            kind: RecordKind::Access,
            client_id: client.into(),
            grant_client_id: client.into(),
            scope: "read".into(),
            audience: Audience::default(),
            act: None,
            issued_at: NOW,
            expires_at: NOW + 60,
            revoked: false,
            user: user.map(|id| TokenUser {
                id: id.into(),
                username: format!("{id}-name"),
                disabled: false,
            }),
        }
    }

    fn hash(n: u8) -> TokenHash {
        TokenHash::from_slice(&[n; 32]).unwrap()
    }

    fn serving_cache(capacity: usize) -> TokenCache {
        let cache = TokenCache::new(capacity, Duration::from_secs(60));
        cache.polled(Instant::now());
        cache
    }

    fn ticket(cache: &TokenCache, hash: &TokenHash) -> Ticket {
        match cache.lookup(hash, NOW) {
            Lookup::Miss(ticket) => ticket,
            Lookup::Hit(_) => panic!("unexpected hit"),
            Lookup::Bypass => panic!("unexpected bypass"),
        }
    }

    fn cache_one(cache: &TokenCache, n: u8, record: &TokenRecord, grant: Uuid) {
        let t = ticket(cache, &hash(n));
        cache.offer(t, &hash(n), record, grant, NOW);
    }

    fn is_hit(cache: &TokenCache, n: u8) -> bool {
        matches!(cache.lookup(&hash(n), NOW), Lookup::Hit(_))
    }

    #[test]
    fn a_cached_record_comes_back_as_it_was_read() {
        let cache = serving_cache(10);
        let mut original = record("svc", Some("u1"));
        original.audience = Audience::new(["https://a.example".to_owned()]);
        original.act = Some(Actor {
            sub: "gateway".into(),
            act: None,
        });
        cache_one(&cache, 1, &original, Uuid::new_v4());
        match cache.lookup(&hash(1), NOW) {
            Lookup::Hit(hit) => assert_eq!(hit, original),
            _ => panic!("expected a hit"),
        }
    }

    #[test]
    fn an_eviction_between_the_read_and_the_offer_voids_the_offer() {
        let cache = serving_cache(10);
        let t = ticket(&cache, &hash(1));
        // The revocation commits and is evicted while the lookup reads the database.
        cache.evict_token(hash(1).as_bytes());
        cache.offer(t, &hash(1), &record("svc", None), Uuid::new_v4(), NOW);
        assert!(!is_hit(&cache, 1));
    }

    #[test]
    fn a_revoked_token_is_remembered_as_revoked() {
        let cache = serving_cache(10);
        let mut revoked = record("svc", None);
        revoked.revoked = true;
        cache_one(&cache, 1, &revoked, Uuid::new_v4());
        match cache.lookup(&hash(1), NOW) {
            Lookup::Hit(hit) => assert!(hit.revoked),
            _ => panic!("expected a hit"),
        }
    }

    #[test]
    fn other_inactive_records_are_never_kept() {
        let cache = serving_cache(10);
        let mut expired = record("svc", None);
        expired.expires_at = NOW;
        cache_one(&cache, 2, &expired, Uuid::new_v4());
        let mut disabled = record("svc", Some("u"));
        disabled.user.as_mut().unwrap().disabled = true;
        cache_one(&cache, 3, &disabled, Uuid::new_v4());
        let mut refresh = record("svc", None);
        refresh.kind = RecordKind::Refresh;
        cache_one(&cache, 4, &refresh, Uuid::new_v4());
        assert!(cache.is_empty());
    }

    #[test]
    fn an_entry_is_not_served_past_exp() {
        let cache = serving_cache(10);
        cache_one(&cache, 1, &record("svc", None), Uuid::new_v4());
        assert!(matches!(cache.lookup(&hash(1), NOW + 59), Lookup::Hit(_)));
        assert!(matches!(cache.lookup(&hash(1), NOW + 60), Lookup::Miss(_)));
    }

    #[test]
    fn each_change_kind_evicts_what_it_names() {
        let cache = serving_cache(10);
        let grant = Uuid::new_v4();
        cache_one(&cache, 1, &record("svc", None), grant);
        cache_one(&cache, 2, &record("svc", None), grant);
        cache_one(&cache, 3, &record("web", Some("u1")), Uuid::new_v4());
        cache_one(&cache, 4, &record("other", None), Uuid::new_v4());
        cache_one(&cache, 5, &record("web2", Some("u2")), Uuid::new_v4());
        let change = |kind, subject: String| Change {
            id: 1,
            kind: Some(kind),
            subject,
        };

        cache.apply(&change(ChangeKind::Grant, grant.to_string()));
        assert!(!is_hit(&cache, 1) && !is_hit(&cache, 2) && is_hit(&cache, 3));
        cache.apply(&change(ChangeKind::User, "u1".into()));
        assert!(!is_hit(&cache, 3) && is_hit(&cache, 4));
        cache.apply(&change(ChangeKind::Client, "other".into()));
        assert!(!is_hit(&cache, 4) && is_hit(&cache, 5));
        cache.apply(&change(ChangeKind::Token, encode_hash(hash(5).as_bytes())));
        assert!(!is_hit(&cache, 5));
        assert!(cache.is_empty());
    }

    #[test]
    fn unknown_kinds_and_resources_clear_everything() {
        let cache = serving_cache(10);
        cache_one(&cache, 1, &record("svc", None), Uuid::new_v4());
        cache.apply(&Change {
            id: 1,
            kind: None,
            subject: "x".into(),
        });
        assert!(cache.is_empty());
        cache_one(&cache, 1, &record("svc", None), Uuid::new_v4());
        cache.apply(&Change {
            id: 2,
            kind: Some(ChangeKind::Resource),
            subject: "https://a.example".into(),
        });
        assert!(cache.is_empty());
    }

    #[test]
    fn the_cache_never_holds_more_than_its_capacity() {
        let cache = serving_cache(64);
        for n in 0..200u8 {
            cache_one(&cache, n, &record("svc", None), Uuid::new_v4());
            assert!(cache.len() <= 64);
        }
        assert!(is_hit(&cache, 199), "the newest entry is kept");
        let entries = cache.inner.as_ref().unwrap().read();
        let linked: usize = entries.by_grant.values().map(|t| t.keys().len()).sum();
        assert_eq!(
            linked,
            entries.tokens.len(),
            "the grant index follows evictions"
        );
    }

    #[test]
    fn it_does_not_serve_before_a_poll_nor_while_the_channel_is_down() {
        let cache = TokenCache::new(10, Duration::from_secs(60));
        assert!(matches!(cache.lookup(&hash(1), NOW), Lookup::Bypass));
        cache.polled(Instant::now());
        assert!(cache.is_serving());
        cache.set_listening(false);
        assert!(!cache.is_serving());
        let before_reconnection = Instant::now();
        std::thread::sleep(Duration::from_millis(2));
        cache.set_listening(true);
        cache.polled(before_reconnection);
        assert!(
            !cache.is_serving(),
            "not before a poll after the reconnection"
        );
        std::thread::sleep(Duration::from_millis(2));
        cache.polled(Instant::now());
        assert!(cache.is_serving());
    }

    #[test]
    fn it_stops_serving_when_polls_fall_behind() {
        let cache = TokenCache::new(10, Duration::from_millis(1));
        cache.polled(Instant::now());
        std::thread::sleep(Duration::from_millis(5));
        assert!(!cache.is_serving());
    }

    #[test]
    fn an_off_cache_always_bypasses() {
        let cache = TokenCache::off();
        cache.polled(Instant::now());
        assert!(matches!(cache.lookup(&hash(1), NOW), Lookup::Bypass));
        assert!(
            TokenCache::new(0, Duration::from_secs(1))
                .collectors()
                .is_empty()
        );
    }

    #[test]
    fn token_subjects_round_trip() {
        let h = [0xabu8; 32];
        assert_eq!(decode_hash(&encode_hash(&h)), Some(h));
        assert_eq!(decode_hash("zz"), None);
    }
}
