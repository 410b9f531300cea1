//! `POST /introspect` (RFC 7662).
use futures_util::future::join_all;
use reqwest::StatusCode;
use serde_json::json;
use umbra::oauth::scope::ScopeSet;
use umbra::oauth::token::{Token, TokenKind};
use umbra::store::NewAccessToken;
use umbra_tests::assert_oauth_error;

db_test! {
    async fn an_active_token_is_described_with_every_rfc_7662_member(app: TestApp) {
        let client = app.service_client("read write").await;
        let rs = app.resource_server().await;
        let token = app.issue_token(&client).await;

        let response = app.introspect(&rs, &token).await;

        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["cache-control"], "no-store");
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body["active"], true);
        assert_eq!(body["scope"], "read write");
        assert_eq!(body["client_id"], client.id.as_str());
        assert_eq!(body["token_type"], "Bearer");
        assert!(body.get("aud").is_none(), "a token that names no resource has no audience");
        assert_eq!(body["iss"], app.settings.server.issuer.as_str());
        let (iat, exp) = (body["iat"].as_i64().unwrap(), body["exp"].as_i64().unwrap());
        assert_eq!(exp - iat, 3600);
        assert!((iat - umbra::clock::now()).abs() < 60);
        // The client is the subject of its own token (as RFC 9068 §2.2 has it), with no username.
        assert_eq!(body["sub"], client.id.as_str());
        assert!(body.get("username").is_none(), "a client_credentials token has no user");
        assert_eq!(body["nbf"], body["iat"]);
        assert_eq!(body["jti"].as_str().map(str::len), Some(22));
    }
}

db_test! {
    async fn unknown_malformed_and_non_access_tokens_are_exactly_inactive(app: TestApp) {
        let rs = app.resource_server().await;
        let unknown = Token::generate(TokenKind::AccessToken).unwrap();
        let refresh = Token::generate(TokenKind::RefreshToken).unwrap();
        let secret = rs.secret.clone().unwrap();
        let long = "a".repeat(4000);

        for token in [unknown.expose(), refresh.expose(), &secret, "garbage", "at_", &long, "%00"] {
            let body = app.introspection_of(&rs, token).await;
            assert_eq!(body, json!({"active": false}), "for {:.20}", token);
        }
    }
}

db_test! {
    async fn an_expired_token_is_inactive(app: TestApp) {
        let client = app.service_client("read").await;
        let rs = app.resource_server().await;
        let token = Token::generate(TokenKind::AccessToken).unwrap();
        let now = umbra::clock::now();
        app.store
            .issue_client_credentials(&client.id, &NewAccessToken {
                hash: token.hash(),
                audience: Default::default(),
                scope: ScopeSet::parse("read").unwrap(),
                issued_at: now - 7200,
                expires_at: now - 1,
            })
            .await
            .unwrap();

        let body = app.introspection_of(&rs, token.expose()).await;

        assert_eq!(body, json!({"active": false}));
    }
}

db_test! {
    async fn fifty_concurrent_introspections_of_one_token_all_see_it_active(app: TestApp) {
        let client = app.service_client("read").await;
        let rs = app.resource_server().await;
        let token = app.issue_token(&client).await;

        let answers = join_all((0..50).map(|_| app.introspection_of(&rs, &token))).await;

        assert_eq!(answers.len(), 50);
        assert!(answers.iter().all(|a| a["active"] == true && a["client_id"] == client.id.as_str()));
    }
}

db_test! {
    async fn a_client_that_is_no_resource_server_learns_nothing_of_access_tokens(app: TestApp) {
        let client = app.service_client("read").await;
        let token = app.issue_token(&client).await;

        // Not even of its own: it may ask only about its own refresh tokens.
        assert_eq!(app.introspection_of(&client, &token).await, json!({"active": false}));
    }
}

db_test! {
    async fn a_public_client_may_not_introspect(app: TestApp) {
        let client = app.service_client("read").await;
        let token = app.issue_token(&client).await;
        let public = app.web_app(true).await;

        let response = app
            .post_form("/introspect", None, &[("token", &token), ("client_id", &public.id)])
            .await;

        assert_oauth_error(response, StatusCode::FORBIDDEN, "unauthorized_client").await;
    }
}

db_test! {
    async fn a_caller_with_a_wrong_secret_is_401(app: TestApp) {
        let client = app.service_client("read").await;
        let token = app.issue_token(&client).await;
        let mut rs = app.resource_server().await;
        rs.secret = Some("wrong".into());

        let response = app.introspect(&rs, &token).await;

        assert!(response.headers().contains_key("www-authenticate"));
        assert_oauth_error(response, StatusCode::UNAUTHORIZED, "invalid_client").await;
    }
}

db_test! {
    async fn a_request_without_a_token_is_invalid_request(app: TestApp) {
        let rs = app.resource_server().await;

        let response = app.post_form("/introspect", Some(&rs), &[("token_type_hint", "access_token")]).await;

        assert_oauth_error(response, StatusCode::BAD_REQUEST, "invalid_request").await;
    }
}
