//! The admin API (issue 13): grants of a user or a client, listed and revoked.
use crate::introspection_cache::inactive_within;
use std::time::{Duration, Instant};
use umbra::oauth::introspection::RecordKind;
use umbra::oauth::token::TokenHash;
use umbra::store::{GrantOwner, Store, TokenCache};
use umbra_tests::TestApp;

const PASSWORD: &str = "correct horse battery";

/// How long the app, which learns of a revocation made beside it only from the change log,
/// may take to answer inactive.
const FROM_THE_DATABASE: Duration = Duration::from_secs(3);

/// A handle on the app's database with an introspection cache of its own that serves (as an
/// instance's does while it follows the change log).
fn cached_store(app: &TestApp) -> Store {
    let store = app
        .store
        .clone()
        .with_token_cache(TokenCache::new(100, Duration::from_secs(60)));
    store.token_cache().polled(Instant::now());
    store
}

/// Looks `token` up twice through `store`, so that it is cached; returns whether it is revoked.
async fn revoked(store: &Store, token: &str) -> bool {
    let record = store
        .token_record(&TokenHash::of(token), RecordKind::Access)
        .await
        .unwrap()
        .expect("a stored token");
    record.revoked
}

db_test! {
    async fn revoking_the_grants_of_a_user_or_a_client_inactivates_their_tokens_at_the_next_lookup(app: TestApp) {
        // Arrange: a user's token at a web app, a client's own token, both cached.
        let web = app.web_app(false).await;
        let service = app.service_client("").await;
        let rs = app.resource_server().await;
        let user = app.create_user("grace", PASSWORD).await;
        let user_token = app.user_access_token(&web, "grace", PASSWORD, "read").await;
        let service_token = app.issue_token(&service).await;
        let store = cached_store(&app);
        let now = umbra::clock::now();
        for token in [&user_token, &service_token] {
            assert!(!revoked(&store, token).await);
            assert!(!revoked(&store, token).await);
        }
        assert_eq!(store.token_cache().len(), 2);

        let theirs = store.list_grants(&GrantOwner::User(user.id), now, 10).await.unwrap();
        assert_eq!(theirs.len(), 1);
        assert_eq!(theirs[0].client_id, web.id);
        assert_eq!(theirs[0].user_id, Some(user.id));
        assert_eq!(theirs[0].scope, "read");
        assert_eq!(theirs[0].grant_type, "authorization_code");
        let owned = store
            .list_grants(&GrantOwner::Client(service.id.clone()), now, 10)
            .await
            .unwrap();
        assert_eq!(owned.len(), 1);
        assert_eq!(owned[0].user_id, None);
        assert_eq!(owned[0].grant_type, "client_credentials");

        // Act and assert: another owner's grant is refused and left alone.
        let web_owner = GrantOwner::Client(web.id.clone());
        assert!(!store.revoke_grant_of(&web_owner, owned[0].id, now).await.unwrap());
        assert!(!revoked(&store, &service_token).await);

        // A user's grants: the very next lookup through the revoking store is revoked, and the
        // app learns it from the change log.
        let since = Instant::now();
        let count = store.revoke_grants_of(&GrantOwner::User(user.id), now).await.unwrap();
        assert_eq!(count, 1);
        assert!(revoked(&store, &user_token).await);
        assert!(!revoked(&store, &service_token).await);
        assert!(store.list_grants(&GrantOwner::User(user.id), now, 10).await.unwrap().is_empty());
        inactive_within(&app, &rs, &user_token, since, FROM_THE_DATABASE).await;
        assert_eq!(store.revoke_grants_of(&GrantOwner::User(user.id), now).await.unwrap(), 0);

        // One grant of a client.
        let since = Instant::now();
        let service_owner = GrantOwner::Client(service.id.clone());
        assert!(store.revoke_grant_of(&service_owner, owned[0].id, now).await.unwrap());
        assert!(revoked(&store, &service_token).await);
        inactive_within(&app, &rs, &service_token, since, FROM_THE_DATABASE).await;
        assert!(!store.revoke_grant_of(&service_owner, owned[0].id, now).await.unwrap());
        assert!(store.list_grants(&service_owner, now, 10).await.unwrap().is_empty());
    }
}

db_test! {
    async fn revoking_every_grant_of_a_client_counts_each_once_under_concurrent_revokers(app: TestApp) {
        let service = app.service_client("").await;
        let mut tokens = Vec::new();
        for _ in 0..5 {
            tokens.push(app.issue_token(&service).await);
        }
        let owner = GrantOwner::Client(service.id.clone());
        let now = umbra::clock::now();
        assert_eq!(app.store.list_grants(&owner, now, 3).await.unwrap().len(), 3);

        let revokers = (0..12).map(|_| app.store.revoke_grants_of(&owner, now));
        let counts: Vec<u64> = futures_util::future::join_all(revokers)
            .await
            .into_iter()
            .map(Result::unwrap)
            .collect();

        assert_eq!(counts.iter().sum::<u64>(), 5, "{counts:?}");
        let store = cached_store(&app);
        for token in &tokens {
            assert!(revoked(&store, token).await);
        }
        assert!(app.store.list_grants(&owner, now, 10).await.unwrap().is_empty());
    }
}
