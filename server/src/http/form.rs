//! The extractor for the form-encoded endpoints (token, introspection, revocation): only
//! `application/x-www-form-urlencoded`, bounded in size, strictly decoded.
//!
//! The bound is per endpoint: `server.body_limit_bytes` everywhere, raised by a [`FormLimit`]
//! registered on a resource. Introspection and revocation carry one: a resource server
//! forwards whatever bearer string it was handed, and must get `{"active": false}` (or 200)
//! for it, not 413.
use super::AppState;
use crate::oauth::OAuthError;
use crate::oauth::params::Params;
use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::web::{BytesMut, Data};
use actix_web::{FromRequest, HttpRequest};
use futures_util::StreamExt;
use futures_util::future::LocalBoxFuture;

/// A parsed OAuth form request: its parameters and the raw `Authorization` header.
pub struct OAuthRequest {
    pub params: Params,
    pub authorization: Option<Vec<u8>>,
    /// The path called (`/token`): a client assertion may name the endpoint as its audience.
    pub path: String,
}

const FALLBACK_LIMIT: usize = 8192;

/// The body limit of one form endpoint, as resource app data; the extractor takes the larger
/// of it and `server.body_limit_bytes`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FormLimit(pub usize);

impl FormLimit {
    /// `/introspect` and `/revoke`: a `token` of 16 KiB, every byte percent-encoded (3 bytes
    /// each: 48 KiB), with room for the client credentials and `token_type_hint`. Still
    /// bounded: one request cannot hold more than this in memory.
    pub const TOKEN_ACTIONS: Self = Self(64 * 1024);

    /// The longest `token` value those endpoints are guaranteed to answer by their rules.
    pub const LONGEST_TOKEN: usize = 16 * 1024;
}

impl FromRequest for OAuthRequest {
    type Error = OAuthError;
    type Future = LocalBoxFuture<'static, Result<Self, OAuthError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let configured = req
            .app_data::<Data<AppState>>()
            .map_or(FALLBACK_LIMIT, |state| {
                state.settings.server.body_limit_bytes
            });
        let limit = req
            .app_data::<FormLimit>()
            .map_or(configured, |endpoint| endpoint.0.max(configured));
        let checked = check_headers(req, limit);
        let authorization = req
            .headers()
            .get(header::AUTHORIZATION)
            .map(|v| v.as_bytes().to_vec());
        let path = req.path().to_owned();
        let mut payload = payload.take();
        Box::pin(async move {
            checked?;
            let mut body = BytesMut::new();
            while let Some(chunk) = payload.next().await {
                let chunk = chunk.map_err(|e| {
                    OAuthError::invalid_request("the request body could not be read").with_cause(e)
                })?;
                if body.len() + chunk.len() > limit {
                    return Err(too_large(limit));
                }
                body.extend_from_slice(&chunk);
            }
            Ok(Self {
                params: Params::parse(&body)?,
                authorization,
                path,
            })
        })
    }
}

/// Whether the request's content type is `application/x-www-form-urlencoded` (parameters such
/// as `; charset=UTF-8` aside, case-insensitive).
pub fn is_form_urlencoded(req: &HttpRequest) -> bool {
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let essence = content_type.split(';').next().unwrap_or("").trim();
    essence.eq_ignore_ascii_case("application/x-www-form-urlencoded")
}

fn check_headers(req: &HttpRequest, limit: usize) -> Result<(), OAuthError> {
    if !is_form_urlencoded(req) {
        return Err(OAuthError::invalid_request(
            "the request body must be application/x-www-form-urlencoded",
        ));
    }
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit as u64) {
        return Err(too_large(limit));
    }
    Ok(())
}

fn too_large(limit: usize) -> OAuthError {
    OAuthError::invalid_request(format!("the request body exceeds {limit} bytes")).with_status(413)
}
