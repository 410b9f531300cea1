//! Why a request was refused, and how RFC 6750 §3 says to answer it.
//!
//! The mapping is framework-free ([`GuardError::status`], [`GuardError::challenge`],
//! [`GuardError::code`], [`GuardError::description`]) so that any HTTP stack can render it;
//! the `actix` module renders it for actix-web.
use crate::scopes::ScopeRequirement;

/// The `realm` of every challenge: RFC 6750 §3 wants at least one auth-param after `Bearer`,
/// and a bare `Bearer` is all a request without credentials may be told (§3.1).
pub const REALM: &str = "umbra";

/// A request the guard does not let through. Every variant refuses the request: there is no
/// "fail open".
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GuardError {
    /// The request carries no bearer credentials: no `Authorization` header, or one of
    /// another scheme. Answered 401 with `WWW-Authenticate: Bearer realm="umbra"` and nothing
    /// else: "If the request lacks any authentication information (e.g., the client was
    /// unaware that authentication is necessary or attempted using an unsupported
    /// authentication method), the resource server SHOULD NOT include an error code or other
    /// error information" (RFC 6750 §3.1).
    #[error("the request carries no bearer token")]
    MissingToken,
    /// The `Authorization` header is `Bearer` but not `Bearer <b64token>` (RFC 6750 §2.1):
    /// 401 `invalid_token`. A repeated header is 400 `invalid_request`.
    #[error("malformed bearer credentials: {0}")]
    Malformed(Malformed),
    /// The authorization server says the token is not active: unknown, revoked, expired
    /// there, or not an access token. 401 `invalid_token`.
    #[error("the access token is not active")]
    Inactive,
    /// The token's `exp` has passed by the resource server's own clock. 401 `invalid_token`.
    #[error("the access token has expired")]
    Expired,
    /// The token is active but not meant for the resource this guard protects: its `aud` does
    /// not name it, or it has none (RFC 8707; RFC 9700 §2.3: "The resource server MUST
    /// verify that the access token was issued for it"). Only when the introspector was given
    /// a [`resource`](crate::IntrospectorBuilder::resource). 401 `invalid_token`.
    #[error("the access token is not meant for this resource")]
    NotForThisResource,
    /// The answer's `iss` is missing or is not the issuer the introspector was given
    /// ([`issuer`](crate::IntrospectorBuilder::issuer)): a misconfiguration or the wrong
    /// server, logged as a warning. 401 `invalid_token`.
    #[error("the access token was not issued by the expected authorization server")]
    WrongIssuer,
    /// "The request requires higher privileges than provided by the access token"
    /// (RFC 6750 §3.1). 403 `insufficient_scope`, naming the required scopes.
    #[error("the access token lacks the required scope")]
    InsufficientScope(ScopeRequirement),
    /// The token could not be checked. 503 `temporarily_unavailable`: the request is refused,
    /// never let through.
    #[error("the authorization server is unavailable: {0}")]
    Unavailable(#[from] Unavailable),
    /// The web framework has no introspector to ask (a programming error). 500.
    #[error("no umbra_guard::Introspector is registered with the application")]
    NotConfigured,
}

/// What is wrong with the presented credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Malformed {
    #[error("Bearer is not followed by a token")]
    Empty,
    #[error("the token is not a single b64token")]
    Syntax,
    #[error("the token is too long")]
    TooLong,
    /// "invalid_request: The request […] repeats the same parameter, uses more than one
    /// method for including an access token, or is otherwise malformed" (RFC 6750 §3.1).
    #[error("the Authorization header is repeated")]
    RepeatedHeader,
}

