//! A client that may introspect the tokens meant for a resource: the resource server's own
//! credentials.
use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "resource_introspectors")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub resource: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub client_id: String,
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
