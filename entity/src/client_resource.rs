//! A resource a client may ask tokens for, and with which of its scopes.
use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "client_resources")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub resource: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub client_id: String,
    /// Space-separated scopes the client may ask at this resource; `None` for every scope the
    /// resource defines, as it changes.
    pub scopes: Option<String>,
    #[sea_orm(
        belongs_to,
        from = "resource",
        to = "identifier",
        on_delete = "Cascade"
    )]
    pub resource_row: BelongsTo<super::resource::Entity>,
    #[sea_orm(belongs_to, from = "client_id", to = "id", on_delete = "Cascade")]
    pub client: BelongsTo<super::client::Entity>,
}

impl ActiveModelBehavior for ActiveModel {}
