//! The refresh token grant with rotation (RFC 6749 §6, RFC 9700 §4.14).
use crate::oauth::client::Client;
use crate::oauth::error::OAuthError;
use crate::oauth::grant_type::GrantType;
use crate::oauth::params::Params;
use crate::oauth::resource::{self, Target};

/// What storage knows about the presented refresh token and its grant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRefresh {
    pub client_id: String,
    /// The scope and audience of the grant: a refresh may narrow them, never widen them.
    pub granted: Target,
    pub user_disabled: bool,
}

/// The client may use this grant at all (checked before the token is touched).
pub fn check_client(client: &Client) -> Result<(), OAuthError> {
    if client.allows_grant(GrantType::RefreshToken) {
        Ok(())
    } else {
        Err(OAuthError::unauthorized_client(
            "this client may not use the refresh_token grant",
        ))
    }
}

/// Checks the refresh and returns the audience and scope of the new access token. "The
/// requested scope MUST NOT include any scope not originally granted by the resource owner,
/// and if omitted is treated as equal to the scope originally granted"; the same holds for
/// resources (RFC 8707 §2.2).
pub fn check_refresh(
    stored: &StoredRefresh,
    client: &Client,
    params: &Params,
) -> Result<Target, OAuthError> {
    // "The authorization server MUST … validate the refresh token … and ensure that the
    // refresh token was issued to the authenticated client."
    if stored.client_id != client.id {
        return Err(OAuthError::invalid_grant(
            "the refresh token was issued to another client",
        ));
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

    fn client(id: &str) -> Client {
        Client {
            id: id.into(),
            name: "App".into(),
            secret_hash: None,
            redirect_uris: vec![],
            grant_types: vec![GrantType::RefreshToken],
            scopes: ScopeSet::parse("read write admin").unwrap(),
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

    fn stored() -> StoredRefresh {
        StoredRefresh {
            client_id: "app".into(),
            granted: Target {
                scope: ScopeSet::parse("read write").unwrap(),
                audience: Default::default(),
            },
            user_disabled: false,
        }
    }

    fn refresh(client_id: &str, query: &str) -> Result<String, ErrorCode> {
        check_refresh(
            &stored(),
            &client(client_id),
            &Params::parse(query.as_bytes()).unwrap(),
        )
        .map(|t| t.scope.to_string())
        .map_err(|e| e.code())
    }

    #[test]
    fn narrowing_is_allowed_and_omitting_keeps_the_grant_scope() {
        assert_eq!(refresh("app", "scope=read"), Ok("read".into()));
        assert_eq!(refresh("app", ""), Ok("read write".into()));
    }

    #[test]
    fn widening_is_invalid_scope_even_within_the_clients_scopes() {
        assert_eq!(
            refresh("app", "scope=read+admin"),
            Err(ErrorCode::InvalidScope)
        );
    }

    #[test]
    fn another_clients_refresh_token_is_invalid_grant() {
        assert_eq!(refresh("intruder", ""), Err(ErrorCode::InvalidGrant));
    }
}
