//! What an introspection answer (RFC 7662 §2.2) means for a request: a [`ValidatedToken`] or
//! a refusal.
use crate::actor::Actor;
use crate::error::{GuardError, Unavailable};
use crate::expected::Expected;
use crate::scopes::{ScopeRequirement, Scopes};
use serde::Deserialize;

/// An access token the authorization server called active, with `exp` still ahead by the
/// local clock, from the expected issuer and meant for this resource when the
/// [`Introspector`](crate::Introspector) was told to check them. Carries what the token
/// stands for, never the token itself.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ValidatedToken {
    /// A stable identifier of the token that is not the token: fit for logs and audit trails.
    /// `None` from an authorization server that does not send it.
    pub jti: Option<String>,
    /// Whom the token is about: the user for a user's token, the client itself for a
    /// `client_credentials` token (as RFC 9068 §2.2 has it). A token exchanged on someone's
    /// behalf keeps its original subject; see [`act`](Self::act) for who is acting.
    /// Use [`is_user_token`](Self::is_user_token) to tell a user from a client.
    pub sub: String,
    /// The user's username, for a user's token only.
    pub username: Option<String>,
    /// The client the token was issued to: for an exchanged token, the client that exchanged
    /// it.
    pub client_id: String,
    /// The scopes granted.
    pub scopes: Scopes,
    /// Expiry, in seconds since the Unix epoch.
    pub exp: i64,
    /// Issue time, in seconds since the Unix epoch.
    pub iat: Option<i64>,
    /// The time before which the token is not to be used, in seconds since the Unix epoch.
    pub nbf: Option<i64>,
    /// The resources the token is for (RFC 8707 resource identifiers, absolute URIs); empty
    /// when the token was issued without an audience. With
    /// [`IntrospectorBuilder::resource`](crate::IntrospectorBuilder::resource) set, it always
    /// names that resource.
    pub aud: Vec<String>,
    /// The issuer identifier of the authorization server.
    pub iss: Option<String>,
    /// Who is acting on the subject's behalf, for a token issued by token exchange (RFC 8693
    /// §4.1); `None` for a token used by the client it was first issued to.
    pub act: Option<Actor>,
}

impl ValidatedToken {
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.contains(scope)
    }

    /// Whom the token is about: the user for a user's token, else the client ([`sub`](Self::sub)).
    pub fn principal(&self) -> &str {
        &self.sub
    }

    /// Whether the token was issued to a user (by the authorization code flow, or exchanged
    /// from such a token) rather than to a client for itself (`client_credentials`). Umbra
    /// sends `username` for user tokens only.
    pub fn is_user_token(&self) -> bool {
        self.username.is_some()
    }

    /// The clients that acted on the subject's behalf, the current actor first (see
    /// [`Actor::chain`]); empty for a token that was not exchanged.
    pub fn actors(&self) -> Vec<&str> {
        self.act.as_ref().map(Actor::chain).unwrap_or_default()
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
    #[serde(default)]
    jti: Option<String>,
    #[serde(default)]
    nbf: Option<i64>,
    #[serde(default)]
    act: Option<Actor>,
}

/// RFC 7662 takes `aud` from JWT (RFC 7519 §4.1.3): one string or an array of them.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Audience {
    One(String),
    Many(Vec<String>),
}

impl Answer {
    pub(crate) fn is_active(&self) -> bool {
        self.active
    }

    /// The token's identifier, which Umbra sends in every active answer.
    pub(crate) fn jti(&self) -> Option<&str> {
        self.jti.as_deref()
    }

