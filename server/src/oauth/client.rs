//! A registered client as the protocol sees it (RFC 6749 §2).
use super::client_auth::AuthMethod;
use super::client_jwks::ClientKeys;
use super::grant_type::GrantType;
use super::redirect_uri;
use super::resource::ResourceAccess;
use super::scope::ScopeSet;
use super::token::{self, TokenHash, TokenKind};
use crate::keys::SigningAlg;

/// A client record: who it is, how it authenticates and what it may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Client {
    pub id: String,
    pub name: String,
    /// SHA-256 of the client secret; `None` for a public client (RFC 6749 §2.1).
    pub secret_hash: Option<TokenHash>,
    /// Registered redirect URIs, compared by [`redirect_uri::matches`].
    pub redirect_uris: Vec<String>,
    pub grant_types: Vec<GrantType>,
    /// Scopes the client may request; requesting none means all of them.
    pub scopes: ScopeSet,
    /// A resource server that may call the introspection endpoint.
    pub can_introspect: bool,
    pub skip_consent: bool,
    pub require_2fa: bool,
    /// The resources (RFC 8707) it may ask tokens for or introspect for.
    pub resources: ResourceAccess,
    /// A resource server that asks for signed introspection answers (RFC 9701) gets them
    /// signed with this algorithm; `None`: it gets RFC 7662 JSON only.
    pub introspection_signed_response_alg: Option<SigningAlg>,
    /// The public keys of a client that authenticates with `private_key_jwt` (RFC 7523);
    /// such a client has no secret.
    pub assertion_keys: Option<ClientKeys>,
    /// What it registered as an OpenID Connect relying party.
    pub openid: OpenIdRegistration,
    /// Moves with every change of the stored record (1 when created): what an update made
    /// with `If-Match` compares.
    pub version: i64,
    /// When its secret stops authenticating (RFC 7591 `client_secret_expires_at`, seconds
    /// since the epoch); `None`: never.
    pub secret_expires_at: Option<i64>,
}

/// What a relying party registers for OpenID Connect (OpenID Connect Registration 1.0 §2,
/// RP-Initiated Logout 1.0 §3.1).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OpenIdRegistration {
    /// `id_token_signed_response_alg`; `None`: the server's default (`keys.default_algorithm`,
    /// RS256 unless configured otherwise).
    pub id_token_alg: Option<SigningAlg>,
    /// `post_logout_redirect_uris`: where RP-initiated logout may send the browser back.
    pub post_logout_redirect_uris: Vec<String>,
}

impl Client {
    /// A client without credentials (RFC 6749 §2.1): neither a secret nor keys.
    pub fn is_public(&self) -> bool {
        self.secret_hash.is_none() && self.assertion_keys.is_none()
    }

    /// How the client authenticates: `client_secret_basic` stands for both secret methods.
    pub fn auth_method(&self) -> AuthMethod {
        if self.assertion_keys.is_some() {
            AuthMethod::PrivateKeyJwt
        } else if self.secret_hash.is_some() {
            AuthMethod::ClientSecretBasic
        } else {
            AuthMethod::None
        }
    }

    pub fn allows_grant(&self, grant: GrantType) -> bool {
        self.grant_types.contains(&grant)
    }

    /// Whether a redirect URI named in a request is one of the registered ones.
    pub fn accepts_redirect_uri(&self, requested: &str) -> bool {
        self.redirect_uris
            .iter()
            .any(|registered| redirect_uri::matches(registered, requested))
    }

    /// Whether a `post_logout_redirect_uri` is one of the registered ones, compared as
    /// redirect URIs are.
    pub fn accepts_post_logout_redirect_uri(&self, requested: &str) -> bool {
        self.openid
            .post_logout_redirect_uris
            .iter()
            .any(|registered| redirect_uri::matches(registered, requested))
    }

    /// Checks a presented secret in constant time. Secrets are server-generated and carry a
    /// checksum, so a malformed one is refused before hashing. A secret past its
    /// `client_secret_expires_at` no longer verifies (RFC 7591 §3.2.1).
    pub fn verify_secret(&self, presented: &str, now: i64) -> bool {
        let Some(expected) = &self.secret_hash else {
            return false;
        };
        if self.secret_expires_at.is_some_and(|expires| now >= expires) {
            return false;
        }
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
            openid: Default::default(),
            resources: Default::default(),
            introspection_signed_response_alg: None,
            assertion_keys: None,
            version: 1,
            secret_expires_at: None,
        }
    }

    #[test]
    fn the_right_secret_verifies_and_others_do_not() {
        let secret = Token::generate(TokenKind::ClientSecret).unwrap();
        let other = Token::generate(TokenKind::ClientSecret).unwrap();
        let client = confidential(&secret);
        assert!(client.verify_secret(secret.expose(), 0));
        assert!(!client.verify_secret(other.expose(), 0));
        assert!(!client.verify_secret("", 0));
    }

    #[test]
    fn a_secret_verifies_until_it_expires() {
        let secret = Token::generate(TokenKind::ClientSecret).unwrap();
        let client = Client {
            secret_expires_at: Some(100),
            ..confidential(&secret)
        };
        assert!(client.verify_secret(secret.expose(), 99));
        assert!(!client.verify_secret(secret.expose(), 100));
    }

    #[test]
    fn an_access_token_is_not_a_client_secret() {
        let secret = Token::generate(TokenKind::ClientSecret).unwrap();
        let client = Client {
            secret_hash: Some(Token::generate(TokenKind::AccessToken).unwrap().hash()),
            ..confidential(&secret)
        };
        assert!(!client.verify_secret(secret.expose(), 0));
    }

    #[test]
    fn a_public_client_has_no_secret_to_verify() {
        let secret = Token::generate(TokenKind::ClientSecret).unwrap();
        let client = Client {
            secret_hash: None,
            ..confidential(&secret)
        };
        assert!(client.is_public());
        assert!(!client.verify_secret(secret.expose(), 0));
    }
}
