//! OpenID Connect: ID tokens checked by an independent relying party (the `openidconnect`
//! crate verifies them against `/jwks.json`), `/authorize` parameters of Core §3.1.2.1,
//! refresh (§12.2), the UserInfo endpoint (§5.3, RFC 6750), discovery, key rotation, and
//! RP-initiated logout.
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreIdToken, CoreProviderMetadata, CoreTokenResponse,
    CoreUserInfoClaims,
};
use openidconnect::{
    AccessTokenHash, AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointMaybeSet,
    EndpointNotSet, EndpointSet, IssuerUrl, Nonce, OAuth2TokenResponse, PkceCodeChallenge,
    RedirectUrl, Scope, TokenResponse,
};
use reqwest::StatusCode;
use sha2::{Digest, Sha256};
use umbra::keys::SigningAlg;
use umbra::oauth::grant_type::GrantType;
use umbra::store::{ProfileChange, User};
use umbra_tests::{
    Browser, ClientSpec, Pkce, REDIRECT_URI, TestApp, TestClient, hidden_field, location,
    oauth2_http, query_param, totp_code,
};

const PASSWORD: &str = "correct horse battery";
const LOGOUT_URI: &str = "https://app.example/signed-out";

type RelyingParty = CoreClient<
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// What discovery finds at the app's issuer, the JWKS included.
async fn discover(app: &TestApp) -> CoreProviderMetadata {
    let http = http();
    let issuer = IssuerUrl::new(app.settings.server.issuer.clone()).unwrap();
    CoreProviderMetadata::discover_async(issuer, &|request| oauth2_http(http.clone(), request))
        .await
        .expect("discovery succeeds")
}

/// The `openidconnect` client of `registered`, configured by discovery alone.
async fn relying_party(app: &TestApp, registered: &TestClient) -> RelyingParty {
    CoreClient::from_provider_metadata(
        discover(app).await,
        ClientId::new(registered.id.clone()),
        registered.secret.clone().map(ClientSecret::new),
    )
    .set_redirect_uri(RedirectUrl::new(REDIRECT_URI.to_owned()).unwrap())
}

/// A confidential web app allowed `openid profile email read` with refresh tokens.
async fn oidc_app(app: &TestApp, spec: ClientSpec<'_>) -> TestClient {
    app.register(ClientSpec {
        scopes: "openid profile email read",
        grant_types: &[GrantType::AuthorizationCode, GrantType::RefreshToken],
        redirect_uris: &[REDIRECT_URI],
        post_logout_redirect_uris: &[LOGOUT_URI],
        ..spec
    })
    .await
}

async fn ada(app: &TestApp) -> User {
    let ada = app.create_user("ada", PASSWORD).await;
    let profile = ProfileChange {
        name: Some(Some("Ada Lovelace".into())),
        email: Some(Some("ada@example.com".into())),
        email_verified: Some(true),
    };
    app.store
        .update_user_profile(ada.id, &profile, umbra::clock::now())
        .await
        .unwrap();
    ada
}

/// Follows an authorization request through sign-in (as `username`) and consent, and
/// returns the code.
async fn front_channel(app: &TestApp, browser: &Browser, path: &str, username: &str) -> String {
    let mut response = browser.get(path).await;
    if location(&response) == "/login" {
        response = browser.sign_in(username, PASSWORD).await;
    }
    if location(&response) == "/consent" {
        response = browser.consent("approve").await;
    }
    let to = location(&response);
    assert!(to.starts_with(REDIRECT_URI), "{to} ({})", app.address);
    query_param(&to, "code").expect("a code")
}

/// The relying party's whole sign-in: authorization URL with PKCE, nonce and `scopes`, the
/// front channel in `browser`, and the code exchange.
async fn rp_sign_in(
    app: &TestApp,
    rp: &RelyingParty,
    browser: &Browser,
    scopes: &[&str],
) -> (CoreTokenResponse, Nonce) {
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let mut request = rp
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .set_pkce_challenge(challenge);
    for scope in scopes {
        request = request.add_scope(Scope::new((*scope).to_owned()));
    }
    let (url, _, nonce) = request.url();
    let code = front_channel(app, browser, &url.as_str()[app.address.len()..], "ada").await;
    let http = http();
    let tokens = rp
        .exchange_code(AuthorizationCode::new(code))
        .unwrap()
        .set_pkce_verifier(verifier)
        .request_async(&|request| oauth2_http(http.clone(), request))
        .await
        .expect("the code exchange succeeds");
    (tokens, nonce)
}

