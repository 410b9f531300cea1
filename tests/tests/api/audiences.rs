//! Tokens bound to the resources they are for (RFC 8707), and introspection answered per
//! caller (RFC 7662 §2.2).
use reqwest::StatusCode;
use serde_json::json;
use umbra::oauth::grant_type::GrantType;
use umbra_tests::{
    ClientSpec, Pkce, REDIRECT_URI, TestApp, TestClient, assert_oauth_error, location, query_param,
};

pub(super) const ORDERS: &str = "https://orders.example/api";
pub(super) const BILLING: &str = "https://billing.example";

/// Orders and billing, each with its own resource server, and a service allowed both.
pub(super) struct Fleet {
    pub(super) orders_rs: TestClient,
    pub(super) billing_rs: TestClient,
    pub(super) service: TestClient,
}

pub(super) async fn fleet(app: &TestApp) -> Fleet {
    let orders_rs = app.register(ClientSpec::default()).await;
    let billing_rs = app.register(ClientSpec::default()).await;
    app.create_resource(ORDERS, "orders:read orders:write", &[&orders_rs])
        .await;
    app.create_resource(BILLING, "billing:read", &[&billing_rs])
        .await;
    let service = app.register(ClientSpec::default()).await;
    app.allow_resource(&service, ORDERS, Some("orders:read"))
        .await;
    app.allow_resource(&service, BILLING, None).await;
    Fleet {
        orders_rs,
        billing_rs,
        service,
    }
}

pub(super) async fn client_credentials(
    app: &TestApp,
    client: &TestClient,
    extra: &[(&str, &str)],
) -> reqwest::Response {
    let mut form = vec![("grant_type", "client_credentials")];
    form.extend_from_slice(extra);
    app.post_token(Some(client), &form).await
}

