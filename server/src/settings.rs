//! Typed, layered configuration: the built-in `config/default.toml`, the file of that name in
//! the config directory, `config/<UMBRA_ENV>.toml`, then `UMBRA__SECTION__KEY` variables and
//! `DATABASE_URL`. Unknown keys are errors.
use serde::Deserialize;
use std::net::IpAddr;
use std::path::PathBuf;

const BUILT_IN_DEFAULTS: &str = include_str!("../../config/default.toml");

/// Where the service runs; production refuses development conveniences.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Environment {
    Development,
    Production,
}

impl Environment {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Development => "development",
            Self::Production => "production",
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    #[serde(skip, default = "default_environment")]
    pub environment: Environment,
    /// What loading noticed but did not refuse (e.g. a variable spelt with single
    /// underscores), to be logged once logging is set up.
    #[serde(skip)]
    pub warnings: Vec<String>,
    pub server: ServerSettings,
    pub database: DatabaseSettings,
    pub tokens: TokenSettings,
    pub introspection: IntrospectionSettings,
    pub keys: KeySettings,
    pub token_exchange: TokenExchangeSettings,
    pub cleanup: CleanupSettings,
    pub clients: ClientSettings,
    pub changes: ChangeSettings,
    pub revocations: RevocationSettings,
    pub client_assertions: ClientAssertionSettings,
    pub log: LogSettings,
    pub authorize: AuthorizeSettings,
    pub session: SessionSettings,
    pub login: LoginSettings,
    pub passwords: PasswordSettings,
    pub scopes: ScopeSettings,
    pub metrics: MetricsSettings,
    pub admin: AdminSettings,
    pub registration: RegistrationSettings,
    pub console: ConsoleSettings,
    pub second_factor: SecondFactorSettings,
    pub sender: SenderSettings,
}

