//! Client metadata (RFC 7591 §2) and the rules every new or changed client keeps, whoever
//! registers it: an operator (CLI, admin API, console) or the client itself through dynamic
//! registration (RFC 7591 §3) and its management protocol (RFC 7592 §2.2).
//!
//! One place for the rules, so that a client the CLI would refuse cannot enter through the
//! admin API or `/register`. What differs between callers is a [`RegistrationPolicy`]: an
//! operator is trusted with Umbra's own fields (consent skipping, introspection, resources)
//! and a chosen `client_id`; a self-registering client gets only what the `registration`
//! settings allow. The errors are the two RFC 7591 §3.2.2 codes.
use super::client::{Client, MAX_CLIENT_ID_LEN, OpenIdRegistration, is_valid_client_id};
use super::client_auth::AuthMethod;
use super::client_jwks::{ClientJwks, ClientKeys, validate_jwks_uri};
use super::error::{ErrorCode, OAuthError};
use super::grant_type::GrantType;
use super::redirect_uri::{self, RedirectUriError};
use super::resource::ResourceAccess;
use super::scope::ScopeSet;
use super::token::{Token, TokenKind, random_urlsafe};
use crate::keys::SigningAlg;
use serde::{Deserialize, Serialize};
use std::fmt;

/// The scope of the admin API: never granted to a client that registered itself.
pub const ADMIN_SCOPE: &str = "umbra:admin";

/// Longest `client_name`.
pub const MAX_NAME_LEN: usize = 200;
/// Most entries in any list of the metadata (redirect URIs, grant types, resources …).
pub const MAX_LIST_LEN: usize = 32;
/// Longest `scope` string.
pub const MAX_SCOPE_LEN: usize = 2048;
/// Longest resource identifier.
pub const MAX_RESOURCE_LEN: usize = 1024;

/// The only response type Umbra serves (RFC 6749 §4.1).
const CODE: &str = "code";

/// Client metadata with the RFC 7591 §2 names (and OpenID Connect Registration's), plus
/// Umbra's own fields, which only trusted callers may set. Unknown members are ignored, as
/// RFC 7591 §2 asks ("The authorization server MUST ignore any client metadata sent by the
/// client that it does not understand").
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default)]
pub struct ClientMetadata {
    /// The client_id: chosen by a trusted caller at creation; in an RFC 7592 update it must
    /// be the client's own.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// A human-readable name, shown on consent pages; defaults to the client_id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_name: Option<String>,
    /// Redirect URIs, matched exactly (loopback IP literals: any port, RFC 8252 §7.3).
    pub redirect_uris: Vec<String>,
    /// `authorization_code`, `refresh_token`, `client_credentials`,
    /// `urn:ietf:params:oauth:grant-type:token-exchange`. Empty: `authorization_code` and
    /// `refresh_token` with redirect URIs, `client_credentials` without.
    pub grant_types: Vec<String>,
    /// `code` only (RFC 7591 §2.1), and only with the `authorization_code` grant. Empty:
    /// derived from the grant types.
    pub response_types: Vec<String>,
    /// Space-separated scopes the client may request.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// `client_secret_basic` (default), `client_secret_post`, `private_key_jwt` or `none`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_endpoint_auth_method: Option<String>,
    /// `private_key_jwt`: the client's public keys, a JWK Set.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub jwks: Option<serde_json::Value>,
    /// `private_key_jwt`: where the client publishes its JWK Set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jwks_uri: Option<String>,
    /// OpenID Connect RP-initiated logout: where the browser may return after signing out.
    pub post_logout_redirect_uris: Vec<String>,
    /// The algorithm of its ID tokens: `RS256`, `ES256` or `EdDSA`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_token_signed_response_alg: Option<String>,
    /// Signed introspection answers (RFC 9701) in `RS256`, `ES256` or `EdDSA`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub introspection_signed_response_alg: Option<String>,
    /// Umbra: a resource server that may call `/introspect` (trusted callers only).
    pub introspect: bool,
    /// Umbra: a first-party client whose users are not asked for consent (trusted only).
    pub skip_consent: bool,
    /// Umbra: its users must sign in with a second factor (trusted only).
    pub require_2fa: bool,
    /// Umbra: resources (RFC 8707) it may ask tokens for, with every scope they define
    /// (trusted only).
    pub resources: Vec<String>,
    /// Umbra: the resource used when a request names none; one of `resources`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default_resource: Option<String>,
}

/// Who registers, and what they may ask for.
#[derive(Debug, Clone, Default)]
pub struct RegistrationPolicy {
    /// An operator: may choose the client_id, set Umbra's fields, and any grant or scope.
    pub trusted: bool,
    /// Development: plain http redirect URIs to any host (trusted callers only).
    pub allow_insecure_redirect: bool,
    /// Development: a plain http `jwks_uri` to any host (trusted callers only).
    pub allow_insecure_jwks_uri: bool,
    /// The grant types it may ask for; `None`: any.
    pub grant_types: Option<Vec<GrantType>>,
    /// The scopes it may ask for; `None`: any (but never [`ADMIN_SCOPE`] when untrusted).
    pub scopes: Option<ScopeSet>,
    /// Redirect URIs must be https, or http to a loopback address: no private-use schemes.
    pub https_or_loopback_only: bool,
}

