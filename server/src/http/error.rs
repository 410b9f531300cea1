//! The one place where OAuth errors become HTTP responses (RFC 6749 §5.2).
//!
//! Also where a body that did not decode is described to its sender: serde's messages quote
//! the offending value, which may be a code or a password, so they never reach a response or
//! the log as they are ([`ApiError::invalid_json`], [`PageError::invalid_form`]).
use crate::oauth::OAuthError;
use crate::oauth::error::description_safe;
use crate::second_factor::FactorError;
use crate::store::StoreError;
use actix_web::error::UrlencodedError;
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
        if self.bearer_challenge() {
            // The description is in the RFC 6749 §5.2 set: safe inside a quoted-string.
            let challenge = format!(
                "Bearer realm=\"umbra\", error=\"{}\", error_description=\"{}\"",
                self.code().as_str(),
                self.description()
            );
            if let Ok(value) = HeaderValue::from_str(&challenge) {
                response.insert_header((header::WWW_AUTHENTICATE, value));
            }
        }
        match self.retry_after() {
            Some(secs) => {
                response.insert_header((header::RETRY_AFTER, secs.to_string()));
            }
            None if status == StatusCode::SERVICE_UNAVAILABLE => {
                response.insert_header((header::RETRY_AFTER, HeaderValue::from_static("5")));
            }
            None => {}
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
            StoreError::Unavailable(_) | StoreError::Contended(_) => {
                OAuthError::temporarily_unavailable(err)
            }
            // The protocol endpoints write only on behalf of the authenticated client; a row
            // they refer to that is gone means the client was deleted meanwhile.
            StoreError::Gone(_) => {
                OAuthError::invalid_client("the client is not registered").with_cause(err)
            }
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
    /// Every password verification slot is busy: come back in a moment (503, not a queue).
    #[error("too busy")]
    Busy,
    #[error("internal: {0}")]
    Internal(String),
}

impl From<crate::auth::password::PasswordError> for PageError {
    fn from(err: crate::auth::password::PasswordError) -> Self {
        match err {
            crate::auth::password::PasswordError::Busy => Self::Busy,
            other => Self::internal(other),
        }
    }
}

impl From<crate::auth::limiter::Refused> for PageError {
    fn from(refused: crate::auth::limiter::Refused) -> Self {
        match refused {
            crate::auth::limiter::Refused::TooMany(wait) => Self::TooManyAttempts {
                retry_after_secs: wait.as_secs().max(1),
            },
            crate::auth::limiter::Refused::Password(err) => err.into(),
            crate::auth::limiter::Refused::Store(err) => err.into(),
        }
    }
}

impl PageError {
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::BadRequest(message.into())
    }

    /// A form that did not decode, described without its content.
    pub fn invalid_form(err: &UrlencodedError) -> Self {
        let problem = match err {
            UrlencodedError::Parse(err) => body_problem(&err.to_string()),
            UrlencodedError::Overflow { limit, .. } => format!("it exceeds {limit} bytes"),
            _ => "it could not be read".to_owned(),
        };
        Self::BadRequest(format!("The form is invalid: {problem}."))
    }

    pub fn internal(cause: impl std::fmt::Display) -> Self {
        Self::Internal(cause.to_string())
    }

    pub fn too_many_attempts(retry_after_secs: i64) -> Self {
        Self::TooManyAttempts {
            retry_after_secs: u64::try_from(retry_after_secs).unwrap_or(1).max(1),
        }
    }
}

/// Second-factor failures a page did not handle itself: the expected ones are the page's to
/// render; what is left is a lock, bad input, or an outage.
impl From<FactorError> for PageError {
    fn from(err: FactorError) -> Self {
        match err {
            FactorError::Locked { retry_after_secs } => Self::too_many_attempts(retry_after_secs),
            FactorError::Busy => Self::Busy,
            FactorError::Store(err) => err.into(),
            FactorError::Internal(_) | FactorError::Send(_) => Self::internal(err),
            other => Self::bad_request(capitalize(&other.to_string())),
        }
    }
}

