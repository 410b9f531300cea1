//! A registered OAuth client (RFC 6749 §2).
use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "clients")]
pub struct Model {
    /// The public `client_id`.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub name: String,
    /// SHA-256 of the server-generated secret; `None` for a public client.
    pub secret_hash: Option<Vec<u8>>,
    /// JSON array of registered redirect URIs, matched by exact string comparison.
    pub redirect_uris: String,
    /// Space-separated grant types the client may use.
    pub grant_types: String,
    /// Space-separated scopes the client may request.
    pub scopes: String,
    /// A resource server allowed to call `/introspect`.
    pub can_introspect: bool,
    /// A first-party client whose users are not asked for consent.
    pub skip_consent: bool,
    /// Users signing in for this client must have a second factor.
    pub require_2fa: bool,
    /// The resource (RFC 8707) a token is for when the client asks for none.
    pub default_resource: Option<String>,
    /// The JWS algorithm of its signed introspection answers (RFC 9701 §6); `None`: JSON only.
    pub introspection_signed_response_alg: Option<String>,
    /// The public keys of a `private_key_jwt` client (RFC 7523), a JWK Set as JSON.
    pub jwks: Option<String>,
    /// Where the public keys of a `private_key_jwt` client are fetched from.
    pub jwks_uri: Option<String>,
    /// The JWS algorithm of its ID tokens (`RS256`, `ES256`, `EdDSA`); `None`: the server's
    /// default.
    pub id_token_signed_response_alg: Option<String>,
    /// JSON array of the URIs RP-initiated logout may return to, matched exactly.
    pub post_logout_redirect_uris: String,
    pub created_at: i64,
    pub updated_at: i64,
    /// Moves with every change of the row: the admin API's `ETag`.
    pub version: i64,
    /// SHA-256 of the RFC 7592 registration access token of a dynamically registered client.
    pub registration_token_hash: Option<Vec<u8>>,
    /// When its secret stops working (RFC 7591 `client_secret_expires_at`); `None`: never.
    pub client_secret_expires_at: Option<i64>,
    #[sea_orm(has_many)]
    pub grants: HasMany<super::grant::Entity>,
}

impl ActiveModelBehavior for ActiveModel {}