fn default_environment() -> Environment {
    Environment::Development
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSettings {
    pub host: String,
    pub port: u16,
    /// The issuer identifier (RFC 8414 §2), without a trailing slash.
    pub issuer: String,
    /// HTTP worker threads; 0 means one per core.
    pub workers: usize,
    pub body_limit_bytes: usize,
    /// How long requests in flight may take to finish after SIGTERM/SIGINT.
    pub shutdown_timeout_secs: u64,
    /// How long, after SIGTERM/SIGINT, the server keeps serving while `/health/ready` answers
    /// 503, so that a load balancer stops sending it requests before it stops accepting them.
    pub shutdown_drain_secs: u64,
    /// The reverse proxies whose forwarding header is believed (empty: none, the TCP peer is
    /// the client).
    pub trusted_proxies: TrustedProxies,
    /// Which forwarding header the trusted proxies set.
    pub client_address_header: ClientAddressHeader,
}

/// `server.trusted_proxies`: addresses and CIDR networks of the reverse proxies in front of
/// Umbra. Only a request whose TCP peer is one of them may name its client in a header.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(try_from = "Vec<String>")]
pub struct TrustedProxies(Vec<ipnet::IpNet>);

impl TrustedProxies {
    /// True when `address` (an IPv4-mapped IPv6 address counts as IPv4) is a trusted proxy.
    pub fn contains(&self, address: IpAddr) -> bool {
        let address = address.to_canonical();
        self.0.iter().any(|net| net.contains(&address))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl TryFrom<Vec<String>> for TrustedProxies {
    type Error = String;

    fn try_from(entries: Vec<String>) -> Result<Self, Self::Error> {
        entries
            .iter()
            .map(|entry| entry.trim())
            .filter(|entry| !entry.is_empty())
            .map(|entry| {
                entry
                    .parse::<ipnet::IpNet>()
                    .or_else(|_| entry.parse::<IpAddr>().map(ipnet::IpNet::from))
                    .map_err(|_| {
                        format!("server.trusted_proxies: {entry:?} is not an IP address or CIDR")
                    })
            })
            .collect::<Result<_, _>>()
            .map(Self)
    }
}

/// The header that carries the client address through the trusted proxies. Only one is read:
/// a proxy passes the other one through untouched, so a client could write it at will.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum ClientAddressHeader {
    /// `X-Forwarded-For: client, proxy1, proxy2` (nginx, HAProxy, most load balancers).
    #[serde(rename = "x-forwarded-for")]
    XForwardedFor,
    /// `Forwarded: for=client, for=proxy1` (RFC 7239).
    #[serde(rename = "forwarded")]
    Forwarded,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSettings {
    pub url: String,
    pub max_connections: u32,
    pub min_connections: u32,
    pub acquire_timeout_secs: u64,
    pub migrate_on_start: bool,
    /// How long a migration run waits for another process that is applying migrations (it
    /// holds the `migrations` lease) before it gives up with an error.
    pub migration_wait_secs: u64,
    /// Serve a database that has migrations this version does not know (applied by a newer
    /// Umbra), when that release's notes say it stays compatible with this one.
    pub allow_newer_schema: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenSettings {
    pub authorization_code_ttl_secs: i64,
    pub access_token_ttl_secs: i64,
    pub refresh_token_ttl_secs: i64,
    /// How long after a refresh token was used it may be presented again (a retried request,
    /// a second tab) and get a sibling pair instead of revoking the grant, as long as nothing
    /// issued from it has been used yet. 0 turns the window off.
    pub refresh_reuse_grace_secs: i64,
    /// Lifetime of OpenID Connect ID tokens; `keys.publish_retired_secs` must be longer, so
    /// that a retired key stays published while what it signed is alive.
    pub id_token_ttl_secs: i64,
    /// The most client_credentials issuances committed in one transaction.
    pub issue_batch_max: usize,
    /// How long concurrent client_credentials issuances may collect before their group
    /// commits, in microseconds; 0 commits each one alone.
    pub issue_batch_wait_us: u64,
}

impl TokenSettings {
    /// How the store groups client_credentials issuances.
    pub fn issue_batching(&self) -> crate::store::IssueBatching {
        crate::store::IssueBatching {
            max: self.issue_batch_max,
            wait: std::time::Duration::from_micros(self.issue_batch_wait_us),
        }
    }
}

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeySettings {
    /// Base64 of 32 bytes that encrypts the private signing keys at rest; empty means the
    /// development key (refused in production).
    pub encryption_key: String,
    /// `RS256`, `ES256` or `EdDSA`: the key made at first start, and what signs by default.
    pub default_algorithm: String,
    /// A new key is published this long before it signs.
    pub prepublish_secs: i64,
    /// A retired key stays published this long: longer than anything it signed lives.
    pub publish_retired_secs: i64,
    /// Rotate the default algorithm's key when it is this many days old; 0: never.
    pub rotate_after_days: i64,
    /// How often an instance re-reads the keys (rotations by the CLI or other instances).
    pub refresh_secs: u64,
}

impl std::fmt::Debug for KeySettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeySettings")
            .field("default_algorithm", &self.default_algorithm)
            .field("prepublish_secs", &self.prepublish_secs)
            .field("publish_retired_secs", &self.publish_retired_secs)
            .field("rotate_after_days", &self.rotate_after_days)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IntrospectionSettings {
    /// Tokens without an audience (RFC 8707) are inactive for every resource server.
    pub require_audience: bool,
    /// Answer hot access tokens from memory (`crate::store::TokenCache`), kept coherent with
    /// revocations through the change log.
    pub cache_enabled: bool,
    /// Most access tokens the cache holds.
    pub cache_capacity: usize,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenExchangeSettings {
    /// The subject token of an exchange must be meant for a resource the exchanging client
    /// serves (introspects for); false accepts any active access token.
    pub require_subject_audience: bool,
    /// Longest actor chain (`act` nesting) an exchange may produce.
    pub max_chain_depth: usize,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CleanupSettings {
    pub interval_secs: u64,
    pub batch_size: u64,
    pub revoked_retention_secs: i64,
    /// Audit events older than this many days are deleted; 0 keeps them forever.
    pub audit_retention_days: i64,
    /// Change-log rows (`crate::store::changes`) older than this are deleted; an instance
    /// whose last successful poll is older than this clears its caches.
    pub change_retention_secs: i64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientSettings {
    /// Upper bound on how long a client record stays cached; the change log evicts changed
    /// records much sooner (`changes.*`). 0 disables the cache.
    pub cache_ttl_secs: u64,
}

/// How each instance follows the change log (`crate::store::changes`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChangeSettings {
    /// How often the change log is read.
    pub poll_interval_ms: u64,
    /// Caches are bypassed (every lookup reads the database) when the last successful poll
    /// started longer ago than this: the longest a change takes to reach every instance.
    pub max_staleness_ms: u64,
    /// How long after its id is drawn a change may still commit and be seen: ids are drawn
    /// in insertion order, not commit order, so polls look back for rows that committed late.
    pub lookback_secs: u64,
    /// On Postgres, listen for `NOTIFY` of new changes and poll at once (changes reach every
    /// instance in milliseconds); the introspection cache then serves only while listening.
    pub notify: bool,
}

/// The revocation stream for resource servers (`GET /revocations`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RevocationSettings {
    /// A comment line is sent this often on an idle stream, so that a subscriber can tell a
    /// quiet stream from a dead one.
    pub heartbeat_secs: u64,
    /// Most streams open at once on this instance; more are refused with 503.
    pub max_streams: usize,
}

/// `private_key_jwt` client authentication (RFC 7523).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientAssertionSettings {
    /// Longest lifetime of a client assertion: `exp - iat`, or `exp - now` without `iat`.
    pub max_lifetime_secs: i64,
    /// How far a client's clock may be from Umbra's when `exp`, `nbf` and `iat` are checked.
    pub clock_skew_secs: i64,
    /// How long keys fetched from a client's `jwks_uri` are used before they are fetched again.
    pub jwks_cache_ttl_secs: u64,
    /// An assertion whose `kid` the cached keys lack fetches them again, at most this often
    /// per client.
    pub jwks_refetch_interval_secs: u64,
    /// Connect and read timeout of a `jwks_uri` fetch.
    pub jwks_timeout_secs: u64,
}

impl ClientAssertionSettings {
    /// The claim rules of `oauth::client_assertion`.
    pub fn policy(&self) -> crate::oauth::client_assertion::AssertionPolicy {
        crate::oauth::client_assertion::AssertionPolicy {
            max_lifetime_secs: self.max_lifetime_secs,
            clock_skew_secs: self.clock_skew_secs,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsSettings {
    pub enabled: bool,
    pub host: String,
    pub port: u16,
}

/// The admin API (`crate::http::admin`): its own listener, like metrics, never the public one.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminSettings {
    pub enabled: bool,
    pub host: String,
    /// 0 picks a free port.
    pub port: u16,
}

/// Dynamic client registration (RFC 7591) and its management (RFC 7592).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistrationSettings {
    /// Serve `POST /register` (with an initial access token unless `open`).
    pub enabled: bool,
    /// Anyone may register without an initial access token (RFC 7591 §3 "open registration").
    pub open: bool,
    /// The grant types a self-registered client may ask for.
    pub grant_types: Vec<String>,
    /// The scopes a self-registered client may ask for; `umbra:admin` is never among them.
    pub scopes: Vec<String>,
    /// How long the secret of a self-registered confidential client lasts
    /// (`client_secret_expires_at`); 0: it does not expire.
    pub secret_lifetime_secs: i64,
    /// Open registration only: registrations one client address (IPv6: its /64) may attempt
    /// per `open_window_secs`, on all instances together; more get 429.
    pub open_max_per_address: i32,
    pub open_window_secs: i64,
}

impl RegistrationSettings {
    /// What a self-registering client may ask for (checked by `Settings::validate`).
    pub fn policy(&self) -> crate::oauth::registration::RegistrationPolicy {
        use crate::oauth::grant_type::GrantType;
        use crate::oauth::scope::ScopeSet;
        crate::oauth::registration::RegistrationPolicy {
            trusted: false,
            grant_types: Some(
                self.grant_types
                    .iter()
                    .filter_map(|name| name.parse::<GrantType>().ok())
                    .collect(),
            ),
            scopes: Some(ScopeSet::parse(&self.scopes.join(" ")).unwrap_or_default()),
            https_or_loopback_only: true,
            ..Default::default()
        }
    }

    /// The limit of open registrations per client address.
    pub fn open_limit(&self) -> crate::auth::limiter::Limit {
        crate::auth::limiter::Limit {
            max: self.open_max_per_address,
            window_secs: self.open_window_secs,
        }
    }

    /// Refuses names that would silently allow nothing, and the admin scope.
    fn validate(&self) -> Result<(), SettingsError> {
        use crate::oauth::grant_type::GrantType;
        let invalid = |msg: String| Err(SettingsError::Invalid(msg));
        if let Some(unknown) = self
            .grant_types
            .iter()
            .find(|name| name.parse::<GrantType>().is_err())
        {
            return invalid(format!(
                "registration.grant_types: {unknown:?} is not a grant type Umbra serves"
            ));
        }
        if crate::oauth::scope::ScopeSet::parse(&self.scopes.join(" ")).is_err()
            || self.scopes.iter().any(|s| s.is_empty() || s.contains(' '))
        {
            return invalid("registration.scopes: each is one scope token".into());
        }
        if self
            .scopes
            .iter()
            .any(|s| s == crate::oauth::registration::ADMIN_SCOPE)
        {
            return invalid(format!(
                "registration.scopes may not hold {}: a client that registers itself never \
                 administers",
                crate::oauth::registration::ADMIN_SCOPE
            ));
        }
        if self.secret_lifetime_secs < 0 {
            return invalid("registration.secret_lifetime_secs may not be negative".into());
        }
        if self.open_max_per_address < 1 || self.open_window_secs < 1 {
            return invalid(
                "registration.open_max_per_address and open_window_secs must be positive".into(),
            );
        }
        Ok(())
    }
}

/// The operator console (`/console`), on the public listener: people sign in there.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsoleSettings {
    pub enabled: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthorizeSettings {
    pub require_pkce_for_all: bool,
}

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionSettings {
    /// Base64 of at least 64 bytes; empty means "generate one per start" (development only).
    pub key: String,
    pub ttl_secs: i64,
}

impl std::fmt::Debug for SessionSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionSettings")
            .field(
                "key",
                &if self.key.is_empty() {
                    "(generated)"
                } else {
                    "(set)"
                },
            )
            .field("ttl_secs", &self.ttl_secs)
            .finish()
    }
}

/// Failed sign-ins allowed per window, kept in the database and so shared by every instance
/// (`auth/limiter.rs`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginSettings {
    /// Failures (and passwords being verified) per account, whatever the address.
    pub max_attempts_per_account: u32,
    /// Failures (and passwords being verified) per client address, IPv6 per /64.
    pub max_attempts_per_address: u32,
    /// The fixed window, from the first attempt of a fresh count; a refused attempt waits
    /// until it ends.
    pub window_secs: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PasswordSettings {
    pub argon2_memory_kib: u32,
    pub argon2_iterations: u32,
    pub argon2_parallelism: u32,
    pub min_length: usize,
    /// Password verifications running at once; 0 means one per core.
    pub max_concurrent_verifications: usize,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScopeSettings {
    pub descriptions: std::collections::BTreeMap<String, String>,
}

/// The development key for TOTP secrets at rest, used when `second_factor.encryption_key` is
/// empty outside production. It is public (written here and in the README): secrets enrolled
/// with it are protected by nothing but the database's own access control.
pub const DEVELOPMENT_ENCRYPTION_KEY: &str = "dW1icmEtZGV2ZWxvcG1lbnQta2V5LW5vdC1zZWNyZXQ=";

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecondFactorSettings {
    /// Base64 of 32 bytes; empty means the development key (refused in production).
    pub encryption_key: String,
    /// Every sign-in for every client needs a second factor.
    pub require_2fa: bool,
    /// The issuer shown in authenticator apps.
    pub totp_issuer: String,
    pub code_ttl_secs: i64,
    pub max_code_attempts: i32,
    pub resend_interval_secs: i64,
    pub max_failures: i32,
    pub failure_window_secs: i64,
    pub lockout_secs: i64,
}

impl std::fmt::Debug for SecondFactorSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecondFactorSettings")
            .field("encryption_key", &redacted(&self.encryption_key))
            .field("require_2fa", &self.require_2fa)
            .field("totp_issuer", &self.totp_issuer)
            .finish_non_exhaustive()
    }
}

/// How one-time codes reach people.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SenderKind {
    /// Writes codes to the log: development only.
    Log,
    Smtp,
    Webhook,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    /// Plain text (a local relay only).
    None,
    Starttls,
    /// TLS from the first byte (port 465).
    Tls,
}

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SenderSettings {
    pub kind: SenderKind,
    pub smtp_host: String,
    pub smtp_port: u16,
    pub smtp_tls: SmtpTls,
    pub smtp_username: String,
    pub smtp_password: String,
    pub smtp_from: String,
    pub webhook_url: String,
    /// Sent as `Authorization: Bearer …` to the webhook when set.
    pub webhook_token: String,
    pub timeout_secs: u64,
}

impl std::fmt::Debug for SenderSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SenderSettings")
            .field("kind", &self.kind)
            .field("smtp_host", &self.smtp_host)
            .field("smtp_port", &self.smtp_port)
            .field("smtp_password", &redacted(&self.smtp_password))
            .field("webhook_url", &self.webhook_url)
            .field("webhook_token", &redacted(&self.webhook_token))
            .finish_non_exhaustive()
    }
}

