//! A client assertion (`private_key_jwt`, RFC 7523) already used: its `jti` is refused again
//! until `expires_at`, when the assertion could no longer be accepted anyway.
use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "used_client_assertions")]
pub struct Model {
    /// SHA-256 of the client id, a NUL byte and the `jti`: one client's `jti` never blocks
    /// another's.
    #[sea_orm(primary_key, auto_increment = false)]
    pub jti_hash: Vec<u8>,
    pub client_id: String,
    /// The assertion's `exp` plus the allowed clock skew.
    pub expires_at: i64,
    #[sea_orm(belongs_to, from = "client_id", to = "id", on_delete = "Cascade")]
    pub client: BelongsTo<super::client::Entity>,
}

impl ActiveModelBehavior for ActiveModel {}
