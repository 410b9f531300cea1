//! An authorization code (RFC 6749 §4.1.2), keyed by the SHA-256 of its string, bound to the
//! client, redirect URI, PKCE challenge, user and scope it was issued for.
use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "authorization_codes")]
pub struct Model {
    /// SHA-256 of the full code string.
    #[sea_orm(primary_key, auto_increment = false)]
    pub hash: Vec<u8>,
    pub grant_id: Uuid,
    pub client_id: String,
    pub user_id: Uuid,
    /// The redirect URI named in the authorization request; `None` if it named none (the
    /// client has exactly one registered).
    pub redirect_uri: Option<String>,
    pub scope: String,
    /// PKCE S256 challenge (RFC 7636); `None` only for confidential clients when PKCE is optional.
    pub code_challenge: Option<String>,
    pub issued_at: i64,
    pub expires_at: i64,
    /// Set once, atomically, on redemption; a second redemption revokes the grant.
    pub consumed_at: Option<i64>,
    #[sea_orm(belongs_to, from = "grant_id", to = "id", on_delete = "Cascade")]
    pub grant: BelongsTo<super::grant::Entity>,
}

impl ActiveModelBehavior for ActiveModel {}
