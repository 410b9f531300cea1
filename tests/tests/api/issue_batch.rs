//! Group commit of client_credentials issuance (`tokens.issue_batch_*`): concurrent requests
//! share a transaction, each still gets its own token, and a member whose rows cannot be
//! stored fails alone.
use futures_util::FutureExt;
use futures_util::future::join_all;
use reqwest::StatusCode;
use std::collections::HashSet;
use std::time::Duration;
use umbra::oauth::introspection::RecordKind;
use umbra::oauth::resource::Audience;
use umbra::oauth::scope::ScopeSet;
use umbra::oauth::token::{Token, TokenHash, TokenKind};
use umbra::store::{IssueBatching, NewAccessToken, Store, StoreError};
use umbra_tests::{TestApp, TestClient};

/// The client_credentials tokens of `count` concurrent requests, spread over `clients` in turn,
/// each with the client it was issued to.
async fn burst(app: &TestApp, clients: &[TestClient], count: usize) -> Vec<(String, usize)> {
    join_all((0..count).map(|n| async move {
        let client = &clients[n % clients.len()];
        let response = app
            .post_token(Some(client), &[("grant_type", "client_credentials")])
            .await;
        assert_eq!(response.status(), StatusCode::OK);
        let body: serde_json::Value = response.json().await.unwrap();
        (
            body["access_token"].as_str().unwrap().to_owned(),
            n % clients.len(),
        )
    }))
    .await
}

/// `umbra_issue_batch_size` as served: (groups, issuances in them, groups of one).
async fn batch_sizes(app: &TestApp) -> (f64, f64, f64) {
    let text = app.metrics().await;
    let value = |name: &str| {
        umbra_tests::metric_value(&text, name).unwrap_or_else(|| panic!("{name} missing: {text}"))
    };
    (
        value("umbra_issue_batch_size_count"),
        value("umbra_issue_batch_size_sum"),
        value("umbra_issue_batch_size_bucket{le=\"1\"}"),
    )
}

db_test! {
    async fn forty_eight_concurrent_issuances_of_three_clients_share_groups_and_each_token_is_its_own(app: TestApp) {
        let clients = [
            app.service_client("read").await,
            app.service_client("write").await,
            app.service_client("read write").await,
        ];
        let scopes = ["read", "write", "read write"];
        let resource_server = app.resource_server().await;

        let issued = burst(&app, &clients, 48).await;

        let distinct: HashSet<&str> = issued.iter().map(|(token, _)| token.as_str()).collect();
        assert_eq!(distinct.len(), 48);
        for (token, client) in &issued {
            let answer = app.introspection_of(&resource_server, token).await;
            assert_eq!(answer["active"], true, "{answer}");
            assert_eq!(answer["client_id"], clients[*client].id.as_str());
            assert_eq!(answer["scope"], scopes[*client]);
        }
        let (groups, members, alone) = batch_sizes(&app).await;
        assert_eq!(members, 48.0, "every issuance went through a group");
        assert!(groups > alone, "at least one group held more than one issuance: {groups} groups, {alone} of one");
    }
}

db_test_with! {
    |settings| settings.tokens.issue_batch_wait_us = 0,
    async fn with_grouping_off_concurrent_issuances_each_commit_alone(app: TestApp) {
        let clients = [app.service_client("read").await, app.service_client("write").await];
        let resource_server = app.resource_server().await;

        let issued = burst(&app, &clients, 24).await;

        let distinct: HashSet<&str> = issued.iter().map(|(token, _)| token.as_str()).collect();
        assert_eq!(distinct.len(), 24);
        for (token, client) in &issued {
            let answer = app.introspection_of(&resource_server, token).await;
            assert_eq!(answer["client_id"], clients[*client].id.as_str());
        }
        assert_eq!(batch_sizes(&app).await, (0.0, 0.0, 0.0), "no group formed");
    }
}

db_test! {
    async fn a_client_deleted_during_a_burst_fails_only_its_own_requests(app: TestApp) {
        let clients = [
            app.service_client("read").await,
            app.service_client("read").await,
            app.service_client("read").await,
        ];
        let doomed = clients[2].id.clone();

        let (responses, deleted) = tokio::join!(
            join_all((0..48).map(|n| {
                app.post_token(Some(&clients[n % 3]), &[("grant_type", "client_credentials")])
            })),
            async {
                tokio::time::sleep(Duration::from_millis(2)).await;
                app.store.delete_client(&doomed).await.unwrap()
            }
        );

        assert!(deleted);
        for (n, response) in responses.into_iter().enumerate() {
            let status = response.status();
            let body: serde_json::Value = response.json().await.unwrap();
            if n % 3 == 2 {
                assert!(
                    status == StatusCode::OK
                        || (status == StatusCode::UNAUTHORIZED && body["error"] == "invalid_client"),
                    "{status} {body}"
                );
            } else {
                assert_eq!(status, StatusCode::OK, "{body}");
            }
        }
    }
}