fn redacted(value: &str) -> &'static str {
    if value.is_empty() { "(empty)" } else { "(set)" }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Pretty,
    Json,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSettings {
    pub format: LogFormat,
    pub level: String,
}

/// A configuration that cannot be used; its message is one line for the operator.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("configuration: {0}")]
    Load(#[from] config::ConfigError),
    #[error("configuration: {0}")]
    Invalid(String),
}

impl Settings {
    /// Loads from the process environment: `UMBRA_ENV`, `UMBRA_CONFIG_DIR` (default `config`),
    /// `UMBRA__…` variables and `DATABASE_URL`.
    pub fn load() -> Result<Self, SettingsError> {
        let environment = match std::env::var("UMBRA_ENV").as_deref() {
            Err(_) | Ok("") | Ok("development") => Environment::Development,
            Ok("production") => Environment::Production,
            Ok(other) => {
                return Err(SettingsError::Invalid(format!(
                    "UMBRA_ENV must be development or production, not {other:?}"
                )));
            }
        };
        let variables: Vec<(String, String)> = std::env::vars_os()
            .filter_map(|(name, value)| Some((name.into_string().ok()?, value.into_string().ok()?)))
            .collect();
        let warnings = check_variable_names(&variables)?;
        let dir =
            PathBuf::from(std::env::var("UMBRA_CONFIG_DIR").unwrap_or_else(|_| "config".into()));
        let builder = Self::built_in_sources()
            .add_source(config::File::from(dir.join("default.toml")).required(false))
            .add_source(
                config::File::from(dir.join(format!("{}.toml", environment.as_str())))
                    .required(false),
            )
            .add_source(Self::environment_source())
            .set_override_option("database.url", std::env::var("DATABASE_URL").ok())?;
        let mut settings = Self::finish(builder, environment)?;
        settings.warnings = warnings;
        Ok(settings)
    }

