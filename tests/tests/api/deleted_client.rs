//! A client deleted by another process (`umbra client delete`) while the running server still
//! holds it in its cache (`clients.cache_ttl_secs`) is refused: `invalid_client` at the token
//! endpoint, an error page in the browser, never a 500.
use futures_util::future::join_all;
use reqwest::StatusCode;
use umbra::oauth::grant_type::GrantType;
use umbra_tests::{ClientSpec, Pkce, REDIRECT_URI, assert_oauth_error, location, query_param};

const PASSWORD: &str = "correct horse battery";

db_test! {
    async fn a_deleted_clients_client_credentials_request_is_invalid_client(app: TestApp) {
        let client = app.service_client("read").await;
        app.issue_token(&client).await; // now cached

        assert!(app.store.delete_client(&client.id).await.unwrap());

        let response = app.post_token(Some(&client), &[("grant_type", "client_credentials")]).await;
        assert!(response.headers().contains_key("www-authenticate"), "it used HTTP Basic");
        assert_oauth_error(response, StatusCode::UNAUTHORIZED, "invalid_client").await;
    }
}

db_test! {
    async fn dozens_of_concurrent_requests_of_a_deleted_client_are_all_invalid_client(app: TestApp) {
        let clients = [app.service_client("read").await, app.service_client("read").await];
        for client in &clients {
            app.issue_token(client).await;
            assert!(app.store.delete_client(&client.id).await.unwrap());
        }

        let responses = join_all((0..40).map(|n| {
            app.post_token(Some(&clients[n % 2]), &[("grant_type", "client_credentials")])
        }))
        .await;

        for response in responses {
            assert_oauth_error(response, StatusCode::UNAUTHORIZED, "invalid_client").await;
        }
    }
}

db_test! {
    async fn a_deleted_clients_code_and_refresh_token_are_invalid_client(app: TestApp) {
        app.create_user("ada", PASSWORD).await;
        let client = app.web_app(false).await;
        let browser = app.browser();
        let first = Pkce::new();
        let code = app.authorization_code(&browser, &client, &first, "ada", PASSWORD).await;
        let tokens: serde_json::Value =
            app.exchange_code(&client, &code, &first.verifier).await.json().await.unwrap();
        let refresh_token = tokens["refresh_token"].as_str().unwrap().to_owned();
        let second = Pkce::new();
        let to = location(&browser.authorize(&client, &second, "&scope=read&state=s2").await);
        let code = query_param(&to, "code").expect("consent remembered: a code at once");

        assert!(app.store.delete_client(&client.id).await.unwrap());

        let (app, client, code, second, refresh_token) = (&app, &client, &code, &second, &refresh_token);
        let responses = join_all((0..10).map(|n| async move {
            if n % 2 == 0 {
                app.exchange_code(client, code, &second.verifier).await
            } else {
                app.refresh(client, refresh_token, None).await
            }
        }))
        .await;
        for response in responses {
            assert_oauth_error(response, StatusCode::UNAUTHORIZED, "invalid_client").await;
        }
    }
}

db_test! {
    async fn approving_a_deleted_client_is_an_error_page_not_a_500(app: TestApp) {
        let user = app.create_user("ada", PASSWORD).await;
        let client = app.web_app(true).await;
        let browser = app.browser();
        browser.authorize(&client, &Pkce::new(), "&scope=read&state=s").await;
        assert_eq!(location(&browser.sign_in("ada", PASSWORD).await), "/consent");
        let form = browser.consent_form().await; // the client is cached by now

        assert!(app.store.delete_client(&client.id).await.unwrap());

        let responses = join_all((0..20).map(|_| form.submit(&browser, "approve"))).await;
        for response in responses {
            assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        }
        assert_eq!(app.store.consent(user.id, &client.id).await.unwrap(), None);
    }
}

db_test! {
    async fn a_code_for_a_deleted_client_is_an_error_page_not_a_500(app: TestApp) {
        app.create_user("ada", PASSWORD).await;
        let client = app
            .register(ClientSpec {
                public: true,
                scopes: "read write",
                grant_types: &[GrantType::AuthorizationCode],
                redirect_uris: &[REDIRECT_URI],
                skip_consent: true,
                ..ClientSpec::default()
            })
            .await;
        let browser = app.browser();
        // Signed in, and a first-party client: a new request goes straight to a code.
        app.authorization_code(&browser, &client, &Pkce::new(), "ada", PASSWORD).await;

        assert!(app.store.delete_client(&client.id).await.unwrap());

        let responses = join_all((0..20).map(|n| {
            let pkce = Pkce::new();
            let (browser, client) = (&browser, &client);
            async move { browser.authorize(client, &pkce, &format!("&scope=read&state={n}")).await }
        }))
        .await;
        for response in responses {
            assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        }
    }
}

db_test! {
    async fn introspection_and_revocation_by_a_deleted_client_are_not_a_500(app: TestApp) {
        let rs = app.resource_server().await;
        let client = app.service_client("read").await;
        let token = app.issue_token(&client).await;
        app.introspection_of(&rs, &token).await;
        app.revoke(&client, "at_unknown").await;

        assert!(app.store.delete_client(&client.id).await.unwrap());
        assert!(app.store.delete_client(&rs.id).await.unwrap());

        let revoked = app.revoke(&client, &token).await;
        assert!(!revoked.status().is_server_error(), "{}", revoked.status());
        // The deletions were made beside the app, as the CLI makes them: its caches (clients,
        // introspection) learn them from the change log, within a poll.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        loop {
            let introspected = app.introspect(&rs, &token).await;
            assert!(!introspected.status().is_server_error(), "{}", introspected.status());
            if introspected.status() != StatusCode::OK {
                break;
            }
            let answer: serde_json::Value = introspected.json().await.unwrap();
            if answer == serde_json::json!({"active": false}) {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "still answered {answer}");
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }
}