pub(super) async fn access_token(response: reqwest::Response) -> serde_json::Value {
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

db_test! {
    async fn a_token_for_one_resource_is_inactive_for_the_resource_server_of_another(app: TestApp) {
        let fleet = fleet(&app).await;
        let legacy_rs = app.resource_server().await;
        let body = access_token(client_credentials(&app, &fleet.service, &[("resource", ORDERS)]).await).await;
        assert_eq!(body["scope"], "orders:read");
        let token = body["access_token"].as_str().unwrap();

        let answer = app.introspection_of(&fleet.orders_rs, token).await;
        assert_eq!(answer["active"], true);
        assert_eq!(answer["aud"], json!([ORDERS]));
        assert_eq!(answer["scope"], "orders:read");
        // Per-caller answers: exactly inactive for everyone else, including a resource
        // server with the old "introspect any token" right.
        for other in [&fleet.billing_rs, &legacy_rs, &fleet.service] {
            assert_eq!(app.introspection_of(other, token).await, json!({"active": false}));
        }
    }
}

db_test! {
    async fn a_token_for_two_resources_is_active_for_both_and_lists_both(app: TestApp) {
        let fleet = fleet(&app).await;
        let body = access_token(
            client_credentials(&app, &fleet.service, &[("resource", ORDERS), ("resource", BILLING)]).await,
        )
        .await;
        assert_eq!(body["scope"], "orders:read billing:read");
        let token = body["access_token"].as_str().unwrap();
        for rs in [&fleet.orders_rs, &fleet.billing_rs] {
            let answer = app.introspection_of(rs, token).await;
            assert_eq!(answer["aud"], json!([ORDERS, BILLING]));
        }
    }
}

db_test! {
    async fn each_bad_resource_at_the_token_endpoint_is_invalid_target(app: TestApp) {
        let fleet = fleet(&app).await;
        let other = app.register(ClientSpec::default()).await;
        app.create_resource("https://ledger.example", "ledger:read", &[&other]).await;
        for bad in [
            "orders",
            "/relative/path",
            "https://orders.example/api#fragment",
            "https://unknown.example",
            // Exists, but this client is not allowed it.
            "https://ledger.example",
        ] {
            let response = client_credentials(&app, &fleet.service, &[("resource", bad)]).await;
            let body = assert_oauth_error(response, StatusCode::BAD_REQUEST, "invalid_target").await;
            assert!(!body["error_description"].as_str().unwrap().contains("ledger"), "{body}");
        }
        // A good and a bad one together are refused as a whole.
        let response =
            client_credentials(&app, &fleet.service, &[("resource", ORDERS), ("resource", "https://unknown.example")]).await;
        assert_oauth_error(response, StatusCode::BAD_REQUEST, "invalid_target").await;
    }
}

db_test! {
    async fn scopes_are_checked_against_the_chosen_resources(app: TestApp) {
        let fleet = fleet(&app).await;
        // billing:read is allowed, but not at orders.
        let response = client_credentials(&app, &fleet.service, &[("resource", ORDERS), ("scope", "billing:read")]).await;
        assert_oauth_error(response, StatusCode::BAD_REQUEST, "invalid_scope").await;
        // orders:write is defined by orders, but not allowed for this client.
        let response = client_credentials(&app, &fleet.service, &[("resource", ORDERS), ("scope", "orders:write")]).await;
        assert_oauth_error(response, StatusCode::BAD_REQUEST, "invalid_scope").await;
        let body = access_token(
            client_credentials(&app, &fleet.service, &[("resource", ORDERS), ("resource", BILLING), ("scope", "billing:read")]).await,
        )
        .await;
        assert_eq!(body["scope"], "billing:read");
    }
}

db_test! {
    async fn the_default_resource_applies_when_a_client_names_none(app: TestApp) {
        let fleet = fleet(&app).await;
        app.store
            .set_default_resource(&fleet.service.id, Some(BILLING), umbra::clock::now())
            .await
            .unwrap();
        let body = access_token(client_credentials(&app, &fleet.service, &[]).await).await;
        let token = body["access_token"].as_str().unwrap();
        assert_eq!(app.introspection_of(&fleet.billing_rs, token).await["aud"], json!([BILLING]));
        assert_eq!(app.introspection_of(&fleet.orders_rs, token).await, json!({"active": false}));
    }
}

db_test_with! {
    |settings| settings.introspection.require_audience = true,
    async fn with_audiences_required_a_token_naming_no_resource_is_inactive_for_everyone(app: TestApp) {
        let fleet = fleet(&app).await;
        let legacy_rs = app.resource_server().await;
        let unbound = app.issue_token(&fleet.service).await;
        for rs in [&fleet.orders_rs, &fleet.billing_rs, &legacy_rs] {
            assert_eq!(app.introspection_of(rs, &unbound).await, json!({"active": false}));
        }
        let metadata = app.get_json("/.well-known/oauth-authorization-server").await;
        assert_eq!(metadata["introspection_requires_audience"], true);
        assert_eq!(metadata["resource_indicators_supported"], true);
    }
}

db_test! {
    async fn without_audiences_required_a_token_naming_no_resource_is_seen_by_every_resource_server(app: TestApp) {
        let fleet = fleet(&app).await;
        let unbound = app.issue_token(&fleet.service).await;
        for rs in [&fleet.orders_rs, &fleet.billing_rs] {
            let answer = app.introspection_of(rs, &unbound).await;
            assert_eq!(answer["active"], true);
            assert!(answer.get("aud").is_none(), "{answer}");
        }
    }
}

/// A confidential web app with `grant_types`, allowed both resources, and the user ada.
async fn web_app_for_both(app: &TestApp, grant_types: &'static [GrantType]) -> TestClient {
    let web = app
        .register(ClientSpec {
            grant_types,
            redirect_uris: &[REDIRECT_URI],
            ..ClientSpec::default()
        })
        .await;
    app.allow_resource(&web, ORDERS, None).await;
    app.allow_resource(&web, BILLING, None).await;
    app.create_user("ada", "correct horse battery").await;
    web
}

/// Ada signs in to `web` for `extra` (e.g. `&resource=…`) and approves: the code and the PKCE
/// verifier to redeem it with.
async fn approved_code(app: &TestApp, web: &TestClient, extra: &str) -> (String, Pkce) {
    let browser = app.browser();
    let pkce = Pkce::new();
    let response = browser
        .authorize(web, &pkce, &format!("&state=s{extra}"))
        .await;
    assert_eq!(location(&response), "/login");
    let response = browser.sign_in("ada", "correct horse battery").await;
    assert_eq!(location(&response), "/consent");
    let page = browser.get("/consent").await.text().await.unwrap();
    assert!(
        page.contains("orders.example"),
        "the page names the services"
    );
    let response = browser.consent("approve").await;
    let code = query_param(&location(&response), "code").expect("a code");
    (code, pkce)
}

/// A web app with refresh tokens, and the tokens ada's approval of `extra` gives it.
async fn user_grant(app: &TestApp, extra: &str) -> (TestClient, serde_json::Value) {
    let web = web_app_for_both(
        app,
        &[GrantType::AuthorizationCode, GrantType::RefreshToken],
    )
    .await;
    let (code, pkce) = approved_code(app, &web, extra).await;
    let response = app.exchange_code(&web, &code, &pkce.verifier).await;
    (web, access_token(response).await)
}

db_test! {
    async fn a_refresh_narrows_the_audience_and_never_widens_it(app: TestApp) {
        let fleet = fleet(&app).await;
        let extra = format!("&resource={ORDERS}&resource={BILLING}&scope=orders:read+billing:read");
        let (web, tokens) = user_grant(&app, &extra).await;
        let first = tokens["access_token"].as_str().unwrap();
        assert_eq!(app.introspection_of(&fleet.orders_rs, first).await["aud"], json!([ORDERS, BILLING]));
        let refresh = tokens["refresh_token"].as_str().unwrap().to_owned();

        // Narrowed to billing: the scope follows.
        let response = app
            .post_token(Some(&web), &[("grant_type", "refresh_token"), ("refresh_token", &refresh), ("resource", BILLING)])
            .await;
        let narrowed = access_token(response).await;
        assert_eq!(narrowed["scope"], "billing:read");
        let token = narrowed["access_token"].as_str().unwrap();
        assert_eq!(app.introspection_of(&fleet.billing_rs, token).await["aud"], json!([BILLING]));
        assert_eq!(app.introspection_of(&fleet.orders_rs, token).await, json!({"active": false}));

        // Widening to a resource outside the grant is refused, and the refresh token stays good.
        let refresh = narrowed["refresh_token"].as_str().unwrap().to_owned();
        let other = app.register(ClientSpec::default()).await;
        app.create_resource("https://ledger.example", "ledger:read", &[&other]).await;
        app.allow_resource(&web, "https://ledger.example", None).await;
        let response = app
            .post_token(Some(&web), &[("grant_type", "refresh_token"), ("refresh_token", &refresh), ("resource", "https://ledger.example")])
            .await;
        assert_oauth_error(response, StatusCode::BAD_REQUEST, "invalid_target").await;

        // Without resource: the whole grant again.
        let response = app.refresh(&web, &refresh, None).await;
        let whole = access_token(response).await;
        assert_eq!(whole["scope"], "orders:read billing:read");
        let token = whole["access_token"].as_str().unwrap();
        assert_eq!(app.introspection_of(&fleet.orders_rs, token).await["aud"], json!([ORDERS, BILLING]));
    }
}

db_test! {
    async fn the_code_redemption_may_narrow_the_audience(app: TestApp) {
        let fleet = fleet(&app).await;
        let web = web_app_for_both(&app, &[GrantType::AuthorizationCode]).await;
        let (code, pkce) =
            approved_code(&app, &web, &format!("&resource={ORDERS}&resource={BILLING}")).await;
        let response = app
            .post_token(Some(&web), &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", REDIRECT_URI),
                ("code_verifier", &pkce.verifier),
                ("resource", ORDERS),
            ])
            .await;
        let body = access_token(response).await;
        assert_eq!(body["scope"], "orders:read orders:write");
        let token = body["access_token"].as_str().unwrap();
        assert_eq!(app.introspection_of(&fleet.orders_rs, token).await["aud"], json!([ORDERS]));
        assert_eq!(app.introspection_of(&fleet.billing_rs, token).await, json!({"active": false}));
    }
}

