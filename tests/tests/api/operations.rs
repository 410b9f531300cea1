//! What operators rely on: Prometheus metrics on their own listener.
use reqwest::StatusCode;

/// The value of the sample `name{labels}` in a Prometheus text exposition.
fn sample(exposition: &str, series: &str) -> Option<f64> {
    exposition
        .lines()
        .find(|line| line.starts_with(series) && line[series.len()..].starts_with(' '))
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|value| value.parse().ok())
}

db_test! {
    async fn metrics_count_requests_tokens_introspections_and_revocations(app: TestApp) {
        let client = app.service_client("read").await;
        let rs = app.resource_server().await;
        let token = app.issue_token(&client).await;
        app.introspection_of(&rs, &token).await;
        app.revoke(&client, &token).await;
        app.introspection_of(&rs, &token).await;
        app.post_token(None, &[("grant_type", "client_credentials")]).await;

        let response = app.http.get(format!("{}/metrics", app.metrics_address)).send().await.unwrap();

        assert_eq!(response.status(), StatusCode::OK);
        assert!(response.headers()["content-type"].to_str().unwrap().starts_with("text/plain"));
        let text = response.text().await.unwrap();
        assert_eq!(sample(&text, r#"umbra_http_requests_total{endpoint="/token",method="POST",status="200"}"#), Some(1.0), "{text}");
        assert_eq!(sample(&text, r#"umbra_http_requests_total{endpoint="/token",method="POST",status="401"}"#), Some(1.0));
        assert_eq!(sample(&text, r#"umbra_tokens_issued_total{grant_type="client_credentials"}"#), Some(1.0));
        assert_eq!(sample(&text, r#"umbra_introspections_total{result="active"}"#), Some(1.0));
        assert_eq!(sample(&text, r#"umbra_introspections_total{result="inactive"}"#), Some(1.0));
        assert_eq!(sample(&text, "umbra_revocations_total"), Some(1.0));
        assert!(sample(&text, r#"umbra_http_request_duration_seconds_count{endpoint="/introspect",method="POST"}"#) == Some(2.0));
        assert!(sample(&text, r#"umbra_db_pool_connections{state="idle"}"#).is_some());
        assert!(!text.contains(&token[3..]), "no token ever appears in metrics");
    }
}

db_test! {
    async fn metrics_are_not_served_on_the_public_listener_and_unknown_paths_share_one_label(app: TestApp) {
        let response = app.http.get(app.url("/metrics")).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        for i in 0..3 {
            app.http.get(app.url(&format!("/random-{i}"))).send().await.unwrap();
        }

        let text = app.http.get(format!("{}/metrics", app.metrics_address)).send().await.unwrap().text().await.unwrap();

        assert!(!text.contains("random-"), "raw paths never become labels");
        assert_eq!(sample(&text, r#"umbra_http_requests_total{endpoint="unmatched",method="GET",status="404"}"#), Some(4.0));
    }
}

/// The JSON and form endpoints the app serves; the OpenAPI document must describe each.
const API_ROUTES: [(&str, &str); 14] = [
    ("post", "/token"),
    ("get", "/userinfo"),
    ("post", "/userinfo"),
    ("get", "/.well-known/openid-configuration"),
    ("post", "/introspect"),
    ("post", "/revoke"),
    ("get", "/.well-known/oauth-authorization-server"),
    ("get", "/health/live"),
    ("get", "/health/ready"),
    ("get", "/openapi.json"),
    ("post", "/register"),
    ("get", "/register/{client_id}"),
    ("put", "/register/{client_id}"),
    ("delete", "/register/{client_id}"),
];

db_test! {
    async fn the_openapi_document_lists_every_api_route_and_only_routes_that_exist(app: TestApp) {
        let response = app.http.get(app.url("/openapi.json")).send().await.unwrap();

        assert_eq!(response.status(), StatusCode::OK);
        let doc: serde_json::Value = response.json().await.unwrap();
        assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
        let paths = doc["paths"].as_object().unwrap();
        for (method, path) in API_ROUTES {
            assert!(paths.get(path).and_then(|p| p.get(method)).is_some(), "{method} {path} is not documented");
        }
        for (path, operations) in paths {
            for method in operations.as_object().unwrap().keys() {
                let request = match method.as_str() {
                    "get" => app.http.get(app.url(path)),
                    "post" => app.http.post(app.url(path)).form(&[("x", "y")]),
                    "put" => app.http.put(app.url(path)).json(&serde_json::json!({})),
                    "delete" => app.http.delete(app.url(path)),
                    other => panic!("unexpected method {other}"),
                };
                let status = request.send().await.unwrap().status();
                assert!(
                    status != StatusCode::NOT_FOUND && status != StatusCode::METHOD_NOT_ALLOWED,
                    "documented {method} {path} answers {status}"
                );
            }
        }
        let token_form = &paths["/token"]["post"]["requestBody"]["content"];
        assert!(token_form.get("application/x-www-form-urlencoded").is_some());
        assert!(doc["components"]["securitySchemes"]["client_secret_basic"].is_object());
    }
}
