//! The change log: how a change made anywhere (another instance, the `umbra` CLI writing the
//! database directly) reaches every running instance's caches within
//! `changes.max_staleness_ms`.
//!
//! The store functions that change clients, resources, users or signing keys add a row (kind,
//! subject) **in the transaction of the change**, so a change is logged if and only if it
//! commits. Every instance polls the log by id every `changes.poll_interval_ms` and acts on
//! the rows it has not seen: a client row evicts that client from the [`ClientCache`], a
//! resource row clears it (a resource's scopes and introspectors shape every client linked to
//! it), a key row wakes the key ring's reload. User rows have no reader yet: users and their
//! security stamps are read from the database at every request, so nothing per instance can
//! go stale; the rows are there for whatever caches them later. Unknown kinds (written by a
//! newer version) are skipped.
//!
//! Polling rather than `LISTEN/NOTIFY`, because CockroachDB and YugabyteDB have no such
//! channel; the log works the same on every engine.
//!
//! # Ids are drawn in insertion order, not commit order
//!
//! On Postgres two transactions draw ids 7 and 8 and 8 commits first: a poller that reads
//! `id > 7`… would move past 7 and never see it. Remembering each missing id does not work
//! everywhere (a rolled-back transaction leaves a gap for ever, and CockroachDB's ids are
//! sparse), so each poll instead re-reads a bounded look-back: every row above the highest id
//! that a poll at least `changes.lookback_secs` ago had seen. A row whose id was drawn after
//! that poll has a higher id, so it is read as long as it commits within the look-back of
//! being written; the row is the last statement of its transaction, so only the commit itself
//! has to fit. The ids already acted on inside the window are remembered ([`Follower`]), so
//! each change is applied once. The cost is reading the last few seconds of the log at each
//! poll, which holds only administrative changes.
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
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, QueryTrait, TransactionTrait,
};
use std::collections::{BTreeSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{Notify, watch};
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
}

impl ChangeKind {
    /// The stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Client => "client",
            Self::Resource => "resource",
            Self::User => "user",
            Self::Key => "key",
        }
    }

    /// `None` for a kind this version does not know.
    pub fn parse(stored: &str) -> Option<Self> {
        [Self::Client, Self::Resource, Self::User, Self::Key]
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
                Ok(affected)
            }
        })
        .await
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
    /// Ids above the current floor that were acted on.
    seen: BTreeSet<i64>,
    highest: i64,
}

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

    /// The id above which a poll starting at `now` reads: the highest id seen by the newest
    /// poll that started at least `lookback` earlier. Forgets what lies below it.
    pub fn floor(&mut self, now: Instant, lookback: Duration) -> i64 {
        let old_enough = |at: &Instant| now.saturating_duration_since(*at) >= lookback;
        while self.checkpoints.len() > 1 && old_enough(&self.checkpoints[1].0) {
            self.checkpoints.pop_front();
        }
        let floor = match self.checkpoints.front() {
            Some((at, highest)) if old_enough(at) => *highest,
            _ => self.start.unwrap_or(0),
        };
        self.seen = self.seen.split_off(&floor.saturating_add(1));
        floor
    }

    /// Takes the rows a poll that started at `started` read, and returns those not acted on
    /// before.
    pub fn take_new(&mut self, read: Vec<Change>, started: Instant) -> Vec<Change> {
        let new: Vec<Change> = read
            .into_iter()
            .filter(|change| self.seen.insert(change.id))
            .collect();
        self.highest = self.seen.last().copied().unwrap_or(0).max(self.highest);
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
}

impl ChangePoller {
    /// Polls every `changes.poll_interval_ms` (the first at once) until `stop` turns true.
    pub fn spawn(self, mut stop: watch::Receiver<bool>) -> JoinHandle<()> {
        tokio::spawn(async move {
            let mut follower = Follower::default();
            let every = Duration::from_millis(self.settings.poll_interval_ms);
            let mut ticks = tokio::time::interval(every);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut failing = false;
            loop {
                tokio::select! {
                    _ = ticks.tick() => {}
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
        for change in follower.take_new(read, started) {
            self.apply(&change);
        }
        self.clients.polled(started);
        Ok(())
    }

    fn apply(&self, change: &Change) {
        match change.kind {
            Some(ChangeKind::Client) => self.clients.evict(&change.subject),
            Some(ChangeKind::Resource) => self.clients.clear(),
            Some(ChangeKind::Key) => self.keys_changed.notify_one(),
            Some(ChangeKind::User) | None => {}
        }
    }
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

        // 2 commits; the next poll reads everything above the start floor again.
        let t1 = t0 + Duration::from_millis(200);
        assert_eq!(follower.floor(t1, LOOKBACK), 0);
        let read = vec![change(1), change(2), change(3)];
        assert_eq!(ids(&follower.take_new(read, t1)), [2]);
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
        assert_eq!(follower.floor(t0 + Duration::from_secs(1), LOOKBACK), 42);
    }

    #[test]
    fn kinds_round_trip_and_unknown_kinds_are_none() {
        for kind in [
            ChangeKind::Client,
            ChangeKind::Resource,
            ChangeKind::User,
            ChangeKind::Key,
        ] {
            assert_eq!(ChangeKind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(ChangeKind::parse("grant"), None);
    }
}
