//! A browser for the HTML pages: a cookie jar, no automatic redirects, and just enough HTML
//! reading to find form tokens.
use crate::TestClient;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::Response;
use reqwest::cookie::{CookieStore, Jar};
use sha2::{Digest, Sha256};
use std::sync::Arc;

pub struct Browser {
    pub http: reqwest::Client,
    base: String,
    jar: Arc<Jar>,
}

impl Browser {
    pub fn new(base: &str) -> Self {
        umbra::sender::install_crypto_provider();
        let jar = Arc::new(Jar::default());
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .cookie_provider(jar.clone())
            .build()
            .expect("browser");
        Self {
            http,
            base: base.to_owned(),
            jar,
        }
    }

    /// The `Cookie` header this browser would send (e.g. to replay its session elsewhere).
    pub fn cookie_header(&self) -> Option<String> {
        let url = format!("{}/", self.base).parse().expect("base URL");
        let header = self.jar.cookies(&url)?;
        Some(header.to_str().expect("ASCII cookies").to_owned())
    }

    pub async fn get(&self, path: &str) -> Response {
        self.http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .expect("GET")
    }

    pub async fn post(&self, path: &str, form: &[(&str, &str)]) -> Response {
        self.http
            .post(format!("{}{path}", self.base))
            .form(form)
            .send()
            .await
            .expect("POST")
    }

    /// `GET /authorize` for `client` with PKCE and `extra` query parameters (`&k=v…`).
    pub async fn authorize(&self, client: &TestClient, pkce: &Pkce, extra: &str) -> Response {
        self.get(&format!(
            "/authorize?response_type=code&client_id={}&code_challenge={}&code_challenge_method=S256{extra}",
            client.id, pkce.challenge
        ))
        .await
    }

    /// The page's CSRF token (fetching `path` first).
    pub async fn form_token(&self, path: &str) -> String {
        let page = self.get(path).await.text().await.expect("page");
        hidden_field(&page, "csrf_token")
            .unwrap_or_else(|| panic!("no csrf_token on {path}: {page}"))
    }

    /// Fills and submits the sign-in form.
    pub async fn sign_in(&self, username: &str, password: &str) -> Response {
        let token = self.form_token("/login").await;
        self.post(
            "/login",
            &[
                ("csrf_token", &token),
                ("username", username),
                ("password", password),
            ],
        )
        .await
    }

    /// Submits the second-step form with `code` for `method` (`totp`, `email`, `sms`,
    /// `recovery`).
    pub async fn second_step(&self, method: &str, code: &str) -> Response {
        let token = self
            .form_token(&format!("/login/2fa?method={method}"))
            .await;
        self.post(
            "/login/2fa",
            &[("csrf_token", &token), ("method", method), ("code", code)],
        )
        .await
    }

    /// Answers the consent page with `approve` or `deny`.
    pub async fn consent(&self, decision: &str) -> Response {
        let form = self.consent_form().await;
        form.submit(self, decision).await
    }

    /// Opens the consent page and keeps its form (the request it names) for later.
    pub async fn consent_form(&self) -> ConsentForm {
        let page = self.get("/consent").await.text().await.expect("page");
        let field = |name| {
            hidden_field(&page, name).unwrap_or_else(|| panic!("no {name} on /consent: {page}"))
        };
        ConsentForm {
            csrf_token: field("csrf_token"),
            request: field("request"),
            page: page.clone(),
        }
    }
}

/// A consent form as a page showed it: submitting it later decides on the request it names.
#[derive(Clone, Debug)]
pub struct ConsentForm {
    pub csrf_token: String,
    pub request: String,
    /// The page's HTML, to check what it showed.
    pub page: String,
}

impl ConsentForm {
    /// Submits the form with `approve` or `deny`.
    pub async fn submit(&self, browser: &Browser, decision: &str) -> Response {
        browser
            .post(
                "/consent",
                &[
                    ("csrf_token", &self.csrf_token),
                    ("request", &self.request),
                    ("decision", decision),
                ],
            )
            .await
    }
}

/// The value of `<input … name="NAME" value="…">` in `html`.
pub fn hidden_field(html: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker)? + marker.len();
    let end = html[start..].find('"')?;
    Some(html[start..start + end].to_owned())
}

/// The authenticator key an enrolment page shows, as a person copies it: the text of its
/// grouped `<code>` element without the tags.
pub fn shown_totp_secret(html: &str) -> Option<String> {
    let element = html.split("<code class=\"secret grouped\">").nth(1)?;
    let element = &element[..element.find("</code>")?];
    Some(
        element
            .split('<')
            .filter_map(|part| part.split_once('>').map(|(_, text)| text))
            .collect(),
    )
}

/// The `Location` header of a redirect (asserting it is one).
pub fn location(response: &Response) -> String {
    assert!(
        response.status().is_redirection(),
        "expected a redirect, got {}",
        response.status()
    );
    response.headers()["location"]
        .to_str()
        .expect("location")
        .to_owned()
}

/// A query parameter of a URL, decoded.
pub fn query_param(url: &str, name: &str) -> Option<String> {
    let query = url.split_once('?')?.1;
    url::form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// A PKCE verifier and its S256 challenge.
pub struct Pkce {
    pub verifier: String,
    pub challenge: String,
}

impl Pkce {
    pub fn new() -> Self {
        let verifier = format!(
            "{}{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        );
        let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
        Self {
            verifier,
            challenge,
        }
    }
}

impl Default for Pkce {
    fn default() -> Self {
        Self::new()
    }
}
