//! Issuing authorization codes, each in a new grant (the family its tokens will belong to).
use super::{Store, StoreError};
use crate::oauth::grant_type::GrantType;
use crate::oauth::oidc::Authentication;
use crate::oauth::resource::Audience;
use crate::oauth::scope::ScopeSet;
use crate::oauth::token::TokenHash;
use entity::{authorization_code, grant};
use sea_orm::{ActiveValue::Set, EntityTrait, TransactionTrait};
use uuid::Uuid;

/// A code about to be stored, with everything it is bound to.
#[derive(Debug, Clone)]
pub struct NewAuthorizationCode {
    pub hash: TokenHash,
    pub client_id: String,
    pub user_id: Uuid,
    pub redirect_uri: Option<String>,
    pub scope: ScopeSet,
    /// The resources the grant covers (RFC 8707).
    pub audience: Audience,
    pub code_challenge: Option<String>,
    /// The sign-in behind the grant, for its ID tokens (OpenID Connect).
    pub authentication: Authentication,
    pub issued_at: i64,
    pub expires_at: i64,
}

impl Store {
    /// Stores the code and its grant atomically; returns the grant id.
    pub async fn create_authorization_code(
        &self,
        code: &NewAuthorizationCode,
    ) -> Result<Uuid, StoreError> {
        let grant_id = Uuid::new_v4();
        self.retrying("create_authorization_code", move || async move {
            self.insert_authorization_code(grant_id, code).await
        })
        .await?;
        Ok(grant_id)
    }

    async fn insert_authorization_code(
        &self,
        grant_id: Uuid,
        code: &NewAuthorizationCode,
    ) -> Result<(), StoreError> {
        let txn = self.db.begin().await?;
        grant::Entity::insert(grant::ActiveModel {
            id: Set(grant_id),
            client_id: Set(code.client_id.clone()),
            user_id: Set(Some(code.user_id)),
            grant_type: Set(GrantType::AuthorizationCode.as_str().to_owned()),
            scope: Set(code.scope.to_string()),
            audience: Set(code.audience.to_string()),
            created_at: Set(code.issued_at),
            expires_at: Set(code.expires_at),
            revoked_at: Set(None),
            auth_time: Set(code.authentication.auth_time),
            amr: Set(
                (!code.authentication.amr.is_empty()).then(|| code.authentication.amr.join(" "))
            ),
            acr: Set(code.authentication.acr.clone()),
            sid: Set(code.authentication.sid.clone()),
            nonce: Set(code.authentication.nonce.clone()),
        })
        .exec_without_returning(&txn)
        .await?;
        authorization_code::Entity::insert(authorization_code::ActiveModel {
            hash: Set(code.hash.as_bytes().to_vec()),
            grant_id: Set(grant_id),
            client_id: Set(code.client_id.clone()),
            user_id: Set(code.user_id),
            redirect_uri: Set(code.redirect_uri.clone()),
            scope: Set(code.scope.to_string()),
            code_challenge: Set(code.code_challenge.clone()),
            issued_at: Set(code.issued_at),
            expires_at: Set(code.expires_at),
            consumed_at: Set(None),
        })
        .exec_without_returning(&txn)
        .await?;
        txn.commit().await?;
        Ok(())
    }
}
