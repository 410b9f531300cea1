//! `GET /.well-known/oauth-authorization-server` (RFC 8414) and
//! `GET /.well-known/openid-configuration` (OpenID Connect Discovery 1.0): what this server
//! really supports, the part they share written once.
//!
//! An issuer with a path (`https://auth.example/tenant`) is also served at the RFC 8414 §3.1
//! location, the well-known segment followed by that path
//! (`/.well-known/oauth-authorization-server/tenant`).
use crate::clock;
use crate::http::AppState;
use crate::keys::SigningAlg;
use crate::oauth::client_auth::AuthMethod;
use crate::oauth::client_jwks::AssertionAlg;
use crate::oauth::grant_type::GrantType;
use crate::oauth::oidc;
use actix_web::{HttpResponse, web};
use serde_json::{Map, Value, json};

/// Authorization server metadata (RFC 8414).
#[utoipa::path(
    get,
    path = "/.well-known/oauth-authorization-server",
    tag = "oauth",
    responses((status = 200, description = "The metadata document", content_type = "application/json"))
)]
pub async fn metadata(state: web::Data<AppState>) -> HttpResponse {
    let mut document = common(&state);
    // Whether tokens that name no resource are inactive for every resource server.
    document.insert(
        "introspection_requires_audience".into(),
        state.settings.introspection.require_audience.into(),
    );
    respond(document)
}

/// OpenID Provider metadata (OpenID Connect Discovery 1.0 §3): what RFC 8414 says, and the
/// OpenID Connect endpoints and choices. Lists only what works: no request objects, no
/// `claims` parameter, no pairwise subjects, no front- or back-channel logout.
#[utoipa::path(
    get,
    path = "/.well-known/openid-configuration",
    tag = "openid",
    responses((status = 200, description = "The OpenID Provider configuration", content_type = "application/json"))
)]
pub async fn openid_configuration(state: web::Data<AppState>) -> HttpResponse {
    let issuer = &state.settings.server.issuer;
    let mut document = common(&state);
    let algorithms: Vec<&str> = state
        .keys
        .algorithms(clock::now())
        .into_iter()
        .map(SigningAlg::as_str)
        .collect();
    for (name, value) in [
        ("userinfo_endpoint", json!(format!("{issuer}/userinfo"))),
        (
            "end_session_endpoint",
            json!(format!("{issuer}/end-session")),
        ),
        ("subject_types_supported", json!(["public"])),
        ("id_token_signing_alg_values_supported", json!(algorithms)),
        ("claims_supported", json!(oidc::CLAIMS_SUPPORTED)),
        ("claim_types_supported", json!(["normal"])),
        ("acr_values_supported", json!(oidc::ACR_VALUES)),
        (
            "prompt_values_supported",
            json!(["none", "login", "consent", "select_account"]),
        ),
        ("claims_parameter_supported", json!(false)),
        // Its default is true: say that request objects are not accepted.
        ("request_parameter_supported", json!(false)),
        ("request_uri_parameter_supported", json!(false)),
        ("frontchannel_logout_supported", json!(false)),
        ("backchannel_logout_supported", json!(false)),
    ] {
        document.insert(name.into(), value);
    }
    respond(document)
}

/// What both documents say: the issuer, the OAuth endpoints and what they accept.
fn common(state: &AppState) -> Map<String, Value> {
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
    // What signed introspection answers (RFC 9701 §7) can be signed with right now.
    let signing_algs: Vec<&str> = state
        .keys
        .algorithms(clock::now())
        .into_iter()
        .map(SigningAlg::as_str)
        .collect();
    let names = |methods: &[AuthMethod]| methods.iter().map(|m| m.as_str()).collect::<Vec<_>>();
    let mut scopes: Vec<&str> = state
        .settings
        .scopes
        .descriptions
        .keys()
        .map(String::as_str)
        .collect();
    for scope in oidc::SCOPES {
        if !scopes.contains(&scope) {
            scopes.push(scope);
        }
    }
    let document = json!({
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
        "scopes_supported": scopes,
        "token_endpoint_auth_methods_supported": names(&every_method),
        "introspection_endpoint_auth_methods_supported": names(&confidential_methods),
        "revocation_endpoint_auth_methods_supported": names(&every_method),
        "token_endpoint_auth_signing_alg_values_supported": assertion_algs,
        "introspection_endpoint_auth_signing_alg_values_supported": assertion_algs,
        "revocation_endpoint_auth_signing_alg_values_supported": assertion_algs,
        "introspection_signing_alg_values_supported": signing_algs,
        // RFC 8707: `resource` is accepted at /authorize and /token, and tokens are bound
        // to the resources they name; not yet registered metadata, as node-oidc-provider
        // and others publish it.
        "resource_indicators_supported": true,
    });
    let mut document = match document {
        Value::Object(map) => map,
        _ => Map::new(),
    };
    if state.settings.registration.enabled {
        document.insert(
            "registration_endpoint".into(),
            json!(format!("{issuer}/register")),
        );
    }
    document
}

fn respond(document: Map<String, Value>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header(("Cache-Control", "public, max-age=300"))
        .json(Value::Object(document))
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
