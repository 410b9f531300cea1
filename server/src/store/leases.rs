//! Leases: jobs that one instance at a time runs (migrations, cleanup, key rotation by age).
//!
//! A lease is a row, `name` held by `holder` until `expires_at`. Taking it and renewing it
//! are one conditional upsert (`INSERT … ON CONFLICT (name) DO UPDATE … WHERE expired OR
//! same holder`) whose affected-row count decides, so two instances can never both hold it,
//! whatever the isolation level. Under SERIALIZABLE the loser of a race may get a
//! serialization failure instead of a row count of 0; the upsert then runs again
//! ([`Store::retrying`]) and counts 0 rows on the winner's row. No advisory locks: CockroachDB
//! accepts `pg_advisory_lock` and ignores it.
//!
//! Expiry compares the instances' own clocks, so they must agree to well within a lease
//! (NTP does); every lease here lasts several of its renewal intervals.
use super::{Store, StoreError};
use entity::lease;
use sea_orm::sea_query::{Expr, ExprTrait, OnConflict, Query};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;

/// Who takes leases: one per running instance (or per `umbra migrate`). A random id, so that
/// two processes never pass for each other, then host name and process id for the operator
/// who wonders who holds a lease.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Holder(Arc<str>);

impl Holder {
    /// A new holder for this process.
    pub fn generate() -> Self {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .or_else(|| std::env::var("HOSTNAME").ok())
            .map(|h| h.trim().to_owned())
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "unknown-host".to_owned());
        let mut id = format!(
            "{}@{host}:{}",
            uuid::Uuid::new_v4().simple(),
            std::process::id()
        );
        // The column holds 255 characters; the random part comes first and always fits.
        if let Some((cut, _)) = id.char_indices().nth(255) {
            id.truncate(cut);
        }
        Self(id.into())
    }

    /// The holder as stored.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl Store {
    /// Takes lease `name` for `holder` until `now + ttl_secs`, or extends it if `holder`
    /// has it already. True if `holder` holds it now; false if another holder's lease has
    /// not expired.
    #[tracing::instrument(skip(self), fields(holder = %holder))]
    pub async fn acquire_lease(
        &self,
        name: &str,
        holder: &Holder,
        now: i64,
        ttl_secs: i64,
    ) -> Result<bool, StoreError> {
        let upsert = Query::insert()
            .into_table(lease::Entity)
            .columns([
                lease::Column::Name,
                lease::Column::Holder,
                lease::Column::ExpiresAt,
            ])
            .values_panic([
                name.into(),
                holder.as_str().into(),
                now.saturating_add(ttl_secs).into(),
            ])
            .on_conflict(
                OnConflict::column(lease::Column::Name)
                    .update_columns([lease::Column::Holder, lease::Column::ExpiresAt])
                    .action_and_where(
                        Expr::col((lease::Entity, lease::Column::ExpiresAt))
                            .lte(now)
                            .or(Expr::col((lease::Entity, lease::Column::Holder))
                                .eq(holder.as_str())),
                    )
                    .to_owned(),
            )
            .to_owned();
        let upsert = &upsert;
        self.retrying("acquire_lease", move || async move {
            Ok(self.db.execute(upsert).await?.rows_affected() == 1)
        })
        .await
    }

    /// Gives lease `name` up at once if `holder` has it, so that another instance need not
    /// wait for it to expire.
    #[tracing::instrument(skip(self), fields(holder = %holder))]
    pub async fn release_lease(&self, name: &str, holder: &Holder) -> Result<(), StoreError> {
        self.retrying("release_lease", move || async move {
            lease::Entity::delete_many()
                .filter(lease::Column::Name.eq(name))
                .filter(lease::Column::Holder.eq(holder.as_str()))
                .exec(&self.db)
                .await?;
            Ok(())
        })
        .await
    }

    /// The row of lease `name`, expired or not, if there is one.
    pub async fn lease(&self, name: &str) -> Result<Option<lease::Model>, StoreError> {
        Ok(lease::Entity::find_by_id(name).one(&self.db).await?)
    }
}

/// One named lease as one holder uses it.
#[derive(Clone, Debug)]
pub struct Lease {
    store: Store,
    name: &'static str,
    holder: Holder,
    ttl_secs: i64,
}

impl Lease {
    /// Lease `name` for `holder`, each take or renewal good for `ttl_secs`.
    pub fn new(store: Store, name: &'static str, holder: Holder, ttl_secs: i64) -> Self {
        Self {
            store,
            name,
            holder,
            ttl_secs,
        }
    }

    /// Takes or renews the lease; true if this holder has it now.
    pub async fn try_take(&self, now: i64) -> Result<bool, StoreError> {
        self.store
            .acquire_lease(self.name, &self.holder, now, self.ttl_secs)
            .await
    }

    /// Gives the lease up if this holder has it.
    pub async fn release(&self) -> Result<(), StoreError> {
        self.store.release_lease(self.name, &self.holder).await
    }

    /// Who holds the lease now, and until when; `None` when it is free.
    pub async fn current(&self, now: i64) -> Result<Option<(String, i64)>, StoreError> {
        Ok(self
            .store
            .lease(self.name)
            .await?
            .filter(|row| row.expires_at > now)
            .map(|row| (row.holder, row.expires_at)))
    }

    /// Renews the lease every third of its life until the returned guard is dropped, for
    /// work that may outlast one lease (a long migration). A failed renewal is logged and
    /// retried at the next beat; two missed in a row still leave a third of the lease.
    pub fn keep_renewed(&self) -> Renewal {
        let lease = self.clone();
        let beat = Duration::from_secs(std::cmp::max(
            u64::try_from(self.ttl_secs / 3).unwrap_or(1),
            1,
        ));
        Renewal(tokio::spawn(async move {
            let mut ticks = tokio::time::interval(beat);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            ticks.tick().await;
            loop {
                ticks.tick().await;
                match lease.try_take(crate::clock::now()).await {
                    Ok(true) => {}
                    Ok(false) => tracing::warn!(
                        lease = lease.name,
                        "lease not renewed: another instance holds it or raced for it"
                    ),
                    Err(err) => {
                        tracing::warn!(lease = lease.name, error = %err, "could not renew the lease")
                    }
                }
            }
        }))
    }
}

/// Stops the renewals of [`Lease::keep_renewed`] when dropped.
#[derive(Debug)]
pub struct Renewal(JoinHandle<()>);

impl Drop for Renewal {
    fn drop(&mut self) {
        self.0.abort();
    }
}
