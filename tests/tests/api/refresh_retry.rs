//! The refresh retry window (`tokens.refresh_reuse_grace_secs`): a used refresh token presented
//! again soon, while nothing issued from it has been used, gets a sibling pair in the same
//! grant; later, or once a successor was used, it is reuse and revokes the grant (RFC 9700
//! §4.14). Confidential clients, so that each can introspect its own refresh tokens.
use crate::refresh::{no_retry_window, signed_in};
use entity::{grant, refresh_token};
use futures_util::future::join_all;
use reqwest::StatusCode;
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use serde_json::Value;
use std::collections::HashSet;
use std::time::Duration;
use umbra_tests::{TestApp, TestClient, assert_oauth_error};

/// A window of 1 s: its end is waited out in [`after_the_window`].
fn one_second_window(settings: &mut umbra::settings::Settings) {
    settings.tokens.refresh_reuse_grace_secs = 1;
}

/// Waits until a token used now is outside a window of 1 s: the window is counted in whole
/// seconds, so 2.5 s is past it wherever in its second the token was used.
async fn after_the_window() {
    tokio::time::sleep(Duration::from_millis(2500)).await;
}

/// Refreshes with the refresh token of `pair` and returns the new pair, asserting success.
async fn refreshed(app: &TestApp, client: &TestClient, pair: &Value) -> Value {
    let response = app.refresh(client, refresh_of(pair), None).await;
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

fn refresh_of(pair: &Value) -> &str {
    pair["refresh_token"].as_str().unwrap()
}

/// Whether the access token of `pair` is active for `rs` and its refresh token for `client`,
/// its owner (a refresh token counts as active until it is used or retired).
async fn activity(
    app: &TestApp,
    rs: &TestClient,
    client: &TestClient,
    pair: &Value,
) -> (bool, bool) {
    let access = app
        .introspection_of(rs, pair["access_token"].as_str().unwrap())
        .await;
    let refresh = app.introspection_of(client, refresh_of(pair)).await;
    (access["active"] == true, refresh["active"] == true)
}

/// Asserts that no token of `pairs` is active any more: their grant is revoked.
async fn assert_all_inactive(
    app: &TestApp,
    rs: &TestClient,
    client: &TestClient,
    pairs: &[&Value],
) {
    for pair in pairs {
        assert_eq!(
            activity(app, rs, client, pair).await,
            (false, false),
            "{pair}"
        );
    }
}

/// The stored hash of a token string.
fn hash_of(token: &str) -> Vec<u8> {
    umbra::oauth::token::parse(token)
        .unwrap()
        .hash
        .as_bytes()
        .to_vec()
}

db_test! {
    async fn concurrent_refreshes_with_one_token_inside_the_window_all_get_live_sibling_pairs(app: TestApp) {
        let client = app.web_app(false).await;
        let rs = app.resource_server().await;
        let first = signed_in(&app, &client).await;
        let refresh = refresh_of(&first);

        let responses = join_all((0..24).map(|_| app.refresh(&client, refresh, None))).await;

        let statuses: Vec<StatusCode> = responses.iter().map(|r| r.status()).collect();
        assert!(statuses.iter().all(|s| *s == StatusCode::OK), "{statuses:?}");
        let pairs: Vec<Value> = join_all(responses.into_iter().map(|r| r.json::<Value>()))
            .await
            .into_iter()
            .map(Result::unwrap)
            .collect();
        let mut seen = HashSet::from([first["access_token"].to_string(), first["refresh_token"].to_string()]);
        for pair in &pairs {
            assert!(seen.insert(pair["access_token"].to_string()), "a repeated access token");
            assert!(seen.insert(pair["refresh_token"].to_string()), "a repeated refresh token");
            assert_eq!(activity(&app, &rs, &client, pair).await, (true, true), "{pair}");
        }
        let db = app.store.connection();
        assert_eq!(grant::Entity::find().count(db).await.unwrap(), 1, "one grant");
        let siblings = refresh_token::Entity::find()
            .filter(refresh_token::Column::ParentHash.eq(hash_of(refresh)))
            .count(db)
            .await
            .unwrap();
        assert_eq!(siblings, 24, "every pair is a sibling issued from the presented token");
    }
}

db_test! {
    async fn a_retry_inside_the_window_after_a_successor_was_used_revokes_the_grant(app: TestApp) {
        let client = app.web_app(false).await;
        let rs = app.resource_server().await;
        let first = signed_in(&app, &client).await;
        let second = refreshed(&app, &client, &first).await;
        let third = refreshed(&app, &client, &second).await;

        let retry = app.refresh(&client, refresh_of(&first), None).await;

        assert_oauth_error(retry, StatusCode::BAD_REQUEST, "invalid_grant").await;
        assert_all_inactive(&app, &rs, &client, &[&first, &second, &third]).await;
    }
}

db_test_with! {
    one_second_window,
    async fn a_retry_after_the_window_revokes_the_grant(app: TestApp) {
        let client = app.web_app(false).await;
        let rs = app.resource_server().await;
        let first = signed_in(&app, &client).await;
        let second = refreshed(&app, &client, &first).await;
        after_the_window().await;

        let retry = app.refresh(&client, refresh_of(&first), None).await;

        assert_oauth_error(retry, StatusCode::BAD_REQUEST, "invalid_grant").await;
        assert_all_inactive(&app, &rs, &client, &[&first, &second]).await;
    }
}

db_test_with! {
    one_second_window,
    async fn using_one_sibling_retires_the_other_which_revokes_the_grant_after_its_window(app: TestApp) {
        let client = app.web_app(false).await;
        let rs = app.resource_server().await;
        let first = signed_in(&app, &client).await;
        let kept = refreshed(&app, &client, &first).await;
        let sibling = refreshed(&app, &client, &first).await;
        assert_eq!(activity(&app, &rs, &client, &sibling).await, (true, true));

        let next = refreshed(&app, &client, &kept).await;

        assert_eq!(activity(&app, &rs, &client, &sibling).await, (true, false), "the sibling is retired");
        after_the_window().await;
        let late = app.refresh(&client, refresh_of(&sibling), None).await;
        assert_oauth_error(late, StatusCode::BAD_REQUEST, "invalid_grant").await;
        assert_all_inactive(&app, &rs, &client, &[&first, &kept, &sibling, &next]).await;
    }
}

db_test! {
    async fn a_retired_sibling_inside_its_own_window_is_a_retry(app: TestApp) {
        let client = app.web_app(false).await;
        let rs = app.resource_server().await;
        let first = signed_in(&app, &client).await;
        let kept = refreshed(&app, &client, &first).await;
        let sibling = refreshed(&app, &client, &first).await;
        let next = refreshed(&app, &client, &kept).await;

        let from_sibling = refreshed(&app, &client, &sibling).await;

        assert_eq!(activity(&app, &rs, &client, &next).await, (true, true));
        assert_eq!(activity(&app, &rs, &client, &from_sibling).await, (true, true));
        let reuse = app.refresh(&client, refresh_of(&first), None).await;
        assert_oauth_error(reuse, StatusCode::BAD_REQUEST, "invalid_grant").await;
        assert_all_inactive(&app, &rs, &client, &[&next, &from_sibling]).await;
    }
}

db_test_with! {
    no_retry_window,
    async fn with_the_window_closed_an_immediate_retry_revokes_the_grant(app: TestApp) {
        let client = app.web_app(false).await;
        let rs = app.resource_server().await;
        let first = signed_in(&app, &client).await;
        let second = refreshed(&app, &client, &first).await;

        let retry = app.refresh(&client, refresh_of(&first), None).await;

        assert_oauth_error(retry, StatusCode::BAD_REQUEST, "invalid_grant").await;
        assert_all_inactive(&app, &rs, &client, &[&first, &second]).await;
    }
}

db_test! {
    async fn retries_racing_the_successors_first_use_never_leave_a_sibling_live_beside_it(app: TestApp) {
        let client = app.web_app(false).await;
        let first = signed_in(&app, &client).await;
        let second = refreshed(&app, &client, &first).await;

        let responses = join_all((0..20).map(|n| {
            let presented = if n == 10 { &second } else { &first };
            app.refresh(&client, refresh_of(presented), None)
        }))
        .await;

        let statuses: Vec<StatusCode> = responses.iter().map(|r| r.status()).collect();
        assert!(statuses.iter().all(|s| *s == StatusCode::OK || *s == StatusCode::BAD_REQUEST), "{statuses:?}");
        let db = app.store.connection();
        let revoked = grant::Entity::find().one(db).await.unwrap().unwrap().revoked_at.is_some();
        assert_eq!(statuses.contains(&StatusCode::BAD_REQUEST), revoked, "a refused retry is reuse: {statuses:?}");
        let live_children = refresh_token::Entity::find()
            .filter(refresh_token::Column::ParentHash.eq(hash_of(refresh_of(&first))))
            .filter(refresh_token::Column::RotatedAt.is_null())
            .count(db)
            .await
            .unwrap();
        assert!(revoked || live_children == 0, "a sibling issued after the successor's use: {statuses:?}");
    }
}

db_test! {
    async fn siblings_used_at_once_all_succeed_one_first_and_the_rest_as_retries(app: TestApp) {
        let client = app.web_app(false).await;
        let rs = app.resource_server().await;
        let first = signed_in(&app, &client).await;
        let mut siblings = Vec::new();
        for _ in 0..12 {
            siblings.push(refreshed(&app, &client, &first).await);
        }

        let responses = join_all(siblings.iter().map(|s| app.refresh(&client, refresh_of(s), None))).await;

        let statuses: Vec<StatusCode> = responses.iter().map(|r| r.status()).collect();
        assert!(statuses.iter().all(|s| *s == StatusCode::OK), "{statuses:?}");
        for response in responses {
            let pair: Value = response.json().await.unwrap();
            assert_eq!(activity(&app, &rs, &client, &pair).await, (true, true), "{pair}");
        }
        let reuse = app.refresh(&client, refresh_of(&first), None).await;
        assert_oauth_error(reuse, StatusCode::BAD_REQUEST, "invalid_grant").await;
    }
}
