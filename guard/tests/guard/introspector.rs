//! The `Introspector` on its own: what it sends, what it retries, how it fails.
use crate::support::{FakeUmbra, Logs, Umbra, closed_port};
use std::time::{Duration, Instant};
use tracing::instrument::WithSubscriber;
use umbra_guard::{GuardError, Introspector, ScopeRequirement, Unavailable};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_active_token_is_validated_by_the_real_umbra() {
    let umbra = Umbra::start().await;
    let introspector = umbra.introspector().build().unwrap();
    let (client, token) = umbra.token("read write", "read").await;

    let validated = introspector.introspect(&token).await.unwrap();

    assert_eq!(validated.client_id, client.id);
    assert_eq!(validated.scopes.to_string(), "read");
    // Umbra sends the client as the subject of a client_credentials token (RFC 9068 §2.2),
    // or, before it did, no subject, which the guard reads the same way.
    assert_eq!(validated.sub, client.id);
    assert!(!validated.is_user_token());
    assert_eq!(
        validated.iss.as_deref(),
        Some(umbra.app.settings.server.issuer.as_str())
    );
    assert!(validated.has_scope("read") && !validated.has_scope("write"));
    assert!(
        introspector
            .authorize(&token, &ScopeRequirement::all(["read"]))
            .await
            .is_ok()
    );
    assert!(matches!(
        introspector
            .authorize(&token, &ScopeRequirement::all(["write"]))
            .await,
        Err(GuardError::InsufficientScope(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_and_garbage_tokens_are_inactive_or_malformed() {
    let umbra = Umbra::start().await;
    let introspector = umbra.introspector().build().unwrap();

    let unknown = introspector
        .introspect("at_AXClCOVzYrN50op_YcppiN_ug206A1d_sTrPpxx8-x4_DasRg")
        .await;
    let garbage = introspector.introspect("not a token").await;

    assert!(matches!(unknown, Err(GuardError::Inactive)), "{unknown:?}");
    assert!(
        matches!(garbage, Err(GuardError::Malformed(_))),
        "{garbage:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_call_is_an_rfc_7662_form_post_with_basic_credentials() {
    let fake = FakeUmbra::start();
    let introspector = Introspector::builder(fake.url.clone(), "rs id", "cs_s3cret")
        .build()
        .unwrap();

    let _ = introspector.introspect("at_abc").await;

    let (authorization, body) = fake.last_request().unwrap();
    // RFC 6749 §2.3.1: the id and secret are form-encoded before Basic encoding.
    assert_eq!(authorization, "Basic cnMraWQ6Y3NfczNjcmV0");
    assert_eq!(body, "token=at_abc&token_type_hint=access_token");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_error_is_retried_until_umbra_listens() {
    let port = closed_port();
    let introspector = Introspector::builder(format!("http://127.0.0.1:{port}"), "rs", "cs_s")
        .retries(5, Duration::from_millis(100))
        .build()
        .unwrap();
    let late_start = async {
        tokio::time::sleep(Duration::from_millis(120)).await;
        let fake = FakeUmbra::start_on(port);
        fake.answer(
            200,
            FakeUmbra::active_answer("read", umbra::clock::now() + 600),
        );
        fake
    };

    let (result, fake) = tokio::join!(introspector.introspect("at_token"), late_start);

    assert_eq!(result.unwrap().client_id, "app");
    assert_eq!(fake.hits(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_are_bounded_and_then_the_token_is_refused() {
    let introspector =
        Introspector::builder(format!("http://127.0.0.1:{}", closed_port()), "rs", "cs_s")
            .retries(2, Duration::from_millis(100))
            .build()
            .unwrap();
    let started = Instant::now();

    let result = introspector.introspect("at_token").await;

    let elapsed = started.elapsed();
    assert!(
        matches!(
            result,
            Err(GuardError::Unavailable(Unavailable::Unreachable(_)))
        ),
        "{result:?}"
    );
    assert!(
        elapsed >= Duration::from_millis(300),
        "waited 100 + 200 ms: {elapsed:?}"
    );
    assert!(elapsed < Duration::from_secs(3), "{elapsed:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http_answer_is_never_retried_whatever_its_status() {
    for (status, expected) in [
        (500, "ServerError(500)"),
        (502, "ServerError(502)"),
        (401, "CredentialsRefused(401)"),
        (403, "CredentialsRefused(403)"),
        (404, "UnexpectedStatus(404)"),
        (429, "UnexpectedStatus(429)"),
    ] {
        let fake = FakeUmbra::start();
        fake.answer(status, serde_json::json!({"error": "x"}));
        let introspector = fake
            .introspector()
            .retries(3, Duration::from_millis(1))
            .build()
            .unwrap();

        let result = introspector.introspect("at_token").await;

        match result {
            Err(GuardError::Unavailable(cause)) => assert_eq!(format!("{cause:?}"), expected),
            other => panic!("{status}: {other:?}"),
        }
        assert_eq!(fake.hits(), 1, "HTTP {status} is not retried");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_umbra_times_out_once_and_is_not_retried() {
    let fake = FakeUmbra::start();
    fake.answer(
        200,
        FakeUmbra::active_answer("read", umbra::clock::now() + 600),
    );
    fake.delay(Duration::from_secs(2));
    let introspector = fake
        .introspector()
        .request_timeout(Duration::from_millis(300))
        .retries(3, Duration::from_millis(1))
        .build()
        .unwrap();

    let result = introspector.introspect("at_token").await;

    assert!(
        matches!(
            result,
            Err(GuardError::Unavailable(Unavailable::Unreachable(_)))
        ),
        "{result:?}"
    );
    assert_eq!(fake.hits(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_resource_server_credentials_are_logged_as_an_error() {
    let umbra = Umbra::start().await;
    let (_, token) = umbra.token("read", "read").await;
    let introspector =
        Introspector::builder(umbra.app.address.clone(), umbra.rs.id.clone(), "cs_wrong")
            .build()
            .unwrap();
    let logs = Logs::default();

    let result = introspector
        .introspect(&token)
        .with_subscriber(logs.subscriber())
        .await;

    assert!(
        matches!(
            result,
            Err(GuardError::Unavailable(Unavailable::CredentialsRefused(
                401
            )))
        ),
        "{result:?}"
    );
    let logged = logs.text();
    assert!(logged.contains("ERROR"), "{logged}");
    assert!(
        logged.contains("refused the resource server's credentials"),
        "{logged}"
    );
    assert!(logged.contains(&umbra.rs.id), "names the client: {logged}");
    assert!(
        !logged.contains("cs_wrong"),
        "never logs the secret: {logged}"
    );
    assert!(!logged.contains(&token), "never logs the token: {logged}");
}
