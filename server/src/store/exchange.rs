//! Single-use exchanges: redeeming an authorization code and rotating a refresh token.
//!
//! Each is one transaction that starts with a conditional UPDATE (`… WHERE consumed_at IS
//! NULL`): the database lets exactly one concurrent request change the row, and only that one
//! issues tokens. A loser that finds the row already used has caught a replay, and the whole
//! grant is revoked (RFC 6749 §4.1.2, RFC 9700 §4.14).
//!
//! A refresh token has one exception, its retry window, so that a retried request or a second
//! tab does not log the user out. A used refresh token P presented again by its client within
//! `tokens.refresh_reuse_grace_secs` of its rotation, while no token issued from P has been
//! used (P's `successor_used_at` is NULL) and the grant is live, gets a fresh *sibling* pair:
//! a new access token and a new refresh token whose parent is P, in the same grant, after the
//! same checks as a first use. Concurrent presentations inside the window all succeed.
//!
//! The first use of any child of P sets P's `successor_used_at` and retires the other
//! children still unused, as if they had been used at that moment: first use among siblings
//! wins. A retired sibling presented later is then itself a retry (inside its own window) or
//! reuse (after it). This keeps reuse detection for a stolen sibling: once the rightful client
//! has moved on, the thief's copy revokes the grant like any used refresh token would. Outside
//! the window, or once `successor_used_at` is set, presenting P is reuse, as without a window;
//! a window of 0 seconds closes it.
use super::{Store, StoreError};
use crate::oauth::grants::authorization_code::StoredCode;
use crate::oauth::grants::refresh_token::StoredRefresh;
use crate::oauth::oidc::Authentication;
use crate::oauth::resource::{Audience, Target};
use crate::oauth::scope::ScopeSet;
use crate::oauth::token::TokenHash;
use entity::{access_token, authorization_code, grant, refresh_token, user};
use sea_orm::sea_query::{Expr, Query, SelectStatement};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection, DatabaseTransaction,
    EntityTrait, QueryFilter, TransactionTrait,
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
        /// The sign-in behind the grant, for an ID token.
        authentication: Authentication,
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
    ///
    /// A race lost under SERIALIZABLE runs the whole redemption again ([`Store::retrying`]),
    /// so `check` may be called more than once.
    pub async fn redeem_code<E>(
        &self,
        hash: &TokenHash,
        now: i64,
        check: impl Fn(&StoredCode) -> Result<Target, E>,
        plan: &TokenPlan,
    ) -> Result<Exchange<E>, StoreError> {
        self.retrying("redeem_code", || {
            self.redeem_code_once(hash, now, &check, plan)
        })
        .await
    }

    async fn redeem_code_once<E>(
        &self,
        hash: &TokenHash,
        now: i64,
        check: &impl Fn(&StoredCode) -> Result<Target, E>,
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
                    self.revoke_grant(row.grant_id, now).await?;
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
            authentication: authentication(&family),
        })
    }

    /// Rotates a refresh token once or, inside its retry window, issues a sibling of its
    /// successor (see the module docs). `check` returns the new access token's target or
    /// refuses; a refusal leaves every row as it was, so the token stays usable by its
    /// rightful client. That holds inside the window too: another client presenting a used
    /// token there is refused by `check` and revokes nothing, while after the window the same
    /// presentation is reuse. `grace_secs` is `tokens.refresh_reuse_grace_secs`; 0 closes the
    /// window. Like [`Store::redeem_code`], it runs again after a lost race.
    pub async fn rotate_refresh_token<E>(
        &self,
        hash: &TokenHash,
        now: i64,
        grace_secs: i64,
        check: impl Fn(&StoredRefresh) -> Result<Target, E>,
        plan: &TokenPlan,
    ) -> Result<Exchange<E>, StoreError> {
        self.retrying("rotate_refresh_token", || {
            self.rotate_refresh_token_once(hash, now, grace_secs, &check, plan)
        })
        .await
    }

    async fn rotate_refresh_token_once<E>(
        &self,
        hash: &TokenHash,
        now: i64,
        grace_secs: i64,
        check: &impl Fn(&StoredRefresh) -> Result<Target, E>,
        plan: &TokenPlan,
    ) -> Result<Exchange<E>, StoreError> {
        let key = hash.as_bytes().to_vec();
        let txn = match rotate(&self.db, &key, now).await? {
            Some(txn) => txn,
            None => match retry_within_window(&self.db, &key, now, grace_secs).await? {
                Some(txn) => txn,
                None => return self.refuse_used_refresh_token(key, now).await,
            },
        };
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
            authentication: authentication(&family),
        })
    }

    /// A refresh token that could be neither rotated nor retried: a used one is reuse, and
    /// revokes its grant; anything else (unknown, expired, revoked) is merely invalid.
    async fn refuse_used_refresh_token<E>(
        &self,
        key: Vec<u8>,
        now: i64,
    ) -> Result<Exchange<E>, StoreError> {
        let row = refresh_token::Entity::find_by_id(key).one(&self.db).await?;
        match row {
            Some(row) if row.rotated_at.is_some() => {
                self.revoke_grant(row.grant_id, now).await?;
                Ok(Exchange::Replayed)
            }
            _ => Ok(Exchange::Invalid),
        }
    }
}

