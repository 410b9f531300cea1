//! `umbra client create | list | show | delete | rotate-secret | set-keys`, and which
//! resources (RFC 8707) a client may ask tokens for: `allow-resource | deny-resource |
//! default-resource`; signed introspection answers (RFC 9701): `introspection-signing`.
use super::{output, parse_scopes, resource};
use crate::clock;
use crate::keys::{self, SigningAlg};
use crate::oauth::client::{Client, MAX_CLIENT_ID_LEN, OpenIdRegistration, is_valid_client_id};
use crate::oauth::client_auth::AuthMethod;
use crate::oauth::client_jwks::{ClientJwks, ClientKeys, MAX_JWKS_BYTES, validate_jwks_uri};
use crate::oauth::grant_type::GrantType;
use crate::oauth::redirect_uri;
use crate::oauth::resource::{AllowedResource, ResourceAccess};
use crate::oauth::token::{Token, TokenKind, random_urlsafe};
use crate::store::Store;
use anyhow::{Context, bail};
use clap::{ArgGroup, Args, Subcommand, ValueEnum};
use serde::Serialize;

#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// Register a client; prints its client_id and, for a confidential client, its secret
    /// (shown once, stored only as a hash).
    Create(CreateArgs),
    /// List registered clients.
    List,
    /// Show one client.
    Show { client_id: String },
    /// Delete a client with all its grants and tokens.
    Delete { client_id: String },
    /// Issue a new secret; the old one stops working (within changes.max_staleness_ms on
    /// running servers).
    RotateSecret { client_id: String },
    /// Replace the public keys of a private_key_jwt client; running servers use the new ones
    /// within changes.max_staleness_ms.
    #[command(
        group(ArgGroup::new("keys").required(true).args(["jwks", "jwks_uri"])),
        override_usage = "umbra client set-keys <CLIENT_ID> (--jwks <FILE_OR_JSON> | --jwks-uri <URL>)"
    )]
    SetKeys {
        client_id: String,
        #[command(flatten)]
        keys: KeyArgs,
    },
    /// Let a client ask tokens for a resource (RFC 8707), with some of the scopes it defines
    /// or, without --scope, every scope it defines, as they change. Replaces an earlier
    /// permission for the same resource.
    AllowResource {
        client_id: String,
        #[arg(value_name = "URI")]
        resource: String,
        /// A scope the client may ask at the resource (repeatable, or space-separated); one
        /// the resource defines.
        #[arg(long = "scope", value_name = "SCOPE")]
        scopes: Vec<String>,
    },
    /// Stop a client from asking tokens for a resource (and from using it as its default).
    /// Tokens already issued keep their audience until they expire or are revoked.
    DenyResource {
        client_id: String,
        #[arg(value_name = "URI")]
        resource: String,
    },
    /// Set the resource used when the client names none in a request (one it is allowed),
    /// or remove it with --none.
    #[command(
        group(ArgGroup::new("default").required(true).args(["resource", "none"])),
        override_usage = "umbra client default-resource <CLIENT_ID> (<URI> | --none)"
    )]
    DefaultResource {
        client_id: String,
        #[arg(value_name = "URI")]
        resource: Option<String>,
        /// The client has no default resource: a request that names none gets a token
        /// without audience.
        #[arg(long)]
        none: bool,
    },
    /// Sign the introspection answers a resource server asks for with `Accept:
    /// application/token-introspection+jwt` (RFC 9701) with RS256, ES256 or EdDSA, or stop
    /// with --none (it then gets JSON only).
    #[command(
        group(ArgGroup::new("signing").required(true).args(["alg", "none"])),
        override_usage = "umbra client introspection-signing <CLIENT_ID> (<ALG> | --none)"
    )]
    IntrospectionSigning {
        client_id: String,
        #[arg(value_name = "ALG")]
        alg: Option<SigningAlg>,
        /// Signed answers are off: the client gets RFC 7662 JSON only.
        #[arg(long)]
        none: bool,
    },
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    /// A human-readable name, shown on consent pages.
    name: String,
    /// The client_id to use instead of a random one.
    #[arg(long = "id")]
    id: Option<String>,
    /// A public client (no secret; e.g. a single-page or native app): --auth-method none.
    #[arg(long)]
    public: bool,
    /// How the client authenticates at /token, /introspect and /revoke: client_secret_basic
    /// (the default: a secret, which it may also send in the body), private_key_jwt (a JWT
    /// signed with its private key; give --jwks or --jwks-uri) or none (a public client).
    #[arg(long = "auth-method", value_name = "METHOD")]
    auth_method: Option<AuthMethodArg>,
    #[command(flatten)]
    keys: KeyArgs,
    /// A redirect URI (repeatable): https, http to 127.0.0.1, [::1] or localhost, or a
    /// private-use scheme such as com.example.app:/callback. Matched exactly, except that
    /// http://127.0.0.1 and http://[::1] accept any port (RFC 8252 §7.3).
    #[arg(long = "redirect-uri", value_name = "URI")]
    redirect_uris: Vec<String>,
    /// Development only: also accept plain http redirect URIs to hosts other than loopback
    /// (the code then crosses the network in clear).
    #[arg(long = "allow-insecure-redirect")]
    allow_insecure_redirect: bool,
    /// A grant type the client may use (repeatable). Default: authorization_code and
    /// refresh_token with redirect URIs, client_credentials without.
    #[arg(long = "grant-type", value_name = "GRANT")]
    grant_types: Vec<GrantType>,
    /// Scopes the client may request (repeatable, or space-separated).
    #[arg(long = "scope", value_name = "SCOPE")]
    scopes: Vec<String>,
    /// The client is a resource server that may call /introspect.
    #[arg(long)]
    introspect: bool,
    /// A first-party client: users are not asked for consent.
    #[arg(long)]
    skip_consent: bool,
    /// Users signing in for this client must use a second factor.
    #[arg(long = "require-2fa")]
    require_2fa: bool,
    /// A resource the client may ask tokens for, with every scope it defines (repeatable;
    /// see `umbra client allow-resource` to allow only some).
    #[arg(long = "resource", value_name = "URI")]
    resources: Vec<String>,
    /// The resource used when the client names none; one of its --resource.
    #[arg(long = "default-resource", value_name = "URI")]
    default_resource: Option<String>,
    /// Sign the introspection answers it asks for with `Accept:
    /// application/token-introspection+jwt` (RFC 9701) with RS256, ES256 or EdDSA. Without
    /// it, the client gets RFC 7662 JSON only.
    #[arg(long = "introspection-signed-alg", value_name = "ALG")]
    introspection_signed_alg: Option<SigningAlg>,
    /// OpenID Connect: the algorithm of its ID tokens (RS256, ES256 or EdDSA); one with an
    /// active signing key. Default: keys.default_algorithm.
    #[arg(long = "id-token-alg", value_name = "ALG")]
    id_token_alg: Option<SigningAlg>,
    /// OpenID Connect RP-initiated logout: a URI the browser may be sent back to after
    /// signing out (repeatable). The same rules as --redirect-uri.
    #[arg(long = "post-logout-redirect-uri", value_name = "URI")]
    post_logout_redirect_uris: Vec<String>,
}

