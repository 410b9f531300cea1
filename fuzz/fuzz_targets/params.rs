//! The form-body parser of the token, introspection and revocation endpoints
//! (`umbra::oauth::params::Params::parse`).
//!
//! Invariants:
//! - never panics; every refusal is `invalid_request`, its description within the RFC 6749
//!   §5.2 character set (a repeated name is echoed, so this is where `"` or `\` could leak);
//! - it agrees with a straightforward reading of `application/x-www-form-urlencoded`
//!   (split on `&`, then on the first `=`, `+` is a space, percent-decoding, UTF-8 required):
//!   it accepts exactly when every pair decodes and no name repeats, and then `get` answers
//!   each value (empty means absent);
//! - a map of distinct names, encoded, parses back to the same values; the same map with one
//!   name repeated is refused.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use percent_encoding::percent_decode;
use umbra::oauth::ErrorCode;
use umbra::oauth::params::Params;
use umbra_fuzz::is_error_description;

#[derive(Debug, Arbitrary)]
struct Input<'a> {
    raw: &'a [u8],
    pairs: Vec<(String, String)>,
    repeat: u8,
}

fuzz_target!(|input: Input| {
    check_raw(input.raw);
    check_map(&input.pairs, input.repeat);
});

fn check_raw(raw: &[u8]) {
    let parsed = Params::parse(raw);
    let expected = reference_parse(raw);
    match (parsed, expected) {
        (Ok(params), Some(pairs)) => {
            for (name, value) in &pairs {
                let want = (!value.is_empty()).then_some(value.as_str());
                assert_eq!(params.get(name), want, "parameter {name:?}");
            }
        }
        (Err(err), None) => {
            assert_eq!(err.code(), ErrorCode::InvalidRequest);
            assert!(is_error_description(err.description()), "{err:?}");
        }
        (Ok(_), None) => panic!("accepted a body with a bad pair or a repeated name"),
        (Err(err), Some(_)) => panic!("refused a good body: {err}"),
    }
}

fn check_map(pairs: &[(String, String)], repeat: u8) {
    let mut distinct: Vec<(String, String)> = Vec::new();
    for (name, value) in pairs {
        if !distinct.iter().any(|(n, _)| n == name) {
            distinct.push((name.clone(), value.clone()));
        }
    }
    let encoded = serde_urlencoded::to_string(&distinct).expect("strings always encode");
    let params = Params::parse(encoded.as_bytes()).expect("an encoded map parses");
    for (name, value) in &distinct {
        let want = (!value.is_empty()).then_some(value.as_str());
        assert_eq!(params.get(name), want, "parameter {name:?} of {encoded:?}");
    }
    if !distinct.is_empty() {
        let again = &distinct[usize::from(repeat) % distinct.len()];
        let mut repeated = distinct.clone();
        repeated.push(again.clone());
        let encoded = serde_urlencoded::to_string(&repeated).expect("strings always encode");
        let err = Params::parse(encoded.as_bytes()).expect_err("a repeated name is refused");
        assert_eq!(err.code(), ErrorCode::InvalidRequest);
        assert!(is_error_description(err.description()), "{err:?}");
        assert!(
            err.description().contains("repeated"),
            "{}",
            err.description()
        );
    }
}

/// `None` when a pair does not decode to UTF-8 or a name repeats.
fn reference_parse(raw: &[u8]) -> Option<Vec<(String, String)>> {
    let mut pairs: Vec<(String, String)> = Vec::new();
    for pair in raw.split(|b| *b == b'&') {
        if pair.is_empty() {
            continue;
        }
        let (name, value) = match pair.iter().position(|b| *b == b'=') {
            Some(eq) => (&pair[..eq], &pair[eq + 1..]),
            None => (pair, &[][..]),
        };
        let name = decode(name)?;
        let value = decode(value)?;
        if pairs.iter().any(|(n, _)| *n == name) {
            return None;
        }
        pairs.push((name, value));
    }
    Some(pairs)
}

fn decode(raw: &[u8]) -> Option<String> {
    let spaced: Vec<u8> = raw
        .iter()
        .map(|&b| if b == b'+' { b' ' } else { b })
        .collect();
    String::from_utf8(percent_decode(&spaced).collect()).ok()
}
