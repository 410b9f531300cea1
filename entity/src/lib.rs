//! SeaORM entities of Umbra, one module per table.
//!
//! Times are Unix seconds (`i64`) so that the same columns compare and index the same way on
//! Postgres, SQLite and the distributed SQL engines Umbra may move to. Token and code rows are
//! keyed by the SHA-256 of the token string; the plaintext is never stored.
//!
//! Regenerate after a schema change with
//! `sea-orm-cli generate entity --entity-format dense -u "$DATABASE_URL" -o entity/src --lib`
//! and keep the doc comments.

pub mod access_token;
pub mod audit_event;
pub mod authorization_code;
pub mod change_log;
pub mod client;
pub mod client_resource;
pub mod consent;
pub mod grant;
pub mod lease;
pub mod login_lockout;
pub mod one_time_code;
pub mod recovery_code;
pub mod refresh_token;
pub mod registration_token;
pub mod resource;
pub mod resource_introspector;
pub mod sign_in_limit;
pub mod signing_key;
pub mod used_client_assertion;
pub mod user;
pub mod user_factor;

pub mod prelude {
    pub use super::access_token::Entity as AccessToken;
    pub use super::audit_event::Entity as AuditEvent;
    pub use super::authorization_code::Entity as AuthorizationCode;
    pub use super::change_log::Entity as ChangeLog;
    pub use super::client::Entity as Client;
    pub use super::client_resource::Entity as ClientResource;
    pub use super::consent::Entity as Consent;
    pub use super::grant::Entity as Grant;
    pub use super::lease::Entity as Lease;
    pub use super::login_lockout::Entity as LoginLockout;
    pub use super::one_time_code::Entity as OneTimeCode;
    pub use super::recovery_code::Entity as RecoveryCode;
    pub use super::refresh_token::Entity as RefreshToken;
    pub use super::registration_token::Entity as RegistrationToken;
    pub use super::resource::Entity as Resource;
    pub use super::resource_introspector::Entity as ResourceIntrospector;
    pub use super::sign_in_limit::Entity as SignInLimit;
    pub use super::signing_key::Entity as SigningKey;
    pub use super::used_client_assertion::Entity as UsedClientAssertion;
    pub use super::user::Entity as User;
    pub use super::user_factor::Entity as UserFactor;
}
