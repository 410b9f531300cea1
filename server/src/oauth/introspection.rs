//! Token introspection (RFC 7662 §2.2), answered per caller.
//!
//! Any token that is unknown, expired, revoked, malformed, of a revoked grant or of a disabled
//! user answers `{"active": false}` and nothing else; so does any token the caller may not
//! see (RFC 7662 §2.2 lets the answer depend on who asks):
//! - an access token with an audience (RFC 8707) is seen only by the resource servers of
//!   those resources;
//! - an access token without one is seen by every resource server, unless the deployment
//!   requires audiences (`introspection.require_audience`);
//! - a refresh token is seen only by the client it was issued to, so a resource server that
//!   checks `active` alone never accepts one.
use super::resource::{Actor, Audience};
use serde::Serialize;

/// Which kind of token a record describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordKind {
    Access,
    Refresh,
}

/// What storage knows about a token, read in one lookup with its grant and user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRecord {
    pub kind: RecordKind,
    /// The client the token was issued to (for an exchanged token, the acting client).
    pub client_id: String,
    /// The client the grant was given to: the subject of a token issued to no user, which an
    /// exchange passes on unchanged.
    pub grant_client_id: String,
    pub scope: String,
    pub audience: Audience,
    /// The actor chain of an exchanged token (RFC 8693 §4.1).
    pub act: Option<Actor>,
    pub issued_at: i64,
    pub expires_at: i64,
    /// The token itself or its grant has been revoked (or, for a refresh token, it has been
    /// used).
    pub revoked: bool,
    /// The resource owner, for tokens issued to a user.
    pub user: Option<TokenUser>,
}

/// The resource owner of a user token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenUser {
    pub id: String,
    pub username: String,
    pub disabled: bool,
}

/// Who is asking, and what it may see.
#[derive(Debug, Clone, Copy)]
pub struct Caller<'a> {
    pub client_id: &'a str,
    /// A resource server for tokens without an audience (`umbra client create --introspect`).
    pub can_introspect: bool,
    /// The resources it is the resource server of.
    pub introspects_for: &'a [String],
    /// Tokens without an audience are seen by nobody (`introspection.require_audience`).
    pub require_audience: bool,
}

impl Caller<'_> {
    /// Whether the caller may learn that `record` is active.
    fn may_see(&self, record: &TokenRecord) -> bool {
        match record.kind {
            RecordKind::Refresh => record.client_id == self.client_id,
            RecordKind::Access => self.may_see_access(&record.audience),
        }
    }

    /// Whether the caller may learn about an access token meant for `audience` (the
    /// revocation stream filters its events with this too).
    pub fn may_see_access(&self, audience: &Audience) -> bool {
        if audience.is_empty() {
            !self.require_audience && (self.can_introspect || !self.introspects_for.is_empty())
        } else {
            audience.intersects(self.introspects_for)
        }
    }
}

/// The introspection response body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Introspection {
    pub active: bool,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub details: Option<ActiveToken>,
}

/// The members of an active answer (RFC 7662 §2.2, with `act` of RFC 8693 §4.1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ActiveToken {
    /// Space-separated scopes; left out for a token granted none, since RFC 7662 §2.2
    /// defines `scope` as a list of scopes and `""` is not one.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub scope: String,
    pub client_id: String,
    /// `Bearer` for an access token, `refresh_token` for a refresh token.
    pub token_type: &'static str,
    pub exp: i64,
    pub iat: i64,
    pub nbf: i64,
    /// The user for user tokens, the client for client tokens (as RFC 9068 §2.2 does).
    pub sub: String,
    /// The user's name, for user tokens.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// The resource identifiers the token is for; left out for a token without audience.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub aud: Vec<String>,
    pub iss: String,
    /// A stable identifier of the token that reveals nothing of it.
    pub jti: String,
    /// Who acts on the subject's behalf, for an exchanged token (RFC 8693 §4.1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub act: Option<Actor>,
}

impl Introspection {
    pub fn inactive() -> Self {
        Self {
            active: false,
            details: None,
        }
    }

