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
            // The request span already records the error at WARN; this adds the private cause.
            tracing::debug!(
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

/// Why an HTML page could not be served; rendered as an error page.
#[derive(Debug, thiserror::Error)]
pub enum PageError {
    #[error("bad request: {0}")]
    BadRequest(String),
    /// A form without a valid CSRF token.
    #[error("form token missing or wrong")]
    Forbidden,
    #[error("too many attempts")]
    TooManyAttempts { retry_after_secs: u64 },
    #[error("unavailable: {0}")]
    Unavailable(String),
    #[error("internal: {0}")]
    Internal(String),
}

impl PageError {
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::BadRequest(message.into())
    }

    pub fn internal(cause: impl std::fmt::Display) -> Self {
        Self::Internal(cause.to_string())
    }
}

impl From<StoreError> for PageError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::Unavailable(_) => Self::Unavailable(err.to_string()),
            _ => Self::Internal(err.to_string()),
        }
    }
}

impl From<super::session::SessionError> for PageError {
    fn from(err: super::session::SessionError) -> Self {
        Self::internal(err)
    }
}

impl ResponseError for PageError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Forbidden => StatusCode::FORBIDDEN,
            Self::TooManyAttempts { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        let (title, message) = match self {
            Self::BadRequest(message) => ("Invalid request", message.as_str()),
            Self::Forbidden => (
                "Form expired",
                "This form has expired or was not sent from this site. Go back, reload the page and try again.",
            ),
            Self::TooManyAttempts { .. } => (
                "Too many attempts",
                "There were too many sign-in attempts. Wait a few minutes and try again.",
            ),
            Self::Unavailable(cause) => {
                tracing::error!(cause = %cause, "page unavailable");
                (
                    "Temporarily unavailable",
                    "The service is temporarily unavailable. Try again shortly.",
                )
            }
            Self::Internal(cause) => {
                tracing::error!(cause = %cause, "page failed");
                (
                    "Something went wrong",
                    "The request could not be completed. Try again later.",
                )
            }
        };
        let mut response = super::templates::templates().page(
            status,
            "error.html",
            minijinja::context! { title, message },
        );
        let retry_after = match self {
            Self::TooManyAttempts { retry_after_secs } => {
                HeaderValue::from_str(&retry_after_secs.to_string()).ok()
            }
            Self::Unavailable(_) => Some(HeaderValue::from_static("5")),
            _ => None,
        };
        if let Some(value) = retry_after {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        response
    }
}
