//! `GET /.well-known/oauth-authorization-server` (RFC 8414): what this server really supports.
use super::AppState;
use actix_web::{HttpResponse, web};
use serde_json::json;

pub async fn metadata(state: web::Data<AppState>) -> HttpResponse {
    let issuer = &state.settings.server.issuer;
    let auth_methods = ["client_secret_basic", "client_secret_post"];
    HttpResponse::Ok()
        .insert_header(("Cache-Control", "public, max-age=300"))
        .json(json!({
            "issuer": issuer,
            "token_endpoint": format!("{issuer}/token"),
            "introspection_endpoint": format!("{issuer}/introspect"),
            "revocation_endpoint": format!("{issuer}/revoke"),
            "grant_types_supported": ["client_credentials"],
            "response_types_supported": [],
            "token_endpoint_auth_methods_supported": auth_methods,
            "introspection_endpoint_auth_methods_supported": auth_methods,
            "revocation_endpoint_auth_methods_supported": auth_methods,
        }))
}
