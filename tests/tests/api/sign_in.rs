//! The sign-in page: CSRF, one generic failure, rate limits, sign-out.
use reqwest::StatusCode;
use umbra_tests::location;

db_test! {
    async fn a_form_without_the_sessions_csrf_token_is_refused(app: TestApp) {
        app.create_user("ada", "correct horse battery").await;
        let browser = app.browser();
        browser.get("/login").await;

        for token in ["", "forged"] {
            let response = browser
                .post("/login", &[("csrf_token", token), ("username", "ada"), ("password", "correct horse battery")])
                .await;
            assert_eq!(response.status(), StatusCode::FORBIDDEN);
        }
        let stranger = app.browser();
        let token = browser.form_token("/login").await;
        let response = stranger
            .post("/login", &[("csrf_token", &token), ("username", "ada"), ("password", "correct horse battery")])
            .await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "a token from another session is useless");
    }
}

db_test! {
    async fn wrong_password_unknown_user_and_disabled_user_get_the_same_answer(app: TestApp) {
        let ada = app.create_user("ada", "correct horse battery").await;
        let eve = app.create_user("eve", "correct horse battery").await;
        app.store.set_user_disabled(eve.id, true, umbra::clock::now()).await.unwrap();
        let _ = ada;

        let mut pages = Vec::new();
        for (username, password) in [("ada", "wrong password"), ("nobody", "correct horse battery"), ("eve", "correct horse battery")] {
            let response = app.browser().sign_in(username, password).await;
            assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
            let page = response.text().await.unwrap();
            assert!(page.contains("Wrong username or password."));
            assert!(!page.contains("correct horse"), "the password is never echoed");
            pages.push(page.replace(username, "USER"));
        }
        // Apart from the username and the form token, the pages are identical.
        let strip = |p: &str| p.split("csrf_token").next().unwrap().to_owned();
        assert_eq!(strip(&pages[0]), strip(&pages[1]));
        assert_eq!(strip(&pages[1]), strip(&pages[2]));
    }
}

db_test! {
    async fn the_username_is_case_insensitive_and_success_leads_to_the_account_page(app: TestApp) {
        app.create_user("Ada", "correct horse battery").await;
        let browser = app.browser();

        let response = browser.sign_in("aDA", "correct horse battery").await;

        assert_eq!(location(&response), "/account");
        let cookie = response.headers()["set-cookie"].to_str().unwrap().to_owned();
        assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"), "{cookie}");
        let page = browser.get("/account").await.text().await.unwrap();
        assert!(page.contains("Signed in as <strong>Ada</strong>"));
    }
}

db_test! {
    async fn too_many_attempts_on_one_account_answer_429_with_retry_after(app: TestApp) {
        app.create_user("ada", "correct horse battery").await;
        let limit = app.settings.login.max_attempts_per_account;

        for _ in 0..limit {
            let response = app.browser().sign_in("ada", "guess").await;
            assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
        }
        let response = app.browser().sign_in("ada", "correct horse battery").await;

        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        let retry_after: u64 = response.headers()["retry-after"].to_str().unwrap().parse().unwrap();
        assert!(retry_after >= 1);
    }
}

db_test! {
    async fn signing_out_ends_the_session(app: TestApp) {
        app.create_user("ada", "correct horse battery").await;
        let browser = app.browser();
        browser.sign_in("ada", "correct horse battery").await;
        let token = browser.form_token("/account").await;

        let response = browser.post("/logout", &[("csrf_token", &token)]).await;

        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(location(&browser.get("/account").await), "/login");
    }
}

db_test! {
    async fn pages_are_not_cacheable_or_frameable(app: TestApp) {
        let response = app.browser().get("/login").await;

        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["cache-control"], "no-store");
        assert_eq!(response.headers()["x-frame-options"], "DENY");
        assert!(response.headers()["content-security-policy"].to_str().unwrap().contains("frame-ancestors 'none'"));
        let page = response.text().await.unwrap();
        assert!(page.contains("autocomplete=\"current-password\"") && page.contains("<label for=\"username\">"));
    }
}
