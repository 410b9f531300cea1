//! One module per grant type (RFC 6749 §4), dispatched by [`GrantType`] with a `match` in the
//! token endpoint.
//!
//! [`GrantType`]: super::grant_type::GrantType
pub mod authorization_code;
pub mod client_credentials;
pub mod refresh_token;
pub mod token_exchange;

use super::error::OAuthError;
use super::scope::ScopeSet;
use serde::Serialize;

/// Resolves the `scope` parameter against what may be granted: absent means everything
/// allowed, otherwise every requested scope must be allowed (RFC 6749 §3.3).
pub fn requested_scope(
    requested: Option<&str>,
    allowed: &ScopeSet,
) -> Result<ScopeSet, OAuthError> {
    let Some(requested) = requested else {
        return Ok(allowed.clone());
    };
    let requested = ScopeSet::parse(requested)
        .map_err(|_| OAuthError::invalid_scope("the scope parameter is malformed"))?;
    if !requested.is_subset_of(allowed) {
        return Err(OAuthError::invalid_scope(
            "the requested scope exceeds what this client may be granted",
        ));
    }
    Ok(requested)
}

/// A successful token response (RFC 6749 §5.1).
#[derive(Serialize, utoipa::ToSchema)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// The type of the issued token, in token exchange responses (RFC 8693 §2.2.1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issued_token_type: Option<&'static str>,
    /// Left out when no scope was granted (RFC 6749 §5.1 makes it optional, and `""` would
    /// read as a scope list).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub scope: String,
    /// The OpenID Connect ID token, when the grant's scope has `openid` (Core §3.1.3.3).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
}

impl std::fmt::Debug for TokenResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenResponse")
            .field("expires_in", &self.expires_in)
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oauth::ErrorCode;

    #[test]
    fn no_scope_requested_means_every_allowed_scope() {
        let allowed = ScopeSet::parse("read write").unwrap();
        assert_eq!(requested_scope(None, &allowed).unwrap(), allowed);
    }

    #[test]
    fn a_scope_beyond_the_allowed_ones_is_invalid_scope() {
        let allowed = ScopeSet::parse("read").unwrap();
        let err = requested_scope(Some("read admin"), &allowed).unwrap_err();
        assert_eq!(err.code(), ErrorCode::InvalidScope);
        let err = requested_scope(Some("bad\"scope"), &allowed).unwrap_err();
        assert_eq!(err.code(), ErrorCode::InvalidScope);
    }

    #[test]
    fn a_token_response_without_scope_leaves_scope_out() {
        let response = |scope: &str| TokenResponse {
            access_token: "at_x".into(),
            token_type: "Bearer",
            expires_in: 3600,
            refresh_token: None,
            issued_token_type: None,
            scope: scope.into(),
            id_token: None,
        };
        let json = serde_json::to_value(response("")).unwrap();
        assert!(json.get("scope").is_none(), "{json}");
        let json = serde_json::to_value(response("read")).unwrap();
        assert_eq!(json["scope"], "read");
    }
}
