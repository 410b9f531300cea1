//! Remembered consent per (user, client): the scopes and resources the user approved.
use super::changes::{self, ChangeKind};
use super::{Store, StoreError};
use crate::oauth::resource::Audience;
use crate::oauth::scope::ScopeSet;
use entity::{client, consent, grant};
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, DbErr, EntityTrait, QueryFilter, QueryOrder, TransactionTrait,
};
use uuid::Uuid;

/// A consent as the account page lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsentView {
    pub client_id: String,
    pub client_name: String,
    pub scope: ScopeSet,
    pub updated_at: i64,
}

/// What a user approved for a client: scopes, at resources (RFC 8707).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Approval {
    pub scope: ScopeSet,
    pub audience: Audience,
}

impl Approval {
    /// Whether a request for `scope` at `audience` asks nothing beyond this approval; a new
    /// resource needs a new approval even with scopes of the same name.
    pub fn covers(&self, scope: &ScopeSet, audience: &Audience) -> bool {
        scope.is_subset_of(&self.scope) && audience.is_subset_of(&self.audience)
    }
}

impl Store {
    /// What the user approved for the client, if anything.
    pub async fn consent(
        &self,
        user_id: Uuid,
        client_id: &str,
    ) -> Result<Option<Approval>, StoreError> {
        Ok(consent::Entity::find_by_id((user_id, client_id.to_owned()))
            .one(&self.db)
            .await?
            .map(|row| Approval {
                scope: ScopeSet::from_stored(&row.scope),
                audience: Audience::from_stored(&row.audience),
            }))
    }

    /// Remembers an approval, adding its scopes and resources to those approved before.
    ///
    /// The union is computed here, so the write is conditional on the row still holding what
    /// was read: of two approvals racing for one (user, client), the second finds the row
    /// changed and runs again on the first one's result ([`Store::retrying`]), whatever the
    /// isolation level. Neither approval is lost.
    pub async fn remember_consent(
        &self,
        user_id: Uuid,
        client_id: &str,
        approved: &Approval,
        now: i64,
    ) -> Result<(), StoreError> {
        self.retrying("remember_consent", move || {
            self.merge_consent(user_id, client_id, approved, now)
        })
        .await
    }

    async fn merge_consent(
        &self,
        user_id: Uuid,
        client_id: &str,
        approved: &Approval,
        now: i64,
    ) -> Result<(), StoreError> {
        let before = consent::Entity::find_by_id((user_id, client_id.to_owned()))
            .one(&self.db)
            .await?;
        let mut scope = ScopeSet::default();
        let mut audience = Vec::new();
        if let Some(before) = &before {
            scope = ScopeSet::from_stored(&before.scope);
            audience = Audience::from_stored(&before.audience).to_vec();
        }
        scope.extend(&approved.scope);
        audience.extend(approved.audience.to_vec());
        let (scope, audience) = (scope.to_string(), Audience::new(audience).to_string());
        let written = match before {
            None => {
                let row = consent::ActiveModel {
                    user_id: Set(user_id),
                    client_id: Set(client_id.to_owned()),
                    scope: Set(scope),
                    audience: Set(audience),
                    created_at: Set(now),
                    updated_at: Set(now),
                };
                consent::Entity::insert(row)
                    .on_conflict(
                        OnConflict::columns([consent::Column::UserId, consent::Column::ClientId])
                            .do_nothing()
                            .to_owned(),
                    )
                    .exec_without_returning(&self.db)
                    .await?
            }
            Some(before) => {
                consent::Entity::update_many()
                    .col_expr(consent::Column::Scope, Expr::value(scope))
                    .col_expr(consent::Column::Audience, Expr::value(audience))
                    .col_expr(consent::Column::UpdatedAt, Expr::value(now))
                    .filter(consent::Column::UserId.eq(user_id))
                    .filter(consent::Column::ClientId.eq(client_id))
                    .filter(consent::Column::Scope.eq(before.scope))
                    .filter(consent::Column::Audience.eq(before.audience))
                    .exec(&self.db)
                    .await?
                    .rows_affected
            }
        };
        if written == 0 {
            return Err(StoreError::Contended(DbErr::RecordNotUpdated));
        }
        Ok(())
    }

    pub async fn list_consents(&self, user_id: Uuid) -> Result<Vec<ConsentView>, StoreError> {
        let rows = consent::Entity::find()
            .filter(consent::Column::UserId.eq(user_id))
            .order_by_asc(consent::Column::ClientId)
            .find_also_related(client::Entity)
            .all(&self.db)
            .await?;
        Ok(rows
            .into_iter()
            .map(|(row, client)| ConsentView {
                client_name: client.map_or_else(|| row.client_id.clone(), |c| c.name),
                client_id: row.client_id,
                scope: ScopeSet::from_stored(&row.scope),
                updated_at: row.updated_at,
            })
            .collect())
    }

    /// Forgets the consent and revokes every grant the user gave the client, so its tokens
    /// stop working at once. `false` if there was no consent.
    pub async fn withdraw_consent(
        &self,
        user_id: Uuid,
        client_id: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        self.retrying("withdraw_consent", move || {
            self.withdraw_consent_once(user_id, client_id, now)
        })
        .await
    }

    async fn withdraw_consent_once(
        &self,
        user_id: Uuid,
        client_id: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        let txn = self.db.begin().await?;
        let deleted = consent::Entity::delete_by_id((user_id, client_id.to_owned()))
            .exec(&txn)
            .await?
            .rows_affected;
        let revoked = grant::Entity::update_many()
            .col_expr(grant::Column::RevokedAt, Expr::value(now))
            .filter(grant::Column::UserId.eq(user_id))
            .filter(grant::Column::ClientId.eq(client_id))
            .filter(grant::Column::RevokedAt.is_null())
            .exec(&txn)
            .await?
            .rows_affected;
        // The grants are not listed one by one: the user's cached tokens all go (a rare event).
        let subject = user_id.to_string();
        if revoked > 0 {
            changes::record(&txn, ChangeKind::User, &subject).await?;
        }
        txn.commit().await?;
        if revoked > 0 {
            self.changed_here(ChangeKind::User, &subject);
        }
        Ok(deleted > 0)
    }
}
