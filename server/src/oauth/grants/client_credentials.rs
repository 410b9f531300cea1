//! The client credentials grant (RFC 6749 §4.4): a confidential client obtains a token for
//! itself. "A refresh token SHOULD NOT be included" (§4.4.3), so none is.
use crate::oauth::client::Client;
use crate::oauth::error::OAuthError;
use crate::oauth::grant_type::GrantType;
use crate::oauth::params::Params;
use crate::oauth::resource::{self, Target};

/// Checks that the authenticated client may use this grant and returns the audience and scope
/// to issue (RFC 8707 `resource`, or the client's default).
pub fn authorize(client: &Client, params: &Params) -> Result<Target, OAuthError> {
    // "The client credentials grant type MUST only be used by confidential clients."
    if client.is_public() || !client.allows_grant(GrantType::ClientCredentials) {
        return Err(OAuthError::unauthorized_client(
            "this client may not use the client_credentials grant",
        ));
    }
    resource::resolve(client, &params.get_all("resource"), params.get("scope"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oauth::ErrorCode;
    use crate::oauth::scope::ScopeSet;
    use crate::oauth::token::{Token, TokenKind};

    fn client(grants: Vec<GrantType>, public: bool) -> Client {
        Client {
            id: "svc".into(),
            name: "svc".into(),
            secret_hash: (!public)
                .then(|| Token::generate(TokenKind::ClientSecret).unwrap().hash()),
            redirect_uris: vec![],
            grant_types: grants,
            scopes: ScopeSet::parse("read write").unwrap(),
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

    #[test]
    fn a_confidential_client_with_the_grant_gets_the_requested_scope() {
        let params = Params::parse(b"scope=read").unwrap();
        let scope = authorize(&client(vec![GrantType::ClientCredentials], false), &params).unwrap();
        assert_eq!(scope.scope.to_string(), "read");
        assert!(scope.audience.is_empty());
    }

    #[test]
    fn a_client_without_the_grant_is_unauthorized() {
        let err = authorize(
            &client(vec![GrantType::AuthorizationCode], false),
            &Params::default(),
        )
        .unwrap_err();
        assert_eq!(err.code(), ErrorCode::UnauthorizedClient);
    }

    #[test]
    fn a_public_client_is_unauthorized_even_if_registered_for_the_grant() {
        let err = authorize(
            &client(vec![GrantType::ClientCredentials], true),
            &Params::default(),
        )
        .unwrap_err();
        assert_eq!(err.code(), ErrorCode::UnauthorizedClient);
    }
}
