//! The one OAuth error type (RFC 6749 §5.2), shared by every endpoint.
//!
//! It carries a client-safe description and an optional private cause that is only logged.
//! Rendering to HTTP happens in exactly one place (`http::error`). Every description is
//! brought into the RFC 6749 §5.2 character set when the error is built ([`OAuthError::new`]),
//! so no constructor and no caller can send a `"`, a `\` or a non-ASCII character.
use std::borrow::Cow;
use std::fmt;

/// Error codes of RFC 6749 §4.1.2.1 and §5.2, RFC 7009 §2.2.1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    /// "The request is missing a required parameter, includes an unsupported parameter value
    /// (other than grant type), repeats a parameter, includes multiple credentials, utilizes
    /// more than one mechanism for authenticating the client, or is otherwise malformed."
    InvalidRequest,
    /// "Client authentication failed (e.g., unknown client, no client authentication included,
    /// or unsupported authentication method)."
    InvalidClient,
    /// "The provided authorization grant (e.g., authorization code, resource owner credentials)
    /// or refresh token is invalid, expired, revoked, does not match the redirection URI used
    /// in the authorization request, or was issued to another client."
    InvalidGrant,
    /// "The authenticated client is not authorized to use this authorization grant type."
    UnauthorizedClient,
    /// "The authorization grant type is not supported by the authorization server."
    UnsupportedGrantType,
    /// "The requested scope is invalid, unknown, malformed, or exceeds the scope granted by the
    /// resource owner."
    InvalidScope,
    /// "The resource owner or authorization server denied the request."
    AccessDenied,
    /// "The authorization server does not support obtaining an authorization code using this
    /// method."
    UnsupportedResponseType,
    /// "The authorization server does not support the revocation of the presented token type."
    UnsupportedTokenType,
    /// RFC 8707 §2: "The requested resource is invalid, missing, unknown, or malformed."
    InvalidTarget,
    /// OpenID Connect Core §3.1.2.6: `prompt=none` was asked but the user is not signed in.
    LoginRequired,
    /// OpenID Connect Core §3.1.2.6: `prompt=none` was asked but consent is needed.
    ConsentRequired,
    /// OpenID Connect Core §3.1.2.6: `prompt=none` was asked but the user must do something
    /// other than sign in or consent (here: enrol a second factor the client requires).
    InteractionRequired,
    /// RFC 6750 §3.1: "The access token provided is expired, revoked, malformed, or invalid
    /// for other reasons." Here: an initial or registration access token (RFC 7591 §3,
    /// RFC 7592 §3).
    InvalidToken,
    /// RFC 7591 §3.2.2: "The value of one or more redirection URIs is invalid."
    InvalidRedirectUri,
    /// RFC 7591 §3.2.2: "The value of one of the client metadata fields is invalid and the
    /// server has rejected this request."
    InvalidClientMetadata,
    /// RFC 7591 §3.2.2: "The software statement presented is invalid."
    InvalidSoftwareStatement,
    /// RFC 7591 §3.2.2: "The software statement presented is not approved for use by this
    /// authorization server."
    UnapprovedSoftwareStatement,
    /// "The authorization server encountered an unexpected condition that prevented it from
    /// fulfilling the request."
    ServerError,
    /// "The authorization server is currently unable to handle the request due to a temporary
    /// overloading or maintenance of the server."
    TemporarilyUnavailable,
}

impl ErrorCode {
    /// The `error` value on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::InvalidClient => "invalid_client",
            Self::InvalidGrant => "invalid_grant",
            Self::UnauthorizedClient => "unauthorized_client",
            Self::UnsupportedGrantType => "unsupported_grant_type",
            Self::InvalidScope => "invalid_scope",
            Self::AccessDenied => "access_denied",
            Self::UnsupportedResponseType => "unsupported_response_type",
            Self::UnsupportedTokenType => "unsupported_token_type",
            Self::InvalidTarget => "invalid_target",
            Self::LoginRequired => "login_required",
            Self::ConsentRequired => "consent_required",
            Self::InteractionRequired => "interaction_required",
            Self::InvalidToken => "invalid_token",
            Self::InvalidRedirectUri => "invalid_redirect_uri",
            Self::InvalidClientMetadata => "invalid_client_metadata",
            Self::InvalidSoftwareStatement => "invalid_software_statement",
            Self::UnapprovedSoftwareStatement => "unapproved_software_statement",
            Self::ServerError => "server_error",
            Self::TemporarilyUnavailable => "temporarily_unavailable",
        }
    }

    /// The HTTP status RFC 6749 §5.2 gives the code: 401 for failed client authentication,
    /// 400 for the rest of the client's mistakes; 500 and 503 for the server's own trouble.
    pub fn default_status(self) -> u16 {
        match self {
            Self::InvalidClient | Self::InvalidToken => 401,
            Self::ServerError => 500,
            Self::TemporarilyUnavailable => 503,
            _ => 400,
        }
    }
}

