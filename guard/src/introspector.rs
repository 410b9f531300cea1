//! The introspection client (RFC 7662 §2): asks Umbra whether a token is active, as a
//! resource server with its own client credentials.
//!
//! One pooled HTTP client per [`Introspector`] (clone it freely: clones share the pool and the
//! caches). A connection that cannot be established is retried a few times with a short
//! backoff; an HTTP answer, whatever its status, is never retried, and a timeout is not
//! either (the request may have been received). Every failure refuses the request.
use crate::assertion::{AssertionKey, Credentials};
use crate::bearer::check_token;
use crate::cache::{CacheSettings, Caches};
use crate::clock;
use crate::error::{GuardError, Unavailable};
use crate::expected::Expected;
use crate::revocations::Subscription;
use crate::scopes::ScopeRequirement;
use crate::signed::SignedAnswers;
use crate::token::{Answer, ValidatedToken};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use reqwest::header::{self, HeaderValue};
use reqwest::{StatusCode, Url};
use secrecy::{ExposeSecret, SecretString};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// Largest introspection answer read; Umbra's are a few hundred bytes.
const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// Asks Umbra about tokens. Cheap to clone; clones share one connection pool and the caches.
///
/// ```no_run
/// use std::time::Duration;
/// use umbra_guard::{CacheSettings, GuardError, Introspector};
///
/// # async fn example() -> Result<(), Box<dyn std::error::Error>> {
/// let introspector = Introspector::builder("http://127.0.0.1:8080", "orders-api", "cs_…")
///     // Refuse tokens that are not meant for this API, or that another server issued.
///     .resource("https://orders.example.com")
///     .issuer("http://127.0.0.1:8080")
///     .request_timeout(Duration::from_secs(2))
///     // Optional: accept a revoked token for at most 5 s, in exchange for fewer calls.
///     .cache(CacheSettings::new(10_000, Duration::from_secs(5)))
///     .build()?;
///
/// match introspector.introspect("at_…").await {
///     Ok(token) => println!("{} may act with scopes {}", token.principal(), token.scopes),
///     Err(GuardError::Unavailable(cause)) => eprintln!("refused, Umbra is down: {cause}"),
///     Err(refused) => println!("refused: {refused}"),
/// }
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Introspector {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    endpoint: Url,
    client_id: String,
    /// A Basic header built once, or the key that signs an assertion per call.
    credentials: Credentials,
    retries: u32,
    retry_backoff: Duration,
    expected: Expected,
    caches: Caches,
    /// Set when the answers must be signed (RFC 9701).
    signed: Option<SignedAnswers>,
    /// Set when the positive cache follows Umbra's revocation stream.
    revocations: Option<Subscription>,
}

/// Configures an [`Introspector`]; see [`Introspector::builder`].
pub struct IntrospectorBuilder {
    base_url: String,
    client_id: String,
    client_secret: SecretString,
    /// Set by [`Introspector::builder_with_private_key`]: `private_key_jwt` instead of the
    /// secret.
    private_key: Option<AssertionKey>,
    connect_timeout: Duration,
    request_timeout: Duration,
    retries: u32,
    retry_backoff: Duration,
    pool_max_idle_per_host: usize,
    positive: Option<CacheSettings>,
    negative: Option<CacheSettings>,
    resources: Vec<String>,
    issuer: Option<String>,
    signed_answers: bool,
    /// Umbra's `revocations.heartbeat_secs`, when the positive cache follows the stream.
    revocation_heartbeat: Option<Duration>,
}

/// A configuration that cannot work; the message is one line for the operator.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    #[error("invalid Umbra URL {url:?}: {reason}")]
    Url { url: String, reason: String },
    #[error("the resource server's client id and secret must not be empty")]
    EmptyCredentials,
    /// RFC 8707 §2: a resource identifier is an absolute URI without a fragment.
    #[error(
        "invalid resource identifier {resource:?}: {reason}; give an absolute URI without \
         fragment, exactly as registered with Umbra"
    )]
    Resource {
        resource: String,
        reason: &'static str,
    },
    #[error("invalid issuer {issuer:?}: {reason}; give Umbra's server.issuer exactly")]
    Issuer {
        issuer: String,
        reason: &'static str,
    },
    #[error("cannot build the HTTP client: {0}")]
    Http(#[source] reqwest::Error),
    #[error(
        "the revocation stream needs the positive cache, a client secret (not a private key) \
         and a Tokio runtime to run in"
    )]
    RevocationStream,
}

