//! The change log: how a change made anywhere (another instance, the `umbra` CLI writing the
//! database directly) reaches every running instance's caches within
//! `changes.max_staleness_ms`.
//!
//! The store functions that change clients, resources, users or signing keys, and those that
//! revoke tokens or grants, add a row (kind, subject) **in the transaction of the change**, so
//! a change is logged if and only if it commits. Every instance polls the log by id and acts
//! on the rows it has not seen: a client row evicts that client from the [`ClientCache`], a
//! resource row clears it (a resource's scopes and introspectors shape every client linked to
//! it), a key row wakes the key ring's reload, and every row evicts what it names from the
//! introspection cache ([`super::TokenCache`]): a `token` row that token, a `grant` row the
//! grant's tokens, a `user` row the user's, a `client` row the client's, a `resource` row all.
//! Unknown kinds (written by a newer version) clear the introspection cache and are otherwise
//! skipped. The instance that made a change applies it to its own token cache right after the
//! commit ([`Store::changed_here`]), before its request returns.
//!
//! # Push and poll
//!
//! Polls run every `changes.poll_interval_ms`. On Postgres a trigger on the log also sends
//! `NOTIFY umbra_changes` at each committing change, and each instance listens on a
//! connection of its own and polls at once: a change reaches the other instances in
//! milliseconds. CockroachDB and YugabyteDB have no `NOTIFY`; there the log works the same,
//! at the pace of the polls. The introspection cache serves only while the listening
//! connection is up and a poll after it (re)connected has succeeded.
//!
//! # Ids are drawn in insertion order, not commit order
//!
//! On Postgres two transactions draw ids 7 and 8 and 8 commits first: a poller that reads
//! `id > 7`… would move past 7 and never see it. So a poller remembers the ids missing below
//! the highest it has seen (a transaction still committing, or one rolled back) and reads
//! from the lowest of them; a hole is forgotten once it is older than `changes.lookback_secs`
//! (a rollback leaves one for ever). Where ids are too sparse to list what is missing
//! (CockroachDB's), each poll instead re-reads the whole look-back: every row above the
//! highest id that a poll at least `changes.lookback_secs` ago had seen. Either way a row is
//! read as long as it commits within the look-back of being written; the row is the last
//! statement of its transaction, so only the commit itself has to fit. The ids already acted
//! on inside the window are remembered ([`Follower`]), so each change is applied once.
//!
//! # Fail safe
//!
//! A cache may serve only while the last successful poll *started* less than
//! `changes.max_staleness_ms` ago; otherwise (at start-up before the first poll, while the
//! database is unreachable, when the table is gone) every lookup reads the store until a poll
//! succeeds again, and that poll applies everything missed before the cache serves again. An
//! instance whose last success is older than half of `cleanup.change_retention_secs` may have
//! missed rows that cleanup has deleted since, so it clears its caches.
use super::{ClientCache, Store, StoreError};
use crate::settings::ChangeSettings;
use entity::change_log;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, QueryTrait, TransactionTrait,
};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{Notify, broadcast, watch};
use tokio::task::JoinHandle;

/// What a change-log row is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    /// A client's record or rights; the subject is its id.
    Client,
    /// A resource, which shapes the rights of every client linked to it; the subject is its
    /// identifier.
    Resource,
    /// A user; the subject is the user's id.
    User,
    /// The signing keys; the subject is the key id.
    Key,
    /// An access token revoked; the subject is its hash in lower-case hex.
    Token,
    /// A grant revoked, with every token of it; the subject is its id.
    Grant,
}

impl ChangeKind {
    /// The stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Client => "client",
            Self::Resource => "resource",
            Self::User => "user",
            Self::Key => "key",
            Self::Token => "token",
            Self::Grant => "grant",
        }
    }

    /// `None` for a kind this version does not know.
    pub fn parse(stored: &str) -> Option<Self> {
        [
            Self::Client,
            Self::Resource,
            Self::User,
            Self::Key,
            Self::Token,
            Self::Grant,
        ]
        .into_iter()
        .find(|kind| kind.as_str() == stored)
    }
}

/// One row of the change log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub id: i64,
    /// `None`: a kind written by a newer version.
    pub kind: Option<ChangeKind>,
    pub subject: String,
}