/// An OAuth error response: code, client-safe description, HTTP status and, privately, the
/// cause that is logged but never sent.
pub struct OAuthError {
    code: ErrorCode,
    description: Cow<'static, str>,
    status: u16,
    cause: Option<String>,
    /// Seconds a refused caller should wait (`Retry-After`); `None`: the default of its status.
    retry_after: Option<u64>,
}

/// Whether `c` may appear in an `error_description`: "Values for the "error_description"
/// parameter MUST NOT include characters outside the set %x20-21 / %x23-5B / %x5D-7E"
/// (RFC 6749 §5.2; RFC 6750 §3 says the same of the bearer challenge).
pub fn is_description_char(c: char) -> bool {
    matches!(c, '\x20'..='\x21' | '\x23'..='\x5B' | '\x5D'..='\x7E')
}

/// `text` within the `error_description` character set: `"` becomes `'`, any other character
/// outside it (`\`, controls, non-ASCII) becomes `?`. Borrowed text that is already clean is
/// returned as it is.
pub fn description_safe(text: Cow<'static, str>) -> Cow<'static, str> {
    if text.chars().all(is_description_char) {
        return text;
    }
    text.chars()
        .map(|c| match c {
            '"' => '\'',
            c if is_description_char(c) => c,
            _ => '?',
        })
        .collect::<String>()
        .into()
}

impl OAuthError {
    /// An error with `code` and `description`; the description is brought into the RFC 6749
    /// §5.2 character set here, the one place every error passes through.
    pub fn new(code: ErrorCode, description: impl Into<Cow<'static, str>>) -> Self {
        Self {
            code,
            description: description_safe(description.into()),
            status: code.default_status(),
            cause: None,
            retry_after: None,
        }
    }

    pub fn invalid_request(description: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorCode::InvalidRequest, description)
    }

    pub fn invalid_client(description: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorCode::InvalidClient, description)
    }

    pub fn invalid_grant(description: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorCode::InvalidGrant, description)
    }

    pub fn invalid_scope(description: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorCode::InvalidScope, description)
    }

    pub fn unauthorized_client(description: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorCode::UnauthorizedClient, description)
    }

    /// An internal failure: the client learns nothing but `server_error`; the cause is logged.
    pub fn server_error(cause: impl fmt::Display) -> Self {
        Self::new(ErrorCode::ServerError, "internal error").with_cause(cause)
    }

    /// The database (or another dependency) cannot be reached right now.
    pub fn temporarily_unavailable(cause: impl fmt::Display) -> Self {
        Self::new(
            ErrorCode::TemporarilyUnavailable,
            "the service is temporarily unavailable, retry later",
        )
        .with_cause(cause)
    }

    /// Overrides the status RFC 6749 gives the code (e.g. 413 for an oversized body).
    pub fn with_status(mut self, status: u16) -> Self {
        self.status = status;
        self
    }

    /// Too many requests from one caller: 429 with how long to wait.
    pub fn too_many_requests(description: impl Into<Cow<'static, str>>, wait_secs: u64) -> Self {
        let mut error = Self::new(ErrorCode::InvalidRequest, description).with_status(429);
        error.retry_after = Some(wait_secs.max(1));
        error
    }

    /// How long the caller should wait before trying again, if the error says.
    pub fn retry_after(&self) -> Option<u64> {
        self.retry_after
    }

    /// Attaches a private cause, logged and never sent to the client.
    pub fn with_cause(mut self, cause: impl fmt::Display) -> Self {
        self.cause = Some(cause.to_string());
        self
    }

    pub fn code(&self) -> ErrorCode {
        self.code
    }

    pub fn description(&self) -> &str {
        &self.description
    }

    pub fn status(&self) -> u16 {
        self.status
    }

    /// Whether the response carries `WWW-Authenticate: Basic`: every 401 but a bearer
    /// token's does. RFC 6749 §5.2 requires it when the client used the Authorization header,
    /// and RFC 9110 §15.5.2 of any 401 ("The server generating a 401 response MUST send a
    /// WWW-Authenticate header field"), so a client that sent its credentials in the body
    /// learns the same way that Basic is accepted.
    pub fn basic_challenge(&self) -> bool {
        self.status == 401 && !self.bearer_challenge()
    }

    /// Whether the response carries `WWW-Authenticate: Bearer` with the error (RFC 6750 §3):
    /// a bearer token was refused.
    pub fn bearer_challenge(&self) -> bool {
        self.code == ErrorCode::InvalidToken
    }

    pub fn cause(&self) -> Option<&str> {
        self.cause.as_deref()
    }
}

