//! Second factors, one-time codes and recovery codes.
//!
//! Every single-use rule is one conditional UPDATE whose affected-row count decides: a TOTP
//! step is accepted only if it is later than the last one used, a one-time code is consumed
//! only once and counts its attempts, a recovery code is marked used only once.
use super::{Store, StoreError};
use crate::auth::factor::FactorKind;
use entity::{one_time_code, recovery_code, user_factor};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, EntityTrait, FromQueryResult,
    PaginatorTrait, QueryFilter, QueryOrder, QueryTrait, SqlErr, TransactionTrait,
};
use subtle::ConstantTimeEq;
use uuid::Uuid;

/// A factor as the rest of Umbra sees it. `Debug` leaves the ciphertext out.
#[derive(Clone, PartialEq, Eq)]
pub struct Factor {
    pub id: Uuid,
    pub user_id: Uuid,
    pub kind: FactorKind,
    pub secret_ciphertext: Option<Vec<u8>>,
    pub destination: Option<String>,
    pub created_at: i64,
    pub confirmed_at: Option<i64>,
    pub last_used_step: Option<i64>,
}

impl Factor {
    pub fn confirmed(&self) -> bool {
        self.confirmed_at.is_some()
    }
}

impl std::fmt::Debug for Factor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Factor")
            .field("id", &self.id)
            .field("kind", &self.kind)
            .field("confirmed_at", &self.confirmed_at)
            .finish_non_exhaustive()
    }
}

/// A factor about to be enrolled (unconfirmed).
pub struct NewFactor {
    pub user_id: Uuid,
    pub kind: FactorKind,
    pub secret_ciphertext: Option<Vec<u8>>,
    pub destination: Option<String>,
}

/// What storing a freshly sent one-time code did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeStored {
    Stored,
    /// The previous code was sent less than the resend interval ago.
    Throttled {
        retry_after_secs: i64,
    },
}

/// The verdict on a presented one-time code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeCheck {
    Accepted,
    Wrong,
    /// No live code: none sent, expired, used, or out of attempts.
    Dead,
}

impl Store {
    /// All factors of a user, confirmed or not, in a stable order.
    pub async fn factors(&self, user_id: Uuid) -> Result<Vec<Factor>, StoreError> {
        user_factor::Entity::find()
            .filter(user_factor::Column::UserId.eq(user_id))
            .order_by_asc(user_factor::Column::CreatedAt)
            .all(&self.db)
            .await?
            .into_iter()
            .map(to_factor)
            .collect()
    }

    /// The confirmed factors of a user: the ones sign-in asks for.
    pub async fn confirmed_factors(&self, user_id: Uuid) -> Result<Vec<Factor>, StoreError> {
        Ok(self
            .factors(user_id)
            .await?
            .into_iter()
            .filter(Factor::confirmed)
            .collect())
    }

    pub async fn factor(
        &self,
        user_id: Uuid,
        kind: FactorKind,
    ) -> Result<Option<Factor>, StoreError> {
        user_factor::Entity::find()
            .filter(user_factor::Column::UserId.eq(user_id))
            .filter(user_factor::Column::Kind.eq(kind.as_str()))
            .one(&self.db)
            .await?
            .map(to_factor)
            .transpose()
    }

