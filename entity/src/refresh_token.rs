//! An issued refresh token, keyed by the SHA-256 of its string. Rotation sets `rotated_at`;
//! presenting a rotated token again revokes the grant (RFC 9700 §4.14), unless it is a retry
//! inside `tokens.refresh_reuse_grace_secs` (see `umbra::store`'s exchange module).
use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "refresh_tokens")]
pub struct Model {
    /// SHA-256 of the full token string.
    #[sea_orm(primary_key, auto_increment = false)]
    pub hash: Vec<u8>,
    pub grant_id: Uuid,
    pub client_id: String,
    pub scope: String,
    pub issued_at: i64,
    pub expires_at: i64,
    /// Set once, atomically, when the token is exchanged for its successor, or when a sibling
    /// (a token with the same parent) is used first and retires it.
    pub rotated_at: Option<i64>,
    pub revoked_at: Option<i64>,
    /// The refresh token this one was issued in exchange for; `None` for the first of a grant.
    pub parent_hash: Option<Vec<u8>>,
    /// Set when a token issued in exchange for this one has itself been used: from then on,
    /// presenting this one again is reuse, whatever the retry window.
    pub successor_used_at: Option<i64>,
    #[sea_orm(belongs_to, from = "grant_id", to = "id", on_delete = "Cascade")]
    pub grant: BelongsTo<super::grant::Entity>,
}

impl ActiveModelBehavior for ActiveModel {}
