//! Test fixtures: Umbra with a resource-server client, a protected actix-web app, a fake
//! introspection endpoint, and a log capture.
use actix_web::{App, HttpResponse, HttpServer, web};
use serde_json::{Value, json};
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use umbra::keys::SigningAlg;
use umbra::settings::Settings;
use umbra_guard::{Introspector, IntrospectorBuilder, RequireScopes, ValidatedToken};
use umbra_tests::{Backend, TestApp, TestClient};

/// A running Umbra with one resource server allowed to introspect.
pub struct Umbra {
    pub app: TestApp,
    pub rs: TestClient,
}

impl Umbra {
    pub async fn start() -> Self {
        Self::on(Backend::Sqlite)
            .await
            .expect("SQLite is always available")
    }

    /// `None` for Postgres when `TEST_DATABASE_URL` is not set (outside CI).
    pub async fn on(backend: Backend) -> Option<Self> {
        let app = TestApp::spawn(backend).await?;
        let rs = app.resource_server().await;
        Some(Self { app, rs })
    }

    /// A running Umbra (on SQLite, with `configure` applied) whose resource server is
    /// registered for signed introspection answers in `alg`; a key of `alg` signs at once.
    pub async fn signed(alg: SigningAlg, configure: impl FnOnce(&mut Settings)) -> Self {
        let app = TestApp::spawn_with(Backend::Sqlite, configure)
            .await
            .expect("SQLite is always available");
        if alg != SigningAlg::Rs256 {
            app.rotate_signing_key(alg).await;
        }
        let rs = app.signed_resource_server(alg).await;
        Self { app, rs }
    }

    /// An introspector for this Umbra with the resource server's credentials.
    pub fn introspector(&self) -> IntrospectorBuilder {
        self.introspector_for(&self.rs)
    }

    /// An introspector for this Umbra with `rs`'s credentials.
    pub fn introspector_for(&self, rs: &TestClient) -> IntrospectorBuilder {
        Introspector::builder(
            self.app.address.clone(),
            rs.id.clone(),
            rs.secret.clone().expect("a confidential client"),
        )
    }

    /// A client_credentials token for a new client allowed `allowed`, asking for `scope`.
    pub async fn token(&self, allowed: &str, scope: &str) -> (TestClient, String) {
        let client = self.app.service_client(allowed).await;
        let response = self
            .app
            .post_token(
                Some(&client),
                &[("grant_type", "client_credentials"), ("scope", scope)],
            )
            .await;
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["scope"], scope);
        (client, body["access_token"].as_str().unwrap().to_owned())
    }
}

/// A protected actix-web app on a random port.
pub struct Api {
    pub url: String,
    pub http: reqwest::Client,
}

impl Api {
    /// Routes:
    /// - `/me`: the extractor alone (any active token);
    /// - `/read`: all of `read`; `/read-write`: all of `read write`;
    /// - `/read-or-admin`: any of `read admin`;
    /// - `/write-in-handler`: `token.require_all(["write"])?` inside the handler;
    /// - `/nested/write`: an authenticated scope wrapping a route that needs `write`.
    pub fn start(introspector: Option<Introspector>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let server = HttpServer::new(move || {
            let mut app = App::new();
            if let Some(introspector) = &introspector {
                app = app.app_data(introspector.clone());
            }
            app.route("/me", web::get().to(me))
                .route(
                    "/read",
                    web::get().to(me).wrap(RequireScopes::all(["read"])),
                )
                .route(
                    "/read-write",
                    web::get()
                        .to(me)
                        .wrap(RequireScopes::all(["read", "write"])),
                )
                .route(
                    "/read-or-admin",
                    web::get()
                        .to(me)
                        .wrap(RequireScopes::any(["read", "admin"])),
                )
                .route("/write-in-handler", web::get().to(write_in_handler))
                .service(
                    web::scope("/nested")
                        .wrap(RequireScopes::authenticated())
                        .route(
                            "/write",
                            web::get().to(me).wrap(RequireScopes::all(["write"])),
                        ),
                )
        })
        .workers(1)
        .disable_signals()
        .listen(listener)
        .unwrap()
        .run();
        tokio::spawn(server);
        umbra_guard::ensure_tls_provider();
        Self {
            url,
            http: reqwest::Client::new(),
        }
    }

    pub fn get(&self, path: &str) -> reqwest::RequestBuilder {
        self.http.get(format!("{}{path}", self.url))
    }

    pub async fn get_with(&self, path: &str, token: &str) -> reqwest::Response {
        self.get(path).bearer_auth(token).send().await.unwrap()
    }
}

async fn me(token: ValidatedToken) -> HttpResponse {
    HttpResponse::Ok().json(json!({
        "sub": token.sub,
        "user": token.is_user_token(),
        "username": token.username,
        "client_id": token.client_id,
        "scopes": token.scopes.to_string(),
        "exp": token.exp,
        "aud": token.aud,
        "iss": token.iss,
        "act": token.act,
        "actors": token.actors(),
    }))
}

async fn write_in_handler(token: ValidatedToken) -> Result<HttpResponse, umbra_guard::GuardError> {
    token.require_all(["write"])?;
    Ok(HttpResponse::Ok().finish())
}

/// Reads an RFC 6750 refusal: status, `WWW-Authenticate`, and the JSON `error`.
pub async fn refusal(response: reqwest::Response) -> (u16, Option<String>, String) {
    let status = response.status().as_u16();
    let challenge = response
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned());
    assert_eq!(response.headers()["cache-control"], "no-store");
    let body: Value = response.json().await.expect("a JSON error body");
    assert!(body["error_description"].is_string(), "{body}");
    (
        status,
        challenge,
        body["error"].as_str().unwrap().to_owned(),
    )
}

