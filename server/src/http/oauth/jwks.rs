//! `GET /jwks.json` (RFC 7517 §5): the public keys that verify what Umbra signs, including
//! keys not signing yet (pre-published) and retired keys whose signatures may still be alive.
use crate::clock;
use crate::http::AppState;
use actix_web::http::header;
use actix_web::{HttpResponse, web};

/// Longest time a client may cache the key set.
const MAX_AGE_SECS: i64 = 300;

/// The JSON Web Key Set.
#[utoipa::path(
    get,
    path = "/jwks.json",
    tag = "oauth",
    responses((status = 200, description = "The key set (`{\"keys\": [...]}`)", content_type = "application/json"))
)]
pub async fn jwks(state: web::Data<AppState>) -> HttpResponse {
    // Cached for at most half the pre-publication time, so that every cache has seen a new key
    // before it signs; relying parties also re-fetch when they meet an unknown `kid`.
    let max_age = (state.settings.keys.prepublish_secs / 2).clamp(0, MAX_AGE_SECS);
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, format!("public, max-age={max_age}")))
        .content_type("application/jwk-set+json")
        .json(state.keys.jwks(clock::now()))
}
