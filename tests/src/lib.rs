//! Test support: the real Umbra application on 127.0.0.1:0 against a fresh database (a SQLite
//! file, or a Postgres database created for the test and dropped after it), and an HTTP
//! client that speaks to it.
//!
//! Postgres tests run when `TEST_DATABASE_URL` points at a server (any database on it; each
//! test creates its own). Under `CI` a missing `TEST_DATABASE_URL` fails the test instead of
//! skipping it.
mod browser;
mod database;
mod sender;

pub use browser::{
    Browser, ConsentForm, Pkce, hidden_field, location, query_param, shown_totp_secret,
};
pub use database::{Backend, TestDatabase};
pub use sender::{Captured, CapturingSender};

use reqwest::{Response, StatusCode};
use std::sync::Arc;
use umbra::auth::password::Passwords;
use umbra::keys::SigningAlg;
use umbra::oauth::client::{Client, OpenIdRegistration};
use umbra::oauth::grant_type::GrantType;
use umbra::oauth::scope::ScopeSet;
use umbra::oauth::token::{Token, TokenKind};
use umbra::settings::Settings;
use umbra::startup::Application;
use umbra::store::{self, Store, User};

/// The redirect URI of [`TestApp::web_app`] clients.
pub const REDIRECT_URI: &str = "https://app.example/callback";

/// A running Umbra and what a test needs to talk to it and look into its database.
pub struct TestApp {
    pub address: String,
    /// The metrics listener, e.g. `http://127.0.0.1:PORT`.
    pub metrics_address: String,
    /// The admin API listener, e.g. `http://127.0.0.1:PORT`.
    pub admin_address: String,
    pub http: reqwest::Client,
    /// A second handle on the same database, for arranging state and asserting on rows.
    pub store: Store,
    pub settings: Arc<Settings>,
    pub backend: Backend,
    pub database: TestDatabase,
    /// Every one-time code the app sent.
    pub sender: CapturingSender,
}

/// Credentials of a registered client.
#[derive(Clone, Debug)]
pub struct TestClient {
    pub id: String,
    pub secret: Option<String>,
    pub record: Client,
}

impl TestApp {
    /// Starts the app on `backend`, or returns `None` for Postgres when no test server is
    /// configured outside CI.
    pub async fn spawn(backend: Backend) -> Option<Self> {
        Self::spawn_with(backend, |_| {}).await
    }

    pub async fn spawn_with(
        backend: Backend,
        configure: impl FnOnce(&mut Settings),
    ) -> Option<Self> {
        umbra::sender::install_crypto_provider();
        let database = TestDatabase::create(backend).await?;
        let mut settings = Settings::built_in().expect("built-in settings");
        settings.server.port = 0;
        settings.server.workers = 2;
        settings.database.url = database.url().to_owned();
        settings.cleanup.interval_secs = 0;
        settings.metrics.port = 0;
        settings.admin.port = 0;
        // Cheap hashes keep the suite fast; production parameters are tested in unit tests.
        settings.passwords.argon2_memory_kib = 1024;
        settings.passwords.argon2_iterations = 1;
        configure(&mut settings);
        Some(Self::start(settings, backend, database, CapturingSender::default()).await)
    }

    /// A second instance on the same database with the same settings (its own ports, the
    /// same issuer, as behind a load balancer), sharing this one's captured codes. The
    /// database stays this app's: it is dropped when this app is.
    pub async fn spawn_sibling(&self) -> TestApp {
        let database = self.database.alias();
        Self::start(
            Settings::clone(&self.settings),
            self.backend,
            database,
            self.sender.clone(),
        )
        .await
    }

    async fn start(
        settings: Settings,
        backend: Backend,
        database: TestDatabase,
        sender: CapturingSender,
    ) -> Self {
        let application = Application::build_with(settings.clone(), Arc::new(sender.clone()))
            .await
            .expect("application starts");
        let address = format!("http://127.0.0.1:{}", application.port());
        let metrics_address = format!(
            "http://127.0.0.1:{}",
            application.metrics_port().unwrap_or(0)
        );
        let admin_address = format!("http://127.0.0.1:{}", application.admin_port().unwrap_or(0));
        // The settings in force: an unset issuer is the listener's URL.
        let settings = Settings::clone(&application.settings());
        tokio::spawn(application.run_until_stopped());
        let store = Store::new(
            store::connect(&settings.database)
                .await
                .expect("test connection"),
        );
        umbra::sender::install_crypto_provider();
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .cookie_store(true)
            .build()
            .expect("http client");
        Self {
            address,
            metrics_address,
            admin_address,
            http,
            store,
            settings: Arc::new(settings),
            backend,
            database,
            sender,
        }
    }

