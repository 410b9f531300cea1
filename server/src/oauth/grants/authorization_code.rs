//! The authorization code grant at the token endpoint (RFC 6749 §4.1.3, RFC 7636 §4.5).
use crate::oauth::client::Client;
use crate::oauth::error::OAuthError;
use crate::oauth::grant_type::GrantType;
use crate::oauth::params::Params;
use crate::oauth::pkce;
use crate::oauth::resource::{self, Target};

/// What the code was bound to when it was issued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCode {
    pub client_id: String,
    /// The redirect URI named in the authorization request; `None` if it named none.
    pub redirect_uri: Option<String>,
    pub code_challenge: Option<String>,
    pub user_disabled: bool,
    /// What the grant covers; the token request may narrow it (RFC 8707 §2.2).
    pub granted: Target,
}

/// The client may use this grant at all (checked before the code is touched).
pub fn check_client(client: &Client) -> Result<(), OAuthError> {
    if client.allows_grant(GrantType::AuthorizationCode) {
        Ok(())
    } else {
        Err(OAuthError::unauthorized_client(
            "this client may not use the authorization_code grant",
        ))
    }
}

/// Checks the redemption against what the code was bound to and returns what the access token
/// is for. Every mismatch is `invalid_grant` ("… does not match the redirection URI used in
/// the authorization request, or was issued to another client").
pub fn check_redemption(
    stored: &StoredCode,
    client: &Client,
    params: &Params,
) -> Result<Target, OAuthError> {
    if stored.client_id != client.id {
        return Err(OAuthError::invalid_grant(
            "the code was issued to another client",
        ));
    }
    let presented_uri = params.get("redirect_uri");
    match (&stored.redirect_uri, presented_uri) {
        (Some(bound), Some(presented)) if bound == presented => {}
        (Some(_), _) => {
            return Err(OAuthError::invalid_grant(
                "redirect_uri must repeat the one of the authorization request",
            ));
        }
        (None, Some(presented)) if !client.accepts_redirect_uri(presented) => {
            return Err(OAuthError::invalid_grant("redirect_uri does not match"));
        }
        (None, _) => {}
    }
    match (&stored.code_challenge, params.get("code_verifier")) {
        (Some(challenge), Some(verifier)) if pkce::verify_s256(verifier, challenge) => {}
        (Some(_), Some(_)) => return Err(OAuthError::invalid_grant("PKCE verification failed")),
        (Some(_), None) => return Err(OAuthError::invalid_grant("code_verifier is required")),
        // A verifier for a code issued without a challenge would let an attacker downgrade
        // PKCE (RFC 9700 §2.1.1).
        (None, Some(_)) => {
            return Err(OAuthError::invalid_grant(
                "code_verifier sent for a code issued without a code_challenge",
            ));
        }
        (None, None) => {}
    }
    if stored.user_disabled {
        return Err(OAuthError::invalid_grant("the user's account is disabled"));
    }
    resource::narrow(client, &stored.granted, params)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oauth::ErrorCode;
    use crate::oauth::scope::ScopeSet;

    const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

    fn client() -> Client {
        Client {
            id: "app".into(),
            name: "App".into(),
            secret_hash: None,
            redirect_uris: vec!["https://a/cb".into(), "https://b/cb".into()],
            grant_types: vec![GrantType::AuthorizationCode],
            scopes: ScopeSet::default(),
            can_introspect: false,
            skip_consent: false,
            require_2fa: false,
            assertion_keys: None,
            openid: Default::default(),
            resources: Default::default(),
            introspection_signed_response_alg: None,
            version: 1,
            secret_expires_at: None,
        }
    }

    fn stored() -> StoredCode {
        StoredCode {
            client_id: "app".into(),
            redirect_uri: Some("https://a/cb".into()),
            code_challenge: Some(CHALLENGE.into()),
            user_disabled: false,
            granted: Target::default(),
        }
    }

    fn check(stored: &StoredCode, query: &str) -> Result<(), ErrorCode> {
        check_redemption(stored, &client(), &Params::parse(query.as_bytes()).unwrap())
            .map(|_| ())
            .map_err(|e| e.code())
    }

    #[test]
    fn the_bound_redirect_uri_and_verifier_redeem() {
        assert_eq!(
            check(
                &stored(),
                &format!("redirect_uri=https://a/cb&code_verifier={VERIFIER}")
            ),
            Ok(())
        );
    }

    #[test]
    fn every_mismatch_is_invalid_grant() {
        let grant = Err(ErrorCode::InvalidGrant);
        assert_eq!(
            check(
                &stored(),
                &format!("redirect_uri=https://b/cb&code_verifier={VERIFIER}")
            ),
            grant
        );
        assert_eq!(
            check(&stored(), &format!("code_verifier={VERIFIER}")),
            grant
        );
        assert_eq!(check(&stored(), "redirect_uri=https://a/cb"), grant);
        assert_eq!(
            check(
                &stored(),
                &format!("redirect_uri=https://a/cb&code_verifier={}", "x".repeat(43))
            ),
            grant
        );
        let other = StoredCode {
            client_id: "other".into(),
            ..stored()
        };
        assert_eq!(
            check(
                &other,
                &format!("redirect_uri=https://a/cb&code_verifier={VERIFIER}")
            ),
            grant
        );
        let disabled = StoredCode {
            user_disabled: true,
            ..stored()
        };
        assert_eq!(
            check(
                &disabled,
                &format!("redirect_uri=https://a/cb&code_verifier={VERIFIER}")
            ),
            grant
        );
    }

    #[test]
    fn a_verifier_for_a_code_without_challenge_is_a_downgrade_and_refused() {
        let no_pkce = StoredCode {
            code_challenge: None,
            ..stored()
        };
        assert_eq!(check(&no_pkce, "redirect_uri=https://a/cb"), Ok(()));
        assert_eq!(
            check(
                &no_pkce,
                &format!("redirect_uri=https://a/cb&code_verifier={VERIFIER}")
            ),
            Err(ErrorCode::InvalidGrant)
        );
    }

    #[test]
    fn without_a_bound_uri_a_presented_one_must_be_registered() {
        let unbound = StoredCode {
            redirect_uri: None,
            ..stored()
        };
        assert_eq!(
            check(&unbound, &format!("code_verifier={VERIFIER}")),
            Ok(())
        );
        assert_eq!(
            check(
                &unbound,
                &format!("redirect_uri=https://b/cb&code_verifier={VERIFIER}")
            ),
            Ok(())
        );
        assert_eq!(
            check(
                &unbound,
                &format!("redirect_uri=https://c/cb&code_verifier={VERIFIER}")
            ),
            Err(ErrorCode::InvalidGrant)
        );
    }
}