/// `--auth-method` (RFC 7591 `token_endpoint_auth_method` names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
#[value(rename_all = "snake_case")]
enum AuthMethodArg {
    ClientSecretBasic,
    ClientSecretPost,
    PrivateKeyJwt,
    None,
}

/// Where a private_key_jwt client's public keys are.
#[derive(Debug, Args)]
pub struct KeyArgs {
    /// private_key_jwt: the client's public keys, a JWK Set given as JSON or as the path of a
    /// file holding it (RS256, PS256, ES256 or EdDSA keys; no private members).
    #[arg(long, value_name = "FILE_OR_JSON", conflicts_with = "jwks_uri")]
    jwks: Option<String>,
    /// private_key_jwt: the URL where the client publishes its JWK Set: https (plain http to
    /// a loopback host only); fetched and cached by the server, https only in production.
    #[arg(long = "jwks-uri", value_name = "URL")]
    jwks_uri: Option<String>,
    /// Development only: accept a plain http --jwks-uri to a host other than loopback.
    #[arg(long = "allow-insecure-jwks-uri", requires = "jwks_uri")]
    allow_insecure_jwks_uri: bool,
}

impl KeyArgs {
    /// The keys given, checked; `None` when none were.
    fn read(&self) -> anyhow::Result<Option<ClientKeys>> {
        if let Some(given) = &self.jwks {
            let json = if given.trim_start().starts_with('{') {
                given.clone().into_bytes()
            } else {
                read_bounded(given)?
            };
            let jwks = ClientJwks::parse_registered(&json)
                .map_err(|why| anyhow::anyhow!("--jwks: {why}"))?;
            return Ok(Some(ClientKeys::Inline(jwks)));
        }
        if let Some(uri) = &self.jwks_uri {
            validate_jwks_uri(uri, self.allow_insecure_jwks_uri)
                .map_err(|why| anyhow::anyhow!("--jwks-uri {uri:?} {why}"))?;
            return Ok(Some(ClientKeys::Uri(uri.clone())));
        }
        Ok(None)
    }
}

