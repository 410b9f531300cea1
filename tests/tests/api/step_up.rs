//! Step-up for security changes and sessions that can be ended (issue 8, item 4): a session
//! that did not pass the second factor, or a bearer token, cannot change what protects an
//! account that has one without a fresh proof; a moved security stamp signs out every session.
use futures_util::future::join_all;
use reqwest::StatusCode;
use umbra::auth::password::Passwords;
use umbra::store::User;
use umbra_tests::{Browser, TestApp, hidden_field, location, totp_code};

const PASSWORD: &str = "correct horse battery";

/// `METHOD /api/account{path}` with the bearer token and a JSON body.
async fn api(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    token: &str,
    body: serde_json::Value,
) -> reqwest::Response {
    app.http
        .request(method, app.url(&format!("/api/account{path}")))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap()
}

/// A browser signed in with the password alone (the user has no factor yet).
async fn signed_in(app: &TestApp) -> Browser {
    let browser = app.browser();
    let response = browser.sign_in("ada", PASSWORD).await;
    assert_eq!(location(&response), "/account");
    browser
}

/// A browser signed in with the password and a code of the authenticator `secret`.
async fn signed_in_with_totp(app: &TestApp, secret: &str) -> Browser {
    let browser = app.browser();
    assert_eq!(
        location(&browser.sign_in("ada", PASSWORD).await),
        "/login/2fa"
    );
    let response = browser
        .second_step("totp", &totp_code(secret, 0).await)
        .await;
    assert_eq!(location(&response), "/account");
    browser
}

/// Posts a form of the account page with its CSRF token.
async fn post_account_form(
    browser: &Browser,
    path: &str,
    fields: &[(&str, &str)],
) -> reqwest::Response {
    let token = browser.form_token("/account").await;
    let mut form = vec![("csrf_token", token.as_str())];
    form.extend_from_slice(fields);
    browser.post(path, &form).await
}

/// Where `GET /account` sends the browser: "" when the page is shown.
async fn account_location(browser: &Browser) -> String {
    let response = browser.get("/account").await;
    if response.status() == StatusCode::OK {
        String::new()
    } else {
        location(&response)
    }
}

async fn new_password(app: &TestApp, user: &User) {
    let hash = Passwords::new(&app.settings.passwords)
        .unwrap()
        .hash("another horse battery")
        .unwrap();
    assert!(
        app.store
            .set_user_password(user.id, hash, umbra::clock::now())
            .await
            .unwrap()
    );
}

db_test! {
    async fn a_session_that_passed_the_second_factor_makes_new_recovery_codes(app: TestApp) {
        let ada = app.create_user("ada", PASSWORD).await;
        let (secret, old_codes) = app.enroll_totp(&ada).await;
        let browser = signed_in_with_totp(&app, &secret).await;

        let response = post_account_form(&browser, "/account/recovery-codes", &[]).await;

        assert_eq!(response.status(), StatusCode::OK);
        let page = response.text().await.unwrap();
        assert!(!page.contains(&old_codes[0]));
        assert_eq!(app.store.recovery_codes_left(ada.id).await.unwrap(), 10);
    }
}

db_test! {
    async fn a_session_that_did_not_pass_a_factor_added_since_is_sent_to_the_second_step_first(app: TestApp) {
        let ada = app.create_user("ada", PASSWORD).await;
        let browser = signed_in(&app).await;
        let csrf = browser.form_token("/account").await;
        // The factor arrives after this sign-in (another browser, or an operator).
        let (secret, _) = app.enroll_totp(&ada).await;

        let regenerate = browser.post("/account/recovery-codes", &[("csrf_token", &csrf)]).await;

        assert_eq!(regenerate.status(), StatusCode::SEE_OTHER);
        assert_eq!(location(&regenerate), "/login/2fa");
        // Nothing changed and the session waits for the code; the other changes are refused too.
        let enrol = browser.get("/account/2fa/totp").await;
        assert_eq!(location(&enrol), "/login");
        let email = browser.post("/account/2fa/email", &[("csrf_token", &csrf), ("destination", "ada@example.com")]).await;
        assert_ne!(email.status(), StatusCode::OK);
        assert!(app.store.factor(ada.id, umbra::auth::factor::FactorKind::Email).await.unwrap().is_none());
        assert!(app.sender.sent().is_empty());

        // After the second step the same change goes through.
        assert_eq!(location(&browser.second_step("totp", &totp_code(&secret, 0).await).await), "/account");
        let response = post_account_form(&browser, "/account/recovery-codes", &[]).await;
        assert_eq!(response.status(), StatusCode::OK);
    }
}

db_test! {
    async fn the_first_factor_needs_only_the_signed_in_session(app: TestApp) {
        app.create_user("ada", PASSWORD).await;
        let browser = signed_in(&app).await;

        let page = browser.get("/account/2fa/totp").await;

        assert_eq!(page.status(), StatusCode::OK);
        let html = page.text().await.unwrap();
        assert!(html.contains("QR code holding the otpauth link"));
        assert!(hidden_field(&html, "csrf_token").is_some());
    }
}

