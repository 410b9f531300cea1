//! One change that every running instance must act on at once (see
//! `umbra::store::changes`): what kind of thing changed and which one. Written in the
//! transaction of the change; deleted after `cleanup.change_retention_secs`.
use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "change_log")]
pub struct Model {
    /// Drawn from the database's sequence when the row is inserted, so increasing in the order
    /// of insertion (not of commit).
    #[sea_orm(primary_key)]
    pub id: i64,
    /// `client`, `resource`, `user`, `key`, …
    pub kind: String,
    /// The id of what changed: a client id, a resource identifier, a user id, a key id.
    pub subject: String,
    /// When it was written (Unix seconds), for retention.
    pub at: i64,
}

impl ActiveModelBehavior for ActiveModel {}
