//! Standards findings of issue 8 (items 8 and 9): `error_description` in the RFC 6749 §5.2
//! character set, a challenge on every 401, metadata that lists every accepted client
//! authentication method and is found at the RFC 8414 §3.1 location, no empty `scope`, body
//! errors that never echo a value, and no public development key in production.
use reqwest::StatusCode;
use umbra::oauth::grant_type::GrantType;
use umbra::settings::{DEVELOPMENT_ENCRYPTION_KEY, Environment, SenderKind, Settings};
use umbra_tests::{Backend, ClientSpec, REDIRECT_URI, TestApp, assert_oauth_error};

const FORM: &str = "application/x-www-form-urlencoded";
const PASSWORD: &str = "correct horse battery";

/// RFC 6749 §5.2: `error_description = 1*( %x20-21 / %x23-5B / %x5D-7E )`.
fn in_rfc_6749_charset(description: &str) -> bool {
    description
        .bytes()
        .all(|b| matches!(b, 0x20..=0x21 | 0x23..=0x5B | 0x5D..=0x7E))
}

db_test! {
    async fn descriptions_provoked_by_quoted_input_stay_in_the_rfc_6749_charset(app: TestApp) {
        let client = app.service_client("read").await;

        let grant_type = app
            .post_token(Some(&client), &[("grant_type", "urn:\"evil\"\\grant")])
            .await;
        let repeated = app
            .post_raw("/token", FORM, "grant_type=client_credentials&na%22m%5Ce=1&na%22m%5Ce=2")
            .await;
        let scope = app
            .post_token(Some(&client), &[("grant_type", "client_credentials"), ("scope", "caf\u{e9} \"x\"")])
            .await;

        for (response, status, code) in [
            (grant_type, StatusCode::BAD_REQUEST, "unsupported_grant_type"),
            (repeated, StatusCode::BAD_REQUEST, "invalid_request"),
            (scope, StatusCode::BAD_REQUEST, "invalid_scope"),
        ] {
            let body = assert_oauth_error(response, status, code).await;
            let description = body["error_description"].as_str().unwrap();
            assert!(in_rfc_6749_charset(description), "{code}: {description:?}");
        }
    }
}

/// A case name, the form, and HTTP Basic credentials if any.
type Attempt<'a> = (&'a str, Vec<(&'a str, &'a str)>, Option<(&'a str, &'a str)>);

db_test! {
    async fn every_401_of_the_form_endpoints_carries_a_challenge(app: TestApp) {
        let client = app.service_client("read").await;
        let public = app.register(ClientSpec { public: true, ..ClientSpec::default() }).await;

        for (path, first) in [
            ("/token", ("grant_type", "client_credentials")),
            ("/introspect", ("token", "at_whatever")),
            ("/revoke", ("token", "at_whatever")),
        ] {
            let attempts: Vec<Attempt> = vec![
                ("nothing", vec![first], None),
                ("a wrong secret in the body", vec![first, ("client_id", &client.id), ("client_secret", "cs_wrong")], None),
                ("an unknown client_id alone", vec![first, ("client_id", "nobody")], None),
                ("a secret for a public client", vec![first, ("client_id", &public.id), ("client_secret", "x")], None),
                ("a wrong Basic secret", vec![first], Some((client.id.as_str(), "cs_wrong"))),
            ];
            for (case, form, basic) in attempts {
                let mut request = app.http.post(app.url(path)).form(&form);
                if let Some((id, secret)) = basic {
                    request = request.basic_auth(id, Some(secret));
                }
                let response = request.send().await.unwrap();

                assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{path}: {case}");
                let challenge = response
                    .headers()
                    .get("www-authenticate")
                    .unwrap_or_else(|| panic!("{path}: {case}: a 401 without WWW-Authenticate"))
                    .to_str()
                    .unwrap()
                    .to_owned();
                assert!(challenge.starts_with("Basic realm="), "{path}: {case}: {challenge}");
                assert_oauth_error(response, StatusCode::UNAUTHORIZED, "invalid_client").await;
            }
        }
    }
}

