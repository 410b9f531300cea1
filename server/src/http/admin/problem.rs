//! The one error type of the admin API and its one rendering: RFC 7807 problem details
//! (`application/problem+json`, members `type`, `title`, `status`, `detail`).
//!
//! A detail never carries a secret or what the caller sent as a value: serde's messages are
//! reworded by [`ApiError::invalid_json`] and [`PageError::invalid_form`] before they get here,
//! and the causes of outages and bugs are only logged.
use crate::auth::password::PasswordError;
use crate::http::error::{ApiError, PageError};
use crate::second_factor::FactorError;
use crate::store::StoreError;
use actix_web::error::{JsonPayloadError, PathError, QueryPayloadError, UrlencodedError};
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, ResponseError};
use serde::Serialize;

/// Why an admin call failed.
#[derive(Debug, thiserror::Error)]
pub enum Problem {
    /// No bearer token (RFC 6750 §3.1: a bare challenge).
    #[error("no bearer token")]
    MissingToken,
    /// The token is unknown, expired, revoked, malformed or meant for another service.
    #[error("invalid token")]
    InvalidToken,
    /// A valid token that may not administer: without the admin scope, or a person's.
    #[error("insufficient scope")]
    InsufficientScope,
    #[error("bad request: {0}")]
    BadRequest(String),
    #[error("not found: {0}")]
    NotFound(String),
    /// With the methods the resource allows, for the `Allow` header (RFC 9110 §15.5.6).
    #[error("method not allowed")]
    MethodNotAllowed(String),
    #[error("conflict: {0}")]
    Conflict(String),
    /// An update without `If-Match` (RFC 6585 §3).
    #[error("If-Match required")]
    PreconditionRequired,
    /// `If-Match` names a version that is no longer current (RFC 9110 §13.1.1).
    #[error("stale If-Match; the current version is {current}")]
    PreconditionFailed { current: i64 },
    #[error("the body exceeds {0} bytes")]
    TooLarge(usize),
    #[error("the body must be application/json")]
    UnsupportedMediaType,
    /// The database is unreachable or overloaded, or passwords are all being checked.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// A bug: logged with its cause, answered without it.
    #[error("internal: {0}")]
    Internal(String),
}

/// The body of a problem response (RFC 7807 §3.1).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ProblemBody {
    /// A URI that names the kind of problem.
    #[serde(rename = "type")]
    pub kind: String,
    /// A short summary of the kind of problem.
    pub title: &'static str,
    /// The HTTP status code.
    pub status: u16,
    /// What went wrong with this request.
    pub detail: String,
}

/// The media type of problem details.
pub const PROBLEM_JSON: &str = "application/problem+json";

impl Problem {
    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::BadRequest(detail.into())
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::NotFound(detail.into())
    }

    pub fn conflict(detail: impl Into<String>) -> Self {
        Self::Conflict(detail.into())
    }

    pub fn internal(cause: impl std::fmt::Display) -> Self {
        Self::Internal(cause.to_string())
    }

    /// The last segment of `type`, and the title.
    fn kind(&self) -> (&'static str, &'static str) {
        match self {
            Self::MissingToken | Self::InvalidToken => ("invalid-token", "Unauthorized"),
            Self::InsufficientScope => ("insufficient-scope", "Forbidden"),
            Self::BadRequest(_) => ("bad-request", "Bad request"),
            Self::NotFound(_) => ("not-found", "Not found"),
            Self::MethodNotAllowed(_) => ("method-not-allowed", "Method not allowed"),
            Self::Conflict(_) => ("conflict", "Conflict"),
            Self::PreconditionRequired => ("precondition-required", "Precondition required"),
            Self::PreconditionFailed { .. } => ("precondition-failed", "Precondition failed"),
            Self::TooLarge(_) => ("payload-too-large", "Payload too large"),
            Self::UnsupportedMediaType => ("unsupported-media-type", "Unsupported media type"),
            Self::Unavailable(_) => ("unavailable", "Service unavailable"),
            Self::Internal(_) => ("internal", "Internal server error"),
        }
    }

    fn detail(&self) -> String {
        match self {
            Self::MissingToken => "a bearer access token is required".into(),
            Self::InvalidToken => {
                "the access token is expired, revoked, malformed or invalid".into()
            }
            Self::InsufficientScope => format!(
                "a client's access token with the {} scope is required",
                super::ADMIN_SCOPE
            ),
            Self::BadRequest(detail) | Self::NotFound(detail) | Self::Conflict(detail) => {
                detail.clone()
            }
            Self::MethodNotAllowed(allow) => format!("this resource allows {allow}"),
            Self::PreconditionRequired => {
                "this update needs If-Match with the ETag of the version it replaces".into()
            }
            Self::PreconditionFailed { current } => {
                format!("the resource has changed; its current version is \"{current}\"")
            }
            Self::TooLarge(limit) => format!("the body exceeds {limit} bytes"),
            Self::UnsupportedMediaType => "the body must be application/json".into(),
            Self::Unavailable(_) => "the service is temporarily unavailable".into(),
            Self::Internal(_) => "the request could not be completed".into(),
        }
    }

    /// The body this problem is rendered with.
    pub fn body(&self) -> ProblemBody {
        let (kind, title) = self.kind();
        ProblemBody {
            kind: format!("urn:umbra:problem:{kind}"),
            title,
            status: self.status_code().as_u16(),
            detail: self.detail(),
        }
    }

    /// A JSON body that did not decode, in words that never repeat its values.
    pub fn of_json(err: JsonPayloadError) -> Self {
        match err {
            JsonPayloadError::Overflow { limit }
            | JsonPayloadError::OverflowKnownLength { limit, .. } => Self::TooLarge(limit),
            JsonPayloadError::ContentType => Self::UnsupportedMediaType,
            JsonPayloadError::Deserialize(err) => match ApiError::invalid_json(&err) {
                ApiError::InvalidRequest(detail) => Self::BadRequest(detail),
                _ => Self::bad_request("the JSON body is invalid"),
            },
            _ => Self::bad_request("the body could not be read"),
        }
    }

    /// Query parameters that did not decode, in words that never repeat their values.
    pub fn of_query(err: QueryPayloadError) -> Self {
        let QueryPayloadError::Deserialize(err) = err else {
            return Self::bad_request("the query string is invalid");
        };
        match PageError::invalid_form(&UrlencodedError::Parse(err)) {
            PageError::BadRequest(detail) => {
                Self::BadRequest(detail.replacen("The form is invalid", "The query is invalid", 1))
            }
            _ => Self::bad_request("the query string is invalid"),
        }
    }
}

