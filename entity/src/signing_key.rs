//! One of Umbra's signing keys (JWS, RFC 7515): published in the JWKS from `created_at` until
//! `expires_at`, signing from `activates_at` until `retired_at`.
use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "signing_keys")]
pub struct Model {
    /// The key id (`kid`) in JWS headers and the JWKS.
    #[sea_orm(primary_key, auto_increment = false)]
    pub kid: String,
    /// `RS256`, `ES256` or `EdDSA`.
    pub alg: String,
    /// The public key as a JWK (RFC 7517), as published.
    pub public_jwk: String,
    /// The private key (PKCS#8 DER), sealed with the key-encryption key.
    pub private_key: Vec<u8>,
    pub created_at: i64,
    /// When it starts signing; before that it is only published, so that relying parties
    /// that cache the JWKS know it before they meet it.
    pub activates_at: i64,
    /// When it stopped signing.
    pub retired_at: Option<i64>,
    /// When it leaves the JWKS: everything it signed has expired by then.
    pub expires_at: Option<i64>,
}

impl ActiveModelBehavior for ActiveModel {}
