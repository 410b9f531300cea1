//! A lease: the named job `name` (e.g. `cleanup`) belongs to `holder` until `expires_at`.
use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "leases")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub name: String,
    /// The instance that holds it: a random id, then host name and process id for people.
    pub holder: String,
    /// Unix seconds after which another instance may take it.
    pub expires_at: i64,
}

impl ActiveModelBehavior for ActiveModel {}
