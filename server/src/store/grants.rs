//! Grants as operators see them: the live token families of a user or a client, and their
//! revocation.
//!
//! Every path that revokes grants goes through [`revoke_grants_in`]: one conditional UPDATE
//! (`revoked_at IS NULL`) per batch, and a change-log row of kind `grant` per grant in the same
//! transaction, so a revocation is logged if and only if it commits, every instance evicts the
//! grant's tokens from its introspection cache, and the revocation stream tells resource
//! servers which tokens died. The instance that revoked evicts them itself right after the
//! commit ([`Store::changed_here`]), so the very next introspection here answers inactive.
use super::changes::{self, ChangeKind};
use super::{Store, StoreError};
use crate::oauth::resource::Audience;
use entity::grant;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    TransactionTrait,
};
use serde::Serialize;
use uuid::Uuid;

/// Whose grants: a person's (every client they let act for them) or a client's (its own
/// client_credentials grants and those people gave it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GrantOwner {
    User(Uuid),
    Client(String),
}

impl GrantOwner {
    fn condition(&self) -> Condition {
        match self {
            Self::User(id) => Condition::all().add(grant::Column::UserId.eq(*id)),
            Self::Client(id) => Condition::all().add(grant::Column::ClientId.eq(id.as_str())),
        }
    }
}

/// A live grant (not revoked, not expired) as operators see it: never a token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct GrantView {
    #[schema(value_type = String, format = "uuid")]
    pub id: Uuid,
    pub client_id: String,
    /// The person who consented; absent for client_credentials.
    #[schema(value_type = Option<String>, format = "uuid")]
    pub user_id: Option<Uuid>,
    /// `authorization_code` or `client_credentials` (token exchange reuses its subject's).
    pub grant_type: String,
    /// Space-separated scopes granted.
    pub scope: String,
    /// The resources the grant covers (RFC 8707).
    pub audience: Vec<String>,
    /// Unix seconds.
    pub created_at: i64,
    /// When the last token of the family expires, in Unix seconds.
    pub expires_at: i64,
}

/// The most grants one listing returns, whatever the caller asks.
pub const MAX_GRANT_LIST: u64 = 1000;

/// Grants revoked per statement: bounds the `IN (…)` list.
const REVOKE_BATCH: usize = 500;

/// What [`revoke_grants_in`] did.
#[derive(Debug, Default)]
pub(super) struct Revoked {
    /// Grants this call revoked.
    pub count: u64,
    /// Grants to evict once the transaction has committed ([`Store::grants_revoked_here`]): the
    /// revoked ones, and possibly a few a concurrent revoker won in the same batch.
    pub ids: Vec<Uuid>,
}

/// Revokes the live grants matching `condition` inside the caller's transaction `db` and logs
/// a `grant` change for each, last.
pub(super) async fn revoke_grants_in<C: ConnectionTrait>(
    db: &C,
    condition: Condition,
    now: i64,
) -> Result<Revoked, StoreError> {
    let ids: Vec<Uuid> = grant::Entity::find()
        .select_only()
        .column(grant::Column::Id)
        .filter(condition)
        .filter(grant::Column::RevokedAt.is_null())
        .into_tuple()
        .all(db)
        .await?;
    let mut revoked = Revoked::default();
    for batch in ids.chunks(REVOKE_BATCH) {
        // Conditional again: a concurrent revoker may have won some of them meanwhile, and
        // their rows keep the first revocation time.
        let affected = grant::Entity::update_many()
            .col_expr(grant::Column::RevokedAt, Expr::value(now))
            .filter(grant::Column::Id.is_in(batch.iter().copied()))
            .filter(grant::Column::RevokedAt.is_null())
            .exec(db)
            .await?
            .rows_affected;
        if affected > 0 {
            revoked.count += affected;
            revoked.ids.extend_from_slice(batch);
        }
    }
    for id in &revoked.ids {
        changes::record(db, ChangeKind::Grant, &id.to_string()).await?;
    }
    Ok(revoked)
}

impl Store {
    /// The live grants of `owner`, newest first, at most `limit` (and [`MAX_GRANT_LIST`]).
    pub async fn list_grants(
        &self,
        owner: &GrantOwner,
        now: i64,
        limit: u64,
    ) -> Result<Vec<GrantView>, StoreError> {
        let rows = grant::Entity::find()
            .filter(owner.condition())
            .filter(grant::Column::RevokedAt.is_null())
            .filter(grant::Column::ExpiresAt.gt(now))
            .order_by_desc(grant::Column::CreatedAt)
            .order_by_asc(grant::Column::Id)
            .limit(limit.min(MAX_GRANT_LIST))
            .all(&self.db)
            .await?;
        Ok(rows.into_iter().map(to_view).collect())
    }

    /// Revokes every live grant of `owner` (all their tokens); how many.
    pub async fn revoke_grants_of(&self, owner: &GrantOwner, now: i64) -> Result<u64, StoreError> {
        let revoked = self
            .revoke_grants_where("revoke_grants_of", owner.condition(), now)
            .await?;
        Ok(revoked)
    }

    /// Revokes one grant if it belongs to `owner`; `false` otherwise (unknown, another's, or
    /// revoked already).
    pub async fn revoke_grant_of(
        &self,
        owner: &GrantOwner,
        grant_id: Uuid,
        now: i64,
    ) -> Result<bool, StoreError> {
        let condition = owner.condition().add(grant::Column::Id.eq(grant_id));
        let revoked = self
            .revoke_grants_where("revoke_grant_of", condition, now)
            .await?;
        Ok(revoked > 0)
    }

    /// [`revoke_grants_in`] in a transaction of its own, retried, then evicted here.
    async fn revoke_grants_where(
        &self,
        operation: &'static str,
        condition: Condition,
        now: i64,
    ) -> Result<u64, StoreError> {
        let condition = &condition;
        let revoked = self
            .retrying(operation, move || async move {
                let txn = self.db.begin().await?;
                let revoked = revoke_grants_in(&txn, condition.clone(), now).await?;
                txn.commit().await?;
                Ok(revoked)
            })
            .await?;
        self.grants_revoked_here(&revoked.ids);
        Ok(revoked.count)
    }

    /// Evicts the tokens of grants whose revocation has just committed from this instance's
    /// introspection cache.
    pub(super) fn grants_revoked_here(&self, grants: &[Uuid]) {
        for id in grants {
            self.changed_here(ChangeKind::Grant, &id.to_string());
        }
    }
}

fn to_view(row: grant::Model) -> GrantView {
    GrantView {
        id: row.id,
        client_id: row.client_id,
        user_id: row.user_id,
        grant_type: row.grant_type,
        scope: row.scope,
        audience: Audience::from_stored(&row.audience)
            .iter()
            .map(str::to_owned)
            .collect(),
        created_at: row.created_at,
        expires_at: row.expires_at,
    }
}
