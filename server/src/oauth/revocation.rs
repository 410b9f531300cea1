//! Token revocation (RFC 7009).
//!
//! Umbra's tokens name their kind in their prefix, so `token_type_hint` never changes the
//! outcome: it is accepted as the hint it is ("the authorization server MUST extend its search
//! across all of its supported token types") and otherwise ignored. Anything that is not a
//! well-formed access or refresh token is an invalid token, which "does not cause an error
//! response": the answer is 200 either way.
use super::token::{self, TokenHash, TokenKind};

/// What a revocation request asks to revoke.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RevocationTarget {
    /// Just this access token.
    AccessToken(TokenHash),
    /// The refresh token and, as RFC 7009 §2.1 recommends, every token of its grant.
    RefreshToken(TokenHash),
}

impl RevocationTarget {
    /// `None` for garbage, codes and client secrets, which this endpoint never revokes.
    pub fn of(presented: &str) -> Option<Self> {
        let parsed = token::parse(presented)?;
        match parsed.kind {
            TokenKind::AccessToken => Some(Self::AccessToken(parsed.hash)),
            TokenKind::RefreshToken => Some(Self::RefreshToken(parsed.hash)),
            TokenKind::AuthorizationCode
            | TokenKind::ClientSecret
            | TokenKind::InitialAccessToken
            | TokenKind::RegistrationAccessToken => None,
        }
    }

    /// The kind of token, as the audit log names it.
    pub fn kind_name(&self) -> &'static str {
        match self {
            Self::AccessToken(_) => "access_token",
            Self::RefreshToken(_) => "refresh_token (with its grant)",
        }
    }
}

/// What storage found when asked to revoke.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RevocationOutcome {
    Revoked,
    /// No such token (or it is already gone): still a 200.
    Unknown,
    /// "The authorization server first validates the client credentials … and then verifies
    /// whether the token was issued to the client making the revocation request. If this
    /// validation fails, the request is refused".
    IssuedToAnotherClient,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oauth::token::Token;

    #[test]
    fn access_and_refresh_tokens_are_revocable() {
        let at = Token::generate(TokenKind::AccessToken).unwrap();
        let rt = Token::generate(TokenKind::RefreshToken).unwrap();
        assert_eq!(
            RevocationTarget::of(at.expose()),
            Some(RevocationTarget::AccessToken(at.hash()))
        );
        assert_eq!(
            RevocationTarget::of(rt.expose()),
            Some(RevocationTarget::RefreshToken(rt.hash()))
        );
    }

    #[test]
    fn secrets_codes_and_garbage_are_not_revocation_targets() {
        let cs = Token::generate(TokenKind::ClientSecret).unwrap();
        let ac = Token::generate(TokenKind::AuthorizationCode).unwrap();
        assert_eq!(RevocationTarget::of(cs.expose()), None);
        assert_eq!(RevocationTarget::of(ac.expose()), None);
        assert_eq!(RevocationTarget::of("not-a-token"), None);
    }
}
