//! Test support: the real Umbra application on 127.0.0.1:0 against a fresh database (a SQLite
//! file, or a Postgres database created for the test and dropped after it), and an HTTP
//! client that speaks to it.
//!
//! Postgres tests run when `TEST_DATABASE_URL` points at a server (any database on it; each
//! test creates its own). Under `CI` a missing `TEST_DATABASE_URL` fails the test instead of
//! skipping it.
mod database;

pub use database::{Backend, TestDatabase};

use reqwest::{Response, StatusCode};
use std::sync::Arc;
use umbra::oauth::client::Client;
use umbra::oauth::grant_type::GrantType;
use umbra::oauth::scope::ScopeSet;
use umbra::oauth::token::{Token, TokenKind};
use umbra::settings::Settings;
use umbra::startup::Application;
use umbra::store::{self, NewClient, Store};

/// A running Umbra and what a test needs to talk to it and look into its database.
pub struct TestApp {
    pub address: String,
    pub http: reqwest::Client,
    /// A second handle on the same database, for arranging state and asserting on rows.
    pub store: Store,
    pub settings: Arc<Settings>,
    pub backend: Backend,
    pub database: TestDatabase,
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
        let database = TestDatabase::create(backend).await?;
        let mut settings = Settings::built_in().expect("built-in settings");
        settings.server.port = 0;
        settings.server.workers = 2;
        settings.database.url = database.url().to_owned();
        settings.cleanup.interval_secs = 0;
        configure(&mut settings);
        let application = Application::build(settings.clone())
            .await
            .expect("application starts");
        let address = format!("http://127.0.0.1:{}", application.port());
        tokio::spawn(application.run_until_stopped());
        let store = Store::new(
            store::connect(&settings.database)
                .await
                .expect("test connection"),
        );
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .cookie_store(true)
            .build()
            .expect("http client");
        Some(Self {
            address,
            http,
            store,
            settings: Arc::new(settings),
            backend,
            database,
        })
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

    pub async fn register(&self, spec: ClientSpec<'_>) -> TestClient {
        let secret = (!spec.public).then(|| Token::generate(TokenKind::ClientSecret).unwrap());
        let id = format!("client-{}", uuid::Uuid::new_v4().simple());
        let record = self
            .store
            .create_client(
                NewClient {
                    id: id.clone(),
                    name: "Test client".into(),
                    secret_hash: secret.as_ref().map(Token::hash),
                    redirect_uris: spec.redirect_uris.iter().map(|s| s.to_string()).collect(),
                    grant_types: spec.grant_types.to_vec(),
                    scopes: ScopeSet::parse(spec.scopes).unwrap(),
                    can_introspect: spec.introspect,
                    skip_consent: false,
                    require_2fa: false,
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
}

impl Default for ClientSpec<'_> {
    fn default() -> Self {
        Self {
            public: false,
            scopes: "",
            grant_types: &[GrantType::ClientCredentials],
            redirect_uris: &[],
            introspect: false,
        }
    }
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