/// The claims of a compact JWS, unverified (the tests verify with `openidconnect` first).
fn payload(jwt: &str) -> serde_json::Value {
    let part = jwt.split('.').nth(1).expect("a JWS");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

fn header(jwt: &str) -> serde_json::Value {
    let part = jwt.split('.').next().unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

/// `at_hash` of an RS256 or ES256 ID token, computed here rather than by the server.
fn sha256_at_hash(access_token: &str) -> String {
    URL_SAFE_NO_PAD.encode(&Sha256::digest(access_token.as_bytes())[..16])
}

/// Runs the code flow with `extra` query parameters in `browser` (signing in as ada if
/// asked) and exchanges the code: the token response as JSON.
async fn code_flow(
    app: &TestApp,
    browser: &Browser,
    client: &TestClient,
    extra: &str,
) -> serde_json::Value {
    let pkce = Pkce::new();
    let path = format!(
        "/authorize?response_type=code&client_id={}&code_challenge={}&code_challenge_method=S256{extra}",
        client.id, pkce.challenge
    );
    let code = front_channel(app, browser, &path, "ada").await;
    let response = app.exchange_code(client, &code, &pkce.verifier).await;
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

/// The `error` a redirect carries back to the client.
fn redirected_error(response: &reqwest::Response) -> String {
    let to = location(response);
    assert!(to.starts_with(REDIRECT_URI), "{to}");
    query_param(&to, "error").unwrap_or_else(|| panic!("no error in {to}"))
}

db_test! {
    async fn the_openidconnect_crate_discovers_signs_in_verifies_the_id_token_and_reads_userinfo(app: TestApp) {
        let ada = ada(&app).await;
        let registered = oidc_app(&app, ClientSpec::default()).await;
        let rp = relying_party(&app, &registered).await;
        let browser = app.browser();
        let before = umbra::clock::now();

        let (tokens, nonce) = rp_sign_in(&app, &rp, &browser, &["profile", "email"]).await;

        let id_token = tokens.id_token().expect("an ID token with openid");
        let verifier = rp.id_token_verifier();
        let claims = id_token.claims(&verifier, &nonce).expect("the ID token verifies against the JWKS");
        assert_eq!(claims.subject().as_str(), ada.id.to_string());
        assert_eq!(claims.issuer().as_str(), app.settings.server.issuer);
        assert_eq!(claims.audiences().iter().map(|a| a.as_str()).collect::<Vec<_>>(), [registered.id.as_str()]);
        assert_eq!(claims.nonce().map(|n| n.secret()), Some(nonce.secret()));
        let auth_time = claims.auth_time().expect("auth_time").timestamp();
        assert!(before <= auth_time && auth_time <= umbra::clock::now());
        assert_eq!(claims.auth_context_ref().map(|acr| acr.as_str()), Some("1"));
        let amr: Vec<&str> = claims.auth_method_refs().unwrap().iter().map(|m| m.as_str()).collect();
        assert_eq!(amr, ["pwd"]);
        assert_eq!((claims.expiration() - claims.issue_time()).num_seconds(), 3600);
        let expected_hash = AccessTokenHash::from_token(
            tokens.access_token(),
            id_token.signing_alg().unwrap(),
            id_token.signing_key(&verifier).unwrap(),
        )
        .unwrap();
        assert_eq!(claims.access_token_hash(), Some(&expected_hash));
        let raw = payload(&id_token.to_string());
        assert_eq!(raw["at_hash"], sha256_at_hash(tokens.access_token().secret()));
        assert!(raw["sid"].as_str().is_some_and(|sid| sid.len() >= 22), "{raw}");
        assert_eq!(header(&id_token.to_string())["alg"], "RS256");
        // The relying party catches a response meant for another request.
        assert!(id_token.claims(&verifier, &Nonce::new("another".into())).is_err());

        let http = http();
        let info: CoreUserInfoClaims = rp
            .user_info(tokens.access_token().clone(), Some(claims.subject().clone()))
            .unwrap()
            .request_async(&|request| oauth2_http(http.clone(), request))
            .await
            .expect("userinfo answers");
        assert_eq!(info.subject(), claims.subject());
        assert_eq!(info.preferred_username().map(|u| u.as_str()), Some("ada"));
        assert_eq!(info.name().and_then(|n| n.get(None)).map(|n| n.as_str()), Some("Ada Lovelace"));
        assert_eq!(info.email().map(|e| e.as_str()), Some("ada@example.com"));
        assert_eq!(info.email_verified(), Some(true));
    }
}

db_test! {
    async fn discovery_lists_what_works_and_repeats_the_oauth_metadata(app: TestApp) {
        let oidc = app.get_json("/.well-known/openid-configuration").await;
        let oauth = app.get_json("/.well-known/oauth-authorization-server").await;
        let issuer = app.settings.server.issuer.as_str();

        assert_eq!(oidc["issuer"], issuer);
        for shared in [
            "issuer", "authorization_endpoint", "token_endpoint", "jwks_uri", "scopes_supported",
            "response_types_supported", "grant_types_supported", "code_challenge_methods_supported",
            "token_endpoint_auth_methods_supported", "revocation_endpoint", "introspection_endpoint",
        ] {
            assert_eq!(oidc[shared], oauth[shared], "{shared}");
        }
        assert_eq!(oidc["userinfo_endpoint"], format!("{issuer}/userinfo"));
        assert_eq!(oidc["end_session_endpoint"], format!("{issuer}/end-session"));
        assert_eq!(oidc["response_types_supported"], serde_json::json!(["code"]));
        assert_eq!(oidc["subject_types_supported"], serde_json::json!(["public"]));
        assert_eq!(oidc["id_token_signing_alg_values_supported"], serde_json::json!(["RS256"]));
        assert_eq!(oidc["code_challenge_methods_supported"], serde_json::json!(["S256"]));
        for scope in ["openid", "profile", "email"] {
            assert!(oidc["scopes_supported"].as_array().unwrap().iter().any(|s| s == scope), "{scope}");
        }
        for claim in ["sub", "auth_time", "nonce", "amr", "acr", "at_hash", "sid", "email_verified"] {
            assert!(oidc["claims_supported"].as_array().unwrap().iter().any(|c| c == claim), "{claim}");
        }
        for unsupported in ["request_parameter_supported", "request_uri_parameter_supported", "claims_parameter_supported", "frontchannel_logout_supported", "backchannel_logout_supported"] {
            assert_eq!(oidc[unsupported], false, "{unsupported}");
        }
        // Every endpoint it names is served.
        for endpoint in ["userinfo_endpoint", "end_session_endpoint", "jwks_uri", "authorization_endpoint"] {
            let url = oidc[endpoint].as_str().unwrap();
            let status = app.http.get(url).send().await.unwrap().status();
            assert!(status != StatusCode::NOT_FOUND && status != StatusCode::METHOD_NOT_ALLOWED, "{endpoint}: {status}");
        }
    }
}

db_test! {
    async fn a_nonce_is_echoed_when_sent_left_out_when_not_and_refused_when_too_long(app: TestApp) {
        ada(&app).await;
        let client = oidc_app(&app, ClientSpec { skip_consent: true, ..ClientSpec::default() }).await;
        let browser = app.browser();

        let with = code_flow(&app, &browser, &client, "&scope=openid&nonce=n-0S6_WzA2Mj").await;
        let without = code_flow(&app, &browser, &client, "&scope=openid").await;
        let oauth_only = code_flow(&app, &browser, &client, "&scope=read&nonce=ignored").await;

        assert_eq!(payload(with["id_token"].as_str().unwrap())["nonce"], "n-0S6_WzA2Mj");
        assert!(payload(without["id_token"].as_str().unwrap()).get("nonce").is_none());
        assert!(oauth_only.get("id_token").is_none(), "no openid, no ID token: {oauth_only}");
        let pkce = Pkce::new();
        let long = "n".repeat(513);
        let response = browser.authorize(&client, &pkce, &format!("&scope=openid&state=s&nonce={long}")).await;
        assert_eq!(redirected_error(&response), "invalid_request");
        assert_eq!(query_param(&location(&response), "state").as_deref(), Some("s"));
    }
}

db_test! {
    async fn max_age_forces_a_fresh_sign_in_and_zero_always_does(app: TestApp) {
        ada(&app).await;
        let client = oidc_app(&app, ClientSpec { skip_consent: true, ..ClientSpec::default() }).await;
        let browser = app.browser();
        let first = code_flow(&app, &browser, &client, "&scope=openid").await;
        let signed_in_at = payload(first["id_token"].as_str().unwrap())["auth_time"].as_i64().unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(2100)).await;

        // Young enough: no sign-in, and the ID token keeps the first auth_time.
        let pkce = Pkce::new();
        let response = browser.authorize(&client, &pkce, "&scope=openid&max_age=3600").await;
        let code = query_param(&location(&response), "code").expect("a code without signing in");
        let token: serde_json::Value = app.exchange_code(&client, &code, &pkce.verifier).await.json().await.unwrap();
        assert_eq!(payload(token["id_token"].as_str().unwrap())["auth_time"], signed_in_at);

        // Too old: the sign-in form, whoever is signed in.
        let pkce = Pkce::new();
        let response = browser.authorize(&client, &pkce, "&scope=openid&max_age=1").await;
        assert_eq!(location(&response), "/login");
        let response = browser.sign_in("ada", PASSWORD).await;
        let code = query_param(&location(&response), "code").expect("a code after signing in");
        let token: serde_json::Value = app.exchange_code(&client, &code, &pkce.verifier).await.json().await.unwrap();
        let renewed = payload(token["id_token"].as_str().unwrap())["auth_time"].as_i64().unwrap();
        assert!(renewed > signed_in_at, "{renewed} > {signed_in_at}");

        // Zero: always, and the fresh sign-in then satisfies it (no loop back to the form).
        let pkce = Pkce::new();
        let response = browser.authorize(&client, &pkce, "&scope=openid&max_age=0").await;
        assert_eq!(location(&response), "/login");
        let response = browser.sign_in("ada", PASSWORD).await;
        assert!(location(&response).starts_with(REDIRECT_URI));

        let response = browser.authorize(&client, &Pkce::new(), "&scope=openid&max_age=0&prompt=none").await;
        assert_eq!(redirected_error(&response), "login_required");
        for bad in ["-1", "soon", "1.5"] {
            let response = browser.authorize(&client, &Pkce::new(), &format!("&scope=openid&max_age={bad}")).await;
            assert_eq!(redirected_error(&response), "invalid_request", "{bad}");
        }
    }
}

db_test! {
    async fn prompt_none_never_shows_a_page_and_says_why(app: TestApp) {
        ada(&app).await;
        let client = oidc_app(&app, ClientSpec::default()).await;
        let strict = oidc_app(&app, ClientSpec { require_2fa: true, skip_consent: true, ..ClientSpec::default() }).await;
        let browser = app.browser();
        let none = "&scope=openid&prompt=none&state=quiet";

        let response = browser.authorize(&client, &Pkce::new(), none).await;
        assert_eq!(redirected_error(&response), "login_required");
        assert_eq!(query_param(&location(&response), "state").as_deref(), Some("quiet"));

        browser.authorize(&client, &Pkce::new(), "&scope=openid").await;
        assert_eq!(location(&browser.sign_in("ada", PASSWORD).await), "/consent");
        let response = browser.authorize(&client, &Pkce::new(), none).await;
        assert_eq!(redirected_error(&response), "consent_required");

        let response = browser.authorize(&strict, &Pkce::new(), none).await;
        assert_eq!(redirected_error(&response), "interaction_required");

        browser.authorize(&client, &Pkce::new(), "&scope=openid").await;
        let approved = location(&browser.consent("approve").await);
        assert!(query_param(&approved, "code").is_some(), "{approved}");
        let response = browser.authorize(&client, &Pkce::new(), none).await;
        assert!(query_param(&location(&response), "code").is_some(), "signed in and consented: a code");

        let response = browser.authorize(&client, &Pkce::new(), "&scope=openid&prompt=none+login").await;
        assert_eq!(redirected_error(&response), "invalid_request");
        // select_account: the sign-in form, where another account may be chosen.
        let response = browser.authorize(&client, &Pkce::new(), "&scope=openid&prompt=select_account").await;
        assert_eq!(location(&response), "/login");
    }
}

db_test! {
    async fn login_hint_fills_the_sign_in_form_and_decides_nothing(app: TestApp) {
        ada(&app).await;
        let bob = app.create_user("bob", PASSWORD).await;
        let client = oidc_app(&app, ClientSpec { skip_consent: true, ..ClientSpec::default() }).await;
        let browser = app.browser();
        let pkce = Pkce::new();

        let response = browser.authorize(&client, &pkce, "&scope=openid&login_hint=ada%22%3E%3Cb%3E").await;
        assert_eq!(location(&response), "/login");
        let page = browser.get("/login").await.text().await.unwrap();
        assert!(page.contains("value=\"ada&quot;&gt;&lt;b&gt;\""), "the hint, escaped: {page}");

        let response = browser.sign_in("bob", PASSWORD).await;
        let code = query_param(&location(&response), "code").unwrap();
        let token: serde_json::Value = app.exchange_code(&client, &code, &pkce.verifier).await.json().await.unwrap();
        assert_eq!(payload(token["id_token"].as_str().unwrap())["sub"], bob.id.to_string());
    }
}

db_test! {
    async fn a_refresh_repeats_the_sign_in_and_binds_the_new_access_token(app: TestApp) {
        let ada = ada(&app).await;
        let registered = oidc_app(&app, ClientSpec::default()).await;
        let rp = relying_party(&app, &registered).await;
        let browser = app.browser();
        let (tokens, nonce) = rp_sign_in(&app, &rp, &browser, &["read"]).await;
        let first = payload(&tokens.id_token().unwrap().to_string());
        tokio::time::sleep(std::time::Duration::from_millis(1100)).await;

        let http = http();
        let refreshed = rp
            .exchange_refresh_token(tokens.refresh_token().unwrap())
            .unwrap()
            .request_async(&|request| oauth2_http(http.clone(), request))
            .await
            .expect("the refresh succeeds");

        let id_token = refreshed.id_token().expect("a new ID token at refresh");
        let verifier = rp.id_token_verifier();
        let claims = id_token.claims(&verifier, &nonce).expect("it verifies, with the original nonce");
        assert_eq!(claims.subject().as_str(), ada.id.to_string());
        let again = payload(&id_token.to_string());
        for kept in ["iss", "sub", "aud", "auth_time", "sid", "nonce", "amr", "acr"] {
            assert_eq!(again[kept], first[kept], "{kept}");
        }
        assert!(again["iat"].as_i64() > first["iat"].as_i64());
        assert_eq!(again["at_hash"], sha256_at_hash(refreshed.access_token().secret()));
        assert_ne!(again["at_hash"], first["at_hash"]);

        // A refresh narrowed to scopes without openid gets no ID token.
        let narrowed = app.refresh(&registered, refreshed.refresh_token().unwrap().secret(), Some("read")).await;
        assert_eq!(narrowed.status(), StatusCode::OK);
        let narrowed: serde_json::Value = narrowed.json().await.unwrap();
        assert!(narrowed.get("id_token").is_none(), "{narrowed}");
    }
}

db_test! {
    async fn a_second_factor_shows_in_amr_and_acr(app: TestApp) {
        let ada = ada(&app).await;
        let (secret, _) = app.enroll_totp(&ada).await;
        let client = oidc_app(&app, ClientSpec { skip_consent: true, ..ClientSpec::default() }).await;
        let browser = app.browser();
        let pkce = Pkce::new();
        browser.authorize(&client, &pkce, "&scope=openid").await;
        assert_eq!(location(&browser.sign_in("ada", PASSWORD).await), "/login/2fa");

        let response = browser.second_step("totp", &totp_code(&secret, 0).await).await;

        let code = query_param(&location(&response), "code").unwrap();
        let token: serde_json::Value = app.exchange_code(&client, &code, &pkce.verifier).await.json().await.unwrap();
        let claims = payload(token["id_token"].as_str().unwrap());
        assert_eq!(claims["amr"], serde_json::json!(["pwd", "otp", "mfa"]));
        assert_eq!(claims["acr"], "2");
    }
}

/// `GET /userinfo` with `authorization` as the header.
async fn userinfo(app: &TestApp, authorization: Option<&str>) -> reqwest::Response {
    let mut request = app.http.get(app.url("/userinfo"));
    if let Some(value) = authorization {
        request = request.header("authorization", value);
    }
    request.send().await.unwrap()
}

fn challenge(response: &reqwest::Response) -> String {
    response.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned()
}

db_test! {
    async fn userinfo_answers_by_scope_and_refuses_as_rfc_6750_says(app: TestApp) {
        let ada = ada(&app).await;
        let client = oidc_app(&app, ClientSpec { skip_consent: true, ..ClientSpec::default() }).await;
        let browser = app.browser();
        let token = |scope: &'static str| {
            let (app, browser, client) = (&app, &browser, &client);
            async move {
                let response = code_flow(app, browser, client, &format!("&scope={scope}")).await;
                response["access_token"].as_str().unwrap().to_owned()
            }
        };
        let openid_only = token("openid").await;
        let everything = token("openid+profile+email").await;
        let no_openid = token("read+profile").await;

        let body: serde_json::Value = userinfo(&app, Some(&format!("Bearer {openid_only}"))).await.json().await.unwrap();
        assert_eq!(body, serde_json::json!({"sub": ada.id.to_string()}));
        let response = userinfo(&app, Some(&format!("bearer {everything}"))).await;
        assert_eq!(response.headers()["cache-control"], "no-store");
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body, serde_json::json!({
            "sub": ada.id.to_string(), "name": "Ada Lovelace", "preferred_username": "ada",
            "email": "ada@example.com", "email_verified": true,
        }));

        let response = userinfo(&app, None).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(challenge(&response), "Bearer realm=\"umbra\"");
        let response = userinfo(&app, Some("Bearer at_not-a-real-token")).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert!(challenge(&response).contains("error=\"invalid_token\""));
        let response = userinfo(&app, Some(&format!("Bearer {no_openid}"))).await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
        assert!(challenge(&response).contains("error=\"insufficient_scope\"") && challenge(&response).contains("scope=\"openid\""));

        // A client's own token is not a user's, whatever its scope.
        let service = app.service_client("openid").await;
        let client_token = app.issue_token(&service).await;
        assert_eq!(userinfo(&app, Some(&format!("Bearer {client_token}"))).await.status(), StatusCode::FORBIDDEN);

        // RFC 6750 §2.2: the form body, but never two ways at once.
        let response = app.http.post(app.url("/userinfo")).form(&[("access_token", openid_only.as_str())]).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let response = app.http.post(app.url("/userinfo"))
            .header("authorization", format!("Bearer {openid_only}"))
            .form(&[("access_token", openid_only.as_str())])
            .send().await.unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        let response = app.http.post(app.url("/userinfo")).header("authorization", format!("Bearer {everything}")).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);

        // Revoked: gone at once.
        assert_eq!(app.revoke(&client, &everything).await.status(), StatusCode::OK);
        let response = userinfo(&app, Some(&format!("Bearer {everything}"))).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert!(challenge(&response).contains("invalid_token"));
    }
}

