//! OpenID Connect RP-Initiated Logout 1.0: which client asks, where the browser goes back to,
//! and when the person must be asked first.
//!
//! - "When an id_token_hint parameter is present, the OP MUST validate that it was the issuer
//!   of the ID Token" (§2): the hint's signature is checked against Umbra's published keys,
//!   and its issuer here ([`super::oidc::read_hint`]); an expired hint is still accepted.
//! - A `post_logout_redirect_uri` is used only if registered for the client the request names
//!   (`client_id`, or the hint's audience), matched as redirect URIs are; otherwise the request
//!   is refused on a page and never redirected (§3).
//! - "the OP MUST ask the End-User this question if an id_token_hint was not provided or if
//!   the supplied ID Token does not belong to the current OP session with the RP" (§2): a
//!   cross-site GET without the person's own ID token never signs them out silently.
use super::authorize::MAX_STATE_LEN;
use super::client::Client;
use super::oidc::Hint;

/// Why a logout request is refused (shown on a page, never redirected).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LogoutError {
    #[error("The sign-out request names an ID token that this server did not issue.")]
    BadHint,
    #[error("The sign-out request names an application that the ID token was not issued to.")]
    ClientMismatch,
    #[error("The application that asks to sign you out is not registered here.")]
    UnknownClient,
    #[error(
        "The sign-out request names a return address but not the application (client_id or id_token_hint)."
    )]
    NoClient,
    #[error("The return address is not registered for this application.")]
    UnregisteredUri,
    #[error("The sign-out request is too long.")]
    TooLong,
}

/// The client a logout request is from: `client_id` if sent (it must be in the hint's
/// audience), else the hint's only audience. `None` when neither says.
pub fn client_of(
    hint: Option<&Hint>,
    client_id: Option<&str>,
) -> Result<Option<String>, LogoutError> {
    match (hint, client_id) {
        (Some(hint), Some(id)) if !hint.audience.iter().any(|a| a == id) => {
            Err(LogoutError::ClientMismatch)
        }
        (_, Some(id)) => Ok(Some(id.to_owned())),
        (Some(hint), None) => Ok(match hint.audience.as_slice() {
            [only] => Some(only.clone()),
            _ => None,
        }),
        (None, None) => Ok(None),
    }
}

/// Where the browser goes after the logout: the registered `uri` of `client` with `state`
/// appended, or `None` (Umbra's own "signed out" page) when no URI was asked for.
pub fn return_location(
    client: Option<&Client>,
    uri: Option<&str>,
    state: Option<&str>,
) -> Result<Option<String>, LogoutError> {
    let Some(uri) = uri else {
        return Ok(None);
    };
    let client = client.ok_or(LogoutError::NoClient)?;
    if !client.accepts_post_logout_redirect_uri(uri) {
        return Err(LogoutError::UnregisteredUri);
    }
    if state.is_some_and(|s| s.len() > MAX_STATE_LEN) {
        return Err(LogoutError::TooLong);
    }
    let mut location = uri.to_owned();
    if let Some(state) = state {
        let encoded = serde_urlencoded::to_string([("state", state)]).unwrap_or_default();
        location.push(if uri.contains('?') { '&' } else { '?' });
        location.push_str(&encoded);
    }
    Ok(Some(location))
}

/// Whether the hint proves that the request comes from a client of the person signed in
/// here, in this very browser session: then the logout needs no confirmation. A hint with a
/// `sid` must name this session's; one without names the user only.
pub fn hint_matches_session(hint: Option<&Hint>, user_id: &str, sid: Option<&str>) -> bool {
    hint.is_some_and(|hint| {
        hint.sub == user_id
            && match (&hint.sid, sid) {
                (Some(theirs), Some(ours)) => theirs == ours,
                (Some(_), None) => false,
                (None, _) => true,
            }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oauth::client::OpenIdRegistration;
    use crate::oauth::grant_type::GrantType;
    use crate::oauth::scope::ScopeSet;

    fn client() -> Client {
        Client {
            id: "app".into(),
            name: "App".into(),
            secret_hash: None,
            redirect_uris: vec!["https://app.example/cb".into()],
            grant_types: vec![GrantType::AuthorizationCode],
            scopes: ScopeSet::default(),
            can_introspect: false,
            skip_consent: false,
            require_2fa: false,
            resources: Default::default(),
            openid: OpenIdRegistration {
                id_token_alg: None,
                post_logout_redirect_uris: vec!["https://app.example/bye".into()],
            },
            assertion_keys: None,
            introspection_signed_response_alg: None,
            version: 1,
            secret_expires_at: None,
        }
    }

    fn hint(audience: &[&str], sid: Option<&str>) -> Hint {
        Hint {
            sub: "u1".into(),
            audience: audience.iter().map(|a| a.to_string()).collect(),
            sid: sid.map(str::to_owned),
        }
    }

    #[test]
    fn the_client_is_the_one_named_or_the_hints_only_audience() {
        let one = hint(&["app"], None);
        assert_eq!(client_of(Some(&one), None), Ok(Some("app".into())));
        assert_eq!(client_of(Some(&one), Some("app")), Ok(Some("app".into())));
        assert_eq!(
            client_of(Some(&one), Some("other")),
            Err(LogoutError::ClientMismatch)
        );
        assert_eq!(client_of(Some(&hint(&["a", "b"], None)), None), Ok(None));
        assert_eq!(client_of(None, Some("app")), Ok(Some("app".into())));
        assert_eq!(client_of(None, None), Ok(None));
    }

    #[test]
    fn only_a_registered_uri_is_returned_to_with_the_state() {
        let c = client();
        assert_eq!(
            return_location(Some(&c), Some("https://app.example/bye"), Some("a b")),
            Ok(Some("https://app.example/bye?state=a+b".into()))
        );
        assert_eq!(return_location(Some(&c), None, Some("s")), Ok(None));
        for unregistered in [
            "https://app.example/cb",
            "https://app.example/bye/",
            "https://evil.example/bye",
        ] {
            assert_eq!(
                return_location(Some(&c), Some(unregistered), None),
                Err(LogoutError::UnregisteredUri),
                "{unregistered}"
            );
        }
        assert_eq!(
            return_location(None, Some("https://app.example/bye"), None),
            Err(LogoutError::NoClient)
        );
    }

    #[test]
    fn a_hint_matches_the_session_by_user_and_sid() {
        let with_sid = hint(&["app"], Some("s1"));
        assert!(hint_matches_session(Some(&with_sid), "u1", Some("s1")));
        assert!(!hint_matches_session(Some(&with_sid), "u1", Some("s2")));
        assert!(!hint_matches_session(Some(&with_sid), "u1", None));
        assert!(!hint_matches_session(Some(&with_sid), "u2", Some("s1")));
        assert!(hint_matches_session(
            Some(&hint(&["app"], None)),
            "u1",
            Some("s1")
        ));
        assert!(!hint_matches_session(None, "u1", Some("s1")));
    }
}
