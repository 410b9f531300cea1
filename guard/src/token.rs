//! What an introspection answer (RFC 7662 §2.2) means for a request: a [`ValidatedToken`] or
//! a refusal.
use crate::error::{GuardError, Unavailable};
use crate::scopes::{ScopeRequirement, Scopes};
use serde::Deserialize;

/// An access token the authorization server called active, with `exp` still ahead by the
/// local clock. Carries what the token stands for, never the token itself.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ValidatedToken {
    /// The resource owner, for tokens issued to a user; `None` for `client_credentials`.
    pub sub: Option<String>,
    /// The resource owner's username, for tokens issued to a user.
    pub username: Option<String>,
    /// The client the token was issued to.
    pub client_id: String,
    /// The scopes granted.
    pub scopes: Scopes,
    /// Expiry, in seconds since the Unix epoch.
    pub exp: i64,
    /// Issue time, in seconds since the Unix epoch.
    pub iat: Option<i64>,
    /// The audience (Umbra names the client the token was issued to).
    pub aud: Vec<String>,
    /// The issuer identifier of the authorization server.
    pub iss: Option<String>,
}

impl ValidatedToken {
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.contains(scope)
    }

    /// Who is acting: the user for user tokens, else the client.
    pub fn principal(&self) -> &str {
        self.sub.as_deref().unwrap_or(&self.client_id)
    }

    /// Refuses with [`GuardError::InsufficientScope`] unless `requirement` is met.
    pub fn require(&self, requirement: &ScopeRequirement) -> Result<(), GuardError> {
        if requirement.is_met_by(&self.scopes) {
            Ok(())
        } else {
            Err(GuardError::InsufficientScope(requirement.clone()))
        }
    }

    /// Refuses unless every scope in `scopes` was granted; for use in handlers:
    /// `token.require_all(["write"])?`.
    pub fn require_all<I, S>(&self, scopes: I) -> Result<(), GuardError>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.require(&ScopeRequirement::all(scopes))
    }

    /// Refuses unless at least one scope in `scopes` was granted.
    pub fn require_any<I, S>(&self, scopes: I) -> Result<(), GuardError>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.require(&ScopeRequirement::any(scopes))
    }

    /// Refuses with [`GuardError::Expired`] from the second `exp` is reached, as Umbra does.
    pub(crate) fn check_expiry(&self, now: i64) -> Result<(), GuardError> {
        if self.exp <= now {
            Err(GuardError::Expired)
        } else {
            Ok(())
        }
    }
}

/// The body of an introspection answer. `active` is required and must be a JSON boolean;
/// the default is an inactive answer.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct Answer {
    active: bool,
    #[serde(default)]
    scope: Option<String>,
    #[serde(default)]
    client_id: Option<String>,
    #[serde(default)]
    token_type: Option<String>,
    #[serde(default)]
    exp: Option<i64>,
    #[serde(default)]
    iat: Option<i64>,
    #[serde(default)]
    sub: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    aud: Option<Audience>,
    #[serde(default)]
    iss: Option<String>,
}

/// RFC 7662 takes `aud` from JWT (RFC 7519 §4.1.3): one string or an array of them.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Audience {
    One(String),
    Many(Vec<String>),
}

