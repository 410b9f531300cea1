//! A person who signs in (resource owner).
use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "users")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// As the user typed it at creation.
    pub username: String,
    /// Lower-cased, unique: usernames are unique case-insensitively.
    #[sea_orm(unique)]
    pub username_normalized: String,
    /// argon2id PHC string.
    pub password_hash: String,
    /// The profile e-mail address (OpenID Connect `email`), set by an operator. Not where
    /// e-mailed one-time codes go: a second factor keeps its own address.
    pub email: Option<String>,
    pub phone: Option<String>,
    pub disabled: bool,
    pub created_at: i64,
    pub updated_at: i64,
    /// Moves when what proves the user changes (password, disabled, factors removed, "sign
    /// out everywhere"); a browser session signed in under another value is signed out.
    pub security_stamp: i64,
    /// The display name (OpenID Connect `name`).
    pub name: Option<String>,
    /// An operator vouched that `email` belongs to the user (`email_verified`).
    pub email_verified: bool,
    /// Moves with every change of the row: the admin API's `ETag`.
    pub version: i64,
    /// May use the operator console (granted through the CLI; needs a second factor too).
    pub admin: bool,
    #[sea_orm(has_many)]
    pub grants: HasMany<super::grant::Entity>,
    #[sea_orm(has_many)]
    pub consents: HasMany<super::consent::Entity>,
}

impl ActiveModelBehavior for ActiveModel {}
