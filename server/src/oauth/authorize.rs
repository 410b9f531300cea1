//! The authorization request (RFC 6749 §4.1.1, RFC 7636, RFC 9700 §2.1).
//!
//! Validation order matters: until the client and its redirect URI are known to be good, an
//! error is shown to the user and never redirected ("the authorization server SHOULD inform
//! the resource owner of the error and MUST NOT automatically redirect the user-agent to the
//! invalid redirection URI", §4.1.2.1). Every later error goes back to the client.
use super::client::Client;
use super::error::{ErrorCode, OAuthError};
use super::grant_type::GrantType;
use super::oidc;
use super::params::Params;
use super::pkce;
use super::resource::{self, Audience};
use super::scope::ScopeSet;
use crate::auth::MAX_USERNAME_LEN;
use serde::{Deserialize, Serialize};

/// Longest `state` Umbra carries; the whole request travels in the session cookie.
pub const MAX_STATE_LEN: usize = 1024;

/// A validated authorization request, kept in the session while the user signs in and
/// consents.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthorizationRequest {
    pub client_id: String,
    /// The redirect URI the response goes to.
    pub redirect_uri: String,
    /// Whether the request named it (then the token request must repeat it, §4.1.3).
    pub redirect_uri_given: bool,
    pub scope: String,
    /// The resources asked for (RFC 8707), space-separated; empty for none. Requests kept
    /// in sessions from before resources existed read as none.
    #[serde(default)]
    pub audience: String,
    pub state: Option<String>,
    /// The S256 PKCE challenge.
    pub code_challenge: Option<String>,
    pub prompt: Prompt,
    /// OpenID Connect `nonce`, kept for the ID token (only when `openid` is requested).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    /// OpenID Connect `max_age`: a sign-in older than this many seconds is done again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_age: Option<i64>,
    /// OpenID Connect `login_hint`: the username the sign-in form starts with. Only a hint:
    /// nothing else trusts it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub login_hint: Option<String>,
}

impl AuthorizationRequest {
    pub fn scope_set(&self) -> ScopeSet {
        ScopeSet::from_stored(&self.scope)
    }

    pub fn audience(&self) -> Audience {
        Audience::from_stored(&self.audience)
    }
}

/// The `prompt` parameter (OpenID Connect Core §3.1.2.1), which OAuth clients use too.
///
/// `select_account` ("prompt the End-User to select a user account") shows the sign-in form,
/// where the person may sign in with another account: a session holds one account at a time,
/// so `account_selection_required` never arises.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Prompt {
    /// Fail rather than show any page.
    pub none: bool,
    /// Ask for credentials again even if the user is signed in (`login`, `select_account`).
    pub login: bool,
    /// Ask for consent again even if it was given before.
    pub consent: bool,
}

