//! `POST /token` with `grant_type=client_credentials` (RFC 6749 §4.4).
use reqwest::StatusCode;
use umbra::oauth::grant_type::GrantType;
use umbra_tests::{ClientSpec, assert_oauth_error};

db_test! {
    async fn a_confidential_client_gets_a_bearer_token_that_is_not_cached(app: TestApp) {
        let client = app.service_client("read write").await;

        let response = app.post_token(Some(&client), &[("grant_type", "client_credentials")]).await;

        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["cache-control"], "no-store");
        assert_eq!(response.headers()["pragma"], "no-cache");
        let body: serde_json::Value = response.json().await.unwrap();
        let token = body["access_token"].as_str().unwrap();
        assert!(token.starts_with("at_") && token.len() == 52, "{token}");
        assert_eq!(body["token_type"], "Bearer");
        assert_eq!(body["expires_in"], 3600);
        assert_eq!(body["scope"], "read write", "no scope requested means all allowed");
        assert!(body.get("refresh_token").is_none(), "RFC 6749 §4.4.3: no refresh token");
    }
}

db_test! {
    async fn client_secret_post_authenticates_like_basic(app: TestApp) {
        let client = app.service_client("read").await;

        let response = app
            .post_token(None, &[
                ("grant_type", "client_credentials"),
                ("client_id", &client.id),
                ("client_secret", client.secret.as_deref().unwrap()),
            ])
            .await;

        assert_eq!(response.status(), StatusCode::OK);
    }
}

db_test! {
    async fn a_requested_scope_within_the_allowed_ones_is_granted_as_asked(app: TestApp) {
        let client = app.service_client("read write admin").await;

        let response = app
            .post_token(Some(&client), &[("grant_type", "client_credentials"), ("scope", "write read")])
            .await;

        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body["scope"], "write read");
    }
}

db_test! {
    async fn a_scope_beyond_the_allowed_ones_is_invalid_scope(app: TestApp) {
        let client = app.service_client("read").await;

        let response = app
            .post_token(Some(&client), &[("grant_type", "client_credentials"), ("scope", "read admin")])
            .await;

        assert_oauth_error(response, StatusCode::BAD_REQUEST, "invalid_scope").await;
    }
}

db_test! {
    async fn a_wrong_secret_is_401_invalid_client_with_a_basic_challenge(app: TestApp) {
        let mut client = app.service_client("read").await;
        let real_secret = client.secret.clone().unwrap();
        client.secret = Some("cs_wrongwrongwrongwrongwrongwrongwrongwrongwrongwr".into());

        let response = app.post_token(Some(&client), &[("grant_type", "client_credentials")]).await;

        assert_eq!(response.headers()["www-authenticate"], "Basic realm=\"umbra\", charset=\"UTF-8\"");
        let body = assert_oauth_error(response, StatusCode::UNAUTHORIZED, "invalid_client").await;
        assert!(!body.to_string().contains(&real_secret[3..]));
    }
}

db_test! {
    async fn a_wrong_secret_in_the_body_is_401_invalid_client(app: TestApp) {
        let client = app.service_client("read").await;

        let response = app
            .post_token(None, &[
                ("grant_type", "client_credentials"),
                ("client_id", &client.id),
                ("client_secret", "not-the-secret"),
            ])
            .await;

        let body = assert_oauth_error(response, StatusCode::UNAUTHORIZED, "invalid_client").await;
        assert!(!body.to_string().contains("not-the-secret"), "errors never echo secrets");
    }
}

db_test! {
    async fn an_unknown_client_is_401_invalid_client(app: TestApp) {
        let mut client = app.service_client("read").await;
        client.id = "nobody".into();

        let response = app.post_token(Some(&client), &[("grant_type", "client_credentials")]).await;

        assert_oauth_error(response, StatusCode::UNAUTHORIZED, "invalid_client").await;
    }
}

db_test! {
    async fn no_client_authentication_at_all_is_401_invalid_client(app: TestApp) {
        let response = app.post_token(None, &[("grant_type", "client_credentials")]).await;

        assert!(response.headers().contains_key("www-authenticate"));
        assert_oauth_error(response, StatusCode::UNAUTHORIZED, "invalid_client").await;
    }
}

db_test! {
    async fn a_client_not_registered_for_the_grant_is_unauthorized_client(app: TestApp) {
        let client = app
            .register(ClientSpec {
                grant_types: &[GrantType::AuthorizationCode],
                redirect_uris: &["https://app.example/cb"],
                ..ClientSpec::default()
            })
            .await;

        let response = app.post_token(Some(&client), &[("grant_type", "client_credentials")]).await;

        assert_oauth_error(response, StatusCode::BAD_REQUEST, "unauthorized_client").await;
    }
}

db_test! {
    async fn a_public_client_cannot_use_client_credentials(app: TestApp) {
        let client = app
            .register(ClientSpec {
                public: true,
                ..ClientSpec::default()
            })
            .await;

        let response = app
            .post_token(None, &[("grant_type", "client_credentials"), ("client_id", &client.id)])
            .await;

        assert_oauth_error(response, StatusCode::BAD_REQUEST, "unauthorized_client").await;
    }
}

db_test! {
    async fn an_unknown_grant_type_is_unsupported_grant_type(app: TestApp) {
        let client = app.service_client("read").await;

        let response = app
            .post_token(Some(&client), &[("grant_type", "password"), ("username", "a"), ("password", "b")])
            .await;

        assert_oauth_error(response, StatusCode::BAD_REQUEST, "unsupported_grant_type").await;
    }
}

db_test! {
    async fn a_missing_grant_type_is_invalid_request(app: TestApp) {
        let client = app.service_client("read").await;

        let response = app.post_token(Some(&client), &[("scope", "read")]).await;

        assert_oauth_error(response, StatusCode::BAD_REQUEST, "invalid_request").await;
    }
}

db_test! {
    async fn basic_and_client_secret_together_are_invalid_request(app: TestApp) {
        let client = app.service_client("read").await;

        let response = app
            .post_token(Some(&client), &[
                ("grant_type", "client_credentials"),
                ("client_secret", client.secret.as_deref().unwrap()),
            ])
            .await;

        assert_oauth_error(response, StatusCode::BAD_REQUEST, "invalid_request").await;
    }
}
