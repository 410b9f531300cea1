//! Dynamic client registration (RFC 7591) and its management protocol (RFC 7592).
use futures_util::future::join_all;
use reqwest::StatusCode;
use serde_json::{Value, json};
use umbra_tests::{Pkce, REDIRECT_URI, assert_oauth_error};

/// What a web application sends to register itself.
fn web_app() -> Value {
    json!({
        "client_name": "Self-registered shop",
        "redirect_uris": [REDIRECT_URI],
        "grant_types": ["authorization_code", "refresh_token", "client_credentials"],
        "response_types": ["code"],
        "scope": "read write",
        "token_endpoint_auth_method": "client_secret_basic",
    })
}

/// What a service sends: client_credentials only.
fn service() -> Value {
    json!({"grant_types": ["client_credentials"], "scope": "read"})
}

/// Registers `metadata` with a fresh initial access token and returns the response body.
async fn registered(app: &umbra_tests::TestApp, metadata: &Value) -> Value {
    let token = app.initial_access_token(1, 3600).await;
    let response = app.post_register(Some(&token), metadata).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    response.json().await.unwrap()
}

async fn with_token(
    app: &umbra_tests::TestApp,
    method: reqwest::Method,
    client_id: &str,
    token: &str,
) -> reqwest::RequestBuilder {
    app.http
        .request(method, app.url(&format!("/register/{client_id}")))
        .bearer_auth(token)
}

fn assert_bearer_challenge(response: &reqwest::Response) {
    let challenge = response.headers()["www-authenticate"].to_str().unwrap();
    assert!(
        challenge.starts_with("Bearer ") && challenge.contains("error=\"invalid_token\""),
        "{challenge}"
    );
}

db_test! {
    async fn a_self_registered_client_completes_client_credentials_and_the_code_flow(app: TestApp) {
        app.create_user("ada", "correct horse battery").await;
        let rs = app.resource_server().await;
        let token = app.initial_access_token(1, 3600).await;

        let response = app.post_register(Some(&token), &web_app()).await;

        assert_eq!(response.status(), StatusCode::CREATED);
        assert_eq!(response.headers()["cache-control"], "no-store");
        let body: Value = response.json().await.unwrap();
        let client_id = body["client_id"].as_str().unwrap();
        assert!(body["client_secret"].as_str().unwrap().starts_with("cs_"));
        assert!(body["registration_access_token"].as_str().unwrap().starts_with("ra_"));
        assert_eq!(
            body["registration_client_uri"],
            format!("{}/register/{client_id}", app.settings.server.issuer)
        );
        assert_eq!(body["client_secret_expires_at"], 0);
        assert!(body["client_id_issued_at"].as_i64().unwrap() > 0);
        assert_eq!(body["client_name"], "Self-registered shop");
        assert_eq!(body["redirect_uris"], json!([REDIRECT_URI]));
        assert_eq!(body["response_types"], json!(["code"]));
        assert_eq!(body["scope"], "read write");
        assert_eq!(body["skip_consent"], false);
        assert_eq!(app.audit_count("client.registered").await, 1);
        let client = app.registered_client(&body).await;

        let service_token = app.issue_token(&client).await;
        assert_eq!(app.introspection_of(&rs, &service_token).await["client_id"], client_id);

        let browser = app.browser();
        let pkce = Pkce::new();
        let code = app
            .authorization_code(&browser, &client, &pkce, "ada", "correct horse battery")
            .await;
        let response = app.exchange_code(&client, &code, &pkce.verifier).await;
        assert_eq!(response.status(), StatusCode::OK);
        let tokens: Value = response.json().await.unwrap();
        let answer = app
            .introspection_of(&rs, tokens["access_token"].as_str().unwrap())
            .await;
        assert_eq!(answer["active"], true);
        assert_eq!(answer["username"], "ada");
        assert_eq!(answer["client_id"], client_id);
    }
}

