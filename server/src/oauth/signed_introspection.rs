//! Signed introspection answers (RFC 9701): whether a request gets one, and what it says.
//!
//! One code path decides the answer ([`Introspection::of`]); this module only chooses how it
//! is rendered. A resource server asks for a JWT with `Accept:
//! application/token-introspection+jwt` (§4) and gets it when it is registered for one
//! (`introspection_signed_response_alg`, §6): the RFC 7662 answer, inactive ones included,
//! under `token_introspection`, with `iss`, `aud` (the caller) and `iat` (§5).
//!
//! The two cases the RFC leaves to the server:
//! - a client that is **not registered** for signed answers and asks only for one gets
//!   `406 Not Acceptable` (RFC 9110 §15.5.7): signing is an opt-in per resource server, and a
//!   plain JSON body the resource server said it cannot take would only fail further along,
//!   with a less clear cause. If its `Accept` also allows JSON, it gets JSON.
//! - a **registered** client that asks for JSON (or sends no `Accept`) gets JSON: it has
//!   authenticated, and a signature adds integrity, not confidentiality, so JSON tells it
//!   nothing the JWT would not (RFC 9701 §5 refuses a JSON downgrade only to an
//!   unauthenticated caller, which Umbra never answers). It also lets a deployment turn signing
//!   on at Umbra first and in the resource server afterwards, with no request failing between.
use super::introspection::Introspection;
use crate::keys::SigningAlg;
use serde::Serialize;

/// The media type a resource server asks for and the JWT answer carries (§4, §5).
pub const MEDIA_TYPE: &str = "application/token-introspection+jwt";

/// The JWS `typ` of the answer (§5): the media type without `application/`, as RFC 7515
/// §4.1.9 recommends. It keeps the answer from being taken for an access token or an ID
/// token (§8.1).
pub const TYP: &str = "token-introspection+jwt";

/// How an introspection answer is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rendering {
    /// RFC 7662 JSON.
    Json,
    /// A JWS signed with this algorithm (RFC 9701).
    Jwt(SigningAlg),
    /// The caller asked only for a JWT and is not registered for one.
    NotAcceptable,
}

impl Rendering {
    /// Chooses the rendering for a request with `accept` (the `Accept` header, all its
    /// values joined by commas; `None` without one) from a client that registered
    /// `registered`.
    ///
    /// A JWT is asked for only when the media type is named with a quality above zero and at
    /// least that of JSON: `*/*` and `application/*` do not ask for it, so every client
    /// written for RFC 7662 keeps getting JSON. A header that accepts neither gets JSON, as
    /// before RFC 9701.
    pub fn negotiate(accept: Option<&str>, registered: Option<SigningAlg>) -> Self {
        let Some(accept) = accept else {
            return Self::Json;
        };
        let ranges: Vec<MediaRange<'_>> = accept.split(',').filter_map(MediaRange::parse).collect();
        let jwt = ranges
            .iter()
            .filter(|r| r.media_type.eq_ignore_ascii_case(MEDIA_TYPE))
            .map(|r| r.quality)
            .max();
        let Some(jwt) = jwt.filter(|q| *q > 0) else {
            return Self::Json;
        };
        let json = quality_of_json(&ranges);
        match registered {
            Some(alg) if jwt >= json => Self::Jwt(alg),
            Some(_) => Self::Json,
            None if json > 0 => Self::Json,
            None => Self::NotAcceptable,
        }
    }
}

/// One element of an `Accept` header (RFC 9110 §12.5.1), its quality in thousandths.
struct MediaRange<'a> {
    media_type: &'a str,
    quality: u16,
}

impl<'a> MediaRange<'a> {
    fn parse(element: &'a str) -> Option<Self> {
        let mut parts = element.split(';');
        let media_type = parts.next()?.trim();
        if !media_type.contains('/') {
            return None;
        }
        let mut quality = 1000;
        for parameter in parts {
            if let Some((name, value)) = parameter.split_once('=')
                && name.trim().eq_ignore_ascii_case("q")
            {
                // A weight that does not parse counts as zero: the range is not acceptable.
                quality = parse_quality(value.trim()).unwrap_or(0);
            }
        }
        Some(Self {
            media_type,
            quality,
        })
    }
}

/// `qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] )` in thousandths.
fn parse_quality(value: &str) -> Option<u16> {
    let (whole, fraction) = value.split_once('.').unwrap_or((value, ""));
    if fraction.len() > 3 || !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let thousandths = format!("{fraction:0<3}").parse::<u16>().ok()?;
    match whole {
        "0" => Some(thousandths),
        "1" if thousandths == 0 => Some(1000),
        _ => None,
    }
}

