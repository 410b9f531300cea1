//! The authorization code flow with PKCE through the real pages (RFC 6749 §4.1, RFC 7636).
use futures_util::future::join_all;
use reqwest::StatusCode;
use serde_json::json;
use umbra_tests::{Pkce, REDIRECT_URI, assert_oauth_error, location, query_param};

db_test! {
    async fn a_public_client_gets_tokens_for_the_user_through_the_pages(app: TestApp) {
        let user = app.create_user("Ada", "correct horse battery").await;
        let client = app.web_app(true).await;
        let rs = app.resource_server().await;
        let browser = app.browser();
        let pkce = Pkce::new();

        let response = browser.authorize(&client, &pkce, "&scope=read&state=xyz").await;
        assert_eq!(location(&response), "/login");
        let login_page = browser.get("/login").await.text().await.unwrap();
        assert!(login_page.contains("Test client"), "the sign-in page names the application");
        let response = browser.sign_in("ada", "correct horse battery").await;
        assert_eq!(location(&response), "/consent");
        let consent_page = browser.get("/consent").await.text().await.unwrap();
        assert!(consent_page.contains("Read your data") && consent_page.contains("Test client"));
        let response = browser.consent("approve").await;
        let redirect = location(&response);
        assert!(redirect.starts_with(&format!("{REDIRECT_URI}?code=ac_")), "{redirect}");
        assert_eq!(query_param(&redirect, "state").as_deref(), Some("xyz"));
        assert_eq!(query_param(&redirect, "iss").as_deref(), Some(app.settings.server.issuer.as_str()));
        let code = query_param(&redirect, "code").unwrap();

        let response = app.exchange_code(&client, &code, &pkce.verifier).await;

        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["cache-control"], "no-store");
        let tokens: serde_json::Value = response.json().await.unwrap();
        assert_eq!(tokens["scope"], "read");
        assert!(tokens["refresh_token"].as_str().unwrap().starts_with("rt_"));
        let answer = app.introspection_of(&rs, tokens["access_token"].as_str().unwrap()).await;
        assert_eq!(answer["active"], true);
        assert_eq!(answer["sub"], user.id.to_string());
        assert_eq!(answer["username"], "Ada");
        assert_eq!(answer["client_id"], client.id.as_str());
    }
}

db_test! {
    async fn a_confidential_client_redeems_with_its_secret(app: TestApp) {
        app.create_user("bob", "hunter2hunter2").await;
        let client = app.web_app(false).await;
        let browser = app.browser();
        let pkce = Pkce::new();
        let code = app.authorization_code(&browser, &client, &pkce, "bob", "hunter2hunter2").await;

        let response = app.exchange_code(&client, &code, &pkce.verifier).await;

        assert_eq!(response.status(), StatusCode::OK);
    }
}

db_test! {
    async fn a_wrong_or_missing_pkce_verifier_is_invalid_grant(app: TestApp) {
        app.create_user("ada", "correct horse battery").await;
        let client = app.web_app(true).await;
        let pkce = Pkce::new();

        let code = app.authorization_code(&app.browser(), &client, &pkce, "ada", "correct horse battery").await;
        let response = app.exchange_code(&client, &code, &Pkce::new().verifier).await;
        assert_oauth_error(response, StatusCode::BAD_REQUEST, "invalid_grant").await;

        let code = app.authorization_code(&app.browser(), &client, &pkce, "ada", "correct horse battery").await;
        let response = app
            .post_token(None, &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", REDIRECT_URI),
                ("client_id", &client.id),
            ])
            .await;
        assert_oauth_error(response, StatusCode::BAD_REQUEST, "invalid_grant").await;
    }
}