impl Introspector {
    /// Starts configuring an introspector for the Umbra at `umbra_url` (its base URL, e.g.
    /// `http://umbra:8080`; `/introspect` is appended), authenticating with the credentials
    /// of a client created with `umbra client create … --introspect`.
    ///
    /// Defaults: connect timeout 2 s, request timeout 5 s, 2 retries of a failed connection
    /// 50 ms then 100 ms apart, no caches, no audience or issuer check (set
    /// [`resource`](IntrospectorBuilder::resource) and
    /// [`issuer`](IntrospectorBuilder::issuer) in production).
    pub fn builder(
        umbra_url: impl Into<String>,
        client_id: impl Into<String>,
        client_secret: impl Into<SecretString>,
    ) -> IntrospectorBuilder {
        IntrospectorBuilder {
            base_url: umbra_url.into(),
            client_id: client_id.into(),
            client_secret: client_secret.into(),
            private_key: None,
            connect_timeout: Duration::from_secs(2),
            request_timeout: Duration::from_secs(5),
            retries: 2,
            retry_backoff: Duration::from_millis(50),
            pool_max_idle_per_host: 32,
            positive: None,
            negative: None,
            resources: Vec::new(),
            issuer: None,
            signed_answers: false,
            revocation_heartbeat: None,
        }
    }

    /// As [`builder`](Self::builder), for a client that authenticates with a private key
    /// instead of a secret (`private_key_jwt`, RFC 7523): one created with `umbra client
    /// create … --introspect --auth-method private_key_jwt --jwks …` holding the public half.
    /// Each call carries a new assertion signed with `key`, for the introspection endpoint,
    /// valid one minute.
    pub fn builder_with_private_key(
        umbra_url: impl Into<String>,
        client_id: impl Into<String>,
        key: AssertionKey,
    ) -> IntrospectorBuilder {
        let mut builder = Self::builder(umbra_url, client_id, String::new());
        builder.private_key = Some(key);
        builder
    }

    /// The introspection endpoint called.
    pub fn endpoint(&self) -> &str {
        self.inner.endpoint.as_str()
    }

    /// Checks `token` (the bare token, without `Bearer `): its syntax, then the caches when
    /// enabled, then Umbra; then the answer's issuer and audience when configured, and its
    /// `exp` by the local clock.
    #[tracing::instrument(name = "introspect", level = "debug", skip_all)]
    pub async fn introspect(&self, token: &str) -> Result<ValidatedToken, GuardError> {
        check_token(token)?;
        let inner = &*self.inner;
        let key = inner.caches.is_enabled().then(|| Caches::key(token));
        let serving = inner
            .revocations
            .as_ref()
            .is_none_or(|stream| stream.freshness.serving());
        // Read before asking: an event that arrives meanwhile may be about this very token.
        let events = inner.revocations.as_ref().map(|s| s.freshness.events());
        if let Some(key) = &key {
            if let Some(cached) = inner.caches.active(key, clock::now()).filter(|_| serving) {
                // Only checked answers are cached; checking again costs nothing and keeps the
                // cache from ever being the one path that skips a check.
                inner.expected.check(&cached)?;
                return Ok(cached);
            }
            if let Some(refusal) = inner.caches.refusal(key) {
                return Err(refusal);
            }
        }
        let answer = match self.ask(token).await {
            Ok(answer) => answer,
            Err(err) => {
                self.log_unavailable(&err);
                return Err(err.into());
            }
        };
        let now = clock::now();
        let verdict = answer.judge(now, &inner.expected);
        if let Some(key) = key {
            match &verdict {
                Ok(validated) => {
                    let fresh = match (&inner.revocations, events) {
                        (Some(stream), Some(events)) => stream.freshness.unchanged_since(events),
                        _ => true,
                    };
                    if fresh {
                        inner.caches.remember_active(key, validated, now);
                    }
                }
                Err(refused) => inner.caches.remember_refusal(key, refused),
            }
        }
        if let Err(GuardError::Unavailable(err)) = &verdict {
            self.log_unavailable(err);
        }
        verdict
    }

