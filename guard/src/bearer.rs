//! Reading a bearer token from the `Authorization` request header (RFC 6750 §2.1), with no
//! framework attached:
//!
//! ```text
//! credentials = "Bearer" 1*SP b64token
//! b64token    = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
//! ```
//!
//! The scheme is matched case-insensitively (RFC 9110 §11.1). Only the header is read: the
//! form-body and query-parameter methods of RFC 6750 §2.2–2.3 are not supported, the latter
//! because URLs end up in logs.
use crate::error::{GuardError, Malformed};

/// The longest token forwarded to the authorization server. Umbra's are 52 characters, so a
/// longer string cannot be one of its tokens: it is `invalid_token` at once, and Umbra is not
/// sent a large body for it. The margin leaves room for a future token format.
pub const MAX_TOKEN_LEN: usize = 128;

/// The token of a request, from every value of its `Authorization` header.
///
/// No header, or a header of another scheme, is [`GuardError::MissingToken`]: the request
/// carries no bearer credentials (RFC 6750 §3.1). Several headers, `Bearer` without a token,
/// two tokens or characters outside `b64token` are [`GuardError::Malformed`].
///
/// ```
/// use umbra_guard::bearer::token_from_headers;
///
/// let token = token_from_headers([b"Bearer at_abc.DEF-123~".as_slice()]).unwrap();
/// assert_eq!(token, "at_abc.DEF-123~");
/// assert!(token_from_headers([b"Basic dXNlcjpwYXNz".as_slice()]).is_err());
/// assert!(token_from_headers([b"Bearer a".as_slice(), b"Bearer b".as_slice()]).is_err());
/// ```
pub fn token_from_headers<'a, I>(values: I) -> Result<&'a str, GuardError>
where
    I: IntoIterator<Item = &'a [u8]>,
{
    let mut values = values.into_iter();
    let Some(value) = values.next() else {
        return Err(GuardError::MissingToken);
    };
    if values.next().is_some() {
        return Err(GuardError::Malformed(Malformed::RepeatedHeader));
    }
    bearer_token(value)
}

/// The token of one `Authorization` header value; another scheme is
/// [`GuardError::MissingToken`].
pub fn bearer_token(value: &[u8]) -> Result<&str, GuardError> {
    let value = std::str::from_utf8(value)
        .map_err(|_| GuardError::Malformed(Malformed::Syntax))?
        .trim_matches([' ', '\t']);
    let (scheme, token) = match value.split_once(' ') {
        Some((scheme, rest)) => (scheme, rest.trim_start_matches(' ')),
        None => (value, ""),
    };
    if !scheme.eq_ignore_ascii_case("Bearer") {
        return Err(GuardError::MissingToken);
    }
    if token.is_empty() {
        return Err(GuardError::Malformed(Malformed::Empty));
    }
    check_token(token)?;
    Ok(token)
}

/// Checks a token string against `b64token` and [`MAX_TOKEN_LEN`].
pub fn check_token(token: &str) -> Result<(), GuardError> {
    if token.is_empty() {
        return Err(GuardError::Malformed(Malformed::Empty));
    }
    if token.len() > MAX_TOKEN_LEN {
        return Err(GuardError::Malformed(Malformed::TooLong));
    }
    let body = token.trim_end_matches('=');
    let valid = !body.is_empty()
        && body.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/')
        });
    if valid {
        Ok(())
    } else {
        Err(GuardError::Malformed(Malformed::Syntax))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(value: &str) -> Result<&str, GuardError> {
        bearer_token(value.as_bytes())
    }

    fn malformed(value: &str) -> Malformed {
        match parse(value) {
            Err(GuardError::Malformed(why)) => why,
            other => panic!("{value:?} gave {other:?}"),
        }
    }

    #[test]
    fn a_bearer_token_is_read_whatever_the_case_of_the_scheme() {
        assert_eq!(parse("Bearer at_x").unwrap(), "at_x");
        assert_eq!(parse("bearer at_x").unwrap(), "at_x");
        assert_eq!(parse("BEARER   at_x  ").unwrap(), "at_x");
    }

    #[test]
    fn the_whole_b64token_alphabet_and_trailing_padding_are_accepted() {
        let token = "azAZ09-._~+/==";
        assert_eq!(parse(&format!("Bearer {token}")).unwrap(), token);
    }

    #[test]
    fn other_schemes_carry_no_bearer_token() {
        for value in ["Basic dXNlcjpwYXNz", "Bearerat_x", "at_x", "DPoP at_x"] {
            assert!(
                matches!(parse(value), Err(GuardError::MissingToken)),
                "{value:?}"
            );
        }
    }

    #[test]
    fn bearer_without_a_token_is_empty() {
        assert_eq!(malformed("Bearer"), Malformed::Empty);
        assert_eq!(malformed("Bearer   "), Malformed::Empty);
    }

    #[test]
    fn two_tokens_or_characters_outside_b64token_are_syntax_errors() {
        for value in [
            "Bearer a b",
            "Bearer a,b",
            "Bearer a\"b",
            "Bearer =abc",
            "Bearer ab=c",
            "Bearer ===",
            "Bearer tök",
            "Bearer a\tb",
        ] {
            assert_eq!(malformed(value), Malformed::Syntax, "{value:?}");
        }
    }

    #[test]
    fn a_token_longer_than_any_umbra_token_is_refused_before_any_network_call() {
        let umbra_token = format!("at_{}", "A".repeat(49));
        assert_eq!(
            parse(&format!("Bearer {umbra_token}")).unwrap(),
            umbra_token
        );
        let value = format!("Bearer {}", "a".repeat(MAX_TOKEN_LEN + 1));
        assert_eq!(malformed(&value), Malformed::TooLong);
        assert_eq!(
            malformed(&format!("Bearer {}", "/".repeat(4096))),
            Malformed::TooLong
        );
    }

    #[test]
    fn no_header_is_missing_and_two_headers_are_malformed() {
        assert!(matches!(
            token_from_headers(std::iter::empty()),
            Err(GuardError::MissingToken)
        ));
        assert!(matches!(
            token_from_headers([b"Bearer a".as_slice(), b"Bearer b".as_slice()]),
            Err(GuardError::Malformed(Malformed::RepeatedHeader))
        ));
    }

    #[test]
    fn bytes_that_are_not_utf_8_are_malformed() {
        assert!(matches!(
            bearer_token(b"Bearer \xff\xfe"),
            Err(GuardError::Malformed(Malformed::Syntax))
        ));
    }
}
