//! The one place where OAuth errors become HTTP responses (RFC 6749 §5.2).
use crate::oauth::OAuthError;
use crate::store::StoreError;
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'static str,
    error_description: &'a str,
}

impl ResponseError for OAuthError {
    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.status()).unwrap_or(StatusCode::BAD_REQUEST)
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        if status.is_server_error() {
            tracing::error!(
                error = self.code().as_str(),
                cause = self.cause(),
                "request failed"
            );
        } else {
            tracing::info!(
                error = self.code().as_str(),
                description = self.description(),
                cause = self.cause(),
                "request refused"
            );
        }
        let mut response = HttpResponse::build(status);
        response
            .insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-store")))
            .insert_header((header::PRAGMA, HeaderValue::from_static("no-cache")));
        if self.basic_challenge() {
            response.insert_header((
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"umbra\", charset=\"UTF-8\""),
            ));
        }
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response.insert_header((header::RETRY_AFTER, HeaderValue::from_static("5")));
        }
        response.json(ErrorBody {
            error: self.code().as_str(),
            error_description: self.description(),
        })
    }
}

impl From<StoreError> for OAuthError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::Unavailable(_) => OAuthError::temporarily_unavailable(err),
            _ => OAuthError::server_error(err),
        }
    }
}
