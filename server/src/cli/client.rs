//! `umbra client create | list | show | delete | rotate-secret`, and which resources (RFC
//! 8707) a client may ask tokens for: `allow-resource | deny-resource | default-resource`.
use super::{output, parse_scopes, resource};
use crate::clock;
use crate::keys::SigningAlg;
use crate::oauth::client::{Client, MAX_CLIENT_ID_LEN, OpenIdRegistration, is_valid_client_id};
use crate::oauth::grant_type::GrantType;
use crate::oauth::redirect_uri;
use crate::oauth::resource::{AllowedResource, ResourceAccess};
use crate::oauth::token::{Token, TokenKind, random_urlsafe};
use crate::store::Store;
use anyhow::{Context, bail};
use clap::{ArgGroup, Args, Subcommand};
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
    /// Issue a new secret; the old one stops working (within clients.cache_ttl_secs on
    /// running servers).
    RotateSecret { client_id: String },
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
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    /// A human-readable name, shown on consent pages.
    name: String,
    /// The client_id to use instead of a random one.
    #[arg(long = "id")]
    id: Option<String>,
    /// A public client (no secret; e.g. a single-page or native app).
    #[arg(long)]
    public: bool,
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
    /// OpenID Connect: the algorithm of its ID tokens (RS256, ES256 or EdDSA); one with an
    /// active signing key. Default: keys.default_algorithm.
    #[arg(long = "id-token-alg", value_name = "ALG")]
    id_token_alg: Option<SigningAlg>,
    /// OpenID Connect RP-initiated logout: a URI the browser may be sent back to after
    /// signing out (repeatable). The same rules as --redirect-uri.
    #[arg(long = "post-logout-redirect-uri", value_name = "URI")]
    post_logout_redirect_uris: Vec<String>,
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
                "id_token_alg",
                self.id_token_alg.unwrap_or("(default)").to_owned(),
            ),
            (
                "post_logout_redirect_uris",
                self.post_logout_redirect_uris.join(" "),
            ),
        ];
        if let Some(secret) = self.client_secret {
            rows.push((
                "client_secret",
                format!("{secret}  (shown once: store it now)"),
            ));
        }
        output::fields(&rows)
    }
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
                if client.is_public() {
                    bail!("client {client_id:?} is public and has no secret");
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
        let mut grant_types = self.grant_types;
        if grant_types.is_empty() {
            grant_types = if self.redirect_uris.is_empty() {
                vec![GrantType::ClientCredentials]
            } else {
                vec![GrantType::AuthorizationCode, GrantType::RefreshToken]
            };
        }
        grant_types.dedup();
        if self.public && grant_types.contains(&GrantType::ClientCredentials) {
            bail!("a public client cannot use client_credentials (RFC 6749 §4.4)");
        }
        if self.public && self.introspect {
            bail!("a public client cannot introspect: it has no secret to authenticate with");
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
        let secret = if self.public {
            None
        } else {
            Some(Token::generate(TokenKind::ClientSecret)?)
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
            resources: ResourceAccess {
                default: self.default_resource,
                ..ResourceAccess::default()
            },
            openid: OpenIdRegistration {
                id_token_alg: self.id_token_alg,
                post_logout_redirect_uris: self.post_logout_redirect_uris,
            },
        };
        Ok((new, secret))
    }
}

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
