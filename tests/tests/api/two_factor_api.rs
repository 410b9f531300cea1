//! The JSON enrolment API: bearer tokens with the `account` scope (RFC 6750), TOTP and e-mail
//! enrolment, listing, removal and recovery codes.
use reqwest::StatusCode;
use umbra_tests::{TestApp, totp_code};

const PASSWORD: &str = "correct horse battery";

fn api(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    token: Option<&str>,
) -> reqwest::RequestBuilder {
    let mut request = app
        .http
        .request(method, app.url(&format!("/api/account{path}")));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request
}

fn challenge(response: &reqwest::Response) -> String {
    response.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned()
}

db_test! {
    async fn the_api_refuses_missing_invalid_and_insufficient_tokens_per_rfc_6750(app: TestApp) {
        app.create_user("ada", PASSWORD).await;
        let client = app.account_app().await;
        let read_only = app.user_access_token(&client, "ada", PASSWORD, "read").await;
        let service = app.service_client("account").await;
        let machine = app.issue_token(&service).await;

        let missing = api(&app, reqwest::Method::GET, "/factors", None).send().await.unwrap();
        let garbage = api(&app, reqwest::Method::GET, "/factors", Some("at_nonsense")).send().await.unwrap();
        let narrow = api(&app, reqwest::Method::GET, "/factors", Some(&read_only)).send().await.unwrap();
        let not_a_user = api(&app, reqwest::Method::GET, "/factors", Some(&machine)).send().await.unwrap();

        assert_eq!(missing.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(challenge(&missing), "Bearer realm=\"umbra\"");
        assert_eq!(garbage.status(), StatusCode::UNAUTHORIZED);
        assert!(challenge(&garbage).contains("error=\"invalid_token\""));
        for response in [narrow, not_a_user] {
            assert_eq!(response.status(), StatusCode::FORBIDDEN);
            let header = challenge(&response);
            assert!(header.contains("error=\"insufficient_scope\"") && header.contains("scope=\"account\""), "{header}");
            let body: serde_json::Value = response.json().await.unwrap();
            assert_eq!(body["error"], "insufficient_scope");
        }
    }
}

db_test! {
    async fn a_revoked_token_no_longer_opens_the_api(app: TestApp) {
        app.create_user("ada", PASSWORD).await;
        let client = app.account_app().await;
        let token = app.user_access_token(&client, "ada", PASSWORD, "account").await;
        let ok = api(&app, reqwest::Method::GET, "/factors", Some(&token)).send().await.unwrap();
        assert_eq!(ok.status(), StatusCode::OK);

        app.store
            .revoke(umbra::oauth::revocation::RevocationTarget::of(&token).unwrap(), &client.id, umbra::clock::now())
            .await
            .unwrap();

        // Revoked beside the app: its introspection cache learns it from the change log,
        // within a poll.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        let response = loop {
            let response = api(&app, reqwest::Method::GET, "/factors", Some(&token)).send().await.unwrap();
            if response.status() != StatusCode::OK || std::time::Instant::now() > deadline {
                break response;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        };
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert!(challenge(&response).contains("invalid_token"));
    }
}

db_test! {
    async fn an_app_enrols_totp_lists_it_regenerates_codes_and_removes_it(app: TestApp) {
        let ada = app.create_user("ada", PASSWORD).await;
        let client = app.account_app().await;
        let token = app.user_access_token(&client, "ada", PASSWORD, "account").await;

        let response = api(&app, reqwest::Method::POST, "/factors/totp", Some(&token)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["cache-control"], "no-store");
        let started: serde_json::Value = response.json().await.unwrap();
        let secret = started["secret"].as_str().unwrap().to_owned();
        assert!(started["otpauth_uri"].as_str().unwrap().starts_with("otpauth://totp/Umbra:ada?"));

        let wrong = api(&app, reqwest::Method::POST, "/factors/totp/confirm", Some(&token))
            .json(&serde_json::json!({"code": "000000"})).send().await.unwrap();
        assert_eq!(wrong.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let response = api(&app, reqwest::Method::POST, "/factors/totp/confirm", Some(&token))
            .json(&serde_json::json!({"code": totp_code(&secret, 0).await})).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let confirmed: serde_json::Value = response.json().await.unwrap();
        assert_eq!(confirmed["recovery_codes"].as_array().unwrap().len(), 10);

        let listed: serde_json::Value = api(&app, reqwest::Method::GET, "/factors", Some(&token))
            .send().await.unwrap().json().await.unwrap();
        assert_eq!(listed["factors"][0]["kind"], "totp");
        assert_eq!(listed["factors"][0]["confirmed"], true);
        assert_eq!(listed["recovery_codes_left"], 10);

        // The user now has a factor: new recovery codes need a fresh proof (step-up).
        let regenerated: serde_json::Value = api(&app, reqwest::Method::POST, "/recovery-codes", Some(&token))
            .json(&serde_json::json!({"password": PASSWORD})).send().await.unwrap().json().await.unwrap();
        let new_codes = regenerated["recovery_codes"].as_array().unwrap();
        assert_eq!(new_codes.len(), 10);
        assert_ne!(new_codes[0], confirmed["recovery_codes"][0]);

        let refused = api(&app, reqwest::Method::DELETE, "/factors/totp", Some(&token))
            .json(&serde_json::json!({})).send().await.unwrap();
        assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let removed = api(&app, reqwest::Method::DELETE, "/factors/totp", Some(&token))
            .json(&serde_json::json!({"password": PASSWORD})).send().await.unwrap();
        assert_eq!(removed.status(), StatusCode::NO_CONTENT);
        assert!(app.store.factors(ada.id).await.unwrap().is_empty());
    }
}

db_test! {
    async fn an_app_enrols_an_email_factor_with_the_code_that_was_sent(app: TestApp) {
        let ada = app.create_user("ada", PASSWORD).await;
        let client = app.account_app().await;
        let token = app.user_access_token(&client, "ada", PASSWORD, "account").await;

        let bad = api(&app, reqwest::Method::POST, "/factors/email", Some(&token))
            .json(&serde_json::json!({"destination": "not an address"})).send().await.unwrap();
        assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
        let response = api(&app, reqwest::Method::POST, "/factors/email", Some(&token))
            .json(&serde_json::json!({"destination": "ada@example.com"})).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::ACCEPTED);
        let throttled = api(&app, reqwest::Method::POST, "/factors/email/resend", Some(&token)).send().await.unwrap();
        assert_eq!(throttled.status(), StatusCode::TOO_MANY_REQUESTS);
        assert!(throttled.headers().contains_key("retry-after"));
        let restarted = api(&app, reqwest::Method::POST, "/factors/email", Some(&token))
            .json(&serde_json::json!({"destination": "someone.else@example.com"})).send().await.unwrap();
        assert_eq!(restarted.status(), StatusCode::TOO_MANY_REQUESTS, "starting over is throttled too");
        assert_eq!(app.sender.sent().len(), 1);

        let code = app.sender.last_code_to("ada@example.com");
        let response = api(&app, reqwest::Method::POST, "/factors/email/confirm", Some(&token))
            .json(&serde_json::json!({"code": code})).send().await.unwrap();

        assert_eq!(response.status(), StatusCode::OK);
        let factor = app.store.factor(ada.id, umbra::auth::factor::FactorKind::Email).await.unwrap().unwrap();
        assert!(factor.confirmed());
        assert_eq!(factor.destination.as_deref(), Some("ada@example.com"));
        assert_eq!(app.sender.sent()[0].purpose, umbra::sender::Purpose::Enrolment);
    }
}