    /// [`introspect`](Self::introspect), then refuses with
    /// [`GuardError::InsufficientScope`] unless `requirement` is met.
    pub async fn authorize(
        &self,
        token: &str,
        requirement: &ScopeRequirement,
    ) -> Result<ValidatedToken, GuardError> {
        let validated = self.introspect(token).await?;
        validated.require(requirement)?;
        Ok(validated)
    }

    /// One introspection call, retrying only connections that could not be established.
    async fn ask(&self, token: &str) -> Result<Answer, Unavailable> {
        let inner = &*self.inner;
        let mut attempt = 0;
        loop {
            let request = inner.http.post(inner.endpoint.clone()).header(
                header::ACCEPT,
                match inner.signed {
                    Some(_) => SignedAnswers::accept(),
                    None => HeaderValue::from_static("application/json"),
                },
            );
            let sent = inner
                .credentials
                .attach(
                    request,
                    &[("token", token), ("token_type_hint", "access_token")],
                )?
                .send()
                .await;
            match sent {
                Ok(response) => return self.read(response, token).await,
                Err(err) if err.is_connect() && attempt < inner.retries => {
                    let delay = inner.retry_backoff.saturating_mul(1 << attempt.min(16));
                    attempt += 1;
                    tracing::debug!(error = %err, attempt, ?delay, "cannot connect to Umbra; retrying");
                    tokio::time::sleep(delay).await;
                }
                Err(err) => return Err(Unavailable::Unreachable(err)),
            }
        }
    }

    async fn read(&self, response: reqwest::Response, token: &str) -> Result<Answer, Unavailable> {
        let status = response.status();
        match status {
            StatusCode::OK => {}
            // Umbra answers any token it can read by its rules; refusing the request itself
            // (400, or 413 for a body over its limit) says the token is not one it knows.
            // An outage it is not: that would turn every garbage token into a 503.
            StatusCode::BAD_REQUEST | StatusCode::PAYLOAD_TOO_LARGE => {
                tracing::debug!(%status, "Umbra refused the introspection request; the token is not active");
                return Ok(Answer::default());
            }
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                return Err(Unavailable::CredentialsRefused(status.as_u16()));
            }
            StatusCode::NOT_ACCEPTABLE if self.inner.signed.is_some() => {
                return Err(Unavailable::Unverified(
                    "Umbra does not sign answers for this client (HTTP 406): register it with \
                     `umbra client introspection-signing <client_id> RS256`"
                        .to_owned(),
                ));
            }
            s if s.is_server_error() => return Err(Unavailable::ServerError(s.as_u16())),
            s => return Err(Unavailable::UnexpectedStatus(s.as_u16())),
        }
        if let Some(signed) = &self.inner.signed {
            SignedAnswers::check_content_type(&response)?;
            let body = read_limited(response, MAX_ANSWER_BYTES).await?;
            return signed.verify(&body, token, clock::now()).await;
        }
        let body = read_limited(response, MAX_ANSWER_BYTES).await?;
        serde_json::from_slice(&body).map_err(|err| Unavailable::InvalidAnswer(err.to_string()))
    }
}

impl Introspector {
    /// Logs why a token could not be checked, once per refused request: an outage as a
    /// warning, a configuration or protocol problem (which will not heal by itself) as an
    /// error.
    fn log_unavailable(&self, err: &Unavailable) {
        let inner = &*self.inner;
        match err {
            Unavailable::Unreachable(_) | Unavailable::ServerError(_) => tracing::warn!(
                error = %err,
                endpoint = %inner.endpoint,
                "cannot introspect a token: Umbra is unavailable; refusing the request"
            ),
            _ => tracing::error!(
                error = %err,
                endpoint = %inner.endpoint,
                client_id = %inner.client_id,
                "cannot introspect a token; refusing the request"
            ),
        }
    }
}

impl fmt::Debug for Introspector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Introspector")
            .field("endpoint", &self.inner.endpoint.as_str())
            .field("client_id", &self.inner.client_id)
            .field("retries", &self.inner.retries)
            .field("expected", &self.inner.expected)
            .finish_non_exhaustive()
    }
}

