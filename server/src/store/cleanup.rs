//! The background task that deletes expired and long-revoked rows, and audit events past
//! their retention, in bounded batches, so that no single statement holds locks for long.
//!
//! With many instances on one database, only the holder of the `cleanup` lease purges: N
//! instances purging at once would only fight over the same rows.
use super::leases::{Holder, Lease};
use super::{Store, StoreError};
use crate::settings::CleanupSettings;
use entity::{
    access_token, audit_event, authorization_code, change_log, grant, one_time_code, refresh_token,
    sign_in_limit, used_client_assertion,
};
use sea_orm::sea_query::{Condition, Expr, ExprTrait, Query, SimpleExpr};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Rows deleted by one cleanup pass, per table.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct CleanupReport {
    pub grants: u64,
    pub access_tokens: u64,
    pub refresh_tokens: u64,
    pub authorization_codes: u64,
    pub one_time_codes: u64,
    pub audit_events: u64,
    pub used_client_assertions: u64,
    pub changes: u64,
    pub sign_in_limits: u64,
}

const SECONDS_PER_DAY: i64 = 86_400;

impl Store {
    /// Deletes, batch by batch, everything expired at `now` or revoked before
    /// `now - revoked_retention_secs`, rotated refresh tokens that can no longer reveal a
    /// replay, audit events older than `audit_retention_days`, and change-log rows older
    /// than `change_retention_secs`. Grants go first; their
    /// tokens and codes follow by cascade.
    pub async fn purge(
        &self,
        now: i64,
        settings: &CleanupSettings,
    ) -> Result<CleanupReport, StoreError> {
        let revoked_before = now.saturating_sub(settings.revoked_retention_secs);
        let batch = settings.batch_size;
        let grants = purge_batches::<grant::Entity, _>(
            self,
            grant::Column::Id,
            Condition::any()
                .add(grant::Column::ExpiresAt.lte(now))
                .add(grant::Column::RevokedAt.lte(revoked_before)),
            batch,
        )
        .await?;
        let access_tokens = purge_batches::<access_token::Entity, _>(
            self,
            access_token::Column::Hash,
            Condition::any()
                .add(access_token::Column::ExpiresAt.lte(now))
                .add(access_token::Column::RevokedAt.lte(revoked_before)),
            batch,
        )
        .await?;
        // A rotated refresh token is kept only to catch its replay, which revokes its grant
        // (`Store::rotate_refresh_token`). That stops mattering once the token would have
        // expired anyway (a thief's copy is refused for its age, caught or not) or once its
        // grant is revoked (a replay has nothing left to revoke); the grant row itself stays
        // for `revoked_retention_secs` as the record of the revocation. A live grant expires
        // no earlier than its last token, so its rotated tokens are covered by their expiry.
        let revoked_grants = Query::select()
            .column(grant::Column::Id)
            .from(grant::Entity)
            .and_where(Expr::col(grant::Column::RevokedAt).is_not_null())
            .to_owned();
        let refresh_tokens = purge_batches::<refresh_token::Entity, _>(
            self,
            refresh_token::Column::Hash,
            Condition::any()
                .add(refresh_token::Column::ExpiresAt.lte(now))
                .add(refresh_token::Column::RevokedAt.lte(revoked_before))
                .add(
                    Condition::all()
                        .add(refresh_token::Column::RotatedAt.is_not_null())
                        .add(refresh_token::Column::GrantId.in_subquery(revoked_grants)),
                ),
            batch,
        )
        .await?;
        let authorization_codes = purge_batches::<authorization_code::Entity, _>(
            self,
            authorization_code::Column::Hash,
            Condition::all().add(authorization_code::Column::ExpiresAt.lte(now)),
            batch,
        )
        .await?;
        // An expired one-time code can neither be used nor throttle a resend any more.
        let one_time_codes = purge_batches::<one_time_code::Entity, _>(
            self,
            one_time_code::Column::FactorId,
            Condition::all().add(one_time_code::Column::ExpiresAt.lte(now)),
            batch,
        )
        .await?;
        // A client assertion past its expiry is refused for that; its `jti` need not be kept.
        let used_client_assertions = purge_batches::<used_client_assertion::Entity, _>(
            self,
            used_client_assertion::Column::JtiHash,
            Condition::all().add(used_client_assertion::Column::ExpiresAt.lte(now)),
            batch,
        )
        .await?;
        // A count whose window is over starts afresh at the next attempt: it says nothing more.
        let sign_in_limits = purge_batches::<sign_in_limit::Entity, _>(
            self,
            sign_in_limit::Column::KeyHash,
            Condition::all().add(sign_in_limit::Column::WindowEndsAt.lte(now)),
            batch,
        )
        .await?;
        let audit_events = match settings.audit_retention_days {
            0 => 0,
            days => {
                let recorded_before = now.saturating_sub(days.saturating_mul(SECONDS_PER_DAY));
                purge_batches::<audit_event::Entity, _>(
                    self,
                    audit_event::Column::Id,
                    Condition::all().add(audit_event::Column::At.lt(recorded_before)),
                    batch,
                )
                .await?
            }
        };
        let changes = purge_batches::<change_log::Entity, _>(
            self,
            change_log::Column::Id,
            Condition::all()
                .add(change_log::Column::At.lt(now.saturating_sub(settings.change_retention_secs))),
            batch,
        )
        .await?;
        Ok(CleanupReport {
            grants,
            access_tokens,
            refresh_tokens,
            authorization_codes,
            one_time_codes,
            audit_events,
            used_client_assertions,
            changes,
            sign_in_limits,
        })
    }
}