    /// Starts another instance of Umbra on this app's database with its settings (on ports
    /// of its own), as a second replica behind a load balancer would run; returns its address
    /// and its metrics address. It serves until the test ends.
    pub async fn another_instance(&self) -> (String, String) {
        let mut settings = Settings::clone(&self.settings);
        settings.server.port = 0;
        settings.metrics.port = 0;
        settings.admin.port = 0;
        let application = Application::build_with(settings, Arc::new(self.sender.clone()))
            .await
            .expect("another instance starts");
        let address = format!("http://127.0.0.1:{}", application.port());
        let metrics = format!(
            "http://127.0.0.1:{}",
            application.metrics_port().unwrap_or(0)
        );
        tokio::spawn(application.run_until_stopped());
        (address, metrics)
    }

    /// What the metrics listener shows now, in the Prometheus text format.
    pub async fn metrics(&self) -> String {
        let response = self
            .http
            .get(format!("{}/metrics", self.metrics_address))
            .send()
            .await
            .expect("GET /metrics");
        response.text().await.expect("a metrics body")
    }

    /// The JSON body of `GET path`, whatever the status.
    pub async fn get_json(&self, path: &str) -> serde_json::Value {
        let response = self.http.get(self.url(path)).send().await.expect("GET");
        response.json().await.expect("a JSON body")
    }

    /// A request to the admin API listener at `path`, with `token` as the bearer if any.
    pub fn admin(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
    ) -> reqwest::RequestBuilder {
        let request = self
            .http
            .request(method, format!("{}{path}", self.admin_address));
        match token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }

    /// A client allowed the admin scope, and a token of it (client_credentials).
    pub async fn admin_client(&self) -> (TestClient, String) {
        let client = self.service_client("umbra:admin").await;
        let token = self.issue_token(&client).await;
        (client, token)
    }

