//! `umbra client create | list | show | delete | rotate-secret | set-keys`, and which
//! resources (RFC 8707) a client may ask tokens for: `allow-resource | deny-resource |
//! default-resource`; signed introspection answers (RFC 9701): `introspection-signing`;
//! initial access tokens for dynamic registration: `registration-token`.
use super::registration_token::RegistrationTokenCommand;
use super::{output, parse_scopes, resource};
use crate::clock;
use crate::keys::{self, SigningAlg};
use crate::manage;
use crate::oauth::client::Client;
use crate::oauth::client_auth::AuthMethod;
use crate::oauth::client_jwks::{ClientJwks, ClientKeys, MAX_JWKS_BYTES, validate_jwks_uri};
use crate::oauth::grant_type::GrantType;
use crate::oauth::registration::{ClientMetadata, Registration, RegistrationPolicy};
use crate::oauth::resource::{AllowedResource, ResourceAccess};
use crate::oauth::token::Token;
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
    /// Initial access tokens: an operator's permission for software to register clients
    /// itself at POST /register (RFC 7591).
    #[command(subcommand)]
    RegistrationToken(RegistrationTokenCommand),
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
        if let Some(jwks) = self.read_jwks()? {
            let json = serde_json::to_vec(&jwks)?;
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

    /// The JSON of `--jwks`, given inline or as a file, not yet checked as a JWK Set.
    fn read_jwks(&self) -> anyhow::Result<Option<serde_json::Value>> {
        let Some(given) = &self.jwks else {
            return Ok(None);
        };
        let json = if given.trim_start().starts_with('{') {
            given.clone().into_bytes()
        } else {
            read_bounded(given)?
        };
        if json.len() > MAX_JWKS_BYTES {
            bail!("--jwks: the JWK Set exceeds {MAX_JWKS_BYTES} bytes");
        }
        let value = serde_json::from_slice(&json)
            .map_err(|_| anyhow::anyhow!("--jwks: not a JSON document"))?;
        Ok(Some(value))
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
                let Registration {
                    client: new,
                    secret,
                    resources,
                } = args.into_registration()?;
                // Before anything is written, so that a typo registers nothing.
                manage::client_prerequisites(
                    store,
                    &resources,
                    new.openid.id_token_alg,
                    clock::now(),
                )
                .await?;
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
                let (_, secret) =
                    manage::rotate_client_secret(store, &client_id, clock::now()).await?;
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
            Self::RegistrationToken(command) => command.run(store, json).await?,
        }
        Ok(())
    }
}

/// Refuses an ID token algorithm that no active key signs: every ID token of the client
/// would fail.
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
    /// The flags as client metadata, checked by the rules every registration keeps.
    fn into_registration(self) -> anyhow::Result<Registration> {
        let method = match (self.auth_method, self.public) {
            (Some(AuthMethodArg::None), _) | (None, true) => Some(AuthMethod::None),
            (Some(_), true) => bail!("--public is --auth-method none"),
            (Some(method), false) => Some(method.into()),
            (None, false) => None,
        };
        let jwks = self.keys.read_jwks()?;
        let policy = RegistrationPolicy::trusted(
            self.allow_insecure_redirect,
            self.keys.allow_insecure_jwks_uri,
        );
        let metadata = ClientMetadata {
            client_id: self.id,
            client_name: Some(self.name),
            redirect_uris: self.redirect_uris,
            grant_types: self
                .grant_types
                .iter()
                .map(|g| g.as_str().to_owned())
                .collect(),
            scope: Some(parse_scopes(&self.scopes)?.to_string()),
            token_endpoint_auth_method: method.map(|m| m.as_str().to_owned()),
            jwks,
            jwks_uri: self.keys.jwks_uri,
            post_logout_redirect_uris: self.post_logout_redirect_uris,
            id_token_signed_response_alg: self.id_token_alg.map(|a| a.as_str().to_owned()),
            introspection_signed_response_alg: self
                .introspection_signed_alg
                .map(|a| a.as_str().to_owned()),
            introspect: self.introspect,
            skip_consent: self.skip_consent,
            require_2fa: self.require_2fa,
            resources: self.resources,
            default_resource: self.default_resource,
            ..ClientMetadata::default()
        };
        metadata
            .register(&policy)
            .map_err(|why| anyhow::anyhow!("{}", in_flag_names(&why.to_string())))
    }
}

/// A registration message in the words of the command line: each metadata field that has a
/// flag named by the flag. What is quoted (the values given, as `{:?}` prints them) is left
/// as it is.
fn in_flag_names(message: &str) -> String {
    const FLAGS: [(&str, &str); 8] = [
        ("token_endpoint_auth_method", "--auth-method"),
        ("jwks_uri", "--jwks-uri"),
        ("jwks", "--jwks"),
        ("redirect_uris", "--redirect-uri"),
        ("post_logout_redirect_uris", "--post-logout-redirect-uri"),
        ("default_resource", "--default-resource"),
        (
            "introspection_signed_response_alg",
            "--introspection-signed-alg",
        ),
        ("id_token_signed_response_alg", "--id-token-alg"),
    ];
    let mut out = String::with_capacity(message.len());
    let (mut word, mut quoted, mut escaped) = (String::new(), false, false);
    let flush = |word: &mut String, out: &mut String| {
        let flag = FLAGS.iter().find(|(field, _)| field == word);
        out.push_str(flag.map_or(word.as_str(), |(_, flag)| flag));
        word.clear();
    };
    for c in message.chars() {
        if !quoted && (c.is_ascii_alphanumeric() || c == '_') {
            word.push(c);
            continue;
        }
        flush(&mut word, &mut out);
        out.push(c);
        match (quoted, escaped, c) {
            (true, false, '\\') => escaped = true,
            (true, true, _) => escaped = false,
            (_, _, '"') => quoted = !quoted,
            _ => {}
        }
    }
    flush(&mut word, &mut out);
    out
}

