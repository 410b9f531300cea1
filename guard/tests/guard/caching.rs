//! The optional caches: off by default, bounded by their lifetime and by the token's `exp`.
use crate::support::{FakeUmbra, Umbra};
use serde_json::json;
use std::time::Duration;
use umbra_guard::{CacheSettings, GuardError};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_cache_a_revocation_is_seen_at_once() {
    let umbra = Umbra::start().await;
    let introspector = umbra.introspector().build().unwrap();
    let (client, token) = umbra.token("read", "read").await;
    assert!(introspector.introspect(&token).await.is_ok());

    umbra.app.revoke(&client, &token).await;

    assert!(matches!(
        introspector.introspect(&token).await,
        Err(GuardError::Inactive)
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cached_answer_outlives_a_revocation_by_at_most_the_cache_lifetime() {
    let umbra = Umbra::start().await;
    let introspector = umbra
        .introspector()
        .cache(CacheSettings::new(100, Duration::from_millis(1500)))
        .build()
        .unwrap();
    let (client, token) = umbra.token("read", "read").await;
    assert!(introspector.introspect(&token).await.is_ok());

    umbra.app.revoke(&client, &token).await;
    let within = introspector.introspect(&token).await;
    tokio::time::sleep(Duration::from_millis(1700)).await;
    let after = introspector.introspect(&token).await;

    assert!(within.is_ok(), "served from the cache: {within:?}");
    assert!(matches!(after, Err(GuardError::Inactive)), "{after:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cached_answer_is_never_served_past_the_token_exp() {
    let fake = FakeUmbra::start();
    let exp = umbra::clock::now() + 2;
    fake.answer(200, FakeUmbra::active_answer("read", exp));
    let introspector = fake
        .introspector()
        .cache(CacheSettings::new(100, Duration::from_secs(600)))
        .build()
        .unwrap();

    assert!(introspector.introspect("at_token").await.is_ok());
    assert!(introspector.introspect("at_token").await.is_ok());
    assert_eq!(fake.hits(), 1, "the second answer came from the cache");
    while umbra::clock::now() < exp {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let after = introspector.introspect("at_token").await;

    assert!(matches!(after, Err(GuardError::Expired)), "{after:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caches_are_keyed_by_token() {
    let fake = FakeUmbra::start();
    fake.answer(
        200,
        FakeUmbra::active_answer("read", umbra::clock::now() + 600),
    );
    let introspector = fake
        .introspector()
        .cache(CacheSettings::default())
        .build()
        .unwrap();

    for token in ["at_one", "at_two", "at_one", "at_two"] {
        assert!(introspector.introspect(token).await.is_ok());
    }

    assert_eq!(fake.hits(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_inactive_answer_is_cached_briefly_when_asked_to() {
    let fake = FakeUmbra::start();
    fake.answer(200, json!({"active": false}));
    let introspector = fake
        .introspector()
        .negative_cache(CacheSettings::new(100, Duration::from_millis(800)))
        .build()
        .unwrap();
    assert!(matches!(
        introspector.introspect("at_token").await,
        Err(GuardError::Inactive)
    ));

    // Umbra's answer changes; the negative cache keeps the old one for its lifetime.
    fake.answer(
        200,
        FakeUmbra::active_answer("read", umbra::clock::now() + 600),
    );
    let within = introspector.introspect("at_token").await;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let after = introspector.introspect("at_token").await;

    assert!(matches!(within, Err(GuardError::Inactive)), "{within:?}");
    assert!(after.is_ok(), "{after:?}");
    assert_eq!(fake.hits(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_are_never_cached() {
    let fake = FakeUmbra::start();
    fake.answer(503, json!({"error": "temporarily_unavailable"}));
    let introspector = fake
        .introspector()
        .cache(CacheSettings::default())
        .negative_cache(CacheSettings::default())
        .build()
        .unwrap();
    assert!(matches!(
        introspector.introspect("at_token").await,
        Err(GuardError::Unavailable(_))
    ));

    fake.answer(
        200,
        FakeUmbra::active_answer("read", umbra::clock::now() + 600),
    );

    assert!(introspector.introspect("at_token").await.is_ok());
    assert_eq!(fake.hits(), 2);
}