/// A service message (lower case, no stop, as the JSON API words it) as a sentence for a page.
pub(crate) fn capitalize(message: &str) -> String {
    let mut chars = message.chars();
    match chars.next() {
        Some(first) => format!("{}{}.", first.to_uppercase(), chars.as_str()),
        None => String::new(),
    }
}

impl From<StoreError> for PageError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::Unavailable(_) | StoreError::Contended(_) => {
                Self::Unavailable(err.to_string())
            }
            StoreError::Gone(_) => Self::bad_request(
                "What this page refers to no longer exists: it was deleted meanwhile.",
            ),
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
            Self::Unavailable(_) | Self::Busy => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        let (title, message): (&str, std::borrow::Cow<str>) = match self {
            Self::BadRequest(message) => ("Invalid request", message.as_str().into()),
            Self::Forbidden => (
                "Form expired",
                "This form has expired or was not sent from this site. Go back, reload the page and try again.".into(),
            ),
            Self::TooManyAttempts { retry_after_secs } => (
                "Too many attempts",
                format!(
                    "There were too many sign-in attempts or wrong codes, so sign-in is paused. \
                     Try again in {}.",
                    wait_in_words(*retry_after_secs)
                )
                .into(),
            ),
            Self::Unavailable(cause) => {
                tracing::error!(cause = %cause, "page unavailable");
                (
                    "Temporarily unavailable",
                    "The service is temporarily unavailable. Try again shortly.".into(),
                )
            }
            // Expected under load or attack, so not an error worth a log line each.
            Self::Busy => (
                "Temporarily busy",
                "The service is busy. Try again in a moment.".into(),
            ),
            Self::Internal(cause) => {
                tracing::error!(cause = %cause, "page failed");
                (
                    "Something went wrong",
                    "The request could not be completed. Try again later.".into(),
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
            Self::Busy => Some(HeaderValue::from_static("1")),
            _ => None,
        };
        if let Some(value) = retry_after {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        response
    }
}

/// A wait of `secs` seconds as a person reads it: seconds under a minute, then whole minutes,
/// then hours and minutes. Always rounded up, so that whoever waits as long as the page says
/// is let in.
pub(crate) fn wait_in_words(secs: u64) -> String {
    fn count(n: u64, unit: &str) -> String {
        if n == 1 {
            format!("1 {unit}")
        } else {
            format!("{n} {unit}s")
        }
    }
    if secs < 60 {
        return count(secs.max(1), "second");
    }
    let minutes = secs.div_ceil(60);
    match (minutes / 60, minutes % 60) {
        (0, minutes) => count(minutes, "minute"),
        (hours, 0) => count(hours, "hour"),
        (hours, minutes) => format!("{} and {}", count(hours, "hour"), count(minutes, "minute")),
    }
}

/// Errors of the bearer-token JSON API (`/api/account/…`), RFC 6750 §3.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// No credentials: `401` with a bare challenge and no error code (RFC 6750 §3.1).
    #[error("no bearer token")]
    MissingToken,
    /// "The access token provided is expired, revoked, malformed, or invalid" (§3.1).
    #[error("invalid token")]
    InvalidToken,
    /// "The request requires higher privileges than provided by the access token" (§3.1):
    /// a user's token with this scope is needed.
    #[error("insufficient scope")]
    InsufficientScope(&'static str),
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    #[error("invalid code: {0}")]
    InvalidCode(String),
    #[error("not found")]
    NotFound,
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("too many requests")]
    TooManyRequests { retry_after_secs: i64 },
    #[error("unavailable: {0}")]
    Unavailable(String),
    #[error("internal: {0}")]
    Internal(String),
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::Unavailable(_) | StoreError::Contended(_) => {
                Self::Unavailable(err.to_string())
            }
            // The API writes only for the token's user: gone means the account was deleted.
            StoreError::Gone(_) => Self::InvalidToken,
            _ => Self::Internal(err.to_string()),
        }
    }
}

impl ApiError {
    /// A JSON body that did not decode: `invalid_request` naming the problem, never the value.
    pub fn invalid_json(err: &serde_json::Error) -> Self {
        Self::InvalidRequest(json_problem(err))
    }