    /// `UMBRA__SECTION__KEY` variables; list-valued keys are comma-separated.
    fn environment_source() -> config::Environment {
        config::Environment::with_prefix("UMBRA")
            .prefix_separator("__")
            .separator("__")
            .try_parsing(true)
            .list_separator(",")
            .with_list_parse_key("server.trusted_proxies")
            .with_list_parse_key("registration.grant_types")
            .with_list_parse_key("registration.scopes")
    }

    /// The built-in defaults alone, ignoring files and the environment (for tests and tools
    /// that configure Umbra in code).
    pub fn built_in() -> Result<Self, SettingsError> {
        Self::finish(Self::built_in_sources(), Environment::Development)
    }

    fn built_in_sources() -> config::ConfigBuilder<config::builder::DefaultState> {
        config::Config::builder().add_source(config::File::from_str(
            BUILT_IN_DEFAULTS,
            config::FileFormat::Toml,
        ))
    }

    fn finish(
        builder: config::ConfigBuilder<config::builder::DefaultState>,
        environment: Environment,
    ) -> Result<Self, SettingsError> {
        let mut settings: Settings = builder.build()?.try_deserialize()?;
        settings.environment = environment;
        settings.validate()?;
        Ok(settings)
    }

    /// Checks what the types cannot: ranges and the issuer's shape.
    pub fn validate(&mut self) -> Result<(), SettingsError> {
        let invalid = |msg: &str| Err(SettingsError::Invalid(msg.to_owned()));
        self.server.issuer = self.server.issuer.trim_end_matches('/').to_owned();
        let issuer = &self.server.issuer;
        let production = self.environment == Environment::Production;
        if issuer.is_empty() {
            if production {
                return invalid(
                    "server.issuer must be set in production (the public https URL of Umbra)",
                );
            }
        } else if !(issuer.starts_with("https://") || issuer.starts_with("http://"))
            || issuer.contains(['?', '#'])
        {
            return invalid("server.issuer must be an http(s) URL without query or fragment");
        } else if production && !issuer.starts_with("https://") {
            return invalid("server.issuer must use https in production");
        }
        if !(512..=1024 * 1024).contains(&self.server.body_limit_bytes) {
            return invalid("server.body_limit_bytes must be between 512 and 1048576");
        }
        let t = &self.tokens;
        if t.authorization_code_ttl_secs <= 0
            || t.access_token_ttl_secs <= 0
            || t.refresh_token_ttl_secs <= 0
        {
            return invalid("token lifetimes must be positive");
        }
        if !(0..=60).contains(&t.refresh_reuse_grace_secs) {
            return invalid("tokens.refresh_reuse_grace_secs must be between 0 and 60");
        }
        if !(1..=1000).contains(&t.issue_batch_max) || t.issue_batch_wait_us > 100_000 {
            return invalid(
                "tokens.issue_batch_max must be between 1 and 1000 and tokens.issue_batch_wait_us \
                 at most 100000",
            );
        }
        if !(1..=10).contains(&self.token_exchange.max_chain_depth) {
            return invalid("token_exchange.max_chain_depth must be between 1 and 10");
        }
        let a = &self.client_assertions;
        if !(1..=3600).contains(&a.max_lifetime_secs)
            || !(0..=300).contains(&a.clock_skew_secs)
            || !(1..=60).contains(&a.jwks_timeout_secs)
        {
            return invalid(
                "client_assertions.max_lifetime_secs must be between 1 and 3600, \
                 clock_skew_secs between 0 and 300, jwks_timeout_secs between 1 and 60",
            );
        }
        let c = &self.changes;
        if c.poll_interval_ms == 0
            || c.max_staleness_ms < c.poll_interval_ms
            || !(1..=300).contains(&c.lookback_secs)
            || self.cleanup.change_retention_secs < 60 * i64::try_from(c.lookback_secs).unwrap_or(0)
        {
            return invalid(
                "changes.poll_interval_ms must be positive and at most changes.max_staleness_ms, \
                 changes.lookback_secs between 1 and 300, and cleanup.change_retention_secs at \
                 least 60 times changes.lookback_secs",
            );
        }
        let r = &self.revocations;
        if !(1..=300).contains(&r.heartbeat_secs) || r.max_streams == 0 {
            return invalid(
                "revocations.heartbeat_secs must be between 1 and 300 and \
                 revocations.max_streams positive",
            );
        }
        if t.id_token_ttl_secs <= 0 || t.id_token_ttl_secs > 86_400 {
            return invalid("tokens.id_token_ttl_secs must be between 1 and 86400");
        }
        if self.keys.publish_retired_secs <= t.id_token_ttl_secs {
            return invalid(
                "keys.publish_retired_secs must be longer than tokens.id_token_ttl_secs: a \
                 retired key stays published until the ID tokens it signed have expired",
            );
        }
        if production && !self.introspection.require_audience {
            self.warnings.push(
                "introspection.require_audience is false: tokens that name no resource are \
                 active for every resource server; set it true once clients ask for resources"
                    .to_owned(),
            );
        }
        if self.database.max_connections == 0
            || self.database.min_connections > self.database.max_connections
        {
            return invalid(
                "database.max_connections must be positive and at least min_connections",
            );
        }
        if self.environment == Environment::Production && self.session.key.is_empty() {
            return invalid("session.key must be set in production (64+ random bytes, base64)");
        }
        if !self.session.key.is_empty() && self.session_key().is_none() {
            return invalid("session.key must be base64 of at least 64 bytes");
        }
        if self.session.ttl_secs <= 0 {
            return invalid("session.ttl_secs must be positive");
        }
        let l = &self.login;
        if l.max_attempts_per_account == 0 || l.max_attempts_per_address == 0 || l.window_secs == 0
        {
            return invalid("login attempt limits and window must be positive");
        }
        let p = &self.passwords;
        if argon2::Params::new(
            p.argon2_memory_kib,
            p.argon2_iterations,
            p.argon2_parallelism,
            None,
        )
        .is_err()
        {
            return invalid("passwords.argon2_* are not valid argon2 parameters");
        }
        self.validate_second_factor()?;
        self.validate_keys()?;
        self.registration.validate()?;
        if self.cleanup.batch_size == 0
            || self.cleanup.revoked_retention_secs < 0
            || !(0..=36_500).contains(&self.cleanup.audit_retention_days)
        {
            return invalid(
                "cleanup.batch_size must be positive, revoked_retention_secs not negative and \
                 audit_retention_days between 0 and 36500",
            );
        }
        Ok(())
    }