    /// How many audit events named `event` (e.g. `login.failed`) are recorded.
    pub async fn audit_count(&self, event: &str) -> usize {
        let records = self.store.list_audit(None, 1000).await.expect("audit list");
        records.iter().filter(|e| e.event == event).count()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    /// Registers a confidential client allowed `client_credentials` with `scopes`.
    pub async fn service_client(&self, scopes: &str) -> TestClient {
        self.register(ClientSpec {
            scopes,
            ..ClientSpec::default()
        })
        .await
    }

    /// Registers a confidential resource server allowed to introspect.
    pub async fn resource_server(&self) -> TestClient {
        self.register(ClientSpec {
            introspect: true,
            ..ClientSpec::default()
        })
        .await
    }

    /// Registers a resource server allowed to introspect that gets signed answers (RFC 9701)
    /// in `alg` when it asks for them.
    pub async fn signed_resource_server(&self, alg: SigningAlg) -> TestClient {
        self.register(ClientSpec {
            introspect: true,
            introspection_signed_response_alg: Some(alg),
            ..ClientSpec::default()
        })
        .await
    }

    /// Creates a signing key of `alg` that signs at once, as `umbra keys rotate --alg … --now`
    /// does (the running app re-reads its keys when it has none of `alg`, and every
    /// `keys.refresh_secs`); returns its kid.
    pub async fn rotate_signing_key(&self, alg: SigningAlg) -> String {
        let (sealer, policy) = umbra::startup::key_parts(&self.settings).unwrap();
        umbra::keys::rotate(
            &self.store,
            &sealer,
            &policy,
            alg,
            true,
            umbra::clock::now(),
        )
        .await
        .expect("a key is made")
        .kid
    }

    pub async fn register(&self, spec: ClientSpec<'_>) -> TestClient {
        let secret = (!spec.public).then(|| Token::generate(TokenKind::ClientSecret).unwrap());
        let id = format!("client-{}", uuid::Uuid::new_v4().simple());
        let record = self
            .store
            .create_client(
                Client {
                    id: id.clone(),
                    name: "Test client".into(),
                    secret_hash: secret.as_ref().map(Token::hash),
                    redirect_uris: spec.redirect_uris.iter().map(|s| s.to_string()).collect(),
                    grant_types: spec.grant_types.to_vec(),
                    scopes: ScopeSet::parse(spec.scopes).unwrap(),
                    can_introspect: spec.introspect,
                    skip_consent: spec.skip_consent,
                    require_2fa: spec.require_2fa,
                    assertion_keys: None,
                    resources: Default::default(),
                    introspection_signed_response_alg: spec.introspection_signed_response_alg,
                    version: 1,
                    secret_expires_at: None,
                    openid: OpenIdRegistration {
                        id_token_alg: spec.id_token_alg,
                        post_logout_redirect_uris: spec
                            .post_logout_redirect_uris
                            .iter()
                            .map(|s| s.to_string())
                            .collect(),
                    },
                },
                umbra::clock::now(),
            )
            .await
            .expect("client registered");
        TestClient {
            id,
            secret: secret.map(Token::into_string),
            record,
        }
    }

    /// Registers a web application using the authorization code flow with `redirect_uri`,
    /// scopes `read write`; public (PKCE, no secret) or confidential.
    pub async fn web_app(&self, public: bool) -> TestClient {
        self.register(ClientSpec {
            public,
            scopes: "read write",
            grant_types: &[GrantType::AuthorizationCode, GrantType::RefreshToken],
            redirect_uris: &[REDIRECT_URI],
            ..ClientSpec::default()
        })
        .await
    }

    /// A public app allowed `read` and `account` (the enrolment API), with the code flow.
    pub async fn account_app(&self) -> TestClient {
        self.register(ClientSpec {
            public: true,
            scopes: "read account",
            grant_types: &[GrantType::AuthorizationCode, GrantType::RefreshToken],
            redirect_uris: &[REDIRECT_URI],
            ..ClientSpec::default()
        })
        .await
    }

    /// Registers a resource (RFC 8707) defining `scopes`, whose tokens `introspectors` may
    /// introspect.
    pub async fn create_resource(
        &self,
        identifier: &str,
        scopes: &str,
        introspectors: &[&TestClient],
    ) {
        self.store
            .create_resource(
                &store::Resource {
                    identifier: identifier.to_owned(),
                    name: identifier.to_owned(),
                    scopes: ScopeSet::parse(scopes).unwrap(),
                    introspectors: introspectors.iter().map(|c| c.id.clone()).collect(),
                    clients: Vec::new(),
                    version: 1,
                },
                umbra::clock::now(),
            )
            .await
            .expect("resource registered");
    }

    /// Lets `client` ask tokens for `resource` with `scopes` (`None`: every scope it defines).
    pub async fn allow_resource(&self, client: &TestClient, resource: &str, scopes: Option<&str>) {
        let scopes = scopes.map(|s| ScopeSet::parse(s).unwrap());
        self.store
            .allow_client_resource(&client.id, resource, scopes.as_ref())
            .await
            .expect("resource allowed");
    }

    /// Creates a user with `password`.
    pub async fn create_user(&self, username: &str, password: &str) -> User {
        let passwords = Passwords::new(&self.settings.passwords).unwrap();
        self.store
            .create_user(
                username,
                passwords.hash(password).unwrap(),
                umbra::clock::now(),
            )
            .await
            .unwrap()
    }

    /// Enrols and enables an authenticator for `user` as `umbra user totp enroll` does;
    /// returns the base32 secret and the recovery codes.
    pub async fn enroll_totp(&self, user: &User) -> (String, Vec<String>) {
        let service = umbra::startup::second_factor(
            &self.settings,
            self.store.clone(),
            Arc::new(self.sender.clone()),
        )
        .unwrap();
        let (enrolment, enabled) = service
            .enroll_totp_directly(user, umbra::clock::now())
            .await
            .unwrap();
        (enrolment.secret, enabled.recovery_codes.unwrap_or_default())
    }

    /// Runs the front channel for `scope` and exchanges the code: the access token.
    pub async fn user_access_token(
        &self,
        client: &TestClient,
        username: &str,
        password: &str,
        scope: &str,
    ) -> String {
        let browser = self.browser();
        let pkce = Pkce::new();
        let response = browser
            .authorize(client, &pkce, &format!("&scope={scope}&state=s"))
            .await;
        assert_eq!(location(&response), "/login");
        let mut response = browser.sign_in(username, password).await;
        if location(&response) == "/consent" {
            response = browser.consent("approve").await;
        }
        let code = query_param(&location(&response), "code").expect("a code");
        let response = self.exchange_code(client, &code, &pkce.verifier).await;
        assert_eq!(response.status(), StatusCode::OK);
        let body: serde_json::Value = response.json().await.unwrap();
        body["access_token"].as_str().unwrap().to_owned()
    }

    /// A new browser: its own cookie jar, redirects not followed.
    pub fn browser(&self) -> Browser {
        Browser::new(&self.address)
    }

    /// Runs the whole front channel in `browser` (authorize, sign in, approve) and returns
    /// the authorization code.
    pub async fn authorization_code(
        &self,
        browser: &Browser,
        client: &TestClient,
        pkce: &Pkce,
        username: &str,
        password: &str,
    ) -> String {
        let response = browser
            .authorize(client, pkce, "&scope=read+write&state=s1")
            .await;
        assert_eq!(location(&response), "/login");
        let mut response = browser.sign_in(username, password).await;
        // A consent remembered from an earlier run skips the page.
        if location(&response) == "/consent" {
            response = browser.consent("approve").await;
        }
        let to = location(&response);
        assert!(to.starts_with(REDIRECT_URI), "{to}");
        query_param(&to, "code").expect("a code")
    }

    /// `POST /token` with `grant_type=authorization_code` as `client` would send it.
    pub async fn exchange_code(&self, client: &TestClient, code: &str, verifier: &str) -> Response {
        let mut form = vec![
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT_URI),
            ("code_verifier", verifier),
        ];
        self.post_as(client, &mut form).await
    }