/// The resource identifier of the fake Umbra's tokens.
pub const NOTES: &str = "https://notes.example.test";
/// The fake Umbra's issuer identifier.
pub const ISSUER: &str = "http://umbra.test";

/// A stand-in for Umbra's `/introspect` (and `/jwks.json`) that answers what it is told and
/// counts calls.
pub struct FakeUmbra {
    pub url: String,
    state: Arc<FakeState>,
}

struct FakeState {
    hits: AtomicUsize,
    answer: Mutex<(u16, String, Duration)>,
    content_type: Mutex<&'static str>,
    last_request: Mutex<Option<(String, String)>>,
    last_accept: Mutex<Option<String>>,
    jwks: Mutex<Value>,
    jwks_hits: AtomicUsize,
}

impl FakeUmbra {
    /// Answers `{"active": false}` until told otherwise.
    pub fn start() -> Self {
        Self::listen(TcpListener::bind("127.0.0.1:0").unwrap())
    }

    pub fn start_on(port: u16) -> Self {
        Self::listen(TcpListener::bind(("127.0.0.1", port)).unwrap())
    }

    fn listen(listener: TcpListener) -> Self {
        let url = format!("http://{}", listener.local_addr().unwrap());
        let state = Arc::new(FakeState {
            hits: AtomicUsize::new(0),
            answer: Mutex::new((200, json!({"active": false}).to_string(), Duration::ZERO)),
            content_type: Mutex::new("application/json"),
            last_request: Mutex::new(None),
            last_accept: Mutex::new(None),
            jwks: Mutex::new(json!({"keys": []})),
            jwks_hits: AtomicUsize::new(0),
        });
        let data = web::Data::from(Arc::clone(&state));
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .route("/introspect", web::post().to(fake_introspect))
                .route("/jwks.json", web::get().to(fake_jwks))
        })
        .workers(1)
        .disable_signals()
        .listen(listener)
        .unwrap()
        .run();
        tokio::spawn(server);
        Self { url, state }
    }

    pub fn answer(&self, status: u16, body: Value) {
        self.answer_raw(status, &body.to_string());
    }

    pub fn answer_raw(&self, status: u16, body: &str) {
        self.answer_as(status, "application/json", body);
    }

    /// Answers 200 with `jwt` as a signed introspection answer (RFC 9701).
    pub fn answer_signed(&self, jwt: &str) {
        self.answer_as(200, "application/token-introspection+jwt", jwt);
    }

    fn answer_as(&self, status: u16, content_type: &'static str, body: &str) {
        let mut answer = self.state.answer.lock().unwrap();
        answer.0 = status;
        answer.1 = body.to_owned();
        *self.state.content_type.lock().unwrap() = content_type;
    }

    /// The `Accept` header of the last call.
    pub fn last_accept(&self) -> Option<String> {
        self.state.last_accept.lock().unwrap().clone()
    }

    /// Serves `jwks` at `/jwks.json` (`Value::Null`: 404).
    pub fn publish(&self, jwks: Value) {
        *self.state.jwks.lock().unwrap() = jwks;
    }

    /// How many times `/jwks.json` was fetched.
    pub fn jwks_hits(&self) -> usize {
        self.state.jwks_hits.load(Ordering::SeqCst)
    }

    pub fn delay(&self, delay: Duration) {
        self.state.answer.lock().unwrap().2 = delay;
    }

    pub fn hits(&self) -> usize {
        self.state.hits.load(Ordering::SeqCst)
    }

    /// The `Authorization` header and the form body of the last call.
    pub fn last_request(&self) -> Option<(String, String)> {
        self.state.last_request.lock().unwrap().clone()
    }

    pub fn introspector(&self) -> IntrospectorBuilder {
        Introspector::builder(self.url.clone(), "rs", "cs_secret")
    }

    /// An active answer as Umbra gives it, for a user token for [`NOTES`] expiring at `exp`.
    pub fn active_answer(scope: &str, exp: i64) -> Value {
        json!({
            "active": true, "scope": scope, "client_id": "app", "token_type": "Bearer",
            "exp": exp, "iat": exp - 3600, "nbf": exp - 3600, "sub": "user-1",
            "username": "ada", "aud": [NOTES], "iss": ISSUER, "jti": "4f1c2a"
        })
    }
}

async fn fake_introspect(
    state: web::Data<FakeState>,
    request: actix_web::HttpRequest,
    body: String,
) -> HttpResponse {
    state.hits.fetch_add(1, Ordering::SeqCst);
    let authorization = request
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    *state.last_request.lock().unwrap() = Some((authorization, body));
    *state.last_accept.lock().unwrap() = request
        .headers()
        .get("accept")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let (status, body, delay) = state.answer.lock().unwrap().clone();
    let content_type = *state.content_type.lock().unwrap();
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap())
        .content_type(content_type)
        .body(body)
}

async fn fake_jwks(state: web::Data<FakeState>) -> HttpResponse {
    state.jwks_hits.fetch_add(1, Ordering::SeqCst);
    let jwks = state.jwks.lock().unwrap().clone();
    if jwks.is_null() {
        return HttpResponse::NotFound().finish();
    }
    HttpResponse::Ok().json(jwks)
}

/// A port with nothing listening on it (bound, then released).
pub fn closed_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Log lines written while a future runs under [`Logs::subscriber`].
#[derive(Clone, Default)]
pub struct Logs(Arc<Mutex<Vec<u8>>>);

impl Logs {
    pub fn subscriber(&self) -> impl tracing::Subscriber + Send + Sync + 'static {
        tracing_subscriber::fmt()
            .with_writer(self.clone())
            .with_ansi(false)
            .with_max_level(tracing::Level::DEBUG)
            .finish()
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl std::io::Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Logs {
    type Writer = Logs;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}
