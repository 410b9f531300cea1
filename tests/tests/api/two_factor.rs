//! The second factor: TOTP and e-mail codes at sign-in, recovery codes, lockout, the policy
//! that forces enrolment, and secrets at rest.
use reqwest::StatusCode;
use umbra::auth::factor::FactorKind;
use umbra::oauth::grant_type::GrantType;
use umbra::store::AuditRecord;
use umbra_tests::{
    ClientSpec, Pkce, REDIRECT_URI, TestApp, hidden_field, location, query_param, totp_code,
};

const PASSWORD: &str = "correct horse battery";

async fn events(app: &TestApp, event: &str) -> Vec<AuditRecord> {
    app.store
        .list_audit(None, 1000)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.event == event)
        .collect()
}

db_test! {
    async fn a_user_with_totp_needs_the_code_and_the_authorize_request_resumes_after_it(app: TestApp) {
        let ada = app.create_user("ada", PASSWORD).await;
        let (secret, _) = app.enroll_totp(&ada).await;
        let client = app.web_app(true).await;
        let browser = app.browser();
        let pkce = Pkce::new();
        browser.authorize(&client, &pkce, "&scope=read&state=s1").await;

        let response = browser.sign_in("ada", PASSWORD).await;

        assert_eq!(location(&response), "/login/2fa");
        // Half signed in is not signed in: no account page, no consent, no code.
        assert_eq!(location(&browser.get("/account").await), "/login");
        assert_eq!(location(&browser.get("/consent").await), "/login");
        assert_eq!(location(&browser.get("/login").await), "/login/2fa");
        let page = browser.get("/login/2fa").await.text().await.unwrap();
        assert!(page.contains("authenticator app") && page.contains("autocomplete=\"one-time-code\""));

        let response = browser.second_step("totp", &totp_code(&secret, 0).await).await;

        assert_eq!(location(&response), "/consent");
        let response = browser.consent("approve").await;
        let to = location(&response);
        assert!(to.starts_with(REDIRECT_URI), "{to}");
        assert_eq!(query_param(&to, "state").as_deref(), Some("s1"));
        let code = query_param(&to, "code").unwrap();
        let response = app.exchange_code(&client, &code, &pkce.verifier).await;
        assert_eq!(response.status(), StatusCode::OK);
        let logins = events(&app, "login.succeeded").await;
        assert_eq!(logins.len(), 1);
        assert_eq!(logins[0].detail.as_deref(), Some("password+totp"));
        assert_eq!(logins[0].client_id.as_deref(), Some(client.id.as_str()));
        assert_eq!(logins[0].address.as_deref(), Some("127.0.0.1"));
    }
}

db_test! {
    async fn the_session_id_changes_at_each_sign_in_step(app: TestApp) {
        let ada = app.create_user("ada", PASSWORD).await;
        let (secret, _) = app.enroll_totp(&ada).await;
        let browser = app.browser();

        let after_password = browser.sign_in("ada", PASSWORD).await;
        let after_code = browser.second_step("totp", &totp_code(&secret, 0).await).await;

        let cookie = |r: &reqwest::Response| r.headers()["set-cookie"].to_str().unwrap().to_owned();
        assert_ne!(cookie(&after_password), cookie(&after_code));
        assert_eq!(location(&after_code), "/account");
        let page = browser.get("/account").await.text().await.unwrap();
        assert!(page.contains("Authenticator app") && page.contains("10 unused"), "{page}");
    }
}

db_test! {
    async fn a_replayed_totp_code_is_rejected(app: TestApp) {
        let ada = app.create_user("ada", PASSWORD).await;
        let (secret, _) = app.enroll_totp(&ada).await;
        let code = totp_code(&secret, 0).await;
        let first = app.browser();
        first.sign_in("ada", PASSWORD).await;
        assert_eq!(location(&first.second_step("totp", &code).await), "/account");

        let second = app.browser();
        second.sign_in("ada", PASSWORD).await;
        let response = second.second_step("totp", &code).await;

        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert!(response.text().await.unwrap().contains("That code is not valid."));
        // An older code (previous step) is refused too once a later step was used.
        let response = second.second_step("totp", &totp_code(&secret, -1).await).await;
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let response = second.second_step("totp", &totp_code(&secret, 1).await).await;
        assert_eq!(location(&response), "/account");
    }
}