impl RegistrationPolicy {
    /// An operator's: everything Umbra can do, with the development flags given.
    pub fn trusted(allow_insecure_redirect: bool, allow_insecure_jwks_uri: bool) -> Self {
        Self {
            trusted: true,
            allow_insecure_redirect,
            allow_insecure_jwks_uri,
            ..Self::default()
        }
    }
}

/// Why metadata is refused (RFC 7591 §3.2.2). The message is the `error_description`: it
/// names the field at fault and never holds a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MetadataError {
    /// "The value of one or more redirection URIs is invalid."
    #[error("{0}")]
    InvalidRedirectUri(String),
    /// "The value of one of the client metadata fields is invalid and the server has rejected
    /// this request."
    #[error("{0}")]
    InvalidClientMetadata(String),
    /// The operating system's random generator failed: no id or secret could be drawn.
    #[error("the random number generator failed")]
    Random,
}

impl From<MetadataError> for OAuthError {
    fn from(err: MetadataError) -> Self {
        match err {
            MetadataError::InvalidRedirectUri(description) => {
                OAuthError::new(ErrorCode::InvalidRedirectUri, description)
            }
            MetadataError::InvalidClientMetadata(description) => {
                OAuthError::new(ErrorCode::InvalidClientMetadata, description)
            }
            MetadataError::Random => OAuthError::server_error(err),
        }
    }
}

/// A client checked and ready to store, with its secret in plaintext (shown once) and the
/// resources to link it to.
pub struct Registration {
    pub client: Client,
    /// The secret of a `client_secret_*` client; its hash is in `client`.
    pub secret: Option<Token>,
    /// Resources it may ask tokens for, with every scope they define.
    pub resources: Vec<String>,
}

impl fmt::Debug for Registration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registration")
            .field("client", &self.client.id)
            .field("secret", &self.secret.as_ref().map(|_| "[redacted]"))
            .field("resources", &self.resources)
            .finish()
    }
}

/// The parts of metadata that do not depend on whether the client is new.
struct Checked {
    name: Option<String>,
    redirect_uris: Vec<String>,
    grant_types: Vec<GrantType>,
    scopes: ScopeSet,
    method: AuthMethod,
    assertion_keys: Option<ClientKeys>,
    introspection_signed_response_alg: Option<SigningAlg>,
    openid: OpenIdRegistration,
    introspect: bool,
    skip_consent: bool,
    require_2fa: bool,
    resources: Vec<String>,
    default_resource: Option<String>,
}

impl ClientMetadata {
    /// Checks a new client against `policy`, draws its id (unless a trusted caller chose one)
    /// and, for a `client_secret_*` client, its secret.
    pub fn register(self, policy: &RegistrationPolicy) -> Result<Registration, MetadataError> {
        let id = match &self.client_id {
            Some(_) if !policy.trusted => {
                return Err(invalid("client_id is assigned by the server"));
            }
            Some(id) => {
                check_client_id(id)?;
                id.clone()
            }
            None => random_client_id().map_err(|_| MetadataError::Random)?,
        };
        let checked = self.check(policy, None)?;
        let secret = match checked.method {
            AuthMethod::ClientSecretBasic | AuthMethod::ClientSecretPost => {
                Some(Token::generate(TokenKind::ClientSecret).map_err(|_| MetadataError::Random)?)
            }
            AuthMethod::PrivateKeyJwt | AuthMethod::None => None,
        };
        let resources = checked.resources.clone();
        let client = checked.into_client(id, secret.as_ref().map(Token::hash), None, 1);
        Ok(Registration {
            client,
            secret,
            resources,
        })
    }

    /// Checks a replacement of `existing`'s metadata (an admin PUT, an RFC 7592 §2.2 update)
    /// the same way. The id, the secret and its expiry stay; so does the way the client
    /// authenticates (a secret, keys or none: a secret cannot be drawn or dropped here, keys
    /// may be replaced). Without `token_endpoint_auth_method` the current method is kept.
    /// The resource links to set are `self.resources`: read them before calling.
    pub fn apply_to(
        self,
        existing: &Client,
        policy: &RegistrationPolicy,
    ) -> Result<Client, MetadataError> {
        if let Some(id) = &self.client_id
            && *id != existing.id
        {
            return Err(invalid("client_id does not match the client being updated"));
        }
        if let Some(name) = self.token_endpoint_auth_method.as_deref() {
            let method = parse_method(name)?;
            if !same_kind(method, existing.auth_method()) {
                return Err(invalid(format!(
                    "token_endpoint_auth_method cannot change from {} to {}: register a new \
                     client",
                    existing.auth_method().as_str(),
                    method.as_str()
                )));
            }
        }
        let checked = self.check(policy, Some(existing))?;
        Ok(checked.into_client(
            existing.id.clone(),
            existing.secret_hash,
            existing.secret_expires_at,
            existing.version,
        ))
    }