/// The quality JSON gets: that of the most specific range that matches it, 0 for none.
fn quality_of_json(ranges: &[MediaRange<'_>]) -> u16 {
    let specificity = |media_type: &str| {
        if media_type.eq_ignore_ascii_case("application/json") {
            3
        } else if media_type.eq_ignore_ascii_case("application/*") {
            2
        } else if media_type == "*/*" {
            1
        } else {
            0
        }
    };
    ranges
        .iter()
        .map(|r| (specificity(r.media_type), r.quality))
        .filter(|(rank, _)| *rank > 0)
        .max_by_key(|(rank, _)| *rank)
        .map_or(0, |(_, quality)| quality)
}

/// The claims of a signed answer (§5). No `sub` and no `exp` at the top level, as §5
/// recommends, so that it cannot pass for an access token.
#[derive(Debug, Serialize)]
pub struct SignedAnswer<'a> {
    /// The issuer identifier.
    pub iss: &'a str,
    /// The resource server that asked: its client_id.
    pub aud: &'a str,
    pub iat: i64,
    /// Exactly what the JSON rendering would have said.
    pub token_introspection: &'a Introspection,
}

#[cfg(test)]
mod tests {
    use super::*;

    const RS256: Option<SigningAlg> = Some(SigningAlg::Rs256);

    #[test]
    fn a_registered_client_naming_the_jwt_media_type_gets_a_jwt() {
        for accept in [
            MEDIA_TYPE,
            "Application/Token-Introspection+JWT",
            "application/token-introspection+jwt, application/json",
            "application/json;q=0.5, application/token-introspection+jwt",
            "application/token-introspection+jwt;q=0.8, application/json;q=0.8",
            "text/html, application/token-introspection+jwt ; q=1.0",
        ] {
            assert_eq!(
                Rendering::negotiate(Some(accept), RS256),
                Rendering::Jwt(SigningAlg::Rs256),
                "{accept}"
            );
        }
        assert_eq!(
            Rendering::negotiate(Some(MEDIA_TYPE), Some(SigningAlg::EdDsa)),
            Rendering::Jwt(SigningAlg::EdDsa)
        );
    }

    #[test]
    fn a_registered_client_that_does_not_name_the_jwt_gets_json() {
        for accept in [
            None,
            Some("application/json"),
            Some("*/*"),
            Some("application/*"),
            Some("text/html"),
            Some(""),
            Some("application/token-introspection+jwt;q=0"),
            Some("application/token-introspection+jwt;q=0.5, application/json"),
            Some("application/token-introspection+jwt;q=banana"),
        ] {
            assert_eq!(
                Rendering::negotiate(accept, RS256),
                Rendering::Json,
                "{accept:?}"
            );
        }
    }

    #[test]
    fn an_unregistered_client_asking_only_for_a_jwt_is_not_acceptable() {
        for accept in [
            MEDIA_TYPE,
            "application/token-introspection+jwt, text/html",
            "application/token-introspection+jwt, application/json;q=0",
        ] {
            assert_eq!(
                Rendering::negotiate(Some(accept), None),
                Rendering::NotAcceptable,
                "{accept}"
            );
        }
    }

    #[test]
    fn an_unregistered_client_that_also_accepts_json_gets_json() {
        for accept in [
            None,
            Some("application/json"),
            Some("application/token-introspection+jwt, application/json;q=0.1"),
            Some("application/token-introspection+jwt, */*;q=0.1"),
            Some("application/token-introspection+jwt, application/*"),
        ] {
            assert_eq!(
                Rendering::negotiate(accept, None),
                Rendering::Json,
                "{accept:?}"
            );
        }
    }

    #[test]
    fn qualities_follow_the_rfc_9110_grammar() {
        assert_eq!(parse_quality("1"), Some(1000));
        assert_eq!(parse_quality("1.000"), Some(1000));
        assert_eq!(parse_quality("0.5"), Some(500));
        assert_eq!(parse_quality("0.05"), Some(50));
        assert_eq!(parse_quality("0"), Some(0));
        for bad in ["1.5", "2", "0.1234", "-1", "", "0.x", ".5"] {
            assert_eq!(parse_quality(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_claims_hold_the_answer_under_token_introspection_and_no_sub_or_exp() {
        let inactive = Introspection::inactive();
        let claims = SignedAnswer {
            iss: "https://auth.example",
            aud: "orders-api",
            iat: 1_700_000_000,
            token_introspection: &inactive,
        };
        assert_eq!(
            serde_json::to_value(&claims).unwrap(),
            serde_json::json!({
                "iss": "https://auth.example",
                "aud": "orders-api",
                "iat": 1_700_000_000,
                "token_introspection": {"active": false},
            })
        );
    }
}
