//! The authorization-request validator (`umbra::oauth::authorize::validate`, RFC 6749 §4.1.1,
//! RFC 7636, RFC 9700 §2.1).
//!
//! Invariants:
//! - never panics;
//! - an unknown client, or a redirect URI that is not registered, is an error page, never a
//!   redirect: every `Redirect` goes to a registered URI of a known client;
//! - a redirected error carries the request's `state`, even an over-long one (refused, but
//!   returned: §4.1.2.1 requires the state on every error response);
//! - an over-long `state` is never accepted;
//! - every `error_description`, on a page's redirect and in its `Location`, is within the
//!   RFC 6749 §5.2 character set;
//! - an accepted request names the client, a registered redirect URI, the request's state, a
//!   scope within the client's, `response_type=code` for a client allowed the code flow, and a
//!   PKCE challenge only with method `S256` (required for public clients or when configured);
//!   `plain` is never accepted;
//! - the error and success locations start with the redirect URI.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use umbra::oauth::authorize::{AuthorizeError, MAX_STATE_LEN, success_location, validate};
use umbra::oauth::grant_type::GrantType;
use umbra::oauth::pkce::is_valid_s256_challenge;
use umbra::oauth::scope::ScopeSet;
use umbra_fuzz::{
    CHALLENGE, ClientInput, RequestedUri, is_error_description, params, registered_match,
};

/// Values a fuzzer would take long to find.
const KNOWN: &[&str] = &[
    "code",
    "token",
    "S256",
    "plain",
    "s256",
    CHALLENGE,
    "read",
    "read write",
    "admin",
    "none",
    "login consent",
    "none login",
    "select_account",
    "",
];

#[derive(Debug, Arbitrary)]
enum Value {
    Known(u8),
    Raw(String),
}

impl Value {
    fn resolve(&self) -> String {
        match self {
            Self::Known(i) => KNOWN[usize::from(*i) % KNOWN.len()].to_owned(),
            Self::Raw(s) => s.clone(),
        }
    }
}

#[derive(Debug, Arbitrary)]
enum State {
    Raw(String),
    /// A state around the length limit.
    Long(u16),
}

#[derive(Debug, Arbitrary)]
struct Input {
    client: Option<ClientInput>,
    require_pkce: bool,
    response_type: Option<Value>,
    redirect_uri: Option<RequestedUri>,
    scope: Option<Value>,
    state: Option<State>,
    code_challenge: Option<Value>,
    code_challenge_method: Option<Value>,
    prompt: Option<Value>,
    extra: Vec<(String, String)>,
}

fuzz_target!(|input: Input| {
    let client = input.client.as_ref().map(ClientInput::build);
    let registered = client
        .as_ref()
        .map(|c| c.redirect_uris.clone())
        .unwrap_or_default();
    let mut pairs: Vec<(String, String)> = Vec::new();
    let mut add = |name: &str, value: Option<String>| {
        if let Some(value) = value {
            pairs.push((name.to_owned(), value));
        }
    };
    add(
        "response_type",
        input.response_type.as_ref().map(Value::resolve),
    );
    add(
        "redirect_uri",
        input.redirect_uri.as_ref().map(|r| r.resolve(&registered)),
    );
    add("scope", input.scope.as_ref().map(Value::resolve));
    add(
        "state",
        input.state.as_ref().map(|s| match s {
            State::Raw(s) => s.clone(),
            State::Long(n) => "s".repeat(MAX_STATE_LEN - 8 + usize::from(*n % 16)),
        }),
    );
    add(
        "code_challenge",
        input.code_challenge.as_ref().map(Value::resolve),
    );
    add(
        "code_challenge_method",
        input.code_challenge_method.as_ref().map(Value::resolve),
    );
    add("prompt", input.prompt.as_ref().map(Value::resolve));
    pairs.extend(input.extra.iter().cloned());
    let params = params(&pairs);

    let result = validate(&params, client.as_ref(), input.require_pkce);
    let Some(client) = client else {
        assert!(matches!(result, Err(AuthorizeError::Page(_))), "{result:?}");
        return;
    };
    let requested = params.get("redirect_uri");
    let is_registered = |uri: &str| {
        client
            .redirect_uris
            .iter()
            .any(|r| registered_match(r, uri))
    };
    let state = params.get("state");
    match result {
        Err(AuthorizeError::Page(_)) => {}
        Err(AuthorizeError::Redirect(redirect)) => {
            assert!(
                is_registered(&redirect.redirect_uri),
                "redirected to {redirect:?}"
            );
            match requested {
                Some(uri) => assert_eq!(redirect.redirect_uri, uri),
                None => assert_eq!(client.redirect_uris.len(), 1),
            }
            assert_eq!(redirect.state.as_deref(), state);
            let description = redirect.error.description();
            assert!(is_error_description(description), "{description:?}");
            let location = redirect.location("https://issuer.example");
            assert!(location.starts_with(&redirect.redirect_uri));
            let query = &location[redirect.redirect_uri.len() + 1..];
            let answered: Vec<(String, String)> =
                serde_urlencoded::from_str(query).expect("the Location's query decodes");
            let answered = |name: &str| {
                answered
                    .iter()
                    .find(|(n, _)| n == name)
                    .map(|(_, v)| v.as_str())
            };
            assert_eq!(answered("error"), Some(redirect.error.code().as_str()));
            assert_eq!(answered("error_description"), Some(description));
            assert_eq!(answered("state"), state);
        }
        Ok(request) => {
            assert_eq!(request.client_id, client.id);
            assert!(is_registered(&request.redirect_uri), "accepted {request:?}");
            assert_eq!(request.redirect_uri_given, requested.is_some());
            if let Some(uri) = requested {
                assert_eq!(request.redirect_uri, uri);
            }
            assert_eq!(request.state.as_deref(), state);
            assert!(state.is_none_or(|s| s.len() <= MAX_STATE_LEN));
            assert_eq!(params.get("response_type"), Some("code"));
            assert!(client.allows_grant(GrantType::AuthorizationCode));
            assert!(ScopeSet::from_stored(&request.scope).is_subset_of(&client.scopes));
            assert_ne!(params.get("code_challenge_method"), Some("plain"));
            match &request.code_challenge {
                Some(challenge) => {
                    assert_eq!(params.get("code_challenge_method"), Some("S256"));
                    assert_eq!(params.get("code_challenge"), Some(challenge.as_str()));
                    assert!(is_valid_s256_challenge(challenge));
                }
                None => {
                    assert!(!client.is_public() && !input.require_pkce, "PKCE skipped");
                    assert_eq!(params.get("code_challenge"), None);
                }
            }
            let location = success_location(&request, "ac_code", "https://issuer.example");
            assert!(location.starts_with(&request.redirect_uri));
        }
    }
});
