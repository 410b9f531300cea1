//! Single use of client assertions (`private_key_jwt`, RFC 7523 §3 item 7; OpenID Connect
//! Core §9: "These tokens MUST only be used once").
//!
//! Every instance shares the record, so an assertion replayed against another instance is
//! caught too. A use is one INSERT keyed by the hash of the client id and the `jti`: of any
//! number of concurrent presentations, the database lets exactly one insert the row, and the
//! others find its primary key taken. The row lives until the assertion could no longer be
//! accepted (its `exp` plus the clock skew); cleanup deletes it after that.
use super::{Store, StoreError};
use entity::used_client_assertion;
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, SqlErr};
use sha2::{Digest, Sha256};

/// What recording a `jti` found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AssertionUse {
    /// The first use: the assertion is accepted.
    First,
    /// The `jti` was used before and is still recorded: a replay.
    Replayed,
}

impl Store {
    /// Records `client_id`'s use of `jti` until `expires_at`.
    pub async fn use_client_assertion(
        &self,
        client_id: &str,
        jti: &str,
        expires_at: i64,
        now: i64,
    ) -> Result<AssertionUse, StoreError> {
        self.retrying("use_client_assertion", move || async move {
            let hash = jti_hash(client_id, jti);
            let row = used_client_assertion::ActiveModel {
                jti_hash: Set(hash.clone()),
                client_id: Set(client_id.to_owned()),
                expires_at: Set(expires_at),
            };
            match used_client_assertion::Entity::insert(row)
                .exec_without_returning(&self.db)
                .await
            {
                Ok(_) => return Ok(AssertionUse::First),
                Err(err) if matches!(err.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => {
                }
                Err(err) => return Err(err.into()),
            }
            // A `jti` may be used again once its earlier assertion expired (RFC 7523 §3: used
            // values are kept "for the length of time for which the JWT would be considered
            // valid"), and cleanup may not have run yet. Taking over the expired row is one
            // conditional UPDATE, so concurrent presentations still have a single winner.
            let taken_over = used_client_assertion::Entity::update_many()
                .col_expr(
                    used_client_assertion::Column::ExpiresAt,
                    Expr::value(expires_at),
                )
                .filter(used_client_assertion::Column::JtiHash.eq(hash))
                .filter(used_client_assertion::Column::ExpiresAt.lte(now))
                .exec(&self.db)
                .await?;
            Ok(if taken_over.rows_affected == 1 {
                AssertionUse::First
            } else {
                AssertionUse::Replayed
            })
        })
        .await
    }
}

/// SHA-256 of the client id, a NUL byte (which no client id contains) and the `jti`.
fn jti_hash(client_id: &str, jti: &str) -> Vec<u8> {
    let mut hasher = Sha256::new();
    hasher.update(client_id.as_bytes());
    hasher.update([0]);
    hasher.update(jti.as_bytes());
    hasher.finalize().to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_jti_of_two_clients_is_two_records() {
        assert_ne!(jti_hash("a", "j"), jti_hash("b", "j"));
        assert_ne!(jti_hash("ab", "c"), jti_hash("a", "bc"));
        assert_eq!(jti_hash("a", "j").len(), 32);
    }
}
