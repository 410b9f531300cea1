//! Malformed requests get RFC 6749 §5.2 errors, never a 5xx.
use reqwest::StatusCode;
use umbra_tests::assert_oauth_error;

const FORM: &str = "application/x-www-form-urlencoded";

db_test! {
    async fn a_repeated_parameter_is_invalid_request(app: TestApp) {
        let client = app.service_client("read").await;
        let body = format!(
            "grant_type=client_credentials&scope=read&scope=read&client_id={}&client_secret={}",
            client.id,
            client.secret.as_deref().unwrap()
        );

        let response = app.post_raw("/token", FORM, body).await;

        let body = assert_oauth_error(response, StatusCode::BAD_REQUEST, "invalid_request").await;
        assert!(body["error_description"].as_str().unwrap().contains("scope"));
    }
}

db_test! {
    async fn json_and_other_content_types_are_invalid_request(app: TestApp) {
        for (path, content_type, body) in [
            ("/token", "application/json", r#"{"grant_type":"client_credentials"}"#),
            ("/introspect", "text/plain", "token=x"),
            ("/revoke", "multipart/form-data; boundary=x", "--x--"),
        ] {
            let response = app.post_raw(path, content_type, body).await;
            assert_oauth_error(response, StatusCode::BAD_REQUEST, "invalid_request").await;
        }
    }
}

db_test! {
    async fn a_body_over_the_limit_is_413(app: TestApp) {
        let oversized = format!("grant_type=client_credentials&pad={}", "a".repeat(20_000));

        let response = app.post_raw("/token", FORM, oversized).await;

        assert_oauth_error(response, StatusCode::PAYLOAD_TOO_LARGE, "invalid_request").await;
    }
}

db_test! {
    async fn a_chunked_body_over_the_limit_is_413(app: TestApp) {
        // Past the larger limit of /introspect (umbra::http::form::FormLimit::TOKEN_ACTIONS).
        let chunks = (0..80).map(|_| Ok::<_, std::io::Error>(vec![b'a'; 1024]));
        let body = reqwest::Body::wrap_stream(futures_util::stream::iter(chunks));

        let response = app.post_raw("/introspect", FORM, body).await;

        assert_oauth_error(response, StatusCode::PAYLOAD_TOO_LARGE, "invalid_request").await;
    }
}

db_test! {
    async fn a_body_that_is_not_utf8_is_invalid_request(app: TestApp) {
        for body in [&b"grant_type=client_credentials&scope=\xff\xfe"[..], b"grant_type=%C3%28"] {
            let response = app.post_raw("/token", FORM, body.to_vec()).await;
            assert_oauth_error(response, StatusCode::BAD_REQUEST, "invalid_request").await;
        }
    }
}

db_test! {
    async fn no_malformed_request_produces_a_server_error(app: TestApp) {
        let client = app.service_client("read").await;
        let secret = client.secret.clone().unwrap();
        let long_id = "x".repeat(5000);
        let bodies: Vec<Vec<u8>> = vec![
            b"".to_vec(),
            b"&&&===&".to_vec(),
            b"%".to_vec(),
            b"%zz=%zz".to_vec(),
            b"grant_type=client_credentials&client_id=%00&client_secret=%00".to_vec(),
            format!("grant_type=client_credentials&client_id={long_id}&client_secret=x").into_bytes(),
            format!("grant_type=client_credentials&client_id={}&client_secret={secret}&scope=%22", client.id).into_bytes(),
            format!("token={}", "at_".repeat(500)).into_bytes(),
            (0u8..=255).collect(),
        ];
        let headers = [
            None,
            Some("Basic"),
            Some("Basic !!!!"),
            Some("Basic Og=="),
            Some("Bearer abc"),
            Some("Basic dXNlcjpwYXNz"),
        ];
        for path in ["/token", "/introspect", "/revoke"] {
            for body in &bodies {
                for header in headers {
                    let mut request = app
                        .http
                        .post(app.url(path))
                        .header("content-type", FORM)
                        .body(body.clone());
                    if let Some(header) = header {
                        request = request.header("authorization", header);
                    }
                    let response = request.send().await.unwrap();
                    assert!(
                        response.status().is_client_error(),
                        "{path} {header:?} {:?} gave {}",
                        String::from_utf8_lossy(body),
                        response.status()
                    );
                }
            }
        }
    }
}