impl Answer {
    /// Decides at `now`. An active answer must name `client_id` and `exp` (Umbra always
    /// does); one without them is treated as a broken server, not as a pass.
    pub(crate) fn judge(self, now: i64) -> Result<ValidatedToken, GuardError> {
        if !self.active {
            return Err(GuardError::Inactive);
        }
        if self
            .token_type
            .as_deref()
            .is_some_and(|t| !t.eq_ignore_ascii_case("bearer"))
        {
            return Err(GuardError::Inactive);
        }
        let missing = |member: &str| {
            GuardError::Unavailable(Unavailable::InvalidAnswer(format!(
                "an active answer without {member}"
            )))
        };
        let client_id = self.client_id.ok_or_else(|| missing("client_id"))?;
        let exp = self.exp.ok_or_else(|| missing("exp"))?;
        let token = ValidatedToken {
            sub: self.sub,
            username: self.username,
            client_id,
            scopes: Scopes::parse(self.scope.as_deref().unwrap_or_default()),
            exp,
            iat: self.iat,
            aud: match self.aud {
                None => Vec::new(),
                Some(Audience::One(aud)) => vec![aud],
                Some(Audience::Many(aud)) => aud,
            },
            iss: self.iss,
        };
        token.check_expiry(now)?;
        Ok(token)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn judge(body: serde_json::Value, now: i64) -> Result<ValidatedToken, GuardError> {
        serde_json::from_value::<Answer>(body).unwrap().judge(now)
    }

    fn umbra_answer() -> serde_json::Value {
        json!({
            "active": true, "scope": "read write", "client_id": "svc", "token_type": "Bearer",
            "exp": 2_000, "iat": 1_000, "sub": "u1", "username": "ada", "aud": "svc",
            "iss": "https://as"
        })
    }

    #[test]
    fn an_active_umbra_answer_becomes_a_validated_token() {
        let token = judge(umbra_answer(), 1_500).unwrap();
        assert_eq!(token.client_id, "svc");
        assert_eq!(token.sub.as_deref(), Some("u1"));
        assert_eq!(token.username.as_deref(), Some("ada"));
        assert_eq!(token.scopes.to_string(), "read write");
        assert_eq!((token.exp, token.iat), (2_000, Some(1_000)));
        assert_eq!(token.aud, vec!["svc".to_owned()]);
        assert_eq!(token.principal(), "u1");
    }

    #[test]
    fn an_inactive_answer_is_refused() {
        assert!(matches!(
            judge(json!({"active": false}), 1_500),
            Err(GuardError::Inactive)
        ));
    }

    #[test]
    fn exp_is_checked_locally_from_the_expiry_second_on() {
        assert!(judge(umbra_answer(), 1_999).is_ok());
        assert!(matches!(
            judge(umbra_answer(), 2_000),
            Err(GuardError::Expired)
        ));
    }

    #[test]
    fn an_active_answer_without_client_id_or_exp_is_a_broken_server() {
        for member in ["client_id", "exp"] {
            let mut body = umbra_answer();
            body.as_object_mut().unwrap().remove(member);
            assert!(
                matches!(
                    judge(body, 1_500),
                    Err(GuardError::Unavailable(Unavailable::InvalidAnswer(_)))
                ),
                "{member}"
            );
        }
    }

    #[test]
    fn a_token_of_another_type_is_refused() {
        let mut body = umbra_answer();
        body["token_type"] = json!("refresh_token");
        assert!(matches!(judge(body, 1_500), Err(GuardError::Inactive)));
    }

    #[test]
    fn active_must_be_a_boolean() {
        assert!(serde_json::from_value::<Answer>(json!({"active": "true"})).is_err());
        assert!(serde_json::from_value::<Answer>(json!({"scope": "read"})).is_err());
    }

    #[test]
    fn an_audience_array_is_accepted() {
        let mut body = umbra_answer();
        body["aud"] = json!(["a", "b"]);
        assert_eq!(judge(body, 1_500).unwrap().aud, vec!["a", "b"]);
    }

    #[test]
    fn scope_helpers_refuse_with_the_requirement() {
        let token = judge(umbra_answer(), 1_500).unwrap();
        assert!(token.require_all(["read", "write"]).is_ok());
        assert!(token.require_any(["admin", "write"]).is_ok());
        match token.require_all(["admin"]) {
            Err(GuardError::InsufficientScope(requirement)) => {
                assert_eq!(requirement, ScopeRequirement::all(["admin"]));
            }
            other => panic!("{other:?}"),
        }
    }
}
