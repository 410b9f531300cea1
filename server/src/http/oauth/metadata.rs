//! `GET /.well-known/oauth-authorization-server` (RFC 8414): what this server really supports.
use crate::http::AppState;
use actix_web::{HttpResponse, web};
use serde_json::json;

/// Authorization server metadata (RFC 8414).
#[utoipa::path(
    get,
    path = "/.well-known/oauth-authorization-server",
    tag = "oauth",
    responses((status = 200, description = "The metadata document", content_type = "application/json"))
)]
pub async fn metadata(state: web::Data<AppState>) -> HttpResponse {
    let issuer = &state.settings.server.issuer;
    let auth_methods = ["client_secret_basic", "client_secret_post"];
    let token_auth_methods = ["client_secret_basic", "client_secret_post", "none"];
    HttpResponse::Ok()
        .insert_header(("Cache-Control", "public, max-age=300"))
        .json(json!({
            "issuer": issuer,
            "authorization_endpoint": format!("{issuer}/authorize"),
            "token_endpoint": format!("{issuer}/token"),
            "introspection_endpoint": format!("{issuer}/introspect"),
            "revocation_endpoint": format!("{issuer}/revoke"),
            "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "code_challenge_methods_supported": ["S256"],
            "authorization_response_iss_parameter_supported": true,
            "scopes_supported": state.settings.scopes.descriptions.keys().collect::<Vec<_>>(),
            "token_endpoint_auth_methods_supported": token_auth_methods,
            "introspection_endpoint_auth_methods_supported": auth_methods,
            "revocation_endpoint_auth_methods_supported": auth_methods,
        }))
}