db_test! {
    async fn registration_needs_a_good_initial_access_token(app: TestApp) {
        let response = app.post_register(None, &service()).await;
        assert_bearer_challenge(&response);
        assert_oauth_error(response, StatusCode::UNAUTHORIZED, "invalid_token").await;

        let expired = app.initial_access_token(5, -1).await;
        let forged = umbra::oauth::token::Token::generate(
            umbra::oauth::token::TokenKind::InitialAccessToken,
        )
        .unwrap()
        .into_string();
        let secret_as_token = app.service_client("").await.secret.unwrap();
        for token in [expired.as_str(), &forged, &secret_as_token, "garbage"] {
            let response = app.post_register(Some(token), &service()).await;
            assert_bearer_challenge(&response);
            assert_oauth_error(response, StatusCode::UNAUTHORIZED, "invalid_token").await;
        }

        let once = app.initial_access_token(1, 3600).await;
        assert_eq!(app.post_register(Some(&once), &service()).await.status(), StatusCode::CREATED);
        let again = app.post_register(Some(&once), &service()).await;
        assert_oauth_error(again, StatusCode::UNAUTHORIZED, "invalid_token").await;
        assert_eq!(app.audit_count("client.registered").await, 1);
    }
}

db_test! {
    async fn a_refused_registration_does_not_use_up_the_token(app: TestApp) {
        let token = app.initial_access_token(1, 3600).await;

        let refused = app
            .post_register(Some(&token), &json!({"redirect_uris": ["http://shop.example/cb"]}))
            .await;
        assert_oauth_error(refused, StatusCode::BAD_REQUEST, "invalid_redirect_uri").await;

        let response = app.post_register(Some(&token), &service()).await;
        assert_eq!(response.status(), StatusCode::CREATED);
    }
}

db_test! {
    async fn concurrent_registrations_on_one_token_win_exactly_its_uses(app: TestApp) {
        let token = app.initial_access_token(5, 3600).await;
        let metadata = service();

        let responses = join_all((0..24).map(|_| app.post_register(Some(&token), &metadata))).await;

        let statuses: Vec<StatusCode> = responses.iter().map(|r| r.status()).collect();
        let won = statuses.iter().filter(|s| **s == StatusCode::CREATED).count();
        let refused = statuses.iter().filter(|s| **s == StatusCode::UNAUTHORIZED).count();
        assert_eq!((won, refused), (5, 19), "{statuses:?}");
        let listed = app.store.list_initial_access_tokens().await.unwrap();
        assert_eq!((listed[0].uses, listed[0].max_uses), (5, 5));
        assert_eq!(app.audit_count("client.registered").await, 5);
    }
}

db_test_with! {
    |settings| settings.registration.open = true,
    async fn open_registration_needs_no_token(app: TestApp) {
        let response = app.post_register(None, &service()).await;

        assert_eq!(response.status(), StatusCode::CREATED);
        let body: Value = response.json().await.unwrap();
        let client = app.registered_client(&body).await;
        app.issue_token(&client).await;
    }
}

db_test_with! {
    |settings| {
        settings.registration.open = true;
        settings.registration.open_max_per_address = 5;
    },
    async fn open_registration_is_limited_per_address_even_when_attempts_arrive_at_once(app: TestApp) {
        // Refused metadata counts too: the limit is on attempts, not on clients made.
        let refused = app.post_register(None, &json!({"redirect_uris": ["http://x.example/cb"]})).await;
        assert_eq!(refused.status(), StatusCode::BAD_REQUEST);

        let metadata = service();
        let attempts = (0..24).map(|_| app.post_register(None, &metadata));
        let responses = join_all(attempts).await;

        let statuses: Vec<StatusCode> = responses.iter().map(|r| r.status()).collect();
        let won = statuses.iter().filter(|s| **s == StatusCode::CREATED).count();
        let limited = statuses.iter().filter(|s| **s == StatusCode::TOO_MANY_REQUESTS).count();
        assert_eq!((won, limited), (4, 20), "{statuses:?}");
        let limited = responses.into_iter().find(|r| r.status() == StatusCode::TOO_MANY_REQUESTS).unwrap();
        let wait: u64 = limited.headers()["retry-after"].to_str().unwrap().parse().unwrap();
        assert!((1..=3600).contains(&wait), "{wait}");
        let body: Value = limited.json().await.unwrap();
        assert_eq!(body["error"], "invalid_request");
        assert_eq!(app.audit_count("client.registered").await, 4);
        // Registrations with an initial access token are the operator's, never limited here.
        assert_eq!(registered(&app, &service()).await["grant_types"], json!(["client_credentials"]));
    }
}

