//! What an active answer must say besides "active" before the guard believes it: that the
//! token is meant for the resource this guard protects (its `aud`, RFC 8707) and that it
//! comes from the expected authorization server (its `iss`).
//!
//! RFC 9700 §2.3: "access tokens SHOULD be audience-restricted to a specific resource server
//! […]. The resource server MUST verify that the access token was issued for it." Umbra
//! already answers `{"active": false}` to a resource server about tokens for other resources;
//! checking here too keeps a guard safe from a token without an audience (which Umbra lets
//! every resource server see unless `introspection.require_audience` is set), from credentials
//! shared between services, and from a misconfigured or wrong server.
//!
//! Identifiers are compared as exact strings (RFC 3986 §6.2.1 simple string comparison), as
//! RFC 8707 and RFC 8414 §3.3 do: give the resource exactly as it is registered with Umbra.
use crate::error::GuardError;
use crate::introspector::BuildError;
use crate::token::ValidatedToken;
use reqwest::Url;

/// The checks configured on an [`Introspector`](crate::Introspector); none by default.
#[derive(Debug, Clone, Default)]
pub(crate) struct Expected {
    /// The resource identifiers this guard protects; an answer must name one in `aud`.
    resources: Vec<String>,
    /// The issuer identifier an answer's `iss` must equal.
    issuer: Option<String>,
}

impl Expected {
    pub(crate) fn new(resources: Vec<String>, issuer: Option<String>) -> Result<Self, BuildError> {
        for resource in &resources {
            check_resource(resource)?;
        }
        if let Some(issuer) = &issuer {
            check_issuer(issuer)?;
        }
        Ok(Self { resources, issuer })
    }

    /// Refuses a token whose `iss` is not the configured issuer, then one whose `aud` names
    /// none of the configured resources.
    pub(crate) fn check(&self, token: &ValidatedToken) -> Result<(), GuardError> {
        if let Some(issuer) = &self.issuer
            && token.iss.as_deref() != Some(issuer.as_str())
        {
            // Not a client's mistake: Umbra's issuer setting and the guard's disagree, or the
            // guard asks a server it should not.
            tracing::warn!(
                expected = %issuer,
                received = token.iss.as_deref().unwrap_or("(none)"),
                "the introspection answer names another issuer; refusing the token: check \
                 the guard's issuer and Umbra's server.issuer"
            );
            return Err(GuardError::WrongIssuer);
        }
        if !self.resources.is_empty() && !token.aud.iter().any(|aud| self.resources.contains(aud)) {
            tracing::debug!(
                aud = ?token.aud,
                resources = ?self.resources,
                "the token is not meant for this resource"
            );
            return Err(GuardError::NotForThisResource);
        }
        Ok(())
    }
}

/// RFC 8707 §2: "The value of the resource parameter MUST be an absolute URI, as specified by
/// Section 4.3 of [RFC3986], which MAY include a query component, but MUST NOT include a
/// fragment component."
fn check_resource(resource: &str) -> Result<(), BuildError> {
    let invalid = |reason: &'static str| BuildError::Resource {
        resource: resource.to_owned(),
        reason,
    };
    // The URL parser trims and percent-encodes what it is given; the identifier is compared
    // as given, so it must already be what the parser would accept unchanged.
    if resource.is_empty() {
        return Err(invalid("it is empty"));
    }
    if resource
        .chars()
        .any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(invalid("it contains whitespace or control characters"));
    }
    let url = Url::parse(resource).map_err(|_| invalid("it is not an absolute URI"))?;
    if url.fragment().is_some() {
        return Err(invalid("it has a fragment"));
    }
    Ok(())
}