impl IntrospectorBuilder {
    /// How long to wait for a TCP (and TLS) connection. Default 2 s.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// How long a whole introspection call may take, connection included. Default 5 s.
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// How many times a connection that could not be established is retried, waiting
    /// `backoff`, then twice that, and so on. Default 2 retries from 50 ms. An HTTP answer is
    /// never retried.
    pub fn retries(mut self, retries: u32, backoff: Duration) -> Self {
        self.retries = retries;
        self.retry_backoff = backoff;
        self
    }

    /// Idle connections kept per host. Default 32.
    pub fn pool_max_idle_per_host(mut self, max: usize) -> Self {
        self.pool_max_idle_per_host = max;
        self
    }

    /// Caches active answers (off by default). `settings.ttl` is the longest a revoked token
    /// is still accepted; an entry never outlives the token's `exp`. Keep it small: seconds.
    pub fn cache(mut self, settings: CacheSettings) -> Self {
        self.positive = Some(settings);
        self
    }

    /// The guard protects the resource (API) with this identifier: an active answer whose
    /// `aud` does not name it, or that has no `aud`, is refused with 401 `invalid_token`
    /// ([`GuardError::NotForThisResource`]). Give the identifier exactly as it is registered
    /// with Umbra (`umbra resource create`): an absolute URI without fragment (RFC 8707 §2),
    /// compared as a string. Call it again for an API known by several identifiers: any one
    /// of them will do.
    ///
    /// RFC 9700 §2.3: "The resource server MUST verify that the access token was issued for
    /// it." Umbra tells a resource server that a token for another resource is inactive; this
    /// check also refuses tokens issued without an audience, which Umbra shows to every
    /// resource server unless `introspection.require_audience` is set.
    pub fn resource(mut self, resource: impl Into<String>) -> Self {
        self.resources.push(resource.into());
        self
    }

    /// The issuer identifier of the Umbra this guard trusts (its `server.issuer` setting,
    /// e.g. `https://auth.example.com`): an answer whose `iss` is missing or different is
    /// refused with 401 `invalid_token` ([`GuardError::WrongIssuer`]) and a warning is
    /// logged, since it means a misconfiguration or the wrong server. Compared as a string.
    pub fn issuer(mut self, issuer: impl Into<String>) -> Self {
        self.issuer = Some(issuer.into());
        self
    }

    /// Asks Umbra for signed answers (RFC 9701, `Accept: application/token-introspection+jwt`)
    /// and accepts only those that verify against Umbra's JWKS (`<umbra>/jwks.json`, fetched
    /// when needed and cached): the `typ` `token-introspection+jwt`, an `alg` Umbra signs with
    /// (never `none` or `HS*`), `aud` = this resource server's client id, `iss` = the
    /// [`issuer`](Self::issuer) when set, `iat` within a minute of the local clock, and for an
    /// active answer the `jti` of the token asked about. Anything else is
    /// [`Unavailable::Unverified`] (503): the request is refused. The resource server must be
    /// registered for them (`umbra client introspection-signing <client_id> RS256`).
    pub fn signed_answers(mut self) -> Self {
        self.signed_answers = true;
        self
    }

    /// Makes the positive [`cache`](Self::cache) follow Umbra's revocation stream
    /// (`GET <umbra>/revocations`): a background task keeps it open and drops a cached answer
    /// as soon as its token, its grant, its user or its client changes at Umbra, so a revoked
    /// token is refused at its next request (within the time Umbra takes to read its change
    /// log, 200 ms by default) rather than after the cache lifetime. While the stream is down,
    /// or silent for three times `heartbeat` (give Umbra's `revocations.heartbeat_secs`), the
    /// cache is bypassed and every request introspects. Needs the positive cache, client
    /// secret credentials, and [`build`](Self::build) called inside a Tokio runtime (the task
    /// stops when the last clone of the introspector is dropped).
    pub fn revocation_stream(mut self, heartbeat: Duration) -> Self {
        self.revocation_heartbeat = Some(heartbeat);
        self
    }

    /// Caches refusals that asking again would repeat (off by default): inactive tokens and
    /// tokens for another resource, sparing Umbra a client that retries a dead token in a
    /// loop. A short lifetime suffices.
    pub fn negative_cache(mut self, settings: CacheSettings) -> Self {
        self.negative = Some(settings);
        self
    }