/// The file at `path`, refused beyond the size of a JWK Set.
fn read_bounded(path: &str) -> anyhow::Result<Vec<u8>> {
    use std::io::Read;
    let file = std::fs::File::open(path).with_context(|| {
        format!("--jwks: cannot open {path:?} (give a file or the JSON itself)")
    })?;
    let mut json = Vec::new();
    file.take(MAX_JWKS_BYTES as u64 + 1)
        .read_to_end(&mut json)
        .with_context(|| format!("--jwks: cannot read {path:?}"))?;
    if json.len() > MAX_JWKS_BYTES {
        bail!("--jwks: {path:?} exceeds {MAX_JWKS_BYTES} bytes");
    }
    Ok(json)
}

/// A resource a client may ask tokens for, with the scopes it may ask there now.
#[derive(Serialize)]
struct AllowedResourceView<'a> {
    identifier: &'a str,
    scopes: String,
}

impl<'a> AllowedResourceView<'a> {
    fn of(allowed: &'a AllowedResource) -> Self {
        Self {
            identifier: &allowed.identifier,
            scopes: allowed.scopes.to_string(),
        }
    }

    fn text(&self) -> String {
        format!(
            "{}  {}",
            self.identifier,
            output::scopes_or_none(&self.scopes)
        )
    }
}

/// A client as the CLI shows it: everything but the secret hash.
#[derive(Serialize)]
struct ClientView<'a> {
    client_id: &'a str,
    name: &'a str,
    public: bool,
    /// `client_secret_basic`, `private_key_jwt` or `none`.
    token_endpoint_auth_method: &'static str,
    /// The registered keys of a private_key_jwt client.
    #[serde(skip_serializing_if = "Option::is_none")]
    jwks: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    jwks_uri: Option<&'a str>,
    redirect_uris: &'a [String],
    grant_types: Vec<&'static str>,
    scopes: String,
    introspect: bool,
    skip_consent: bool,
    require_2fa: bool,
    /// The resources it may ask tokens for.
    resources: Vec<AllowedResourceView<'a>>,
    default_resource: Option<&'a str>,
    /// The resources whose tokens it may introspect.
    introspects_for: &'a [String],
    /// The algorithm of its signed introspection answers (RFC 9701); `null`: JSON only.
    introspection_signed_response_alg: Option<&'static str>,
    /// The algorithm of its ID tokens; `None`: the server's default.
    id_token_alg: Option<&'static str>,
    post_logout_redirect_uris: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    client_secret: Option<&'a str>,
}

impl<'a> ClientView<'a> {
    fn of(client: &'a Client, secret: Option<&'a Token>) -> Self {
        Self {
            client_id: &client.id,
            name: &client.name,
            public: client.is_public(),
            token_endpoint_auth_method: client.auth_method().as_str(),
            jwks: match &client.assertion_keys {
                Some(ClientKeys::Inline(jwks)) => Some(jwks.to_json()),
                _ => None,
            },
            jwks_uri: match &client.assertion_keys {
                Some(ClientKeys::Uri(uri)) => Some(uri),
                _ => None,
            },
            redirect_uris: &client.redirect_uris,
            grant_types: client.grant_types.iter().map(|g| g.as_str()).collect(),
            scopes: client.scopes.to_string(),
            introspect: client.can_introspect,
            skip_consent: client.skip_consent,
            require_2fa: client.require_2fa,
            resources: client
                .resources
                .allowed
                .iter()
                .map(AllowedResourceView::of)
                .collect(),
            default_resource: client.resources.default.as_deref(),
            introspects_for: &client.resources.introspects_for,
            introspection_signed_response_alg: client
                .introspection_signed_response_alg
                .map(SigningAlg::as_str),
            id_token_alg: client.openid.id_token_alg.map(SigningAlg::as_str),
            post_logout_redirect_uris: &client.openid.post_logout_redirect_uris,
            client_secret: secret.map(Token::expose),
        }
    }

