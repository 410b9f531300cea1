//! `private_key_jwt` client authentication (RFC 7523 §2.2 and §3, OpenID Connect Core §9) at
//! `/token`, `/introspect` and `/revoke`, with assertions signed by an independent JOSE
//! implementation (jwt-simple, not the jsonwebtoken crate Umbra verifies with).
use actix_web::{App, HttpResponse, HttpServer, web};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jwt_simple::prelude::*;
use reqwest::{Response, StatusCode};
use serde_json::{Value, json};
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use umbra::keys::{SigningAlg, material};
use umbra::oauth::client::Client;
use umbra::oauth::client_assertion::ASSERTION_TYPE;
use umbra::oauth::client_jwks::{ClientJwks, ClientKeys};
use umbra::oauth::grant_type::GrantType;
use umbra::oauth::scope::ScopeSet;
use umbra_tests::{TestApp, assert_oauth_error};

/// A client's key pair, held by jwt-simple.
enum Signer {
    Rs256(Box<RS256KeyPair>),
    Es256(ES256KeyPair),
    EdDsa(Ed25519KeyPair),
}

impl Signer {
    fn new(alg: SigningAlg, kid: &str) -> Self {
        match alg {
            // Generating RSA keys in pure Rust is slow in a debug build: the pair comes from
            // aws-lc-rs (as Umbra's own keys do) and is handed to jwt-simple as PKCS#8.
            SigningAlg::Rs256 => {
                let generated = material::generate(SigningAlg::Rs256).unwrap();
                let pair = RS256KeyPair::from_der(&generated.pkcs8).unwrap();
                Self::Rs256(Box::new(pair.with_key_id(kid)))
            }
            SigningAlg::Es256 => Self::Es256(ES256KeyPair::generate().with_key_id(kid)),
            SigningAlg::EdDsa => Self::EdDsa(Ed25519KeyPair::generate().with_key_id(kid)),
        }
    }

    /// The public JWK, as jwt-simple exports it.
    fn public_jwk(&self) -> Value {
        let jwk = match self {
            Self::Rs256(pair) => pair.public_key().to_jwk(),
            Self::Es256(pair) => pair.public_key().to_jwk(),
            Self::EdDsa(pair) => pair.public_key().to_jwk(),
        };
        serde_json::from_str(&jwk).unwrap()
    }

    fn sign(&self, claims: JWTClaims<Value>) -> String {
        match self {
            Self::Rs256(pair) => pair.sign(claims),
            Self::Es256(pair) => pair.sign(claims),
            Self::EdDsa(pair) => pair.sign(claims),
        }
        .unwrap()
    }
}

fn jwks(signers: &[&Signer]) -> Value {
    json!({ "keys": signers.iter().map(|s| s.public_jwk()).collect::<Vec<_>>() })
}

fn inline(signers: &[&Signer]) -> ClientKeys {
    let set = serde_json::to_vec(&jwks(signers)).unwrap();
    ClientKeys::Inline(ClientJwks::parse_registered(&set).unwrap())
}

/// Registers a private_key_jwt client allowed client_credentials and introspection.
async fn register(app: &TestApp, keys: ClientKeys) -> String {
    let id = format!("pkjwt-{}", uuid::Uuid::new_v4().simple());
    app.store
        .create_client(
            Client {
                id: id.clone(),
                name: "Key client".into(),
                secret_hash: None,
                redirect_uris: vec![],
                grant_types: vec![GrantType::ClientCredentials],
                scopes: ScopeSet::parse("read").unwrap(),
                can_introspect: true,
                skip_consent: false,
                require_2fa: false,
                assertion_keys: Some(keys),
                resources: Default::default(),
                introspection_signed_response_alg: None,
                version: 1,
                secret_expires_at: None,
                openid: Default::default(),
            },
            umbra::clock::now(),
        )
        .await
        .unwrap();
    id
}