/// Logs that `subject` of `kind` changed, on `db`: the transaction of the change, so that the
/// row commits with it. Call it last in the transaction (see the module documentation).
///
/// `at` only serves retention and the start-up look-back, never a protocol decision, so it is
/// read here rather than threaded through every store function.
pub(super) async fn record<C: ConnectionTrait>(
    db: &C,
    kind: ChangeKind,
    subject: &str,
) -> Result<(), StoreError> {
    change_log::Entity::insert(change_log::ActiveModel {
        kind: Set(kind.as_str().to_owned()),
        subject: Set(subject.to_owned()),
        at: Set(crate::clock::now()),
        ..Default::default()
    })
    .exec_without_returning(db)
    .await?;
    Ok(())
}

/// Rows read per query while catching up.
const PAGE: u64 = 1000;

impl Store {
    /// Every change with an id above `after`, in id order.
    pub async fn changes_after(&self, after: i64) -> Result<Vec<Change>, StoreError> {
        let mut changes = Vec::new();
        let mut cursor = after;
        loop {
            let page = change_log::Entity::find()
                .filter(change_log::Column::Id.gt(cursor))
                .order_by_asc(change_log::Column::Id)
                .limit(PAGE)
                .all(&self.db)
                .await?;
            let full = page.len() as u64 == PAGE;
            changes.extend(page.into_iter().map(|row| Change {
                id: row.id,
                kind: ChangeKind::parse(&row.kind),
                subject: row.subject,
            }));
            match changes.last() {
                Some(last) if full => cursor = last.id,
                _ => return Ok(changes),
            }
        }
    }

    /// The highest id of the changes written before `before` (Unix seconds), 0 if none: where
    /// a poller that has just started begins, so that changes written in the look-back before
    /// it started and committed after are not missed.
    pub async fn change_floor(&self, before: i64) -> Result<i64, StoreError> {
        let highest: Option<Option<i64>> = change_log::Entity::find()
            .select_only()
            .column_as(change_log::Column::Id.max(), "highest")
            .filter(change_log::Column::At.lt(before))
            .into_tuple()
            .one(&self.db)
            .await?;
        Ok(highest.flatten().unwrap_or(0))
    }

    /// The lowest and highest ids the log still holds; `None` when it is empty.
    pub async fn change_bounds(&self) -> Result<Option<(i64, i64)>, StoreError> {
        let bounds: Option<(Option<i64>, Option<i64>)> = change_log::Entity::find()
            .select_only()
            .column_as(change_log::Column::Id.min(), "lowest")
            .column_as(change_log::Column::Id.max(), "highest")
            .into_tuple()
            .one(&self.db)
            .await?;
        Ok(bounds.and_then(|(lowest, highest)| lowest.zip(highest)))
    }

    /// Runs `write` and, when it touched a row, logs that `subject` of `kind` changed, in one
    /// transaction, retried as [`Store::retrying`] does under `operation`. Returns the rows
    /// affected.
    pub(super) async fn write_logged<Q: QueryTrait>(
        &self,
        operation: &'static str,
        write: Q,
        kind: ChangeKind,
        subject: &str,
    ) -> Result<u64, StoreError> {
        let statement = write.build(self.db.get_database_backend());
        self.retrying(operation, || {
            let statement = statement.clone();
            async move {
                let txn = self.db.begin().await?;
                let affected = txn.execute_raw(statement).await?.rows_affected();
                if affected > 0 {
                    record(&txn, kind, subject).await?;
                }
                txn.commit().await?;
                if affected > 0 {
                    self.changed_here(kind, subject);
                }
                Ok(affected)
            }
        })
        .await
    }

    /// Applies a change that has just committed to this instance's token cache, so that the
    /// request that made it returns only after it took effect here; other instances read it
    /// from the log. Call it after the commit: evicting before would let a concurrent lookup
    /// cache what it read before the commit.
    pub(super) fn changed_here(&self, kind: ChangeKind, subject: &str) {
        self.token_cache().apply(&Change {
            id: 0,
            kind: Some(kind),
            subject: subject.to_owned(),
        });
    }

    /// Logs a change outside any other write, for callers whose change is not in the database
    /// (and for tests).
    pub async fn record_change(&self, kind: ChangeKind, subject: &str) -> Result<(), StoreError> {
        record(&self.db, kind, subject).await
    }
}

