//! Protected routes of a real actix-web app, called over HTTP: what RFC 6750 §3 asks of a
//! resource server.
use crate::support::{Api, FakeUmbra, Umbra, closed_port, refusal};
use reqwest::header::AUTHORIZATION;
use serde_json::Value;
use std::time::Duration;
use umbra_guard::Introspector;
use umbra_tests::{Backend, Pkce};

async fn an_active_token_passes_and_the_handler_sees_its_client_and_scopes(umbra: Umbra) {
    let api = Api::start(Some(umbra.introspector().build().unwrap()));
    let (client, token) = umbra.token("read write", "read write").await;

    let response = api.get_with("/read", &token).await;

    assert_eq!(response.status(), 200);
    let me: Value = response.json().await.unwrap();
    assert_eq!(me["client_id"], client.id.as_str());
    assert_eq!(me["scopes"], "read write");
    assert_eq!(
        me["sub"],
        client.id.as_str(),
        "the client is its own subject"
    );
    assert_eq!(me["user"], false, "a client_credentials token has no user");
    assert!(me["exp"].as_i64().unwrap() > umbra::clock::now());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_active_token_passes_on_sqlite() {
    an_active_token_passes_and_the_handler_sees_its_client_and_scopes(Umbra::start().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_active_token_passes_on_postgres() {
    if let Some(umbra) = Umbra::on(Backend::Postgres).await {
        an_active_token_passes_and_the_handler_sees_its_client_and_scopes(umbra).await;
    }
}

async fn a_revoked_token_is_refused_with_invalid_token(umbra: Umbra) {
    let api = Api::start(Some(umbra.introspector().build().unwrap()));
    let (client, token) = umbra.token("read", "read").await;
    assert_eq!(api.get_with("/read", &token).await.status(), 200);

    assert_eq!(umbra.app.revoke(&client, &token).await.status(), 200);
    let response = api.get_with("/read", &token).await;

    let (status, challenge, error) = refusal(response).await;
    assert_eq!(status, 401);
    assert_eq!(error, "invalid_token");
    assert!(
        challenge
            .unwrap()
            .starts_with(r#"Bearer realm="umbra", error="invalid_token", error_description=""#)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_token_is_refused_on_sqlite() {
    a_revoked_token_is_refused_with_invalid_token(Umbra::start().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_token_is_refused_on_postgres() {
    if let Some(umbra) = Umbra::on(Backend::Postgres).await {
        a_revoked_token_is_refused_with_invalid_token(umbra).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_token_gives_the_handler_its_subject_and_username() {
    let umbra = Umbra::start().await;
    let api = Api::start(Some(umbra.introspector().build().unwrap()));
    let user = umbra.app.create_user("ada", "correct horse battery").await;
    let client = umbra.app.web_app(false).await;
    let pkce = Pkce::new();
    let code = umbra
        .app
        .authorization_code(
            &umbra.app.browser(),
            &client,
            &pkce,
            "ada",
            "correct horse battery",
        )
        .await;
    let tokens: Value = umbra
        .app
        .exchange_code(&client, &code, &pkce.verifier)
        .await
        .json()
        .await
        .unwrap();

    let response = api
        .get_with("/read-write", tokens["access_token"].as_str().unwrap())
        .await;

    assert_eq!(response.status(), 200);
    let me: Value = response.json().await.unwrap();
    assert_eq!(me["sub"], user.id.to_string());
    assert_eq!(me["username"], "ada");
    assert_eq!(me["user"], true);
    assert_eq!(me["client_id"], client.id.as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_without_authorization_gets_a_challenge_without_an_error_code() {
    let umbra = Umbra::start().await;
    let api = Api::start(Some(umbra.introspector().build().unwrap()));

    for path in ["/me", "/read", "/read-or-admin", "/nested/write"] {
        let response = api.get(path).send().await.unwrap();

        let (status, challenge, _) = refusal(response).await;
        assert_eq!(status, 401, "{path}");
        assert_eq!(
            challenge.as_deref(),
            Some(r#"Bearer realm="umbra""#),
            "{path}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_authorization_headers_are_invalid_token_without_asking_umbra() {
    let fake = FakeUmbra::start();
    let api = Api::start(Some(fake.introspector().build().unwrap()));

    let mut responses = Vec::new();
    for value in [
        "Bearer",
        "Bearer ",
        "Bearer at_one at_two",
        "Bearer at_\"quoted\"",
    ] {
        let response = api
            .get("/read")
            .header(AUTHORIZATION, value)
            .send()
            .await
            .unwrap();
        responses.push((value.to_owned(), response));
    }

    for (case, response) in responses {
        let (status, challenge, error) = refusal(response).await;
        assert_eq!(status, 401, "{case}");
        assert_eq!(error, "invalid_token", "{case}");
        assert!(
            challenge.unwrap().contains(r#"error="invalid_token""#),
            "{case}"
        );
    }
    assert_eq!(fake.hits(), 0, "malformed credentials never reach Umbra");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_without_the_required_scope_is_403_naming_the_scope() {
    let umbra = Umbra::start().await;
    let api = Api::start(Some(umbra.introspector().build().unwrap()));
    let (_, token) = umbra.token("read write", "write").await;

    let response = api.get_with("/read", &token).await;

    let (status, challenge, error) = refusal(response).await;
    assert_eq!(status, 403);
    assert_eq!(error, "insufficient_scope");
    let challenge = challenge.unwrap();
    assert!(
        challenge.starts_with(r#"Bearer realm="umbra", error="insufficient_scope""#),
        "{challenge}"
    );
    assert!(challenge.ends_with(r#"scope="read""#), "{challenge}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_of_needs_every_scope_and_any_of_needs_one() {
    let umbra = Umbra::start().await;
    let api = Api::start(Some(umbra.introspector().build().unwrap()));
    let (_, read) = umbra.token("read write admin", "read").await;
    let (_, admin) = umbra.token("read write admin", "admin").await;
    let (_, read_write) = umbra.token("read write admin", "read write").await;

    let status = |response: reqwest::Response| response.status().as_u16();
    assert_eq!(status(api.get_with("/read-write", &read).await), 403);
    assert_eq!(status(api.get_with("/read-write", &read_write).await), 200);
    assert_eq!(status(api.get_with("/read-or-admin", &read).await), 200);
    assert_eq!(status(api.get_with("/read-or-admin", &admin).await), 200);
    assert_eq!(status(api.get_with("/read-write", &admin).await), 403);

    let (_, challenge, _) = refusal(api.get_with("/read-write", &read).await).await;
    assert!(challenge.unwrap().ends_with(r#"scope="read write""#));
    let (_, write_only) = umbra.token("read write admin", "write").await;
    let (status, challenge, _) = refusal(api.get_with("/read-or-admin", &write_only).await).await;
    assert_eq!(status, 403);
    assert!(challenge.unwrap().ends_with(r#"scope="read admin""#));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scope_checked_in_the_handler_is_refused_the_same_way() {
    let umbra = Umbra::start().await;
    let api = Api::start(Some(umbra.introspector().build().unwrap()));
    let (_, read) = umbra.token("read write", "read").await;
    let (_, write) = umbra.token("read write", "write").await;

    assert_eq!(
        api.get_with("/write-in-handler", &write).await.status(),
        200
    );
    let (status, challenge, error) = refusal(api.get_with("/write-in-handler", &read).await).await;

    assert_eq!((status, error.as_str()), (403, "insufficient_scope"));
    assert!(challenge.unwrap().ends_with(r#"scope="write""#));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nested_guards_introspect_once_and_each_checks_its_scopes() {
    let fake = FakeUmbra::start();
    fake.answer(
        200,
        FakeUmbra::active_answer("read", umbra::clock::now() + 600),
    );
    let api = Api::start(Some(fake.introspector().build().unwrap()));

    let response = api.get_with("/nested/write", "at_token").await;

    assert_eq!(response.status(), 403, "the inner guard needs write");
    assert_eq!(fake.hits(), 1);
    fake.answer(
        200,
        FakeUmbra::active_answer("write", umbra::clock::now() + 600),
    );
    assert_eq!(
        api.get_with("/nested/write", "at_token").await.status(),
        200
    );
    assert_eq!(fake.hits(), 2, "one call per request, not per guard");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_expired_by_the_local_clock_is_invalid_token() {
    let fake = FakeUmbra::start();
    fake.answer(
        200,
        FakeUmbra::active_answer("read", umbra::clock::now() - 1),
    );
    let api = Api::start(Some(fake.introspector().build().unwrap()));

    let (status, challenge, error) = refusal(api.get_with("/read", "at_token").await).await;

    assert_eq!((status, error.as_str()), (401, "invalid_token"));
    assert!(challenge.unwrap().contains("expired"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_umbra_is_503_and_the_request_never_passes() {
    let introspector = Introspector::builder(
        format!("http://127.0.0.1:{}", closed_port()),
        "rs",
        "cs_secret",
    )
    .retries(1, Duration::from_millis(10))
    .build()
    .unwrap();
    let api = Api::start(Some(introspector));

    for path in ["/me", "/read"] {
        let response = api.get_with(path, "at_token").await;

        assert_eq!(response.headers()["retry-after"], "5");
        let (status, challenge, error) = refusal(response).await;
        assert_eq!((status, error.as_str()), (503, "temporarily_unavailable"));
        assert!(challenge.is_none());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn umbra_answering_5xx_or_garbage_is_503() {
    let fake = FakeUmbra::start();
    let api = Api::start(Some(fake.introspector().build().unwrap()));

    for (status, body) in [
        (500, r#"{"error":"server_error"}"#),
        (503, r#"{"error":"temporarily_unavailable"}"#),
        (200, "<html>not json</html>"),
        (200, r#"{"active":"yes"}"#),
        (200, r#"{"active":true}"#),
    ] {
        fake.answer_raw(status, body);

        let (got, _, error) = refusal(api.get_with("/read", "at_token").await).await;

        assert_eq!(
            (got, error.as_str()),
            (503, "temporarily_unavailable"),
            "{status} {body}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_resource_server_credentials_are_never_a_pass() {
    let umbra = Umbra::start().await;
    let (_, token) = umbra.token("read", "read").await;
    let wrong_secret =
        Introspector::builder(umbra.app.address.clone(), umbra.rs.id.clone(), "cs_wrong")
            .build()
            .unwrap();
    // A confidential client that is no resource server: Umbra answers it, but only about its
    // own refresh tokens, so every access token reads as inactive.
    let not_a_resource_server = {
        let client = umbra.app.service_client("read").await;
        Introspector::builder(umbra.app.address.clone(), client.id, client.secret.unwrap())
            .build()
            .unwrap()
    };

    for (introspector, expected) in [
        (wrong_secret, (503, "temporarily_unavailable")),
        (not_a_resource_server, (401, "invalid_token")),
    ] {
        let api = Api::start(Some(introspector));

        let (status, _, error) = refusal(api.get_with("/read", &token).await).await;

        assert_eq!((status, error.as_str()), expected);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_app_without_an_introspector_refuses_with_500() {
    let api = Api::start(None);

    let (status, _, error) = refusal(api.get_with("/read", "at_token").await).await;

    assert_eq!((status, error.as_str()), (500, "server_error"));
}
