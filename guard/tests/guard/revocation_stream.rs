//! The positive cache following Umbra's revocation stream: a revoked token is refused at its
//! next request, and while the stream is down the cache is bypassed.
use crate::support::{FakeUmbra, Umbra};
use std::time::{Duration, Instant};
use umbra_guard::{BuildError, CacheSettings, GuardError, Introspector};
use umbra_tests::{Backend, TestApp};

/// Long enough that only the stream can explain a refusal.
const LONG: Duration = Duration::from_secs(600);
const HEARTBEAT: Duration = Duration::from_secs(1);

/// How many introspection answers Umbra has given.
async fn answered(umbra: &Umbra) -> u64 {
    let text = umbra
        .app
        .http
        .get(format!("{}/metrics", umbra.app.metrics_address))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .filter(|line| line.starts_with("umbra_introspections_total{"))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

async fn umbra(backend: Backend) -> Option<Umbra> {
    let app = TestApp::spawn_with(backend, |settings| {
        settings.revocations.heartbeat_secs = HEARTBEAT.as_secs();
    })
    .await?;
    let rs = app.resource_server().await;
    Some(Umbra { app, rs })
}

/// Introspects until an answer comes from the cache (Umbra answered no more), so that the
/// stream is known to be up.
async fn until_served_from_the_cache(umbra: &Umbra, introspector: &Introspector, token: &str) {
    let started = Instant::now();
    loop {
        let before = answered(umbra).await;
        assert!(introspector.introspect(token).await.is_ok());
        if answered(umbra).await == before {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the cache never serves"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn a_revoked_token_is_refused_at_its_next_request(backend: Backend) {
    let Some(umbra) = umbra(backend).await else {
        return;
    };
    let introspector = umbra
        .introspector()
        .cache(CacheSettings::new(100, LONG))
        .revocation_stream(HEARTBEAT)
        .build()
        .unwrap();
    let (client, token) = umbra.token("read", "read").await;
    until_served_from_the_cache(&umbra, &introspector, &token).await;

    let revoked = Instant::now();
    umbra.app.revoke(&client, &token).await;
    let delay = loop {
        match introspector.introspect(&token).await {
            Err(GuardError::Inactive) => break revoked.elapsed(),
            Ok(_) => {}
            other => panic!("{other:?}"),
        }
        assert!(
            revoked.elapsed() < Duration::from_secs(3),
            "still served from the cache"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    };

    println!("{backend:?}: refused {delay:?} after the revocation");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_token_is_refused_at_its_next_request_sqlite() {
    a_revoked_token_is_refused_at_its_next_request(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_token_is_refused_at_its_next_request_postgres() {
    a_revoked_token_is_refused_at_its_next_request(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_stream_every_request_introspects() {
    // The fake has no revocation stream: it stays down.
    let fake = FakeUmbra::start();
    fake.answer(
        200,
        FakeUmbra::active_answer("read", umbra::clock::now() + 600),
    );
    let introspector = fake
        .introspector()
        .cache(CacheSettings::new(100, LONG))
        .revocation_stream(HEARTBEAT)
        .build()
        .unwrap();

    for _ in 0..5 {
        assert!(introspector.introspect("at_token").await.is_ok());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    assert_eq!(fake.hits(), 5, "the cache is bypassed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stream_needs_the_positive_cache() {
    let fake = FakeUmbra::start();

    let built = fake.introspector().revocation_stream(HEARTBEAT).build();

    assert!(matches!(built, Err(BuildError::RevocationStream)));
}
