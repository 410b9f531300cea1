//! Bearer access tokens (RFC 6750) at Umbra's own protected endpoints: the account API and
//! the OpenID Connect UserInfo endpoint. Each is a resource server of its own, and accepts a
//! user's active token with its scope, and no token meant for another service.
use crate::clock;
use crate::http::AppState;
use crate::http::error::ApiError;
use crate::oauth::introspection::{ActiveToken, Caller, Introspection, RecordKind};
use crate::oauth::scope::ScopeSet;
use crate::oauth::token::{self, TokenKind};
use crate::store::User;
use uuid::Uuid;

/// The token of `Authorization: Bearer <token>`; the scheme is case-insensitive (RFC 9110
/// §11.1). No header at all is `MissingToken`: RFC 6750 §3.1 says to send no error code then.
pub fn bearer(authorization: Option<&str>) -> Result<&str, ApiError> {
    let value = authorization.ok_or(ApiError::MissingToken)?;
    let (scheme, token) = value.split_once(' ').ok_or(ApiError::InvalidRequest(
        "the Authorization header must be `Bearer <token>`".into(),
    ))?;
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err(ApiError::MissingToken);
    }
    Ok(token.trim())
}

/// The user behind `presented`, an access token active for `endpoint` (see
/// [`Caller`]: which audiences it accepts) with `scope`, and what introspection says of it.
/// Anything unknown, expired, revoked, of a disabled user or meant for another service is
/// `invalid_token`; a client's own token, or one without `scope`, is `insufficient_scope`.
pub async fn user_token(
    state: &AppState,
    presented: &str,
    endpoint: &Caller<'_>,
    scope: &'static str,
) -> Result<(User, ActiveToken), ApiError> {
    let parsed = token::parse(presented)
        .filter(|p| p.kind == TokenKind::AccessToken)
        .ok_or(ApiError::InvalidToken)?;
    let record = state
        .store
        .token_record(&parsed.hash, RecordKind::Access)
        .await?;
    let answer = Introspection::of(
        record,
        clock::now(),
        &state.settings.server.issuer,
        endpoint,
        parsed.hash.public_id(),
    );
    let details = answer.details.ok_or(ApiError::InvalidToken)?;
    // Only a user's own token: a client token has no username, and its `sub` is a client id,
    // which could be spelled like a user id.
    if details.username.is_none() {
        return Err(ApiError::InsufficientScope(scope));
    }
    let user_id = Uuid::parse_str(&details.sub).map_err(|_| ApiError::InvalidToken)?;
    if !ScopeSet::from_stored(&details.scope).contains(scope) {
        return Err(ApiError::InsufficientScope(scope));
    }
    let user = state
        .store
        .find_user(user_id)
        .await?
        .filter(|u| !u.disabled)
        .ok_or(ApiError::InvalidToken)?;
    Ok((user, details))
}
