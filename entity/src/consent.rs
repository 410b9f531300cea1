//! Scopes a user has approved for a client, remembered until withdrawn.
use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "consents")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub user_id: Uuid,
    #[sea_orm(primary_key, auto_increment = false)]
    pub client_id: String,
    /// Space-separated scopes approved.
    pub scope: String,
    pub created_at: i64,
    pub updated_at: i64,
    /// Space-separated resource identifiers approved; empty for none.
    pub audience: String,
    #[sea_orm(belongs_to, from = "user_id", to = "id", on_delete = "Cascade")]
    pub user: BelongsTo<super::user::Entity>,
    #[sea_orm(belongs_to, from = "client_id", to = "id", on_delete = "Cascade")]
    pub client: BelongsTo<super::client::Entity>,
}

impl ActiveModelBehavior for ActiveModel {}
