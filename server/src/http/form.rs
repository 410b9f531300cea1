//! The extractor for the form-encoded endpoints (token, introspection, revocation): only
//! `application/x-www-form-urlencoded`, bounded in size, strictly decoded.
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
}

const FALLBACK_LIMIT: usize = 8192;

impl FromRequest for OAuthRequest {
    type Error = OAuthError;
    type Future = LocalBoxFuture<'static, Result<Self, OAuthError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let limit = req
            .app_data::<Data<AppState>>()
            .map_or(FALLBACK_LIMIT, |state| {
                state.settings.server.body_limit_bytes
            });
        let checked = check_headers(req, limit);
        let authorization = req
            .headers()
            .get(header::AUTHORIZATION)
            .map(|v| v.as_bytes().to_vec());
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
            })
        })
    }
}

fn check_headers(req: &HttpRequest, limit: usize) -> Result<(), OAuthError> {
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let essence = content_type.split(';').next().unwrap_or("").trim();
    if !essence.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
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