    /// The resources for a one-line listing: each with its scopes, the default marked.
    fn resources_in_a_line(&self) -> String {
        if self.resources.is_empty() {
            return "-".to_owned();
        }
        self.resources
            .iter()
            .map(|r| {
                let default = if self.default_resource == Some(r.identifier) {
                    " [default]"
                } else {
                    ""
                };
                format!(
                    "{} ({}){default}",
                    r.identifier,
                    output::scopes_or_none(&r.scopes)
                )
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn text(&self) -> String {
        let mut rows = vec![
            ("client_id", self.client_id.to_owned()),
            ("name", self.name.to_owned()),
            (
                "type",
                if self.public {
                    "public"
                } else {
                    "confidential"
                }
                .to_owned(),
            ),
            ("auth_method", self.token_endpoint_auth_method.to_owned()),
            ("redirect_uris", self.redirect_uris.join(" ")),
            ("grant_types", self.grant_types.join(" ")),
            ("scopes", self.scopes.clone()),
            ("introspect", self.introspect.to_string()),
            ("skip_consent", self.skip_consent.to_string()),
            ("require_2fa", self.require_2fa.to_string()),
            (
                "resources",
                self.resources
                    .iter()
                    .map(AllowedResourceView::text)
                    .collect::<Vec<_>>()
                    .join("\n"),
            ),
            (
                "default_resource",
                self.default_resource.unwrap_or_default().to_owned(),
            ),
            ("introspects_for", self.introspects_for.join(" ")),
            (
                "introspection_signed_response_alg",
                self.introspection_signed_response_alg
                    .unwrap_or_default()
                    .to_owned(),
            ),
            (
                "id_token_alg",
                self.id_token_alg.unwrap_or("(default)").to_owned(),
            ),
            (
                "post_logout_redirect_uris",
                self.post_logout_redirect_uris.join(" "),
            ),
        ];
        if let Some(jwks) = &self.jwks {
            rows.push(("jwks", describe_jwks(jwks)));
        }
        if let Some(uri) = self.jwks_uri {
            rows.push(("jwks_uri", uri.to_owned()));
        }
        if let Some(secret) = self.client_secret {
            rows.push((
                "client_secret",
                format!("{secret}  (shown once: store it now)"),
            ));
        }
        output::fields(&rows)
    }
}

/// `2 keys: kid-a (RS256), kid-b (ES256)`: what identifies each key, not its material.
fn describe_jwks(jwks: &serde_json::Value) -> String {
    let keys = jwks["keys"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    let named: Vec<String> = keys
        .iter()
        .map(|key| {
            let kid = key["kid"].as_str().unwrap_or("(no kid)");
            match key["alg"].as_str() {
                Some(alg) => format!("{kid} ({alg})"),
                None => format!("{kid} ({})", key["kty"].as_str().unwrap_or("?")),
            }
        })
        .collect();
    format!("{} key(s): {}", keys.len(), named.join(", "))
}

impl ClientCommand {
    pub async fn run(self, store: &Store, json: bool) -> anyhow::Result<()> {
        match self {
            Self::Create(args) => {
                let resources = args.resources.clone();
                let (new, secret) = args.into_client()?;
                // Before anything is written, so that a typo registers nothing.
                for identifier in &resources {
                    resource::find(store, identifier).await?;
                }
                if let Some(alg) = new.openid.id_token_alg {
                    require_signing_key(store, alg).await?;
                }
                let client = store
                    .create_client_with_resources(new, &resources, clock::now())
                    .await?;
                if let Some(alg) = client.introspection_signed_response_alg {
                    warn_without_key(store, alg).await?;
                }
                let view = ClientView::of(&client, secret.as_ref());
                output::print(json, &view, &view.text());
            }
            Self::List => {
                let clients = store.list_clients().await?;
                let views: Vec<ClientView> =
                    clients.iter().map(|c| ClientView::of(c, None)).collect();
                let text = if views.is_empty() {
                    "no clients".to_owned()
                } else {
                    views
                        .iter()
                        .map(|v| {
                            format!(
                                "{}\t{}\t{}\t{}\t{}",
                                v.client_id,
                                if v.public { "public" } else { "confidential" },
                                v.grant_types.join(","),
                                v.resources_in_a_line(),
                                v.name
                            )
                        })
                        .collect::<Vec<_>>()
                        .join("\n")
                };
                output::print(json, &views, &text);
            }
            Self::Show { client_id } => {
                let client = find(store, &client_id).await?;
                let view = ClientView::of(&client, None);
                output::print(json, &view, &view.text());
            }
            Self::Delete { client_id } => {
                if !store.delete_client(&client_id).await? {
                    bail!("{}", unknown(&client_id));
                }
                output::print(
                    json,
                    &serde_json::json!({"deleted": client_id}),
                    &format!("deleted client {client_id} and all its tokens"),
                );
            }
            Self::RotateSecret { client_id } => {
                let client = find(store, &client_id).await?;
                match client.auth_method() {
                    AuthMethod::None => bail!("client {client_id:?} is public and has no secret"),
                    AuthMethod::PrivateKeyJwt => bail!(
                        "client {client_id:?} authenticates with private_key_jwt and has no \
                         secret; replace its keys with `umbra client set-keys`"
                    ),
                    _ => {}
                }
                let secret = Token::generate(TokenKind::ClientSecret)?;
                if !store
                    .set_client_secret(&client_id, secret.hash(), clock::now())
                    .await?
                {
                    bail!("{}", unknown(&client_id));
                }
                output::print(
                    json,
                    &serde_json::json!({"client_id": client_id, "client_secret": secret.expose()}),
                    &output::fields(&[
                        ("client_id", client_id.clone()),
                        (
                            "client_secret",
                            format!("{}  (shown once: store it now)", secret.expose()),
                        ),
                    ]),
                );
            }
            Self::SetKeys { client_id, keys } => set_keys(store, &client_id, &keys, json).await?,
            Self::AllowResource {
                client_id,
                resource,
                scopes,
            } => allow_resource(store, &client_id, &resource, &scopes, json).await?,
            Self::DenyResource {
                client_id,
                resource,
            } => deny_resource(store, &client_id, &resource, json).await?,
            Self::DefaultResource {
                client_id,
                resource,
                none: _,
            } => default_resource(store, &client_id, resource.as_deref(), json).await?,
            Self::IntrospectionSigning {
                client_id,
                alg,
                none: _,
            } => introspection_signing(store, &client_id, alg, json).await?,
        }
        Ok(())
    }
}

/// Refuses an ID token algorithm that no active key signs: every ID token of the client
/// would fail.
async fn require_signing_key(store: &Store, alg: SigningAlg) -> anyhow::Result<()> {
    let keys = crate::keys::list(store, clock::now()).await?;
    if !keys
        .iter()
        .any(|k| k.alg == alg.as_str() && k.state == "active")
    {
        bail!("no active {alg} signing key: create one first with `umbra keys rotate --alg {alg}`");
    }
    Ok(())
}

/// The client with id `client_id`, or the error that says there is none.
pub(super) async fn find(store: &Store, client_id: &str) -> anyhow::Result<Client> {
    store
        .find_client(client_id)
        .await?
        .with_context(|| unknown(client_id))
}

fn unknown(client_id: &str) -> String {
    format!("no client with id {client_id:?}")
}

async fn set_keys(
    store: &Store,
    client_id: &str,
    keys: &KeyArgs,
    json: bool,
) -> anyhow::Result<()> {
    let Some(keys) = keys.read()? else {
        bail!("give --jwks or --jwks-uri");
    };
    let client = find(store, client_id).await?;
    if client.auth_method() != AuthMethod::PrivateKeyJwt {
        bail!(
            "client {client_id:?} authenticates with {}, not private_key_jwt: its keys cannot \
             be set",
            client.auth_method().as_str()
        );
    }
    if !store
        .set_client_keys(client_id, &keys, clock::now())
        .await?
    {
        bail!("{}", unknown(client_id));
    }
    let client = find(store, client_id).await?;
    let view = ClientView::of(&client, None);
    output::print(json, &view, &view.text());
    Ok(())
}

async fn allow_resource(
    store: &Store,
    client_id: &str,
    identifier: &str,
    scopes: &[String],
    json: bool,
) -> anyhow::Result<()> {
    let client = find(store, client_id).await?;
    let resource = resource::find(store, identifier).await?;
    let chosen = if scopes.is_empty() {
        None
    } else {
        let chosen = parse_scopes(scopes)?;
        if let Some(undefined) = chosen.iter().find(|s| !resource.scopes.contains(s)) {
            bail!(
                "resource {identifier} does not define the scope {undefined:?} (it defines: {})",
                output::scopes_or_none(&resource.scopes.to_string())
            );
        }
        Some(chosen)
    };
    store
        .allow_client_resource(&client.id, &resource.identifier, chosen.as_ref())
        .await?;
    let every_scope = chosen.is_none();
    let scopes = chosen.unwrap_or(resource.scopes).to_string();
    let text = if every_scope {
        format!(
            "client {client_id} may ask tokens for {identifier} with every scope it defines, \
             as they change (now: {scopes})"
        )
    } else {
        format!("client {client_id} may ask tokens for {identifier} with the scopes: {scopes}")
    };
    output::print(
        json,
        &serde_json::json!({
            "client_id": client.id,
            "resource": identifier,
            "scopes": scopes,
            "every_scope": every_scope,
        }),
        &text,
    );
    Ok(())
}

async fn deny_resource(
    store: &Store,
    client_id: &str,
    identifier: &str,
    json: bool,
) -> anyhow::Result<()> {
    let client = find(store, client_id).await?;
    resource::find(store, identifier).await?;
    if !store
        .disallow_client_resource(&client.id, identifier)
        .await?
    {
        bail!("client {client_id:?} is not allowed the resource {identifier}");
    }
    let was_default = client.resources.default.as_deref() == Some(identifier);
    let mut text = format!(
        "client {client_id} may no longer ask tokens for {identifier}; tokens already issued \
         keep it in their audience until they expire or are revoked"
    );
    if was_default {
        text.push_str("; it was the default resource, and the client now has none");
    }
    output::print(
        json,
        &serde_json::json!({
            "client_id": client.id,
            "denied": identifier,
            "default_removed": was_default,
        }),
        &text,
    );
    Ok(())
}

async fn default_resource(
    store: &Store,
    client_id: &str,
    identifier: Option<&str>,
    json: bool,
) -> anyhow::Result<()> {
    let client = find(store, client_id).await?;
    if let Some(identifier) = identifier
        && !is_allowed(&client.resources, identifier)
    {
        resource::find(store, identifier).await?;
        bail!(
            "client {client_id:?} is not allowed the resource {identifier}: allow it first \
             with `umbra client allow-resource {client_id} {identifier}`"
        );
    }
    if !store
        .set_default_resource(&client.id, identifier, clock::now())
        .await?
    {
        bail!("{}", unknown(client_id));
    }
    let text = match identifier {
        Some(identifier) => format!("default resource of client {client_id}: {identifier}"),
        None => format!(
            "client {client_id} has no default resource: a request that names none gets a \
             token without audience"
        ),
    };
    output::print(
        json,
        &serde_json::json!({"client_id": client.id, "default_resource": identifier}),
        &text,
    );
    Ok(())
}

async fn introspection_signing(
    store: &Store,
    client_id: &str,
    alg: Option<SigningAlg>,
    json: bool,
) -> anyhow::Result<()> {
    let client = find(store, client_id).await?;
    if client.is_public() && alg.is_some() {
        bail!("{}", PUBLIC_CANNOT_INTROSPECT);
    }
    if !store
        .set_introspection_signed_response_alg(&client.id, alg, clock::now())
        .await?
    {
        bail!("{}", unknown(client_id));
    }
    if let Some(alg) = alg {
        warn_without_key(store, alg).await?;
    }
    let text = match alg {
        Some(alg) => format!(
            "client {client_id} gets its introspection answers signed with {alg} when it asks \
             for them (Accept: application/token-introspection+jwt, RFC 9701)"
        ),
        None => format!("client {client_id} gets RFC 7662 JSON introspection answers only"),
    };
    output::print(
        json,
        &serde_json::json!({
            "client_id": client.id,
            "introspection_signed_response_alg": alg.map(SigningAlg::as_str),
        }),
        &text,
    );
    Ok(())
}

/// Says on stderr when no key of `alg` signs yet: signed answers would fail until one does.
/// Not an error: the server makes a key of keys.default_algorithm at its first start, and a
/// pre-published key starts signing by itself.
async fn warn_without_key(store: &Store, alg: SigningAlg) -> anyhow::Result<()> {
    let keys = keys::list(store, clock::now()).await?;
    if !keys
        .iter()
        .any(|k| k.alg == alg.as_str() && k.state == "active")
    {
        eprintln!(
            "umbra: warning: no {alg} signing key is active yet: signed introspection answers \
             fail until one is (`umbra keys rotate --alg {alg} --now` makes one at once)"
        );
    }
    Ok(())
}

fn is_allowed(access: &ResourceAccess, identifier: &str) -> bool {
    access.allowed.iter().any(|r| r.identifier == identifier)
}

impl CreateArgs {
    /// Checks the registration and draws the id and secret.
    fn into_client(self) -> anyhow::Result<(Client, Option<Token>)> {
        let name = self.name.trim().to_owned();
        if name.is_empty() {
            bail!("the client name must not be empty");
        }
        let id = match self.id {
            Some(id) => {
                validate_client_id(&id)?;
                id
            }
            None => random_client_id()?,
        };
        for uri in &self.redirect_uris {
            redirect_uri::validate(uri, self.allow_insecure_redirect)
                .map_err(|why| anyhow::anyhow!("redirect URI {uri:?} {why}"))?;
        }
        for uri in &self.post_logout_redirect_uris {
            redirect_uri::validate(uri, self.allow_insecure_redirect)
                .map_err(|why| anyhow::anyhow!("post-logout redirect URI {uri:?} {why}"))?;
        }
        let method = match (self.auth_method, self.public) {
            (Some(AuthMethodArg::None), _) | (None, true) => AuthMethodArg::None,
            (Some(_), true) => bail!("--public is --auth-method none"),
            (Some(method), false) => method,
            (None, false) => AuthMethodArg::ClientSecretBasic,
        };
        let public = method == AuthMethodArg::None;
        let assertion_keys = self.keys.read()?;
        match (method, &assertion_keys) {
            (AuthMethodArg::PrivateKeyJwt, None) => {
                bail!("--auth-method private_key_jwt needs --jwks or --jwks-uri")
            }
            (AuthMethodArg::PrivateKeyJwt, Some(_)) | (_, None) => {}
            (_, Some(_)) => bail!("--jwks and --jwks-uri need --auth-method private_key_jwt"),
        }
        let mut grant_types = self.grant_types;
        if grant_types.is_empty() {
            grant_types = if self.redirect_uris.is_empty() {
                vec![GrantType::ClientCredentials]
            } else {
                vec![GrantType::AuthorizationCode, GrantType::RefreshToken]
            };
        }
        grant_types.dedup();
        if public && grant_types.contains(&GrantType::ClientCredentials) {
            bail!("a public client cannot use client_credentials (RFC 6749 §4.4)");
        }
        if public && (self.introspect || self.introspection_signed_alg.is_some()) {
            bail!("{}", PUBLIC_CANNOT_INTROSPECT);
        }
        if grant_types.contains(&GrantType::AuthorizationCode) && self.redirect_uris.is_empty() {
            bail!("authorization_code needs at least one --redirect-uri");
        }
        let scopes = parse_scopes(&self.scopes)?;
        if let Some(default) = &self.default_resource
            && !self.resources.contains(default)
        {
            bail!("the --default-resource {default} must also be given as --resource");
        }
        let secret = match method {
            AuthMethodArg::ClientSecretBasic | AuthMethodArg::ClientSecretPost => {
                Some(Token::generate(TokenKind::ClientSecret)?)
            }
            AuthMethodArg::PrivateKeyJwt | AuthMethodArg::None => None,
        };
        let new = Client {
            id,
            name,
            secret_hash: secret.as_ref().map(Token::hash),
            redirect_uris: self.redirect_uris,
            grant_types,
            scopes,
            can_introspect: self.introspect,
            skip_consent: self.skip_consent,
            require_2fa: self.require_2fa,
            assertion_keys,
            resources: ResourceAccess {
                default: self.default_resource,
                ..ResourceAccess::default()
            },
            introspection_signed_response_alg: self.introspection_signed_alg,
            openid: OpenIdRegistration {
                id_token_alg: self.id_token_alg,
                post_logout_redirect_uris: self.post_logout_redirect_uris,
            },
        };
        Ok((new, secret))
    }
}

const PUBLIC_CANNOT_INTROSPECT: &str =
    "a public client cannot introspect: it has no secret to authenticate with";

/// 128 random bits in base64url that never start with `-` or `_`: an id such as `-LS6Rv…`
/// would be read as an option by `umbra client show` and by other command lines.
fn random_client_id() -> Result<String, rand::rngs::SysError> {
    loop {
        let id = random_urlsafe(16)?;
        if id.starts_with(|c: char| c.is_ascii_alphanumeric()) {
            return Ok(id);
        }
    }
}

fn validate_client_id(id: &str) -> anyhow::Result<()> {
    if !is_valid_client_id(id) {
        bail!("a client id is 1 to {MAX_CLIENT_ID_LEN} characters of A-Z a-z 0-9 - . _ ~");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Umbra {
        #[command(subcommand)]
        client: ClientCommand,
    }

    fn create(args: &[&str]) -> anyhow::Result<Client> {
        let argv = ["umbra", "create", "App"].iter().chain(args);
        match Umbra::try_parse_from(argv)?.client {
            ClientCommand::Create(args) => args.into_client().map(|(client, _)| client),
            _ => unreachable!("parsed a create command"),
        }
    }

    #[test]
    fn https_loopback_and_private_use_redirect_uris_are_registered_as_given() {
        let client = create(&[
            "--public",
            "--redirect-uri",
            "https://app.example/cb",
            "--redirect-uri",
            "http://127.0.0.1/cb",
            "--redirect-uri",
            "com.example.app:/cb",
        ])
        .unwrap();
        assert_eq!(
            client.redirect_uris,
            [
                "https://app.example/cb",
                "http://127.0.0.1/cb",
                "com.example.app:/cb"
            ]
        );
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
            let err = create(&["--redirect-uri", uri]).unwrap_err().to_string();
            assert!(err.contains("redirect URI"), "{uri}: {err}");
        }
    }

    #[test]
    fn the_development_flag_allows_plain_http_and_nothing_else() {
        let dev = ["--allow-insecure-redirect", "--redirect-uri"];
        let client = create(&[dev[0], dev[1], "http://app.test:8080/cb"]).unwrap();
        assert_eq!(client.redirect_uris, ["http://app.test:8080/cb"]);
        assert!(create(&[dev[0], dev[1], "javascript:alert(1)"]).is_err());
        assert!(create(&[dev[0], dev[1], "http://app.test/cb#x"]).is_err());
    }

    fn jwks(private: bool) -> String {
        let generated = crate::keys::material::generate(crate::keys::SigningAlg::Es256).unwrap();
        let mut key = serde_json::to_value(generated.public_jwk).unwrap();
        if private {
            key["d"] = "c2VjcmV0".into();
        }
        serde_json::json!({ "keys": [key] }).to_string()
    }

    #[test]
    fn a_private_key_jwt_client_registers_keys_and_gets_no_secret() {
        let set = jwks(false);
        let inline = create(&["--auth-method", "private_key_jwt", "--jwks", &set]).unwrap();
        assert_eq!(inline.auth_method(), AuthMethod::PrivateKeyJwt);
        assert!(inline.secret_hash.is_none() && !inline.is_public());
        assert!(matches!(inline.assertion_keys, Some(ClientKeys::Inline(_))));

        let file = std::env::temp_dir().join(format!("jwks-{}.json", uuid::Uuid::new_v4()));
        std::fs::write(&file, &set).unwrap();
        let from_file = create(&[
            "--auth-method",
            "private_key_jwt",
            "--jwks",
            file.to_str().unwrap(),
        ]);
        std::fs::remove_file(&file).unwrap();
        assert_eq!(from_file.unwrap().assertion_keys, inline.assertion_keys);

        let remote = create(&[
            "--auth-method",
            "private_key_jwt",
            "--jwks-uri",
            "https://svc.example/jwks.json",
        ])
        .unwrap();
        assert_eq!(
            remote.assertion_keys,
            Some(ClientKeys::Uri("https://svc.example/jwks.json".into()))
        );
    }

    #[test]
    fn keys_that_are_private_missing_or_misplaced_are_refused() {
        let method = ["--auth-method", "private_key_jwt"];
        let private = jwks(true);
        let err = create(&[method[0], method[1], "--jwks", &private]).unwrap_err();
        assert!(err.to_string().contains("private key material"), "{err}");
        let err = create(&method).unwrap_err();
        assert!(
            err.to_string().contains("needs --jwks or --jwks-uri"),
            "{err}"
        );
        let public = jwks(false);
        let err = create(&["--jwks", &public]).unwrap_err();
        assert!(err.to_string().contains("need --auth-method"), "{err}");
        assert!(create(&["--public", method[0], method[1], "--jwks", &public]).is_err());
        let err =
            create(&[method[0], method[1], "--jwks-uri", "http://svc.example/k"]).unwrap_err();
        assert!(err.to_string().contains("https"), "{err}");
        assert!(
            create(&[method[0], method[1], "--jwks", "/no/such/file.json"]).is_err(),
            "an unreadable file"
        );
        assert!(
            create(&[
                method[0],
                method[1],
                "--jwks",
                &public,
                "--jwks-uri",
                "https://a.example/k"
            ])
            .is_err()
        );
    }

    #[test]
    fn auth_method_none_is_public_and_secret_methods_get_a_secret() {
        let public = create(&[
            "--auth-method",
            "none",
            "--redirect-uri",
            "https://a.example/cb",
        ]);
        assert!(public.unwrap().is_public());
        let post = create(&["--auth-method", "client_secret_post"]).unwrap();
        assert_eq!(post.auth_method(), AuthMethod::ClientSecretBasic);
        assert!(post.secret_hash.is_some());
    }

    #[test]
    fn set_keys_needs_exactly_one_source() {
        assert!(Umbra::try_parse_from(["umbra", "set-keys", "svc"]).is_err());
        let set = jwks(false);
        assert!(Umbra::try_parse_from(["umbra", "set-keys", "svc", "--jwks", &set]).is_ok());
    }

    #[test]
    fn signed_introspection_answers_take_an_algorithm_umbra_signs_with() {
        let client = create(&["--introspection-signed-alg", "ES256"]).unwrap();
        assert_eq!(
            client.introspection_signed_response_alg,
            Some(SigningAlg::Es256)
        );
        assert_eq!(create(&[]).unwrap().introspection_signed_response_alg, None);
        for alg in ["HS256", "none", "rs256", ""] {
            assert!(
                create(&["--introspection-signed-alg", alg]).is_err(),
                "{alg}"
            );
        }
        let err = create(&[
            "--public",
            "--redirect-uri",
            "https://app.example/cb",
            "--introspection-signed-alg",
            "RS256",
        ])
        .unwrap_err();
        assert!(err.to_string().contains("cannot introspect"), "{err}");
    }

    #[test]
    fn openid_registration_takes_an_algorithm_and_checked_logout_uris() {
        let client = create(&[
            "--redirect-uri",
            "https://app.example/cb",
            "--id-token-alg",
            "ES256",
            "--post-logout-redirect-uri",
            "https://app.example/bye",
        ])
        .unwrap();
        assert_eq!(client.openid.id_token_alg, Some(SigningAlg::Es256));
        assert_eq!(
            client.openid.post_logout_redirect_uris,
            ["https://app.example/bye"]
        );
        assert!(create(&["--id-token-alg", "HS256"]).is_err());
        let err = create(&["--post-logout-redirect-uri", "javascript:alert(1)"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("post-logout redirect URI"), "{err}");
    }

    #[test]
    fn generated_client_ids_never_look_like_options() {
        for _ in 0..2000 {
            let id = random_client_id().unwrap();
            assert!(id.starts_with(|c: char| c.is_ascii_alphanumeric()), "{id}");
            assert_eq!(id.len(), 22);
        }
    }
}