/// Why an authorization request was refused, and where the answer goes.
#[derive(Debug)]
pub enum AuthorizeError {
    /// Shown on an error page; the client and redirect URI cannot be trusted.
    Page(&'static str),
    /// Sent back to the client's redirect URI.
    Redirect(ErrorRedirect),
}

/// An error response redirected to the client (§4.1.2.1).
#[derive(Debug)]
pub struct ErrorRedirect {
    pub redirect_uri: String,
    pub state: Option<String>,
    pub error: OAuthError,
}

impl ErrorRedirect {
    /// The `Location`: `error`, `error_description`, `state` and `iss` (RFC 9207).
    pub fn location(&self, issuer: &str) -> String {
        let mut query = vec![
            ("error", self.error.code().as_str()),
            ("error_description", self.error.description()),
        ];
        if let Some(state) = &self.state {
            query.push(("state", state));
        }
        query.push(("iss", issuer));
        append_query(&self.redirect_uri, &query)
    }
}

/// The `Location` of a successful response: `code`, `state` and `iss` (RFC 9207).
pub fn success_location(request: &AuthorizationRequest, code: &str, issuer: &str) -> String {
    let mut query = vec![("code", code)];
    if let Some(state) = &request.state {
        query.push(("state", state));
    }
    query.push(("iss", issuer));
    append_query(&request.redirect_uri, &query)
}

/// Appends form-encoded parameters to a URI that may already have a query.
fn append_query(uri: &str, params: &[(&str, &str)]) -> String {
    let encoded = serde_urlencoded::to_string(params).unwrap_or_default();
    let separator = if uri.contains('?') { '&' } else { '?' };
    format!("{uri}{separator}{encoded}")
}

/// Validates a request against the client it names (`None` when no such client exists).
pub fn validate(
    params: &Params,
    client: Option<&Client>,
    require_pkce_for_all: bool,
) -> Result<AuthorizationRequest, AuthorizeError> {
    let client = client.ok_or(AuthorizeError::Page(
        "The application is not registered here.",
    ))?;
    let (redirect_uri, redirect_uri_given) = match params.get("redirect_uri") {
        Some(given) if client.accepts_redirect_uri(given) => (given.to_owned(), true),
        Some(_) => {
            return Err(AuthorizeError::Page(
                "The redirect URI is not registered for this application.",
            ));
        }
        None => match client.redirect_uris.as_slice() {
            [only] => (only.clone(), false),
            [] => {
                return Err(AuthorizeError::Page(
                    "The application has no redirect URI registered.",
                ));
            }
            _ => {
                return Err(AuthorizeError::Page(
                    "The request must name one of the application's redirect URIs.",
                ));
            }
        },
    };
    let state = params.get("state").map(str::to_owned);
    let fail = |error: OAuthError| {
        AuthorizeError::Redirect(ErrorRedirect {
            redirect_uri: redirect_uri.clone(),
            state: state.clone(),
            error,
        })
    };
    // Refused, but still echoed: "REQUIRED if a "state" parameter was present in the client
    // authorization request" (§4.1.2.1). The whole query is bounded, so the echo is too.
    if state.as_ref().is_some_and(|s| s.len() > MAX_STATE_LEN) {
        return Err(fail(OAuthError::invalid_request(format!(
            "state is longer than {MAX_STATE_LEN} characters"
        ))));
    }

    match params.get("response_type") {
        None => {
            return Err(fail(OAuthError::invalid_request(
                "missing parameter response_type",
            )));
        }
        Some("code") => {}
        Some(_) => {
            return Err(fail(OAuthError::new(
                ErrorCode::UnsupportedResponseType,
                "only response_type=code is supported",
            )));
        }
    }
    if !client.allows_grant(GrantType::AuthorizationCode) {
        return Err(fail(OAuthError::unauthorized_client(
            "this client may not use the authorization code flow",
        )));
    }
    let target = resource::resolve(client, &params.get_all("resource"), params.get("scope"))
        .map_err(fail)?;
    let code_challenge =
        pkce_challenge(params, client.is_public() || require_pkce_for_all).map_err(fail)?;
    let prompt = parse_prompt(params.get("prompt")).map_err(fail)?;
    let openid = target.scope.contains(oidc::OPENID);
    let nonce = match params.get("nonce") {
        Some(nonce) if nonce.len() > oidc::MAX_NONCE_LEN => {
            return Err(fail(OAuthError::invalid_request(format!(
                "nonce is longer than {} characters",
                oidc::MAX_NONCE_LEN
            ))));
        }
        Some(nonce) if openid => Some(nonce.to_owned()),
        _ => None,
    };
    let max_age =
        match params.get("max_age") {
            None => None,
            Some(raw) => Some(raw.parse::<i64>().ok().filter(|age| *age >= 0).ok_or_else(
                || {
                    fail(OAuthError::invalid_request(
                        "max_age must be a number of seconds",
                    ))
                },
            )?),
        };
    // A hint longer than any username names nobody; it is dropped rather than refused.
    let login_hint = params
        .get("login_hint")
        .map(str::trim)
        .filter(|hint| !hint.is_empty() && hint.chars().count() <= MAX_USERNAME_LEN)
        .map(str::to_owned);
    Ok(AuthorizationRequest {
        client_id: client.id.clone(),
        redirect_uri,
        redirect_uri_given,
        scope: target.scope.to_string(),
        audience: target.audience.to_string(),
        state,
        code_challenge,
        prompt,
        nonce,
        max_age,
        login_hint,
    })
}

fn pkce_challenge(params: &Params, required: bool) -> Result<Option<String>, OAuthError> {
    let challenge = params.get("code_challenge");
    let method = params.get("code_challenge_method");
    match (challenge, method) {
        (None, None) if required => Err(OAuthError::invalid_request(
            "PKCE is required: send code_challenge with code_challenge_method=S256",
        )),
        (None, None) => Ok(None),
        (None, Some(_)) => Err(OAuthError::invalid_request(
            "code_challenge_method without code_challenge",
        )),
        (Some(_), None) | (Some(_), Some("plain")) => Err(OAuthError::invalid_request(
            "code_challenge_method must be S256; plain is not accepted",
        )),
        (Some(challenge), Some("S256")) if pkce::is_valid_s256_challenge(challenge) => {
            Ok(Some(challenge.to_owned()))
        }
        (Some(_), Some("S256")) => Err(OAuthError::invalid_request(
            "code_challenge must be 43 base64url characters (an S256 challenge)",
        )),
        (Some(_), Some(_)) => Err(OAuthError::invalid_request(
            "unsupported code_challenge_method; use S256",
        )),
    }
}

fn parse_prompt(raw: Option<&str>) -> Result<Prompt, OAuthError> {
    let mut prompt = Prompt::default();
    for value in raw.unwrap_or("").split(' ').filter(|v| !v.is_empty()) {
        match value {
            "none" => prompt.none = true,
            "login" => prompt.login = true,
            "consent" => prompt.consent = true,
            "select_account" => prompt.login = true,
            _ => return Err(OAuthError::invalid_request("unsupported prompt value")),
        }
    }
    if prompt.none && (prompt.login || prompt.consent) {
        return Err(OAuthError::invalid_request(
            "prompt=none cannot be combined with other values",
        ));
    }
    Ok(prompt)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oauth::token::{Token, TokenKind};

    const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

    fn client(public: bool, uris: &[&str]) -> Client {
        Client {
            id: "app".into(),
            name: "App".into(),
            secret_hash: (!public)
                .then(|| Token::generate(TokenKind::ClientSecret).unwrap().hash()),
            redirect_uris: uris.iter().map(|u| u.to_string()).collect(),
            grant_types: vec![GrantType::AuthorizationCode, GrantType::RefreshToken],
            scopes: ScopeSet::parse("read write").unwrap(),
            can_introspect: false,
            skip_consent: false,
            require_2fa: false,
            assertion_keys: None,
            openid: Default::default(),
            resources: Default::default(),
            introspection_signed_response_alg: None,
            version: 1,
            secret_expires_at: None,
        }
    }

    fn params(query: &str) -> Params {
        Params::parse(query.as_bytes()).unwrap()
    }

    fn good(extra: &str) -> Params {
        params(&format!(
            "response_type=code&client_id=app&state=xyz&code_challenge={CHALLENGE}&code_challenge_method=S256{extra}"
        ))
    }

    fn redirected(result: Result<AuthorizationRequest, AuthorizeError>) -> ErrorRedirect {
        match result {
            Err(AuthorizeError::Redirect(r)) => r,
            other => panic!("expected a redirect, got {other:?}"),
        }
    }

    #[test]
    fn a_good_request_is_accepted_with_the_only_redirect_uri() {
        let request = validate(&good(""), Some(&client(true, &["https://a/cb"])), true).unwrap();
        assert_eq!(request.redirect_uri, "https://a/cb");
        assert!(!request.redirect_uri_given);
        assert_eq!(request.scope, "read write");
        assert_eq!(request.code_challenge.as_deref(), Some(CHALLENGE));
    }

    #[test]
    fn an_unknown_client_or_unregistered_uri_is_never_redirected() {
        assert!(matches!(
            validate(&good(""), None, true),
            Err(AuthorizeError::Page(_))
        ));
        let c = client(true, &["https://a/cb"]);
        let evil = good("&redirect_uri=https%3A%2F%2Fevil%2Fcb");
        assert!(matches!(
            validate(&evil, Some(&c), true),
            Err(AuthorizeError::Page(_))
        ));
        // Exact string match: no prefix, no trailing slash, no case folding.
        for near in [
            "https%3A%2F%2Fa%2Fcb%2F",
            "https%3A%2F%2Fa%2Fcb%3Fx%3D1",
            "HTTPS%3A%2F%2Fa%2Fcb",
        ] {
            let p = good(&format!("&redirect_uri={near}"));
            assert!(
                matches!(validate(&p, Some(&c), true), Err(AuthorizeError::Page(_))),
                "{near}"
            );
        }
        let two = client(true, &["https://a/cb", "https://b/cb"]);
        assert!(matches!(
            validate(&good(""), Some(&two), true),
            Err(AuthorizeError::Page(_))
        ));
    }

    #[test]
    fn later_errors_are_redirected_with_the_state() {
        let c = client(true, &["https://a/cb"]);
        let r = redirected(validate(
            &params("response_type=token&state=s1"),
            Some(&c),
            true,
        ));
        assert_eq!(r.error.code(), ErrorCode::UnsupportedResponseType);
        assert_eq!(r.state.as_deref(), Some("s1"));
        let location = r.location("https://as");
        assert!(location.starts_with("https://a/cb?error=unsupported_response_type&"));
        assert!(location.contains("state=s1") && location.contains("iss=https%3A%2F%2Fas"));
    }

    #[test]
    fn pkce_is_required_for_public_clients_and_plain_is_refused() {
        let public = client(true, &["https://a/cb"]);
        let confidential = client(false, &["https://a/cb"]);
        let none = params("response_type=code&client_id=app");
        assert_eq!(
            redirected(validate(&none, Some(&public), false))
                .error
                .code(),
            ErrorCode::InvalidRequest
        );
        assert!(validate(&none, Some(&confidential), false).is_ok());
        assert!(validate(&none, Some(&confidential), true).is_err());
        let plain = params(&format!(
            "response_type=code&code_challenge={CHALLENGE}&code_challenge_method=plain"
        ));
        assert_eq!(
            redirected(validate(&plain, Some(&public), true))
                .error
                .code(),
            ErrorCode::InvalidRequest
        );
        let implicit_plain = params(&format!("response_type=code&code_challenge={CHALLENGE}"));
        assert!(validate(&implicit_plain, Some(&public), true).is_err());
    }

    #[test]
    fn a_scope_beyond_the_clients_is_invalid_scope() {
        let r = redirected(validate(
            &good("&scope=admin"),
            Some(&client(true, &["https://a/cb"])),
            true,
        ));
        assert_eq!(r.error.code(), ErrorCode::InvalidScope);
    }

    #[test]
    fn prompt_values_are_parsed_and_none_stands_alone() {
        let c = client(true, &["https://a/cb"]);
        let request = validate(&good("&prompt=login+consent"), Some(&c), true).unwrap();
        assert!(request.prompt.login && request.prompt.consent);
        assert!(validate(&good("&prompt=none+login"), Some(&c), true).is_err());
    }

    #[test]
    fn an_overlong_state_is_refused_and_still_returned() {
        let c = client(true, &["https://a/cb"]);
        let long = "s".repeat(MAX_STATE_LEN + 1);
        let long_state = params(&format!("response_type=code&state={long}"));
        let r = redirected(validate(&long_state, Some(&c), true));
        assert_eq!(r.error.code(), ErrorCode::InvalidRequest);
        assert_eq!(r.state.as_deref(), Some(long.as_str()));
        assert!(r.location("https://as").contains(&format!("state={long}")));
    }

    #[test]
    fn a_loopback_redirect_uri_matches_on_any_port_and_is_kept_as_requested() {
        let c = client(true, &["http://127.0.0.1/cb", "http://[::1]/cb"]);
        let request = validate(
            &good("&redirect_uri=http%3A%2F%2F127.0.0.1%3A51004%2Fcb"),
            Some(&c),
            true,
        )
        .unwrap();
        assert_eq!(request.redirect_uri, "http://127.0.0.1:51004/cb");
        assert!(request.redirect_uri_given);
        assert!(
            validate(
                &good("&redirect_uri=http%3A%2F%2F%5B%3A%3A1%5D%3A8%2Fcb"),
                Some(&c),
                true
            )
            .is_ok()
        );
        for other in [
            "http%3A%2F%2F127.0.0.1%3A51004%2Fother",
            "http%3A%2F%2Flocalhost%3A51004%2Fcb",
        ] {
            let p = good(&format!("&redirect_uri={other}"));
            assert!(
                matches!(validate(&p, Some(&c), true), Err(AuthorizeError::Page(_))),
                "{other}"
            );
        }
    }
}
