//! Sign-in limits kept in the database: two instances on one database allow together exactly
//! what one allows, per account and per address, for guesses sent one by one or all at once.
use futures_util::future::join_all;
use reqwest::StatusCode;
use umbra_tests::{Browser, TestApp};

const PASSWORD: &str = "correct horse battery";

/// Sends `count` sign-ins at once, the `i`th to `apps[i % apps.len()]` as `username(i)` with
/// `password`; every form is fetched first, so that the posts race each other only.
async fn at_once(
    apps: &[&TestApp],
    count: usize,
    username: impl Fn(usize) -> String,
    password: &str,
) -> Vec<StatusCode> {
    let mut forms = Vec::new();
    for i in 0..count {
        let browser = apps[i % apps.len()].browser();
        let token = browser.form_token("/login").await;
        forms.push((browser, token, username(i)));
    }
    let responses = join_all(forms.iter().map(|(browser, token, username)| async move {
        browser
            .post(
                "/login",
                &[
                    ("csrf_token", token.as_str()),
                    ("username", username.as_str()),
                    ("password", password),
                ],
            )
            .await
    }))
    .await;
    responses.iter().map(|response| response.status()).collect()
}

fn count(statuses: &[StatusCode], status: StatusCode) -> usize {
    statuses.iter().filter(|s| **s == status).count()
}

async fn sign_in(app: &TestApp, username: &str, password: &str) -> StatusCode {
    Browser::new(&app.address)
        .sign_in(username, password)
        .await
        .status()
}

db_test_with! {
    |s| {
        s.login.max_attempts_per_account = 4;
        s.login.max_attempts_per_address = 1000;
    },
    async fn wrong_passwords_spread_over_two_instances_reach_the_account_limit(app: TestApp) {
        let sibling = app.spawn_sibling().await;
        app.create_user("ada", PASSWORD).await;
        for i in 0..4 {
            let instance = if i % 2 == 0 { &app } else { &sibling };
            assert_eq!(sign_in(instance, "ada", "guess").await, StatusCode::UNPROCESSABLE_ENTITY, "guess {i}");
        }

        let here = sign_in(&app, "ada", PASSWORD).await;
        let there = sign_in(&sibling, "Ada", PASSWORD).await;

        assert_eq!(here, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(there, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(app.audit_count("login.failed").await, 4);
    }
}

db_test_with! {
    |s| {
        s.login.max_attempts_per_account = 100;
        s.login.max_attempts_per_address = 3;
    },
    async fn wrong_passwords_spread_over_two_instances_reach_the_address_limit(app: TestApp) {
        let sibling = app.spawn_sibling().await;
        app.create_user("ada", PASSWORD).await;
        for (i, instance) in [&app, &sibling, &sibling].into_iter().enumerate() {
            let status = sign_in(instance, &format!("nobody{i}"), "guess").await;
            assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        }

        let response = Browser::new(&app.address).sign_in("ada", PASSWORD).await;
        let there = sign_in(&sibling, "someone", "guess").await;

        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        let retry_after: u64 = response.headers()["retry-after"].to_str().unwrap().parse().unwrap();
        let window = app.settings.login.window_secs;
        assert!(retry_after > window - 30 && retry_after <= window, "{retry_after}");
        assert_eq!(there, StatusCode::TOO_MANY_REQUESTS);
    }
}

db_test_with! {
    |s| {
        s.login.max_attempts_per_account = 5;
        s.login.max_attempts_per_address = 1000;
        // Room to verify every guess the limiter lets through, so that none is turned away busy.
        s.passwords.max_concurrent_verifications = 64;
    },
    async fn dozens_of_concurrent_guesses_at_two_instances_get_exactly_the_account_limit_verified(app: TestApp) {
        let sibling = app.spawn_sibling().await;
        app.create_user("ada", PASSWORD).await;

        let statuses = at_once(&[&app, &sibling], 48, |_| "ada".to_owned(), "guess").await;

        let judged = count(&statuses, StatusCode::UNPROCESSABLE_ENTITY);
        let refused = count(&statuses, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!((judged, refused), (5, 43), "{statuses:?}");
        assert_eq!(app.audit_count("login.failed").await, 5, "every verified guess is audited");
        assert_eq!(sign_in(&sibling, "ada", PASSWORD).await, StatusCode::TOO_MANY_REQUESTS);
    }
}

db_test_with! {
    |s| {
        s.login.max_attempts_per_account = 100;
        s.login.max_attempts_per_address = 6;
        s.passwords.max_concurrent_verifications = 64;
    },
    async fn dozens_of_concurrent_guesses_at_two_instances_get_exactly_the_address_limit_verified(app: TestApp) {
        let sibling = app.spawn_sibling().await;

        let statuses = at_once(&[&app, &sibling], 40, |i| format!("user{i}"), "guess").await;

        let judged = count(&statuses, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!((judged, count(&statuses, StatusCode::TOO_MANY_REQUESTS)), (6, 34), "{statuses:?}");
        assert_eq!(app.audit_count("login.failed").await, 6);
    }
}

db_test_with! {
    |s| {
        s.login.max_attempts_per_account = 3;
        s.passwords.max_concurrent_verifications = 64;
    },
    async fn concurrent_correct_sign_ins_at_two_instances_are_never_refused(app: TestApp) {
        let sibling = app.spawn_sibling().await;
        app.create_user("ada", PASSWORD).await;
        assert_eq!(sign_in(&sibling, "ada", "guess").await, StatusCode::UNPROCESSABLE_ENTITY);

        let statuses = at_once(&[&app, &sibling], 16, |_| "ada".to_owned(), PASSWORD).await;

        // Two slots are left beside the failure: a correct sign-in may find them all taken by
        // others being verified, and is then told to come back in a second.
        let signed_in = count(&statuses, StatusCode::SEE_OTHER);
        assert_eq!(signed_in + count(&statuses, StatusCode::TOO_MANY_REQUESTS), 16, "{statuses:?}");
        assert!(signed_in >= 2, "{statuses:?}");
        for i in 0..6 {
            let instance = if i % 2 == 0 { &app } else { &sibling };
            assert_eq!(sign_in(instance, "ada", PASSWORD).await, StatusCode::SEE_OTHER, "sign-in {i}");
        }
        assert_eq!(app.audit_count("login.failed").await, 1, "successes leave no failure");
    }
}
