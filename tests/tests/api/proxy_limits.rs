//! Sign-in limits behind a reverse proxy: the client address comes from the forwarding header
//! only when the peer is a trusted proxy, failures alone count, and concurrent guesses cannot
//! outrun the limit.
use futures_util::future::join_all;
use reqwest::{Response, StatusCode};
use umbra_tests::{Browser, TestApp};

const PASSWORD: &str = "correct horse battery";

/// A fresh browser's sign-in, sent with `X-Forwarded-For: forwarded_for` when given.
async fn sign_in_from(
    app: &TestApp,
    forwarded_for: Option<&str>,
    username: &str,
    password: &str,
) -> Response {
    let browser = app.browser();
    let token = browser.form_token("/login").await;
    post_login(app, &browser, &token, forwarded_for, username, password).await
}

async fn post_login(
    app: &TestApp,
    browser: &Browser,
    token: &str,
    forwarded_for: Option<&str>,
    username: &str,
    password: &str,
) -> Response {
    let mut request = browser.http.post(app.url("/login")).form(&[
        ("csrf_token", token),
        ("username", username),
        ("password", password),
    ]);
    if let Some(forwarded_for) = forwarded_for {
        request = request.header("x-forwarded-for", forwarded_for);
    }
    request.send().await.unwrap()
}

async fn failed_addresses(app: &TestApp) -> Vec<String> {
    app.store
        .list_audit(None, 1000)
        .await
        .unwrap()
        .into_iter()
        .filter(|event| event.event == "login.failed")
        .filter_map(|event| event.address)
        .collect()
}

db_test_with! {
    |s| {
        s.server.trusted_proxies = umbra::settings::TrustedProxies::try_from(vec!["127.0.0.1/32".to_owned()]).unwrap();
        s.login.max_attempts_per_address = 3;
        s.login.max_attempts_per_account = 100;
    },
    async fn clients_behind_a_trusted_proxy_get_separate_address_buckets(app: TestApp) {
        let first = Some("6.6.6.6, 198.51.100.1");
        for i in 0..3 {
            let response = sign_in_from(&app, first, &format!("user{i}"), "guess").await;
            assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
        }

        let refused = sign_in_from(&app, first, "user9", "guess").await;
        let other = sign_in_from(&app, Some("198.51.100.2"), "user9", "guess").await;

        assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS, "the first client used its bucket");
        assert_eq!(other.status(), StatusCode::UNPROCESSABLE_ENTITY, "the second client has its own");
        let addresses = failed_addresses(&app).await;
        assert_eq!(addresses.iter().filter(|a| *a == "198.51.100.1").count(), 3, "{addresses:?}");
        assert!(addresses.contains(&"198.51.100.2".to_owned()), "{addresses:?}");
        assert!(!addresses.iter().any(|a| a == "6.6.6.6" || a == "127.0.0.1"), "{addresses:?}");
    }
}

db_test_with! {
    |s| {
        s.server.trusted_proxies = umbra::settings::TrustedProxies::try_from(vec!["127.0.0.1".to_owned()]).unwrap();
        s.login.max_attempts_per_address = 2;
        s.login.max_attempts_per_account = 100;
    },
    async fn ipv6_clients_are_limited_per_64(app: TestApp) {
        for (i, client) in ["2001:db8:1:2::1", "[2001:db8:1:2:ffff::9]:5555"].iter().enumerate() {
            let response = sign_in_from(&app, Some(client), &format!("user{i}"), "guess").await;
            assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
        }

        let same_64 = sign_in_from(&app, Some("2001:db8:1:2:1234::1"), "user9", "guess").await;
        let next_64 = sign_in_from(&app, Some("2001:db8:1:3::1"), "user9", "guess").await;

        assert_eq!(same_64.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(next_64.status(), StatusCode::UNPROCESSABLE_ENTITY);
    }
}

db_test_with! {
    |s| {
        s.login.max_attempts_per_address = 3;
        s.login.max_attempts_per_account = 100;
    },
    async fn an_untrusted_peers_forwarded_address_is_ignored(app: TestApp) {
        for i in 0..3 {
            let forged = format!("198.51.100.{i}");
            let response = sign_in_from(&app, Some(&forged), &format!("user{i}"), "guess").await;
            assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
        }

        let response = sign_in_from(&app, Some("203.0.113.77"), "user9", "guess").await;

        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        let addresses = failed_addresses(&app).await;
        assert_eq!(addresses, vec!["127.0.0.1"; 3], "the peer, never the forged header");
    }
}

db_test! {
    async fn ten_correct_sign_ins_in_a_row_are_never_refused(app: TestApp) {
        app.create_user("ada", PASSWORD).await;
        let limit = app.settings.login.max_attempts_per_account;
        for _ in 1..limit {
            let response = sign_in_from(&app, None, "ada", "guess").await;
            assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
        }

        for i in 0..10 {
            let response = sign_in_from(&app, None, "Ada", PASSWORD).await;
            assert_eq!(response.status(), StatusCode::SEE_OTHER, "sign-in {i}");
        }
    }
}

db_test_with! {
    |s| {
        s.login.max_attempts_per_account = 5;
        s.login.max_attempts_per_address = 1000;
        // Room to verify every guess the limiter lets through, so that none is turned away busy.
        s.passwords.max_concurrent_verifications = 64;
    },
    async fn dozens_of_concurrent_wrong_passwords_get_at_most_the_limit_verified(app: TestApp) {
        app.create_user("ada", PASSWORD).await;
        let mut forms = Vec::new();
        for _ in 0..40 {
            let browser = app.browser();
            let token = browser.form_token("/login").await;
            forms.push((browser, token));
        }

        let responses = join_all(forms.iter().map(|(browser, token)| {
            post_login(&app, browser, token, None, "ada", "guess")
        }))
        .await;

        let judged = responses.iter().filter(|r| r.status() == StatusCode::UNPROCESSABLE_ENTITY).count();
        let refused = responses.iter().filter(|r| r.status() == StatusCode::TOO_MANY_REQUESTS).count();
        assert!(judged <= 5, "{judged} wrong passwords were verified");
        assert_eq!(judged + refused, 40, "{:?}", responses.iter().map(|r| r.status()).collect::<Vec<_>>());
        for response in responses.iter().filter(|r| r.status() == StatusCode::TOO_MANY_REQUESTS) {
            assert!(response.headers().contains_key("retry-after"));
        }
        let failures = failed_addresses(&app).await.len();
        assert_eq!(failures, judged, "every verified guess is audited, no other");
        let right = sign_in_from(&app, None, "ada", PASSWORD).await;
        assert_eq!(right.status(), StatusCode::TOO_MANY_REQUESTS, "the account is paused");
    }
}

db_test_with! {
    |s| {
        s.login.max_attempts_per_address = 2;
    },
    async fn too_long_usernames_are_refused_before_the_limiter_counts_them(app: TestApp) {
        app.create_user("ada", PASSWORD).await;
        let too_long = "x".repeat(umbra::auth::MAX_USERNAME_LEN + 1);

        for _ in 0..5 {
            let response = sign_in_from(&app, None, &too_long, "guess").await;
            assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
        }
        let response = sign_in_from(&app, None, "ada", PASSWORD).await;

        assert_eq!(response.status(), StatusCode::SEE_OTHER, "the address was not charged");
        assert!(failed_addresses(&app).await.is_empty(), "nothing was audited");
    }
}
