//! Second-factor failures per user and the lock they cause (the rule is
//! [`crate::auth::lockout`]). Stored, not kept in memory, so that every instance sees a lock.
use super::{Store, StoreError};
use crate::auth::lockout::{LockoutPolicy, LockoutState};
use entity::login_lockout;
use sea_orm::{ActiveValue::Set, EntityTrait, TransactionTrait};
use uuid::Uuid;

impl Store {
    pub async fn lockout_state(&self, user_id: Uuid) -> Result<Option<LockoutState>, StoreError> {
        Ok(login_lockout::Entity::find_by_id(user_id)
            .one(&self.db)
            .await?
            .map(to_state))
    }

    /// Counts one failure and returns the new state (locked when it reached the limit).
    pub async fn record_second_factor_failure(
        &self,
        user_id: Uuid,
        policy: &LockoutPolicy,
        now: i64,
    ) -> Result<LockoutState, StoreError> {
        let txn = self.db.begin().await?;
        let current = login_lockout::Entity::find_by_id(user_id)
            .one(&txn)
            .await?
            .map(to_state);
        let next = policy.after_failure(current.as_ref(), now);
        let row = login_lockout::ActiveModel {
            user_id: Set(user_id),
            failures: Set(next.failures),
            window_started_at: Set(next.window_started_at),
            locked_until: Set(next.locked_until),
        };
        if current.is_some() {
            login_lockout::Entity::update(row).exec(&txn).await?;
        } else {
            login_lockout::Entity::insert(row)
                .exec_without_returning(&txn)
                .await?;
        }
        txn.commit().await?;
        Ok(next)
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