    /// Checks the configuration and builds the introspector.
    pub fn build(self) -> Result<Introspector, BuildError> {
        let endpoint = introspection_endpoint(&self.base_url)?;
        let issuer = self.issuer.clone();
        let credentials = match self.private_key {
            _ if self.client_id.is_empty() => return Err(BuildError::EmptyCredentials),
            Some(key) => Credentials::PrivateKeyJwt {
                key,
                client_id: self.client_id.clone(),
                audience: endpoint.to_string(),
            },
            None if self.client_secret.expose_secret().is_empty() => {
                return Err(BuildError::EmptyCredentials);
            }
            None => Credentials::Basic(basic_authorization(&self.client_id, &self.client_secret)?),
        };
        let expected = Expected::new(self.resources, self.issuer)?;
        crate::ensure_tls_provider();
        let caches = Caches::new(self.positive, self.negative);
        let revocations = match self.revocation_heartbeat {
            None => None,
            Some(heartbeat) => {
                let Credentials::Basic(authorization) = &credentials else {
                    return Err(BuildError::RevocationStream);
                };
                if self.positive.is_none() {
                    return Err(BuildError::RevocationStream);
                }
                // Without the request timeout, which would cut the stream.
                let stream_http = reqwest::Client::builder()
                    .connect_timeout(self.connect_timeout)
                    .redirect(reqwest::redirect::Policy::none())
                    .user_agent(concat!("umbra-guard/", env!("CARGO_PKG_VERSION")))
                    .build()
                    .map_err(BuildError::Http)?;
                Some(
                    Subscription::start(
                        stream_http,
                        umbra_endpoint(&self.base_url, "revocations")?,
                        authorization.clone(),
                        heartbeat,
                        caches.clone(),
                    )
                    .map_err(|_| BuildError::RevocationStream)?,
                )
            }
        };
        let http = reqwest::Client::builder()
            .connect_timeout(self.connect_timeout)
            .timeout(self.request_timeout)
            .pool_max_idle_per_host(self.pool_max_idle_per_host)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("umbra-guard/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(BuildError::Http)?;
        let signed = if self.signed_answers {
            Some(SignedAnswers::new(
                http.clone(),
                &endpoint,
                self.client_id.clone(),
                issuer,
            )?)
        } else {
            None
        };
        Ok(Introspector {
            inner: Arc::new(Inner {
                http,
                endpoint,
                client_id: self.client_id,
                credentials,
                retries: self.retries,
                retry_backoff: self.retry_backoff,
                expected,
                caches,
                signed,
                revocations,
            }),
        })
    }
}

impl fmt::Debug for IntrospectorBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IntrospectorBuilder")
            .field("base_url", &self.base_url)
            .field("client_id", &self.client_id)
            .field("resources", &self.resources)
            .field("issuer", &self.issuer)
            .field("signed_answers", &self.signed_answers)
            .finish_non_exhaustive()
    }
}

/// `<base>/introspect`, for an http(s) base URL without query or fragment.
fn introspection_endpoint(base: &str) -> Result<Url, BuildError> {
    umbra_endpoint(base, "introspect")
}

/// `<base>/<name>`, for an http(s) base URL without query or fragment.
fn umbra_endpoint(base: &str, name: &str) -> Result<Url, BuildError> {
    let invalid = |reason: &str| BuildError::Url {
        url: base.to_owned(),
        reason: reason.to_owned(),
    };
    let url = Url::parse(base).map_err(|err| invalid(&err.to_string()))?;
    match url.scheme() {
        "http" => {}
        "https" if cfg!(feature = "rustls") => {}
        "https" => return Err(invalid("https needs the `rustls` feature of umbra-guard")),
        _ => return Err(invalid("the scheme must be http or https")),
    }
    if url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() {
        return Err(invalid(
            "give the base URL, without credentials, query or fragment",
        ));
    }
    let joined = format!("{}/{name}", url.as_str().trim_end_matches('/'));
    Url::parse(&joined).map_err(|err| invalid(&err.to_string()))
}

