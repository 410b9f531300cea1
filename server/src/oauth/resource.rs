//! Resource indicators (RFC 8707): which APIs a token is for, and which scopes that allows.
//!
//! A client is allowed some resources, each with the scopes it may ask there. A request names
//! resources with `resource` (or the client's default applies); the chosen resources are the
//! token's audience, and the scopes are checked against what the client may ask at them.
//! Later requests on the same grant (code redemption, refresh, RFC 8707 §2.2) may narrow the
//! audience and the scope, never widen them.
//!
//! The OpenID Connect scopes (`openid`, `profile`, `email`) are about the user, not about an
//! API: a client allowed them (its own scopes) may ask for them by name beside the scopes of
//! any resource, and they stay when a token is narrowed to some of the grant's resources.
use super::client::Client;
use super::error::{ErrorCode, OAuthError};
use super::grants::requested_scope;
use super::oidc;
use super::params::Params;
use super::scope::ScopeSet;
use serde::{Deserialize, Serialize};
use std::fmt;

/// Longest resource identifier accepted.
pub const MAX_RESOURCE_LEN: usize = 512;
/// Most resources one request may name.
pub const MAX_RESOURCES_PER_REQUEST: usize = 16;

/// Why a string is not a resource identifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ResourceIdError {
    #[error("is longer than {MAX_RESOURCE_LEN} characters")]
    TooLong,
    /// "The value of the resource parameter MUST be an absolute URI" (RFC 8707 §2).
    #[error("must be an absolute URI (such as https://api.example.com)")]
    NotAbsolute,
    /// "… MUST NOT include a fragment component" (RFC 8707 §2).
    #[error("must not contain a fragment (#)")]
    Fragment,
}

/// Checks that `raw` may name a resource: an absolute URI of printable ASCII without a fragment.
pub fn validate_identifier(raw: &str) -> Result<(), ResourceIdError> {
    if raw.len() > MAX_RESOURCE_LEN {
        return Err(ResourceIdError::TooLong);
    }
    if raw.contains('#') {
        return Err(ResourceIdError::Fragment);
    }
    if !raw.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ResourceIdError::NotAbsolute);
    }
    match url::Url::parse(raw) {
        Ok(url) if !url.cannot_be_a_base() || url.scheme() == "urn" => Ok(()),
        _ => Err(ResourceIdError::NotAbsolute),
    }
}

/// The resources a token or grant is for: an ordered set of identifiers, stored
/// space-separated (an absolute URI holds no space). Empty means "no audience".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Audience(Vec<String>);

impl Audience {
    pub fn new(identifiers: impl IntoIterator<Item = String>) -> Self {
        let mut audience = Self::default();
        for identifier in identifiers {
            if !audience.contains(&identifier) {
                audience.0.push(identifier);
            }
        }
        audience
    }

    /// Reads a stored audience back.
    pub fn from_stored(stored: &str) -> Self {
        Self::new(
            stored
                .split(' ')
                .filter(|s| !s.is_empty())
                .map(str::to_owned),
        )
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn contains(&self, identifier: &str) -> bool {
        self.0.iter().any(|r| r == identifier)
    }

    pub fn is_subset_of(&self, other: &Audience) -> bool {
        self.0.iter().all(|r| other.contains(r))
    }

    /// Whether any identifier is also in `identifiers`.
    pub fn intersects(&self, identifiers: &[String]) -> bool {
        identifiers.iter().any(|r| self.contains(r))
    }

    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }

    pub fn to_vec(&self) -> Vec<String> {
        self.0.clone()
    }
}

impl fmt::Display for Audience {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.join(" "))
    }
}

/// What a token is for: its audience and its scope.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Target {
    pub audience: Audience,
    pub scope: ScopeSet,
}

/// A resource a client may ask tokens for, with the scopes it may ask there (already limited
/// to those the resource defines).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowedResource {
    pub identifier: String,
    /// What people are shown, e.g. on the consent page.
    pub name: String,
    pub scopes: ScopeSet,
}

/// What a client may do with resources.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResourceAccess {
    /// Resources the client may ask tokens for.
    pub allowed: Vec<AllowedResource>,
    /// The resource used when a request names none.
    pub default: Option<String>,
    /// Resources whose tokens the client may introspect (it is their resource server).
    pub introspects_for: Vec<String>,
}