    /// Decides whether the token is active at `now` for `caller` and, if so, what to say
    /// about it. `jti` is the token's public identifier.
    pub fn of(
        record: Option<TokenRecord>,
        now: i64,
        issuer: &str,
        caller: &Caller<'_>,
        jti: String,
    ) -> Self {
        let Some(record) = record else {
            return Self::inactive();
        };
        let user_disabled = record.user.as_ref().is_some_and(|u| u.disabled);
        if record.revoked || record.expires_at <= now || user_disabled || !caller.may_see(&record) {
            return Self::inactive();
        }
        let (sub, username) = match record.user {
            Some(user) => (user.id, Some(user.username)),
            None => (record.grant_client_id, None),
        };
        Self {
            active: true,
            details: Some(ActiveToken {
                scope: record.scope,
                client_id: record.client_id,
                token_type: match record.kind {
                    RecordKind::Access => "Bearer",
                    RecordKind::Refresh => "refresh_token",
                },
                exp: record.expires_at,
                iat: record.issued_at,
                nbf: record.issued_at,
                sub,
                username,
                aud: record.audience.to_vec(),
                iss: issuer.to_owned(),
                jti,
                act: record.act,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ORDERS: &str = "https://orders.example";

    fn record() -> TokenRecord {
        TokenRecord {
            kind: RecordKind::Access,
            client_id: "svc".into(),
            grant_client_id: "svc".into(),
            scope: "read".into(),
            audience: Audience::default(),
            act: None,
            issued_at: 1_000,
            expires_at: 2_000,
            revoked: false,
            user: None,
        }
    }

    fn resource_server(introspects_for: &[String]) -> Caller<'_> {
        Caller {
            client_id: "rs",
            can_introspect: true,
            introspects_for,
            require_audience: false,
        }
    }

    fn answer(record: TokenRecord, now: i64, caller: &Caller<'_>) -> Introspection {
        Introspection::of(Some(record), now, "https://as", caller, "j1".into())
    }

    #[test]
    fn an_inactive_answer_is_exactly_active_false() {
        let caller = resource_server(&[]);
        let json = serde_json::to_value(Introspection::of(
            None,
            1_500,
            "https://as",
            &caller,
            "j".into(),
        ))
        .unwrap();
        assert_eq!(json, serde_json::json!({"active": false}));
    }

    #[test]
    fn a_live_client_token_names_the_client_as_subject() {
        let json = serde_json::to_value(answer(record(), 1_500, &resource_server(&[]))).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "active": true, "scope": "read", "client_id": "svc", "token_type": "Bearer",
                "exp": 2_000, "iat": 1_000, "nbf": 1_000, "sub": "svc", "iss": "https://as",
                "jti": "j1"
            })
        );
    }

    #[test]
    fn a_token_granted_no_scope_leaves_scope_out() {
        let scopeless = TokenRecord {
            scope: String::new(),
            ..record()
        };
        let json = serde_json::to_value(answer(scopeless, 1_500, &resource_server(&[]))).unwrap();
        assert_eq!(json["active"], true);
        assert!(json.get("scope").is_none(), "{json}");
    }

    #[test]
    fn a_token_is_inactive_from_its_expiry_second_on() {
        let caller = resource_server(&[]);
        assert!(!answer(record(), 2_000, &caller).active);
        assert!(answer(record(), 1_999, &caller).active);
    }

    #[test]
    fn revoked_tokens_and_disabled_users_are_inactive() {
        let caller = resource_server(&[]);
        let revoked = TokenRecord {
            revoked: true,
            ..record()
        };
        assert_eq!(answer(revoked, 1_500, &caller), Introspection::inactive());
        let disabled = TokenRecord {
            user: Some(TokenUser {
                id: "u1".into(),
                username: "ada".into(),
                disabled: true,
            }),
            ..record()
        };
        assert_eq!(answer(disabled, 1_500, &caller), Introspection::inactive());
    }

    #[test]
    fn a_user_token_names_its_subject() {
        let with_user = TokenRecord {
            user: Some(TokenUser {
                id: "u1".into(),
                username: "ada".into(),
                disabled: false,
            }),
            ..record()
        };
        let details = answer(with_user, 1_500, &resource_server(&[]))
            .details
            .unwrap();
        assert_eq!(details.sub, "u1");
        assert_eq!(details.username.as_deref(), Some("ada"));
    }

    #[test]
    fn a_token_with_an_audience_is_seen_only_by_its_resource_servers() {
        let for_orders = TokenRecord {
            audience: Audience::new([ORDERS.to_owned()]),
            ..record()
        };
        let orders = [ORDERS.to_owned()];
        let billing = ["https://billing.example".to_owned()];
        let details = answer(for_orders.clone(), 1_500, &resource_server(&orders))
            .details
            .unwrap();
        assert_eq!(details.aud, vec![ORDERS.to_owned()]);
        assert_eq!(
            answer(for_orders.clone(), 1_500, &resource_server(&billing)),
            Introspection::inactive()
        );
        // The old "introspect everything" right sees no audience-bound token.
        assert_eq!(
            answer(for_orders, 1_500, &resource_server(&[])),
            Introspection::inactive()
        );
    }

    #[test]
    fn tokens_without_audience_are_refused_when_audiences_are_required() {
        let strict = Caller {
            require_audience: true,
            ..resource_server(&[])
        };
        assert_eq!(answer(record(), 1_500, &strict), Introspection::inactive());
        let not_a_resource_server = Caller {
            can_introspect: false,
            ..resource_server(&[])
        };
        assert_eq!(
            answer(record(), 1_500, &not_a_resource_server),
            Introspection::inactive()
        );
    }

    #[test]
    fn a_refresh_token_is_seen_only_by_its_own_client() {
        let refresh = TokenRecord {
            kind: RecordKind::Refresh,
            ..record()
        };
        assert_eq!(
            answer(refresh.clone(), 1_500, &resource_server(&[])),
            Introspection::inactive()
        );
        let owner = Caller {
            client_id: "svc",
            can_introspect: false,
            introspects_for: &[],
            require_audience: true,
        };
        let details = answer(refresh, 1_500, &owner).details.unwrap();
        assert_eq!(details.token_type, "refresh_token");
    }

    #[test]
    fn an_exchanged_token_carries_its_actor_chain() {
        let exchanged = TokenRecord {
            act: Some(Actor::on_top_of(
                "billing",
                Some(Actor::on_top_of("orders", None)),
            )),
            ..record()
        };
        let json = serde_json::to_value(answer(exchanged, 1_500, &resource_server(&[]))).unwrap();
        assert_eq!(
            json["act"],
            serde_json::json!({"sub": "billing", "act": {"sub": "orders"}})
        );
    }
}