/// Why a token could not be checked. Logged where it happens; the client only learns that
/// the service is temporarily unavailable.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Unavailable {
    /// No answer: the connection failed (after the configured retries) or timed out.
    #[error("no answer from the authorization server: {0}")]
    Unreachable(#[source] reqwest::Error),
    /// The authorization server answered 5xx.
    #[error("the authorization server answered HTTP {0}")]
    ServerError(u16),
    /// The authorization server refused the resource server's own credentials (401) or its
    /// right to introspect (403): a configuration error.
    #[error(
        "the authorization server refused the resource server's credentials (HTTP {0}): check \
         its client id and secret, and that it was created with --introspect"
    )]
    CredentialsRefused(u16),
    /// Any other status.
    #[error("the authorization server answered HTTP {0} to an introspection request")]
    UnexpectedStatus(u16),
    /// A 200 whose body is not an RFC 7662 answer Umbra would give.
    #[error("the authorization server's answer is not a valid introspection response: {0}")]
    InvalidAnswer(String),
    /// Signed answers were asked for ([`signed_answers`](crate::IntrospectorBuilder::signed_answers))
    /// and this one is not a signed answer that verifies (RFC 9701): a misconfiguration, or
    /// an answer that did not come from Umbra as it was sent.
    #[error("the authorization server's signed answer is not acceptable: {0}")]
    Unverified(String),
    /// The key set that verifies signed answers could not be read.
    #[error("cannot read the authorization server's JWKS {0}")]
    Jwks(String),
    /// The client assertion (`private_key_jwt`) could not be signed.
    #[error("cannot sign the client assertion: {0}")]
    Assertion(String),
}

impl GuardError {
    /// The HTTP status to answer with.
    pub fn status(&self) -> u16 {
        match self {
            Self::Malformed(Malformed::RepeatedHeader) => 400,
            Self::MissingToken | Self::Malformed(_) | Self::Inactive | Self::Expired => 401,
            Self::NotForThisResource | Self::WrongIssuer => 401,
            Self::InsufficientScope(_) => 403,
            Self::Unavailable(_) => 503,
            Self::NotConfigured => 500,
        }
    }