/// Extractor error handlers that answer with problems rather than actix's plain text.
pub fn json_error(err: JsonPayloadError, _: &HttpRequest) -> actix_web::Error {
    Problem::of_json(err).into()
}

pub fn query_error(err: QueryPayloadError, _: &HttpRequest) -> actix_web::Error {
    Problem::of_query(err).into()
}

/// A path segment that is not an id of the right shape names nothing.
pub fn path_error(_: PathError, _: &HttpRequest) -> actix_web::Error {
    Problem::not_found("no such resource").into()
}

impl From<StoreError> for Problem {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::Unavailable(_) | StoreError::Contended(_) => {
                Self::Unavailable(err.to_string())
            }
            StoreError::Conflict(message) => Self::Conflict(message),
            StoreError::Gone(_) => {
                Self::not_found("what this request refers to was deleted meanwhile")
            }
            _ => Self::Internal(err.to_string()),
        }
    }
}

impl From<PasswordError> for Problem {
    fn from(err: PasswordError) -> Self {
        match err {
            PasswordError::Busy => Self::Unavailable(err.to_string()),
            other => Self::internal(other),
        }
    }
}

impl From<FactorError> for Problem {
    fn from(err: FactorError) -> Self {
        match err {
            FactorError::Store(err) => err.into(),
            FactorError::NotFound | FactorError::NotEnrolling => Self::not_found(err.to_string()),
            FactorError::Invalid(message) => Self::BadRequest(message),
            FactorError::Conflict(message) => Self::Conflict(message),
            FactorError::Busy => Self::Unavailable(err.to_string()),
            other => Self::internal(other),
        }
    }
}

impl ResponseError for Problem {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::MissingToken | Self::InvalidToken => StatusCode::UNAUTHORIZED,
            Self::InsufficientScope => StatusCode::FORBIDDEN,
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::PreconditionRequired => StatusCode::PRECONDITION_REQUIRED,
            Self::PreconditionFailed { .. } => StatusCode::PRECONDITION_FAILED,
            Self::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        if let Self::Unavailable(cause) | Self::Internal(cause) = self {
            tracing::error!(cause = %cause, "admin request failed");
        }
        let body = self.body();
        let mut response = HttpResponse::build(self.status_code());
        response
            .content_type(PROBLEM_JSON)
            .insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-store")));
        let realm = "Bearer realm=\"umbra-admin\"";
        let challenge = match self {
            Self::MissingToken => Some(realm.to_owned()),
            Self::InvalidToken => Some(format!("{realm}, error=\"invalid_token\"")),
            Self::InsufficientScope => Some(format!(
                "{realm}, error=\"insufficient_scope\", scope=\"{}\"",
                super::ADMIN_SCOPE
            )),
            _ => None,
        };
        if let Some(value) = challenge.and_then(|c| HeaderValue::from_str(&c).ok()) {
            response.insert_header((header::WWW_AUTHENTICATE, value));
        }
        if let Self::Unavailable(_) = self {
            response.insert_header((header::RETRY_AFTER, HeaderValue::from_static("5")));
        }
        if let Self::MethodNotAllowed(allow) = self
            && let Ok(value) = HeaderValue::from_str(allow)
        {
            response.insert_header((header::ALLOW, value));
        }
        response.body(serde_json::to_string(&body).unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_problem_is_problem_json_with_the_four_members() {
        let response = Problem::PreconditionFailed { current: 7 }.error_response();
        assert_eq!(response.status(), StatusCode::PRECONDITION_FAILED);
        assert_eq!(
            response.headers().get(header::CONTENT_TYPE).unwrap(),
            PROBLEM_JSON
        );
        let body = Problem::PreconditionFailed { current: 7 }.body();
        assert_eq!(body.kind, "urn:umbra:problem:precondition-failed");
        assert_eq!(body.status, 412);
        assert!(body.detail.contains("\"7\""), "{}", body.detail);
    }

    #[test]
    fn an_outage_says_nothing_of_its_cause() {
        let cause = sea_orm::DbErr::Conn(sea_orm::RuntimeErr::Internal("secret host".into()));
        let problem = Problem::from(StoreError::Unavailable(cause));
        assert_eq!(problem.status_code(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(!problem.body().detail.contains("secret host"));
    }
}