/// Starts the transaction that uses the refresh token `key` for the first time, or returns
/// `None` when it is not there to use (already rotated or retired, revoked, expired, unknown).
///
/// Its first statement marks the parent's `successor_used_at`, which locks the parent's row
/// before the token's own: every writer of a family takes the parent first, so two siblings
/// used at once queue on their parent instead of each holding itself while retiring the
/// other (a deadlock on Postgres). The same lock is what a retry of the parent waits on.
async fn rotate(
    db: &DatabaseConnection,
    key: &[u8],
    now: i64,
) -> Result<Option<DatabaseTransaction>, StoreError> {
    let txn = db.begin().await?;
    refresh_token::Entity::update_many()
        .col_expr(refresh_token::Column::SuccessorUsedAt, Expr::value(now))
        .filter(refresh_token::Column::Hash.in_subquery(parent_of(key)))
        .filter(refresh_token::Column::SuccessorUsedAt.is_null())
        .exec(&txn)
        .await?;
    let rotated = refresh_token::Entity::update_many()
        .col_expr(refresh_token::Column::RotatedAt, Expr::value(now))
        .filter(refresh_token::Column::Hash.eq(key.to_vec()))
        .filter(refresh_token::Column::RotatedAt.is_null())
        .filter(refresh_token::Column::RevokedAt.is_null())
        .filter(refresh_token::Column::ExpiresAt.gt(now))
        .exec(&txn)
        .await?
        .rows_affected;
    if rotated == 0 {
        txn.rollback().await?;
        return Ok(None);
    }
    // First use among siblings wins: the others are retired as if used now, so each keeps
    // only its own retry window, and a stolen one presented later revokes the grant.
    refresh_token::Entity::update_many()
        .col_expr(refresh_token::Column::RotatedAt, Expr::value(now))
        .filter(refresh_token::Column::ParentHash.in_subquery(parent_of(key)))
        .filter(refresh_token::Column::RotatedAt.is_null())
        .exec(&txn)
        .await?;
    Ok(Some(txn))
}

/// Starts the transaction that issues a sibling pair for the used refresh token `key`, or
/// returns `None` when the window is closed for it: `grace_secs` after its rotation have
/// passed (in whole seconds), something issued from it has been used, or it is revoked or
/// expired.
///
/// The decision is the row count of one conditional UPDATE of the token's own row, which
/// changes nothing but locks the row until commit. A child's rotation sets that same row's
/// `successor_used_at` in its first statement (see [`rotate`]), so the two serialize on it:
/// on Postgres the later one waits for the row lock and then re-evaluates its WHERE clause
/// on the committed row (READ COMMITTED), and SQLite lets one writer in at a time, each of
/// these transactions writing in its first statement. If the child's rotation commits first,
/// this UPDATE matches nothing and the presentation is reuse; if the retry commits first, the
/// child's rotation, whose sibling retirement runs after it got the lock, sees the new
/// sibling and retires it. Concurrent retries queue on the row and all pass. (A rotation
/// that finds `successor_used_at` already set locks nothing, and needs not: once it is set,
/// every child of the row has been used or retired, and no retry can add one.)
async fn retry_within_window(
    db: &DatabaseConnection,
    key: &[u8],
    now: i64,
    grace_secs: i64,
) -> Result<Option<DatabaseTransaction>, StoreError> {
    if grace_secs <= 0 {
        return Ok(None);
    }
    let txn = db.begin().await?;
    let inside = refresh_token::Entity::update_many()
        .col_expr(
            refresh_token::Column::RotatedAt,
            Expr::col(refresh_token::Column::RotatedAt),
        )
        .filter(refresh_token::Column::Hash.eq(key.to_vec()))
        .filter(refresh_token::Column::RotatedAt.gte(now - grace_secs))
        .filter(refresh_token::Column::SuccessorUsedAt.is_null())
        .filter(refresh_token::Column::RevokedAt.is_null())
        .filter(refresh_token::Column::ExpiresAt.gt(now))
        .exec(&txn)
        .await?
        .rows_affected;
    if inside == 0 {
        txn.rollback().await?;
        return Ok(None);
    }
    Ok(Some(txn))
}

/// The parent of the refresh token `key` (none for the first of a grant). A parent never
/// changes, so reading it inside a statement needs no lock.
fn parent_of(key: &[u8]) -> SelectStatement {
    Query::select()
        .column(refresh_token::Column::ParentHash)
        .from(refresh_token::Entity)
        .and_where(refresh_token::Column::Hash.eq(key.to_vec()))
        .to_owned()
}

/// What the grant's ID tokens say about its sign-in.
fn authentication(family: &grant::Model) -> Authentication {
    Authentication {
        auth_time: family.auth_time,
        amr: family
            .amr
            .as_deref()
            .unwrap_or("")
            .split(' ')
            .filter(|m| !m.is_empty())
            .map(str::to_owned)
            .collect(),
        acr: family.acr.clone(),
        sid: family.sid.clone(),
        nonce: family.nonce.clone(),
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
