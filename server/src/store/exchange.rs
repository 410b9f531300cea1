//! Single-use exchanges: redeeming an authorization code and rotating a refresh token.
//!
//! Each is one transaction that starts with a conditional UPDATE (`… WHERE consumed_at IS
//! NULL`): the database lets exactly one concurrent request change the row, and only that one
//! issues tokens. A loser that finds the row already used has caught a replay, and the whole
//! grant is revoked (RFC 6749 §4.1.2, RFC 9700 §4.14).
use super::{Store, StoreError};
use crate::oauth::grants::authorization_code::StoredCode;
use crate::oauth::grants::refresh_token::StoredRefresh;
use crate::oauth::resource::{Audience, Target};
use crate::oauth::scope::ScopeSet;
use crate::oauth::token::TokenHash;
use entity::{access_token, authorization_code, grant, refresh_token, user};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseTransaction, EntityTrait, QueryFilter,
    TransactionTrait,
};
use uuid::Uuid;

/// The tokens to store if the exchange succeeds.
#[derive(Debug, Clone)]
pub struct TokenPlan {
    pub access: TokenHash,
    pub refresh: Option<TokenHash>,
    pub issued_at: i64,
    pub access_expires_at: i64,
    pub refresh_expires_at: i64,
}

/// How an exchange ended.
#[derive(Debug)]
pub enum Exchange<E> {
    /// Tokens were stored; `target` is what the access token is for.
    Issued {
        target: Target,
        user_id: Option<Uuid>,
    },
    /// The caller's check refused it.
    Refused(E),
    /// The code or refresh token had already been used: its grant is now revoked.
    Replayed,
    /// Unknown, expired or revoked.
    Invalid,
}

impl Store {
    /// Redeems an authorization code once. `check` sees what the code was bound to and may
    /// refuse; a refused code stays consumed, since it has been shown to a possible attacker.
    pub async fn redeem_code<E>(
        &self,
        hash: &TokenHash,
        now: i64,
        check: impl FnOnce(&StoredCode) -> Result<Target, E>,
        plan: &TokenPlan,
    ) -> Result<Exchange<E>, StoreError> {
        let key = hash.as_bytes().to_vec();
        let txn = self.db.begin().await?;
        let consumed = authorization_code::Entity::update_many()
            .col_expr(authorization_code::Column::ConsumedAt, Expr::value(now))
            .filter(authorization_code::Column::Hash.eq(key.clone()))
            .filter(authorization_code::Column::ConsumedAt.is_null())
            .filter(authorization_code::Column::ExpiresAt.gt(now))
            .exec(&txn)
            .await?
            .rows_affected;
        if consumed == 0 {
            txn.rollback().await?;
            let row = authorization_code::Entity::find_by_id(key)
                .one(&self.db)
                .await?;
            return match row {
                Some(row) if row.consumed_at.is_some() => {
                    self.revoke_grant(&self.db, row.grant_id, now).await?;
                    Ok(Exchange::Replayed)
                }
                _ => Ok(Exchange::Invalid),
            };
        }
        let Some(code) = authorization_code::Entity::find_by_id(key)
            .one(&txn)
            .await?
        else {
            return Ok(Exchange::Invalid);
        };
        let Some(family) = live_grant(&txn, code.grant_id).await? else {
            txn.commit().await?;
            return Ok(Exchange::Invalid);
        };
        let stored = StoredCode {
            client_id: code.client_id.clone(),
            redirect_uri: code.redirect_uri.clone(),
            code_challenge: code.code_challenge.clone(),
            user_disabled: user_disabled(&txn, Some(code.user_id)).await?,
            granted: granted(&family),
        };
        let target = match check(&stored) {
            Ok(target) => target,
            Err(refusal) => {
                txn.commit().await?;
                return Ok(Exchange::Refused(refusal));
            }
        };
        insert_tokens(&txn, &family, &target, plan, None).await?;
        txn.commit().await?;
        Ok(Exchange::Issued {
            target,
            user_id: family.user_id,
        })
    }