impl ResourceAccess {
    /// The resource `identifier` if the client may ask for it.
    pub fn allowed(&self, identifier: &str) -> Option<&AllowedResource> {
        self.allowed.iter().find(|r| r.identifier == identifier)
    }

    /// The scopes the client may ask at the resources of `audience`; `None` if one of them
    /// is not (or no longer) allowed.
    pub fn scopes_at(&self, audience: &Audience) -> Option<ScopeSet> {
        let mut scopes = ScopeSet::default();
        for identifier in audience.iter() {
            scopes.extend(&self.allowed(identifier)?.scopes);
        }
        Some(scopes)
    }
}

/// The `resource` values of a request, each checked for form (RFC 8707 §2). Bounded, so that
/// a request cannot make the server compare thousands of strings.
pub fn parse_requested<'a>(values: &[&'a str]) -> Result<Vec<&'a str>, OAuthError> {
    if values.len() > MAX_RESOURCES_PER_REQUEST {
        return Err(invalid_target(format!(
            "at most {MAX_RESOURCES_PER_REQUEST} resource parameters may be sent"
        )));
    }
    for value in values {
        validate_identifier(value)
            .map_err(|reason| invalid_target(format!("each resource {reason}")))?;
    }
    Ok(values.to_vec())
}

/// The audience and scope of a new grant (authorization request, client credentials): the
/// named resources (or the client's default), each of them allowed for the client, and a
/// scope the client may ask at them. Without any resource, the client's own scopes apply and
/// the token has no audience.
pub fn resolve(
    client: &Client,
    requested: &[&str],
    scope: Option<&str>,
) -> Result<Target, OAuthError> {
    let requested = parse_requested(requested)?;
    let access = &client.resources;
    let identifiers: Vec<String> = if requested.is_empty() {
        access.default.iter().cloned().collect()
    } else {
        requested.iter().map(|r| (*r).to_owned()).collect()
    };
    if identifiers.is_empty() {
        return Ok(Target {
            audience: Audience::default(),
            scope: requested_scope(scope, &client.scopes)?,
        });
    }
    let audience = Audience::new(identifiers);
    let mut allowed = access.scopes_at(&audience).ok_or_else(not_allowed)?;
    // Asked for by name only: a request that names no scope gets the resources' scopes.
    if scope.is_some() {
        allowed.extend(&oidc::oidc_scopes(&client.scopes));
    }
    Ok(Target {
        scope: requested_scope(scope, &allowed)?,
        audience,
    })
}

/// The audience and scope of a token issued from an existing grant (code redemption, refresh;
/// RFC 8707 §2.2): the named resources must be among the grant's and still allowed for the
/// client, and the scope is the grant's (or the requested part of it) limited to what the
/// client may ask at them. Without `resource`, the grant's audience and scope.
pub fn narrow(client: &Client, granted: &Target, params: &Params) -> Result<Target, OAuthError> {
    let requested = parse_requested(&params.get_all("resource"))?;
    let scope = requested_scope(params.get("scope"), &granted.scope)?;
    if requested.is_empty() {
        return Ok(Target {
            audience: granted.audience.clone(),
            scope,
        });
    }
    let audience = Audience::new(requested.iter().map(|r| (*r).to_owned()));
    if !audience.is_subset_of(&granted.audience) {
        return Err(invalid_target(
            "a resource was not part of the original grant; a token can be narrowed, never widened",
        ));
    }
    let mut allowed = client
        .resources
        .scopes_at(&audience)
        .ok_or_else(not_allowed)?;
    allowed.extend(&oidc::oidc_scopes(&client.scopes));
    Ok(Target {
        audience,
        scope: scope.intersection(&allowed),
    })
}

fn not_allowed() -> OAuthError {
    // One answer for "unknown" and "not allowed": which resources exist is not the client's
    // business.
    invalid_target("a requested resource is unknown or not allowed for this client")
}