db_test! {
    async fn every_401_of_the_json_api_carries_a_bearer_challenge(app: TestApp) {
        let url = app.url("/api/account/factors");
        let anonymous = app.http.get(&url).send().await.unwrap();
        let other_scheme = app.http.get(&url).basic_auth("ada", Some("pw")).send().await.unwrap();
        let garbage = app.http.get(&url).bearer_auth("at_nonsense").send().await.unwrap();

        for (case, response, with_error) in [
            ("no header", anonymous, false),
            ("another scheme", other_scheme, false),
            ("a garbage token", garbage, true),
        ] {
            assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{case}");
            let challenge = response.headers()["www-authenticate"].to_str().unwrap().to_owned();
            assert!(challenge.starts_with("Bearer realm=\"umbra\""), "{case}: {challenge}");
            assert_eq!(challenge.contains("error="), with_error, "{case}: {challenge}");
        }
    }
}

db_test! {
    async fn the_metadata_lists_none_at_revocation_where_public_clients_revoke(app: TestApp) {
        let public = app.register(ClientSpec { public: true, ..ClientSpec::default() }).await;

        let metadata: serde_json::Value = app.get_json("/.well-known/oauth-authorization-server").await;
        let revoked = app
            .post_form("/revoke", None, &[("token", "at_unknown"), ("client_id", &public.id)])
            .await;

        let every = serde_json::json!(["client_secret_basic", "client_secret_post", "private_key_jwt", "none"]);
        assert_eq!(metadata["token_endpoint_auth_methods_supported"], every);
        assert_eq!(metadata["revocation_endpoint_auth_methods_supported"], every);
        assert_eq!(
            metadata["introspection_endpoint_auth_methods_supported"],
            serde_json::json!(["client_secret_basic", "client_secret_post", "private_key_jwt"])
        );
        assert_eq!(revoked.status(), StatusCode::OK, "a public client revokes with `none`");
    }
}

db_test! {
    async fn a_token_granted_no_scope_has_no_scope_member(app: TestApp) {
        let client = app.service_client("").await;
        let rs = app.resource_server().await;

        let response = app.post_token(Some(&client), &[("grant_type", "client_credentials")]).await;
        assert_eq!(response.status(), StatusCode::OK);
        let issued: serde_json::Value = response.json().await.unwrap();
        let token = issued["access_token"].as_str().unwrap();
        let introspected = app.introspection_of(&rs, token).await;

        assert!(issued.get("scope").is_none(), "{issued}");
        assert_eq!(introspected["active"], true);
        assert!(introspected.get("scope").is_none(), "{introspected}");
    }
}