impl fmt::Debug for OAuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OAuthError")
            .field("code", &self.code.as_str())
            .field("description", &self.description)
            .field("status", &self.status)
            .field("cause", &self.cause)
            .finish()
    }
}

impl fmt::Display for OAuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code.as_str(), self.description)
    }
}

impl std::error::Error for OAuthError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_client_authentication_is_401_and_the_rest_of_client_errors_400() {
        assert_eq!(OAuthError::invalid_client("x").status(), 401);
        assert_eq!(OAuthError::invalid_grant("x").status(), 400);
        assert_eq!(
            OAuthError::invalid_request("x").with_status(413).status(),
            413
        );
    }

    const ALL_CODES: [ErrorCode; 19] = [
        ErrorCode::InvalidToken,
        ErrorCode::InvalidRedirectUri,
        ErrorCode::InvalidClientMetadata,
        ErrorCode::InvalidSoftwareStatement,
        ErrorCode::UnapprovedSoftwareStatement,
        ErrorCode::InvalidRequest,
        ErrorCode::InvalidClient,
        ErrorCode::InvalidGrant,
        ErrorCode::UnauthorizedClient,
        ErrorCode::UnsupportedGrantType,
        ErrorCode::InvalidScope,
        ErrorCode::AccessDenied,
        ErrorCode::UnsupportedResponseType,
        ErrorCode::UnsupportedTokenType,
        ErrorCode::LoginRequired,
        ErrorCode::ConsentRequired,
        ErrorCode::InteractionRequired,
        ErrorCode::ServerError,
        ErrorCode::TemporarilyUnavailable,
    ];

    const HOSTILE: &str = "grant \"x\" with \\ back\u{7f}slash, caf\u{e9}\r\nand a tab\t";

    fn in_charset(description: &str) -> bool {
        description.chars().all(is_description_char)
    }

    #[test]
    fn every_constructor_and_code_yields_a_description_in_the_rfc_6749_charset() {
        let built = [
            OAuthError::invalid_request(HOSTILE),
            OAuthError::invalid_client(HOSTILE),
            OAuthError::invalid_grant(HOSTILE),
            OAuthError::invalid_scope(HOSTILE),
            OAuthError::unauthorized_client(HOSTILE),
            OAuthError::server_error(HOSTILE),
            OAuthError::temporarily_unavailable(HOSTILE),
            OAuthError::invalid_request(HOSTILE.to_owned()).with_status(413),
            OAuthError::invalid_request(HOSTILE).with_cause(HOSTILE),
        ];
        let by_code = ALL_CODES
            .iter()
            .map(|code| OAuthError::new(*code, HOSTILE.to_owned()));
        for err in built.into_iter().chain(by_code) {
            assert!(in_charset(err.description()), "{err:?}");
            assert!(!err.description().is_empty());
        }
    }

    #[test]
    fn a_clean_description_is_kept_and_a_dirty_one_readable() {
        let clean = OAuthError::invalid_grant("the code is invalid or expired");
        assert_eq!(clean.description(), "the code is invalid or expired");
        assert!(matches!(clean.description, Cow::Borrowed(_)));
        let dirty = OAuthError::invalid_request("grant type \"a\\b\" is not supported");
        assert_eq!(dirty.description(), "grant type 'a?b' is not supported");
    }

    #[test]
    fn the_charset_is_exactly_the_one_of_rfc_6749() {
        for byte in 0u8..=0x7F {
            let allowed = matches!(byte, 0x20..=0x21 | 0x23..=0x5B | 0x5D..=0x7E);
            assert_eq!(is_description_char(char::from(byte)), allowed, "{byte:#x}");
        }
        assert!(!is_description_char('\u{e9}'));
    }

    #[test]
    fn every_401_carries_one_challenge_and_nothing_else_does() {
        for code in ALL_CODES {
            let err = OAuthError::new(code, "x");
            let challenges = [err.basic_challenge(), err.bearer_challenge()];
            let expected = usize::from(err.status() == 401);
            assert_eq!(
                challenges.iter().filter(|c| **c).count(),
                expected,
                "{code:?}"
            );
        }
        assert!(OAuthError::new(ErrorCode::InvalidToken, "x").bearer_challenge());
        assert!(
            OAuthError::invalid_request("x")
                .with_status(401)
                .basic_challenge()
        );
    }

    #[test]
    fn a_server_error_hides_its_cause_from_the_description() {
        let err = OAuthError::server_error("connection refused to 10.0.0.1");
        assert_eq!(err.description(), "internal error");
        assert_eq!(err.cause(), Some("connection refused to 10.0.0.1"));
    }
}
