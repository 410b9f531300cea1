//! Sign-in attempts per account and per client address, shared by every instance. The rule is
//! [`crate::auth::limiter::Limit`]; each step is one SQL statement here, decided by the
//! database on the row as it is at that instant, so that guesses sent in parallel to any
//! number of instances cannot be verified more often than the rule allows:
//!
//! - [`Store::take_sign_in_slot`] takes a slot before a password is verified (one upsert
//!   whose `WHERE` refuses it when the window is full; no row back means refused);
//! - [`Store::settle_sign_in_slot`] turns the slot into a failure or hands it back, in the
//!   window it was taken in only.
//!
//! Both are single statements, so they need no transaction. Under SERIALIZABLE or REPEATABLE
//! READ, Postgres still answers a write of a row that a concurrent one changed since the
//! statement began with a serialization failure (SQLSTATE 40001); each runs under
//! [`Store::retrying`], which is safe as it is: the failed statement changed nothing.
use super::{Store, StoreError};
use crate::auth::limiter::{Count, Limit};
use entity::sign_in_limit::{self, Column};
use sea_orm::sea_query::{Expr, ExprTrait, InsertStatement, OnConflict};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, IdenStatic, QueryFilter,
    QueryTrait,
};

/// Whether a sign-in attempt may verify its password under one key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignInSlot {
    /// It took a slot of the window that ends at `window_ends_at`.
    Taken { window_ends_at: i64 },
    /// The window is full ([`Limit::wait`] says for how long).
    Refused { retry_after_secs: u64 },
}

impl Store {
    /// The count stored under `key_hash`, if any.
    pub async fn sign_in_count(&self, key_hash: &[u8; 32]) -> Result<Option<Count>, StoreError> {
        Ok(sign_in_limit::Entity::find_by_id(key_hash.to_vec())
            .one(&self.db)
            .await?
            .map(to_count))
    }

    /// Takes a slot under `key_hash` at `now`, or refuses it.
    ///
    /// One `INSERT … ON CONFLICT DO UPDATE … WHERE … RETURNING`: the row is created with the
    /// first slot, or updated when [`Limit::starts_fresh`] or [`Limit::has_room`] holds on the
    /// stored row, and returned only then. The database serialises writers on the row, so
    /// every attempt sees the slots taken by all those before it, on whichever instance.
    pub async fn take_sign_in_slot(
        &self,
        key_hash: &[u8; 32],
        limit: &Limit,
        now: i64,
    ) -> Result<SignInSlot, StoreError> {
        let upsert = slot_upsert(key_hash, limit, now);
        let taken = self
            .retrying("take_sign_in_slot", || async {
                match self.db.query_one(&upsert).await? {
                    Some(row) => Ok(Some(row.try_get::<i64>("", Column::WindowEndsAt.as_str())?)),
                    None => Ok(None),
                }
            })
            .await?;
        if let Some(window_ends_at) = taken {
            return Ok(SignInSlot::Taken { window_ends_at });
        }
        // Refused: read the row only to say for how long.
        let count = self.sign_in_count(key_hash).await?;
        Ok(SignInSlot::Refused {
            retry_after_secs: limit.wait(count.as_ref(), now),
        })
    }

    /// Ends a slot taken in the window that ends at `window_ends_at`: a failure counts in that
    /// window, anything else hands the slot back. A slot of a window that is over (or whose
    /// row cleanup deleted) changes nothing: its count started afresh without it.
    pub async fn settle_sign_in_slot(
        &self,
        key_hash: &[u8; 32],
        window_ends_at: i64,
        failed: bool,
    ) -> Result<(), StoreError> {
        self.retrying("settle_sign_in_slot", move || async move {
            let mut update = sign_in_limit::Entity::update_many()
                .col_expr(Column::InFlight, Expr::col(Column::InFlight).sub(1));
            if failed {
                update = update.col_expr(Column::Failures, Expr::col(Column::Failures).add(1));
            }
            update
                .filter(Column::KeyHash.eq(key_hash.to_vec()))
                .filter(Column::WindowEndsAt.eq(window_ends_at))
                .filter(Column::InFlight.gt(0))
                .exec(&self.db)
                .await?;
            Ok(())
        })
        .await
    }
}

/// The upsert of [`Store::take_sign_in_slot`], returning the window of the slot it took.
fn slot_upsert(key_hash: &[u8; 32], limit: &Limit, now: i64) -> InsertStatement {
    let current = |column: Column| Expr::col((sign_in_limit::Entity, column));
    // `Limit::starts_fresh` and `Limit::has_room`, on the stored row.
    let fresh = current(Column::WindowEndsAt)
        .lte(now)
        .or(current(Column::InFlight)
            .lte(0)
            .and(current(Column::Failures).lte(0)));
    let room = current(Column::InFlight)
        .add(current(Column::Failures))
        .lt(limit.max);
    let window_ends_at = now.saturating_add(limit.window_secs);
    let first = sign_in_limit::ActiveModel {
        key_hash: Set(key_hash.to_vec()),
        in_flight: Set(1),
        failures: Set(0),
        window_ends_at: Set(window_ends_at),
    };
    let mut upsert = sign_in_limit::Entity::insert(first)
        .on_conflict(
            OnConflict::column(Column::KeyHash)
                .values([
                    (
                        Column::InFlight,
                        Expr::case(fresh.clone(), 1)
                            .finally(current(Column::InFlight).add(1))
                            .into(),
                    ),
                    (
                        Column::Failures,
                        Expr::case(fresh.clone(), 0)
                            .finally(current(Column::Failures))
                            .into(),
                    ),
                    (
                        Column::WindowEndsAt,
                        Expr::case(fresh.clone(), window_ends_at)
                            .finally(current(Column::WindowEndsAt))
                            .into(),
                    ),
                ])
                .action_and_where(fresh.or(room))
                .to_owned(),
        )
        .into_query();
    upsert.returning_col(Column::WindowEndsAt);
    upsert
}

fn to_count(row: sign_in_limit::Model) -> Count {
    Count {
        in_flight: row.in_flight,
        failures: row.failures,
        window_ends_at: row.window_ends_at,
    }
}
