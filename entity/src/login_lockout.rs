//! Second-factor failures of a user in the current window, and the lock they caused.
use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "login_lockouts")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub user_id: Uuid,
    pub failures: i32,
    pub window_started_at: i64,
    pub locked_until: Option<i64>,
}

impl ActiveModelBehavior for ActiveModel {}
