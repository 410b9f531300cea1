//! Metadata (RFC 8414), health probes, unknown paths and methods.
use reqwest::StatusCode;

db_test! {
    async fn the_metadata_lists_the_endpoints_and_what_works(app: TestApp) {
        let response = app
            .http
            .get(app.url("/.well-known/oauth-authorization-server"))
            .send()
            .await
            .unwrap();

        assert_eq!(response.status(), StatusCode::OK);
        let body: serde_json::Value = response.json().await.unwrap();
        let issuer = app.settings.server.issuer.as_str();
        assert_eq!(body["issuer"], issuer);
        assert_eq!(body["token_endpoint"], format!("{issuer}/token"));
        assert_eq!(body["introspection_endpoint"], format!("{issuer}/introspect"));
        assert_eq!(body["revocation_endpoint"], format!("{issuer}/revoke"));
        assert_eq!(body["authorization_endpoint"], format!("{issuer}/authorize"));
        assert_eq!(
            body["grant_types_supported"],
            serde_json::json!([
                "authorization_code",
                "refresh_token",
                "client_credentials",
                "urn:ietf:params:oauth:grant-type:token-exchange"
            ])
        );
        assert_eq!(body["response_types_supported"], serde_json::json!(["code"]));
        assert_eq!(body["code_challenge_methods_supported"], serde_json::json!(["S256"]));
        assert_eq!(body["authorization_response_iss_parameter_supported"], true);
        assert_eq!(
            body["token_endpoint_auth_methods_supported"],
            serde_json::json!(["client_secret_basic", "client_secret_post", "private_key_jwt", "none"])
        );
        assert_eq!(
            body["introspection_endpoint_auth_methods_supported"],
            serde_json::json!(["client_secret_basic", "client_secret_post", "private_key_jwt"])
        );
    }
}

db_test! {
    async fn liveness_and_readiness_answer_ok(app: TestApp) {
        for path in ["/health/live", "/health/ready"] {
            let response = app.http.get(app.url(path)).send().await.unwrap();
            assert_eq!(response.status(), StatusCode::OK, "{path}");
            let body: serde_json::Value = response.json().await.unwrap();
            assert_eq!(body["status"], "ok");
        }
    }
}

db_test! {
    async fn a_wrong_method_is_405_and_an_unknown_path_404(app: TestApp) {
        let response = app.http.get(app.url("/token")).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(response.headers()["allow"], "POST");

        let response = app.http.get(app.url("/nope")).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
    }
}

db_test! {
    async fn the_root_page_says_what_this_server_is_and_links_onwards(app: TestApp) {
        let response = app.http.get(app.url("/")).send().await.unwrap();

        assert_eq!(response.status(), StatusCode::OK);
        assert!(response.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
        let page = response.text().await.unwrap();
        assert!(page.contains("OAuth 2.0 authorization server"));
        // The page escapes `/` as `&#x2f;`: look for the host part of the issuer.
        let issuer_host = app.settings.server.issuer.split("://").nth(1).unwrap();
        assert!(page.contains(issuer_host.trim_end_matches('/')));
        for link in ["/account", "/.well-known/oauth-authorization-server", "/openapi.json"] {
            assert!(page.contains(&format!("href=\"{link}\"")), "links to {link}");
        }
    }
}