    fn validate_second_factor(&self) -> Result<(), SettingsError> {
        let invalid = |msg: &str| Err(SettingsError::Invalid(msg.to_owned()));
        let production = self.environment == Environment::Production;
        let f = &self.second_factor;
        // The development key is public: configuring it explicitly is no better than leaving
        // the key empty.
        if production && self.uses_development_key() {
            return invalid(
                "second_factor.encryption_key must be set in production to a key of your own \
                 (32 random bytes, base64); the public development key is refused",
            );
        }
        if decode_key(self.second_factor_key_base64()).is_none() {
            return invalid("second_factor.encryption_key must be base64 of exactly 32 bytes");
        }
        if f.code_ttl_secs <= 0
            || f.max_code_attempts <= 0
            || f.resend_interval_secs < 0
            || f.max_failures <= 0
            || f.failure_window_secs <= 0
            || f.lockout_secs <= 0
        {
            return invalid(
                "second_factor lifetimes, attempts and lockout limits must be positive",
            );
        }
        let sender = &self.sender;
        match sender.kind {
            SenderKind::Log if production => {
                return invalid(
                    "sender.kind = \"log\" writes codes to the log and is refused in production",
                );
            }
            SenderKind::Smtp if sender.smtp_host.is_empty() || sender.smtp_from.is_empty() => {
                return invalid(
                    "sender.kind = \"smtp\" needs sender.smtp_host and sender.smtp_from",
                );
            }
            SenderKind::Webhook
                if !(sender.webhook_url.starts_with("https://")
                    || (!production && sender.webhook_url.starts_with("http://"))) =>
            {
                return invalid(
                    "sender.kind = \"webhook\" needs sender.webhook_url (https in production)",
                );
            }
            _ => {}
        }
        Ok(())
    }

