//! Introspection and revocation answer any string a resource server forwards (issue 8 item 6):
//! a `token` of up to 16 KiB, whatever its characters, gets the endpoint's normal answer
//! (`{"active": false}`, 200), never 413; the body is still bounded.
use futures_util::future::join_all;
use reqwest::StatusCode;
use umbra::http::form::FormLimit;
use umbra_tests::{ClientSpec, assert_oauth_error};

const FORM: &str = "application/x-www-form-urlencoded";

/// Strings a bearer header may carry, each `FormLimit::LONGEST_TOKEN` bytes long; most need
/// percent-encoding, which triples them on the wire.
fn long_tokens() -> Vec<String> {
    let n = FormLimit::LONGEST_TOKEN;
    vec![
        "a".repeat(n),
        "/".repeat(n),
        "é".repeat(n / 2),
        format!("at_{}", "x".repeat(n - 3)),
        "&=%+ \"\\\u{1}".repeat(n / 8),
        "a".repeat(4096),
        "/".repeat(4096),
    ]
}

db_test! {
    async fn introspection_answers_inactive_for_any_token_up_to_16_kib(app: TestApp) {
        let rs = app.resource_server().await;
        let secret = rs.secret.clone().unwrap();

        for token in long_tokens() {
            assert!(token.len() <= FormLimit::LONGEST_TOKEN);
            let basic = app.introspect(&rs, &token).await;
            let in_body = app
                .post_form(
                    "/introspect",
                    None,
                    &[("token", &token), ("token_type_hint", "access_token"), ("client_id", &rs.id), ("client_secret", &secret)],
                )
                .await;

            for response in [basic, in_body] {
                assert_eq!(response.status(), StatusCode::OK, "{} bytes", token.len());
                let body: serde_json::Value = response.json().await.unwrap();
                assert_eq!(body, serde_json::json!({"active": false}));
            }
        }
    }
}

db_test! {
    async fn revocation_answers_200_for_any_token_up_to_16_kib(app: TestApp) {
        let client = app.service_client("").await;
        let public = app.register(ClientSpec { public: true, ..ClientSpec::default() }).await;

        for token in long_tokens() {
            let confidential = app.revoke(&client, &token).await;
            let by_public_client = app
                .post_form("/revoke", None, &[("token", &token), ("client_id", &public.id)])
                .await;

            assert_eq!(confidential.status(), StatusCode::OK, "{} bytes", token.len());
            assert_eq!(by_public_client.status(), StatusCode::OK, "{} bytes", token.len());
        }
    }
}

db_test! {
    async fn dozens_of_16_kib_tokens_at_once_are_all_answered(app: TestApp) {
        let rs = app.resource_server().await;
        let client = app.service_client("").await;
        let live = app.issue_token(&client).await;
        let token = "/".repeat(FormLimit::LONGEST_TOKEN);

        let introspections = (0..24).map(|_| app.introspect(&rs, &token));
        let revocations = (0..24).map(|_| app.revoke(&client, &token));
        let (introspected, revoked) = tokio::join!(join_all(introspections), join_all(revocations));

        for response in introspected {
            assert_eq!(response.status(), StatusCode::OK);
            assert_eq!(response.json::<serde_json::Value>().await.unwrap(), serde_json::json!({"active": false}));
        }
        assert!(revoked.iter().all(|r| r.status() == StatusCode::OK));
        // The server is none the worse: a real token is still answered.
        assert_eq!(app.introspection_of(&rs, &live).await["active"], true);
    }
}

db_test! {
    async fn the_larger_limit_of_introspection_and_revocation_is_still_a_limit(app: TestApp) {
        let over = format!("token={}", "a".repeat(FormLimit::TOKEN_ACTIONS.0));
        for path in ["/introspect", "/revoke"] {
            let response = app.post_raw(path, FORM, over.clone()).await;
            assert_oauth_error(response, StatusCode::PAYLOAD_TOO_LARGE, "invalid_request").await;
        }
        // /token keeps the small configured limit.
        let token_body = format!("grant_type=client_credentials&pad={}", "a".repeat(FormLimit::LONGEST_TOKEN));
        let response = app.post_raw("/token", FORM, token_body).await;
        assert_oauth_error(response, StatusCode::PAYLOAD_TOO_LARGE, "invalid_request").await;
    }
}