/// Claims of a good assertion by `client_id` for `aud`: one minute, a fresh `jti`.
fn claims(client_id: &str, aud: &str) -> JWTClaims<Value> {
    Claims::with_custom_claims(json!({}), Duration::from_secs(60))
        .with_issuer(client_id)
        .with_subject(client_id)
        .with_audience(aud)
        .with_jwt_id(uuid::Uuid::new_v4())
}

fn at(unix: i64) -> Option<UnixTimeStamp> {
    Some(Duration::from_secs(u64::try_from(unix).unwrap()))
}

async fn post_assertion(
    app: &TestApp,
    path: &str,
    assertion: &str,
    extra: &[(&str, &str)],
) -> Response {
    let mut form = vec![
        ("client_assertion_type", ASSERTION_TYPE),
        ("client_assertion", assertion),
    ];
    form.extend_from_slice(extra);
    app.post_form(path, None, &form).await
}

async fn token_with(app: &TestApp, assertion: &str) -> Response {
    post_assertion(
        app,
        "/token",
        assertion,
        &[("grant_type", "client_credentials")],
    )
    .await
}

/// A 401 `invalid_client` whose description mentions `reason` and does not repeat the
/// assertion.
async fn assert_refused(response: Response, assertion: &str, reason: &str) {
    let body = assert_oauth_error(response, StatusCode::UNAUTHORIZED, "invalid_client").await;
    let description = body["error_description"].as_str().unwrap();
    assert!(
        description.contains(reason),
        "{reason:?} not in {description:?}"
    );
    for part in assertion.split('.').filter(|p| p.len() > 8) {
        assert!(
            !body.to_string().contains(part),
            "the answer echoes the assertion: {body}"
        );
    }
}

db_test! {
    async fn assertions_of_each_algorithm_authenticate_at_token_introspect_and_revoke(app: TestApp) {
        let issuer = app.settings.server.issuer.clone();
        for alg in SigningAlg::ALL {
            let signer = Signer::new(alg, &format!("{alg}-1"));
            let id = register(&app, inline(&[&signer])).await;

            // The issuer as audience at /token, the endpoint itself at /introspect, the token
            // endpoint at /revoke: each is accepted.
            let response = token_with(&app, &signer.sign(claims(&id, &issuer))).await;
            assert_eq!(response.status(), StatusCode::OK, "{alg}");
            let body: Value = response.json().await.unwrap();
            let token = body["access_token"].as_str().unwrap().to_owned();

            let assertion = signer.sign(claims(&id, &format!("{issuer}/introspect")));
            let response = post_assertion(&app, "/introspect", &assertion, &[("token", &token)]).await;
            assert_eq!(response.status(), StatusCode::OK, "{alg}");
            let answer: Value = response.json().await.unwrap();
            assert_eq!(answer["active"], true, "{alg}: {answer}");
            assert_eq!(answer["client_id"], id.as_str());

            let assertion = signer.sign(claims(&id, &format!("{issuer}/token")));
            let response = post_assertion(&app, "/revoke", &assertion, &[("token", &token)]).await;
            assert_eq!(response.status(), StatusCode::OK, "{alg}");

            let assertion = signer.sign(claims(&id, &issuer));
            let response = post_assertion(&app, "/introspect", &assertion, &[("token", &token)]).await;
            assert_eq!(response.json::<Value>().await.unwrap(), json!({"active": false}), "{alg}");
        }
    }
}

db_test! {
    async fn an_assertion_without_kid_or_with_a_matching_client_id_is_accepted(app: TestApp) {
        let issuer = app.settings.server.issuer.clone();
        // A key pair with no key id: the JWK has no kid, nor the assertion's header.
        let pair = Ed25519KeyPair::generate();
        let published: Value = serde_json::from_str(&pair.public_key().to_jwk()).unwrap();
        assert!(published.get("kid").is_none());
        let set = serde_json::to_vec(&json!({ "keys": [published] })).unwrap();
        let id = register(&app, ClientKeys::Inline(ClientJwks::parse_registered(&set).unwrap())).await;

        let assertion = pair.sign(claims(&id, &issuer)).unwrap();
        let response = post_assertion(&app, "/token", &assertion, &[
            ("grant_type", "client_credentials"),
            ("client_id", &id),
        ]).await;

        assert_eq!(response.status(), StatusCode::OK);
    }
}

