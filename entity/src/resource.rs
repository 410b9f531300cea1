//! A resource (an API) that tokens can be meant for (RFC 8707): its identifier is an absolute
//! URI and the audience of the tokens issued for it.
use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "resources")]
pub struct Model {
    /// The absolute URI clients send as `resource` and introspection answers list in `aud`.
    #[sea_orm(primary_key, auto_increment = false)]
    pub identifier: String,
    pub name: String,
    /// Space-separated scopes the resource defines.
    pub scopes: String,
    pub created_at: i64,
    pub updated_at: i64,
    /// Moves with every change of the row: the admin API's `ETag`.
    pub version: i64,
}

impl ActiveModelBehavior for ActiveModel {}