    /// `POST /token` with `grant_type=refresh_token`.
    pub async fn refresh(
        &self,
        client: &TestClient,
        refresh_token: &str,
        scope: Option<&str>,
    ) -> Response {
        let mut form = vec![
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
        ];
        if let Some(scope) = scope {
            form.push(("scope", scope));
        }
        self.post_as(client, &mut form).await
    }

    /// Posts to /token authenticating as the client does: Basic for confidential clients,
    /// `client_id` in the body for public ones.
    async fn post_as<'a>(
        &self,
        client: &'a TestClient,
        form: &mut Vec<(&'a str, &'a str)>,
    ) -> Response {
        if client.secret.is_some() {
            self.post_token(Some(client), form).await
        } else {
            form.push(("client_id", &client.id));
            self.post_token(None, form).await
        }
    }

    /// `POST /token` with a form body, authenticating with HTTP Basic when `client` is given.
    pub async fn post_token(&self, client: Option<&TestClient>, form: &[(&str, &str)]) -> Response {
        self.post_form("/token", client, form).await
    }

    pub async fn introspect(&self, caller: &TestClient, token: &str) -> Response {
        self.post_form("/introspect", Some(caller), &[("token", token)])
            .await
    }

    pub async fn revoke(&self, client: &TestClient, token: &str) -> Response {
        self.post_form("/revoke", Some(client), &[("token", token)])
            .await
    }

    pub async fn post_form(
        &self,
        path: &str,
        client: Option<&TestClient>,
        form: &[(&str, &str)],
    ) -> Response {
        let mut request = self.http.post(self.url(path)).form(form);
        if let Some(client) = client {
            request = request.basic_auth(&client.id, client.secret.as_deref());
        }
        request.send().await.expect("request sent")
    }

    /// `POST path` with a raw body and content type, no authentication.
    pub async fn post_raw(
        &self,
        path: &str,
        content_type: &str,
        body: impl Into<reqwest::Body>,
    ) -> Response {
        self.http
            .post(self.url(path))
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .expect("request sent")
    }

    /// Issues a client_credentials token and returns its string.
    pub async fn issue_token(&self, client: &TestClient) -> String {
        let response = self
            .post_token(Some(client), &[("grant_type", "client_credentials")])
            .await;
        assert_eq!(response.status(), StatusCode::OK);
        let body: serde_json::Value = response.json().await.unwrap();
        body["access_token"].as_str().unwrap().to_owned()
    }

    /// Issues a client_credentials token for `resource` (RFC 8707) and returns its string.
    pub async fn issue_token_for(&self, client: &TestClient, resource: &str) -> String {
        let response = self
            .post_token(
                Some(client),
                &[("grant_type", "client_credentials"), ("resource", resource)],
            )
            .await;
        assert_eq!(response.status(), StatusCode::OK);
        let body: serde_json::Value = response.json().await.unwrap();
        body["access_token"].as_str().unwrap().to_owned()
    }

    /// An initial access token for `POST /register` (RFC 7591 §3), good for `max_uses`
    /// registrations during `lifetime_secs` (zero or less: expired already).
    pub async fn initial_access_token(&self, max_uses: i32, lifetime_secs: i64) -> String {
        let token = Token::generate(TokenKind::InitialAccessToken).unwrap();
        let now = umbra::clock::now();
        self.store
            .create_initial_access_token(&token.hash(), None, max_uses, now + lifetime_secs, now)
            .await
            .expect("initial access token stored");
        token.into_string()
    }

    /// `POST /register` with `metadata` as JSON, with `Authorization: Bearer <token>` when
    /// a token is given.
    pub async fn post_register(
        &self,
        token: Option<&str>,
        metadata: &serde_json::Value,
    ) -> Response {
        let mut request = self.http.post(self.url("/register")).json(metadata);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.expect("request sent")
    }

    /// The client a successful registration response describes, with its secret.
    pub async fn registered_client(&self, registration: &serde_json::Value) -> TestClient {
        let id = registration["client_id"]
            .as_str()
            .expect("a client_id")
            .to_owned();
        let record = self
            .store
            .find_client(&id)
            .await
            .unwrap()
            .expect("the client is stored");
        TestClient {
            id,
            secret: registration["client_secret"].as_str().map(str::to_owned),
            record,
        }
    }

    /// The introspection answer for `token`, asserting the call itself succeeded.
    pub async fn introspection_of(&self, caller: &TestClient, token: &str) -> serde_json::Value {
        let response = self.introspect(caller, token).await;
        assert_eq!(response.status(), StatusCode::OK);
        response.json().await.unwrap()
    }
}

