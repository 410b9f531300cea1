//! Token introspection (RFC 7662 §2.2).
//!
//! Any token that is unknown, expired, revoked, malformed, of a revoked grant or of a disabled
//! user answers `{"active": false}` and nothing else. Only access tokens are ever active: a
//! resource server that checks `active` alone must never accept a refresh token or a code.
use serde::Serialize;

/// What storage knows about an access token, read in one lookup with its grant and user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessTokenRecord {
    pub client_id: String,
    pub scope: String,
    pub issued_at: i64,
    pub expires_at: i64,
    /// The token itself or its grant has been revoked.
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

/// The introspection response body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Introspection {
    pub active: bool,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub details: Option<ActiveToken>,
}

/// The members of an active answer (RFC 7662 §2.2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ActiveToken {
    /// Space-separated scopes; left out for a token granted none, since RFC 7662 §2.2
    /// defines `scope` as a list of scopes and `""` is not one.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub scope: String,
    pub client_id: String,
    pub token_type: &'static str,
    pub exp: i64,
    pub iat: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// The audience: the client the token was issued to.
    pub aud: String,
    pub iss: String,
}

impl Introspection {
    pub fn inactive() -> Self {
        Self {
            active: false,
            details: None,
        }
    }

    /// Decides whether the token is active at `now` and, if so, what to say about it.
    pub fn of(record: Option<AccessTokenRecord>, now: i64, issuer: &str) -> Self {
        let Some(record) = record else {
            return Self::inactive();
        };
        let user_disabled = record.user.as_ref().is_some_and(|u| u.disabled);
        if record.revoked || record.expires_at <= now || user_disabled {
            return Self::inactive();
        }
        let (sub, username) = match record.user {
            Some(user) => (Some(user.id), Some(user.username)),
            None => (None, None),
        };
        Self {
            active: true,
            details: Some(ActiveToken {
                scope: record.scope,
                aud: record.client_id.clone(),
                client_id: record.client_id,
                token_type: "Bearer",
                exp: record.expires_at,
                iat: record.issued_at,
                sub,
                username,
                iss: issuer.to_owned(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> AccessTokenRecord {
        AccessTokenRecord {
            client_id: "svc".into(),
            scope: "read".into(),
            issued_at: 1_000,
            expires_at: 2_000,
            revoked: false,
            user: None,
        }
    }

    #[test]
    fn an_inactive_answer_is_exactly_active_false() {
        let json = serde_json::to_value(Introspection::of(None, 1_500, "https://as")).unwrap();
        assert_eq!(json, serde_json::json!({"active": false}));
    }

    #[test]
    fn a_live_client_token_is_active_without_a_subject() {
        let json =
            serde_json::to_value(Introspection::of(Some(record()), 1_500, "https://as")).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "active": true, "scope": "read", "client_id": "svc", "token_type": "Bearer",
                "exp": 2_000, "iat": 1_000, "aud": "svc", "iss": "https://as"
            })
        );
    }

    #[test]
    fn a_token_granted_no_scope_leaves_scope_out() {
        let scopeless = AccessTokenRecord {
            scope: String::new(),
            ..record()
        };
        let json = serde_json::to_value(Introspection::of(Some(scopeless), 1_500, "x")).unwrap();
        assert_eq!(json["active"], true);
        assert!(json.get("scope").is_none(), "{json}");
    }

    #[test]
    fn a_token_is_inactive_from_its_expiry_second_on() {
        assert!(!Introspection::of(Some(record()), 2_000, "x").active);
        assert!(Introspection::of(Some(record()), 1_999, "x").active);
    }

    #[test]
    fn revoked_tokens_and_disabled_users_are_inactive() {
        let revoked = AccessTokenRecord {
            revoked: true,
            ..record()
        };
        assert_eq!(
            Introspection::of(Some(revoked), 1_500, "x"),
            Introspection::inactive()
        );
        let disabled = AccessTokenRecord {
            user: Some(TokenUser {
                id: "u1".into(),
                username: "ada".into(),
                disabled: true,
            }),
            ..record()
        };
        assert_eq!(
            Introspection::of(Some(disabled), 1_500, "x"),
            Introspection::inactive()
        );
    }

    #[test]
    fn a_user_token_names_its_subject() {
        let with_user = AccessTokenRecord {
            user: Some(TokenUser {
                id: "u1".into(),
                username: "ada".into(),
                disabled: false,
            }),
            ..record()
        };
        let details = Introspection::of(Some(with_user), 1_500, "x")
            .details
            .unwrap();
        assert_eq!(details.sub.as_deref(), Some("u1"));
        assert_eq!(details.username.as_deref(), Some("ada"));
    }
}
