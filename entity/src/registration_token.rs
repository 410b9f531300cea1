//! An initial access token (RFC 7591 §3): an operator's permission to register clients
//! dynamically, good for `max_uses` registrations until `expires_at`. Only its hash is kept.
use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "registration_tokens")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// SHA-256 of the token string.
    #[sea_orm(unique)]
    pub token_hash: Vec<u8>,
    /// What the operator said it is for.
    pub description: Option<String>,
    pub max_uses: i32,
    /// Registrations made with it so far; never above `max_uses`.
    pub uses: i32,
    pub expires_at: i64,
    pub created_at: i64,
}

impl ActiveModelBehavior for ActiveModel {}