    /// What a response shows of `client`: its metadata, without secrets.
    pub fn of(client: &Client) -> Self {
        let grant_types: Vec<String> = client
            .grant_types
            .iter()
            .map(|g| g.as_str().to_owned())
            .collect();
        let response_types = if client.allows_grant(GrantType::AuthorizationCode) {
            vec![CODE.to_owned()]
        } else {
            Vec::new()
        };
        Self {
            client_id: Some(client.id.clone()),
            client_name: Some(client.name.clone()),
            redirect_uris: client.redirect_uris.clone(),
            grant_types,
            response_types,
            scope: (!client.scopes.is_empty()).then(|| client.scopes.to_string()),
            token_endpoint_auth_method: Some(client.auth_method().as_str().to_owned()),
            jwks: match &client.assertion_keys {
                Some(ClientKeys::Inline(jwks)) => Some(jwks.to_json()),
                _ => None,
            },
            jwks_uri: match &client.assertion_keys {
                Some(ClientKeys::Uri(uri)) => Some(uri.clone()),
                _ => None,
            },
            post_logout_redirect_uris: client.openid.post_logout_redirect_uris.clone(),
            id_token_signed_response_alg: client
                .openid
                .id_token_alg
                .map(|alg| alg.as_str().to_owned()),
            introspection_signed_response_alg: client
                .introspection_signed_response_alg
                .map(|alg| alg.as_str().to_owned()),
            introspect: client.can_introspect,
            skip_consent: client.skip_consent,
            require_2fa: client.require_2fa,
            resources: client
                .resources
                .allowed
                .iter()
                .map(|r| r.identifier.clone())
                .collect(),
            default_resource: client.resources.default.clone(),
        }
    }

    /// Every rule but the id's. `existing`: the client being updated, whose method is the
    /// default.
    fn check(
        self,
        policy: &RegistrationPolicy,
        existing: Option<&Client>,
    ) -> Result<Checked, MetadataError> {
        if !policy.trusted {
            self.refuse_umbra_fields()?;
        }
        let name = match self.client_name.as_deref().map(str::trim) {
            None => None,
            Some("") => return Err(invalid("client_name must not be empty")),
            Some(name) if name.chars().count() > MAX_NAME_LEN => {
                return Err(invalid(format!(
                    "client_name is longer than {MAX_NAME_LEN} characters"
                )));
            }
            Some(name) if name.chars().any(char::is_control) => {
                return Err(invalid("client_name must not contain control characters"));
            }
            Some(name) => Some(name.to_owned()),
        };
        bounded("redirect_uris", &self.redirect_uris)?;
        for uri in &self.redirect_uris {
            check_redirect_uri(uri, policy).map_err(|why| {
                MetadataError::InvalidRedirectUri(format!("redirect URI {uri:?} {why}"))
            })?;
        }
        bounded("post_logout_redirect_uris", &self.post_logout_redirect_uris)?;
        for uri in &self.post_logout_redirect_uris {
            check_redirect_uri(uri, policy)
                .map_err(|why| invalid(format!("post-logout redirect URI {uri:?} {why}")))?;
        }
        let method = match self.token_endpoint_auth_method.as_deref() {
            Some(name) => parse_method(name)?,
            None => existing.map_or(AuthMethod::ClientSecretBasic, Client::auth_method),
        };
        let public = method == AuthMethod::None;
        let assertion_keys = self.keys(policy)?;
        match (method, &assertion_keys) {
            (AuthMethod::PrivateKeyJwt, None) => {
                return Err(invalid("private_key_jwt needs jwks or jwks_uri"));
            }
            (AuthMethod::PrivateKeyJwt, Some(_)) | (_, None) => {}
            (_, Some(_)) => {
                return Err(invalid(
                    "jwks and jwks_uri need token_endpoint_auth_method private_key_jwt",
                ));
            }
        }
        let grant_types = self.grant_types(policy)?;
        if public && grant_types.contains(&GrantType::ClientCredentials) {
            return Err(invalid(
                "a public client cannot use client_credentials (RFC 6749 §4.4)",
            ));
        }
        let introspection_signed_response_alg = alg(
            "introspection_signed_response_alg",
            self.introspection_signed_response_alg.as_deref(),
        )?;
        if public && (self.introspect || introspection_signed_response_alg.is_some()) {
            return Err(invalid(PUBLIC_CANNOT_INTROSPECT));
        }
        if grant_types.contains(&GrantType::AuthorizationCode) && self.redirect_uris.is_empty() {
            return Err(MetadataError::InvalidRedirectUri(
                "authorization_code needs at least one redirect URI in redirect_uris".into(),
            ));
        }
        let scopes = self.scopes(policy)?;
        bounded("resources", &self.resources)?;
        if let Some(long) = self.resources.iter().find(|r| r.len() > MAX_RESOURCE_LEN) {
            return Err(invalid(format!(
                "the resource {:?}… is longer than {MAX_RESOURCE_LEN} characters",
                long.chars().take(40).collect::<String>()
            )));
        }
        if let Some(default) = &self.default_resource
            && !self.resources.contains(default)
        {
            return Err(invalid(format!(
                "the default_resource {default} must also be one of the resources"
            )));
        }
        let mut resources = self.resources;
        dedup(&mut resources);
        let openid = OpenIdRegistration {
            id_token_alg: alg(
                "id_token_signed_response_alg",
                self.id_token_signed_response_alg.as_deref(),
            )?,
            post_logout_redirect_uris: self.post_logout_redirect_uris,
        };
        Ok(Checked {
            name,
            redirect_uris: self.redirect_uris,
            grant_types,
            scopes,
            method,
            assertion_keys,
            introspection_signed_response_alg,
            openid,
            introspect: self.introspect,
            skip_consent: self.skip_consent,
            require_2fa: self.require_2fa,
            resources,
            default_resource: self.default_resource,
        })
    }