async fn issuer_with_a_path(backend: Backend) {
    let Some(app) = TestApp::spawn_with(backend, |settings| {
        settings.server.issuer = "https://auth.example/tenant".into();
    })
    .await
    else {
        return;
    };
    let get = |path: &str| app.http.get(app.url(path)).send();

    let at_rfc_8414_location = get("/.well-known/oauth-authorization-server/tenant")
        .await
        .unwrap();
    let plain = get("/.well-known/oauth-authorization-server")
        .await
        .unwrap();
    let other_tenant = get("/.well-known/oauth-authorization-server/other")
        .await
        .unwrap();

    for response in [at_rfc_8414_location, plain] {
        assert_eq!(response.status(), StatusCode::OK);
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body["issuer"], "https://auth.example/tenant");
        assert_eq!(body["token_endpoint"], "https://auth.example/tenant/token");
    }
    assert_eq!(other_tenant.status(), StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_issuer_with_a_path_serves_its_metadata_at_the_rfc_8414_location_on_sqlite() {
    issuer_with_a_path(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_issuer_with_a_path_serves_its_metadata_at_the_rfc_8414_location_on_postgres() {
    issuer_with_a_path(Backend::Postgres).await;
}

db_test! {
    async fn an_issuer_without_a_path_has_nothing_below_the_well_known_location(app: TestApp) {
        let response = app
            .http
            .get(app.url("/.well-known/oauth-authorization-server/tenant"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
    }
}

db_test! {
    async fn a_wrongly_typed_json_field_is_400_without_its_value(app: TestApp) {
        app.create_user("ada", PASSWORD).await;
        let client = app
            .register(ClientSpec {
                public: true,
                scopes: "account",
                grant_types: &[GrantType::AuthorizationCode],
                redirect_uris: &[REDIRECT_URI],
                ..ClientSpec::default()
            })
            .await;
        let token = app.user_access_token(&client, "ada", PASSWORD, "account").await;
        let api = |method: reqwest::Method, path: &str, body: &str| {
            app.http
                .request(method, app.url(&format!("/api/account{path}")))
                .bearer_auth(&token)
                .header("content-type", "application/json")
                .body(body.to_owned())
                .send()
        };

        let cases = [
            (reqwest::Method::POST, "/factors/totp/confirm", r#"{"code": 123456}"#, "123456"),
            (reqwest::Method::POST, "/factors/totp/confirm", r#"{"code": 654321.5}"#, "654321"),
            (reqwest::Method::DELETE, "/factors/totp", r#"{"password": 987654321}"#, "987654321"),
            (reqwest::Method::DELETE, "/factors/totp", r#"{"password": ["hunter2-secret"]}"#, "hunter2"),
            (reqwest::Method::DELETE, "/factors/totp", r#"{"hunter2-secret": "x"}"#, "hunter2"),
        ];
        for (method, path, body, secret) in cases {
            let response = api(method, path, body).await.unwrap();

            assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{body}");
            let challenge = response.headers().get("www-authenticate").map(|v| v.to_str().unwrap().to_owned());
            let text = response.text().await.unwrap();
            assert!(!text.contains(secret), "{body} answered {text}");
            assert!(!challenge.unwrap_or_default().contains(secret));
            let json: serde_json::Value = serde_json::from_str(&text).unwrap();
            assert_eq!(json["error"], "invalid_request");
            let description = json["error_description"].as_str().unwrap();
            assert!(description.starts_with("the JSON body is invalid"), "{description}");
            assert!(in_rfc_6749_charset(description), "{description}");
        }
    }
}

db_test! {
    async fn a_form_error_does_not_echo_the_form(app: TestApp) {
        let response = app
            .post_raw("/login", FORM, "username=ada&password=hunter2-secret&password=again")
            .await;

        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        let page = response.text().await.unwrap();
        assert!(!page.contains("hunter2"), "{page}");
    }
}

/// A production configuration that passes validation with a key of its own.
fn production_with_key(key: &str) -> Settings {
    let mut settings = Settings::built_in().unwrap();
    settings.environment = Environment::Production;
    settings.server.issuer = "https://auth.example".into();
    settings.session.key = "c2Vzc2lvbi1rZXktc2Vzc2lvbi1rZXktc2Vzc2lvbi1rZXktc2Vzc2lvbi1rZXktc2Vzc2lvbi1rZXktc2Vzc2lvbi1rZXkt".into();
    settings.sender.kind = SenderKind::Webhook;
    settings.sender.webhook_url = "https://sms.example/send".into();
    settings.second_factor.encryption_key = key.into();
    settings.keys.encryption_key = "a2V5cy1lbmNyeXB0aW9uLWtleS1vZi0zMi1ieXRlcyE=".into();
    settings
}

#[test]
fn production_refuses_signing_keys_sealed_with_the_development_key() {
    let own_key = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";
    for key in ["", DEVELOPMENT_ENCRYPTION_KEY] {
        let mut settings = production_with_key(own_key);
        settings.keys.encryption_key = key.into();
        let refused = settings.validate().unwrap_err().to_string();
        assert!(
            refused.contains("keys.encryption_key"),
            "{key:?}: {refused}"
        );
        assert!(
            !refused.contains(DEVELOPMENT_ENCRYPTION_KEY),
            "the key is not repeated"
        );
    }
    let mut short = production_with_key(own_key);
    short.keys.encryption_key = "c2hvcnQ=".into();
    assert!(
        short
            .validate()
            .unwrap_err()
            .to_string()
            .contains("32 bytes")
    );
}

#[test]
fn production_refuses_the_public_development_encryption_key() {
    let own_key = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";
    assert!(production_with_key(own_key).validate().is_ok());

    let spaced = format!(" {DEVELOPMENT_ENCRYPTION_KEY}\n");
    for key in ["", DEVELOPMENT_ENCRYPTION_KEY, spaced.as_str()] {
        let refused = production_with_key(key).validate().unwrap_err().to_string();
        assert!(
            refused.contains("second_factor.encryption_key"),
            "{key:?}: {refused}"
        );
        assert!(
            !refused.contains(DEVELOPMENT_ENCRYPTION_KEY),
            "the key is not repeated"
        );
    }
    // Development keeps the convenience.
    let mut development = production_with_key(DEVELOPMENT_ENCRYPTION_KEY);
    development.environment = Environment::Development;
    assert!(development.validate().is_ok());
}
