//! Redirect URIs: matching at `/authorize` (inside `umbra::oauth::authorize::validate`, which
//! compares with `umbra::oauth::redirect_uri::matches`) and the registration check
//! `umbra::oauth::redirect_uri::validate`.
//!
//! Invariants, for an otherwise perfect request:
//! - the request is accepted exactly when the requested URI matches a registered one by the
//!   reference rule (`umbra_fuzz::registered_match`: exact string equality, except the port of
//!   `http://127.0.0.1` and `http://[::1]`), or when none is requested and exactly one is
//!   registered; the accepted URI is then the requested one (or the only one);
//! - otherwise the answer is an error page, never a redirect;
//! - `matches` itself agrees with the reference rule on every pair;
//! - registration accepts only what `acceptable_registration` (below) allows.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use umbra::oauth::authorize::{AuthorizeError, validate};
use umbra::oauth::redirect_uri::{self, MAX_REDIRECT_URI_LEN};
use umbra_fuzz::{CHALLENGE, ClientInput, RequestedUri, params, registered_match};

#[derive(Debug, Arbitrary)]
struct Input {
    client: ClientInput,
    requested: Option<RequestedUri>,
    allow_insecure_http: bool,
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

    if let Some(uri) = &requested {
        for registered in &client.redirect_uris {
            assert_eq!(
                redirect_uri::matches(registered, uri),
                registered_match(registered, uri),
                "registered {registered:?}, requested {uri:?}"
            );
        }
    }

    for uri in client.redirect_uris.iter().chain(&requested) {
        let allow = input.allow_insecure_http;
        if redirect_uri::validate(uri, allow).is_ok() {
            assert!(acceptable_registration(uri, allow), "registered {uri:?}");
        }
    }
});

/// Schemes never registered, whatever the development flag says.
const NEVER: &[&str] = &[
    "javascript",
    "vbscript",
    "data",
    "file",
    "blob",
    "filesystem",
    "about",
    "view-source",
];

/// What registration may let through (RFC 6749 §3.1.2, RFC 8252 §7–8, RFC 9700 §4.1):
/// at most `MAX_REDIRECT_URI_LEN` printable ASCII characters without spaces, an absolute URI
/// without a fragment, and then
/// - `https://` with a host, no user information and a numeric port if any;
/// - `http://` likewise, to `127.0.0.1`, `[::1]` or `localhost` only, unless
///   `allow_insecure_http`;
/// - or a private-use scheme that reads as a reverse domain name (a dot inside it), never one
///   of the script, data or file schemes.
fn acceptable_registration(uri: &str, allow_insecure_http: bool) -> bool {
    if uri.len() > MAX_REDIRECT_URI_LEN
        || !uri.bytes().all(|b| (0x21..=0x7e).contains(&b))
        || uri.contains('#')
    {
        return false;
    }
    let Some((scheme, rest)) = uri.split_once(':') else {
        return false;
    };
    let scheme_syntax = scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c));
    if !scheme_syntax || rest.is_empty() {
        return false;
    }
    let scheme = scheme.to_ascii_lowercase();
    match scheme.as_str() {
        "https" => authority_host(rest).is_some(),
        "http" => authority_host(rest).is_some_and(|host| {
            allow_insecure_http
                || host == "127.0.0.1"
                || host == "[::1]"
                || host.eq_ignore_ascii_case("localhost")
        }),
        s if NEVER.contains(&s) => false,
        s => s.contains('.') && !s.starts_with('.') && !s.ends_with('.'),
    }
}

/// The host of `//host[:port]…`, when there is one, without user information, with a port
/// of digits up to 65535 if any.
fn authority_host(hier_part: &str) -> Option<&str> {
    let after = hier_part.strip_prefix("//")?;
    let authority = &after[..after.find(['/', '?']).unwrap_or(after.len())];
    if authority.contains('@') {
        return None;
    }
    let (host, port) = match authority.rsplit_once(':') {
        Some((host, port)) if !port.contains(']') => (host, Some(port)),
        _ => (authority, None),
    };
    let port_ok = port.is_none_or(|p| {
        !p.is_empty()
            && p.bytes().all(|b| b.is_ascii_digit())
            && p.parse::<u32>().is_ok_and(|v| v <= 65_535)
    });
    (!host.is_empty() && port_ok).then_some(host)
}
