//! Consent: remembered per (user, client, scopes), forced by `prompt=consent`, skipped for
//! first-party clients, withdrawn from the account page.
use reqwest::StatusCode;
use serde_json::json;
use umbra::oauth::grant_type::GrantType;
use umbra_tests::{
    Browser, ClientSpec, Pkce, REDIRECT_URI, TestApp, TestClient, location, query_param,
};

/// Signs `browser` in as ada and approves `client` once; returns the tokens.
pub(super) async fn approved_once(
    app: &TestApp,
    browser: &Browser,
    client: &TestClient,
) -> serde_json::Value {
    app.create_user("ada", "correct horse battery").await;
    let pkce = Pkce::new();
    let code = app
        .authorization_code(browser, client, &pkce, "ada", "correct horse battery")
        .await;
    app.exchange_code(client, &code, &pkce.verifier)
        .await
        .json()
        .await
        .unwrap()
}

db_test! {
    async fn a_remembered_consent_skips_the_page_for_the_same_or_fewer_scopes(app: TestApp) {
        let client = app.web_app(true).await;
        let browser = app.browser();
        approved_once(&app, &browser, &client).await;

        let response = browser.authorize(&client, &Pkce::new(), "&scope=read&state=again").await;

        let to = location(&response);
        assert!(to.starts_with(REDIRECT_URI), "no consent page: {to}");
        assert!(query_param(&to, "code").is_some());
    }
}

db_test! {
    async fn prompt_consent_forces_the_page_and_prompt_login_forces_sign_in(app: TestApp) {
        let client = app.web_app(true).await;
        let browser = app.browser();
        approved_once(&app, &browser, &client).await;

        let response = browser.authorize(&client, &Pkce::new(), "&prompt=consent").await;
        assert_eq!(location(&response), "/consent");

        let response = browser.authorize(&client, &Pkce::new(), "&prompt=login").await;
        assert_eq!(location(&response), "/login");
        let response = browser.sign_in("ada", "correct horse battery").await;
        assert!(location(&response).starts_with(REDIRECT_URI), "consent is remembered after the fresh sign-in");
    }
}

db_test! {
    async fn denying_sends_access_denied_with_the_state(app: TestApp) {
        app.create_user("ada", "correct horse battery").await;
        let client = app.web_app(true).await;
        let browser = app.browser();
        browser.authorize(&client, &Pkce::new(), "&state=keep-me").await;
        browser.sign_in("ada", "correct horse battery").await;

        let response = browser.consent("deny").await;

        let to = location(&response);
        assert_eq!(query_param(&to, "error").as_deref(), Some("access_denied"));
        assert_eq!(query_param(&to, "state").as_deref(), Some("keep-me"));
    }
}

db_test! {
    async fn a_first_party_client_skips_consent(app: TestApp) {
        app.create_user("ada", "correct horse battery").await;
        let client = app
            .register(ClientSpec {
                public: true,
                scopes: "read",
                grant_types: &[GrantType::AuthorizationCode],
                redirect_uris: &[REDIRECT_URI],
                ..ClientSpec::default()
            })
            .await;
        let db = app.store.connection();
        use sea_orm::{ConnectionTrait, Statement};
        db.execute_raw(Statement::from_string(db.get_database_backend(), "UPDATE clients SET skip_consent = true"))
            .await
            .unwrap();
        let browser = app.browser();
        browser.authorize(&client, &Pkce::new(), "").await;

        let response = browser.sign_in("ada", "correct horse battery").await;

        assert!(location(&response).starts_with(REDIRECT_URI));
    }
}

db_test! {
    async fn withdrawing_consent_revokes_the_tokens_and_asks_again(app: TestApp) {
        let client = app.web_app(true).await;
        let rs = app.resource_server().await;
        let browser = app.browser();
        let tokens = approved_once(&app, &browser, &client).await;
        let page = browser.get("/account").await.text().await.unwrap();
        assert!(page.contains("Test client") && page.contains("read write"), "{page}");
        let csrf = browser.form_token("/account").await;

        let response = browser
            .post(&format!("/account/consents/{}/withdraw", client.id), &[("csrf_token", &csrf)])
            .await;

        assert_eq!(location(&response), "/account");
        assert_eq!(app.introspection_of(&rs, tokens["access_token"].as_str().unwrap()).await, json!({"active": false}));
        let refresh = app.refresh(&client, tokens["refresh_token"].as_str().unwrap(), None).await;
        assert_eq!(refresh.status(), StatusCode::BAD_REQUEST);
        let response = browser.authorize(&client, &Pkce::new(), "").await;
        assert_eq!(location(&response), "/consent");
        let revoked: Vec<_> = app.store.list_audit(None, 100).await.unwrap()
            .into_iter().filter(|e| e.event == "token.revoked").collect();
        assert_eq!(revoked.len(), 1);
        assert_eq!(revoked[0].client_id.as_deref(), Some(client.id.as_str()));
        assert_eq!(revoked[0].username.as_deref(), Some("ada"));
    }
}

db_test! {
    async fn a_wider_request_than_remembered_asks_again(app: TestApp) {
        let client = app.web_app(true).await;
        let browser = app.browser();
        app.create_user("ada", "correct horse battery").await;
        browser.authorize(&client, &Pkce::new(), "&scope=read").await;
        browser.sign_in("ada", "correct horse battery").await;
        browser.consent("approve").await;

        let response = browser.authorize(&client, &Pkce::new(), "&scope=read+write").await;

        assert_eq!(location(&response), "/consent");
    }
}