    /// Umbra's own fields are an operator's decision; their defaults pass, so that a client
    /// may send back what it was shown.
    fn refuse_umbra_fields(&self) -> Result<(), MetadataError> {
        let set = [
            ("introspect", self.introspect),
            ("skip_consent", self.skip_consent),
            ("require_2fa", self.require_2fa),
            ("resources", !self.resources.is_empty()),
            ("default_resource", self.default_resource.is_some()),
        ];
        match set.iter().find(|(_, given)| *given) {
            Some((field, _)) => Err(invalid(format!(
                "{field} is set by the server's operator, not at registration"
            ))),
            None => Ok(()),
        }
    }

    /// The keys given, checked; `None` when none were.
    fn keys(&self, policy: &RegistrationPolicy) -> Result<Option<ClientKeys>, MetadataError> {
        match (&self.jwks, &self.jwks_uri) {
            (Some(_), Some(_)) => Err(invalid("give jwks or jwks_uri, not both")),
            (Some(jwks), None) => {
                let json = serde_json::to_vec(jwks).map_err(|_| invalid("jwks: not JSON"))?;
                let jwks = ClientJwks::parse_registered(&json)
                    .map_err(|why| invalid(format!("jwks: {why}")))?;
                Ok(Some(ClientKeys::Inline(jwks)))
            }
            // A URL the server would fetch, named by whoever reaches /register: it could point
            // at hosts inside the network (SSRF). Self-registered clients give their keys inline.
            (None, Some(_)) if !policy.trusted => Err(invalid(
                "jwks_uri is not accepted from a self-registered client: give the keys as jwks",
            )),
            (None, Some(uri)) => {
                validate_jwks_uri(uri, policy.allow_insecure_jwks_uri)
                    .map_err(|why| invalid(format!("jwks_uri {uri:?} {why}")))?;
                Ok(Some(ClientKeys::Uri(uri.clone())))
            }
            (None, None) => Ok(None),
        }
    }

    /// The grant types, defaulted, consistent with `response_types` and allowed by `policy`.
    fn grant_types(&self, policy: &RegistrationPolicy) -> Result<Vec<GrantType>, MetadataError> {
        bounded("grant_types", &self.grant_types)?;
        bounded("response_types", &self.response_types)?;
        if let Some(other) = self.response_types.iter().find(|r| *r != CODE) {
            return Err(invalid(format!(
                "response_type {other:?} is not supported (only \"code\")"
            )));
        }
        let mut grant_types = self
            .grant_types
            .iter()
            .map(|name| name.parse::<GrantType>())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|unknown| invalid(unknown.to_string()))?;
        if grant_types.is_empty() {
            grant_types = if self.redirect_uris.is_empty() && self.response_types.is_empty() {
                vec![GrantType::ClientCredentials]
            } else {
                vec![GrantType::AuthorizationCode, GrantType::RefreshToken]
            };
        }
        dedup(&mut grant_types);
        // RFC 7591 §2.1: "code" goes with authorization_code and with nothing else.
        let code = grant_types.contains(&GrantType::AuthorizationCode);
        if !self.response_types.is_empty() && !code {
            return Err(invalid(
                "response_type \"code\" needs the authorization_code grant type",
            ));
        }
        if let Some(allowed) = &policy.grant_types
            && let Some(refused) = grant_types.iter().find(|g| !allowed.contains(g))
        {
            return Err(invalid(format!(
                "the grant type {} is not allowed here",
                refused.as_str()
            )));
        }
        Ok(grant_types)
    }

    /// The scopes, parsed and allowed by `policy`.
    fn scopes(&self, policy: &RegistrationPolicy) -> Result<ScopeSet, MetadataError> {
        let raw = self.scope.as_deref().unwrap_or_default();
        if raw.len() > MAX_SCOPE_LEN {
            return Err(invalid(format!(
                "scope is longer than {MAX_SCOPE_LEN} characters"
            )));
        }
        let scopes = ScopeSet::parse(raw).map_err(|_| {
            invalid("a scope may not contain spaces, quotes, backslashes or control characters")
        })?;
        if !policy.trusted && scopes.contains(ADMIN_SCOPE) {
            return Err(invalid(format!(
                "the scope {ADMIN_SCOPE} is not allowed here"
            )));
        }
        if let Some(allowed) = &policy.scopes
            && let Some(refused) = scopes.iter().find(|s| !allowed.contains(s))
        {
            return Err(invalid(format!("the scope {refused} is not allowed here")));
        }
        Ok(scopes)
    }
}

impl Checked {
    fn into_client(
        self,
        id: String,
        secret_hash: Option<super::token::TokenHash>,
        secret_expires_at: Option<i64>,
        version: i64,
    ) -> Client {
        Client {
            name: self.name.unwrap_or_else(|| id.clone()),
            id,
            secret_hash,
            redirect_uris: self.redirect_uris,
            grant_types: self.grant_types,
            scopes: self.scopes,
            can_introspect: self.introspect,
            skip_consent: self.skip_consent,
            require_2fa: self.require_2fa,
            assertion_keys: self.assertion_keys,
            resources: ResourceAccess {
                default: self.default_resource,
                ..ResourceAccess::default()
            },
            introspection_signed_response_alg: self.introspection_signed_response_alg,
            openid: self.openid,
            version,
            secret_expires_at,
        }
    }
}

