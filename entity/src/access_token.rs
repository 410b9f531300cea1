//! An issued access token, keyed by the SHA-256 of its string.
use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "access_tokens")]
pub struct Model {
    /// SHA-256 of the full token string.
    #[sea_orm(primary_key, auto_increment = false)]
    pub hash: Vec<u8>,
    pub grant_id: Uuid,
    pub client_id: String,
    /// Space-separated scopes of this token (may be narrower than the grant's).
    pub scope: String,
    pub issued_at: i64,
    pub expires_at: i64,
    pub revoked_at: Option<i64>,
    /// Space-separated resource identifiers the token is for; empty for none.
    pub audience: String,
    /// The actor chain of an exchanged token (RFC 8693 §4.1), as JSON; `None` otherwise.
    pub act: Option<String>,
    #[sea_orm(belongs_to, from = "grant_id", to = "id", on_delete = "Cascade")]
    pub grant: BelongsTo<super::grant::Entity>,
}

impl ActiveModelBehavior for ActiveModel {}