db_test! {
    async fn a_code_bound_to_one_redirect_uri_cannot_be_redeemed_with_another(app: TestApp) {
        app.create_user("ada", "correct horse battery").await;
        let client = app.web_app(true).await;
        let pkce = Pkce::new();
        let browser = app.browser();
        let response = browser
            .authorize(&client, &pkce, &format!("&redirect_uri={REDIRECT_URI}"))
            .await;
        assert_eq!(location(&response), "/login");
        browser.sign_in("ada", "correct horse battery").await;
        let code = query_param(&location(&browser.consent("approve").await), "code").unwrap();

        let response = app
            .post_token(None, &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", "https://app.example/other"),
                ("client_id", &client.id),
                ("code_verifier", &pkce.verifier),
            ])
            .await;

        assert_oauth_error(response, StatusCode::BAD_REQUEST, "invalid_grant").await;
    }
}

db_test! {
    async fn a_replayed_code_is_refused_and_revokes_the_tokens_it_issued(app: TestApp) {
        app.create_user("ada", "correct horse battery").await;
        let client = app.web_app(true).await;
        let rs = app.resource_server().await;
        let pkce = Pkce::new();
        let code = app.authorization_code(&app.browser(), &client, &pkce, "ada", "correct horse battery").await;
        let first: serde_json::Value = app.exchange_code(&client, &code, &pkce.verifier).await.json().await.unwrap();
        let access = first["access_token"].as_str().unwrap();
        assert_eq!(app.introspection_of(&rs, access).await["active"], true);

        let replay = app.exchange_code(&client, &code, &pkce.verifier).await;

        assert_oauth_error(replay, StatusCode::BAD_REQUEST, "invalid_grant").await;
        assert_eq!(app.introspection_of(&rs, access).await, json!({"active": false}));
        let refresh = app.refresh(&client, first["refresh_token"].as_str().unwrap(), None).await;
        assert_oauth_error(refresh, StatusCode::BAD_REQUEST, "invalid_grant").await;
    }
}

db_test! {
    async fn concurrent_redemptions_of_one_code_give_exactly_one_success(app: TestApp) {
        app.create_user("ada", "correct horse battery").await;
        let client = app.web_app(true).await;
        let pkce = Pkce::new();
        let code = app.authorization_code(&app.browser(), &client, &pkce, "ada", "correct horse battery").await;

        let responses = join_all((0..10).map(|_| app.exchange_code(&client, &code, &pkce.verifier))).await;

        let statuses: Vec<StatusCode> = responses.iter().map(|r| r.status()).collect();
        assert_eq!(statuses.iter().filter(|s| **s == StatusCode::OK).count(), 1, "{statuses:?}");
        assert!(statuses.iter().all(|s| *s == StatusCode::OK || *s == StatusCode::BAD_REQUEST), "{statuses:?}");
    }
}

db_test! {
    async fn a_code_issued_to_one_client_is_useless_to_another(app: TestApp) {
        app.create_user("ada", "correct horse battery").await;
        let client = app.web_app(true).await;
        let other = app.web_app(true).await;
        let pkce = Pkce::new();
        let code = app.authorization_code(&app.browser(), &client, &pkce, "ada", "correct horse battery").await;

        let response = app.exchange_code(&other, &code, &pkce.verifier).await;

        assert_oauth_error(response, StatusCode::BAD_REQUEST, "invalid_grant").await;
    }
}

db_test! {
    async fn an_expired_code_is_invalid_grant(app: TestApp) {
        app.create_user("ada", "correct horse battery").await;
        let client = app.web_app(true).await;
        let pkce = Pkce::new();
        let code = app.authorization_code(&app.browser(), &client, &pkce, "ada", "correct horse battery").await;
        let db = app.store.connection();
        use sea_orm::{ConnectionTrait, Statement};
        db.execute_raw(Statement::from_string(db.get_database_backend(), "UPDATE authorization_codes SET expires_at = 0"))
            .await
            .unwrap();

        let response = app.exchange_code(&client, &code, &pkce.verifier).await;

        assert_oauth_error(response, StatusCode::BAD_REQUEST, "invalid_grant").await;
    }
}