/// Which changes a poller has already acted on, and where its next read starts (see the
/// module documentation). Pure bookkeeping: the caller passes the instants.
#[derive(Debug, Default)]
pub struct Follower {
    /// Where reads start until a checkpoint is old enough: the highest id written a look-back
    /// before this poller started.
    start: Option<i64>,
    /// (poll start, highest id seen by then), oldest first.
    checkpoints: VecDeque<(Instant, i64)>,
    /// Ids above the look-back floor that were acted on.
    seen: BTreeSet<i64>,
    highest: i64,
    /// Ids below `highest` not seen yet, with when they were found missing: each is a
    /// transaction still committing, or one rolled back (forgotten after the look-back).
    holes: BTreeMap<i64, Instant>,
    /// Until then a gap too wide to track (sparse ids, or a burst) may hide late rows, and
    /// reads go back the whole look-back.
    untracked_until: Option<Instant>,
    lookback: Duration,
}

/// Widest gap between consecutive ids whose missing ids are tracked one by one.
const TRACKED_GAP: i64 = 1000;

impl Follower {
    /// Whether the start-up floor is known ([`Follower::start_at`] must come first).
    pub fn started(&self) -> bool {
        self.start.is_some()
    }

    /// Sets the start-up floor, read with [`Store::change_floor`].
    pub fn start_at(&mut self, floor: i64) {
        self.start = Some(floor);
        self.highest = self.highest.max(floor);
    }

    /// The id above which a poll starting at `now` reads. Every row that could still commit
    /// lies above it: above the highest id seen, or in a tracked hole; where ids are too
    /// sparse to track holes, above the highest id seen by the newest poll that started at
    /// least `lookback` earlier. Forgets what lies below the latter.
    pub fn floor(&mut self, now: Instant, lookback: Duration) -> i64 {
        self.lookback = lookback;
        let old_enough = |at: &Instant| now.saturating_duration_since(*at) >= lookback;
        while self.checkpoints.len() > 1 && old_enough(&self.checkpoints[1].0) {
            self.checkpoints.pop_front();
        }
        let full = match self.checkpoints.front() {
            Some((at, highest)) if old_enough(at) => *highest,
            _ => self.start.unwrap_or(0),
        };
        self.seen = self.seen.split_off(&full.saturating_add(1));
        self.holes.retain(|_, found| !old_enough(found));
        if self.untracked_until.is_some_and(|until| now < until) {
            return full;
        }
        let tracked = match self.holes.first_key_value() {
            Some((hole, _)) => hole - 1,
            None => self.highest,
        };
        tracked.max(full)
    }

    /// Takes the rows a poll that started at `started` read, and returns those not acted on
    /// before.
    pub fn take_new(&mut self, read: Vec<Change>, started: Instant) -> Vec<Change> {
        let mut new = Vec::new();
        for change in read {
            if !self.seen.insert(change.id) {
                continue;
            }
            self.holes.remove(&change.id);
            let gap = change.id - self.highest - 1;
            if gap > TRACKED_GAP {
                self.untracked_until = Some(started + self.lookback);
            } else {
                for missing in self.highest + 1..change.id {
                    self.holes.entry(missing).or_insert(started);
                }
            }
            self.highest = self.highest.max(change.id);
            new.push(change);
        }
        self.checkpoints.push_back((started, self.highest));
        new
    }
}

/// The background task that follows the change log and applies it to this instance.
pub struct ChangePoller {
    pub store: Store,
    pub settings: ChangeSettings,
    /// `cleanup.change_retention_secs`.
    pub retention_secs: i64,
    pub clients: ClientCache,
    /// Woken when the signing keys changed.
    pub keys_changed: Arc<Notify>,
    /// Counts failed polls.
    pub failures: prometheus::IntCounter,
    /// Every change applied, for the revocation streams; a change with id 0 and no kind when
    /// rows may have been missed.
    pub published: broadcast::Sender<Change>,
}