db_test! {
    async fn an_rsa_key_registered_without_alg_verifies_ps256_assertions(app: TestApp) {
        let issuer = app.settings.server.issuer.clone();
        let generated = material::generate(SigningAlg::Rs256).unwrap();
        let pss = PS256KeyPair::from_der(&generated.pkcs8).unwrap().with_key_id("rsa");
        let mut published: Value = serde_json::from_str(&pss.public_key().to_jwk()).unwrap();
        published.as_object_mut().unwrap().remove("alg");
        let set = serde_json::to_vec(&json!({ "keys": [published] })).unwrap();
        let id = register(&app, ClientKeys::Inline(ClientJwks::parse_registered(&set).unwrap())).await;

        let assertion = pss.sign(claims(&id, &issuer)).unwrap();
        assert_eq!(token_with(&app, &assertion).await.status(), StatusCode::OK);
    }
}

db_test! {
    async fn metadata_lists_private_key_jwt_and_its_algorithms(app: TestApp) {
        let metadata = app.get_json("/.well-known/oauth-authorization-server").await;

        for endpoint in ["token", "introspection", "revocation"] {
            let methods = &metadata[format!("{endpoint}_endpoint_auth_methods_supported")];
            assert!(methods.as_array().unwrap().contains(&json!("private_key_jwt")), "{metadata}");
            assert_eq!(
                metadata[format!("{endpoint}_endpoint_auth_signing_alg_values_supported")],
                json!(["RS256", "PS256", "ES256", "EdDSA"])
            );
        }
    }
}

db_test! {
    async fn expired_future_and_long_lived_assertions_are_refused(app: TestApp) {
        let issuer = app.settings.server.issuer.clone();
        let signer = Signer::new(SigningAlg::Es256, "k");
        let id = register(&app, inline(&[&signer])).await;
        let now = umbra::clock::now();
        let mut expired = claims(&id, &issuer);
        expired.issued_at = at(now - 180);
        expired.invalid_before = at(now - 180);
        expired.expires_at = at(now - 120);
        let mut not_yet = claims(&id, &issuer);
        not_yet.invalid_before = at(now + 120);
        not_yet.issued_at = at(now);
        not_yet.expires_at = at(now + 200);
        let mut issued_later = claims(&id, &issuer);
        issued_later.issued_at = at(now + 120);
        issued_later.expires_at = at(now + 200);
        let mut long_lived = claims(&id, &issuer);
        long_lived.expires_at = at(now + 3600);
        let mut no_exp = claims(&id, &issuer);
        no_exp.expires_at = None;

        for (claims, reason) in [
            (expired, "expired"),
            (not_yet, "not valid yet"),
            (issued_later, "in the future"),
            (long_lived, "longer than 300 seconds"),
            (no_exp, "no exp"),
        ] {
            let assertion = signer.sign(claims);
            assert_refused(token_with(&app, &assertion).await, &assertion, reason).await;
        }
    }
}