const PUBLIC_CANNOT_INTROSPECT: &str =
    "a public client cannot introspect: it has no secret to authenticate with";

fn invalid(description: impl Into<String>) -> MetadataError {
    MetadataError::InvalidClientMetadata(description.into())
}

fn bounded<T>(field: &str, list: &[T]) -> Result<(), MetadataError> {
    if list.len() > MAX_LIST_LEN {
        return Err(invalid(format!(
            "{field} has more than {MAX_LIST_LEN} entries"
        )));
    }
    Ok(())
}

/// Keeps the first of each repeated entry, in order.
fn dedup<T: PartialEq + Clone>(list: &mut Vec<T>) {
    let mut seen: Vec<T> = Vec::with_capacity(list.len());
    list.retain(|item| {
        let new = !seen.contains(item);
        if new {
            seen.push(item.clone());
        }
        new
    });
}

fn parse_method(name: &str) -> Result<AuthMethod, MetadataError> {
    [
        AuthMethod::ClientSecretBasic,
        AuthMethod::ClientSecretPost,
        AuthMethod::PrivateKeyJwt,
        AuthMethod::None,
    ]
    .into_iter()
    .find(|m| m.as_str() == name)
    .ok_or_else(|| {
        invalid(format!(
            "token_endpoint_auth_method {name:?} is not supported (client_secret_basic, \
             client_secret_post, private_key_jwt or none)"
        ))
    })
}

/// Whether an update keeps the kind of credential: a secret (either method), keys, or none.
fn same_kind(new: AuthMethod, current: AuthMethod) -> bool {
    let kind = |m| match m {
        AuthMethod::ClientSecretBasic | AuthMethod::ClientSecretPost => 0,
        AuthMethod::PrivateKeyJwt => 1,
        AuthMethod::None => 2,
    };
    kind(new) == kind(current)
}

fn alg(field: &str, value: Option<&str>) -> Result<Option<SigningAlg>, MetadataError> {
    value
        .map(|name| {
            name.parse::<SigningAlg>()
                .map_err(|why| invalid(format!("{field}: {why}")))
        })
        .transpose()
}

/// Checks a redirect (or post-logout redirect) URI; the message follows the URI.
fn check_redirect_uri(uri: &str, policy: &RegistrationPolicy) -> Result<(), String> {
    let insecure = policy.trusted && policy.allow_insecure_redirect;
    match redirect_uri::validate(uri, insecure) {
        Err(RedirectUriError::InsecureHttp) if !policy.trusted => {
            Err("must use https (plain http only to a loopback address)".into())
        }
        Err(why) => Err(why.to_string()),
        Ok(()) if policy.https_or_loopback_only => {
            let scheme = uri.split_once(':').map(|(s, _)| s.to_ascii_lowercase());
            match scheme.as_deref() {
                Some("https" | "http") => Ok(()),
                _ => Err("must use https (or http to a loopback address)".into()),
            }
        }
        Ok(()) => Ok(()),
    }
}

fn check_client_id(id: &str) -> Result<(), MetadataError> {
    if !is_valid_client_id(id) {
        return Err(invalid(format!(
            "client_id: a client id is 1 to {MAX_CLIENT_ID_LEN} characters of A-Z a-z 0-9 - . _ ~"
        )));
    }
    Ok(())
}