db_test! {
    async fn what_the_policy_does_not_allow_is_refused_with_the_rfc_7591_codes(app: TestApp) {
        let token = app.initial_access_token(100, 3600).await;
        let redirect = |uri: &str| json!({"redirect_uris": [uri]});
        for (metadata, code) in [
            (redirect("http://shop.example/cb"), "invalid_redirect_uri"),
            (redirect("com.example.app:/cb"), "invalid_redirect_uri"),
            (redirect("https://shop.example/cb#fragment"), "invalid_redirect_uri"),
            (
                json!({"grant_types": ["urn:ietf:params:oauth:grant-type:token-exchange"]}),
                "invalid_client_metadata",
            ),
            (json!({"grant_types": ["password"]}), "invalid_client_metadata"),
            (json!({"grant_types": ["client_credentials"], "scope": "delete"}), "invalid_client_metadata"),
            (json!({"grant_types": ["client_credentials"], "scope": "umbra:admin"}), "invalid_client_metadata"),
            (json!({"grant_types": ["client_credentials"], "skip_consent": true}), "invalid_client_metadata"),
            (json!({"grant_types": ["client_credentials"], "introspect": true}), "invalid_client_metadata"),
            (json!({"grant_types": ["client_credentials"], "client_id": "chosen"}), "invalid_client_metadata"),
            (json!({"grant_types": ["client_credentials"], "token_endpoint_auth_method": "tls_client_auth"}), "invalid_client_metadata"),
            (json!({"grant_types": ["client_credentials"], "scope": 7}), "invalid_client_metadata"),
            (json!([1, 2]), "invalid_client_metadata"),
        ] {
            let response = app.post_register(Some(&token), &metadata).await;
            let body = assert_oauth_error(response, StatusCode::BAD_REQUEST, code).await;
            assert!(!body["error_description"].as_str().unwrap().is_empty(), "{metadata}");
        }
        let not_json = app.post_raw("/register", "text/plain", "{}").await;
        assert_eq!(not_json.status(), StatusCode::UNAUTHORIZED, "the token comes first");
        let huge = json!({"client_name": "x".repeat(90 * 1024)});
        let too_large = app.post_register(Some(&token), &huge).await;
        assert_oauth_error(too_large, StatusCode::PAYLOAD_TOO_LARGE, "invalid_request").await;
        assert!(app.store.list_clients().await.unwrap().is_empty());
        let listed = app.store.list_initial_access_tokens().await.unwrap();
        assert_eq!(listed[0].uses, 0, "refusals use nothing");
    }
}

