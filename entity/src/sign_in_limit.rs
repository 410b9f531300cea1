//! Sign-in attempts of one account or one client address in its current window: slots taken
//! by passwords being verified, and failures.
use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "sign_in_limits")]
pub struct Model {
    /// SHA-256 of the kind of key (`account` or `address`), a NUL byte and the key: the
    /// normalized username, or the address block.
    #[sea_orm(primary_key, auto_increment = false)]
    pub key_hash: Vec<u8>,
    /// Passwords being verified in a slot of this window (one left behind by a crashed
    /// instance stays until the window ends, counted like a failure).
    pub in_flight: i32,
    pub failures: i32,
    /// When the window ends; it started with the first slot taken of a fresh count.
    pub window_ends_at: i64,
}

impl ActiveModelBehavior for ActiveModel {}
