//! The JSON bodies of the account API (`umbra::http::api::account::body`, the function every
//! `/api/account` handler parses its body with).
//!
//! Invariants:
//! - never panics;
//! - an empty or all-whitespace body is the defaults;
//! - an accepted body is one JSON object with only the fields of its type, of the right JSON
//!   types (unknown fields are refused);
//! - a refused body is `400 invalid_request`, never a 5xx, and its description names the
//!   problem, never a value: no run of 6 digits (a code; positions in the body are shorter)
//!   and no string of the body that mixes letters and digits over 6 characters or more (a
//!   password or code).
#![no_main]

use actix_web::ResponseError;
use actix_web::http::StatusCode;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use umbra::http::api::account::{ConfirmBody, FreshProof, StartBody, body};
use umbra::http::error::ApiError;

/// A field and whether JSON `null` is allowed for it.
type Field = (&'static str, bool);
const START_FIELDS: &[Field] = &[
    ("destination", true),
    ("password", true),
    ("current_code", false),
];
const CONFIRM_FIELDS: &[Field] = &[("code", false), ("password", true), ("current_code", false)];
/// `code` is an alias of `current_code` in the bare proof.
const PROOF_FIELDS: &[Field] = &[("password", true), ("current_code", false), ("code", false)];

fuzz_target!(|data: &[u8]| {
    check(data, body::<StartBody>(data).map(drop), START_FIELDS);
    check(data, body::<ConfirmBody>(data).map(drop), CONFIRM_FIELDS);
    check(data, body::<FreshProof>(data).map(drop), PROOF_FIELDS);
});

fn check(data: &[u8], result: Result<(), ApiError>, fields: &[Field]) {
    let blank = data.iter().all(u8::is_ascii_whitespace);
    match result {
        Ok(()) if blank => {}
        Ok(()) => {
            let value: Value = serde_json::from_slice(data)
                .unwrap_or_else(|e| panic!("accepted a body that is not JSON: {e}"));
            let object = value
                .as_object()
                .expect("accepted a body that is not an object");
            for (key, value) in object {
                let &(_, nullable) = fields
                    .iter()
                    .find(|(name, _)| name == key)
                    .unwrap_or_else(|| panic!("accepted the unknown field {key:?}"));
                assert!(
                    value.is_string() || (nullable && value.is_null()),
                    "accepted {key} = {value}"
                );
            }
        }
        Err(err) => {
            assert!(!blank, "refused a blank body: {err}");
            assert_eq!(err.status_code(), StatusCode::BAD_REQUEST, "{err}");
            let ApiError::InvalidRequest(description) = &err else {
                panic!("{err}");
            };
            assert!(!has_digit_run(description, 6), "{description:?}");
            if let Ok(value) = serde_json::from_slice::<Value>(data) {
                let mut strings = Vec::new();
                strings_of(&value, &mut strings);
                for s in strings.iter().filter(|s| looks_secret(s)) {
                    assert!(!description.contains(s), "{description:?} echoes {s:?}");
                }
            }
        }
    }
}

fn has_digit_run(text: &str, len: usize) -> bool {
    text.as_bytes()
        .windows(len)
        .any(|w| w.iter().all(u8::is_ascii_digit))
}

/// Letters and digits, both, 6 or more: no fixed text of the API reads like that.
fn looks_secret(s: &str) -> bool {
    s.len() >= 6
        && s.bytes().all(|b| b.is_ascii_alphanumeric())
        && s.bytes().any(|b| b.is_ascii_digit())
        && s.bytes().any(|b| b.is_ascii_alphabetic())
}

/// Every string in `value`, keys included.
fn strings_of<'a>(value: &'a Value, out: &mut Vec<&'a str>) {
    match value {
        Value::String(s) => out.push(s),
        Value::Array(items) => items.iter().for_each(|v| strings_of(v, out)),
        Value::Object(map) => {
            for (k, v) in map {
                out.push(k);
                strings_of(v, out);
            }
        }
        _ => {}
    }
}
