//! Redirect-URI matching at `/authorize` (inside `umbra::oauth::authorize::validate`) and the
//! registration check `umbra::oauth::client::validate_redirect_uri`.
//!
//! Invariants, for an otherwise perfect request:
//! - the request is accepted exactly when the requested URI matches a registered one by the
//!   reference rule (`umbra_fuzz::registered_match`: exact string equality), or when none is
//!   requested and exactly one is registered; the accepted URI is then the requested one (or
//!   the only one);
//! - otherwise the answer is an error page, never a redirect;
//! - registration accepts only absolute URIs (a scheme, then something) with no fragment,
//!   whitespace or control characters.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use umbra::oauth::authorize::{AuthorizeError, validate};
use umbra::oauth::client::validate_redirect_uri;
use umbra_fuzz::{CHALLENGE, ClientInput, RequestedUri, params, registered_match};

#[derive(Debug, Arbitrary)]
struct Input {
    client: ClientInput,
    requested: Option<RequestedUri>,
}

fuzz_target!(|input: Input| {
    let mut client = input.client.build();
    client.grant_types = umbra::oauth::grant_type::GrantType::ALL.to_vec();
    client.scopes = Default::default();
    let requested = input
        .requested
        .as_ref()
        .map(|r| r.resolve(&client.redirect_uris))
        .filter(|r| !r.is_empty());
    let mut pairs = vec![
        ("response_type".to_owned(), "code".to_owned()),
        ("code_challenge".to_owned(), CHALLENGE.to_owned()),
        ("code_challenge_method".to_owned(), "S256".to_owned()),
    ];
    if let Some(uri) = &requested {
        pairs.push(("redirect_uri".to_owned(), uri.clone()));
    }
    let expected = match &requested {
        Some(uri) => client
            .redirect_uris
            .iter()
            .any(|r| registered_match(r, uri))
            .then(|| uri.clone()),
        None => match client.redirect_uris.as_slice() {
            [only] => Some(only.clone()),
            _ => None,
        },
    };
    match (validate(&params(&pairs), Some(&client), true), expected) {
        (Ok(request), Some(uri)) => {
            assert_eq!(request.redirect_uri, uri);
            assert_eq!(request.redirect_uri_given, requested.is_some());
        }
        (Err(AuthorizeError::Page(_)), None) => {}
        (result, expected) => panic!(
            "registered {:?}, requested {requested:?}, expected {expected:?}, got {result:?}",
            client.redirect_uris
        ),
    }

    for uri in client.redirect_uris.iter().chain(&requested) {
        if validate_redirect_uri(uri).is_ok() {
            assert!(acceptable_registration(uri), "registered {uri:?}");
        }
    }
});

/// What registration must never let through.
fn acceptable_registration(uri: &str) -> bool {
    let Some((scheme, rest)) = uri.split_once(':') else {
        return false;
    };
    scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
        && !rest.is_empty()
        && !uri.contains('#')
        && !uri.chars().any(|c| c.is_whitespace() || c.is_control())
}
