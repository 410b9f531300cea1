//! Token exchange (RFC 8693): a service that received a user's access token trades it for a
//! narrower one meant for the next service it calls, acting on the user's behalf.
//!
//! The exchanging client must be confidential and registered for the grant type; the subject
//! token must be an active Umbra access token, and (by default) meant for a resource the
//! client is the resource server of, so a service can only pass on what was sent to it. The
//! new token is for resources the client may ask for, with scopes no wider than both the
//! subject token's and the client's at those resources, expires no later than the subject
//! token, keeps its subject, and names the client on top of the actor chain (`act`). It
//! belongs to the subject token's grant, so revoking that grant revokes everything exchanged
//! from it.
use crate::oauth::client::Client;
use crate::oauth::error::OAuthError;
use crate::oauth::grant_type::GrantType;
use crate::oauth::introspection::TokenRecord;
use crate::oauth::params::Params;
use crate::oauth::resource::{self, Actor, Target};
use crate::oauth::scope::ScopeSet;

/// The only token type Umbra exchanges and issues (RFC 8693 §3).
pub const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";

/// The policy knobs of the deployment.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    /// The subject token must be meant for a resource the client serves.
    pub require_subject_audience: bool,
    /// Longest actor chain a new token may carry.
    pub max_chain_depth: usize,
    /// Lifetime of a new access token, before the subject token's expiry caps it.
    pub access_token_ttl_secs: i64,
}

/// What the exchange issues.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exchanged {
    pub target: Target,
    pub act: Actor,
    pub expires_at: i64,
}

/// The client may use this grant at all (checked before the subject token is looked up).
pub fn check_client(client: &Client) -> Result<(), OAuthError> {
    if client.is_public() || !client.allows_grant(GrantType::TokenExchange) {
        return Err(OAuthError::unauthorized_client(
            "this client may not use token exchange",
        ));
    }
    Ok(())
}

/// Checks the parameters that need no lookup and returns the subject token string.
pub fn subject_token(params: &Params) -> Result<&str, OAuthError> {
    let subject = params.require("subject_token")?;
    if params.require("subject_token_type")? != ACCESS_TOKEN_TYPE {
        return Err(OAuthError::invalid_request(
            "subject_token_type must be urn:ietf:params:oauth:token-type:access_token",
        ));
    }
    if params
        .get("requested_token_type")
        .is_some_and(|t| t != ACCESS_TOKEN_TYPE)
    {
        return Err(OAuthError::invalid_request(
            "only access tokens can be requested (requested_token_type)",
        ));
    }
    // The actor is the authenticated client; a second credential would only blur who acts.
    if params.get("actor_token").is_some() || params.get("actor_token_type").is_some() {
        return Err(OAuthError::invalid_request(
            "actor_token is not supported: the authenticated client is the actor",
        ));
    }
    Ok(subject)
}