    /// The `error` member of the JSON body (and of the challenge, when it has one).
    pub fn code(&self) -> &'static str {
        match self {
            Self::MissingToken => "unauthorized",
            Self::Malformed(Malformed::RepeatedHeader) => "invalid_request",
            Self::Malformed(_)
            | Self::Inactive
            | Self::Expired
            | Self::NotForThisResource
            | Self::WrongIssuer => "invalid_token",
            Self::InsufficientScope(_) => "insufficient_scope",
            Self::Unavailable(_) => "temporarily_unavailable",
            Self::NotConfigured => "server_error",
        }
    }

    /// A client-safe description (ASCII, no quotes, fit for a header): it never carries
    /// the token or the internal cause.
    pub fn description(&self) -> &'static str {
        match self {
            Self::MissingToken => "a bearer access token is required",
            Self::Malformed(Malformed::RepeatedHeader) => "send one Authorization header",
            Self::Malformed(_) => "the bearer token is malformed",
            Self::Inactive => "the access token is not active",
            Self::Expired => "the access token has expired",
            Self::NotForThisResource => "the access token is not meant for this resource",
            Self::WrongIssuer => {
                "the access token was not issued by the expected authorization server"
            }
            Self::InsufficientScope(ScopeRequirement::All(_)) => {
                "the access token lacks a required scope: all of the listed scopes are needed"
            }
            Self::InsufficientScope(ScopeRequirement::Any(_)) => {
                "the access token lacks a required scope: any one of the listed scopes suffices"
            }
            Self::Unavailable(_) => "the authorization server cannot be reached; try again later",
            Self::NotConfigured => "the server is misconfigured",
        }
    }

    /// The `WWW-Authenticate` value for 400, 401 and 403 answers (RFC 6750 §3), `None`
    /// otherwise.
    ///
    /// ```
    /// use umbra_guard::{GuardError, ScopeRequirement};
    ///
    /// assert_eq!(
    ///     GuardError::MissingToken.challenge().as_deref(),
    ///     Some(r#"Bearer realm="umbra""#)
    /// );
    /// let refused = GuardError::InsufficientScope(ScopeRequirement::any(["read", "admin"]));
    /// assert_eq!(
    ///     refused.challenge().unwrap(),
    ///     r#"Bearer realm="umbra", error="insufficient_scope", error_description="the access token lacks a required scope: any one of the listed scopes suffices", scope="read admin""#,
    /// );
    /// ```
    pub fn challenge(&self) -> Option<String> {
        match self {
            Self::MissingToken => Some(format!("Bearer realm=\"{REALM}\"")),
            Self::Malformed(_)
            | Self::Inactive
            | Self::Expired
            | Self::NotForThisResource
            | Self::WrongIssuer => Some(format!(
                "Bearer realm=\"{REALM}\", error=\"{}\", error_description=\"{}\"",
                self.code(),
                self.description()
            )),
            Self::InsufficientScope(requirement) => Some(format!(
                "Bearer realm=\"{REALM}\", error=\"{}\", error_description=\"{}\", scope=\"{}\"",
                self.code(),
                self.description(),
                requirement.challenge_scope()
            )),
            Self::Unavailable(_) | Self::NotConfigured => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_problems_are_401_invalid_token_with_the_code_in_the_challenge() {
        for err in [
            GuardError::Malformed(Malformed::Syntax),
            GuardError::Malformed(Malformed::TooLong),
            GuardError::Inactive,
            GuardError::Expired,
            GuardError::NotForThisResource,
            GuardError::WrongIssuer,
        ] {
            assert_eq!(err.status(), 401);
            assert_eq!(err.code(), "invalid_token");
            assert!(err.challenge().unwrap().starts_with(
                "Bearer realm=\"umbra\", error=\"invalid_token\", error_description=\""
            ));
        }
    }

    #[test]
    fn a_missing_token_gets_a_challenge_without_an_error_code() {
        assert_eq!(GuardError::MissingToken.status(), 401);
        assert_eq!(
            GuardError::MissingToken.challenge().unwrap(),
            "Bearer realm=\"umbra\""
        );
    }

    #[test]
    fn a_repeated_header_is_400_invalid_request() {
        let err = GuardError::Malformed(Malformed::RepeatedHeader);
        assert_eq!(err.status(), 400);
        assert_eq!(err.code(), "invalid_request");
        assert!(
            err.challenge()
                .unwrap()
                .contains("error=\"invalid_request\"")
        );
    }

    #[test]
    fn an_any_of_requirement_says_that_one_scope_suffices() {
        let any = GuardError::InsufficientScope(ScopeRequirement::any(["read", "admin"]));
        let all = GuardError::InsufficientScope(ScopeRequirement::all(["read", "admin"]));
        assert!(any.description().contains("any one of"));
        assert!(any.challenge().unwrap().ends_with("scope=\"read admin\""));
        assert!(all.description().contains("all of"));
    }

    #[test]
    fn an_outage_is_503_without_a_challenge() {
        let err = GuardError::from(Unavailable::ServerError(502));
        assert_eq!(err.status(), 503);
        assert_eq!(err.code(), "temporarily_unavailable");
        assert!(err.challenge().is_none());
    }

    #[test]
    fn descriptions_can_be_quoted_in_a_header() {
        let all = [
            GuardError::MissingToken,
            GuardError::Malformed(Malformed::RepeatedHeader),
            GuardError::Malformed(Malformed::TooLong),
            GuardError::Inactive,
            GuardError::Expired,
            GuardError::NotForThisResource,
            GuardError::WrongIssuer,
            GuardError::InsufficientScope(ScopeRequirement::any(["a"])),
            GuardError::InsufficientScope(ScopeRequirement::all(["a"])),
            GuardError::Unavailable(Unavailable::ServerError(500)),
            GuardError::NotConfigured,
        ];
        for err in all {
            // RFC 6750 §3: error_description is %x20-21 / %x23-5B / %x5D-7E.
            assert!(
                err.description()
                    .bytes()
                    .all(|b| matches!(b, 0x20..=0x21 | 0x23..=0x5B | 0x5D..=0x7E)),
                "{err:?}"
            );
        }
    }
}