/// `invalid_target` (RFC 8707 §2): "The requested resource is invalid, missing, unknown, or
/// malformed."
pub fn invalid_target(description: impl Into<std::borrow::Cow<'static, str>>) -> OAuthError {
    OAuthError::new(ErrorCode::InvalidTarget, description)
}

/// Who acted on the subject's behalf, most recent first (RFC 8693 §4.1): `{"sub": "<client
/// id>", "act": {…}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Actor {
    /// The acting client's id.
    pub sub: String,
    /// The actor before this one, if the token was exchanged more than once.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(no_recursion)]
    pub act: Option<Box<Actor>>,
}

impl Actor {
    /// `client_id` acting on top of an existing chain.
    pub fn on_top_of(client_id: &str, previous: Option<Actor>) -> Self {
        Self {
            sub: client_id.to_owned(),
            act: previous.map(Box::new),
        }
    }

    /// How many actors the chain has.
    pub fn depth(&self) -> usize {
        1 + self.act.as_ref().map_or(0, |a| a.depth())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oauth::grant_type::GrantType;

    const ORDERS: &str = "https://orders.example";
    const BILLING: &str = "https://billing.example";

    fn client(default: Option<&str>) -> Client {
        Client {
            id: "app".into(),
            name: "App".into(),
            secret_hash: None,
            redirect_uris: vec![],
            grant_types: vec![GrantType::AuthorizationCode],
            scopes: ScopeSet::parse("profile").unwrap(),
            can_introspect: false,
            skip_consent: false,
            require_2fa: false,
            assertion_keys: None,
            openid: Default::default(),
            resources: ResourceAccess {
                allowed: vec![
                    AllowedResource {
                        identifier: ORDERS.into(),
                        name: "Orders".into(),
                        scopes: ScopeSet::parse("orders:read orders:write").unwrap(),
                    },
                    AllowedResource {
                        identifier: BILLING.into(),
                        name: "Billing".into(),
                        scopes: ScopeSet::parse("billing:read").unwrap(),
                    },
                ],
                default: default.map(str::to_owned),
                introspects_for: vec![],
            },
            introspection_signed_response_alg: None,
            version: 1,
            secret_expires_at: None,
        }
    }

    fn code(result: Result<Target, OAuthError>) -> ErrorCode {
        result.unwrap_err().code()
    }

    #[test]
    fn identifiers_are_absolute_uris_without_fragments() {
        assert_eq!(validate_identifier(ORDERS), Ok(()));
        assert_eq!(validate_identifier("urn:example:orders"), Ok(()));
        assert_eq!(validate_identifier("https://a.example/api?v=1"), Ok(()));
        assert_eq!(
            validate_identifier("/relative"),
            Err(ResourceIdError::NotAbsolute)
        );
        assert_eq!(
            validate_identifier("orders"),
            Err(ResourceIdError::NotAbsolute)
        );
        assert_eq!(
            validate_identifier("https://a.example/#x"),
            Err(ResourceIdError::Fragment)
        );
        assert_eq!(
            validate_identifier("https://a.example/ x"),
            Err(ResourceIdError::NotAbsolute)
        );
        assert_eq!(
            validate_identifier(&format!("https://a.example/{}", "a".repeat(600))),
            Err(ResourceIdError::TooLong)
        );
    }

    #[test]
    fn named_resources_become_the_audience_and_bound_the_scope() {
        let Target {
            audience: aud,
            scope,
        } = resolve(&client(None), &[ORDERS], None).unwrap();
        assert_eq!(aud.to_string(), ORDERS);
        assert_eq!(scope.to_string(), "orders:read orders:write");
        let Target {
            audience: aud,
            scope,
        } = resolve(&client(None), &[ORDERS, BILLING], Some("billing:read")).unwrap();
        assert_eq!(aud.to_vec(), vec![ORDERS.to_owned(), BILLING.to_owned()]);
        assert_eq!(scope.to_string(), "billing:read");
        assert_eq!(
            code(resolve(&client(None), &[ORDERS], Some("billing:read"))),
            ErrorCode::InvalidScope
        );
    }

    #[test]
    fn bad_unknown_and_unallowed_resources_are_invalid_target() {
        for bad in [
            "orders",
            "https://orders.example#frag",
            "https://other.example",
        ] {
            assert_eq!(
                code(resolve(&client(None), &[bad], None)),
                ErrorCode::InvalidTarget,
                "{bad}"
            );
        }
        let many: Vec<&str> = std::iter::repeat_n(ORDERS, MAX_RESOURCES_PER_REQUEST + 1).collect();
        assert_eq!(
            code(resolve(&client(None), &many, None)),
            ErrorCode::InvalidTarget
        );
    }

    #[test]
    fn without_resource_the_default_applies_or_no_audience() {
        let Target {
            audience: aud,
            scope,
        } = resolve(&client(Some(BILLING)), &[], None).unwrap();
        assert_eq!(aud.to_string(), BILLING);
        assert_eq!(scope.to_string(), "billing:read");
        let Target {
            audience: aud,
            scope,
        } = resolve(&client(None), &[], None).unwrap();
        assert!(aud.is_empty());
        assert_eq!(scope.to_string(), "profile");
    }

    #[test]
    fn narrowing_keeps_within_the_grant_and_never_widens() {
        let granted = Target {
            audience: Audience::new([ORDERS.to_owned(), BILLING.to_owned()]),
            scope: ScopeSet::parse("orders:read billing:read").unwrap(),
        };
        let c = client(None);
        let narrow_with = |granted: &Target, query: &str| {
            narrow(&c, granted, &Params::parse(query.as_bytes()).unwrap())
        };
        let billing = narrow_with(&granted, "resource=https://billing.example").unwrap();
        assert_eq!(billing.audience.to_string(), BILLING);
        assert_eq!(billing.scope.to_string(), "billing:read");
        assert_eq!(narrow_with(&granted, "").unwrap(), granted);
        let only_orders = Target {
            audience: Audience::new([ORDERS.to_owned()]),
            ..granted.clone()
        };
        assert_eq!(
            code(narrow_with(
                &only_orders,
                "resource=https://billing.example"
            )),
            ErrorCode::InvalidTarget
        );
        assert_eq!(
            code(narrow_with(
                &granted,
                "resource=https://orders.example&scope=orders:write"
            )),
            ErrorCode::InvalidScope
        );
    }

    #[test]
    fn oidc_scopes_the_client_is_allowed_pass_beside_a_resources_scopes() {
        let mut c = client(None);
        c.scopes = ScopeSet::parse("openid profile read").unwrap();
        let target = resolve(&c, &[ORDERS], Some("openid profile orders:read")).unwrap();
        assert_eq!(target.scope.to_string(), "openid profile orders:read");
        assert_eq!(target.audience.to_string(), ORDERS);
        // Not the client's other scopes, nor OIDC scopes it is not allowed.
        assert_eq!(
            code(resolve(&c, &[ORDERS], Some("openid read"))),
            ErrorCode::InvalidScope
        );
        assert_eq!(
            code(resolve(&c, &[ORDERS], Some("openid email"))),
            ErrorCode::InvalidScope
        );
        // Named only: without a scope parameter, the resource's scopes as before.
        assert_eq!(
            resolve(&c, &[ORDERS], None).unwrap().scope.to_string(),
            "orders:read orders:write"
        );
        // The resource checks stay: an unallowed resource is still invalid_target.
        assert_eq!(
            code(resolve(&c, &["https://other.example"], Some("openid"))),
            ErrorCode::InvalidTarget
        );
        // Narrowing to one resource keeps them.
        let granted = Target {
            audience: Audience::new([ORDERS.to_owned(), BILLING.to_owned()]),
            scope: ScopeSet::parse("openid orders:read billing:read").unwrap(),
        };
        let narrowed = narrow(
            &c,
            &granted,
            &Params::parse(b"resource=https://billing.example").unwrap(),
        )
        .unwrap();
        assert_eq!(narrowed.scope.to_string(), "openid billing:read");
    }

    #[test]
    fn actors_nest_most_recent_first() {
        let first = Actor::on_top_of("orders", None);
        let second = Actor::on_top_of("billing", Some(first));
        assert_eq!(second.depth(), 2);
        assert_eq!(
            serde_json::to_value(&second).unwrap(),
            serde_json::json!({"sub": "billing", "act": {"sub": "orders"}})
        );
    }
}