    /// Decides at `now`, with the checks of `expected`. An active answer must name
    /// `client_id` and `exp` (Umbra always does), and `sub` when it names a user; one without
    /// them is treated as a broken server, not as a pass.
    pub(crate) fn judge(self, now: i64, expected: &Expected) -> Result<ValidatedToken, GuardError> {
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
        let sub = match (self.sub, &self.username) {
            (Some(sub), _) => sub,
            // Umbra before RFC 9068 subjects left `sub` out of client_credentials answers;
            // such a token is about its client.
            (None, None) => client_id.clone(),
            (None, Some(_)) => return Err(missing("sub for a user's token")),
        };
        let token = ValidatedToken {
            jti: self.jti,
            sub,
            username: self.username,
            client_id,
            scopes: Scopes::parse(self.scope.as_deref().unwrap_or_default()),
            exp,
            iat: self.iat,
            nbf: self.nbf,
            aud: match self.aud {
                None => Vec::new(),
                Some(Audience::One(aud)) => vec![aud],
                Some(Audience::Many(aud)) => aud,
            },
            iss: self.iss,
            act: self.act,
        };
        expected.check(&token)?;
        token.check_expiry(now)?;
        Ok(token)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn judge(body: serde_json::Value, now: i64) -> Result<ValidatedToken, GuardError> {
        judge_with(body, now, &Expected::default())
    }

    fn judge_with(
        body: serde_json::Value,
        now: i64,
        expected: &Expected,
    ) -> Result<ValidatedToken, GuardError> {
        serde_json::from_value::<Answer>(body)
            .unwrap()
            .judge(now, expected)
    }

    const ORDERS: &str = "https://orders.example.com";

    /// An answer for a user's token as Umbra gives it since resources (RFC 8707) and RFC 9068
    /// subjects.
    fn umbra_answer() -> serde_json::Value {
        json!({
            "active": true, "scope": "read write", "client_id": "svc", "token_type": "Bearer",
            "exp": 2_000, "iat": 1_000, "nbf": 1_000, "sub": "u1", "username": "ada",
            "aud": [ORDERS], "iss": "https://as", "jti": "tok-1"
        })
    }

    /// A client_credentials answer as Umbra gave it before: `aud` the client, no `sub`.
    fn older_client_answer() -> serde_json::Value {
        json!({
            "active": true, "scope": "read", "client_id": "svc", "token_type": "Bearer",
            "exp": 2_000, "iat": 1_000, "aud": "svc", "iss": "https://as"
        })
    }

    fn expect(resources: &[&str], issuer: Option<&str>) -> Expected {
        Expected::new(
            resources.iter().map(|&r| r.to_owned()).collect(),
            issuer.map(str::to_owned),
        )
        .unwrap()
    }

    #[test]
    fn an_active_umbra_answer_becomes_a_validated_token() {
        let token = judge(umbra_answer(), 1_500).unwrap();
        assert_eq!(token.client_id, "svc");
        assert_eq!(token.sub, "u1");
        assert_eq!(token.username.as_deref(), Some("ada"));
        assert!(token.is_user_token());
        assert_eq!(token.scopes.to_string(), "read write");
        assert_eq!(
            (token.exp, token.iat, token.nbf),
            (2_000, Some(1_000), Some(1_000))
        );
        assert_eq!(token.aud, vec![ORDERS.to_owned()]);
        assert_eq!(token.iss.as_deref(), Some("https://as"));
        assert_eq!(token.jti.as_deref(), Some("tok-1"));
        assert_eq!(token.act, None);
        assert!(token.actors().is_empty());
        assert_eq!(token.principal(), "u1");
    }

    #[test]
    fn a_client_token_is_about_its_client_with_or_without_sub() {
        let mut current = older_client_answer();
        current["sub"] = json!("svc");
        for body in [older_client_answer(), current] {
            let token = judge(body.clone(), 1_500).unwrap();
            assert_eq!(token.sub, "svc", "{body}");
            assert_eq!(token.principal(), "svc");
            assert!(!token.is_user_token());
        }
    }

    #[test]
    fn a_user_token_without_sub_is_a_broken_server() {
        let mut body = umbra_answer();
        body.as_object_mut().unwrap().remove("sub");
        assert!(matches!(
            judge(body, 1_500),
            Err(GuardError::Unavailable(Unavailable::InvalidAnswer(_)))
        ));
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
    fn aud_is_a_string_or_an_array_of_strings() {
        for (aud, expected) in [
            (json!(ORDERS), vec![ORDERS]),
            (json!([ORDERS]), vec![ORDERS]),
            (json!(["a", "b"]), vec!["a", "b"]),
            (json!([]), vec![]),
        ] {
            let mut body = umbra_answer();
            body["aud"] = aud;
            assert_eq!(judge(body, 1_500).unwrap().aud, expected);
        }
        let mut body = umbra_answer();
        body.as_object_mut().unwrap().remove("aud");
        assert!(judge(body, 1_500).unwrap().aud.is_empty());
        for bad in [json!(7), json!([ORDERS, 7]), json!({"aud": ORDERS})] {
            let mut body = umbra_answer();
            body["aud"] = bad.clone();
            assert!(serde_json::from_value::<Answer>(body).is_err(), "{bad}");
        }
    }

    #[test]
    fn an_exchanged_token_exposes_its_actor_chain() {
        let mut body = umbra_answer();
        body["client_id"] = json!("billing-caller");
        body["act"] =
            json!({"sub": "billing-caller", "act": {"sub": "orders", "act": {"sub": "gateway"}}});

        let token = judge(body, 1_500).unwrap();

        assert_eq!(token.sub, "u1", "the subject stays the user");
        let act = token.act.as_ref().unwrap();
        assert_eq!(act.sub, "billing-caller");
        assert_eq!(act.act.as_ref().unwrap().sub, "orders");
        assert_eq!(token.actors(), ["billing-caller", "orders", "gateway"]);
    }

    #[test]
    fn a_malformed_act_is_not_an_answer() {
        for act in [
            json!("orders"),
            json!({}),
            json!({"sub": "a", "act": {"sub": 1}}),
        ] {
            let mut body = umbra_answer();
            body["act"] = act.clone();
            assert!(serde_json::from_value::<Answer>(body).is_err(), "{act}");
        }
    }

    #[test]
    fn an_answer_for_another_resource_or_for_none_is_refused_when_a_resource_is_set() {
        let expected = expect(&[ORDERS], None);
        assert!(judge_with(umbra_answer(), 1_500, &expected).is_ok());
        let mut billing = umbra_answer();
        billing["aud"] = json!(["https://billing.example.com"]);
        let mut without = umbra_answer();
        without.as_object_mut().unwrap().remove("aud");
        for body in [billing, without, older_client_answer()] {
            assert!(
                matches!(
                    judge_with(body.clone(), 1_500, &expected),
                    Err(GuardError::NotForThisResource)
                ),
                "{body}"
            );
        }
    }

    #[test]
    fn an_answer_from_another_issuer_or_none_is_refused_when_an_issuer_is_set() {
        assert!(judge_with(umbra_answer(), 1_500, &expect(&[], Some("https://as"))).is_ok());
        let expected = expect(&[], Some("https://other-as"));
        let mut without = umbra_answer();
        without.as_object_mut().unwrap().remove("iss");
        for body in [umbra_answer(), without] {
            assert!(matches!(
                judge_with(body, 1_500, &expected),
                Err(GuardError::WrongIssuer)
            ));
        }
    }

    #[test]
    fn an_inactive_answer_stays_inactive_whatever_is_expected() {
        assert!(matches!(
            judge_with(
                json!({"active": false}),
                1_500,
                &expect(&[ORDERS], Some("x"))
            ),
            Err(GuardError::Inactive)
        ));
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
