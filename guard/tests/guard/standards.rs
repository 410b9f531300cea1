//! RFC 6750 §3.1 and issue 8 items 6 and 9: what the guard says to a request without bearer
//! credentials, to a repeated header, to an any-of requirement, and to tokens Umbra could not
//! have issued.
use crate::support::{Api, FakeUmbra, Umbra, refusal};
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderValue};
use std::time::Duration;
use umbra_guard::GuardError;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_scheme_gets_the_bare_challenge_of_a_request_without_credentials() {
    let fake = FakeUmbra::start();
    let api = Api::start(Some(fake.introspector().build().unwrap()));

    for value in [
        "Basic dXNlcjpwYXNz",
        "Token at_one",
        "DPoP at_one",
        "at_one",
    ] {
        let response = api
            .get("/read")
            .header(AUTHORIZATION, value)
            .send()
            .await
            .unwrap();

        let (status, challenge, _) = refusal(response).await;
        assert_eq!(status, 401, "{value}");
        assert_eq!(
            challenge.as_deref(),
            Some(r#"Bearer realm="umbra""#),
            "{value}: no error attribute"
        );
    }
    assert_eq!(fake.hits(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeated_authorization_header_is_400_invalid_request() {
    let fake = FakeUmbra::start();
    let api = Api::start(Some(fake.introspector().build().unwrap()));
    let mut two_headers = HeaderMap::new();
    two_headers.append(AUTHORIZATION, HeaderValue::from_static("Bearer at_one"));
    two_headers.append(AUTHORIZATION, HeaderValue::from_static("Bearer at_two"));

    let response = api.get("/read").headers(two_headers).send().await.unwrap();

    let (status, challenge, error) = refusal(response).await;
    assert_eq!((status, error.as_str()), (400, "invalid_request"));
    assert!(challenge.unwrap().contains(r#"error="invalid_request""#));
    assert_eq!(fake.hits(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_any_of_guard_says_that_one_of_its_scopes_suffices() {
    let umbra = Umbra::start().await;
    let api = Api::start(Some(umbra.introspector().build().unwrap()));
    let (_, write_only) = umbra.token("read write admin", "write").await;

    let any_of = refusal(api.get_with("/read-or-admin", &write_only).await).await;
    let all_of = refusal(api.get_with("/read-write", &write_only).await).await;

    assert_eq!(any_of.0, 403);
    let challenge = any_of.1.unwrap();
    assert!(
        challenge.contains("any one of the listed scopes suffices"),
        "{challenge}"
    );
    assert!(challenge.ends_with(r#"scope="read admin""#), "{challenge}");
    let challenge = all_of.1.unwrap();
    assert!(
        challenge.contains("all of the listed scopes are needed"),
        "{challenge}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_longer_than_any_umbra_token_is_invalid_token_without_a_call() {
    let fake = FakeUmbra::start();
    let introspector = fake.introspector().build().unwrap();
    let api = Api::start(Some(introspector.clone()));

    for token in [
        "a".repeat(200),
        "/".repeat(4096),
        format!("at_{}", "x".repeat(1000)),
    ] {
        let (status, challenge, error) = refusal(api.get_with("/read", &token).await).await;
        assert_eq!(
            (status, error.as_str()),
            (401, "invalid_token"),
            "{} chars",
            token.len()
        );
        assert!(challenge.unwrap().contains(r#"error="invalid_token""#));
        assert!(matches!(
            introspector.introspect(&token).await,
            Err(GuardError::Malformed(_))
        ));
    }
    assert_eq!(fake.hits(), 0, "Umbra is never asked about such a string");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn umbra_refusing_the_request_with_400_or_413_is_invalid_token_not_an_outage() {
    for status in [400, 413] {
        let fake = FakeUmbra::start();
        fake.answer(status, serde_json::json!({"error": "invalid_request"}));
        let introspector = fake
            .introspector()
            .retries(3, Duration::from_millis(1))
            .build()
            .unwrap();
        let api = Api::start(Some(introspector.clone()));

        let (got, challenge, error) = refusal(api.get_with("/read", "at_token").await).await;

        assert_eq!(
            (got, error.as_str()),
            (401, "invalid_token"),
            "Umbra {status}"
        );
        assert!(challenge.unwrap().contains(r#"error="invalid_token""#));
        assert!(matches!(
            introspector.introspect("at_token").await,
            Err(GuardError::Inactive)
        ));
        assert_eq!(fake.hits(), 2, "one call per request, none retried");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_real_umbra_is_never_asked_about_a_string_it_would_refuse_as_too_large() {
    let umbra = Umbra::start().await;
    let api = Api::start(Some(umbra.introspector().build().unwrap()));
    // 4 KiB of `/`, percent-encoded to 12 KiB: over Umbra's /token limit, and before this
    // fix forwarded, refused with 413, and reported as an outage.
    let token = "/".repeat(4096);

    let (status, _, error) = refusal(api.get_with("/read", &token).await).await;

    assert_eq!((status, error.as_str()), (401, "invalid_token"));
}