db_test! {
    async fn an_api_token_needs_a_fresh_proof_for_security_changes_once_the_user_has_a_factor(app: TestApp) {
        let ada = app.create_user("ada", PASSWORD).await;
        let client = app.account_app().await;
        // The token comes from a sign-in without a second factor: it carries no proof of one.
        let token = app.user_access_token(&client, "ada", PASSWORD, "account").await;
        let (secret, _) = app.enroll_totp(&ada).await;
        let post = reqwest::Method::POST;

        let bare = api(&app, post.clone(), "/recovery-codes", &token, serde_json::json!({})).await;
        let wrong = api(&app, post.clone(), "/recovery-codes", &token, serde_json::json!({"password": "wrong"})).await;
        let start = api(&app, post.clone(), "/factors/email", &token, serde_json::json!({"destination": "ada@example.com"})).await;

        for response in [bare, wrong, start] {
            assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
            let body: serde_json::Value = response.json().await.unwrap();
            assert_eq!(body["error"], "invalid_code");
        }
        assert!(app.store.factor(ada.id, umbra::auth::factor::FactorKind::Email).await.unwrap().is_none());
        assert!(app.sender.sent().is_empty());

        let code = totp_code(&secret, 0).await;
        let proven = api(&app, post.clone(), "/recovery-codes", &token, serde_json::json!({"current_code": code})).await;
        assert_eq!(proven.status(), StatusCode::OK);
        let started = api(&app, post.clone(), "/factors/email", &token,
            serde_json::json!({"destination": "ada@example.com", "password": PASSWORD})).await;
        assert_eq!(started.status(), StatusCode::ACCEPTED);
        let sent = app.sender.last_code_to("ada@example.com");
        let unproven = api(&app, post.clone(), "/factors/email/confirm", &token, serde_json::json!({"code": sent})).await;
        assert_eq!(unproven.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let confirmed = api(&app, post, "/factors/email/confirm", &token,
            serde_json::json!({"code": sent, "password": PASSWORD})).await;
        assert_eq!(confirmed.status(), StatusCode::OK);
    }
}

db_test! {
    async fn a_new_password_signs_out_every_browser_and_revokes_the_users_tokens(app: TestApp) {
        let ada = app.create_user("ada", PASSWORD).await;
        let rs = app.resource_server().await;
        let client = app.web_app(true).await;
        let token = app.user_access_token(&client, "ada", PASSWORD, "read").await;
        let first = signed_in(&app).await;
        let second = signed_in(&app).await;
        assert_eq!(app.introspection_of(&rs, &token).await["active"], true);

        new_password(&app, &ada).await;

        assert_eq!(account_location(&first).await, "/login");
        assert_eq!(account_location(&second).await, "/login");
        // Set beside the app, as the CLI does: its introspection cache learns it from the
        // change log, within a poll.
        let since = std::time::Instant::now();
        crate::introspection_cache::inactive_within(&app, &rs, &token, since, std::time::Duration::from_secs(5)).await;
    }
}

db_test! {
    async fn a_disabled_user_enabled_again_gets_no_old_session_or_token_back(app: TestApp) {
        let ada = app.create_user("ada", PASSWORD).await;
        let rs = app.resource_server().await;
        let client = app.web_app(true).await;
        let token = app.user_access_token(&client, "ada", PASSWORD, "read").await;
        let browser = signed_in(&app).await;

        let now = umbra::clock::now();
        assert!(app.store.set_user_disabled(ada.id, true, now).await.unwrap());
        assert!(app.store.set_user_disabled(ada.id, false, now).await.unwrap());

        assert_eq!(account_location(&browser).await, "/login");
        assert_eq!(app.introspection_of(&rs, &token).await, serde_json::json!({"active": false}));
    }
}

db_test! {
    async fn sign_out_everywhere_ends_every_browser_session_but_leaves_grants(app: TestApp) {
        app.create_user("ada", PASSWORD).await;
        let rs = app.resource_server().await;
        let client = app.web_app(true).await;
        let token = app.user_access_token(&client, "ada", PASSWORD, "read").await;
        let here = signed_in(&app).await;
        let elsewhere = signed_in(&app).await;

        let response = post_account_form(&here, "/account/sign-out-everywhere", &[]).await;

        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(account_location(&elsewhere).await, "/login");
        assert_eq!(account_location(&here).await, "/login");
        assert_eq!(app.introspection_of(&rs, &token).await["active"], true);
        assert_eq!(app.audit_count("sessions.ended").await, 1);
        // Signing in again works as before.
        signed_in(&app).await;
    }
}

db_test! {
    async fn sign_out_everywhere_needs_the_form_token(app: TestApp) {
        app.create_user("ada", PASSWORD).await;
        let here = signed_in(&app).await;
        let elsewhere = signed_in(&app).await;

        let forged = here.post("/account/sign-out-everywhere", &[("csrf_token", "forged")]).await;

        assert_eq!(forged.status(), StatusCode::FORBIDDEN);
        assert_eq!(account_location(&elsewhere).await, "");
    }
}

db_test! {
    async fn dozens_of_concurrent_requests_of_a_signed_out_session_are_all_refused(app: TestApp) {
        let ada = app.create_user("ada", PASSWORD).await;
        let browser = signed_in(&app).await;
        let csrf = browser.form_token("/account").await;
        let (_, codes) = app.enroll_totp(&ada).await;
        let before = app.store.recovery_codes_left(ada.id).await.unwrap();

        new_password(&app, &ada).await;
        let change_form = [("csrf_token", csrf.as_str())];
        let remove_form = [("csrf_token", csrf.as_str()), ("code", codes[0].as_str())];
        let pages = join_all((0..20).map(|_| browser.get("/account"))).await;
        let changes =
            join_all((0..20).map(|_| browser.post("/account/recovery-codes", &change_form))).await;
        let removals =
            join_all((0..10).map(|_| browser.post("/account/2fa/totp/remove", &remove_form))).await;

        for response in pages.iter().chain(&changes).chain(&removals) {
            assert_eq!(response.status(), StatusCode::SEE_OTHER);
            assert_eq!(location(response), "/login");
        }
        assert_eq!(app.store.recovery_codes_left(ada.id).await.unwrap(), before);
        assert_eq!(app.store.confirmed_factors(ada.id).await.unwrap().len(), 1);
    }
}

db_test! {
    async fn removing_a_factor_signs_out_the_other_sessions_but_not_the_one_that_removed_it(app: TestApp) {
        let ada = app.create_user("ada", PASSWORD).await;
        let (secret, codes) = app.enroll_totp(&ada).await;
        let here = signed_in_with_totp(&app, &secret).await;
        let elsewhere = app.browser();
        elsewhere.sign_in("ada", PASSWORD).await;
        assert_eq!(location(&elsewhere.second_step("recovery", &codes[0]).await), "/account");

        let removed = post_account_form(&here, "/account/2fa/totp/remove", &[("password", PASSWORD)]).await;

        assert_eq!(location(&removed), "/account");
        assert!(app.store.confirmed_factors(ada.id).await.unwrap().is_empty());
        assert_eq!(account_location(&here).await, "");
        assert_eq!(account_location(&elsewhere).await, "/login");
    }
}

db_test! {
    async fn an_operators_second_factor_reset_signs_out_the_users_sessions(app: TestApp) {
        let ada = app.create_user("ada", PASSWORD).await;
        let (secret, _) = app.enroll_totp(&ada).await;
        let browser = signed_in_with_totp(&app, &secret).await;
        let waiting = app.browser();
        assert_eq!(location(&waiting.sign_in("ada", PASSWORD).await), "/login/2fa");

        let service = umbra::startup::second_factor(
            &app.settings,
            app.store.clone(),
            std::sync::Arc::new(app.sender.clone()),
        )
        .unwrap();
        service.reset(&ada, umbra::clock::now()).await.unwrap();

        assert_eq!(account_location(&browser).await, "/login");
        assert_eq!(location(&waiting.get("/login/2fa").await), "/login");
    }
}

db_test! {
    async fn a_new_password_ends_a_second_step_in_progress(app: TestApp) {
        let ada = app.create_user("ada", PASSWORD).await;
        let (secret, _) = app.enroll_totp(&ada).await;
        let browser = app.browser();
        assert_eq!(location(&browser.sign_in("ada", PASSWORD).await), "/login/2fa");
        let csrf = browser.form_token("/login/2fa").await;

        new_password(&app, &ada).await;
        let code = totp_code(&secret, 0).await;
        let response = browser
            .post("/login/2fa", &[("csrf_token", &csrf), ("method", "totp"), ("code", &code)])
            .await;

        assert_eq!(location(&response), "/login");
        assert_eq!(account_location(&browser).await, "/login");
    }
}

db_test! {
    async fn one_code_offered_as_proof_by_dozens_of_concurrent_changes_serves_one(app: TestApp) {
        let ada = app.create_user("ada", PASSWORD).await;
        let client = app.account_app().await;
        let token = app.user_access_token(&client, "ada", PASSWORD, "account").await;
        let (secret, _) = app.enroll_totp(&ada).await;
        let code = totp_code(&secret, 0).await;
        let body = serde_json::json!({"current_code": code});

        let responses = join_all((0..24).map(|_| {
            api(&app, reqwest::Method::POST, "/recovery-codes", &token, body.clone())
        }))
        .await;

        let statuses: Vec<StatusCode> = responses.iter().map(reqwest::Response::status).collect();
        assert_eq!(statuses.iter().filter(|s| **s == StatusCode::OK).count(), 1, "{statuses:?}");
        assert!(statuses.iter().all(|s| [
            StatusCode::OK,
            StatusCode::UNPROCESSABLE_ENTITY,
            StatusCode::TOO_MANY_REQUESTS
        ]
        .contains(s)));
    }
}