    fn validate_keys(&self) -> Result<(), SettingsError> {
        let invalid = |msg: &str| Err(SettingsError::Invalid(msg.to_owned()));
        let k = &self.keys;
        if self.environment == Environment::Production && self.uses_development_signing_key() {
            return invalid(
                "keys.encryption_key must be set in production to a key of your own (32 random \
                 bytes, base64)",
            );
        }
        if self.keys_encryption_key().is_none() {
            return invalid("keys.encryption_key must be base64 of 32 bytes");
        }
        if self.signing_policy().is_none() {
            return invalid("keys.default_algorithm must be RS256, ES256 or EdDSA");
        }
        if !(0..=30 * 86_400).contains(&k.prepublish_secs)
            || k.publish_retired_secs < 0
            || k.rotate_after_days < 0
            || k.refresh_secs == 0
        {
            return invalid(
                "keys.prepublish_secs must be between 0 and 2592000, publish_retired_secs and \
                 rotate_after_days not negative, refresh_secs positive",
            );
        }
        if k.rotate_after_days > 0 && k.rotate_after_days * 86_400 <= k.prepublish_secs {
            return invalid("keys.rotate_after_days must be longer than keys.prepublish_secs");
        }
        Ok(())
    }

    /// The key that encrypts private signing keys: the configured one, or the development key.
    pub fn keys_encryption_key(&self) -> Option<[u8; 32]> {
        decode_key(match self.keys.encryption_key.trim() {
            "" => DEVELOPMENT_ENCRYPTION_KEY,
            key => key,
        })
    }

    /// True when private signing keys are encrypted with the public development key.
    pub fn uses_development_signing_key(&self) -> bool {
        self.keys_encryption_key() == decode_key(DEVELOPMENT_ENCRYPTION_KEY)
    }

    /// The key life cycle from `[keys]`; `None` for an unknown default algorithm.
    pub fn signing_policy(&self) -> Option<crate::keys::KeyPolicy> {
        let k = &self.keys;
        Some(crate::keys::KeyPolicy {
            default_alg: k.default_algorithm.parse().ok()?,
            prepublish_secs: k.prepublish_secs,
            publish_retired_secs: k.publish_retired_secs,
            rotate_after_secs: k.rotate_after_days.saturating_mul(86_400),
        })
    }

    fn second_factor_key_base64(&self) -> &str {
        match self.second_factor.encryption_key.trim() {
            "" => DEVELOPMENT_ENCRYPTION_KEY,
            key => key,
        }
    }

    /// The key that encrypts TOTP secrets: the configured one, or the development key.
    pub fn second_factor_key(&self) -> Option<[u8; 32]> {
        decode_key(self.second_factor_key_base64())
    }

    /// Fills an unset `server.issuer` with the listener's own URL, once the port is known
    /// (port 0 binds a free one). A wildcard host is reached on the loopback address.
    pub fn default_issuer_to_listener(&mut self, port: u16) {
        if !self.server.issuer.is_empty() {
            return;
        }
        let host = match self.server.host.parse::<std::net::IpAddr>() {
            Ok(ip) if ip.is_unspecified() => "127.0.0.1".to_owned(),
            Ok(std::net::IpAddr::V6(ip)) => format!("[{ip}]"),
            _ => self.server.host.clone(),
        };
        self.server.issuer = format!("http://{host}:{port}");
    }

