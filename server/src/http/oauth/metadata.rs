//! `GET /.well-known/oauth-authorization-server` (RFC 8414): what this server really supports.
//!
//! An issuer with a path (`https://auth.example/tenant`) is also served at the RFC 8414 §3.1
//! location, the well-known segment followed by that path
//! (`/.well-known/oauth-authorization-server/tenant`).
use crate::http::AppState;
use crate::oauth::client_auth::AuthMethod;
use crate::oauth::client_jwks::AssertionAlg;
use crate::oauth::grant_type::GrantType;
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
    // What `oauth::client_auth` accepts at each endpoint: a public client (`none`) may ask
    // for tokens and revoke its own, but never introspect.
    let confidential_methods = [
        AuthMethod::ClientSecretBasic,
        AuthMethod::ClientSecretPost,
        AuthMethod::PrivateKeyJwt,
    ];
    let every_method = [
        AuthMethod::ClientSecretBasic,
        AuthMethod::ClientSecretPost,
        AuthMethod::PrivateKeyJwt,
        AuthMethod::None,
    ];
    // What a private_key_jwt client assertion may be signed with.
    let assertion_algs = AssertionAlg::names();
    let names = |methods: &[AuthMethod]| methods.iter().map(|m| m.as_str()).collect::<Vec<_>>();
    HttpResponse::Ok()
        .insert_header(("Cache-Control", "public, max-age=300"))
        .json(json!({
            "issuer": issuer,
            "authorization_endpoint": format!("{issuer}/authorize"),
            "token_endpoint": format!("{issuer}/token"),
            "introspection_endpoint": format!("{issuer}/introspect"),
            "revocation_endpoint": format!("{issuer}/revoke"),
            "jwks_uri": format!("{issuer}/jwks.json"),
            "grant_types_supported": GrantType::ALL.map(GrantType::as_str),
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "code_challenge_methods_supported": ["S256"],
            "authorization_response_iss_parameter_supported": true,
            "scopes_supported": state.settings.scopes.descriptions.keys().collect::<Vec<_>>(),
            "token_endpoint_auth_methods_supported": names(&every_method),
            "introspection_endpoint_auth_methods_supported": names(&confidential_methods),
            "revocation_endpoint_auth_methods_supported": names(&every_method),
            // RFC 9701 §7: what signed introspection answers can be signed with right now.
            "introspection_signing_alg_values_supported": state
                .keys
                .algorithms(crate::clock::now())
                .into_iter()
                .map(|alg| alg.as_str())
                .collect::<Vec<_>>(),
            "token_endpoint_auth_signing_alg_values_supported": assertion_algs,
            "introspection_endpoint_auth_signing_alg_values_supported": assertion_algs,
            "revocation_endpoint_auth_signing_alg_values_supported": assertion_algs,
            // RFC 8707: `resource` is accepted at /authorize and /token, and tokens are bound
            // to the resources they name; not yet registered metadata, as node-oidc-provider
            // and others publish it.
            "resource_indicators_supported": true,
            // Whether tokens that name no resource are inactive for every resource server.
            "introspection_requires_audience": state.settings.introspection.require_audience,
        }))
}

/// The metadata at `/.well-known/oauth-authorization-server/{issuer path}` (RFC 8414 §3.1);
/// any other path there is 404.
pub async fn metadata_for_path(
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> HttpResponse {
    if issuer_path(&state.settings.server.issuer) == Some(path.trim_end_matches('/')) {
        metadata(state).await
    } else {
        crate::http::not_found().await
    }
}

/// The path of an issuer identifier, without its slashes: `tenant` for
/// `https://auth.example/tenant`; `None` when it has none.
fn issuer_path(issuer: &str) -> Option<&str> {
    let after_scheme = issuer.split_once("://").map_or(issuer, |(_, rest)| rest);
    let path = after_scheme.split_once('/')?.1.trim_matches('/');
    (!path.is_empty()).then_some(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_issuer_path_is_what_follows_the_authority() {
        assert_eq!(issuer_path("https://auth.example/tenant"), Some("tenant"));
        assert_eq!(issuer_path("https://auth.example/a/b/"), Some("a/b"));
        assert_eq!(issuer_path("https://auth.example"), None);
        assert_eq!(issuer_path("https://auth.example/"), None);
        assert_eq!(issuer_path("http://127.0.0.1:8080"), None);
    }
}
