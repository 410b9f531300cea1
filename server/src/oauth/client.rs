//! A registered client as the protocol sees it (RFC 6749 §2).
use super::grant_type::GrantType;
use super::scope::ScopeSet;
use super::token::{self, TokenHash, TokenKind};

/// A client record: who it is, how it authenticates and what it may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Client {
    pub id: String,
    pub name: String,
    /// SHA-256 of the client secret; `None` for a public client (RFC 6749 §2.1).
    pub secret_hash: Option<TokenHash>,
    /// Registered redirect URIs, compared by exact string match.
    pub redirect_uris: Vec<String>,
    pub grant_types: Vec<GrantType>,
    /// Scopes the client may request; requesting none means all of them.
    pub scopes: ScopeSet,
    /// A resource server that may call the introspection endpoint.
    pub can_introspect: bool,
    pub skip_consent: bool,
    pub require_2fa: bool,
}

impl Client {
    pub fn is_public(&self) -> bool {
        self.secret_hash.is_none()
    }

    pub fn allows_grant(&self, grant: GrantType) -> bool {
        self.grant_types.contains(&grant)
    }

    /// Checks a presented secret in constant time. Secrets are server-generated and carry a
    /// checksum, so a malformed one is refused before hashing.
    pub fn verify_secret(&self, presented: &str) -> bool {
        let Some(expected) = &self.secret_hash else {
            return false;
        };
        match token::parse(presented) {
            Some(parsed) if parsed.kind == TokenKind::ClientSecret => parsed.hash.ct_eq(expected),
            _ => false,
        }
    }
}

/// Longest client_id Umbra issues or accepts.
pub const MAX_CLIENT_ID_LEN: usize = 128;

/// Client ids are 1 to 128 characters of the URL-safe unreserved set (RFC 3986 §2.3), so
/// anything else names no client and never reaches the database.
pub fn is_valid_client_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_CLIENT_ID_LEN
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-._~".contains(c))
}

/// Checks a redirect URI at registration (RFC 6749 §3.1.2): "The redirection endpoint URI
/// MUST be an absolute URI" and "MUST NOT include a fragment component". Native apps may use a
/// private-use scheme (RFC 8252 §7.1), so any scheme is accepted.
pub fn validate_redirect_uri(uri: &str) -> Result<(), &'static str> {
    let Some((scheme, rest)) = uri.split_once(':') else {
        return Err("must be an absolute URI");
    };
    let scheme_ok = scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c));
    if !scheme_ok || rest.is_empty() {
        return Err("must be an absolute URI");
    }
    if uri.contains('#') {
        return Err("must not contain a fragment");
    }
    if uri.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("must not contain whitespace");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oauth::token::Token;

    fn confidential(secret: &Token) -> Client {
        Client {
            id: "svc".into(),
            name: "Service".into(),
            secret_hash: Some(secret.hash()),
            redirect_uris: vec![],
            grant_types: vec![GrantType::ClientCredentials],
            scopes: ScopeSet::parse("read").unwrap(),
            can_introspect: false,
            skip_consent: false,
            require_2fa: false,
        }
    }

    #[test]
    fn the_right_secret_verifies_and_others_do_not() {
        let secret = Token::generate(TokenKind::ClientSecret).unwrap();
        let other = Token::generate(TokenKind::ClientSecret).unwrap();
        let client = confidential(&secret);
        assert!(client.verify_secret(secret.expose()));
        assert!(!client.verify_secret(other.expose()));
        assert!(!client.verify_secret(""));
    }

    #[test]
    fn an_access_token_is_not_a_client_secret() {
        let secret = Token::generate(TokenKind::ClientSecret).unwrap();
        let client = Client {
            secret_hash: Some(Token::generate(TokenKind::AccessToken).unwrap().hash()),
            ..confidential(&secret)
        };
        assert!(!client.verify_secret(secret.expose()));
    }

    #[test]
    fn redirect_uris_must_be_absolute_and_fragment_free() {
        assert!(validate_redirect_uri("https://app.example/cb").is_ok());
        assert!(validate_redirect_uri("com.example.app:/oauth").is_ok());
        assert!(validate_redirect_uri("/relative").is_err());
        assert!(validate_redirect_uri("https://app.example/cb#frag").is_err());
        assert!(validate_redirect_uri("https://app.example/c b").is_err());
    }

    #[test]
    fn a_public_client_has_no_secret_to_verify() {
        let secret = Token::generate(TokenKind::ClientSecret).unwrap();
        let client = Client {
            secret_hash: None,
            ..confidential(&secret)
        };
        assert!(client.is_public());
        assert!(!client.verify_secret(secret.expose()));
    }
}
