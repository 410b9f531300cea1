//! The JSON bodies of the account API (`umbra::http::api::account::body`, the function every
//! `/api/account` handler parses its body with).
//!
//! Invariants:
//! - never panics;
//! - an empty or all-whitespace body is the defaults;
//! - an accepted body is one JSON object with only the fields of its type, of the right JSON
//!   types (unknown fields are refused);
//! - a refused body is `400 invalid_request`, never a 5xx.
#![no_main]

use actix_web::ResponseError;
use actix_web::http::StatusCode;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use umbra::http::api::account::{CodeBody, StartBody, body};
use umbra::http::error::ApiError;

/// A field and whether JSON `null` is allowed for it.
type Field = (&'static str, bool);
const START_FIELDS: &[Field] = &[("destination", true)];
const CODE_FIELDS: &[Field] = &[("code", false), ("password", true)];

fuzz_target!(|data: &[u8]| {
    check(data, body::<StartBody>(data).map(drop), START_FIELDS);
    check(data, body::<CodeBody>(data).map(drop), CODE_FIELDS);
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
            assert!(matches!(err, ApiError::InvalidRequest(_)), "{err}");
        }
    }
}