    /// Starts enrolling a factor, replacing an unconfirmed one of the same kind. `Conflict` if
    /// a confirmed factor of that kind exists (remove it first).
    pub async fn start_factor(&self, new: NewFactor, now: i64) -> Result<Factor, StoreError> {
        let new = &new;
        self.retrying("start_factor", move || async move {
            let id = Uuid::new_v4();
            let txn = self.db.begin().await?;
            user_factor::Entity::delete_many()
                .filter(user_factor::Column::UserId.eq(new.user_id))
                .filter(user_factor::Column::Kind.eq(new.kind.as_str()))
                .filter(user_factor::Column::ConfirmedAt.is_null())
                .exec(&txn)
                .await?;
            let row = user_factor::ActiveModel {
                id: Set(id),
                user_id: Set(new.user_id),
                kind: Set(new.kind.as_str().to_owned()),
                secret_ciphertext: Set(new.secret_ciphertext.clone()),
                destination: Set(new.destination.clone()),
                created_at: Set(now),
                confirmed_at: Set(None),
                last_used_step: Set(None),
            };
            match user_factor::Entity::insert(row)
                .exec_without_returning(&txn)
                .await
            {
                Ok(_) => {}
                Err(err) if matches!(err.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => {
                    txn.rollback().await?;
                    return Err(StoreError::Conflict(format!(
                        "a {} factor is already enabled",
                        new.kind.as_str()
                    )));
                }
                Err(err) => return Err(err.into()),
            }
            txn.commit().await?;
            Ok(Factor {
                id,
                user_id: new.user_id,
                kind: new.kind,
                secret_ciphertext: new.secret_ciphertext.clone(),
                destination: new.destination.clone(),
                created_at: now,
                confirmed_at: None,
                last_used_step: None,
            })
        })
        .await
    }

    /// Confirms an enrolling factor once; a TOTP factor records the step its proof used.
    pub async fn confirm_factor(
        &self,
        factor_id: Uuid,
        step: Option<i64>,
        now: i64,
    ) -> Result<bool, StoreError> {
        self.retrying("confirm_factor", move || async move {
            let result = user_factor::Entity::update_many()
                .col_expr(user_factor::Column::ConfirmedAt, Expr::value(now))
                .col_expr(user_factor::Column::LastUsedStep, Expr::value(step))
                .filter(user_factor::Column::Id.eq(factor_id))
                .filter(user_factor::Column::ConfirmedAt.is_null())
                .exec(&self.db)
                .await?;
            Ok(result.rows_affected == 1)
        })
        .await
    }

    /// Accepts TOTP step `step` for a confirmed factor if it is later than the last one used;
    /// of two concurrent requests with the same code, exactly one gets `true`.
    pub async fn use_totp_step(&self, factor_id: Uuid, step: i64) -> Result<bool, StoreError> {
        self.retrying("use_totp_step", move || async move {
            let result = user_factor::Entity::update_many()
                .col_expr(user_factor::Column::LastUsedStep, Expr::value(step))
                .filter(user_factor::Column::Id.eq(factor_id))
                .filter(user_factor::Column::ConfirmedAt.is_not_null())
                .filter(
                    Condition::any()
                        .add(user_factor::Column::LastUsedStep.is_null())
                        .add(user_factor::Column::LastUsedStep.lt(step)),
                )
                .exec(&self.db)
                .await?;
            Ok(result.rows_affected == 1)
        })
        .await
    }

    /// Removes a user's factor of `kind`. `false` if there was none.
    pub async fn remove_factor(&self, user_id: Uuid, kind: FactorKind) -> Result<bool, StoreError> {
        self.retrying("remove_factor", move || async move {
            let result = user_factor::Entity::delete_many()
                .filter(user_factor::Column::UserId.eq(user_id))
                .filter(user_factor::Column::Kind.eq(kind.as_str()))
                .exec(&self.db)
                .await?;
            Ok(result.rows_affected > 0)
        })
        .await
    }

    /// Removes every factor and recovery code of a user (an operator's reset); returns how
    /// many factors there were.
    pub async fn reset_second_factor(&self, user_id: Uuid) -> Result<u64, StoreError> {
        self.retrying("reset_second_factor", move || async move {
            let txn = self.db.begin().await?;
            let removed = user_factor::Entity::delete_many()
                .filter(user_factor::Column::UserId.eq(user_id))
                .exec(&txn)
                .await?
                .rows_affected;
            recovery_code::Entity::delete_many()
                .filter(recovery_code::Column::UserId.eq(user_id))
                .exec(&txn)
                .await?;
            txn.commit().await?;
            Ok(removed)
        })
        .await
    }

    /// Stores the hash of a code just generated for `factor_id`, replacing the previous one,
    /// unless the previous one is unused and was sent less than `resend_interval` seconds ago.
    pub async fn store_one_time_code(
        &self,
        factor_id: Uuid,
        hash: [u8; 32],
        now: i64,
        ttl: i64,
        resend_interval: i64,
    ) -> Result<CodeStored, StoreError> {
        self.retrying("store_one_time_code", move || async move {
            let replaced = one_time_code::Entity::update_many()
                .col_expr(one_time_code::Column::Hash, Expr::value(hash.to_vec()))
                .col_expr(one_time_code::Column::SentAt, Expr::value(now))
                .col_expr(one_time_code::Column::ExpiresAt, Expr::value(now + ttl))
                .col_expr(one_time_code::Column::Attempts, Expr::value(0))
                .col_expr(
                    one_time_code::Column::ConsumedAt,
                    Expr::value(Option::<i64>::None),
                )
                .filter(one_time_code::Column::FactorId.eq(factor_id))
                // A used code frees the way at once: the throttle is against resending codes
                // nobody typed, not against the next sign-in.
                .filter(
                    Condition::any()
                        .add(one_time_code::Column::SentAt.lte(now - resend_interval))
                        .add(one_time_code::Column::ConsumedAt.is_not_null()),
                )
                .exec(&self.db)
                .await?;
            if replaced.rows_affected == 1 {
                return Ok(CodeStored::Stored);
            }
            let row = one_time_code::ActiveModel {
                factor_id: Set(factor_id),
                hash: Set(hash.to_vec()),
                sent_at: Set(now),
                expires_at: Set(now + ttl),
                attempts: Set(0),
                consumed_at: Set(None),
            };
            match one_time_code::Entity::insert(row)
                .exec_without_returning(&self.db)
                .await
            {
                Ok(_) => Ok(CodeStored::Stored),
                Err(err) if matches!(err.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => {
                    let sent_at = one_time_code::Entity::find_by_id(factor_id)
                        .one(&self.db)
                        .await?
                        .map_or(now, |row| row.sent_at);
                    Ok(CodeStored::Throttled {
                        retry_after_secs: Ord::max(sent_at + resend_interval - now, 1),
                    })
                }
                Err(err) => Err(err.into()),
            }
        })
        .await
    }

    /// Checks a presented code against the live one of `factor_id`. Every check counts as an
    /// attempt first, and reads the code it counted against in the same statement
    /// (`UPDATE … RETURNING`): parallel guesses cannot exceed `max_attempts`, and a code resent
    /// meanwhile cannot be compared on an attempt counted against the one it replaced. A match
    /// consumes the code, once.
    pub async fn check_one_time_code(
        &self,
        factor_id: Uuid,
        presented_hash: [u8; 32],
        now: i64,
        max_attempts: i32,
    ) -> Result<CodeCheck, StoreError> {
        let mut count = one_time_code::Entity::update_many()
            .col_expr(
                one_time_code::Column::Attempts,
                Expr::col(one_time_code::Column::Attempts).add(1),
            )
            .filter(one_time_code::Column::FactorId.eq(factor_id))
            .filter(one_time_code::Column::ConsumedAt.is_null())
            .filter(one_time_code::Column::ExpiresAt.gt(now))
            .filter(one_time_code::Column::Attempts.lt(max_attempts))
            .into_query();
        count.returning_all();
        // Two statements, each retried on its own: running the count again after the
        // comparison would count one guess twice.
        let count = &count;
        let counted = self
            .retrying("count_one_time_code_attempt", move || async move {
                Ok(self.db.query_one(count).await?)
            })
            .await?;
        let Some(counted) = counted else {
            return Ok(CodeCheck::Dead);
        };
        let row = one_time_code::Model::from_query_result(&counted, "")?;
        if !bool::from(row.hash.as_slice().ct_eq(&presented_hash)) {
            return Ok(CodeCheck::Wrong);
        }
        // `sent_at` and the hash pin the very code that was compared: a resend in between
        // makes this miss.
        let row = &row;
        let consumed = self
            .retrying("consume_one_time_code", move || async move {
                Ok(one_time_code::Entity::update_many()
                    .col_expr(one_time_code::Column::ConsumedAt, Expr::value(now))
                    .filter(one_time_code::Column::FactorId.eq(factor_id))
                    .filter(one_time_code::Column::SentAt.eq(row.sent_at))
                    .filter(one_time_code::Column::Hash.eq(row.hash.clone()))
                    .filter(one_time_code::Column::ConsumedAt.is_null())
                    .exec(&self.db)
                    .await?)
            })
            .await?;
        Ok(if consumed.rows_affected == 1 {
            CodeCheck::Accepted
        } else {
            CodeCheck::Dead
        })
    }

    /// Replaces a user's recovery codes with new ones (hashes).
    pub async fn replace_recovery_codes(
        &self,
        user_id: Uuid,
        hashes: &[[u8; 32]],
        now: i64,
    ) -> Result<(), StoreError> {
        self.retrying("replace_recovery_codes", move || async move {
            let txn = self.db.begin().await?;
            recovery_code::Entity::delete_many()
                .filter(recovery_code::Column::UserId.eq(user_id))
                .exec(&txn)
                .await?;
            let rows = hashes.iter().map(|hash| recovery_code::ActiveModel {
                hash: Set(hash.to_vec()),
                user_id: Set(user_id),
                created_at: Set(now),
                used_at: Set(None),
            });
            recovery_code::Entity::insert_many(rows)
                .exec_without_returning(&txn)
                .await?;
            txn.commit().await?;
            Ok(())
        })
        .await
    }

    /// Marks a recovery code of `user_id` used; `true` exactly once per code. Found by its
    /// hash, not compared in constant time: the timing of a lookup by the SHA-256 of a 60-bit
    /// random code tells an attacker nothing they can use.
    pub async fn use_recovery_code(
        &self,
        user_id: Uuid,
        hash: [u8; 32],
        now: i64,
    ) -> Result<bool, StoreError> {
        self.retrying("use_recovery_code", move || async move {
            let result = recovery_code::Entity::update_many()
                .col_expr(recovery_code::Column::UsedAt, Expr::value(now))
                .filter(recovery_code::Column::Hash.eq(hash.to_vec()))
                .filter(recovery_code::Column::UserId.eq(user_id))
                .filter(recovery_code::Column::UsedAt.is_null())
                .exec(&self.db)
                .await?;
            Ok(result.rows_affected == 1)
        })
        .await
    }

    /// How many unused recovery codes a user has.
    pub async fn recovery_codes_left(&self, user_id: Uuid) -> Result<u64, StoreError> {
        Ok(recovery_code::Entity::find()
            .filter(recovery_code::Column::UserId.eq(user_id))
            .filter(recovery_code::Column::UsedAt.is_null())
            .count(&self.db)
            .await?)
    }
}

fn to_factor(row: user_factor::Model) -> Result<Factor, StoreError> {
    let kind = FactorKind::parse(&row.kind)
        .ok_or_else(|| StoreError::Corrupt(format!("unknown factor kind {:?}", row.kind)))?;
    Ok(Factor {
        id: row.id,
        user_id: row.user_id,
        kind,
        secret_ciphertext: row.secret_ciphertext,
        destination: row.destination,
        created_at: row.created_at,
        confirmed_at: row.confirmed_at,
        last_used_step: row.last_used_step,
    })
}