    fn code_and_description(&self) -> (&'static str, String) {
        match self {
            Self::MissingToken => (
                "invalid_request",
                "a bearer access token is required".into(),
            ),
            Self::InvalidToken => (
                "invalid_token",
                "the access token is expired, revoked, malformed or invalid".into(),
            ),
            Self::InsufficientScope(scope) => (
                "insufficient_scope",
                format!("a user's access token with the {scope} scope is required"),
            ),
            Self::InvalidRequest(message) => ("invalid_request", message.clone()),
            Self::InvalidCode(message) => ("invalid_code", message.clone()),
            Self::NotFound => ("not_found", "no such factor or enrolment".into()),
            Self::Conflict(message) => ("conflict", message.clone()),
            Self::TooManyRequests { .. } => (
                "too_many_requests",
                "too many attempts or codes; wait and try again".into(),
            ),
            Self::Unavailable(_) => (
                "temporarily_unavailable",
                "the service is temporarily unavailable".into(),
            ),
            Self::Internal(_) => ("server_error", "the request could not be completed".into()),
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::MissingToken | Self::InvalidToken => StatusCode::UNAUTHORIZED,
            Self::InsufficientScope(_) => StatusCode::FORBIDDEN,
            Self::InvalidRequest(_) => StatusCode::BAD_REQUEST,
            Self::InvalidCode(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        if let Self::Unavailable(cause) | Self::Internal(cause) = self {
            tracing::error!(cause = %cause, "API request failed");
        }
        let (code, description) = self.code_and_description();
        // RFC 6750 §3 limits error_description to the RFC 6749 §5.2 set, which is also safe
        // inside a quoted-string (no `"` or `\\`).
        let description = description_safe(description.into());
        let quoted = &description;
        let realm = "Bearer realm=\"umbra\"";
        let challenge = match self {
            Self::MissingToken => Some(realm.to_owned()),
            Self::InvalidToken | Self::InvalidRequest(_) => Some(format!(
                "{realm}, error=\"{code}\", error_description=\"{quoted}\""
            )),
            Self::InsufficientScope(scope) => Some(format!(
                "{realm}, error=\"{code}\", error_description=\"{quoted}\", scope=\"{scope}\""
            )),
            _ => None,
        };
        let mut response = HttpResponse::build(status);
        response
            .insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-store")))
            .insert_header((header::PRAGMA, HeaderValue::from_static("no-cache")));
        if let Some(value) = challenge.and_then(|c| HeaderValue::from_str(&c).ok()) {
            response.insert_header((header::WWW_AUTHENTICATE, value));
        }
        let retry_after = match self {
            Self::TooManyRequests { retry_after_secs } => {
                Some(retry_after_secs.max(&1).to_string())
            }
            Self::Unavailable(_) => Some("5".to_owned()),
            _ => None,
        };
        if let Some(value) = retry_after.and_then(|v| HeaderValue::from_str(&v).ok()) {
            response.insert_header((header::RETRY_AFTER, value));
        }
        response.json(ErrorBody {
            error: code,
            error_description: &description,
        })
    }
}

/// `the JSON body is invalid: …`, naming the problem, never the value.
pub fn json_problem(err: &serde_json::Error) -> String {
    use serde_json::error::Category;
    let problem = match err.classify() {
        Category::Data => body_problem(&err.to_string()),
        // serde_json's syntax messages are fixed texts; only the position is added.
        Category::Syntax | Category::Eof => format!(
            "it is not valid JSON (line {}, column {})",
            err.line(),
            err.column()
        ),
        Category::Io => "it could not be read".to_owned(),
    };
    format!("the JSON body is invalid: {problem}")
}

/// What is wrong with a body that serde refused, in words that never repeat the body.
///
/// serde's messages quote the offending input (``invalid type: integer `123456`, expected a
/// string``, ``unknown variant `hunter2` ``), and the input may be a code or a password. Kept:
/// the kind of problem, what the type expected (written by the type, not the sender), and the
/// field name where serde names a field of the type (missing or duplicate field).
fn body_problem(message: &str) -> String {
    let message = message.split(" at line ").next().unwrap_or_default();
    let from_the_type = ["missing field `", "duplicate field `"];
    if from_the_type.iter().any(|p| message.starts_with(p)) && !message.contains(',') {
        return description_safe(message.to_owned().into()).into_owned();
    }
    let kinds = [
        ("invalid type", "a value has the wrong type"),
        ("invalid value", "a value is invalid"),
        ("invalid length", "a value has the wrong length"),
        ("unknown field", "an unknown field"),
        ("unknown variant", "an unknown variant"),
    ];
    let kind = kinds
        .iter()
        .find(|(prefix, _)| message.starts_with(prefix))
        .map_or("a value is invalid", |(_, kind)| kind);
    // serde writes "<unexpected>, expected <expectation>": the last one is the type's.
    match message.rsplit_once(", expected ") {
        Some((_, expected)) => {
            description_safe(format!("{kind}, expected {expected}").into()).into_owned()
        }
        None => kind.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        code: String,
        #[serde(default)]
        password: Option<String>,
        #[serde(default)]
        kind: Option<Kind>,
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(rename_all = "lowercase")]
    enum Kind {
        Totp,
    }

    /// What the response and the log get of the error: its Display (the description and the
    /// request span's `exception.message`) and its Debug (`exception.details`).
    fn described(json: &str) -> String {
        let err = ApiError::invalid_json(&serde_json::from_str::<Body>(json).unwrap_err());
        format!("{err} {err:?} {}", err.code_and_description().1)
    }

    #[test]
    fn a_sign_in_limit_that_cannot_be_read_is_the_outage_page_not_a_verdict() {
        use crate::auth::limiter::Refused;
        let outage = || sea_orm::DbErr::Conn(sea_orm::RuntimeErr::Internal("gone".into()));

        let page = PageError::from(Refused::Store(StoreError::Unavailable(outage())));
        let raced = PageError::from(Refused::Store(StoreError::Contended(outage())));

        assert_eq!(page.status_code(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(raced.status_code(), StatusCode::SERVICE_UNAVAILABLE);
        let response = page.error_response();
        assert_eq!(response.headers().get(header::RETRY_AFTER).unwrap(), "5");
    }

    #[test]
    fn a_json_type_error_names_the_problem_but_never_the_value() {
        for (json, secret) in [
            (r#"{"code": 123456}"#, "123456"),
            (r#"{"code": 987654.5}"#, "987654"),
            (r#"{"code": "x", "password": 424242}"#, "424242"),
            (r#"{"code": "x", "password": ["hunter2"]}"#, "hunter2"),
            (r#"{"code": "x", "kind": "hunter2"}"#, "hunter2"),
            (r#"{"hunter2": "x"}"#, "hunter2"),
            (r#"{"code": "x", "code": "hunter2"}"#, "hunter2"),
            (r#"{"code": tru"#, "tru"),
        ] {
            let text = described(json);
            assert!(!text.contains(secret), "{json} gave {text}");
            assert!(text.contains("the JSON body is invalid"), "{text}");
        }
        assert!(described(r#"{"code": 123456}"#).contains("wrong type, expected a string"));
        assert!(described("{}").contains("missing field `code`"));
    }

    #[test]
    fn a_form_error_names_the_problem_but_never_the_value() {
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct Form {
            attempts: u32,
        }
        let err = serde_urlencoded::from_str::<Form>("attempts=hunter2").unwrap_err();
        let err = PageError::invalid_form(&UrlencodedError::Parse(err));
        let text = format!("{err} {err:?}");
        assert!(!text.contains("hunter2"), "{text}");
        assert!(text.contains("The form is invalid"), "{text}");
    }

    /// Log lines written under a thread-local subscriber.
    #[derive(Clone, Default)]
    struct Logs(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for Logs {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// The request logging of the app (TracingLogger with Umbra's root span, span closes
    /// logged with their fields as `telemetry::init` does) around a handler that decodes a
    /// JSON body as the account API does; returns the answer and every log line.
    async fn post_logged(json: &'static str) -> (u16, String, String) {
        use actix_web::{App, test, web};
        use tracing_subscriber::fmt::format::FmtSpan;
        let logs = Logs::default();
        let writer = logs.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .with_max_level(tracing::Level::TRACE)
            .with_span_events(FmtSpan::CLOSE)
            .finish();
        let _guard = tracing::subscriber::set_default(subscriber);
        let app = test::init_service(
            App::new()
                .wrap(tracing_actix_web::TracingLogger::<
                    crate::telemetry::RequestSpan,
                >::new())
                .route(
                    "/",
                    web::post().to(|body: web::Bytes| async move {
                        serde_json::from_slice::<Body>(&body)
                            .map(|_| HttpResponse::Ok().finish())
                            .map_err(|e| ApiError::invalid_json(&e))
                    }),
                ),
        )
        .await;
        let request = test::TestRequest::post()
            .uri("/")
            .set_payload(json)
            .to_request();
        let response = test::call_service(&app, request).await;
        let status = response.status().as_u16();
        let body = test::read_body(response).await;
        drop(app);
        let logged = String::from_utf8_lossy(&logs.0.lock().unwrap()).into_owned();
        (status, String::from_utf8_lossy(&body).into_owned(), logged)
    }

    #[actix_web::test]
    async fn neither_the_answer_nor_the_log_of_a_refused_json_body_holds_its_value() {
        for (json, secret) in [
            (r#"{"code": 123456}"#, "123456"),
            (r#"{"code": "x", "password": 424242}"#, "424242"),
            (r#"{"code": "x", "kind": "hunter2"}"#, "hunter2"),
        ] {
            // What serde says on its own, and what used to reach the answer and the log.
            let raw = serde_json::from_str::<Body>(json).unwrap_err().to_string();
            assert!(raw.contains(secret), "{raw}");

            let (status, body, logged) = post_logged(json).await;

            assert_eq!(status, 400);
            assert!(body.contains("the JSON body is invalid"), "{body}");
            assert!(
                logged.contains("the JSON body is invalid"),
                "the error is logged: {logged}"
            );
            assert!(!body.contains(secret), "{body}");
            assert!(!logged.contains(secret), "{logged}");
        }
    }

    #[test]
    fn a_wait_is_said_in_the_largest_units_rounded_up() {
        for (secs, words) in [
            (0, "1 second"),
            (1, "1 second"),
            (45, "45 seconds"),
            (60, "1 minute"),
            (61, "2 minutes"),
            (119, "2 minutes"),
            (120, "2 minutes"),
            (900, "15 minutes"),
            (3600, "1 hour"),
            (3601, "1 hour and 1 minute"),
            (7260, "2 hours and 1 minute"),
            (86_400, "24 hours"),
        ] {
            assert_eq!(wait_in_words(secs), words, "{secs} s");
        }
    }

    #[test]
    fn the_too_many_attempts_page_says_how_long_to_wait() {
        let response = PageError::TooManyAttempts {
            retry_after_secs: 95,
        }
        .error_response();
        assert_eq!(response.headers().get(header::RETRY_AFTER).unwrap(), "95");
        let body = actix_web::body::to_bytes(response.into_body());
        let body = futures_util::FutureExt::now_or_never(body)
            .unwrap()
            .unwrap();
        let page = String::from_utf8_lossy(&body);
        assert!(page.contains("Try again in 2 minutes."), "{page}");
    }

    #[test]
    fn api_error_descriptions_stay_in_the_rfc_6749_charset() {
        let err = ApiError::InvalidRequest("a \"quoted\" \\ caf\u{e9}".into());
        let response = err.error_response();
        let challenge = response
            .headers()
            .get(header::WWW_AUTHENTICATE)
            .unwrap()
            .to_str()
            .unwrap();
        assert!(
            challenge.ends_with(r#"error_description="a 'quoted' ? caf?""#),
            "{challenge}"
        );
    }
}
