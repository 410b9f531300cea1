//! A second factor of a user: a TOTP authenticator or an e-mail/SMS destination.
use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "user_factors")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub user_id: Uuid,
    /// `totp`, `email` or `sms`; one of each kind per user.
    pub kind: String,
    /// TOTP only: nonce + AEAD ciphertext of the shared secret (it cannot be hashed).
    pub secret_ciphertext: Option<Vec<u8>>,
    /// E-mail address or phone number the one-time codes go to.
    pub destination: Option<String>,
    pub created_at: i64,
    /// `None` until the user proved one code; only confirmed factors count.
    pub confirmed_at: Option<i64>,
    /// TOTP only: the last time step accepted, so that a code is accepted once.
    pub last_used_step: Option<i64>,
}

impl ActiveModelBehavior for ActiveModel {}