db_test! {
    async fn oidc_scopes_ride_along_with_a_resource_and_userinfo_refuses_the_resources_token(app: TestApp) {
        ada(&app).await;
        const ORDERS: &str = "https://orders.example";
        app.create_resource(ORDERS, "orders:read", &[]).await;
        let client = oidc_app(&app, ClientSpec { skip_consent: true, ..ClientSpec::default() }).await;
        app.allow_resource(&client, ORDERS, None).await;
        let browser = app.browser();

        let response = code_flow(&app, &browser, &client, "&scope=openid+profile+orders:read&resource=https%3A%2F%2Forders.example").await;

        assert_eq!(response["scope"], "openid profile orders:read");
        assert!(response["id_token"].is_string(), "{response}");
        // Meant for the orders service: the profile is not its business.
        let access_token = response["access_token"].as_str().unwrap();
        let refused = userinfo(&app, Some(&format!("Bearer {access_token}"))).await;
        assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
        assert!(challenge(&refused).contains("invalid_token"));
        // A scope the client is not allowed is still refused beside a resource.
        let response = browser.authorize(&client, &Pkce::new(), "&scope=openid+write&resource=https%3A%2F%2Forders.example").await;
        assert_eq!(redirected_error(&response), "invalid_scope");
    }
}

db_test_with! {
    |settings| settings.keys.refresh_secs = 1,
    async fn an_id_token_is_signed_with_the_algorithm_its_client_registered(app: TestApp) {
        ada(&app).await;
        app.rotate_signing_key(SigningAlg::Es256).await;
        app.rotate_signing_key(SigningAlg::EdDsa).await;
        // The running app lists them once it has re-read its keys.
        tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
        let discovered = app.get_json("/.well-known/openid-configuration").await;
        assert_eq!(discovered["id_token_signing_alg_values_supported"], serde_json::json!(["RS256", "ES256", "EdDSA"]));

        for (alg, name) in [(SigningAlg::Es256, "ES256"), (SigningAlg::EdDsa, "EdDSA")] {
            let registered = oidc_app(&app, ClientSpec { id_token_alg: Some(alg), ..ClientSpec::default() }).await;
            let rp = relying_party(&app, &registered).await;
            let (tokens, nonce) = rp_sign_in(&app, &rp, &app.browser(), &[]).await;

            let id_token: &CoreIdToken = tokens.id_token().unwrap();
            assert_eq!(header(&id_token.to_string())["alg"], name);
            let verifier = rp.id_token_verifier();
            let claims = id_token.claims(&verifier, &nonce).unwrap_or_else(|e| panic!("{name}: {e}"));
            // EdDSA (Ed25519) hashes with SHA-512, as the relying party computes it.
            let expected = AccessTokenHash::from_token(
                tokens.access_token(),
                id_token.signing_alg().unwrap(),
                id_token.signing_key(&verifier).unwrap(),
            )
            .unwrap();
            assert_eq!(claims.access_token_hash(), Some(&expected), "{name}");
        }
    }
}

