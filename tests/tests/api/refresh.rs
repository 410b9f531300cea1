//! Refresh tokens: rotation, reuse detection, scope narrowing, client binding, revocation
//! (RFC 6749 §6, RFC 9700 §4.14, RFC 7009). The tests that present a used token at once close
//! the retry window (`refresh_retry` tests it), so that the presentation is reuse.
use futures_util::future::join_all;
use reqwest::StatusCode;
use serde_json::{Value, json};
use umbra_tests::{Pkce, TestApp, TestClient, assert_oauth_error};

/// A user signed in through `client`, and the token response.
pub(super) async fn signed_in(app: &TestApp, client: &TestClient) -> Value {
    app.create_user("ada", "correct horse battery").await;
    let pkce = Pkce::new();
    let code = app
        .authorization_code(
            &app.browser(),
            client,
            &pkce,
            "ada",
            "correct horse battery",
        )
        .await;
    let response = app.exchange_code(client, &code, &pkce.verifier).await;
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

db_test! {
    async fn each_refresh_returns_a_new_pair_and_kills_the_old_refresh_token(app: TestApp) {
        let client = app.web_app(true).await;
        let rs = app.resource_server().await;
        let first = signed_in(&app, &client).await;
        let old_refresh = first["refresh_token"].as_str().unwrap();

        let response = app.refresh(&client, old_refresh, None).await;

        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["cache-control"], "no-store");
        let second: Value = response.json().await.unwrap();
        assert_ne!(second["refresh_token"], first["refresh_token"]);
        assert_eq!(second["scope"], "read write");
        let fresh_access = second["access_token"].as_str().unwrap();
        assert_eq!(app.introspection_of(&rs, fresh_access).await["username"], "ada");
        let third = app.refresh(&client, second["refresh_token"].as_str().unwrap(), None).await;
        assert_eq!(third.status(), StatusCode::OK, "the successor rotates in turn");
    }
}

/// Closes the refresh retry window.
pub(super) fn no_retry_window(settings: &mut umbra::settings::Settings) {
    settings.tokens.refresh_reuse_grace_secs = 0;
}

db_test_with! {
    no_retry_window,
    async fn reusing_a_rotated_refresh_token_revokes_the_whole_grant(app: TestApp) {
        let client = app.web_app(true).await;
        let rs = app.resource_server().await;
        let first = signed_in(&app, &client).await;
        let second: Value = app
            .refresh(&client, first["refresh_token"].as_str().unwrap(), None)
            .await
            .json()
            .await
            .unwrap();

        let reuse = app.refresh(&client, first["refresh_token"].as_str().unwrap(), None).await;

        assert_oauth_error(reuse, StatusCode::BAD_REQUEST, "invalid_grant").await;
        for access in [&first["access_token"], &second["access_token"]] {
            assert_eq!(app.introspection_of(&rs, access.as_str().unwrap()).await, json!({"active": false}));
        }
        let successor = app.refresh(&client, second["refresh_token"].as_str().unwrap(), None).await;
        assert_oauth_error(successor, StatusCode::BAD_REQUEST, "invalid_grant").await;
    }
}

db_test_with! {
    no_retry_window,
    async fn concurrent_refreshes_with_one_token_give_exactly_one_success(app: TestApp) {
        let client = app.web_app(true).await;
        let first = signed_in(&app, &client).await;
        let refresh = first["refresh_token"].as_str().unwrap();

        let responses = join_all((0..10).map(|_| app.refresh(&client, refresh, None))).await;

        let statuses: Vec<StatusCode> = responses.iter().map(|r| r.status()).collect();
        assert_eq!(statuses.iter().filter(|s| **s == StatusCode::OK).count(), 1, "{statuses:?}");
        assert!(statuses.iter().all(|s| *s == StatusCode::OK || *s == StatusCode::BAD_REQUEST), "{statuses:?}");
    }
}

db_test! {
    async fn a_refresh_may_narrow_the_scope_but_not_widen_it(app: TestApp) {
        let client = app.web_app(true).await;
        let first = signed_in(&app, &client).await;

        let narrowed: Value = app
            .refresh(&client, first["refresh_token"].as_str().unwrap(), Some("read"))
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(narrowed["scope"], "read");

        let widened = app
            .refresh(&client, narrowed["refresh_token"].as_str().unwrap(), Some("read write admin"))
            .await;
        assert_oauth_error(widened, StatusCode::BAD_REQUEST, "invalid_scope").await;
        let back_to_full: Value = app
            .refresh(&client, narrowed["refresh_token"].as_str().unwrap(), Some("read write"))
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(back_to_full["scope"], "read write", "the grant's scope stays available");
    }
}

db_test! {
    async fn a_refresh_token_is_bound_to_its_client(app: TestApp) {
        let client = app.web_app(true).await;
        let other = app.web_app(true).await;
        let first = signed_in(&app, &client).await;
        let refresh = first["refresh_token"].as_str().unwrap();

        let stolen = app.refresh(&other, refresh, None).await;

        assert_oauth_error(stolen, StatusCode::BAD_REQUEST, "invalid_grant").await;
        assert_eq!(app.refresh(&client, refresh, None).await.status(), StatusCode::OK, "the owner is unaffected");
    }
}

db_test! {
    async fn revoking_a_refresh_token_revokes_its_access_tokens(app: TestApp) {
        let client = app.web_app(true).await;
        let rs = app.resource_server().await;
        let first = signed_in(&app, &client).await;

        let response = app
            .post_form("/revoke", None, &[
                ("token", first["refresh_token"].as_str().unwrap()),
                ("client_id", &client.id),
            ])
            .await;

        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(app.introspection_of(&rs, first["access_token"].as_str().unwrap()).await, json!({"active": false}));
        let refresh = app.refresh(&client, first["refresh_token"].as_str().unwrap(), None).await;
        assert_oauth_error(refresh, StatusCode::BAD_REQUEST, "invalid_grant").await;
    }
}

db_test! {
    async fn a_disabled_users_tokens_stop_working(app: TestApp) {
        let client = app.web_app(true).await;
        let rs = app.resource_server().await;
        let first = signed_in(&app, &client).await;
        let user = app.store.find_user_by_username("ada").await.unwrap().unwrap();

        app.store.set_user_disabled(user.id, true, umbra::clock::now()).await.unwrap();

        assert_eq!(app.introspection_of(&rs, first["access_token"].as_str().unwrap()).await, json!({"active": false}));
        let refresh = app.refresh(&client, first["refresh_token"].as_str().unwrap(), None).await;
        assert_oauth_error(refresh, StatusCode::BAD_REQUEST, "invalid_grant").await;
    }
}