    /// Rotates a refresh token once. `check` returns the new access token's scope or refuses;
    /// a refusal leaves the token usable by its rightful client.
    pub async fn rotate_refresh_token<E>(
        &self,
        hash: &TokenHash,
        now: i64,
        check: impl FnOnce(&StoredRefresh) -> Result<Target, E>,
        plan: &TokenPlan,
    ) -> Result<Exchange<E>, StoreError> {
        let key = hash.as_bytes().to_vec();
        let txn = self.db.begin().await?;
        let rotated = refresh_token::Entity::update_many()
            .col_expr(refresh_token::Column::RotatedAt, Expr::value(now))
            .filter(refresh_token::Column::Hash.eq(key.clone()))
            .filter(refresh_token::Column::RotatedAt.is_null())
            .filter(refresh_token::Column::RevokedAt.is_null())
            .filter(refresh_token::Column::ExpiresAt.gt(now))
            .exec(&txn)
            .await?
            .rows_affected;
        if rotated == 0 {
            txn.rollback().await?;
            let row = refresh_token::Entity::find_by_id(key).one(&self.db).await?;
            return match row {
                Some(row) if row.rotated_at.is_some() => {
                    self.revoke_grant(&self.db, row.grant_id, now).await?;
                    Ok(Exchange::Replayed)
                }
                _ => Ok(Exchange::Invalid),
            };
        }
        let Some(token) = refresh_token::Entity::find_by_id(key).one(&txn).await? else {
            return Ok(Exchange::Invalid);
        };
        let Some(family) = live_grant(&txn, token.grant_id).await? else {
            txn.rollback().await?;
            return Ok(Exchange::Invalid);
        };
        let stored = StoredRefresh {
            client_id: token.client_id.clone(),
            granted: granted(&family),
            user_disabled: user_disabled(&txn, family.user_id).await?,
        };
        let target = match check(&stored) {
            Ok(target) => target,
            Err(refusal) => {
                txn.rollback().await?;
                return Ok(Exchange::Refused(refusal));
            }
        };
        insert_tokens(&txn, &family, &target, plan, Some(&token.hash)).await?;
        txn.commit().await?;
        Ok(Exchange::Issued {
            target,
            user_id: family.user_id,
        })
    }
}

/// What a grant covers.
fn granted(family: &grant::Model) -> Target {
    Target {
        scope: ScopeSet::from_stored(&family.scope),
        audience: Audience::from_stored(&family.audience),
    }
}

/// The grant, unless it has been revoked.
async fn live_grant(
    txn: &DatabaseTransaction,
    id: Uuid,
) -> Result<Option<grant::Model>, StoreError> {
    Ok(grant::Entity::find_by_id(id)
        .one(txn)
        .await?
        .filter(|g| g.revoked_at.is_none()))
}

/// A missing user counts as disabled.
async fn user_disabled(txn: &DatabaseTransaction, id: Option<Uuid>) -> Result<bool, StoreError> {
    let Some(id) = id else {
        return Ok(false);
    };
    Ok(user::Entity::find_by_id(id)
        .one(txn)
        .await?
        .is_none_or(|u| u.disabled))
}

/// Stores an access token for `access` (and a refresh token carrying the grant's scope, the
/// successor of `parent`) in `family`, and extends the family's expiry to cover them.
async fn insert_tokens<C: ConnectionTrait>(
    db: &C,
    family: &grant::Model,
    access: &Target,
    plan: &TokenPlan,
    parent: Option<&Vec<u8>>,
) -> Result<(), StoreError> {
    access_token::Entity::insert(access_token::ActiveModel {
        hash: Set(plan.access.as_bytes().to_vec()),
        grant_id: Set(family.id),
        client_id: Set(family.client_id.clone()),
        scope: Set(access.scope.to_string()),
        issued_at: Set(plan.issued_at),
        expires_at: Set(plan.access_expires_at),
        revoked_at: Set(None),
        audience: Set(access.audience.to_string()),
        act: Set(None),
    })
    .exec_without_returning(db)
    .await?;
    let mut expires_at = plan.access_expires_at;
    if let Some(refresh) = &plan.refresh {
        refresh_token::Entity::insert(refresh_token::ActiveModel {
            hash: Set(refresh.as_bytes().to_vec()),
            grant_id: Set(family.id),
            client_id: Set(family.client_id.clone()),
            scope: Set(family.scope.clone()),
            issued_at: Set(plan.issued_at),
            expires_at: Set(plan.refresh_expires_at),
            rotated_at: Set(None),
            revoked_at: Set(None),
            parent_hash: Set(parent.cloned()),
            successor_used_at: Set(None),
        })
        .exec_without_returning(db)
        .await?;
        expires_at = expires_at.max(plan.refresh_expires_at);
    }
    grant::Entity::update_many()
        .col_expr(grant::Column::ExpiresAt, Expr::value(expires_at))
        .filter(grant::Column::Id.eq(family.id))
        .filter(grant::Column::ExpiresAt.lt(expires_at))
        .exec(db)
        .await?;
    Ok(())
}