db_test_with! {
    |settings| settings.keys.refresh_secs = 1,
    async fn a_key_rotated_mid_test_leaves_old_id_tokens_verifiable_and_new_ones_use_the_new_key(app: TestApp) {
        ada(&app).await;
        let registered = oidc_app(&app, ClientSpec::default()).await;
        let rp = relying_party(&app, &registered).await;
        let browser = app.browser();
        let (before, before_nonce) = rp_sign_in(&app, &rp, &browser, &[]).await;
        let old_kid = header(&before.id_token().unwrap().to_string())["kid"].clone();

        let new_kid = app.rotate_signing_key(SigningAlg::Rs256).await;
        let mut after = None;
        for _ in 0..40 {
            let signed = rp_sign_in(&app, &rp, &browser, &[]).await;
            if header(&signed.0.id_token().unwrap().to_string())["kid"] == new_kid.as_str() {
                after = Some(signed);
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        }
        let (after, after_nonce) = after.expect("the running app signs with the new key within its refresh interval");

        assert_ne!(old_kid, serde_json::json!(new_kid));
        // A relying party that fetches the JWKS now verifies both.
        let fresh = relying_party(&app, &registered).await;
        let verifier = fresh.id_token_verifier();
        before.id_token().unwrap().claims(&verifier, &before_nonce).expect("the old ID token still verifies");
        after.id_token().unwrap().claims(&verifier, &after_nonce).expect("the new ID token verifies");
        let jwks = app.get_json("/jwks.json").await;
        let kids: Vec<&str> = jwks["keys"].as_array().unwrap().iter().map(|k| k["kid"].as_str().unwrap()).collect();
        assert!(kids.contains(&old_kid.as_str().unwrap()) && kids.contains(&new_kid.as_str()), "{kids:?}");
    }
}

db_test! {
    async fn a_code_redeemed_many_times_at_once_yields_one_id_token(app: TestApp) {
        ada(&app).await;
        let client = oidc_app(&app, ClientSpec { skip_consent: true, ..ClientSpec::default() }).await;
        let browser = app.browser();
        let pkce = Pkce::new();
        let path = format!(
            "/authorize?response_type=code&client_id={}&code_challenge={}&code_challenge_method=S256&scope=openid&nonce=n",
            client.id, pkce.challenge
        );
        let code = front_channel(&app, &browser, &path, "ada").await;

        let attempts = (0..20).map(|_| app.exchange_code(&client, &code, &pkce.verifier));
        let responses = futures_util::future::join_all(attempts).await;

        let mut id_tokens = 0;
        for response in responses {
            if response.status() == StatusCode::OK {
                let body: serde_json::Value = response.json().await.unwrap();
                assert!(body["id_token"].is_string());
                id_tokens += 1;
            } else {
                assert_eq!(response.status(), StatusCode::BAD_REQUEST);
            }
        }
        assert_eq!(id_tokens, 1);
    }
}

/// Whether `browser` is still signed in (an authorization request goes on without `/login`).
async fn signed_in(browser: &Browser, client: &TestClient) -> bool {
    let response = browser
        .authorize(client, &Pkce::new(), "&scope=openid")
        .await;
    location(&response) != "/login"
}

/// `GET /end-session` with `query`.
async fn end_session(browser: &Browser, query: &[(&str, &str)]) -> reqwest::Response {
    let encoded = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(query)
        .finish();
    browser.get(&format!("/end-session?{encoded}")).await
}

db_test! {
    async fn logout_with_the_sessions_id_token_signs_out_and_returns_to_the_registered_uri(app: TestApp) {
        ada(&app).await;
        let client = oidc_app(&app, ClientSpec { skip_consent: true, ..ClientSpec::default() }).await;
        let browser = app.browser();
        let tokens = code_flow(&app, &browser, &client, "&scope=openid").await;
        let hint = tokens["id_token"].as_str().unwrap();
        assert!(signed_in(&browser, &client).await);

        let response = end_session(&browser, &[
            ("id_token_hint", hint),
            ("post_logout_redirect_uri", LOGOUT_URI),
            ("state", "bye 1"),
        ]).await;

        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        assert_eq!(location(&response), format!("{LOGOUT_URI}?state=bye+1"));
        assert!(!signed_in(&browser, &client).await);
        // Without a return address: Umbra's own page.
        let again = app.browser();
        let tokens = code_flow(&app, &again, &client, "&scope=openid").await;
        let response = end_session(&again, &[("id_token_hint", tokens["id_token"].as_str().unwrap())]).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert!(response.text().await.unwrap().contains("You are signed out"));
        assert!(!signed_in(&again, &client).await);
    }
}

db_test! {
    async fn logout_without_the_sessions_id_token_asks_first(app: TestApp) {
        ada(&app).await;
        let client = oidc_app(&app, ClientSpec { skip_consent: true, ..ClientSpec::default() }).await;
        let browser = app.browser();
        let tokens = code_flow(&app, &browser, &client, "&scope=openid").await;

        // A cross-site GET names the client but proves nothing: a question, not a sign-out.
        let response = end_session(&browser, &[
            ("client_id", &client.id),
            ("post_logout_redirect_uri", LOGOUT_URI),
            ("state", "s"),
        ]).await;
        assert_eq!(response.status(), StatusCode::OK);
        let page = response.text().await.unwrap();
        assert!(page.contains("Sign out of Umbra?") && page.contains("app.example"), "{page}");
        assert!(signed_in(&browser, &client).await);
        // The same from another browser session of the same user: its ID token is not ours.
        let other = app.browser();
        code_flow(&app, &other, &client, "&scope=openid").await;
        let response = end_session(&other, &[("id_token_hint", tokens["id_token"].as_str().unwrap())]).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert!(response.text().await.unwrap().contains("Sign out of Umbra?"));
        assert!(signed_in(&other, &client).await);

        // The answer needs the page's form token.
        let form = |token: &str, decision: &str| vec![
            ("csrf_token", token.to_owned()),
            ("decision", decision.to_owned()),
            ("client_id", client.id.clone()),
            ("post_logout_redirect_uri", LOGOUT_URI.to_owned()),
            ("state", "s".to_owned()),
        ];
        let forged = browser.http.post(app.url("/end-session/confirm")).form(&form("forged", "sign_out")).send().await.unwrap();
        assert_eq!(forged.status(), StatusCode::FORBIDDEN);
        assert!(signed_in(&browser, &client).await);
        let token = hidden_field(&page, "csrf_token").unwrap();
        let stay = browser.http.post(app.url("/end-session/confirm")).form(&form(&token, "stay")).send().await.unwrap();
        assert_eq!(location(&stay), format!("{LOGOUT_URI}?state=s"));
        assert!(signed_in(&browser, &client).await);
        let response = browser.http.post(app.url("/end-session/confirm")).form(&form(&token, "sign_out")).send().await.unwrap();
        assert_eq!(location(&response), format!("{LOGOUT_URI}?state=s"));
        assert!(!signed_in(&browser, &client).await);

        // A bare request: the page's own form, as rendered, signs out to Umbra's page.
        let page = end_session(&other, &[]).await.text().await.unwrap();
        let fields: Vec<(&str, String)> = ["csrf_token", "client_id", "post_logout_redirect_uri", "state"]
            .into_iter()
            .map(|name| (name, hidden_field(&page, name).unwrap_or_else(|| panic!("{name}: {page}"))))
            .chain([("decision", "sign_out".to_owned())])
            .collect();
        assert_eq!(fields[1].1, "", "no client named, none sent back");
        let response = other.http.post(app.url("/end-session/confirm")).form(&fields).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert!(response.text().await.unwrap().contains("You are signed out"));
        assert!(!signed_in(&other, &client).await);
    }
}

db_test! {
    async fn logout_refuses_unregistered_addresses_and_foreign_hints_on_a_page(app: TestApp) {
        ada(&app).await;
        let client = oidc_app(&app, ClientSpec { skip_consent: true, ..ClientSpec::default() }).await;
        let other = oidc_app(&app, ClientSpec { skip_consent: true, ..ClientSpec::default() }).await;
        let browser = app.browser();
        let tokens = code_flow(&app, &browser, &client, "&scope=openid").await;
        let hint = tokens["id_token"].as_str().unwrap().to_owned();
        let mut tampered: Vec<String> = hint.split('.').map(str::to_owned).collect();
        let mut claims = payload(&hint);
        claims["sub"] = "someone-else".into();
        tampered[1] = URL_SAFE_NO_PAD.encode(claims.to_string());
        let tampered = tampered.join(".");
        let unsigned = format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#),
            URL_SAFE_NO_PAD.encode(payload(&hint).to_string())
        );

        for (what, query) in [
            ("an unregistered address", vec![("id_token_hint", hint.as_str()), ("post_logout_redirect_uri", "https://evil.example/")]),
            ("another client's address", vec![("client_id", other.id.as_str()), ("post_logout_redirect_uri", LOGOUT_URI.trim_end_matches("out"))]),
            ("an address without a client", vec![("post_logout_redirect_uri", LOGOUT_URI)]),
            ("a hint for another client", vec![("id_token_hint", hint.as_str()), ("client_id", other.id.as_str())]),
            ("a tampered hint", vec![("id_token_hint", tampered.as_str()), ("post_logout_redirect_uri", LOGOUT_URI)]),
            ("an unsigned hint", vec![("id_token_hint", unsigned.as_str()), ("post_logout_redirect_uri", LOGOUT_URI)]),
            ("a hint that is no JWS", vec![("id_token_hint", "garbage")]),
        ] {
            let response = end_session(&browser, &query).await;
            assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{what}");
            assert!(response.headers().get("location").is_none(), "{what}: never redirected");
        }
        assert!(signed_in(&browser, &client).await, "nothing signed the user out");
    }
}

