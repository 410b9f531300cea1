//! `POST /revoke` (RFC 7009).
use reqwest::StatusCode;
use serde_json::json;
use umbra::oauth::token::{Token, TokenKind};
use umbra_tests::assert_oauth_error;

db_test! {
    async fn a_revoked_token_is_inactive_at_the_very_next_introspection(app: TestApp) {
        let client = app.service_client("read").await;
        let rs = app.resource_server().await;
        let token = app.issue_token(&client).await;
        assert_eq!(app.introspection_of(&rs, &token).await["active"], true);

        let response = app.revoke(&client, &token).await;

        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["cache-control"], "no-store");
        assert_eq!(app.introspection_of(&rs, &token).await, json!({"active": false}));
        let audit = app.store.list_audit(None, 10).await.unwrap();
        assert_eq!(audit.len(), 1);
        assert_eq!(audit[0].event, "token.revoked");
        assert_eq!(audit[0].client_id.as_deref(), Some(client.id.as_str()));
        assert_eq!(audit[0].detail.as_deref(), Some("access_token"));
    }
}

db_test! {
    async fn the_hint_is_only_a_hint(app: TestApp) {
        let client = app.service_client("read").await;
        let rs = app.resource_server().await;
        let token = app.issue_token(&client).await;

        let response = app
            .post_form("/revoke", Some(&client), &[("token", &token), ("token_type_hint", "refresh_token")])
            .await;

        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(app.introspection_of(&rs, &token).await, json!({"active": false}));
    }
}

db_test! {
    async fn another_clients_revocation_attempt_leaves_the_token_active(app: TestApp) {
        let owner = app.service_client("read").await;
        let intruder = app.service_client("read").await;
        let rs = app.resource_server().await;
        let token = app.issue_token(&owner).await;

        let response = app.revoke(&intruder, &token).await;

        assert_oauth_error(response, StatusCode::BAD_REQUEST, "unauthorized_client").await;
        assert_eq!(app.introspection_of(&rs, &token).await["active"], true);
    }
}

db_test! {
    async fn unknown_and_malformed_tokens_answer_200(app: TestApp) {
        let client = app.service_client("read").await;
        let unknown = Token::generate(TokenKind::AccessToken).unwrap();
        let unknown_refresh = Token::generate(TokenKind::RefreshToken).unwrap();

        for token in [unknown.expose(), unknown_refresh.expose(), "garbage"] {
            let response = app.revoke(&client, token).await;
            assert_eq!(response.status(), StatusCode::OK, "for {token:.10}");
        }
    }
}

db_test! {
    async fn revocation_needs_client_authentication(app: TestApp) {
        let client = app.service_client("read").await;
        let rs = app.resource_server().await;
        let token = app.issue_token(&client).await;

        let response = app.post_form("/revoke", None, &[("token", &token)]).await;

        assert_oauth_error(response, StatusCode::UNAUTHORIZED, "invalid_client").await;
        assert_eq!(app.introspection_of(&rs, &token).await["active"], true);
    }
}

db_test! {
    async fn a_request_without_a_token_is_invalid_request(app: TestApp) {
        let client = app.service_client("read").await;

        let response = app.post_form("/revoke", Some(&client), &[]).await;

        assert_oauth_error(response, StatusCode::BAD_REQUEST, "invalid_request").await;
    }
}