    /// True when TOTP secrets are encrypted with the public development key: none is set, or
    /// the one set is the development key (in whatever base64 spelling decodes to it).
    pub fn uses_development_key(&self) -> bool {
        self.second_factor.encryption_key.trim().is_empty()
            || decode_key(self.second_factor.encryption_key.trim())
                == decode_key(DEVELOPMENT_ENCRYPTION_KEY)
    }

    /// The configured session key bytes, if one is set and long enough.
    pub fn session_key(&self) -> Option<Vec<u8>> {
        use base64::Engine;
        let key = base64::engine::general_purpose::STANDARD
            .decode(self.session.key.trim())
            .ok()?;
        (key.len() >= 64).then_some(key)
    }
}

/// Variables that start like Umbra's but are not settings: read elsewhere.
const OTHER_UMBRA_VARIABLES: [&str; 2] = ["UMBRA_ENV", "UMBRA_CONFIG_DIR"];

/// Settings that are maps of the operator's own names (`scopes.descriptions.<scope>`).
const MAP_KEYS: [&str; 1] = ["scopes.descriptions"];

/// Checks the names of `UMBRA_…` variables against the keys Umbra has (those of the built-in
/// defaults, which name every key). A `UMBRA__SECTION__KEY` that names no key is refused with
/// the variable's name, rather than the deserialiser's "unknown field"; a single-underscore
/// spelling of a real key (`UMBRA_SERVER_PORT`) is ignored by the loader, so it gets a warning
/// that gives the right spelling.
fn check_variable_names(variables: &[(String, String)]) -> Result<Vec<String>, SettingsError> {
    let keys = known_keys()?;
    let mut warnings = Vec::new();
    for (name, _) in variables {
        if let Some(path) = name.strip_prefix("UMBRA__") {
            let key = path.to_lowercase().replace("__", ".");
            let in_map = MAP_KEYS.iter().any(|map| {
                key.strip_prefix(map)
                    .is_some_and(|rest| rest.starts_with('.'))
            });
            if !keys.contains(&key) && !in_map {
                return Err(SettingsError::Invalid(format!(
                    "{name} names no setting ({key}); settings are UMBRA__<SECTION>__<KEY>, see \
                     the configuration table in the README"
                )));
            }
        } else if name.starts_with("UMBRA_") && !OTHER_UMBRA_VARIABLES.contains(&name.as_str()) {
            let meant = keys
                .iter()
                .find(|key| format!("UMBRA_{}", key.replace('.', "_")).eq_ignore_ascii_case(name));
            if let Some(key) = meant {
                let right = format!("UMBRA__{}", key.replace('.', "__").to_uppercase());
                warnings.push(format!(
                    "{name} is ignored: settings use double underscores, e.g. {right}"
                ));
            }
        }
    }
    Ok(warnings)
}

/// Every setting's dotted key (`server.port`), from the built-in defaults.
fn known_keys() -> Result<std::collections::BTreeSet<String>, SettingsError> {
    fn walk(
        prefix: &str,
        table: config::Map<String, config::Value>,
        keys: &mut std::collections::BTreeSet<String>,
    ) {
        for (name, value) in table {
            let key = if prefix.is_empty() {
                name
            } else {
                format!("{prefix}.{name}")
            };
            match value.clone().into_table() {
                Ok(inner) if !MAP_KEYS.contains(&key.as_str()) => walk(&key, inner, keys),
                _ => {
                    keys.insert(key);
                }
            }
        }
    }
    let mut keys = std::collections::BTreeSet::new();
    walk(
        "",
        Settings::built_in_sources()
            .build()?
            .try_deserialize::<config::Map<String, config::Value>>()?,
        &mut keys,
    );
    Ok(keys)
}