/// Puts `n` browsers at the second step of `username`, then submits `code` for `method` from
/// all of them at once; returns (signed in, refused).
async fn race_second_step(
    app: &TestApp,
    n: usize,
    method: &str,
    code: impl AsyncFnOnce() -> String,
) -> (usize, usize) {
    let browsers: Vec<_> = (0..n).map(|_| app.browser()).collect();
    let mut tokens = Vec::new();
    for browser in &browsers {
        browser.sign_in("ada", PASSWORD).await;
        tokens.push(browser.form_token("/login/2fa").await);
    }
    let code = code().await;
    let responses = futures_util::future::join_all(browsers.iter().zip(&tokens).map(|(b, t)| {
        let code = code.clone();
        async move {
            b.post(
                "/login/2fa",
                &[("csrf_token", t), ("method", method), ("code", &code)],
            )
            .await
        }
    }))
    .await;
    let statuses: Vec<_> = responses.iter().map(|r| r.status()).collect();
    assert!(
        statuses.iter().all(|s| [
            StatusCode::SEE_OTHER,
            StatusCode::UNPROCESSABLE_ENTITY,
            StatusCode::TOO_MANY_REQUESTS
        ]
        .contains(s)),
        "{statuses:?}"
    );
    let count = |status| responses.iter().filter(|r| r.status() == status).count();
    (
        count(StatusCode::SEE_OTHER),
        count(StatusCode::UNPROCESSABLE_ENTITY),
    )
}

db_test! {
    async fn of_concurrent_sign_ins_with_one_totp_code_exactly_one_succeeds(app: TestApp) {
        let ada = app.create_user("ada", PASSWORD).await;
        let (secret, _) = app.enroll_totp(&ada).await;

        let outcome = race_second_step(&app, 4, "totp", async || totp_code(&secret, 0).await).await;

        assert_eq!(outcome, (1, 3));
    }
}

db_test! {
    async fn of_concurrent_sign_ins_with_one_recovery_code_exactly_one_succeeds(app: TestApp) {
        let ada = app.create_user("ada", PASSWORD).await;
        let (_, recovery) = app.enroll_totp(&ada).await;

        let outcome = race_second_step(&app, 4, "recovery", async || recovery[0].clone()).await;

        assert_eq!(outcome, (1, 3));
        assert_eq!(app.store.recovery_codes_left(ada.id).await.unwrap(), 9);
    }
}

db_test! {
    async fn of_concurrent_sign_ins_with_one_emailed_code_exactly_one_succeeds(app: TestApp) {
        app.create_user("ada", PASSWORD).await;
        let browser = app.browser();
        browser.sign_in("ada", PASSWORD).await;
        enrol_email(&app, &browser, "ada@example.com").await;
        let sender = app.browser();
        sender.sign_in("ada", PASSWORD).await;
        let token = sender.form_token("/login/2fa").await;

        // Three racers: with the two sign-ins above, that is the per-account sign-in limit.
        let outcome = race_second_step(&app, 3, "email", async || {
            let form = [("csrf_token", token.as_str()), ("method", "email")];
            assert_eq!(sender.post("/login/2fa/send", &form).await.status(), StatusCode::OK);
            app.sender.last_code_to("ada@example.com")
        })
        .await;

        assert_eq!(outcome, (1, 2));
    }
}

db_test! {
    async fn repeated_wrong_codes_lock_sign_in_with_429_and_retry_after(app: TestApp) {
        let ada = app.create_user("ada", PASSWORD).await;
        let (secret, _) = app.enroll_totp(&ada).await;
        let limit = app.settings.second_factor.max_failures;
        let browser = app.browser();
        browser.sign_in("ada", PASSWORD).await;

        for attempt in 1..limit {
            let response = browser.second_step("totp", "000000").await;
            assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY, "attempt {attempt}");
        }
        let response = browser.second_step("totp", "000000").await;

        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        let retry_after: i64 = response.headers()["retry-after"].to_str().unwrap().parse().unwrap();
        assert!(retry_after > 0 && retry_after <= app.settings.second_factor.lockout_secs);
        // Even the right code, or the right password from elsewhere, is refused while locked.
        let response = browser.second_step("totp", &totp_code(&secret, 0).await).await;
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        let response = app.browser().sign_in("ada", PASSWORD).await;
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(events(&app, "account.locked").await.len(), 1);
        assert_eq!(events(&app, "login.second_factor_failed").await.len() as i32, limit);
    }
}