db_test_with! {
    |settings| settings.tokens.id_token_ttl_secs = 1,
    async fn an_expired_id_token_still_identifies_the_session_at_logout(app: TestApp) {
        ada(&app).await;
        let client = oidc_app(&app, ClientSpec { skip_consent: true, ..ClientSpec::default() }).await;
        let browser = app.browser();
        let tokens = code_flow(&app, &browser, &client, "&scope=openid").await;
        tokio::time::sleep(std::time::Duration::from_millis(2100)).await;

        let response = end_session(&browser, &[
            ("id_token_hint", tokens["id_token"].as_str().unwrap()),
            ("post_logout_redirect_uri", LOGOUT_URI),
        ]).await;

        assert_eq!(location(&response), LOGOUT_URI);
        assert!(!signed_in(&browser, &client).await);
    }
}

db_test! {
    async fn email_verified_follows_a_confirmed_e_mail_factor_at_the_same_address(app: TestApp) {
        let ada = app.create_user("ada", PASSWORD).await;
        let unvouched = ProfileChange {
            email: Some(Some("Ada@Example.com".into())),
            ..ProfileChange::default()
        };
        app.store.update_user_profile(ada.id, &unvouched, umbra::clock::now()).await.unwrap();
        let client = oidc_app(&app, ClientSpec { skip_consent: true, ..ClientSpec::default() }).await;
        let tokens = code_flow(&app, &app.browser(), &client, "&scope=openid+email").await;
        let bearer = format!("Bearer {}", tokens["access_token"].as_str().unwrap());
        let claims = |response: reqwest::Response| async move {
            assert_eq!(response.status(), StatusCode::OK);
            response.json::<serde_json::Value>().await.unwrap()
        };
        assert_eq!(claims(userinfo(&app, Some(&bearer)).await).await["email_verified"], false);

        // The person proves they receive mail there: an e-mail factor confirmed at the address.
        let factors = umbra::startup::second_factor(
            &app.settings,
            app.store.clone(),
            std::sync::Arc::new(app.sender.clone()),
        )
        .unwrap();
        let now = umbra::clock::now();
        factors.start_sent_factor(&ada, umbra::auth::factor::FactorKind::Email, "ada@example.com", now).await.unwrap();
        let code = app.sender.last_code_to("ada@example.com");
        factors
            .confirm(&ada, umbra::auth::factor::FactorKind::Email, &code, &Default::default(), now)
            .await
            .unwrap();

        let body = claims(userinfo(&app, Some(&bearer)).await).await;
        assert_eq!(body["email"], "Ada@Example.com");
        assert_eq!(body["email_verified"], true);
        // Another profile address is not proved by that factor.
        let moved = ProfileChange {
            email: Some(Some("ada@elsewhere.example".into())),
            ..ProfileChange::default()
        };
        app.store.update_user_profile(ada.id, &moved, umbra::clock::now()).await.unwrap();
        assert_eq!(claims(userinfo(&app, Some(&bearer)).await).await["email_verified"], false);
    }
}

db_test! {
    async fn concurrent_refreshes_in_the_retry_window_all_repeat_the_same_sign_in(app: TestApp) {
        ada(&app).await;
        let client = oidc_app(&app, ClientSpec { skip_consent: true, ..ClientSpec::default() }).await;
        let tokens = code_flow(&app, &app.browser(), &client, "&scope=openid&nonce=n1").await;
        let first = payload(tokens["id_token"].as_str().unwrap());
        let refresh_token = tokens["refresh_token"].as_str().unwrap();

        let attempts = (0..12).map(|_| app.refresh(&client, refresh_token, None));
        let responses = futures_util::future::join_all(attempts).await;

        for response in responses {
            assert_eq!(response.status(), StatusCode::OK);
            let body: serde_json::Value = response.json().await.unwrap();
            let claims = payload(body["id_token"].as_str().unwrap());
            for kept in ["sub", "auth_time", "sid", "nonce", "amr", "acr"] {
                assert_eq!(claims[kept], first[kept], "{kept}");
            }
            assert_eq!(claims["at_hash"], sha256_at_hash(body["access_token"].as_str().unwrap()));
        }
    }
}
