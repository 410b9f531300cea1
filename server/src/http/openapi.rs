//! The OpenAPI 3 document of the JSON and form endpoints, generated from the handlers'
//! annotations and served at `GET /openapi.json`. The HTML pages are not part of it.
use super::health;
use super::oauth::{introspect, metadata, registration, revocations, revoke, token, userinfo};
use super::schemas::{ErrorResponse, Health, TokenActionRequest, TokenRequest};
use crate::oauth::grants::TokenResponse;
use crate::oauth::introspection::{ActiveToken, Introspection};
use actix_web::HttpResponse;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Umbra",
        description = "OAuth 2.0 authorization server with opaque tokens: token issuance (RFC 6749), introspection (RFC 7662), revocation (RFC 7009), metadata (RFC 8414) and dynamic client registration (RFC 7591, RFC 7592); OpenID Connect UserInfo and discovery."
    ),
    paths(
        token::token,
        introspect::introspect,
        revocations::revocations,
        revoke::revoke,
        metadata::metadata,
        metadata::openid_configuration,
        userinfo::userinfo,
        userinfo::userinfo_post,
        crate::http::oauth::jwks::jwks,
        registration::register,
        registration::read,
        registration::update,
        registration::delete,
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
        Health,
        crate::oauth::registration::ClientMetadata,
        registration::RegistrationResponse
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
            components.add_security_scheme(
                "bearer",
                SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
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
