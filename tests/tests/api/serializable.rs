//! The races of the single-use rules at SERIALIZABLE, the default isolation of CockroachDB
//! (and, at REPEATABLE READ, of YugabyteDB): there, concurrent transactions on one row abort
//! with SQLSTATE 40001 instead of waiting. Every loser must be retried to the answer it would
//! have had without the abort: no 5xx, and a replay still revokes the grant. On SQLite these
//! run as plain concurrency tests.
//!
//! CI also runs the whole Postgres suite with `TEST_PG_ISOLATION=serializable`; these tests
//! pin the level themselves so that they hold whatever the run's default is.
use super::refresh::signed_in;
use futures_util::future::join_all;
use reqwest::StatusCode;
use serde_json::json;
use umbra::oauth::resource::Audience;
use umbra::oauth::scope::ScopeSet;
use umbra::settings::Settings;
use umbra::store::Approval;
use umbra_tests::Pkce;

/// Every connection of the app (and of the test's own store handle) starts its transactions
/// at SERIALIZABLE.
fn serializable(settings: &mut Settings) {
    if settings.database.url.starts_with("postgres") {
        let separator = if settings.database.url.contains('?') {
            '&'
        } else {
            '?'
        };
        settings.database.url.push(separator);
        settings
            .database
            .url
            .push_str("options=-c%20default_transaction_isolation%3Dserializable");
    }
}

fn serializable_without_retry_window(settings: &mut Settings) {
    serializable(settings);
    settings.tokens.refresh_reuse_grace_secs = 0;
}

/// The statuses of `responses`, asserting that none is a server error.
fn statuses(responses: &[reqwest::Response]) -> Vec<StatusCode> {
    let statuses: Vec<StatusCode> = responses.iter().map(|r| r.status()).collect();
    assert!(
        statuses.iter().all(|s| !s.is_server_error()),
        "{statuses:?}"
    );
    statuses
}

/// The access token of the one 200 among `responses`, asserting that there is exactly one,
/// that nothing is a server error, and that every other answer is 400 `invalid_grant`.
async fn the_one_winner(responses: Vec<reqwest::Response>) -> String {
    let statuses = statuses(&responses);
    assert_eq!(
        statuses.iter().filter(|s| **s == StatusCode::OK).count(),
        1,
        "{statuses:?}"
    );
    assert!(
        statuses
            .iter()
            .all(|s| *s == StatusCode::OK || *s == StatusCode::BAD_REQUEST),
        "{statuses:?}"
    );
    let mut winner = None;
    for response in responses {
        let body: serde_json::Value = response.json().await.unwrap();
        if let Some(access) = body["access_token"].as_str() {
            winner = Some(access.to_owned());
        } else {
            assert_eq!(body["error"], "invalid_grant", "{body}");
        }
    }
    winner.unwrap()
}

db_test_with! {
    serializable,
    async fn the_isolation_level_is_really_serializable(app: TestApp) {
        if app.backend == umbra_tests::Backend::Postgres {
            let level = sea_orm::ConnectionTrait::query_one_raw(
                app.store.connection(),
                sea_orm::Statement::from_string(
                    sea_orm::DbBackend::Postgres,
                    "SHOW default_transaction_isolation",
                ),
            )
            .await
            .unwrap()
            .unwrap()
            .try_get_by_index::<String>(0)
            .unwrap();
            assert_eq!(level, "serializable");
        }
    }
}

db_test_with! {
    serializable,
    async fn twenty_concurrent_redemptions_of_one_code_give_one_success_and_revoke_it(app: TestApp) {
        app.create_user("ada", "correct horse battery").await;
        let client = app.web_app(true).await;
        let rs = app.resource_server().await;
        let pkce = Pkce::new();
        let code = app.authorization_code(&app.browser(), &client, &pkce, "ada", "correct horse battery").await;

        let responses = join_all((0..20).map(|_| app.exchange_code(&client, &code, &pkce.verifier))).await;

        let winner = the_one_winner(responses).await;
        // The losers were replays: the grant, and with it the winner's token, is revoked.
        assert_eq!(app.introspection_of(&rs, &winner).await, json!({"active": false}));
    }
}

db_test_with! {
    serializable_without_retry_window,
    async fn twenty_concurrent_refreshes_of_one_token_give_one_success_and_revoke_it(app: TestApp) {
        let client = app.web_app(true).await;
        let rs = app.resource_server().await;
        let first = signed_in(&app, &client).await;
        let refresh = first["refresh_token"].as_str().unwrap();

        let responses = join_all((0..20).map(|_| app.refresh(&client, refresh, None))).await;

        let winner = the_one_winner(responses).await;
        // The losers were replays: the grant, and with it the winner's token, is revoked.
        assert_eq!(app.introspection_of(&rs, &winner).await, json!({"active": false}));
    }
}

db_test_with! {
    serializable,
    async fn twenty_concurrent_refreshes_inside_the_retry_window_all_succeed(app: TestApp) {
        let client = app.web_app(true).await;
        let rs = app.resource_server().await;
        let first = signed_in(&app, &client).await;
        let refresh = first["refresh_token"].as_str().unwrap();

        let responses = join_all((0..20).map(|_| app.refresh(&client, refresh, None))).await;

        let statuses = statuses(&responses);
        assert!(statuses.iter().all(|s| *s == StatusCode::OK), "{statuses:?}");
        for response in responses {
            let body: serde_json::Value = response.json().await.unwrap();
            let access = body["access_token"].as_str().unwrap();
            assert_eq!(app.introspection_of(&rs, access).await["active"], true);
        }
    }
}

db_test_with! {
    serializable,
    async fn concurrent_client_credentials_issuance_and_revocation_never_fail(app: TestApp) {
        let client = app.service_client("read").await;
        let rs = app.resource_server().await;

        let tokens = join_all((0..20).map(|_| app.issue_token(&client))).await;
        let responses = join_all(tokens.iter().map(|token| app.revoke(&client, token))).await;

        let statuses = statuses(&responses);
        assert!(statuses.iter().all(|s| *s == StatusCode::OK), "{statuses:?}");
        for token in &tokens {
            assert_eq!(app.introspection_of(&rs, token).await, json!({"active": false}));
        }
    }
}

db_test_with! {
    serializable,
    async fn concurrent_approvals_for_one_client_are_all_remembered(app: TestApp) {
        let user = app.create_user("ada", "correct horse battery").await;
        let client = app.web_app(false).await;
        let scopes: Vec<String> = (0..20).map(|i| format!("scope{i}")).collect();

        let results = join_all(scopes.iter().map(|scope| {
            let approval = Approval {
                scope: ScopeSet::parse(scope).unwrap(),
                audience: Audience::default(),
            };
            let store = app.store.clone();
            let (user_id, client_id) = (user.id, client.id.clone());
            async move { store.remember_consent(user_id, &client_id, &approval, 1).await }
        }))
        .await;

        for result in results {
            result.unwrap();
        }
        let remembered = app.store.consent(user.id, &client.id).await.unwrap().unwrap();
        for scope in &scopes {
            assert!(remembered.scope.contains(scope), "{scope} was lost: {}", remembered.scope);
        }
    }
}