/// Decides the exchange for `client` presenting `subject` (already looked up; `None` if it
/// is unknown) at `now`.
pub fn decide(
    client: &Client,
    subject: Option<&TokenRecord>,
    params: &Params,
    policy: &Policy,
    now: i64,
) -> Result<Exchanged, OAuthError> {
    let invalid_subject =
        || OAuthError::invalid_request("the subject_token is invalid, expired or revoked");
    let subject = subject.ok_or_else(invalid_subject)?;
    let user_disabled = subject.user.as_ref().is_some_and(|u| u.disabled);
    if subject.revoked || subject.expires_at <= now || user_disabled {
        return Err(invalid_subject());
    }
    if policy.require_subject_audience
        && !subject
            .audience
            .intersects(&client.resources.introspects_for)
    {
        return Err(OAuthError::invalid_request(
            "the subject_token is not meant for a resource this client serves",
        ));
    }
    let mut requested = params.get_all("resource");
    requested.extend(params.get_all("audience"));
    if requested.is_empty() && client.resources.default.is_none() {
        return Err(resource::invalid_target(
            "name the resource the new token is for (resource or audience)",
        ));
    }
    let wanted = resource::resolve(client, &requested, None)?;
    let allowed = wanted
        .scope
        .intersection(&ScopeSet::from_stored(&subject.scope));
    let scope = super::requested_scope(params.get("scope"), &allowed)?;
    if scope.is_empty() {
        return Err(OAuthError::invalid_scope(
            "none of the subject token's scopes may be granted at the requested resources",
        ));
    }
    let act = Actor::on_top_of(&client.id, subject.act.clone());
    if act.depth() > policy.max_chain_depth {
        return Err(OAuthError::invalid_request(format!(
            "the delegation chain would be longer than {} services",
            policy.max_chain_depth
        )));
    }
    Ok(Exchanged {
        target: Target {
            audience: wanted.audience,
            scope,
        },
        act,
        expires_at: subject.expires_at.min(now + policy.access_token_ttl_secs),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oauth::ErrorCode;
    use crate::oauth::introspection::{RecordKind, TokenUser};
    use crate::oauth::resource::{AllowedResource, Audience, ResourceAccess};
    use crate::oauth::token::{Token, TokenKind};

    const ORDERS: &str = "https://orders.example";
    const BILLING: &str = "https://billing.example";
    const POLICY: Policy = Policy {
        require_subject_audience: true,
        max_chain_depth: 2,
        access_token_ttl_secs: 600,
    };

    /// The orders service: serves ORDERS, may ask BILLING for `billing:read billing:write`.
    fn orders_service() -> Client {
        Client {
            id: "orders".into(),
            name: "Orders".into(),
            secret_hash: Some(Token::generate(TokenKind::ClientSecret).unwrap().hash()),
            redirect_uris: vec![],
            grant_types: vec![GrantType::TokenExchange],
            scopes: ScopeSet::default(),
            can_introspect: false,
            skip_consent: false,
            require_2fa: false,
            assertion_keys: None,
            openid: Default::default(),
            resources: ResourceAccess {
                allowed: vec![AllowedResource {
                    identifier: BILLING.into(),
                    name: "Billing".into(),
                    scopes: ScopeSet::parse("billing:read billing:write").unwrap(),
                }],
                default: None,
                introspects_for: vec![ORDERS.into()],
            },
            introspection_signed_response_alg: None,
            version: 1,
            secret_expires_at: None,
        }
    }

    fn subject() -> TokenRecord {
        TokenRecord {
            kind: RecordKind::Access,
            client_id: "gateway".into(),
            grant_client_id: "web".into(),
            scope: "orders:read billing:read".into(),
            audience: Audience::new([ORDERS.to_owned()]),
            act: None,
            issued_at: 1_000,
            expires_at: 1_300,
            revoked: false,
            user: Some(TokenUser {
                id: "u1".into(),
                username: "ada".into(),
                disabled: false,
            }),
        }
    }

    fn exchange(subject: &TokenRecord, query: &str) -> Result<Exchanged, ErrorCode> {
        let params = Params::parse(query.as_bytes()).unwrap();
        decide(&orders_service(), Some(subject), &params, &POLICY, 1_100).map_err(|e| e.code())
    }

    #[test]
    fn the_new_token_is_for_the_named_resource_with_the_common_scopes() {
        let issued = exchange(&subject(), "resource=https://billing.example").unwrap();
        assert_eq!(issued.target.audience.to_string(), BILLING);
        assert_eq!(issued.target.scope.to_string(), "billing:read");
        assert_eq!(issued.act, Actor::on_top_of("orders", None));
        // Capped by the subject token's expiry, not now + 600.
        assert_eq!(issued.expires_at, 1_300);
        let issued = exchange(&subject(), "audience=https://billing.example").unwrap();
        assert_eq!(issued.target.audience.to_string(), BILLING);
    }

    #[test]
    fn scopes_beyond_the_subject_token_or_the_policy_are_invalid_scope() {
        assert_eq!(
            exchange(
                &subject(),
                "resource=https://billing.example&scope=billing:write"
            ),
            Err(ErrorCode::InvalidScope)
        );
        let no_billing = TokenRecord {
            scope: "orders:read".into(),
            ..subject()
        };
        assert_eq!(
            exchange(&no_billing, "resource=https://billing.example"),
            Err(ErrorCode::InvalidScope)
        );
    }

    #[test]
    fn unknown_unallowed_or_missing_targets_are_invalid_target() {
        assert_eq!(
            exchange(&subject(), "resource=https://orders.example"),
            Err(ErrorCode::InvalidTarget)
        );
        assert_eq!(
            exchange(&subject(), "resource=billing"),
            Err(ErrorCode::InvalidTarget)
        );
        assert_eq!(exchange(&subject(), ""), Err(ErrorCode::InvalidTarget));
    }

    #[test]
    fn a_subject_not_meant_for_the_client_or_not_active_is_invalid_request() {
        let elsewhere = TokenRecord {
            audience: Audience::new([BILLING.to_owned()]),
            ..subject()
        };
        let query = "resource=https://billing.example";
        assert_eq!(exchange(&elsewhere, query), Err(ErrorCode::InvalidRequest));
        let revoked = TokenRecord {
            revoked: true,
            ..subject()
        };
        assert_eq!(exchange(&revoked, query), Err(ErrorCode::InvalidRequest));
        let expired = TokenRecord {
            expires_at: 1_100,
            ..subject()
        };
        assert_eq!(exchange(&expired, query), Err(ErrorCode::InvalidRequest));
        let params = Params::parse(query.as_bytes()).unwrap();
        assert_eq!(
            decide(&orders_service(), None, &params, &POLICY, 1_100)
                .unwrap_err()
                .code(),
            ErrorCode::InvalidRequest
        );
    }

    #[test]
    fn the_actor_chain_grows_and_is_bounded() {
        let once = TokenRecord {
            act: Some(Actor::on_top_of("gateway-bff", None)),
            ..subject()
        };
        let issued = exchange(&once, "resource=https://billing.example").unwrap();
        assert_eq!(issued.act.depth(), 2);
        let twice = TokenRecord {
            act: Some(Actor::on_top_of("b", Some(Actor::on_top_of("a", None)))),
            ..subject()
        };
        assert_eq!(
            exchange(&twice, "resource=https://billing.example"),
            Err(ErrorCode::InvalidRequest)
        );
    }

    #[test]
    fn only_access_tokens_are_exchanged_and_no_actor_token_is_taken() {
        let subject_of = |query: &str| {
            subject_token(&Params::parse(query.as_bytes()).unwrap())
                .map(str::to_owned)
                .map_err(|e| e.code())
        };
        let access =
            "subject_token=at_x&subject_token_type=urn:ietf:params:oauth:token-type:access_token";
        assert_eq!(subject_of(access), Ok("at_x".to_owned()));
        assert_eq!(
            subject_of(
                "subject_token=x&subject_token_type=urn:ietf:params:oauth:token-type:refresh_token"
            ),
            Err(ErrorCode::InvalidRequest)
        );
        assert_eq!(
            subject_of("subject_token=x"),
            Err(ErrorCode::InvalidRequest)
        );
        assert_eq!(
            subject_of(&format!("{access}&actor_token=at_y")),
            Err(ErrorCode::InvalidRequest)
        );
        assert_eq!(
            subject_of(&format!(
                "{access}&requested_token_type=urn:ietf:params:oauth:token-type:id_token"
            )),
            Err(ErrorCode::InvalidRequest)
        );
    }
}