db_test! {
    async fn assertions_for_another_audience_issuer_or_subject_are_refused(app: TestApp) {
        let issuer = app.settings.server.issuer.clone();
        let signer = Signer::new(SigningAlg::Rs256, "k");
        let id = register(&app, inline(&[&signer])).await;
        let other = register(&app, inline(&[&Signer::new(SigningAlg::Rs256, "k")])).await;

        let wrong_aud = claims(&id, "https://evil.example/token");
        // Another endpoint of this server is not the one called.
        let other_endpoint = claims(&id, &format!("{issuer}/revoke"));
        let wrong_iss = claims(&id, &issuer).with_issuer(&other);
        let mut no_jti = claims(&id, &issuer);
        no_jti.jwt_id = None;
        for (claims, reason) in [
            (wrong_aud, "aud"),
            (other_endpoint, "aud"),
            (wrong_iss, "iss and sub"),
            (no_jti, "no jti"),
        ] {
            let assertion = signer.sign(claims);
            assert_refused(token_with(&app, &assertion).await, &assertion, reason).await;
        }

        // A subject that names another client is checked against that client's keys.
        let other_subject = signer.sign(claims(&id, &issuer).with_subject(&other).with_issuer(&other));
        assert_refused(token_with(&app, &other_subject).await, &other_subject, "signature").await;
        let nobody = signer.sign(claims("nobody", &issuer));
        assert_refused(token_with(&app, &nobody).await, &nobody, "no client of that id").await;
    }
}

db_test! {
    async fn unsigned_hmac_and_foreign_key_assertions_are_refused(app: TestApp) {
        let issuer = app.settings.server.issuer.clone();
        let signer = Signer::new(SigningAlg::Rs256, "k");
        let id = register(&app, inline(&[&signer])).await;
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims(&id, &issuer)).unwrap());

        let none_header = URL_SAFE_NO_PAD.encode(r#"{"alg":"none","kid":"k"}"#);
        let unsigned = format!("{none_header}.{payload}.");
        assert_refused(token_with(&app, &unsigned).await, &unsigned, "alg none").await;

        // The classic confusion: the RSA public key (what anyone can read) as an HMAC secret.
        let Signer::Rs256(pair) = &signer else { unreachable!() };
        let public_pem = pair.public_key().to_pem().unwrap();
        let hmac = HS256Key::from_bytes(public_pem.as_bytes()).with_key_id("k");
        let confused = hmac.authenticate(claims(&id, &issuer)).unwrap();
        assert_refused(token_with(&app, &confused).await, &confused, "HMAC").await;
        let jwk_hmac = HS256Key::from_bytes(&serde_json::to_vec(&signer.public_jwk()).unwrap()).with_key_id("k");
        let confused = jwk_hmac.authenticate(claims(&id, &issuer)).unwrap();
        assert_refused(token_with(&app, &confused).await, &confused, "HMAC").await;

        // Another client's key, presenting this client's kid.
        let stranger = Signer::new(SigningAlg::Rs256, "k");
        let forged = stranger.sign(claims(&id, &issuer));
        assert_refused(token_with(&app, &forged).await, &forged, "signature").await;

        // A key of the right kid but the wrong type for the header's alg.
        let ec = Signer::new(SigningAlg::Es256, "k");
        let mismatched = ec.sign(claims(&id, &issuer));
        assert_refused(token_with(&app, &mismatched).await, &mismatched, "type").await;

        // A kid the client never registered.
        let unknown = Signer::new(SigningAlg::Rs256, "rotated").sign(claims(&id, &issuer));
        assert_refused(token_with(&app, &unknown).await, &unknown, "kid").await;
    }
}