db_test! {
    async fn concurrent_wrong_codes_are_all_counted_and_lock_the_account(app: TestApp) {
        let ada = app.create_user("ada", PASSWORD).await;
        app.enroll_totp(&ada).await;
        let limit = app.settings.second_factor.max_failures;

        let (signed_in, refused) = race_second_step(&app, limit as usize, "totp", async || "000000".into()).await;

        assert_eq!(signed_in, 0);
        assert!(refused < limit as usize, "the last failure locks: 429, not 422");
        let state = app.store.lockout_state(ada.id).await.unwrap().unwrap();
        assert_eq!(state.failures, limit);
        assert!(state.locked_until.is_some());
    }
}

db_test! {
    async fn a_recovery_code_signs_in_once_and_its_use_is_recorded(app: TestApp) {
        let ada = app.create_user("ada", PASSWORD).await;
        let (_, recovery) = app.enroll_totp(&ada).await;
        assert_eq!(recovery.len(), 10);
        let typed = recovery[3].to_uppercase();
        let browser = app.browser();
        browser.sign_in("ada", PASSWORD).await;

        let response = browser.second_step("recovery", &typed).await;

        assert_eq!(location(&response), "/account");
        let again = app.browser();
        again.sign_in("ada", PASSWORD).await;
        let response = again.second_step("recovery", &recovery[3]).await;
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(app.store.recovery_codes_left(ada.id).await.unwrap(), 9);
        let used = events(&app, "recovery_code.used").await;
        assert_eq!(used.len(), 1);
        assert_eq!(used[0].detail.as_deref(), Some("9 left"));
    }
}