fn decode_key(base64_key: &str) -> Option<[u8; 32]> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(base64_key)
        .ok()?
        .try_into()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_environment(variables: &[(&str, &str)]) -> Result<Settings, SettingsError> {
        let variables = variables
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let builder = Settings::built_in_sources()
            .add_source(Settings::environment_source().source(Some(variables)));
        Settings::finish(builder, Environment::Development)
    }

    #[test]
    fn trusted_proxies_come_from_a_comma_separated_variable_and_junk_is_refused() {
        let settings = with_environment(&[
            (
                "UMBRA__SERVER__TRUSTED_PROXIES",
                "10.0.0.1, 10.1.0.0/16,fd00::/8",
            ),
            ("UMBRA__SERVER__ISSUER", "https://id.example"),
        ])
        .unwrap();
        let proxies = &settings.server.trusted_proxies;
        assert!(proxies.contains("10.0.0.1".parse().unwrap()));
        assert!(proxies.contains("10.1.200.3".parse().unwrap()));
        assert!(proxies.contains("fd12::1".parse().unwrap()));
        assert!(!proxies.contains("10.0.0.2".parse().unwrap()));
        assert_eq!(
            settings.server.issuer, "https://id.example",
            "other keys stay strings"
        );
        assert!(
            Settings::built_in()
                .unwrap()
                .server
                .trusted_proxies
                .is_empty()
        );
        assert!(with_environment(&[("UMBRA__SERVER__TRUSTED_PROXIES", "proxy.local")]).is_err());
    }

    #[test]
    fn registration_policy_lists_come_from_comma_separated_variables_and_are_checked() {
        let settings = with_environment(&[
            (
                "UMBRA__REGISTRATION__GRANT_TYPES",
                "client_credentials,authorization_code",
            ),
            ("UMBRA__REGISTRATION__SCOPES", "read,orders:write"),
        ])
        .unwrap();
        let policy = settings.registration.policy();
        assert_eq!(policy.grant_types.map(|g| g.len()), Some(2));
        assert_eq!(
            policy.scopes.map(|s| s.to_string()),
            Some("read orders:write".to_owned())
        );
        for (key, value) in [
            ("UMBRA__REGISTRATION__GRANT_TYPES", "client_credential"),
            ("UMBRA__REGISTRATION__GRANT_TYPES", "password"),
            ("UMBRA__REGISTRATION__SCOPES", "read,umbra:admin"),
            ("UMBRA__REGISTRATION__SECRET_LIFETIME_SECS", "-1"),
            ("UMBRA__REGISTRATION__OPEN_MAX_PER_ADDRESS", "0"),
            ("UMBRA__REGISTRATION__OPEN_WINDOW_SECS", "0"),
        ] {
            let err = with_environment(&[(key, value)])
                .err()
                .map(|e| e.to_string());
            assert!(
                err.as_deref().is_some_and(|e| e.contains("registration.")),
                "{key}={value}: {err:?}"
            );
        }
    }

    #[test]
    fn an_unset_issuer_follows_the_listener_and_production_requires_one() {
        let mut settings = Settings::built_in().unwrap();
        assert!(settings.server.issuer.is_empty(), "unset by default");
        settings.default_issuer_to_listener(9000);
        assert_eq!(settings.server.issuer, "http://127.0.0.1:9000");

        for (host, issuer) in [
            ("0.0.0.0", "http://127.0.0.1:9001"),
            ("::1", "http://[::1]:9001"),
            ("auth.internal", "http://auth.internal:9001"),
        ] {
            let mut settings = Settings::built_in().unwrap();
            settings.server.host = host.into();
            settings.default_issuer_to_listener(9001);
            assert_eq!(settings.server.issuer, issuer);
        }

        let mut explicit =
            with_environment(&[("UMBRA__SERVER__ISSUER", "https://id.example/")]).unwrap();
        explicit.default_issuer_to_listener(9002);
        assert_eq!(explicit.server.issuer, "https://id.example");

        let production = Settings::finish(Settings::built_in_sources(), Environment::Production);
        let message = production.unwrap_err().to_string();
        assert!(
            message.contains("server.issuer must be set in production"),
            "{message}"
        );
    }

    #[test]
    fn retired_keys_must_stay_published_longer_than_id_tokens_live() {
        let refused = with_environment(&[
            ("UMBRA__TOKENS__ID_TOKEN_TTL_SECS", "7200"),
            ("UMBRA__KEYS__PUBLISH_RETIRED_SECS", "7200"),
        ]);
        let message = refused.unwrap_err().to_string();
        assert!(message.contains("keys.publish_retired_secs"), "{message}");
        assert!(
            with_environment(&[
                ("UMBRA__TOKENS__ID_TOKEN_TTL_SECS", "7200"),
                ("UMBRA__KEYS__PUBLISH_RETIRED_SECS", "7201"),
            ])
            .is_ok()
        );
        assert!(with_environment(&[("UMBRA__TOKENS__ID_TOKEN_TTL_SECS", "0")]).is_err());
    }

    fn names(variables: &[&str]) -> Vec<(String, String)> {
        variables
            .iter()
            .map(|name| (name.to_string(), "1".to_owned()))
            .collect()
    }

    #[test]
    fn a_variable_that_names_no_setting_is_refused_by_its_name() {
        let message = check_variable_names(&names(&["UMBRA__SERVER__PROT"]))
            .unwrap_err()
            .to_string();
        assert!(message.contains("UMBRA__SERVER__PROT"), "{message}");
        assert!(message.contains("server.prot"), "{message}");
        assert!(check_variable_names(&names(&["UMBRA__SERVER__PORT"])).is_ok());
        assert!(
            check_variable_names(&names(&["UMBRA__SCOPES__DESCRIPTIONS__BILLING"])).is_ok(),
            "a map setting takes the operator's own names"
        );
    }

    #[test]
    fn single_underscores_get_a_warning_with_the_right_spelling() {
        let warnings = check_variable_names(&names(&[
            "UMBRA_SERVER_PORT",
            "UMBRA_SECOND_FACTOR_MAX_FAILURES",
            "UMBRA_ENV",
            "UMBRA_CONFIG_DIR",
            "UMBRA_SOMETHING_ELSE",
            "PATH",
        ]))
        .unwrap();
        assert_eq!(
            warnings,
            [
                "UMBRA_SERVER_PORT is ignored: settings use double underscores, e.g. \
                 UMBRA__SERVER__PORT",
                "UMBRA_SECOND_FACTOR_MAX_FAILURES is ignored: settings use double underscores, \
                 e.g. UMBRA__SECOND_FACTOR__MAX_FAILURES",
            ]
        );
    }
}