db_test! {
    async fn malformed_and_oversized_assertions_are_invalid_client_and_never_5xx(app: TestApp) {
        let issuer = app.settings.server.issuer.clone();
        let signer = Signer::new(SigningAlg::Es256, "k");
        let id = register(&app, inline(&[&signer])).await;
        let good = signer.sign(claims(&id, &issuer));
        let parts: Vec<&str> = good.split('.').collect();
        let b64 = |s: &str| URL_SAFE_NO_PAD.encode(s);

        let oversized = format!("{}.{}.{}", parts[0], b64(&format!(r#"{{"sub":"{id}","pad":"{}"}}"#, "x".repeat(9000))), parts[2]);
        for (assertion, reason) in [
            (format!("{}.{}", parts[0], parts[1]), "well-formed"),
            (format!("{good}.{}", parts[2]), "well-formed"),
            (format!("{}.%%%.{}", parts[0], parts[2]), "well-formed"),
            (format!("{}.{}.{}", b64("{not json"), parts[1], parts[2]), "well-formed"),
            (format!("{}.{}.{}", parts[0], b64("[\"sub\"]"), parts[2]), "well-formed"),
            (format!("{}.{}.{}", parts[0], b64(r#"{"sub":42}"#), parts[2]), "wrong JSON type"),
            (format!("{}.{}.{}", parts[0], parts[1], "***"), "well-formed"),
            (oversized.clone(), "8192 bytes"),
        ] {
            let response = post_assertion(&app, "/introspect", &assertion, &[("token", "at_x")]).await;
            assert_refused(response, &assertion, reason).await;
        }

        // /token keeps its smaller body limit: the request itself is refused first.
        let response = token_with(&app, &oversized).await;
        assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
        // An unknown assertion type is not a JWT bearer assertion at all.
        let response = app.post_form("/token", None, &[
            ("grant_type", "client_credentials"),
            ("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:saml2-bearer"),
            ("client_assertion", &good),
        ]).await;
        assert_oauth_error(response, StatusCode::UNAUTHORIZED, "invalid_client").await;
        // The good one was never used by any of these, so it still works.
        assert_eq!(token_with(&app, &good).await.status(), StatusCode::OK);
    }
}

db_test! {
    async fn a_private_key_jwt_client_cannot_use_a_secret_nor_mix_methods(app: TestApp) {
        let issuer = app.settings.server.issuer.clone();
        let signer = Signer::new(SigningAlg::EdDsa, "k");
        let id = register(&app, inline(&[&signer])).await;
        let secret = umbra::oauth::token::Token::generate(umbra::oauth::token::TokenKind::ClientSecret).unwrap();

        // A secret, by Basic or in the body, or no credentials at all.
        let as_secret_client = umbra_tests::TestClient {
            id: id.clone(),
            secret: Some(secret.expose().to_owned()),
            record: app.store.find_client(&id).await.unwrap().unwrap(),
        };
        let response = app.post_token(Some(&as_secret_client), &[("grant_type", "client_credentials")]).await;
        assert_oauth_error(response, StatusCode::UNAUTHORIZED, "invalid_client").await;
        let response = app.post_token(None, &[
            ("grant_type", "client_credentials"),
            ("client_id", &id),
            ("client_secret", secret.expose()),
        ]).await;
        assert_oauth_error(response, StatusCode::UNAUTHORIZED, "invalid_client").await;
        let response = app.post_token(None, &[("grant_type", "client_credentials"), ("client_id", &id)]).await;
        assert_oauth_error(response, StatusCode::UNAUTHORIZED, "invalid_client").await;

        // An assertion with Basic credentials, or with a client_secret, is two methods at once
        // (RFC 6749 §2.3: "MUST NOT use more than one authentication method in each request").
        let assertion = signer.sign(claims(&id, &issuer));
        let response = app
            .http
            .post(app.url("/token"))
            .basic_auth(&id, Some(secret.expose()))
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_assertion_type", ASSERTION_TYPE),
                ("client_assertion", &assertion),
            ])
            .send()
            .await
            .unwrap();
        assert_oauth_error(response, StatusCode::BAD_REQUEST, "invalid_request").await;
        let response = post_assertion(&app, "/token", &assertion, &[
            ("grant_type", "client_credentials"),
            ("client_secret", secret.expose()),
        ]).await;
        assert_oauth_error(response, StatusCode::BAD_REQUEST, "invalid_request").await;

        // A client registered with a secret cannot present an assertion instead.
        let secret_client = app.service_client("read").await;
        let theirs = signer.sign(claims(&secret_client.id, &issuer));
        assert_refused(token_with(&app, &theirs).await, &theirs, "private_key_jwt").await;

        // Nothing above used the assertion.
        assert_eq!(token_with(&app, &assertion).await.status(), StatusCode::OK);
    }
}

db_test! {
    async fn an_assertion_is_accepted_once_even_at_another_endpoint(app: TestApp) {
        let issuer = app.settings.server.issuer.clone();
        let signer = Signer::new(SigningAlg::Es256, "k");
        let id = register(&app, inline(&[&signer])).await;
        let assertion = signer.sign(claims(&id, &issuer));
        assert_eq!(token_with(&app, &assertion).await.status(), StatusCode::OK);

        assert_refused(token_with(&app, &assertion).await, &assertion, "already used").await;
        let response = post_assertion(&app, "/introspect", &assertion, &[("token", "at_x")]).await;
        assert_refused(response, &assertion, "already used").await;

        // The same jti from another client is that client's own.
        let other_signer = Signer::new(SigningAlg::Es256, "k");
        let other = register(&app, inline(&[&other_signer])).await;
        let jti = claims(&id, &issuer);
        let reused_jti = claims(&other, &issuer).with_jwt_id(jti.jwt_id.clone().unwrap());
        let mine = signer.sign(jti);
        let theirs = other_signer.sign(reused_jti);
        assert_eq!(token_with(&app, &mine).await.status(), StatusCode::OK);
        assert_eq!(token_with(&app, &theirs).await.status(), StatusCode::OK);
    }
}

db_test! {
    async fn forty_concurrent_replays_of_one_assertion_have_exactly_one_winner(app: TestApp) {
        let issuer = app.settings.server.issuer.clone();
        let signer = Signer::new(SigningAlg::EdDsa, "k");
        let id = register(&app, inline(&[&signer])).await;
        let assertion = signer.sign(claims(&id, &issuer));

        let responses = futures_util::future::join_all(
            (0..40).map(|_| token_with(&app, &assertion)),
        )
        .await;

        let statuses: Vec<StatusCode> = responses.iter().map(Response::status).collect();
        assert_eq!(statuses.iter().filter(|s| **s == StatusCode::OK).count(), 1, "{statuses:?}");
        assert!(
            statuses.iter().all(|s| *s == StatusCode::OK || *s == StatusCode::UNAUTHORIZED),
            "{statuses:?}"
        );
    }
}

db_test! {
    async fn used_jtis_are_kept_until_their_assertion_expires_then_cleaned_up(app: TestApp) {
        let issuer = app.settings.server.issuer.clone();
        let signer = Signer::new(SigningAlg::Es256, "k");
        let id = register(&app, inline(&[&signer])).await;
        let assertion = signer.sign(claims(&id, &issuer));
        assert_eq!(token_with(&app, &assertion).await.status(), StatusCode::OK);
        let cleanup = umbra::settings::Settings::built_in().unwrap().cleanup;

        let now = umbra::clock::now();
        let kept = app.store.purge(now, &cleanup).await.unwrap();
        let purged = app.store.purge(now + 60 + 31, &cleanup).await.unwrap();

        assert_eq!(kept.used_client_assertions, 0);
        assert_eq!(purged.used_client_assertions, 1);
    }
}

/// A client's key server: serves the JWK Set it is given and counts the fetches.
struct KeyServer {
    url: String,
    jwks: Arc<Mutex<Value>>,
    fetches: Arc<AtomicUsize>,
}

impl KeyServer {
    fn start(jwks: Value) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/jwks.json", listener.local_addr().unwrap());
        let jwks = Arc::new(Mutex::new(jwks));
        let fetches = Arc::new(AtomicUsize::new(0));
        let (served, counted) = (jwks.clone(), fetches.clone());
        let server = HttpServer::new(move || {
            let (served, counted) = (served.clone(), counted.clone());
            App::new().route(
                "/jwks.json",
                web::get().to(move || {
                    let body = served.lock().unwrap().clone();
                    counted.fetch_add(1, Ordering::SeqCst);
                    async move {
                        match body {
                            Value::String(raw) => HttpResponse::Ok().body(raw),
                            Value::Null => HttpResponse::InternalServerError().finish(),
                            set => HttpResponse::Ok().json(set),
                        }
                    }
                }),
            )
        })
        .workers(1)
        .disable_signals()
        .listen(listener)
        .unwrap()
        .run();
        tokio::spawn(server);
        Self { url, jwks, fetches }
    }

    fn serve(&self, jwks: Value) {
        *self.jwks.lock().unwrap() = jwks;
    }

    fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }
}

db_test! {
    async fn a_jwks_uri_is_fetched_once_cached_and_refetched_for_a_rotated_key(app: TestApp) {
        let issuer = app.settings.server.issuer.clone();
        let first = Signer::new(SigningAlg::Rs256, "2026-01");
        let keys = KeyServer::start(jwks(&[&first]));
        let id = register(&app, ClientKeys::Uri(keys.url.clone())).await;

        for _ in 0..3 {
            let response = token_with(&app, &first.sign(claims(&id, &issuer))).await;
            assert_eq!(response.status(), StatusCode::OK);
        }
        assert_eq!(keys.fetches(), 1, "cached after the first fetch");

        // The client rotates: it publishes the new key alone and signs with it at once.
        let second = Signer::new(SigningAlg::Es256, "2026-02");
        keys.serve(jwks(&[&second]));
        let assertions: Vec<String> = (0..10).map(|_| second.sign(claims(&id, &issuer))).collect();
        let rotated =
            futures_util::future::join_all(assertions.iter().map(|a| token_with(&app, a))).await;
        assert!(rotated.iter().all(|r| r.status() == StatusCode::OK));
        assert_eq!(keys.fetches(), 2, "one refetch for the unknown kid, shared by the burst");

        // Unknown kids do not make Umbra fetch again within the refetch interval.
        for kid in ["a", "b", "c"] {
            let stranger = Signer::new(SigningAlg::Es256, kid);
            let assertion = stranger.sign(claims(&id, &issuer));
            assert_refused(token_with(&app, &assertion).await, &assertion, "kid").await;
        }
        let retired = first.sign(claims(&id, &issuer));
        assert_refused(token_with(&app, &retired).await, &retired, "kid").await;
        assert_eq!(keys.fetches(), 2);
    }
}

db_test_with! {
    |settings| settings.client_assertions.jwks_timeout_secs = 1,
    async fn a_jwks_uri_that_fails_or_serves_bad_keys_is_invalid_client(app: TestApp) {
        let issuer = app.settings.server.issuer.clone();
        let signer = Signer::new(SigningAlg::EdDsa, "k");
        let mut private = serde_json::from_str::<Value>(&match &signer {
            Signer::EdDsa(pair) => pair.to_jwk(),
            _ => unreachable!(),
        }).unwrap();
        if private.get("d").is_none() {
            private["d"] = "c2VjcmV0".into();
        }
        let oversized = Value::String(format!(r#"{{"keys":[],"pad":"{}"}}"#, "x".repeat(70_000)));
        for (served, what) in [
            (Value::Null, "HTTP 500"),
            (json!({ "keys": [private] }), "a private key"),
            (Value::String("not json".into()), "not a JWK Set"),
            (oversized, "too large"),
        ] {
            let keys = KeyServer::start(served);
            let id = register(&app, ClientKeys::Uri(keys.url.clone())).await;
            let assertion = signer.sign(claims(&id, &issuer));
            let response = token_with(&app, &assertion).await;
            assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{what}");
            assert_refused(response, &assertion, "jwks_uri").await;
        }

        // Nothing listens there.
        let closed = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/jwks.json", closed.local_addr().unwrap());
        drop(closed);
        let id = register(&app, ClientKeys::Uri(url)).await;
        let assertion = signer.sign(claims(&id, &issuer));
        assert_refused(token_with(&app, &assertion).await, &assertion, "jwks_uri").await;
    }
}