/// Signs in `browser` (no factor yet) and enrols `address` as an e-mail factor through the
/// account page; returns the recovery codes page.
async fn enrol_email(app: &TestApp, browser: &umbra_tests::Browser, address: &str) -> String {
    let token = browser.form_token("/account").await;
    let response = browser
        .post(
            "/account/2fa/email",
            &[("csrf_token", &token), ("destination", address)],
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let page = response.text().await.unwrap();
    assert!(
        page.contains("We sent a 6-digit code to <strong class=\"nowrap\">a…@example.com</strong>"),
        "{page}"
    );
    let code = app.sender.last_code_to(address);
    let response = browser
        .post(
            "/account/2fa/email/confirm",
            &[("csrf_token", &token), ("code", &code)],
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    response.text().await.unwrap()
}

db_test! {
    async fn an_email_factor_is_enrolled_and_then_used_to_sign_in(app: TestApp) {
        let ada = app.create_user("ada", PASSWORD).await;
        let browser = app.browser();
        browser.sign_in("ada", PASSWORD).await;

        let page = enrol_email(&app, &browser, "ada@example.com").await;

        assert!(page.contains("Your recovery codes"), "{page}");
        let factor = app.store.factor(ada.id, FactorKind::Email).await.unwrap().unwrap();
        assert!(factor.confirmed());
        let fresh = app.browser();
        assert_eq!(location(&fresh.sign_in("ada", PASSWORD).await), "/login/2fa");
        let token = fresh.form_token("/login/2fa").await;
        let response = fresh.post("/login/2fa/send", &[("csrf_token", &token), ("method", "email")]).await;
        assert_eq!(response.status(), StatusCode::OK);
        let code = app.sender.last_code_to("ada@example.com");
        let response = fresh
            .post("/login/2fa", &[("csrf_token", &token), ("method", "email"), ("code", &code)])
            .await;
        assert_eq!(location(&response), "/account");
        // The code worked once.
        let other = app.browser();
        other.sign_in("ada", PASSWORD).await;
        let response = other.second_step("email", &code).await;
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let stored = app.sender.sent();
        assert_eq!(stored.len(), 2);
        assert!(stored.iter().all(|m| m.code.len() == 6));
    }
}

db_test! {
    async fn a_second_code_cannot_be_sent_within_the_resend_interval(app: TestApp) {
        let ada = app.create_user("ada", PASSWORD).await;
        let browser = app.browser();
        browser.sign_in("ada", PASSWORD).await;
        enrol_email(&app, &browser, "ada@example.com").await;
        let _ = ada;
        let fresh = app.browser();
        fresh.sign_in("ada", PASSWORD).await;
        let token = fresh.form_token("/login/2fa").await;
        let form = [("csrf_token", token.as_str()), ("method", "email")];
        assert_eq!(fresh.post("/login/2fa/send", &form).await.status(), StatusCode::OK);

        let response = fresh.post("/login/2fa/send", &form).await;

        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert!(response.headers().contains_key("retry-after"));
        assert_eq!(app.sender.sent().len(), 2, "one to enrol, one to sign in");
    }
}

mod email_code_limits {
    use super::*;

    async fn spawn(backend: umbra_tests::Backend) -> Option<TestApp> {
        TestApp::spawn_with(backend, |s| {
            s.second_factor.code_ttl_secs = 2;
            s.second_factor.resend_interval_secs = 0;
            s.second_factor.max_failures = 100;
        })
        .await
    }

    async fn signed_in_with_email(app: &TestApp) -> umbra_tests::Browser {
        app.create_user("ada", PASSWORD).await;
        let browser = app.browser();
        browser.sign_in("ada", PASSWORD).await;
        enrol_email(app, &browser, "ada@example.com").await;
        let fresh = app.browser();
        fresh.sign_in("ada", PASSWORD).await;
        fresh
    }

    async fn send(browser: &umbra_tests::Browser) {
        let token = browser.form_token("/login/2fa").await;
        let response = browser
            .post(
                "/login/2fa/send",
                &[("csrf_token", &token), ("method", "email")],
            )
            .await;
        assert_eq!(response.status(), StatusCode::OK);
    }

    async fn an_expired_code_is_refused(app: TestApp) {
        let browser = signed_in_with_email(&app).await;
        send(&browser).await;
        let code = app.sender.last_code_to("ada@example.com");
        tokio::time::sleep(std::time::Duration::from_secs(3)).await;

        let response = browser.second_step("email", &code).await;

        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    }

    async fn a_code_dies_after_five_attempts(app: TestApp) {
        let browser = signed_in_with_email(&app).await;
        send(&browser).await;
        let code = app.sender.last_code_to("ada@example.com");
        let wrong = if code == "000000" { "111111" } else { "000000" };
        for _ in 0..app.settings.second_factor.max_code_attempts {
            let response = browser.second_step("email", wrong).await;
            assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
        }

        let response = browser.second_step("email", &code).await;

        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
        // A new code works again.
        send(&browser).await;
        let response = browser
            .second_step("email", &app.sender.last_code_to("ada@example.com"))
            .await;
        assert_eq!(location(&response), "/account");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_expired_code_is_refused_sqlite() {
        if let Some(app) = spawn(umbra_tests::Backend::Sqlite).await {
            an_expired_code_is_refused(app).await
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_expired_code_is_refused_postgres() {
        if let Some(app) = spawn(umbra_tests::Backend::Postgres).await {
            an_expired_code_is_refused(app).await
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_code_dies_after_five_attempts_sqlite() {
        if let Some(app) = spawn(umbra_tests::Backend::Sqlite).await {
            a_code_dies_after_five_attempts(app).await
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_code_dies_after_five_attempts_postgres() {
        if let Some(app) = spawn(umbra_tests::Backend::Postgres).await {
            a_code_dies_after_five_attempts(app).await
        }
    }
}

db_test! {
    async fn a_client_that_requires_2fa_takes_a_user_without_one_to_enrolment_first(app: TestApp) {
        app.create_user("ada", PASSWORD).await;
        let client = app.register(ClientSpec {
            public: true,
            scopes: "read",
            grant_types: &[GrantType::AuthorizationCode],
            redirect_uris: &[REDIRECT_URI],
            require_2fa: true,
            ..ClientSpec::default()
        }).await;
        let browser = app.browser();
        let pkce = Pkce::new();
        browser.authorize(&client, &pkce, "&scope=read&state=s2").await;

        let response = browser.sign_in("ada", PASSWORD).await;

        assert_eq!(location(&response), "/account?second_factor=required");
        assert_eq!(location(&browser.consent("approve").await), "/account?second_factor=required",
            "posting consent directly does not skip the policy");
        let page = browser.get("/account/2fa/totp").await.text().await.unwrap();
        assert!(page.contains("<img class=\"qr\" src=\"data:image"), "{page}");
        let secret = umbra_tests::shown_totp_secret(&page).unwrap();
        assert!(page.contains("otpauth:") && page.contains("Umbra:ada?secret="), "{page}");
        let token = hidden_field(&page, "csrf_token").unwrap();
        let response = browser
            .post("/account/2fa/totp/confirm", &[("csrf_token", &token), ("code", &totp_code(&secret, 0).await)])
            .await;
        let page = response.text().await.unwrap();
        assert!(page.contains("Your recovery codes") && page.contains("href=\"/login/continue\""), "{page}");
        // The approval given before enrolment was remembered: the code comes at once.
        let to = location(&browser.get("/login/continue").await);
        assert!(to.starts_with(REDIRECT_URI) && query_param(&to, "code").is_some(), "{to}");
        assert_eq!(query_param(&to, "state").as_deref(), Some("s2"));
    }
}

mod policy_for_everyone {
    use super::*;

    async fn body(app: TestApp) {
        app.create_user("ada", PASSWORD).await;
        let client = app.web_app(true).await;
        let browser = app.browser();
        browser
            .authorize(&client, &Pkce::new(), "&scope=read")
            .await;

        let response = browser.sign_in("ada", PASSWORD).await;

        assert_eq!(location(&response), "/account?second_factor=required");
        let page = browser
            .get("/account?second_factor=required")
            .await
            .text()
            .await
            .unwrap();
        assert!(page.contains("requires a second factor"), "{page}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_global_require_2fa_applies_to_every_client_sqlite() {
        if let Some(app) = TestApp::spawn_with(umbra_tests::Backend::Sqlite, |s| {
            s.second_factor.require_2fa = true
        })
        .await
        {
            body(app).await
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_global_require_2fa_applies_to_every_client_postgres() {
        if let Some(app) = TestApp::spawn_with(umbra_tests::Backend::Postgres, |s| {
            s.second_factor.require_2fa = true
        })
        .await
        {
            body(app).await
        }
    }
}

db_test! {
    async fn a_sign_in_from_before_the_factor_existed_does_not_skip_the_second_step(app: TestApp) {
        let ada = app.create_user("ada", PASSWORD).await;
        let client = app.web_app(true).await;
        let browser = app.browser();
        assert_eq!(location(&browser.sign_in("ada", PASSWORD).await), "/account");
        let (secret, _) = app.enroll_totp(&ada).await;

        let response = browser.authorize(&client, &Pkce::new(), "&scope=read").await;

        assert_eq!(location(&response), "/login/2fa");
        assert_eq!(location(&browser.get("/account").await), "/login");
        let response = browser.second_step("totp", &totp_code(&secret, 0).await).await;
        assert_eq!(location(&response), "/consent");
    }
}

db_test! {
    async fn prompt_none_gets_login_required_when_a_second_step_is_due(app: TestApp) {
        let ada = app.create_user("ada", PASSWORD).await;
        let client = app.web_app(true).await;
        let browser = app.browser();
        browser.sign_in("ada", PASSWORD).await;
        app.enroll_totp(&ada).await;

        let response = browser.authorize(&client, &Pkce::new(), "&scope=read&state=s3&prompt=none").await;

        let to = location(&response);
        assert!(to.starts_with(REDIRECT_URI), "{to}");
        assert_eq!(query_param(&to, "error").as_deref(), Some("login_required"));
        assert_eq!(query_param(&to, "state").as_deref(), Some("s3"));
        let page = browser.get("/account").await;
        assert_eq!(page.status(), StatusCode::OK, "the silent request did not sign the user out");
    }
}

db_test! {
    async fn the_totp_secret_is_not_readable_in_the_database(app: TestApp) {
        let ada = app.create_user("ada", PASSWORD).await;

        let (secret, _) = app.enroll_totp(&ada).await;

        let factor = app.store.factor(ada.id, FactorKind::Totp).await.unwrap().unwrap();
        let stored = factor.secret_ciphertext.unwrap();
        let raw = totp_rs::Secret::try_from_base32(&secret).unwrap();
        let raw = raw.as_bytes().to_vec();
        assert!(!stored.windows(raw.len()).any(|w| w == raw.as_slice()));
        assert!(!String::from_utf8_lossy(&stored).contains(&secret));
        assert!(stored.len() >= raw.len() + 12 + 16, "nonce + ciphertext + tag");
    }
}

db_test! {
    async fn removing_a_factor_needs_the_password_or_a_code(app: TestApp) {
        let ada = app.create_user("ada", PASSWORD).await;
        let (secret, _) = app.enroll_totp(&ada).await;
        let browser = app.browser();
        browser.sign_in("ada", PASSWORD).await;
        browser.second_step("totp", &totp_code(&secret, -1).await).await;
        let token = browser.form_token("/account").await;

        let response = browser
            .post("/account/2fa/totp/remove", &[("csrf_token", &token), ("password", "wrong"), ("code", "")])
            .await;
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let response = browser
            .post("/account/2fa/totp/remove", &[("csrf_token", &token), ("password", ""), ("code", &totp_code(&secret, 0).await)])
            .await;

        assert_eq!(location(&response), "/account");
        assert!(app.store.confirmed_factors(ada.id).await.unwrap().is_empty());
        assert_eq!(app.store.recovery_codes_left(ada.id).await.unwrap(), 0);
        assert_eq!(events(&app, "factor.removed").await.len(), 1);
        assert_eq!(location(&app.browser().sign_in("ada", PASSWORD).await), "/account");
    }
}