db_test! {
    async fn bad_resources_at_authorize_are_redirected_as_invalid_target(app: TestApp) {
        fleet(&app).await;
        let web = app.web_app(true).await;
        app.allow_resource(&web, ORDERS, None).await;
        let browser = app.browser();
        let pkce = Pkce::new();
        for bad in ["orders", "https://orders.example/api%23frag", "https://unknown.example", BILLING] {
            let response = browser.authorize(&web, &pkce, &format!("&state=xyz&resource={bad}")).await;
            let to = location(&response);
            assert!(to.starts_with(REDIRECT_URI), "{to}");
            assert_eq!(query_param(&to, "error").as_deref(), Some("invalid_target"), "{bad}");
            assert_eq!(query_param(&to, "state").as_deref(), Some("xyz"));
        }
    }
}

db_test! {
    async fn consent_for_one_resource_does_not_cover_another(app: TestApp) {
        fleet(&app).await;
        let (web, _) = user_grant(&app, &format!("&resource={ORDERS}&scope=orders:read")).await;
        // Same user, same client, a resource not approved yet: the consent page again.
        let browser = app.browser();
        let pkce = Pkce::new();
        browser.authorize(&web, &pkce, &format!("&state=s&resource={BILLING}&scope=billing:read")).await;
        let response = browser.sign_in("ada", "correct horse battery").await;
        assert_eq!(location(&response), "/consent");
        // And the approved one alone is remembered.
        let browser = app.browser();
        browser.authorize(&web, &pkce, &format!("&state=s&resource={ORDERS}&scope=orders:read")).await;
        let response = browser.sign_in("ada", "correct horse battery").await;
        assert!(location(&response).starts_with(REDIRECT_URI));
    }
}