/// What to register; defaults to a confidential client_credentials client with no scopes.
pub struct ClientSpec<'a> {
    pub public: bool,
    pub scopes: &'a str,
    pub grant_types: &'a [GrantType],
    pub redirect_uris: &'a [&'a str],
    pub introspect: bool,
    pub skip_consent: bool,
    pub require_2fa: bool,
    /// Signed introspection answers (RFC 9701) in this algorithm.
    pub introspection_signed_response_alg: Option<SigningAlg>,
    /// OpenID Connect: the algorithm of its ID tokens (`None`: the server's default).
    pub id_token_alg: Option<SigningAlg>,
    pub post_logout_redirect_uris: &'a [&'a str],
}

impl Default for ClientSpec<'_> {
    fn default() -> Self {
        Self {
            public: false,
            scopes: "",
            grant_types: &[GrantType::ClientCredentials],
            redirect_uris: &[],
            introspect: false,
            skip_consent: false,
            require_2fa: false,
            introspection_signed_response_alg: None,
            id_token_alg: None,
            post_logout_redirect_uris: &[],
        }
    }
}

/// The HTTP seam of the `oauth2` and `openidconnect` crates, served by reqwest (redirects are
/// the caller's `http` client's business).
pub async fn oauth2_http(
    http: reqwest::Client,
    request: oauth2::HttpRequest,
) -> Result<oauth2::HttpResponse, reqwest::Error> {
    let (parts, body) = request.into_parts();
    let response = http
        .request(parts.method, parts.uri.to_string())
        .headers(parts.headers)
        .body(body)
        .send()
        .await?;
    let mut builder = http::Response::builder().status(response.status());
    for (name, value) in response.headers() {
        builder = builder.header(name, value);
    }
    Ok(builder
        .body(response.bytes().await?.to_vec())
        .expect("a response"))
}

/// Reads an OAuth error body and checks its code.
pub async fn assert_oauth_error(
    response: Response,
    status: StatusCode,
    code: &str,
) -> serde_json::Value {
    assert_eq!(response.status(), status, "status for {code}");
    let body: serde_json::Value = response.json().await.expect("a JSON error body");
    assert_eq!(body["error"], code, "body: {body}");
    assert!(body["error_description"].is_string(), "body: {body}");
    body
}

/// The TOTP code `offset` steps from now for a base32 `secret`, as an authenticator app
/// computes it (totp-rs, independently of Umbra's own code). Waits out the last two seconds
/// of a step so that the code is still current when the server checks it.
pub async fn totp_code(secret: &str, offset: i64) -> String {
    while umbra::clock::now() % 30 >= 28 {
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let secret = totp_rs::Secret::try_from_base32(secret).unwrap();
    let totp = totp_rs::Builder::new()
        .with_algorithm(totp_rs::Algorithm::SHA1)
        .with_digits(6)
        .with_step_duration(30)
        .with_secret(secret)
        .build()
        .unwrap();
    let time = u64::try_from(umbra::clock::now() + offset * 30).unwrap();
    totp.generate(time).to_string()
}

/// The value of one series in a Prometheus text exposition: `name` for an unlabelled metric,
/// `name{label="value"}` for a labelled one, written as the exporter writes it. `None` when the
/// series is absent.
pub fn metric_value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|value| value.trim().parse().ok())
}