impl ChangePoller {
    /// Polls every `changes.poll_interval_ms` (the first at once) until `stop` turns true.
    /// On Postgres with `changes.notify`, a listener also wakes it at every committed change.
    pub fn spawn(self, mut stop: watch::Receiver<bool>) -> JoinHandle<()> {
        let wake = Arc::new(Notify::new());
        if self.settings.notify && self.store.db.get_database_backend() == DbBackend::Postgres {
            // Until the listener is up, nothing may be served from the token cache.
            self.store.token_cache().set_listening(false);
            listen(self.store.clone(), wake.clone(), stop.clone());
        }
        tokio::spawn(async move {
            let mut follower = Follower::default();
            let every = Duration::from_millis(self.settings.poll_interval_ms);
            let mut ticks = tokio::time::interval(every);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut failing = false;
            loop {
                tokio::select! {
                    _ = ticks.tick() => {}
                    _ = wake.notified() => {}
                    _ = stop.changed() => break,
                }
                match self.poll(&mut follower).await {
                    Ok(()) if failing => {
                        failing = false;
                        tracing::info!("the change log is read again; caches serve again");
                    }
                    Ok(()) => {}
                    Err(err) => {
                        self.failures.inc();
                        // One line per outage, not one per poll.
                        if !failing {
                            tracing::warn!(
                                error = %err,
                                "cannot read the change log; caches are bypassed until it can"
                            );
                        }
                        failing = true;
                    }
                }
            }
            tracing::debug!("change poller stopped");
        })
    }

    /// One poll: reads what is new and applies it, then lets the caches serve.
    async fn poll(&self, follower: &mut Follower) -> Result<(), StoreError> {
        let started = Instant::now();
        let lookback = Duration::from_secs(self.settings.lookback_secs);
        if !follower.started() {
            let lookback_secs = i64::try_from(self.settings.lookback_secs).unwrap_or(i64::MAX);
            let before = crate::clock::now().saturating_sub(lookback_secs);
            follower.start_at(self.store.change_floor(before).await?);
        }
        let read = self
            .store
            .changes_after(follower.floor(started, lookback))
            .await?;
        let behind = self.clients.since_last_poll().is_some_and(|since| {
            since.as_secs() >= u64::try_from(self.retention_secs / 2).unwrap_or(0)
        });
        if behind {
            tracing::warn!("the change log was unread for longer than its retention allows");
            self.clients.clear();
        }
        let tokens = self.store.token_cache();
        if behind {
            tokens.clear();
            // No receiver is not an error: nobody streams revocations.
            let _ = self.published.send(Change {
                id: 0,
                kind: None,
                subject: String::new(),
            });
        }
        for change in follower.take_new(read, started) {
            self.apply(&change);
            tokens.apply(&change);
            let _ = self.published.send(change);
        }
        self.clients.polled(started);
        tokens.polled(started);
        Ok(())
    }

    fn apply(&self, change: &Change) {
        match change.kind {
            Some(ChangeKind::Client) => self.clients.evict(&change.subject),
            Some(ChangeKind::Resource) => self.clients.clear(),
            Some(ChangeKind::Key) => self.keys_changed.notify_one(),
            Some(ChangeKind::User | ChangeKind::Token | ChangeKind::Grant) | None => {}
        }
    }
}

/// The channel the change log's trigger notifies on (migration m20261203_000001).
const CHANNEL: &str = "umbra_changes";

