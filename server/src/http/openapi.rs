//! The OpenAPI 3 document of the JSON and form endpoints, generated from the handlers'
//! annotations and served at `GET /openapi.json`. The HTML pages are not part of it.
use super::{health, introspect, metadata, revoke, token};
use crate::oauth::grants::TokenResponse;
use crate::oauth::introspection::{ActiveToken, Introspection};
use actix_web::HttpResponse;
use serde::Deserialize;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Umbra",
        description = "OAuth 2.0 authorization server with opaque tokens: token issuance (RFC 6749), introspection (RFC 7662), revocation (RFC 7009) and metadata (RFC 8414)."
    ),
    paths(
        token::token,
        introspect::introspect,
        revoke::revoke,
        metadata::metadata,
        health::live,
        health::ready,
        openapi_json
    ),
    components(schemas(
        TokenRequest,
        TokenResponse,
        TokenActionRequest,
        Introspection,
        ActiveToken,
        ErrorResponse,
        Health
    )),
    modifiers(&ClientAuthentication)
)]
pub struct ApiDoc;

/// `client_secret_basic`: HTTP Basic with the client id and secret.
struct ClientAuthentication;

impl Modify for ClientAuthentication {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        if let Some(components) = openapi.components.as_mut() {
            components.add_security_scheme(
                "client_secret_basic",
                SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Basic).build()),
            );
        }
    }
}

/// The OpenAPI document of this server.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "operations",
    responses((status = 200, description = "This OpenAPI 3 document", content_type = "application/json"))
)]
pub async fn openapi_json() -> HttpResponse {
    HttpResponse::Ok().json(ApiDoc::openapi())
}

/// The form of `POST /token` (RFC 6749 §4.1.3, §4.4.2, §6). Which fields apply depends on
/// `grant_type`; client credentials may come in the body (`client_secret_post`) instead of
/// HTTP Basic, and a public client sends only `client_id`.
#[derive(Deserialize, ToSchema)]
#[allow(dead_code)]
pub struct TokenRequest {
    /// `authorization_code`, `refresh_token` or `client_credentials`.
    grant_type: String,
    /// `authorization_code`: the code.
    code: Option<String>,
    /// `authorization_code`: required when the authorization request named one.
    redirect_uri: Option<String>,
    /// `authorization_code`: the PKCE verifier.
    code_verifier: Option<String>,
    /// `refresh_token`: the refresh token.
    refresh_token: Option<String>,
    /// Space-separated scopes (`client_credentials`, or narrowing on `refresh_token`).
    scope: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
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
}

/// An error (RFC 6749 §5.2).
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct ErrorResponse {
    /// e.g. `invalid_request`, `invalid_client`, `invalid_grant`, `unauthorized_client`,
    /// `unsupported_grant_type`, `invalid_scope`, `temporarily_unavailable`.
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
