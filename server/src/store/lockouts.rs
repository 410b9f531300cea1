//! Second-factor attempts per user and the lock they cause. The rule is
//! [`crate::auth::lockout`]; each of its steps is one SQL statement here, decided by the
//! database on the row as it is at that instant, so that guesses sent in parallel (from one
//! session or from many instances) cannot be judged more often than the rule allows:
//!
//! - [`Store::reserve_second_factor_attempt`] takes a slot before a guess is judged (one
//!   upsert whose `WHERE` refuses it when locked or full; no row back means refused);
//! - [`Store::lock_after_failure`] sets the lock once (a conditional UPDATE on an unlocked,
//!   full row of the same window, so a running lock is never restarted or shortened);
//! - [`Store::forgive_second_factor_failures`] forgets the count after a success, unless a
//!   lock is running.
//!
//! Stored, not kept in memory, so that every instance sees a lock.
use super::{Store, StoreError};
use crate::auth::lockout::{Attempt, LockoutPolicy, LockoutState};
use entity::login_lockout::{self, Column};
use sea_orm::sea_query::{Expr, ExprTrait, OnConflict};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, EntityTrait, FromQueryResult,
    QueryFilter, QueryResult, QueryTrait,
};
use uuid::Uuid;

impl Store {
    /// The count and lock of a user, if a guess was counted since the last success.
    pub async fn lockout_state(&self, user_id: Uuid) -> Result<Option<LockoutState>, StoreError> {
        Ok(login_lockout::Entity::find_by_id(user_id)
            .one(&self.db)
            .await?
            .map(to_state))
    }

    /// Takes an attempt slot for a guess about to be judged, or refuses it
    /// ([`LockoutPolicy::reserve`]).
    ///
    /// One `INSERT … ON CONFLICT DO UPDATE … WHERE … RETURNING`: the row is created with the
    /// first slot, or updated when the rule allows a slot (starting a fresh count when the lock
    /// or the window is over), and returned only then. The database serialises writers on the
    /// row, so every guess sees the slots taken by all those before it.
    pub async fn reserve_second_factor_attempt(
        &self,
        user_id: Uuid,
        policy: &LockoutPolicy,
        now: i64,
    ) -> Result<Attempt, StoreError> {
        self.retrying("reserve_second_factor_attempt", move || async move {
            let current = |column: Column| Expr::col((login_lockout::Entity, column));
            // `LockoutPolicy::starts_fresh`, on the stored row.
            let fresh = current(Column::LockedUntil)
                .is_not_null()
                .and(current(Column::LockedUntil).lte(now))
                .or(current(Column::LockedUntil).is_null().and(
                    current(Column::WindowStartedAt).lte(now.saturating_sub(policy.window_secs)),
                ));
            let slot_left = current(Column::LockedUntil)
                .is_null()
                .and(current(Column::Failures).lt(policy.max_failures));
            let first = login_lockout::ActiveModel {
                user_id: Set(user_id),
                failures: Set(1),
                window_started_at: Set(now),
                locked_until: Set(None),
            };
            let mut upsert = login_lockout::Entity::insert(first)
                .on_conflict(
                    OnConflict::column(Column::UserId)
                        .values([
                            (
                                Column::Failures,
                                Expr::case(fresh.clone(), 1)
                                    .finally(current(Column::Failures).add(1))
                                    .into(),
                            ),
                            (
                                Column::WindowStartedAt,
                                Expr::case(fresh.clone(), now)
                                    .finally(current(Column::WindowStartedAt))
                                    .into(),
                            ),
                            (
                                Column::LockedUntil,
                                Expr::case(fresh.clone(), Option::<i64>::None)
                                    .finally(current(Column::LockedUntil))
                                    .into(),
                            ),
                        ])
                        .action_and_where(fresh.or(slot_left))
                        .to_owned(),
                )
                .into_query();
            upsert.returning_all();
            if let Some(row) = self.db.query_one(&upsert).await? {
                return Ok(Attempt::Allowed(row_state(&row)?));
            }
            // Refused: read the row only to say for how long. Should it have changed meanwhile
            // (a lock just over, a success), the guess stays refused and may simply be sent again.
            let state = self.lockout_state(user_id).await?;
            Ok(match policy.reserve(state.as_ref(), now) {
                refused @ Attempt::Refused { .. } => refused,
                Attempt::Allowed(_) => Attempt::Refused {
                    retry_after_secs: 1,
                },
            })
        })
        .await
    }

    /// After a guess that took its slot in the window started at `window` failed: locks
    /// sign-in if that window is full and not locked yet ([`LockoutPolicy::after_failure`]).
    /// One conditional UPDATE, so of several failures judged at once exactly one sets the lock
    /// and gets it back here; the others get `None`.
    pub async fn lock_after_failure(
        &self,
        user_id: Uuid,
        policy: &LockoutPolicy,
        window: i64,
        now: i64,
    ) -> Result<Option<LockoutState>, StoreError> {
        self.retrying("lock_after_failure", move || async move {
            let mut update = login_lockout::Entity::update_many()
                .col_expr(
                    Column::LockedUntil,
                    Expr::value(now.saturating_add(policy.lock_secs)),
                )
                .filter(Column::UserId.eq(user_id))
                .filter(Column::WindowStartedAt.eq(window))
                .filter(Column::LockedUntil.is_null())
                .filter(Column::Failures.gte(policy.max_failures))
                .into_query();
            update.returning_all();
            match self.db.query_one(&update).await? {
                Some(row) => Ok(Some(row_state(&row)?)),
                None => Ok(None),
            }
        })
        .await
    }

    /// Forgets the count of a user after a success ([`LockoutPolicy::forgives`]): a lock set
    /// meanwhile by a failure judged in parallel stays until it ends.
    pub async fn forgive_second_factor_failures(
        &self,
        user_id: Uuid,
        now: i64,
    ) -> Result<(), StoreError> {
        self.retrying("forgive_second_factor_failures", move || async move {
            login_lockout::Entity::delete_many()
                .filter(Column::UserId.eq(user_id))
                .filter(
                    Condition::any()
                        .add(Column::LockedUntil.is_null())
                        .add(Column::LockedUntil.lte(now)),
                )
                .exec(&self.db)
                .await?;
            Ok(())
        })
        .await
    }

    /// Forgets the count and any lock of a user (an operator's reset).
    pub async fn clear_lockout(&self, user_id: Uuid) -> Result<(), StoreError> {
        self.retrying("clear_lockout", move || async move {
            login_lockout::Entity::delete_by_id(user_id)
                .exec(&self.db)
                .await?;
            Ok(())
        })
        .await
    }
}

fn row_state(row: &QueryResult) -> Result<LockoutState, StoreError> {
    Ok(to_state(login_lockout::Model::from_query_result(row, "")?))
}

fn to_state(row: login_lockout::Model) -> LockoutState {
    LockoutState {
        failures: row.failures,
        window_started_at: row.window_started_at,
        locked_until: row.locked_until,
    }
}
