//! Who acts for the subject of a delegated token: the `act` claim of token exchange
//! (RFC 8693 §4.1).
use serde::{Deserialize, Serialize};

/// The client acting on behalf of the token's subject, present only on tokens issued by token
/// exchange (RFC 8693 §4.1): "The act (actor) claim provides a means within a JWT to express
/// that delegation has occurred and identify the acting party to whom authority has been
/// delegated."
///
/// A chain of delegations nests: "A chain of delegation can be expressed by nesting one act
/// claim within another. The outermost act claim represents the current actor while nested
/// act claims represent prior actors." For a user's token that a gateway exchanged for the
/// orders service, which exchanged it for billing, billing sees
/// `{"sub": "orders", "act": {"sub": "gateway"}}`.
///
/// Only the current actor may be used for access control decisions: "prior actors identified
/// by any nested act claims are informational only and are not to be considered in access
/// control decisions" (RFC 8693 §4.1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Actor {
    /// The acting party: the client id of the client that exchanged the token.
    pub sub: String,
    /// The actor before this one, when the token was exchanged more than once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub act: Option<Box<Actor>>,
}

impl Actor {
    /// The actors' ids, the current one first and the earliest last:
    /// `["billing-caller", "orders", "gateway"]`.
    pub fn chain(&self) -> Vec<&str> {
        let mut chain = vec![self.sub.as_str()];
        let mut prior = self.act.as_deref();
        while let Some(actor) = prior {
            chain.push(actor.sub.as_str());
            prior = actor.act.as_deref();
        }
        chain
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_single_actor_is_its_own_chain() {
        let actor: Actor = serde_json::from_value(json!({"sub": "orders"})).unwrap();
        assert_eq!(actor.sub, "orders");
        assert!(actor.act.is_none());
        assert_eq!(actor.chain(), ["orders"]);
    }

    #[test]
    fn a_nested_chain_lists_the_current_actor_first() {
        let actor: Actor = serde_json::from_value(json!({
            "sub": "billing-caller",
            "act": {"sub": "orders", "act": {"sub": "gateway"}}
        }))
        .unwrap();
        assert_eq!(actor.chain(), ["billing-caller", "orders", "gateway"]);
        assert_eq!(actor.act.as_ref().unwrap().sub, "orders");
    }

    #[test]
    fn other_members_of_an_actor_are_ignored() {
        // RFC 8693 §4.1 lets an actor carry other identifying claims, such as `iss`.
        let actor: Actor =
            serde_json::from_value(json!({"sub": "orders", "iss": "https://as"})).unwrap();
        assert_eq!(actor.chain(), ["orders"]);
    }

    #[test]
    fn an_actor_must_name_its_subject_as_a_string() {
        for act in [
            json!({}),
            json!({"sub": 7}),
            json!("orders"),
            json!({"sub": "a", "act": "b"}),
        ] {
            assert!(
                serde_json::from_value::<Actor>(act.clone()).is_err(),
                "{act}"
            );
        }
    }

    #[test]
    fn it_serializes_as_the_claim_it_came_from() {
        let claim = json!({"sub": "orders", "act": {"sub": "gateway"}});
        let actor: Actor = serde_json::from_value(claim.clone()).unwrap();
        assert_eq!(serde_json::to_value(&actor).unwrap(), claim);
    }
}
