//! An independent client library, the Rust `oauth2` crate, drives Umbra: what a real
//! application would do, with nothing of our own test helpers on the protocol side.
use oauth2::basic::BasicClient;
use oauth2::{
    AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, PkceCodeChallenge, RedirectUrl,
    Scope, TokenResponse, TokenUrl,
};
use umbra_tests::{REDIRECT_URI, TestApp, location, oauth2_http as send, query_param};

fn urls(app: &TestApp) -> (AuthUrl, TokenUrl) {
    (
        AuthUrl::new(app.url("/authorize")).unwrap(),
        TokenUrl::new(app.url("/token")).unwrap(),
    )
}

db_test! {
    async fn the_oauth2_crate_runs_the_code_flow_with_pkce_and_refreshes(app: TestApp) {
        app.create_user("ada", "correct horse battery").await;
        let registered = app.web_app(false).await;
        let rs = app.resource_server().await;
        let (auth_url, token_url) = urls(&app);
        let client = BasicClient::new(ClientId::new(registered.id.clone()))
            .set_client_secret(ClientSecret::new(registered.secret.clone().unwrap()))
            .set_auth_uri(auth_url)
            .set_token_uri(token_url)
            .set_redirect_uri(RedirectUrl::new(REDIRECT_URI.to_owned()).unwrap());
        let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        let http_client = |request| send(http.clone(), request);
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let (authorize_url, csrf) = client
            .authorize_url(CsrfToken::new_random)
            .add_scope(Scope::new("read".into()))
            .set_pkce_challenge(challenge)
            .url();

        let browser = app.browser();
        let path = &authorize_url.as_str()[app.address.len()..];
        assert_eq!(location(&browser.get(path).await), "/login");
        assert_eq!(location(&browser.sign_in("ada", "correct horse battery").await), "/consent");
        let back = location(&browser.consent("approve").await);
        assert_eq!(query_param(&back, "state").as_deref(), Some(csrf.secret().as_str()));
        let code = query_param(&back, "code").unwrap();

        let tokens = client
            .exchange_code(AuthorizationCode::new(code))
            .set_pkce_verifier(verifier)
            .request_async(&http_client)
            .await
            .expect("the code exchange succeeds");
        let answer = app.introspection_of(&rs, tokens.access_token().secret()).await;
        assert_eq!(answer["username"], "ada");
        let refreshed = client
            .exchange_refresh_token(tokens.refresh_token().unwrap())
            .request_async(&http_client)
            .await
            .expect("the refresh succeeds");
        assert_ne!(refreshed.refresh_token().unwrap().secret(), tokens.refresh_token().unwrap().secret());
        // Once its successor is used, the first refresh token is spent beyond any retry window.
        client
            .exchange_refresh_token(refreshed.refresh_token().unwrap())
            .request_async(&http_client)
            .await
            .expect("the successor refreshes in turn");
        let reused = client
            .exchange_refresh_token(tokens.refresh_token().unwrap())
            .request_async(&http_client)
            .await;
        assert!(reused.is_err(), "the rotated refresh token is refused");
    }
}

db_test! {
    async fn the_oauth2_crate_gets_a_client_credentials_token(app: TestApp) {
        let registered = app.service_client("read write").await;
        let (auth_url, token_url) = urls(&app);
        let client = BasicClient::new(ClientId::new(registered.id.clone()))
            .set_client_secret(ClientSecret::new(registered.secret.clone().unwrap()))
            .set_auth_uri(auth_url)
            .set_token_uri(token_url);
        let http = reqwest::Client::new();

        let token = client
            .exchange_client_credentials()
            .add_scope(Scope::new("write".into()))
            .request_async(&|request| send(http.clone(), request))
            .await
            .expect("client credentials succeed");

        assert!(token.access_token().secret().starts_with("at_"));
        assert_eq!(token.scopes().unwrap()[0].as_str(), "write");
    }
}
