//! The one-time code last sent to an e-mail/SMS factor (at most one per factor), hashed.
use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "one_time_codes")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub factor_id: Uuid,
    pub hash: Vec<u8>,
    /// When it was sent: the resend throttle counts from here.
    pub sent_at: i64,
    pub expires_at: i64,
    /// Wrong or right guesses so far; the code dies at the configured maximum.
    pub attempts: i32,
    pub consumed_at: Option<i64>,
}

impl ActiveModelBehavior for ActiveModel {}