/// A fresh access token for the store-level tests, with its hash.
fn new_token(scope: &str) -> NewAccessToken {
    let token = Token::generate(TokenKind::AccessToken).unwrap();
    NewAccessToken {
        hash: token.hash(),
        scope: ScopeSet::parse(scope).unwrap(),
        audience: Audience::new(Vec::new()),
        issued_at: 1_700_000_000,
        expires_at: 4_000_000_000,
    }
}

/// The app's store handle with groups that wait long enough to gather a whole burst.
fn grouping(app: &TestApp) -> Store {
    app.store.clone().with_issue_batching(IssueBatching {
        max: 64,
        wait: Duration::from_millis(200),
    })
}

async fn stored(store: &Store, hash: &TokenHash) -> Option<String> {
    store
        .token_record(hash, RecordKind::Access)
        .await
        .unwrap()
        .map(|record| record.client_id)
}

/// The client `hash` was issued to once it is stored, waiting up to five seconds for a group
/// that nobody awaits to commit.
async fn stored_soon(store: &Store, hash: &TokenHash) -> Option<String> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let found = stored(store, hash).await;
        if found.is_some() || tokio::time::Instant::now() >= deadline {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

db_test! {
    async fn a_group_with_issuances_for_an_unknown_client_fails_only_those(app: TestApp) {
        let clients = [app.service_client("read").await, app.service_client("read").await];
        let store = grouping(&app);
        let wanted: Vec<(String, NewAccessToken)> = (0..48)
            .map(|n| match n % 3 {
                2 => ("no-such-client".to_owned(), new_token("read")),
                k => (clients[k].id.clone(), new_token("read")),
            })
            .collect();

        let outcomes = join_all(
            wanted.iter().map(|(client, token)| store.issue_client_credentials(client, token)),
        )
        .await;

        let mut grants = HashSet::new();
        for ((client, token), outcome) in wanted.iter().zip(outcomes) {
            if client == "no-such-client" {
                assert!(matches!(outcome, Err(StoreError::Gone(_))), "{outcome:?}");
                assert_eq!(stored(&store, &token.hash).await, None);
            } else {
                assert!(grants.insert(outcome.unwrap()), "a grant of its own");
                assert_eq!(stored(&store, &token.hash).await.as_ref(), Some(client));
            }
        }
        let sizes = store.issue_batch_sizes();
        assert_eq!(sizes.get_sample_sum(), 48.0);
        assert!(sizes.get_sample_count() < 48, "issuances shared groups");
    }
}

db_test! {
    async fn requests_dropped_while_queued_do_not_break_their_group(app: TestApp) {
        let client = app.service_client("read").await;
        let store = grouping(&app);
        let tokens: Vec<NewAccessToken> = (0..48).map(|_| new_token("read")).collect();

        let outcomes = join_all(tokens.iter().enumerate().map(|(n, token)| {
            let store = &store;
            let client = &client.id;
            async move {
                let issue = store.issue_client_credentials(client, token);
                if n % 2 == 0 {
                    Some(issue.await)
                } else {
                    // Polled once (queued), then dropped, as when a client hangs up.
                    issue.now_or_never()
                }
            }
        }))
        .await;

        let mut dropped = 0;
        for (n, (token, outcome)) in tokens.iter().zip(outcomes).enumerate() {
            if n % 2 == 0 {
                outcome.unwrap().unwrap();
                assert_eq!(stored(&store, &token.hash).await.as_deref(), Some(client.id.as_str()));
            } else {
                match outcome {
                    None => dropped += 1,
                    // Its thread was preempted between queueing and the one poll for so long
                    // that the group committed meanwhile: answered, so nothing was dropped.
                    Some(Ok(_)) => {}
                    Some(Err(err)) => panic!("a queued issuance failed: {err}"),
                }
                // A group may hold only dropped requests (the tail of the burst, taken after the
                // last awaited one's group): nobody waits for it, so it commits a moment later.
                assert_eq!(stored_soon(&store, &token.hash).await.as_deref(), Some(client.id.as_str()), "stored anyway");
            }
        }
        assert!(dropped > 0, "some requests were dropped while queued");
        assert!(store.issue_batch_sizes().get_sample_count() < 48, "issuances shared groups");
    }
}
