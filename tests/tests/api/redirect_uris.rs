//! Redirect URIs and what goes back to them: native apps on a loopback port chosen at run
//! time (RFC 8252 §7.3), exact matching for everything else, and `state` returned on every
//! error redirect (RFC 6749 §4.1.2.1).
use reqwest::StatusCode;
use umbra::oauth::authorize::MAX_STATE_LEN;
use umbra::oauth::grant_type::GrantType;
use umbra_tests::{
    ClientSpec, Pkce, TestApp, TestClient, assert_oauth_error, location, query_param,
};

const PASSWORD: &str = "correct horse battery";

async fn native_app(app: &TestApp) -> TestClient {
    app.register(ClientSpec {
        public: true,
        scopes: "read",
        grant_types: &[GrantType::AuthorizationCode],
        redirect_uris: &["http://127.0.0.1/callback", "http://[::1]/callback"],
        ..ClientSpec::default()
    })
    .await
}

fn encoded(uri: &str) -> String {
    url::form_urlencoded::byte_serialize(uri.as_bytes()).collect()
}

db_test! {
    async fn a_native_app_gets_its_code_on_the_loopback_port_it_chose(app: TestApp) {
        app.create_user("ada", PASSWORD).await;
        let client = native_app(&app).await;
        for redirect_uri in ["http://127.0.0.1:51004/callback", "http://[::1]:8/callback"] {
            let browser = app.browser();
            let pkce = Pkce::new();
            let extra = format!("&scope=read&state=s&redirect_uri={}", encoded(redirect_uri));

            let response = browser.authorize(&client, &pkce, &extra).await;

            assert_eq!(location(&response), "/login", "{redirect_uri}");
            let mut response = browser.sign_in("ada", PASSWORD).await;
            if location(&response) == "/consent" {
                response = browser.consent("approve").await;
            }
            let to = location(&response);
            assert!(to.starts_with(&format!("{redirect_uri}?code=")), "{to}");
            let code = query_param(&to, "code").unwrap();
            // The token request repeats the URI of the request, port included.
            let other_port = redirect_uri.replace(":51004/", ":51005/").replace(":8/", ":9/");
            let wrong = [("grant_type", "authorization_code"), ("code", code.as_str()), ("redirect_uri", other_port.as_str()), ("code_verifier", pkce.verifier.as_str()), ("client_id", client.id.as_str())];
            assert_oauth_error(app.post_token(None, &wrong).await, StatusCode::BAD_REQUEST, "invalid_grant").await;

            let code = {
                let pkce = Pkce::new();
                let to = location(&browser.authorize(&client, &pkce, &extra).await);
                (query_param(&to, "code").expect("consent remembered"), pkce)
            };
            let right = [("grant_type", "authorization_code"), ("code", code.0.as_str()), ("redirect_uri", redirect_uri), ("code_verifier", code.1.verifier.as_str()), ("client_id", client.id.as_str())];
            assert_eq!(app.post_token(None, &right).await.status(), StatusCode::OK);
        }
    }
}

db_test! {
    async fn another_path_host_or_scheme_on_loopback_is_still_refused_without_a_redirect(app: TestApp) {
        let client = native_app(&app).await;
        for redirect_uri in [
            "http://127.0.0.1:51004/other",
            "http://127.0.0.1:51004/callback/",
            "http://localhost:51004/callback",
            "https://127.0.0.1:51004/callback",
            "http://127.0.0.1.evil.example:51004/callback",
            "http://127.0.0.1:51004@evil.example/callback",
        ] {
            let extra = format!("&state=s&redirect_uri={}", encoded(redirect_uri));

            let response = app.browser().authorize(&client, &Pkce::new(), &extra).await;

            assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{redirect_uri}");
            assert!(response.headers().get("location").is_none(), "{redirect_uri}");
        }
    }
}

db_test! {
    async fn an_overlong_state_is_refused_and_still_returned(app: TestApp) {
        let client = app.web_app(true).await;
        let state = "s".repeat(MAX_STATE_LEN + 1);

        let response = app.browser().authorize(&client, &Pkce::new(), &format!("&state={state}")).await;

        let to = location(&response);
        assert_eq!(query_param(&to, "error").as_deref(), Some("invalid_request"));
        assert_eq!(query_param(&to, "state").as_deref(), Some(state.as_str()));
    }
}

db_test! {
    async fn a_state_too_large_for_the_session_is_refused_with_its_state_not_a_500(app: TestApp) {
        let client = app.web_app(true).await;
        // Within the length limit, but every character is escaped twice in the session cookie.
        for state in ["\"".repeat(MAX_STATE_LEN), "\\".repeat(MAX_STATE_LEN)] {
            let extra = format!("&state={}", encoded(&state));

            let response = app.browser().authorize(&client, &Pkce::new(), &extra).await;

            let to = location(&response);
            assert_eq!(query_param(&to, "error").as_deref(), Some("invalid_request"), "{to}");
            assert_eq!(query_param(&to, "state").as_deref(), Some(state.as_str()));
        }
    }
}
