//! Form parameters of the token, introspection and revocation endpoints
//! (`application/x-www-form-urlencoded`, RFC 6749 Appendix B).
//!
//! Stricter than a generic form decoder: "Request and response parameters MUST NOT be included
//! more than once" (§3.1), so a repeated name is `invalid_request`; bytes that do not decode to
//! UTF-8 are `invalid_request` rather than silently replaced; and "parameters sent without a
//! value MUST be treated as if they were omitted from the request". The exceptions are the
//! parameters that the later RFCs let a request repeat ([`REPEATABLE`]).
use super::error::OAuthError;
use percent_encoding::percent_decode;

/// Parameters that may be sent more than once: `resource` (RFC 8707 §2) and `audience`
/// (RFC 8693 §2.1).
pub const REPEATABLE: &[&str] = &["resource", "audience"];

/// Decoded parameters in request order; each name appears once, except [`REPEATABLE`] ones.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Params(Vec<(String, String)>);

impl Params {
    pub fn parse(body: &[u8]) -> Result<Self, OAuthError> {
        let mut params: Vec<(String, String)> = Vec::new();
        for pair in body.split(|b| *b == b'&').filter(|p| !p.is_empty()) {
            let (name, value) = match pair.iter().position(|b| *b == b'=') {
                Some(eq) => (&pair[..eq], &pair[eq + 1..]),
                None => (pair, &b""[..]),
            };
            let name = decode(name)?;
            let value = decode(value)?;
            if !REPEATABLE.contains(&name.as_str()) && params.iter().any(|(n, _)| *n == name) {
                return Err(OAuthError::invalid_request(format!(
                    "parameter {} is repeated",
                    printable(&name)
                )));
            }
            params.push((name, value));
        }
        Ok(Self(params))
    }

    /// The value of `name`, or `None` when it is absent or empty.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    }

    /// Every non-empty value of a repeatable parameter, in request order.
    pub fn get_all(&self, name: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(n, v)| n == name && !v.is_empty())
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The value of a required parameter.
    pub fn require(&self, name: &'static str) -> Result<&str, OAuthError> {
        self.get(name)
            .ok_or_else(|| OAuthError::invalid_request(format!("missing parameter {name}")))
    }
}

impl std::fmt::Debug for Params {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Values may be secrets (client_secret, code, token): print names only.
        f.debug_list()
            .entries(self.0.iter().map(|(n, _)| n))
            .finish()
    }
}

fn decode(raw: &[u8]) -> Result<String, OAuthError> {
    let plus_as_space: Vec<u8> = raw
        .iter()
        .map(|b| if *b == b'+' { b' ' } else { *b })
        .collect();
    percent_decode(&plus_as_space)
        .decode_utf8()
        .map(|s| s.into_owned())
        .map_err(|_| OAuthError::invalid_request("the request body is not valid UTF-8"))
}

/// A parameter name safe to echo in an error description: short and printable.
fn printable(name: &str) -> String {
    let cleaned: String = name
        .chars()
        .filter(|c| c.is_ascii_graphic())
        .take(40)
        .collect();
    if cleaned.is_empty() {
        "(unnamed)".to_owned()
    } else {
        cleaned
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oauth::ErrorCode;

    #[test]
    fn decodes_percent_and_plus() {
        let params =
            Params::parse(b"scope=read+write&redirect_uri=https%3A%2F%2Fa.example%2Fcb").unwrap();
        assert_eq!(params.get("scope"), Some("read write"));
        assert_eq!(params.get("redirect_uri"), Some("https://a.example/cb"));
    }

    #[test]
    fn an_empty_value_counts_as_absent() {
        let params = Params::parse(b"scope=&grant_type").unwrap();
        assert_eq!(params.get("scope"), None);
        assert_eq!(params.get("grant_type"), None);
        assert_eq!(
            params.require("scope").unwrap_err().code(),
            ErrorCode::InvalidRequest
        );
    }

    #[test]
    fn a_repeated_parameter_is_invalid_request() {
        let err = Params::parse(b"scope=a&scope=b").unwrap_err();
        assert_eq!(err.code(), ErrorCode::InvalidRequest);
        assert!(err.description().contains("scope"));
    }

    #[test]
    fn resource_and_audience_may_repeat() {
        let params = Params::parse(
            b"resource=https%3A%2F%2Fa&resource=https%3A%2F%2Fb&audience=x&resource=",
        )
        .unwrap();
        assert_eq!(params.get_all("resource"), vec!["https://a", "https://b"]);
        assert_eq!(params.get_all("audience"), vec!["x"]);
        assert!(params.get_all("scope").is_empty());
    }

    #[test]
    fn percent_encoded_non_utf8_is_invalid_request() {
        assert_eq!(
            Params::parse(b"scope=%FF%FE").unwrap_err().code(),
            ErrorCode::InvalidRequest
        );
        assert_eq!(
            Params::parse(b"scope=\xff").unwrap_err().code(),
            ErrorCode::InvalidRequest
        );
    }

    #[test]
    fn debug_prints_names_but_not_values() {
        let params = Params::parse(b"client_secret=hunter2").unwrap();
        let printed = format!("{params:?}");
        assert!(printed.contains("client_secret"));
        assert!(!printed.contains("hunter2"));
    }
}
