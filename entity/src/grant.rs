//! A token family: one consent (authorization code flow) or one client_credentials issuance.
//! Revoking a grant inactivates every code and token that belongs to it.
use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "grants")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub client_id: String,
    /// The resource owner; `None` for client_credentials.
    pub user_id: Option<Uuid>,
    /// `authorization_code` or `client_credentials`.
    pub grant_type: String,
    /// Space-separated scopes granted.
    pub scope: String,
    pub created_at: i64,
    /// The latest expiry of any token of the family; the row may be deleted after it.
    pub expires_at: i64,
    pub revoked_at: Option<i64>,
    /// Space-separated resource identifiers the grant covers (RFC 8707); empty for none.
    pub audience: String,
    /// When the person signed in for this grant (OpenID Connect `auth_time`); `None` for
    /// client_credentials grants and grants from before OpenID Connect.
    pub auth_time: Option<i64>,
    /// Space-separated authentication methods of that sign-in (RFC 8176 `amr` values).
    pub amr: Option<String>,
    /// The authentication context class of that sign-in (`acr`).
    pub acr: Option<String>,
    /// The browser session that signed in (`sid`).
    pub sid: Option<String>,
    /// The `nonce` of the authentication request, repeated in every ID token of the grant.
    pub nonce: Option<String>,
    #[sea_orm(belongs_to, from = "client_id", to = "id", on_delete = "Cascade")]
    pub client: BelongsTo<super::client::Entity>,
    #[sea_orm(belongs_to, from = "user_id", to = "id", on_delete = "Cascade")]
    pub user: BelongsTo<Option<super::user::Entity>>,
    #[sea_orm(has_many)]
    pub access_tokens: HasMany<super::access_token::Entity>,
    #[sea_orm(has_many)]
    pub refresh_tokens: HasMany<super::refresh_token::Entity>,
    #[sea_orm(has_many)]
    pub authorization_codes: HasMany<super::authorization_code::Entity>,
}

impl ActiveModelBehavior for ActiveModel {}