db_test! {
    async fn a_client_reads_updates_and_deletes_its_registration_with_its_token(app: TestApp) {
        let rs = app.resource_server().await;
        let body = registered(&app, &web_app()).await;
        let other = registered(&app, &service()).await;
        let id = body["client_id"].as_str().unwrap();
        let token = body["registration_access_token"].as_str().unwrap();
        let other_token = other["registration_access_token"].as_str().unwrap();

        let read = with_token(&app, reqwest::Method::GET, id, token).await.send().await.unwrap();
        assert_eq!(read.status(), StatusCode::OK);
        assert_eq!(read.headers()["cache-control"], "no-store");
        let shown: Value = read.json().await.unwrap();
        assert_eq!(shown["client_id"], id);
        assert_eq!(shown["scope"], "read write");
        assert!(shown.get("client_secret").is_none() && shown.get("registration_access_token").is_none());
        assert_eq!(shown["registration_client_uri"], body["registration_client_uri"]);
        for (client, presented) in [(id, other_token), (id, "ra_wrong"), ("no-such-client", token)] {
            let response = with_token(&app, reqwest::Method::GET, client, presented).await.send().await.unwrap();
            assert_bearer_challenge(&response);
            assert_oauth_error(response, StatusCode::UNAUTHORIZED, "invalid_token").await;
        }

        let mut update = shown.clone();
        update["scope"] = json!("read");
        update["client_name"] = json!("Renamed shop");
        let wrong_secret = json!({"client_id": id, "client_secret": other["client_secret"]});
        let response = with_token(&app, reqwest::Method::PUT, id, token).await.json(&wrong_secret).send().await.unwrap();
        assert_oauth_error(response, StatusCode::BAD_REQUEST, "invalid_client_metadata").await;
        let without_id = json!({"grant_types": ["client_credentials"]});
        let response = with_token(&app, reqwest::Method::PUT, id, token).await.json(&without_id).send().await.unwrap();
        assert_oauth_error(response, StatusCode::BAD_REQUEST, "invalid_client_metadata").await;
        let mut admin = update.clone();
        admin["scope"] = json!("umbra:admin");
        let response = with_token(&app, reqwest::Method::PUT, id, token).await.json(&admin).send().await.unwrap();
        assert_oauth_error(response, StatusCode::BAD_REQUEST, "invalid_client_metadata").await;
        let response = with_token(&app, reqwest::Method::PUT, id, other_token).await.json(&update).send().await.unwrap();
        assert_oauth_error(response, StatusCode::UNAUTHORIZED, "invalid_token").await;

        update["client_secret"] = body["client_secret"].clone();
        let response = with_token(&app, reqwest::Method::PUT, id, token).await.json(&update).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let updated: Value = response.json().await.unwrap();
        assert_eq!((updated["scope"].as_str(), updated["client_name"].as_str()), (Some("read"), Some("Renamed shop")));
        let new_token = updated["registration_access_token"].as_str().unwrap();
        assert_ne!(new_token, token);
        let stale = with_token(&app, reqwest::Method::GET, id, token).await.send().await.unwrap();
        assert_oauth_error(stale, StatusCode::UNAUTHORIZED, "invalid_token").await;
        let stored = app.store.find_client(id).await.unwrap().unwrap();
        assert_eq!((stored.scopes.to_string().as_str(), stored.version), ("read", 2));
        let client = app.registered_client(&body).await;
        let issued = app.issue_token(&client).await;
        assert_eq!(app.audit_count("client.updated").await, 1);

        let response = with_token(&app, reqwest::Method::DELETE, id, token).await.send().await.unwrap();
        assert_oauth_error(response, StatusCode::UNAUTHORIZED, "invalid_token").await;
        let response = with_token(&app, reqwest::Method::DELETE, id, new_token).await.send().await.unwrap();
        assert_eq!(response.status(), StatusCode::NO_CONTENT);
        assert!(app.store.find_client(id).await.unwrap().is_none());
        assert_eq!(app.introspection_of(&rs, &issued).await, json!({"active": false}));
        let gone = with_token(&app, reqwest::Method::GET, id, new_token).await.send().await.unwrap();
        assert_oauth_error(gone, StatusCode::UNAUTHORIZED, "invalid_token").await;
        assert_eq!(app.audit_count("client.deleted").await, 1);
        let other_id = other["client_id"].as_str().unwrap();
        assert!(app.store.find_client(other_id).await.unwrap().is_some());
    }
}

db_test! {
    async fn an_operators_client_has_no_registration_to_manage(app: TestApp) {
        let client = app.service_client("read").await;
        let secret = client.secret.clone().unwrap();

        let response = with_token(&app, reqwest::Method::GET, &client.id, &secret).await.send().await.unwrap();

        assert_oauth_error(response, StatusCode::UNAUTHORIZED, "invalid_token").await;
        let response = with_token(&app, reqwest::Method::DELETE, &client.id, &secret).await.send().await.unwrap();
        assert_oauth_error(response, StatusCode::UNAUTHORIZED, "invalid_token").await;
        assert!(app.store.find_client(&client.id).await.unwrap().is_some());
    }
}