impl From<AuthMethodArg> for AuthMethod {
    fn from(arg: AuthMethodArg) -> Self {
        match arg {
            AuthMethodArg::ClientSecretBasic => Self::ClientSecretBasic,
            AuthMethodArg::ClientSecretPost => Self::ClientSecretPost,
            AuthMethodArg::PrivateKeyJwt => Self::PrivateKeyJwt,
            AuthMethodArg::None => Self::None,
        }
    }
}

const PUBLIC_CANNOT_INTROSPECT: &str =
    "a public client cannot introspect: it has no secret to authenticate with";

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Umbra {
        #[command(subcommand)]
        client: ClientCommand,
    }

    // The rules themselves are tested in `oauth::registration`; these test the flags.
    fn create(args: &[&str]) -> anyhow::Result<Client> {
        let argv = ["umbra", "create", "App"].iter().chain(args);
        match Umbra::try_parse_from(argv)?.client {
            ClientCommand::Create(args) => args.into_registration().map(|r| r.client),
            _ => unreachable!("parsed a create command"),
        }
    }

    #[test]
    fn flags_become_the_client_registered() {
        let client = create(&[
            "--id",
            "shop",
            "--redirect-uri",
            "https://app.example/cb",
            "--scope",
            "read write",
            "--scope",
            "admin",
            "--skip-consent",
            "--require-2fa",
            "--post-logout-redirect-uri",
            "https://app.example/bye",
            "--id-token-alg",
            "ES256",
        ])
        .unwrap();
        assert_eq!((client.id.as_str(), client.name.as_str()), ("shop", "App"));
        assert_eq!(client.redirect_uris, ["https://app.example/cb"]);
        assert_eq!(client.scopes.to_string(), "read write admin");
        assert!(client.skip_consent && client.require_2fa && client.secret_hash.is_some());
        assert_eq!(client.openid.id_token_alg, Some(SigningAlg::Es256));
        assert_eq!(
            client.grant_types,
            [GrantType::AuthorizationCode, GrantType::RefreshToken]
        );
    }

    #[test]
    fn dangerous_and_insecure_redirect_uris_are_refused() {
        for uri in ["javascript:alert(1)", "http://app.example/cb"] {
            let err = create(&["--redirect-uri", uri]).unwrap_err().to_string();
            assert!(err.contains("redirect URI"), "{uri}: {err}");
        }
        let dev = create(&[
            "--allow-insecure-redirect",
            "--redirect-uri",
            "http://app.test:8080/cb",
        ]);
        assert_eq!(dev.unwrap().redirect_uris, ["http://app.test:8080/cb"]);
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
    fn keys_are_read_inline_or_from_a_file() {
        let set = jwks(false);
        let inline = create(&["--auth-method", "private_key_jwt", "--jwks", &set]).unwrap();
        assert_eq!(inline.auth_method(), AuthMethod::PrivateKeyJwt);
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

        let method = ["--auth-method", "private_key_jwt"];
        let err = create(&[method[0], method[1], "--jwks", &jwks(true)]).unwrap_err();
        assert!(err.to_string().contains("private key material"), "{err}");
        assert!(
            create(&[method[0], method[1], "--jwks", "/no/such/file.json"]).is_err(),
            "an unreadable file"
        );
        assert!(create(&[method[0], method[1], "--jwks", "{not json"]).is_err());
        let remote = create(&[
            method[0],
            method[1],
            "--jwks-uri",
            "http://svc.test/jwks",
            "--allow-insecure-jwks-uri",
        ]);
        assert!(remote.is_ok(), "{remote:?}");
        assert!(
            create(&[
                method[0],
                method[1],
                "--jwks",
                &set,
                "--jwks-uri",
                "https://a.example/k"
            ])
            .is_err()
        );
    }

    #[test]
    fn public_is_auth_method_none() {
        let public = create(&["--public", "--redirect-uri", "https://a.example/cb"]);
        assert!(public.unwrap().is_public());
        let err = create(&["--public", "--auth-method", "client_secret_post"]).unwrap_err();
        assert!(
            err.to_string().contains("--public is --auth-method none"),
            "{err}"
        );
    }

    #[test]
    fn messages_name_the_flags_not_the_metadata_fields() {
        assert_eq!(
            in_flag_names("private_key_jwt needs jwks or jwks_uri"),
            "private_key_jwt needs --jwks or --jwks-uri"
        );
        let quoted = "redirect URI \"https://a/jwks\" must not contain a fragment (#)";
        assert_eq!(in_flag_names(quoted), quoted);
        let err = create(&["--grant-type", "authorization_code"]).unwrap_err();
        assert!(err.to_string().contains("--redirect-uri"), "{err}");
    }

    #[test]
    fn set_keys_needs_exactly_one_source() {
        assert!(Umbra::try_parse_from(["umbra", "set-keys", "svc"]).is_err());
        let set = jwks(false);
        assert!(Umbra::try_parse_from(["umbra", "set-keys", "svc", "--jwks", &set]).is_ok());
    }

    #[test]
    fn signing_algorithms_are_parsed_by_the_flags() {
        let client = create(&["--introspection-signed-alg", "ES256"]).unwrap();
        assert_eq!(
            client.introspection_signed_response_alg,
            Some(SigningAlg::Es256)
        );
        for alg in ["HS256", "none", "rs256", ""] {
            assert!(
                create(&["--introspection-signed-alg", alg]).is_err(),
                "{alg}"
            );
            assert!(create(&["--id-token-alg", alg]).is_err(), "{alg}");
        }
    }
}