/// `Basic base64(urlencode(id) ":" urlencode(secret))` (RFC 6749 §2.3.1).
fn basic_authorization(client_id: &str, secret: &SecretString) -> Result<HeaderValue, BuildError> {
    let credentials = format!(
        "{}:{}",
        form_urlencode(client_id),
        form_urlencode(secret.expose_secret())
    );
    let mut value = HeaderValue::try_from(format!("Basic {}", STANDARD.encode(credentials)))
        .map_err(|_| BuildError::EmptyCredentials)?;
    value.set_sensitive(true);
    Ok(value)
}

/// `application/x-www-form-urlencoded` encoding of one value.
fn form_urlencode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => {
                out.push(char::from(byte));
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

pub(crate) async fn read_limited(
    mut response: reqwest::Response,
    limit: usize,
) -> Result<Vec<u8>, Unavailable> {
    let too_large = || Unavailable::InvalidAnswer(format!("the answer exceeds {limit} bytes"));
    if response.content_length().is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(Unavailable::Unreachable)? {
        if body.len() + chunk.len() > limit {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_endpoint_is_the_base_url_plus_introspect() {
        for base in ["http://umbra:8080", "http://umbra:8080/"] {
            assert_eq!(
                introspection_endpoint(base).unwrap().as_str(),
                "http://umbra:8080/introspect"
            );
        }
        assert_eq!(
            introspection_endpoint("http://auth.example.com/umbra/")
                .unwrap()
                .as_str(),
            "http://auth.example.com/umbra/introspect"
        );
    }

    #[test]
    fn https_needs_the_rustls_feature() {
        let endpoint = introspection_endpoint("https://auth.example.com");
        if cfg!(feature = "rustls") {
            assert_eq!(
                endpoint.unwrap().as_str(),
                "https://auth.example.com/introspect"
            );
        } else {
            assert!(
                endpoint
                    .unwrap_err()
                    .to_string()
                    .contains("`rustls` feature")
            );
        }
    }

    #[test]
    fn unusable_urls_are_refused() {
        for base in [
            "umbra:8080",
            "ftp://umbra",
            "http://umbra/?x=1",
            "http://user:pw@umbra",
            "",
        ] {
            assert!(introspection_endpoint(base).is_err(), "{base:?}");
        }
    }

    #[test]
    fn basic_credentials_are_form_encoded_first() {
        assert_eq!(form_urlencode("svc-1.a_b"), "svc-1.a_b");
        assert_eq!(form_urlencode("a b:c/é"), "a+b%3Ac%2F%C3%A9");
        let value = basic_authorization("id", &SecretString::from("s:ecret")).unwrap();
        assert!(value.is_sensitive());
        assert_eq!(
            value.to_str().unwrap(),
            format!("Basic {}", STANDARD.encode("id:s%3Aecret"))
        );
    }

    #[test]
    fn empty_credentials_are_refused() {
        let built = Introspector::builder("http://umbra", "", "secret").build();
        assert!(matches!(built, Err(BuildError::EmptyCredentials)));
    }

    #[test]
    fn a_resource_that_is_not_an_absolute_uri_without_fragment_is_refused() {
        for resource in ["orders", "https://orders.example.com#api", ""] {
            let built = Introspector::builder("http://umbra", "rs", "cs")
                .resource("https://ok.example.com")
                .resource(resource)
                .build();
            match built {
                Err(err @ BuildError::Resource { .. }) => {
                    assert!(err.to_string().contains("absolute URI"), "{err}");
                }
                other => panic!("{resource:?}: {other:?}"),
            }
        }
        assert!(
            Introspector::builder("http://umbra", "rs", "cs")
                .resource("https://orders.example.com/api?v=2")
                .build()
                .is_ok()
        );
    }

    #[test]
    fn an_empty_issuer_is_refused() {
        let built = Introspector::builder("http://umbra", "rs", "cs")
            .issuer("")
            .build();
        assert!(matches!(built, Err(BuildError::Issuer { .. })), "{built:?}");
    }

    #[test]
    fn the_debug_output_carries_no_secret() {
        let introspector = Introspector::builder("http://umbra", "rs", "cs_very_secret")
            .build()
            .unwrap();
        let shown = format!("{introspector:?}");
        assert!(
            shown.contains("rs") && !shown.contains("very_secret"),
            "{shown}"
        );
    }
}