/// `DELETE FROM t WHERE key IN (SELECT key FROM t WHERE cond LIMIT batch) AND cond` until a
/// batch comes back short. The condition is asked again of each row as it is deleted: a row
/// written since the batch was chosen (a sign-in count started afresh, a `jti` taken over) is
/// kept, where Postgres would otherwise delete it on the strength of its older version.
async fn purge_batches<E, C>(
    store: &Store,
    key: C,
    condition: Condition,
    batch: u64,
) -> Result<u64, StoreError>
where
    E: EntityTrait,
    C: ColumnTrait,
{
    let mut total = 0;
    loop {
        let victims = Query::select()
            .column(key)
            .from(E::default())
            .cond_where(condition.clone())
            .limit(batch)
            .to_owned();
        let in_batch: SimpleExpr = Expr::col(key).in_subquery(victims);
        let deleted = E::delete_many()
            .filter(in_batch)
            .filter(condition.clone())
            .exec(store.connection())
            .await?
            .rows_affected;
        total += deleted;
        if deleted < batch {
            return Ok(total);
        }
    }
}

/// The lease that lets one instance purge; it outlives a few missed ticks of its holder,
/// and then passes to another instance.
const CLEANUP_LEASE: &str = "cleanup";
const CLEANUP_LEASE_TICKS: i64 = 3;

/// Runs [`Store::purge`] every `interval_secs` until `stop` turns true, on the ticks when
/// `holder` holds (or takes) the cleanup lease, counting each pass in `passes`. A pass under
/// way finishes first, so no batch is cut off; then the lease is released, so that another
/// instance takes over at its next tick rather than after the lease expires.
pub fn spawn_cleanup(
    store: Store,
    settings: CleanupSettings,
    holder: Holder,
    passes: prometheus::IntCounter,
    mut stop: watch::Receiver<bool>,
) -> Option<JoinHandle<()>> {
    if settings.interval_secs == 0 {
        return None;
    }
    let ttl = i64::try_from(settings.interval_secs)
        .unwrap_or(i64::MAX / CLEANUP_LEASE_TICKS)
        .saturating_mul(CLEANUP_LEASE_TICKS);
    let lease = Lease::new(store.clone(), CLEANUP_LEASE, holder, ttl);
    Some(tokio::spawn(async move {
        let mut ticks = tokio::time::interval(Duration::from_secs(settings.interval_secs));
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticks.tick() => {}
                _ = stop.changed() => break,
            }
            let now = crate::clock::now();
            match lease.try_take(now).await {
                Ok(true) => {}
                Ok(false) => {
                    tracing::debug!("cleanup skipped: another instance holds the lease");
                    continue;
                }
                Err(err) => {
                    tracing::warn!(error = %err, "cleanup lease unavailable; retrying at the next interval");
                    continue;
                }
            }
            match store.purge(now, &settings).await {
                Ok(report) => {
                    passes.inc();
                    tracing::debug!(?report, "cleanup pass done")
                }
                Err(err) => {
                    tracing::warn!(error = %err, "cleanup pass failed; retrying at the next interval")
                }
            }
        }
        if let Err(err) = lease.release().await {
            tracing::warn!(error = %err, "could not release the cleanup lease; it expires by itself");
        }
        tracing::debug!("cleanup task stopped");
    }))
}
