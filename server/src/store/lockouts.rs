//! Second-factor failures per user and the lock they cause (the rule is
//! [`crate::auth::lockout`]). Stored, not kept in memory, so that every instance sees a lock.
use super::{Store, StoreError};
use crate::auth::lockout::{LockoutPolicy, LockoutState};
use entity::login_lockout;
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter};

/// Lost compare-and-set races tolerated before giving up.
const MAX_RACES: usize = 20;
use uuid::Uuid;

impl Store {
    pub async fn lockout_state(&self, user_id: Uuid) -> Result<Option<LockoutState>, StoreError> {
        Ok(login_lockout::Entity::find_by_id(user_id)
            .one(&self.db)
            .await?
            .map(to_state))
    }

    /// Counts one failure and returns the new state (locked when it reached the limit).
    ///
    /// A compare-and-set on the whole row, retried on a lost race, so that concurrent
    /// failures are all counted without holding a transaction open.
    pub async fn record_second_factor_failure(
        &self,
        user_id: Uuid,
        policy: &LockoutPolicy,
        now: i64,
    ) -> Result<LockoutState, StoreError> {
        for _ in 0..MAX_RACES {
            // (Re)create the row first: a concurrent success may have deleted it meanwhile.
            let blank = login_lockout::ActiveModel {
                user_id: Set(user_id),
                failures: Set(0),
                window_started_at: Set(now),
                locked_until: Set(None),
            };
            login_lockout::Entity::insert(blank)
                .on_conflict(
                    OnConflict::column(login_lockout::Column::UserId)
                        .do_nothing()
                        .to_owned(),
                )
                .exec_without_returning(&self.db)
                .await?;
            let Some(current) = self.lockout_state(user_id).await? else {
                continue;
            };
            let next = policy.after_failure(Some(&current), now);
            let updated = login_lockout::Entity::update_many()
                .col_expr(login_lockout::Column::Failures, Expr::value(next.failures))
                .col_expr(
                    login_lockout::Column::WindowStartedAt,
                    Expr::value(next.window_started_at),
                )
                .col_expr(
                    login_lockout::Column::LockedUntil,
                    Expr::value(next.locked_until),
                )
                .filter(login_lockout::Column::UserId.eq(user_id))
                .filter(login_lockout::Column::Failures.eq(current.failures))
                .filter(login_lockout::Column::WindowStartedAt.eq(current.window_started_at))
                .exec(&self.db)
                .await?;
            if updated.rows_affected == 1 {
                return Ok(next);
            }
        }
        Err(StoreError::Conflict(
            "too many concurrent failures to count".into(),
        ))
    }

    /// Forgets the failures of a user (after a success, or an operator's reset).
    pub async fn clear_lockout(&self, user_id: Uuid) -> Result<(), StoreError> {
        login_lockout::Entity::delete_by_id(user_id)
            .exec(&self.db)
            .await?;
        Ok(())
    }
}

fn to_state(row: login_lockout::Model) -> LockoutState {
    LockoutState {
        failures: row.failures,
        window_started_at: row.window_started_at,
        locked_until: row.locked_until,
    }
}
