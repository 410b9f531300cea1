//! Every `/authorize` error branch: an untrusted client or redirect URI gets an HTML page and
//! never a redirect; everything else goes back to the client with `error` and `state`.
use reqwest::StatusCode;
use umbra::oauth::grant_type::GrantType;
use umbra_tests::{ClientSpec, Pkce, REDIRECT_URI, location, query_param};

async fn assert_error_page(response: reqwest::Response) {
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(
        response.headers().get("location").is_none(),
        "an error page never redirects"
    );
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let page = response.text().await.unwrap();
    assert!(
        !page.contains("evil.example"),
        "the unregistered URI is not echoed"
    );
}

db_test! {
    async fn an_unknown_client_gets_an_error_page(app: TestApp) {
        let response = app
            .browser()
            .get(&format!("/authorize?response_type=code&client_id=nobody&redirect_uri={REDIRECT_URI}"))
            .await;

        assert_error_page(response).await;
    }
}

db_test! {
    async fn an_unregistered_redirect_uri_never_appears_in_a_location_header(app: TestApp) {
        let client = app.web_app(true).await;
        let browser = app.browser();
        for uri in [
            "https://evil.example/cb",
            "https%3A%2F%2Fapp.example%2Fcallback%2F",
            "https%3A%2F%2Fapp.example%2Fcallback%3Fnext%3Dhttps%3A%2F%2Fevil.example",
            "https%3A%2F%2Fapp.example%2Fcallback%23x",
        ] {
            let response = browser
                .authorize(&client, &Pkce::new(), &format!("&redirect_uri={uri}"))
                .await;
            assert_error_page(response).await;
        }
    }
}

db_test! {
    async fn a_missing_redirect_uri_with_several_registered_gets_an_error_page(app: TestApp) {
        let client = app
            .register(ClientSpec {
                public: true,
                grant_types: &[GrantType::AuthorizationCode],
                redirect_uris: &[REDIRECT_URI, "https://app.example/other"],
                ..ClientSpec::default()
            })
            .await;

        let response = app.browser().authorize(&client, &Pkce::new(), "").await;

        assert_error_page(response).await;
    }
}

db_test! {
    async fn a_repeated_parameter_gets_an_error_page(app: TestApp) {
        let client = app.web_app(true).await;

        let response = app
            .browser()
            .authorize(&client, &Pkce::new(), &format!("&client_id={}", client.id))
            .await;

        assert_error_page(response).await;
    }
}

/// The error the client receives for `extra` query parameters (state `st`).
async fn redirected_error(
    app: &umbra_tests::TestApp,
    client: &umbra_tests::TestClient,
    query: &str,
) -> String {
    let response = app
        .browser()
        .get(&format!(
            "/authorize?client_id={}&state=st{query}",
            client.id
        ))
        .await;
    let to = location(&response);
    assert!(to.starts_with(REDIRECT_URI), "{to}");
    assert_eq!(query_param(&to, "state").as_deref(), Some("st"));
    assert!(query_param(&to, "error_description").is_some());
    query_param(&to, "error").unwrap()
}

db_test! {
    async fn protocol_errors_are_redirected_to_the_client_with_the_state(app: TestApp) {
        let client = app.web_app(true).await;
        let pkce = Pkce::new();
        let s256 = format!("&code_challenge={}&code_challenge_method=S256", pkce.challenge);

        assert_eq!(redirected_error(&app, &client, &s256).await, "invalid_request", "missing response_type");
        assert_eq!(
            redirected_error(&app, &client, &format!("&response_type=token{s256}")).await,
            "unsupported_response_type"
        );
        assert_eq!(
            redirected_error(&app, &client, &format!("&response_type=code&scope=admin{s256}")).await,
            "invalid_scope"
        );
        assert_eq!(
            redirected_error(&app, &client, "&response_type=code").await,
            "invalid_request",
            "PKCE is required for a public client"
        );
        assert_eq!(
            redirected_error(&app, &client, &format!("&response_type=code&code_challenge={}&code_challenge_method=plain", pkce.verifier)).await,
            "invalid_request",
            "plain is refused"
        );
        assert_eq!(
            redirected_error(&app, &client, "&response_type=code&code_challenge=short&code_challenge_method=S256").await,
            "invalid_request"
        );
        assert_eq!(
            redirected_error(&app, &client, &format!("&response_type=code&prompt=none{s256}")).await,
            "login_required"
        );
    }
}

db_test! {
    async fn a_client_without_the_code_grant_is_unauthorized_client(app: TestApp) {
        let client = app
            .register(ClientSpec {
                grant_types: &[GrantType::ClientCredentials],
                redirect_uris: &[REDIRECT_URI],
                ..ClientSpec::default()
            })
            .await;
        let pkce = Pkce::new();

        let error = redirected_error(
            &app,
            &client,
            &format!("&response_type=code&code_challenge={}&code_challenge_method=S256", pkce.challenge),
        )
        .await;

        assert_eq!(error, "unauthorized_client");
    }
}

db_test! {
    async fn a_confidential_client_needs_pkce_by_default_but_not_when_configured_off(app: TestApp) {
        let client = app.web_app(false).await;

        assert_eq!(redirected_error(&app, &client, "&response_type=code").await, "invalid_request");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_pkce_optional_a_confidential_client_may_omit_it_but_not_send_a_verifier_later() {
    let app = umbra_tests::TestApp::spawn_with(umbra_tests::Backend::Sqlite, |s| {
        s.authorize.require_pkce_for_all = false
    })
    .await
    .unwrap();
    app.create_user("ada", "correct horse battery").await;
    let client = app.web_app(false).await;
    let browser = app.browser();
    let response = browser
        .get(&format!(
            "/authorize?response_type=code&client_id={}",
            client.id
        ))
        .await;
    assert_eq!(location(&response), "/login");
    browser.sign_in("ada", "correct horse battery").await;
    let code = query_param(&location(&browser.consent("approve").await), "code").unwrap();

    let response = app
        .exchange_code(&client, &code, &Pkce::new().verifier)
        .await;

    umbra_tests::assert_oauth_error(response, StatusCode::BAD_REQUEST, "invalid_grant").await;
}