/// Listens for new changes on a connection of its own and wakes the poller at each; tells
/// the token cache whether it is listening, reconnecting (with a pause) when the connection
/// is lost.
fn listen(store: Store, wake: Arc<Notify>, mut stop: watch::Receiver<bool>) {
    use sea_orm::sqlx::postgres::PgListener;
    const PAUSE: Duration = Duration::from_millis(500);
    tokio::spawn(async move {
        let tokens = store.token_cache().clone();
        let mut down_logged = false;
        loop {
            let connected = async {
                let pool = store.db.get_postgres_connection_pool();
                let mut listener = PgListener::connect_with(pool).await?;
                listener.listen(CHANNEL).await?;
                Ok::<_, sea_orm::sqlx::Error>(listener)
            };
            let mut listener = tokio::select! {
                connected = connected => connected,
                _ = stop.changed() => return,
            };
            match listener.as_mut() {
                Ok(listener) => {
                    if down_logged {
                        tracing::info!("listening for changes again");
                        down_logged = false;
                    }
                    tokens.set_listening(true);
                    // What was committed while nobody listened is read by this poll.
                    wake.notify_one();
                    loop {
                        tokio::select! {
                            received = listener.try_recv() => match received {
                                Ok(Some(_)) => wake.notify_one(),
                                // The connection is gone; a fresh listener is made below.
                                Ok(None) | Err(_) => break,
                            },
                            _ = stop.changed() => return,
                        }
                    }
                }
                Err(err) if !down_logged => {
                    tracing::warn!(error = %err, "cannot listen for changes; the introspection cache is bypassed until it can");
                    down_logged = true;
                }
                Err(_) => {}
            }
            tokens.set_listening(false);
            tokio::select! {
                _ = tokio::time::sleep(PAUSE) => {}
                _ = stop.changed() => return,
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(id: i64) -> Change {
        Change {
            id,
            kind: Some(ChangeKind::Client),
            subject: format!("c{id}"),
        }
    }

    fn ids(changes: &[Change]) -> Vec<i64> {
        changes.iter().map(|c| c.id).collect()
    }

    const LOOKBACK: Duration = Duration::from_secs(10);

    #[test]
    fn a_change_that_commits_after_a_higher_id_is_still_applied_once() {
        let t0 = Instant::now();
        let mut follower = Follower::default();
        follower.start_at(0);

        // Ids 1 and 3 committed; 2 is still in flight.
        let floor = follower.floor(t0, LOOKBACK);
        assert_eq!(
            ids(&follower.take_new(vec![change(1), change(3)], t0)),
            [1, 3]
        );
        assert_eq!(floor, 0);

        // 2 commits; the next poll reads from the hole on.
        let t1 = t0 + Duration::from_millis(200);
        assert_eq!(follower.floor(t1, LOOKBACK), 1);
        let read = vec![change(2), change(3)];
        assert_eq!(ids(&follower.take_new(read, t1)), [2]);
        // Nothing missing any more: only what is new is read.
        assert_eq!(follower.floor(t1 + Duration::from_millis(200), LOOKBACK), 3);
    }

    #[test]
    fn the_floor_moves_to_what_a_poll_a_lookback_ago_had_seen() {
        let t0 = Instant::now();
        let mut follower = Follower::default();
        follower.start_at(5);
        follower.floor(t0, LOOKBACK);
        follower.take_new(vec![change(6), change(7)], t0);
        let t1 = t0 + Duration::from_secs(4);
        follower.floor(t1, LOOKBACK);
        follower.take_new(vec![change(6), change(7), change(9)], t1);

        let t2 = t0 + LOOKBACK;
        assert_eq!(
            follower.floor(t2, LOOKBACK),
            7,
            "the poll at t0 had seen up to 7"
        );
        assert_eq!(ids(&follower.take_new(vec![change(8), change(9)], t2)), [8]);
        let t3 = t1 + LOOKBACK;
        assert_eq!(follower.floor(t3, LOOKBACK), 9);
    }

    #[test]
    fn before_any_poll_is_old_enough_reads_start_at_the_start_floor() {
        let t0 = Instant::now();
        let mut follower = Follower::default();
        follower.start_at(42);

        assert_eq!(follower.floor(t0, LOOKBACK), 42);
        assert_eq!(ids(&follower.take_new(vec![change(43)], t0)), [43]);
        assert_eq!(follower.floor(t0 + Duration::from_secs(1), LOOKBACK), 43);
    }

    #[test]
    fn a_hole_left_by_a_rollback_is_forgotten_after_the_lookback() {
        let t0 = Instant::now();
        let mut follower = Follower::default();
        follower.start_at(0);
        follower.floor(t0, LOOKBACK);
        follower.take_new(vec![change(1), change(3)], t0);
        assert_eq!(follower.floor(t0 + Duration::from_secs(9), LOOKBACK), 1);
        assert_eq!(follower.floor(t0 + LOOKBACK, LOOKBACK), 3);
    }

    #[test]
    fn sparse_ids_read_back_the_whole_lookback() {
        let t0 = Instant::now();
        let mut follower = Follower::default();
        follower.start_at(0);
        follower.floor(t0, LOOKBACK);
        // CockroachDB's ids: far apart, so what is missing between them cannot be listed.
        follower.take_new(vec![change(1), change(900_000)], t0);
        let t1 = t0 + Duration::from_secs(1);
        assert_eq!(follower.floor(t1, LOOKBACK), 0, "the start floor");
        follower.take_new(vec![change(1), change(900_000)], t1);
        // Once no wide gap was seen for a look-back, reads start above the highest id again.
        let t2 = t0 + LOOKBACK + Duration::from_secs(1);
        assert_eq!(follower.floor(t2, LOOKBACK), 900_000);
    }

    #[test]
    fn kinds_round_trip_and_unknown_kinds_are_none() {
        for kind in [
            ChangeKind::Client,
            ChangeKind::Resource,
            ChangeKind::User,
            ChangeKind::Key,
            ChangeKind::Token,
            ChangeKind::Grant,
        ] {
            assert_eq!(ChangeKind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(ChangeKind::parse("session"), None);
    }
}