db_test_with! {
    |settings| settings.registration.secret_lifetime_secs = 1,
    async fn a_secret_past_its_expiry_no_longer_authenticates(app: TestApp) {
        let body = registered(&app, &service()).await;
        let issued_at = body["client_id_issued_at"].as_i64().unwrap();
        let expires_at = body["client_secret_expires_at"].as_i64().unwrap();
        assert_eq!(expires_at, issued_at + 1);
        let client = app.registered_client(&body).await;

        while umbra::clock::now() < expires_at {
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        let response = app.post_token(Some(&client), &[("grant_type", "client_credentials")]).await;

        assert_oauth_error(response, StatusCode::UNAUTHORIZED, "invalid_client").await;
    }
}

db_test! {
    async fn the_metadata_names_the_registration_endpoint(app: TestApp) {
        let endpoint = format!("{}/register", app.settings.server.issuer);
        for path in ["/.well-known/oauth-authorization-server", "/.well-known/openid-configuration"] {
            assert_eq!(app.get_json(path).await["registration_endpoint"], endpoint, "{path}");
        }
        let openapi = app.get_json("/openapi.json").await;
        for path in ["/register", "/register/{client_id}"] {
            assert!(openapi["paths"][path].is_object(), "{path}");
        }
    }
}

db_test_with! {
    |settings| settings.registration.enabled = false,
    async fn with_registration_off_there_is_no_endpoint(app: TestApp) {
        let token = app.initial_access_token(1, 3600).await;

        let response = app.post_register(Some(&token), &service()).await;

        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        let metadata = app.get_json("/.well-known/oauth-authorization-server").await;
        assert!(metadata.get("registration_endpoint").is_none());
    }
}

db_test! {
    async fn concurrent_updates_with_one_registration_token_let_exactly_one_win(app: TestApp) {
        let body = registered(&app, &service()).await;
        let id = body["client_id"].as_str().unwrap();
        let token = body["registration_access_token"].as_str().unwrap();
        let update = json!({"client_id": id, "grant_types": ["client_credentials"], "scope": "write"});

        let requests = (0..24).map(|_| async {
            with_token(&app, reqwest::Method::PUT, id, token).await.json(&update).send().await.unwrap()
        });
        let responses = join_all(requests).await;

        let statuses: Vec<StatusCode> = responses.iter().map(|r| r.status()).collect();
        let won = statuses.iter().filter(|s| **s == StatusCode::OK).count();
        let refused = statuses.iter().filter(|s| **s == StatusCode::UNAUTHORIZED).count();
        assert_eq!((won, refused), (1, 23), "{statuses:?}");
        assert_eq!(app.store.find_client(id).await.unwrap().unwrap().version, 2);
    }
}

db_test! {
    async fn concurrent_replacements_from_one_version_let_exactly_one_win(app: TestApp) {
        let client = app.service_client("read").await;
        let read = app.store.find_client(&client.id).await.unwrap().unwrap();

        let attempts = (0..24).map(|i| {
            let mut changed = read.clone();
            changed.name = format!("name {i}");
            let store = app.store.clone();
            async move { store.replace_client(&changed, None, Some(read.version), umbra::clock::now()).await.unwrap() }
        });
        let outcomes = join_all(attempts).await;

        let done = outcomes.iter().filter(|o| matches!(o, umbra::store::Replaced::Done { .. })).count();
        assert_eq!(done, 1, "{outcomes:?}");
        let current = read.version + 1;
        assert!(outcomes.iter().all(|o| matches!(o,
            umbra::store::Replaced::Done { version } | umbra::store::Replaced::VersionMismatch { current: version }
            if *version == current)), "{outcomes:?}");
    }
}
