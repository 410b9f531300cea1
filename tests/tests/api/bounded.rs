//! Bounded resources on the unauthenticated paths: password hashing under a semaphore, metric
//! labels from fixed sets, and tables that do not grow forever (audit retention, rotated
//! refresh tokens).
use entity::{grant, refresh_token};
use futures_util::future::join_all;
use reqwest::{Method, StatusCode};
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use serde_json::Value;
use umbra::store::{AuditEntry, AuditKind};
use umbra_tests::Pkce;

const PASSWORD: &str = "correct horse battery";

db_test_with! {
    |s| {
        s.passwords.max_concurrent_verifications = 1;
        // Dear enough that one verification outlasts the wait for a slot.
        s.passwords.argon2_memory_kib = 16 * 1024;
        s.passwords.argon2_iterations = 2;
        s.login.max_attempts_per_address = 1000;
    },
    async fn sign_ins_beyond_the_hashing_slots_get_503_with_retry_after_not_a_queue(app: TestApp) {
        app.create_user("ada", PASSWORD).await;
        let mut forms = Vec::new();
        for _ in 0..24 {
            let browser = app.browser();
            let token = browser.form_token("/login").await;
            forms.push((browser, token));
        }

        let url = app.url("/login");
        let responses = join_all(forms.iter().enumerate().map(|(i, (browser, token))| {
            let (username, url) = (format!("nobody{i}"), &url);
            async move {
                browser.http.post(url).form(&[
                    ("csrf_token", token.as_str()),
                    ("username", username.as_str()),
                    ("password", "guess"),
                ]).send().await.unwrap()
            }
        }))
        .await;

        let busy: Vec<_> = responses.iter().filter(|r| r.status() == StatusCode::SERVICE_UNAVAILABLE).collect();
        let judged = responses.iter().filter(|r| r.status() == StatusCode::UNPROCESSABLE_ENTITY).count();
        assert!(!busy.is_empty(), "every sign-in waited for its turn");
        assert!(judged >= 1);
        assert_eq!(busy.len() + judged, 24, "nothing but a verdict or 503");
        for response in busy {
            assert_eq!(response.headers()["retry-after"], "1");
        }
        let response = app.browser().sign_in("ada", PASSWORD).await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "the slots come back");
    }
}

db_test! {
    async fn invented_http_methods_add_no_metric_series(app: TestApp) {
        let series = |text: &str| text.lines().filter(|l| l.starts_with("umbra_http_request")).count();
        for path in ["/token", "/nowhere"] {
            let method = Method::from_bytes(b"INVENTED").unwrap();
            app.http.request(method, app.url(path)).send().await.unwrap();
        }
        let before = series(&app.metrics().await);

        for i in 0..300 {
            let method = Method::from_bytes(format!("X{i}").as_bytes()).unwrap();
            let path = if i % 2 == 0 { "/token" } else { "/nowhere" };
            let response = app.http.request(method, app.url(path)).send().await.unwrap();
            assert!(response.status().is_client_error());
        }
        let text = app.metrics().await;

        assert_eq!(series(&text), before, "no new series");
        assert!(!text.contains("method=\"X") && !text.contains("INVENTED"));
        assert!(text.contains(r#"endpoint="/token",method="OTHER",status="405""#), "{text}");
    }
}

db_test! {
    async fn cleanup_deletes_audit_events_past_their_retention(app: TestApp) {
        let now = umbra::clock::now();
        let day = 86_400;
        for age_days in [400, 91, 89, 0] {
            let entry = AuditEntry::new(AuditKind::LoginFailed).detail(format!("{age_days} days old"));
            app.store.record_audit(entry, now - age_days * day).await.unwrap();
        }
        let mut cleanup = app.settings.cleanup.clone();
        cleanup.batch_size = 1;

        cleanup.audit_retention_days = 0;
        assert_eq!(app.store.purge(now, &cleanup).await.unwrap().audit_events, 0, "0 keeps everything");
        cleanup.audit_retention_days = 90;
        let report = app.store.purge(now, &cleanup).await.unwrap();

        assert_eq!(report.audit_events, 2);
        let left: Vec<_> = app.store.list_audit(None, 10).await.unwrap().into_iter().filter_map(|e| e.detail).collect();
        assert_eq!(left, vec!["0 days old", "89 days old"]);
    }
}

db_test_with! {
    crate::refresh::no_retry_window,
    async fn rotated_refresh_tokens_are_kept_for_reuse_detection_and_deleted_once_their_grant_is_revoked(app: TestApp) {
        let client = app.web_app(true).await;
        app.create_user("ada", PASSWORD).await;
        let pkce = Pkce::new();
        let code = app.authorization_code(&app.browser(), &client, &pkce, "ada", PASSWORD).await;
        let first: Value = app.exchange_code(&client, &code, &pkce.verifier).await.json().await.unwrap();
        let rotated = first["refresh_token"].as_str().unwrap();
        assert_eq!(app.refresh(&client, rotated, None).await.status(), StatusCode::OK);
        let db = app.store.connection();
        let rotated_rows = || refresh_token::Entity::find().filter(refresh_token::Column::RotatedAt.is_not_null()).count(db);
        let now = umbra::clock::now();
        let cleanup = app.settings.cleanup.clone();

        app.store.purge(now, &cleanup).await.unwrap();
        assert_eq!(rotated_rows().await.unwrap(), 1, "a live grant's rotated token still catches a replay");
        let replay = app.refresh(&client, rotated, None).await;
        assert_eq!(replay.status(), StatusCode::BAD_REQUEST, "the replay revokes the grant");

        let report = app.store.purge(now, &cleanup).await.unwrap();

        assert_eq!(report.refresh_tokens, 1);
        assert_eq!(rotated_rows().await.unwrap(), 0, "a revoked grant has nothing left to protect");
        assert_eq!(refresh_token::Entity::find().count(db).await.unwrap(), 1, "its last token stays for the retention");
        assert_eq!(grant::Entity::find().count(db).await.unwrap(), 1, "and so does the revoked grant");
        let later = now + app.settings.tokens.refresh_token_ttl_secs + 1;
        app.store.purge(later, &cleanup).await.unwrap();
        assert_eq!(refresh_token::Entity::find().count(db).await.unwrap(), 0);
    }
}