/// 128 random bits in base64url that never start with `-` or `_`: an id such as `-LS6Rv…`
/// would be read as an option by `umbra client show` and by other command lines.
pub fn random_client_id() -> Result<String, rand::rngs::SysError> {
    loop {
        let id = random_urlsafe(16)?;
        if id.starts_with(|c: char| c.is_ascii_alphanumeric()) {
            return Ok(id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn trusted() -> RegistrationPolicy {
        RegistrationPolicy::trusted(false, false)
    }

    /// What `registration` settings give a self-registering client by default.
    fn dcr() -> RegistrationPolicy {
        RegistrationPolicy {
            trusted: false,
            grant_types: Some(vec![
                GrantType::AuthorizationCode,
                GrantType::RefreshToken,
                GrantType::ClientCredentials,
            ]),
            scopes: Some(ScopeSet::parse("read write").unwrap()),
            https_or_loopback_only: true,
            ..RegistrationPolicy::default()
        }
    }

    fn metadata(value: serde_json::Value) -> ClientMetadata {
        serde_json::from_value(value).unwrap()
    }

    fn register(value: serde_json::Value, policy: &RegistrationPolicy) -> Result<Client, String> {
        metadata(value)
            .register(policy)
            .map(|r| r.client)
            .map_err(|e| e.to_string())
    }

    fn jwks(private: bool) -> serde_json::Value {
        let generated = crate::keys::material::generate(SigningAlg::Es256).unwrap();
        let mut key = serde_json::to_value(generated.public_jwk).unwrap();
        if private {
            key["d"] = "c2VjcmV0".into();
        }
        json!({ "keys": [key] })
    }

    #[test]
    fn https_loopback_and_private_use_redirect_uris_are_registered_as_given() {
        let uris = [
            "https://app.example/cb",
            "http://127.0.0.1/cb",
            "com.example.app:/cb",
        ];
        let client = register(
            json!({"redirect_uris": uris, "token_endpoint_auth_method": "none"}),
            &trusted(),
        )
        .unwrap();
        assert_eq!(client.redirect_uris, uris);
        assert!(client.is_public());
    }

    #[test]
    fn dangerous_and_insecure_redirect_uris_are_refused() {
        for uri in [
            "javascript:alert(1)",
            "data:text/html,x",
            "file:///etc/passwd",
            "https://app.example/cb#x",
            "http://app.example/cb",
        ] {
            let err = metadata(json!({ "redirect_uris": [uri] }))
                .register(&trusted())
                .unwrap_err();
            assert!(
                matches!(&err, MetadataError::InvalidRedirectUri(d) if d.contains("redirect URI")),
                "{uri}: {err:?}"
            );
        }
    }

    #[test]
    fn the_development_flag_allows_plain_http_and_nothing_else() {
        let dev = RegistrationPolicy::trusted(true, false);
        let client = register(json!({"redirect_uris": ["http://app.test:8080/cb"]}), &dev);
        assert_eq!(client.unwrap().redirect_uris, ["http://app.test:8080/cb"]);
        assert!(register(json!({"redirect_uris": ["javascript:alert(1)"]}), &dev).is_err());
        assert!(register(json!({"redirect_uris": ["http://app.test/cb#x"]}), &dev).is_err());
    }

    #[test]
    fn a_self_registered_client_gets_https_or_loopback_redirect_uris_only() {
        let ok = register(
            json!({"redirect_uris": ["https://app.example/cb", "http://127.0.0.1:9000/cb"]}),
            &dcr(),
        );
        assert!(ok.is_ok(), "{ok:?}");
        for uri in ["http://app.example/cb", "com.example.app:/cb"] {
            let err = metadata(json!({ "redirect_uris": [uri] }))
                .register(&dcr())
                .unwrap_err();
            assert!(
                matches!(err, MetadataError::InvalidRedirectUri(_)),
                "{uri}: {err:?}"
            );
        }
        // The development flag is an operator's, never a client's.
        let policy = RegistrationPolicy {
            allow_insecure_redirect: true,
            ..dcr()
        };
        assert!(register(json!({"redirect_uris": ["http://app.example/cb"]}), &policy).is_err());
    }

    #[test]
    fn a_private_key_jwt_client_registers_keys_and_gets_no_secret() {
        let inline = metadata(json!({
            "token_endpoint_auth_method": "private_key_jwt",
            "jwks": jwks(false),
        }))
        .register(&trusted())
        .unwrap();
        assert!(inline.secret.is_none());
        assert_eq!(inline.client.auth_method(), AuthMethod::PrivateKeyJwt);
        assert!(inline.client.secret_hash.is_none() && !inline.client.is_public());
        assert!(matches!(
            inline.client.assertion_keys,
            Some(ClientKeys::Inline(_))
        ));

        let remote = register(
            json!({
                "token_endpoint_auth_method": "private_key_jwt",
                "jwks_uri": "https://svc.example/jwks.json",
            }),
            &trusted(),
        )
        .unwrap();
        assert_eq!(
            remote.assertion_keys,
            Some(ClientKeys::Uri("https://svc.example/jwks.json".into()))
        );
    }

    #[test]
    fn keys_that_are_private_missing_or_misplaced_are_refused() {
        let pkjwt = |extra: serde_json::Value| {
            let mut m = json!({"token_endpoint_auth_method": "private_key_jwt"});
            m.as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            register(m, &trusted())
        };
        let err = pkjwt(json!({"jwks": jwks(true)})).unwrap_err();
        assert!(err.contains("private key material"), "{err}");
        let err = pkjwt(json!({})).unwrap_err();
        assert!(err.contains("needs jwks or jwks_uri"), "{err}");
        let err = register(json!({"jwks": jwks(false)}), &trusted()).unwrap_err();
        assert!(err.contains("need token_endpoint_auth_method"), "{err}");
        let err = pkjwt(json!({"jwks_uri": "http://svc.example/k"})).unwrap_err();
        assert!(err.contains("https"), "{err}");
        let both = pkjwt(json!({"jwks": jwks(false), "jwks_uri": "https://a.example/k"}));
        assert!(both.is_err());
        let not_a_set = pkjwt(json!({"jwks": [1, 2]})).unwrap_err();
        assert!(not_a_set.contains("jwks"), "{not_a_set}");
    }

    #[test]
    fn a_self_registered_client_gives_its_keys_inline_never_a_url_to_fetch() {
        let with = |keys: serde_json::Value| {
            let mut m = json!({"token_endpoint_auth_method": "private_key_jwt",
                               "grant_types": ["client_credentials"]});
            m.as_object_mut()
                .unwrap()
                .extend(keys.as_object().unwrap().clone());
            m
        };
        assert!(register(with(json!({"jwks": jwks(false)})), &dcr()).is_ok());
        for uri in [
            "https://svc.example/jwks",
            "https://10.0.0.1/jwks",
            "http://127.0.0.1/k",
        ] {
            let err = register(with(json!({ "jwks_uri": uri })), &dcr()).unwrap_err();
            assert!(err.contains("not accepted"), "{uri}: {err}");
        }
    }

    #[test]
    fn auth_method_none_is_public_and_secret_methods_get_a_secret() {
        let public = register(
            json!({"token_endpoint_auth_method": "none", "redirect_uris": ["https://a.example/cb"]}),
            &trusted(),
        );
        assert!(public.unwrap().is_public());
        let post = metadata(json!({"token_endpoint_auth_method": "client_secret_post"}))
            .register(&trusted())
            .unwrap();
        assert_eq!(post.client.auth_method(), AuthMethod::ClientSecretBasic);
        let secret = post.secret.unwrap();
        assert_eq!(post.client.secret_hash, Some(secret.hash()));
        assert!(
            !format!(
                "{:?}",
                Registration {
                    client: post.client,
                    secret: Some(secret),
                    resources: vec![]
                }
            )
            .contains("cs_")
        );
        let err = register(
            json!({"token_endpoint_auth_method": "tls_client_auth"}),
            &trusted(),
        );
        assert!(err.unwrap_err().contains("not supported"));
    }

    #[test]
    fn a_public_client_cannot_use_client_credentials_or_introspect() {
        let public = |extra: serde_json::Value| {
            let mut m = json!({"token_endpoint_auth_method": "none",
                                "redirect_uris": ["https://a.example/cb"]});
            m.as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            register(m, &trusted()).unwrap_err()
        };
        assert!(public(json!({"grant_types": ["client_credentials"]})).contains("RFC 6749 §4.4"));
        assert!(public(json!({"introspect": true})).contains("cannot introspect"));
        assert!(
            public(json!({"introspection_signed_response_alg": "RS256"}))
                .contains("cannot introspect")
        );
    }

    #[test]
    fn grant_types_default_by_redirect_uris_and_agree_with_response_types() {
        let service = register(json!({}), &trusted()).unwrap();
        assert_eq!(service.grant_types, [GrantType::ClientCredentials]);
        let app = register(
            json!({"redirect_uris": ["https://a.example/cb"]}),
            &trusted(),
        );
        assert_eq!(
            app.unwrap().grant_types,
            [GrantType::AuthorizationCode, GrantType::RefreshToken]
        );
        let err = register(json!({"grant_types": ["authorization_code"]}), &trusted());
        assert!(err.unwrap_err().contains("redirect URI"));
        let err = register(
            json!({"grant_types": ["client_credentials"], "response_types": ["code"]}),
            &trusted(),
        );
        assert!(err.unwrap_err().contains("needs the authorization_code"));
        let err = register(
            json!({"redirect_uris": ["https://a.example/cb"], "response_types": ["token"]}),
            &trusted(),
        );
        assert!(err.unwrap_err().contains("not supported"));
        let err = register(json!({"grant_types": ["password"]}), &trusted());
        assert!(err.unwrap_err().contains("unknown grant type"));
    }

    #[test]
    fn the_policy_limits_grant_types_and_scopes_and_never_gives_the_admin_scope() {
        let err = register(
            json!({"grant_types": ["client_credentials"], "scope": "read admin"}),
            &dcr(),
        );
        assert_eq!(err.unwrap_err(), "the scope admin is not allowed here");
        let policy = RegistrationPolicy {
            scopes: None,
            grant_types: Some(vec![GrantType::AuthorizationCode]),
            ..dcr()
        };
        let app = json!({"scope": ADMIN_SCOPE, "redirect_uris": ["https://a.example/cb"],
                         "grant_types": ["authorization_code"]});
        let err = register(app, &policy).unwrap_err();
        assert!(err.contains(ADMIN_SCOPE), "{err}");
        let err = register(json!({"grant_types": ["client_credentials"]}), &policy).unwrap_err();
        assert!(err.contains("client_credentials is not allowed"), "{err}");
        assert!(register(json!({"scope": ADMIN_SCOPE}), &trusted()).is_ok());
    }

    #[test]
    fn a_self_registered_client_cannot_set_umbras_fields_or_choose_its_id() {
        for field in [
            json!({"introspect": true}),
            json!({"skip_consent": true}),
            json!({"require_2fa": true}),
            json!({"resources": ["https://api.example"]}),
            json!({"client_id": "mine"}),
        ] {
            let err = metadata(field.clone()).register(&dcr()).unwrap_err();
            assert!(
                matches!(err, MetadataError::InvalidClientMetadata(_)),
                "{field}: {err:?}"
            );
        }
        // Their defaults, as a client echoes what it was shown, pass.
        let echoed = json!({"introspect": false, "skip_consent": false, "resources": [],
                            "grant_types": ["client_credentials"], "unknown_member": 1});
        assert!(register(echoed, &dcr()).is_ok());
    }

    #[test]
    fn a_chosen_id_is_checked_and_a_drawn_one_never_looks_like_an_option() {
        assert_eq!(
            register(json!({"client_id": "svc-1"}), &trusted())
                .unwrap()
                .id,
            "svc-1"
        );
        let err = register(json!({"client_id": "a b"}), &trusted()).unwrap_err();
        assert!(err.contains("client_id"), "{err}");
        for _ in 0..2000 {
            let id = random_client_id().unwrap();
            assert!(id.starts_with(|c: char| c.is_ascii_alphanumeric()), "{id}");
            assert_eq!(id.len(), 22);
        }
    }

    #[test]
    fn the_name_defaults_to_the_id_and_must_be_printable() {
        let client = register(json!({"client_id": "svc"}), &trusted()).unwrap();
        assert_eq!(client.name, "svc");
        assert!(register(json!({"client_name": "  "}), &trusted()).is_err());
        assert!(register(json!({"client_name": "a\nb"}), &trusted()).is_err());
        let long = "x".repeat(MAX_NAME_LEN + 1);
        assert!(register(json!({ "client_name": long }), &trusted()).is_err());
    }

    #[test]
    fn lists_are_bounded() {
        let uris: Vec<String> = (0..=MAX_LIST_LEN)
            .map(|i| format!("https://a.example/{i}"))
            .collect();
        let err = register(json!({ "redirect_uris": uris }), &trusted()).unwrap_err();
        assert!(err.contains("more than"), "{err}");
    }

    #[test]
    fn the_default_resource_must_be_one_of_the_resources() {
        let err = register(
            json!({"default_resource": "https://api.example"}),
            &trusted(),
        );
        assert!(err.unwrap_err().contains("default_resource"));
        let ok = metadata(
            json!({"resources": ["https://api.example", "https://api.example"],
                                 "default_resource": "https://api.example"}),
        )
        .register(&trusted())
        .unwrap();
        assert_eq!(ok.resources, ["https://api.example"]);
        assert_eq!(
            ok.client.resources.default.as_deref(),
            Some("https://api.example")
        );
    }

    #[test]
    fn signing_algorithms_are_those_umbra_signs_with() {
        let client = register(
            json!({"introspection_signed_response_alg": "ES256",
                   "id_token_signed_response_alg": "EdDSA"}),
            &trusted(),
        )
        .unwrap();
        assert_eq!(
            client.introspection_signed_response_alg,
            Some(SigningAlg::Es256)
        );
        assert_eq!(client.openid.id_token_alg, Some(SigningAlg::EdDsa));
        for alg in ["HS256", "none", "rs256", ""] {
            assert!(
                register(
                    json!({"introspection_signed_response_alg": alg}),
                    &trusted()
                )
                .is_err()
            );
            assert!(register(json!({"id_token_signed_response_alg": alg}), &trusted()).is_err());
        }
    }

    #[test]
    fn post_logout_redirect_uris_follow_the_redirect_uri_rules() {
        let err = register(
            json!({"post_logout_redirect_uris": ["javascript:alert(1)"]}),
            &trusted(),
        );
        assert!(err.unwrap_err().contains("post-logout redirect URI"));
    }

    #[test]
    fn an_update_keeps_the_id_secret_and_kind_of_credential() {
        let created = metadata(json!({"client_name": "Orders", "scope": "read"}))
            .register(&trusted())
            .unwrap()
            .client;
        let existing = Client {
            version: 7,
            secret_expires_at: Some(99),
            ..created
        };
        let updated = metadata(json!({"client_id": existing.id, "scope": "read write"}))
            .apply_to(&existing, &dcr())
            .unwrap();
        assert_eq!(updated.id, existing.id);
        assert_eq!(updated.secret_hash, existing.secret_hash);
        assert_eq!((updated.version, updated.secret_expires_at), (7, Some(99)));
        assert_eq!(updated.scopes.to_string(), "read write");
        assert_eq!(
            updated.name, existing.id,
            "a PUT replaces: no name, the default"
        );

        let err = metadata(json!({"client_id": "another"}))
            .apply_to(&existing, &trusted())
            .unwrap_err();
        assert!(err.to_string().contains("does not match"), "{err}");
        let err = metadata(json!({"token_endpoint_auth_method": "none"}))
            .apply_to(&existing, &trusted())
            .unwrap_err();
        assert!(err.to_string().contains("cannot change"), "{err}");
        let post = metadata(json!({"token_endpoint_auth_method": "client_secret_post"}))
            .apply_to(&existing, &trusted());
        assert!(post.is_ok(), "basic and post are the same secret");
        let err = metadata(json!({"scope": "admin"}))
            .apply_to(&existing, &dcr())
            .unwrap_err();
        assert!(matches!(err, MetadataError::InvalidClientMetadata(_)));
    }

    #[test]
    fn what_a_response_shows_registers_the_same_client_again() {
        let registration = metadata(json!({
            "client_name": "Shop",
            "redirect_uris": ["https://shop.example/cb"],
            "scope": "read write",
            "post_logout_redirect_uris": ["https://shop.example/bye"],
            "id_token_signed_response_alg": "ES256",
        }))
        .register(&dcr())
        .unwrap();
        let shown = ClientMetadata::of(&registration.client);
        assert_eq!(shown.response_types, ["code"]);
        assert_eq!(
            shown.token_endpoint_auth_method.as_deref(),
            Some("client_secret_basic")
        );
        let json = serde_json::to_value(&shown).unwrap();
        assert!(json.get("jwks").is_none(), "{json}");
        let again = shown.apply_to(&registration.client, &dcr()).unwrap();
        assert_eq!(again, registration.client);
    }
}