db_test! {
    async fn answers_carry_jti_nbf_and_the_client_as_subject_of_a_client_token(app: TestApp) {
        let fleet = fleet(&app).await;
        let token = app.issue_token(&fleet.service).await;
        let other = app.issue_token(&fleet.service).await;
        let first = app.introspection_of(&fleet.orders_rs, &token).await;
        let again = app.introspection_of(&fleet.billing_rs, &token).await;
        let jti = first["jti"].as_str().unwrap();
        assert_eq!(jti.len(), 22);
        assert_eq!(again["jti"], jti, "stable");
        assert_ne!(app.introspection_of(&fleet.orders_rs, &other).await["jti"], jti);
        assert!(!token.contains(jti));
        assert_eq!(first["nbf"], first["iat"]);
        assert_eq!(first["sub"], fleet.service.id.as_str());
        assert!(first.get("username").is_none());
    }
}

db_test! {
    async fn a_refresh_token_is_active_only_for_its_own_client(app: TestApp) {
        let fleet = fleet(&app).await;
        let (web, tokens) = user_grant(&app, &format!("&resource={ORDERS}")).await;
        let refresh = tokens["refresh_token"].as_str().unwrap();
        let own = app
            .post_form("/introspect", Some(&web), &[("token", refresh), ("token_type_hint", "refresh_token")])
            .await;
        let own: serde_json::Value = own.json().await.unwrap();
        assert_eq!(own["active"], true);
        assert_eq!(own["token_type"], "refresh_token");
        assert_eq!(own["client_id"], web.id.as_str());
        assert_eq!(own["aud"], json!([ORDERS]));
        assert_eq!(own["username"], "ada");
        // A wrong hint is only a hint.
        let hinted = app
            .post_form("/introspect", Some(&web), &[("token", refresh), ("token_type_hint", "access_token")])
            .await;
        assert_eq!(hinted.json::<serde_json::Value>().await.unwrap()["active"], true);
        // Resource servers never see a refresh token active, even of a grant for their resource.
        for rs in [&fleet.orders_rs, &fleet.service] {
            assert_eq!(app.introspection_of(rs, refresh).await, json!({"active": false}));
        }
        // A client that is no resource server learns nothing of access tokens.
        let access = tokens["access_token"].as_str().unwrap();
        assert_eq!(app.introspection_of(&web, access).await, json!({"active": false}));
        // Once used, it is inactive for its client too.
        app.refresh(&web, refresh, None).await;
        assert_eq!(app.introspection_of(&web, refresh).await, json!({"active": false}));
    }
}

db_test! {
    async fn a_revoked_origin_grant_inactivates_resource_bound_tokens(app: TestApp) {
        let fleet = fleet(&app).await;
        let (web, tokens) = user_grant(&app, &format!("&resource={ORDERS}")).await;
        let access = tokens["access_token"].as_str().unwrap();
        assert_eq!(app.introspection_of(&fleet.orders_rs, access).await["active"], true);
        let response = app.revoke(&web, tokens["refresh_token"].as_str().unwrap()).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(app.introspection_of(&fleet.orders_rs, access).await, json!({"active": false}));
    }
}

db_test! {
    async fn a_deleted_resource_takes_its_tokens_along_even_if_registered_again(app: TestApp) {
        let fleet = fleet(&app).await;
        let both = access_token(
            client_credentials(&app, &fleet.service, &[("resource", ORDERS), ("resource", BILLING)]).await,
        )
        .await;
        let both = both["access_token"].as_str().unwrap();
        let billing_only = app.issue_token_for(&fleet.service, BILLING).await;
        assert!(app.store.delete_resource(ORDERS, umbra::clock::now()).await.unwrap());
        // Registered again under the same identifier, with the same resource server.
        app.create_resource(ORDERS, "orders:read", &[&fleet.orders_rs]).await;
        assert_eq!(app.introspection_of(&fleet.orders_rs, both).await, json!({"active": false}));
        assert_eq!(app.introspection_of(&fleet.billing_rs, both).await, json!({"active": false}));
        // Tokens for other resources only are untouched.
        assert_eq!(app.introspection_of(&fleet.billing_rs, &billing_only).await["active"], true);
    }
}
