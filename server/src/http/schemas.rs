//! The request and response shapes that the OpenAPI document names and the handlers
//! reference in their annotations; kept apart so that neither imports the other.
use serde::Deserialize;
use utoipa::ToSchema;

/// The form of `POST /token` (RFC 6749 §4.1.3, §4.4.2, §6, RFC 8693 §2.1, RFC 8707 §2). Which
/// fields apply depends on
/// `grant_type`; client credentials may come in the body (`client_secret_post`) instead of
/// HTTP Basic, a `private_key_jwt` client sends a signed assertion instead of a secret, and a
/// public client sends only `client_id`.
#[derive(Deserialize, ToSchema)]
#[allow(dead_code)]
pub struct TokenRequest {
    /// `authorization_code`, `refresh_token`, `client_credentials` or
    /// `urn:ietf:params:oauth:grant-type:token-exchange`.
    grant_type: String,
    /// `authorization_code`: the code.
    code: Option<String>,
    /// `authorization_code`: required when the authorization request named one.
    redirect_uri: Option<String>,
    /// `authorization_code`: the PKCE verifier.
    code_verifier: Option<String>,
    /// `refresh_token`: the refresh token.
    refresh_token: Option<String>,
    /// Space-separated scopes (`client_credentials`, token exchange, or narrowing on
    /// `authorization_code` and `refresh_token`).
    scope: Option<String>,
    /// The API the token is for (RFC 8707), an absolute URI; may be repeated. On
    /// `authorization_code` and `refresh_token` it narrows the grant's audience.
    resource: Option<String>,
    /// Token exchange: a resource identifier, like `resource`; may be repeated.
    audience: Option<String>,
    /// Token exchange: the access token received from the caller.
    subject_token: Option<String>,
    /// Token exchange: `urn:ietf:params:oauth:token-type:access_token`.
    subject_token_type: Option<String>,
    /// Token exchange: `urn:ietf:params:oauth:token-type:access_token` if sent.
    requested_token_type: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
    /// `private_key_jwt` (RFC 7523 §2.2):
    /// `urn:ietf:params:oauth:client-assertion-type:jwt-bearer`.
    client_assertion_type: Option<String>,
    /// `private_key_jwt`: a JWT signed with the client's registered key.
    client_assertion: Option<String>,
}

/// The form of `POST /introspect` and `POST /revoke` (RFC 7662 §2.1, RFC 7009 §2.1).
#[derive(Deserialize, ToSchema)]
#[allow(dead_code)]
pub struct TokenActionRequest {
    token: String,
    /// `access_token` or `refresh_token`; a hint only.
    token_type_hint: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
    /// `private_key_jwt` (RFC 7523 §2.2):
    /// `urn:ietf:params:oauth:client-assertion-type:jwt-bearer`.
    client_assertion_type: Option<String>,
    /// `private_key_jwt`: a JWT signed with the client's registered key.
    client_assertion: Option<String>,
}

/// An error (RFC 6749 §5.2).
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct ErrorResponse {
    /// e.g. `invalid_request`, `invalid_client`, `invalid_grant`, `unauthorized_client`,
    /// `unsupported_grant_type`, `invalid_scope`, `invalid_target`, `temporarily_unavailable`.
    error: String,
    error_description: String,
}

/// A health answer.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct Health {
    /// `ok` or `unavailable`.
    status: String,
}
