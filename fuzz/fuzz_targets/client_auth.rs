//! Client authentication from the `Authorization` header and the body
//! (`umbra::oauth::client_auth::ClientCredentials::extract`, RFC 6749 §2.3.1, RFC 7617).
//!
//! Invariants:
//! - never panics;
//! - a header is accepted exactly when it is valid Basic: `Basic`, spaces, base64 with
//!   padding, decoding to UTF-8 `id:secret` whose form-urlencoded halves decode to UTF-8 and
//!   whose id is not empty; optional spaces or tabs around the value, nothing else. The
//!   credentials are then those halves, decoded;
//! - a refused header is `invalid_client` (401) (or `invalid_request`, 400, when the body also
//!   carries credentials);
//! - every refusal carries the Basic challenge exactly when it is a 401, whatever the method
//!   (RFC 9110 §15.5.2), and an `error_description` within the RFC 6749 §5.2 character set;
//! - any id and secret, form-urlencoded as §2.3.1 says (either `+` or `%20` for a space),
//!   come back unchanged;
//! - without a header: both `client_id` and `client_secret` is `client_secret_post`, an id
//!   alone is `none`, no id is `invalid_client`.
#![no_main]

use arbitrary::Arbitrary;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use libfuzzer_sys::fuzz_target;
use percent_encoding::{NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};
use secrecy::ExposeSecret;
use umbra::oauth::client_auth::{AuthMethod, ClientCredentials};
use umbra::oauth::params::Params;
use umbra::oauth::{ErrorCode, OAuthError};
use umbra_fuzz::is_error_description;

#[derive(Debug, Arbitrary)]
struct Input<'a> {
    header: &'a [u8],
    id: String,
    secret: String,
    plus_for_space: bool,
    /// Bytes spliced into the generated (valid) header: a fuzzer rarely builds valid Basic by
    /// itself, so this is how it reaches "almost valid".
    splice: Option<(u16, &'a [u8])>,
    body_id: Option<String>,
    body_secret: Option<String>,
}

fuzz_target!(|input: Input| {
    let empty = Params::default();
    check_header(input.header, &empty);

    let header = basic(&input.id, &input.secret, input.plus_for_space);
    match ClientCredentials::extract(Some(header.as_bytes()), &empty) {
        Ok(creds) => {
            assert_eq!(creds.client_id, input.id);
            let secret = creds.secret.expect("Basic carries a secret");
            assert_eq!(secret.expose_secret(), input.secret);
            assert_eq!(creds.method, AuthMethod::ClientSecretBasic);
        }
        Err(err) => {
            assert!(input.id.is_empty(), "refused {:?}: {err}", input.id);
            assert_eq!(err.code(), ErrorCode::InvalidClient);
            check_refusal(&err);
        }
    }

    if let Some((at, bytes)) = input.splice {
        let mut spliced = header.clone().into_bytes();
        let at = usize::from(at) % (spliced.len() + 1);
        spliced.splice(at..at, bytes.iter().copied());
        check_header(&spliced, &empty);
    }

    let mut pairs = Vec::new();
    if let Some(id) = &input.body_id {
        pairs.push(("client_id", id.as_str()));
    }
    if let Some(secret) = &input.body_secret {
        pairs.push(("client_secret", secret.as_str()));
    }
    let body = serde_urlencoded::to_string(&pairs).expect("strings always encode");
    let params = Params::parse(body.as_bytes()).expect("an encoded map parses");
    check_header(input.header, &params);
    check_header(header.as_bytes(), &params);
    check_body_only(&params);
});

fn basic(id: &str, secret: &str, plus_for_space: bool) -> String {
    let encode = |s: &str| {
        let encoded = utf8_percent_encode(s, NON_ALPHANUMERIC).to_string();
        if plus_for_space {
            encoded.replace("%20", "+")
        } else {
            encoded
        }
    };
    format!(
        "Basic {}",
        STANDARD.encode(format!("{}:{}", encode(id), encode(secret)))
    )
}

fn check_header(header: &[u8], params: &Params) {
    let expected = strict_basic(header);
    let body_id = params.get("client_id");
    let body_secret = params.get("client_secret");
    match ClientCredentials::extract(Some(header), params) {
        Ok(creds) => {
            let (id, secret) = expected
                .unwrap_or_else(|| panic!("accepted a header that is not valid Basic: {header:?}"));
            assert_eq!(creds.client_id, id);
            assert_eq!(
                creds.secret.as_ref().map(|s| s.expose_secret()),
                Some(secret.as_str())
            );
            assert_eq!(creds.method, AuthMethod::ClientSecretBasic);
            assert!(body_secret.is_none(), "two methods at once");
            assert!(body_id.is_none_or(|b| b == id), "two different ids");
        }
        Err(err) => match err.code() {
            ErrorCode::InvalidClient => {
                check_refusal(&err);
                assert!(expected.is_none(), "refused valid Basic {header:?}: {err}");
            }
            ErrorCode::InvalidRequest => {
                check_refusal(&err);
                assert!(
                    body_secret.is_some() || body_id.is_some(),
                    "invalid_request without body credentials: {err}"
                );
            }
            other => panic!("unexpected {other:?}: {err}"),
        },
    }
}

fn check_body_only(params: &Params) {
    let id = params.get("client_id");
    let secret = params.get("client_secret");
    match (ClientCredentials::extract(None, params), id, secret) {
        (Ok(creds), Some(id), Some(secret)) => {
            assert_eq!(creds.client_id, id);
            assert_eq!(creds.method, AuthMethod::ClientSecretPost);
            assert_eq!(
                creds.secret.as_ref().map(|s| s.expose_secret()),
                Some(secret)
            );
        }
        (Ok(creds), Some(id), None) => {
            assert_eq!(creds.client_id, id);
            assert_eq!(creds.method, AuthMethod::None);
            assert!(creds.secret.is_none());
        }
        (Err(err), None, _) => {
            assert_eq!(err.code(), ErrorCode::InvalidClient);
            check_refusal(&err);
        }
        (result, id, secret) => {
            panic!("body id {id:?} secret {:?}: {result:?}", secret.is_some())
        }
    }
}

/// What every refusal has: 401 for `invalid_client` and 400 otherwise, the Basic challenge
/// exactly on a 401, a description in the RFC 6749 §5.2 character set.
fn check_refusal(err: &OAuthError) {
    let expected_status = match err.code() {
        ErrorCode::InvalidClient => 401,
        _ => 400,
    };
    assert_eq!(err.status(), expected_status, "{err}");
    assert_eq!(err.basic_challenge(), err.status() == 401, "{err}");
    assert!(is_error_description(err.description()), "{err:?}");
}

/// RFC 7617 Basic read strictly: `Basic 1*SP token68`, with optional whitespace (space or
/// tab, RFC 9110 §5.6.3) around the field value and after the scheme.
fn strict_basic(header: &[u8]) -> Option<(String, String)> {
    let header = std::str::from_utf8(header).ok()?;
    let header = header.trim_matches([' ', '\t']);
    let (scheme, encoded) = header.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let encoded = encoded.trim_matches([' ', '\t']);
    if !encoded
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'='))
    {
        return None;
    }
    let decoded = String::from_utf8(STANDARD.decode(encoded).ok()?).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    let form_decode = |s: &str| {
        percent_decode_str(&s.replace('+', " "))
            .decode_utf8()
            .ok()
            .map(|s| s.into_owned())
    };
    let id = form_decode(id)?;
    let secret = form_decode(secret)?;
    (!id.is_empty()).then_some((id, secret))
}