fn check_issuer(issuer: &str) -> Result<(), BuildError> {
    if issuer.trim().is_empty() {
        return Err(BuildError::Issuer {
            issuer: issuer.to_owned(),
            reason: "it is empty",
        });
    }
    if issuer.trim() != issuer {
        return Err(BuildError::Issuer {
            issuer: issuer.to_owned(),
            reason: "it has surrounding whitespace",
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scopes::Scopes;

    fn token(aud: &[&str], iss: Option<&str>) -> ValidatedToken {
        ValidatedToken {
            jti: None,
            sub: "user-1".into(),
            username: Some("ada".into()),
            client_id: "app".into(),
            scopes: Scopes::parse("read"),
            exp: 2_000,
            iat: None,
            nbf: None,
            aud: aud.iter().map(|&a| a.to_owned()).collect(),
            iss: iss.map(str::to_owned),
            act: None,
        }
    }

    fn expect(resources: &[&str], issuer: Option<&str>) -> Expected {
        Expected::new(
            resources.iter().map(|&r| r.to_owned()).collect(),
            issuer.map(str::to_owned),
        )
        .unwrap()
    }

    const ORDERS: &str = "https://orders.example.com";

    #[test]
    fn nothing_is_checked_by_default() {
        assert!(Expected::default().check(&token(&[], None)).is_ok());
        assert!(Expected::default().check(&token(&["x"], Some("y"))).is_ok());
    }

    #[test]
    fn a_token_whose_audience_names_the_resource_passes() {
        let expected = expect(&[ORDERS], None);
        assert!(expected.check(&token(&[ORDERS], None)).is_ok());
        assert!(
            expected
                .check(&token(&["https://billing.example.com", ORDERS], None))
                .is_ok()
        );
    }

    #[test]
    fn a_token_for_another_resource_or_for_none_is_refused() {
        let expected = expect(&[ORDERS], None);
        for aud in [
            &["https://billing.example.com"][..],
            &[],
            // Not the same string: a trailing slash, another case, a prefix.
            &["https://orders.example.com/"],
            &["https://ORDERS.example.com"],
            &["https://orders.example.com.evil"],
        ] {
            assert!(
                matches!(
                    expected.check(&token(aud, None)),
                    Err(GuardError::NotForThisResource)
                ),
                "{aud:?}"
            );
        }
    }

    #[test]
    fn any_of_several_resources_will_do() {
        let expected = expect(&[ORDERS, "urn:umbra:orders"], None);
        assert!(expected.check(&token(&["urn:umbra:orders"], None)).is_ok());
        assert!(
            expected
                .check(&token(&["urn:umbra:billing"], None))
                .is_err()
        );
    }

    #[test]
    fn a_missing_or_different_issuer_is_refused() {
        let expected = expect(&[], Some("https://auth.example.com"));
        assert!(
            expected
                .check(&token(&[], Some("https://auth.example.com")))
                .is_ok()
        );
        for iss in [
            None,
            Some("https://auth.example.com/"),
            Some("https://evil"),
        ] {
            assert!(
                matches!(
                    expected.check(&token(&[], iss)),
                    Err(GuardError::WrongIssuer)
                ),
                "{iss:?}"
            );
        }
    }

    #[test]
    fn the_issuer_is_checked_before_the_audience() {
        let expected = expect(&[ORDERS], Some("https://auth.example.com"));
        assert!(matches!(
            expected.check(&token(&[ORDERS], Some("https://evil"))),
            Err(GuardError::WrongIssuer)
        ));
    }

    #[test]
    fn resources_must_be_absolute_uris_without_fragment() {
        for good in [
            ORDERS,
            "https://api.example.com/orders?v=2",
            "http://orders:8081",
            "urn:umbra:orders",
        ] {
            assert!(check_resource(good).is_ok(), "{good}");
        }
        for (bad, reason) in [
            ("", "empty"),
            ("orders", "absolute URI"),
            ("/orders", "absolute URI"),
            ("https://orders.example.com#x", "fragment"),
            ("https://orders.example.com#", "fragment"),
            (" https://orders.example.com", "whitespace"),
            ("https://orders.example.com\n", "whitespace"),
        ] {
            let err = check_resource(bad).unwrap_err().to_string();
            assert!(err.contains(reason), "{bad:?}: {err}");
        }
    }

    #[test]
    fn an_issuer_must_not_be_empty() {
        assert!(check_issuer("http://umbra:8080").is_ok());
        for bad in ["", "  ", " https://as"] {
            assert!(check_issuer(bad).is_err(), "{bad:?}");
        }
    }
}
