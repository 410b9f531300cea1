//! Token exchange between services (RFC 8693): delegation along a chain, the `act` claim, the
//! policy, and revocation of the origin reaching everything exchanged from it.
use futures_util::future::join_all;
use reqwest::StatusCode;
use serde_json::json;
use umbra::oauth::grant_type::GrantType;
use umbra_tests::{
    ClientSpec, Pkce, REDIRECT_URI, TestApp, TestClient, assert_oauth_error, location, query_param,
};

const EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const ACCESS_TOKEN: &str = "urn:ietf:params:oauth:token-type:access_token";
const GATEWAY: &str = "https://gateway.example";
pub(super) const ORDERS: &str = "https://orders.example";
const BILLING: &str = "https://billing.example";
const LEDGER: &str = "https://ledger.example";

/// The web app people sign in to, and four services, each the resource server of its own
/// API and allowed to exchange towards the next one: web → gateway → orders → billing →
/// ledger.
pub(super) struct Chain {
    pub(super) web: TestClient,
    pub(super) gateway: TestClient,
    pub(super) orders: TestClient,
    pub(super) billing: TestClient,
    pub(super) ledger: TestClient,
}

async fn service(app: &TestApp) -> TestClient {
    app.register(ClientSpec {
        grant_types: &[GrantType::TokenExchange],
        ..ClientSpec::default()
    })
    .await
}

pub(super) async fn chain(app: &TestApp) -> Chain {
    let (gateway, orders, billing, ledger) = (
        service(app).await,
        service(app).await,
        service(app).await,
        service(app).await,
    );
    app.create_resource(GATEWAY, "shop", &[&gateway]).await;
    app.create_resource(ORDERS, "shop orders:write", &[&orders])
        .await;
    app.create_resource(BILLING, "shop billing:charge", &[&billing])
        .await;
    app.create_resource(LEDGER, "shop", &[&ledger]).await;
    app.allow_resource(&gateway, ORDERS, None).await;
    app.allow_resource(&orders, BILLING, None).await;
    app.allow_resource(&billing, LEDGER, None).await;
    let web = app
        .register(ClientSpec {
            grant_types: &[GrantType::AuthorizationCode, GrantType::RefreshToken],
            redirect_uris: &[REDIRECT_URI],
            ..ClientSpec::default()
        })
        .await;
    app.allow_resource(&web, GATEWAY, None).await;
    Chain {
        web,
        gateway,
        orders,
        billing,
        ledger,
    }
}

/// Ada signs in to the web app, which gets a token for the gateway: (access, refresh).
pub(super) async fn signed_in(app: &TestApp, web: &TestClient) -> (String, String, String) {
    let user = app.create_user("ada", "correct horse battery").await;
    let browser = app.browser();
    let pkce = Pkce::new();
    browser
        .authorize(web, &pkce, &format!("&state=s&resource={GATEWAY}"))
        .await;
    browser.sign_in("ada", "correct horse battery").await;
    let response = browser.consent("approve").await;
    let code = query_param(&location(&response), "code").expect("a code");
    let response = app.exchange_code(web, &code, &pkce.verifier).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: serde_json::Value = response.json().await.unwrap();
    (
        body["access_token"].as_str().unwrap().to_owned(),
        body["refresh_token"].as_str().unwrap().to_owned(),
        user.id.to_string(),
    )
}

async fn exchange(
    app: &TestApp,
    actor: &TestClient,
    subject: &str,
    extra: &[(&str, &str)],
) -> reqwest::Response {
    let mut form = vec![
        ("grant_type", EXCHANGE),
        ("subject_token", subject),
        ("subject_token_type", ACCESS_TOKEN),
    ];
    form.extend_from_slice(extra);
    app.post_token(Some(actor), &form).await
}

pub(super) async fn exchanged(
    app: &TestApp,
    actor: &TestClient,
    subject: &str,
    resource: &str,
) -> String {
    let response = exchange(app, actor, subject, &[("resource", resource)]).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["issued_token_type"], ACCESS_TOKEN);
    assert_eq!(body["token_type"], "Bearer");
    assert!(body.get("refresh_token").is_none(), "{body}");
    body["access_token"].as_str().unwrap().to_owned()
}

db_test! {
    async fn a_three_hop_chain_keeps_the_user_and_nests_the_actors(app: TestApp) {
        let c = chain(&app).await;
        let (for_gateway, _, user_id) = signed_in(&app, &c.web).await;

        let for_orders = exchanged(&app, &c.gateway, &for_gateway, ORDERS).await;
        let for_billing = exchanged(&app, &c.orders, &for_orders, BILLING).await;
        let for_ledger = exchanged(&app, &c.billing, &for_billing, LEDGER).await;

        let answer = app.introspection_of(&c.ledger, &for_ledger).await;
        assert_eq!(answer["active"], true);
        assert_eq!(answer["sub"], user_id.as_str());
        assert_eq!(answer["username"], "ada");
        assert_eq!(answer["aud"], json!([LEDGER]));
        assert_eq!(answer["client_id"], c.billing.id.as_str());
        // The scopes all hops share.
        assert_eq!(answer["scope"], "shop");
        assert_eq!(
            answer["act"],
            json!({"sub": c.billing.id, "act": {"sub": c.orders.id, "act": {"sub": c.gateway.id}}})
        );
        // Each token is for its own hop only.
        assert_eq!(app.introspection_of(&c.billing, &for_ledger).await, json!({"active": false}));
        assert_eq!(app.introspection_of(&c.ledger, &for_billing).await, json!({"active": false}));
        // Never longer-lived than what it came from.
        let origin = app.introspection_of(&c.gateway, &for_gateway).await;
        assert!(answer["exp"].as_i64() <= origin["exp"].as_i64());
    }
}

db_test! {
    async fn revoking_the_origin_grant_revokes_every_token_exchanged_from_it(app: TestApp) {
        let c = chain(&app).await;
        let (for_gateway, refresh, _) = signed_in(&app, &c.web).await;
        let for_orders = exchanged(&app, &c.gateway, &for_gateway, ORDERS).await;
        let for_billing = exchanged(&app, &c.orders, &for_orders, BILLING).await;
        let for_ledger = exchanged(&app, &c.billing, &for_billing, LEDGER).await;
        assert_eq!(app.introspection_of(&c.ledger, &for_ledger).await["active"], true);

        assert_eq!(app.revoke(&c.web, &refresh).await.status(), StatusCode::OK);

        for (rs, token) in [
            (&c.gateway, &for_gateway),
            (&c.orders, &for_orders),
            (&c.billing, &for_billing),
            (&c.ledger, &for_ledger),
        ] {
            assert_eq!(app.introspection_of(rs, token).await, json!({"active": false}));
        }
        // And nothing more can be exchanged from it.
        let response = exchange(&app, &c.orders, &for_orders, &[("resource", BILLING)]).await;
        assert_oauth_error(response, StatusCode::BAD_REQUEST, "invalid_request").await;
    }
}

db_test! {
    async fn exchanges_racing_a_revocation_leave_nothing_active(app: TestApp) {
        let c = chain(&app).await;
        let (for_gateway, refresh, _) = signed_in(&app, &c.web).await;
        let for_orders = exchanged(&app, &c.gateway, &for_gateway, ORDERS).await;
        let exchanges = (0..30).map(|_| exchange(&app, &c.orders, &for_orders, &[("resource", BILLING)]));
        let (responses, revoked) =
            tokio::join!(join_all(exchanges), app.revoke(&c.web, &refresh));
        assert_eq!(revoked.status(), StatusCode::OK);
        let mut issued = 0;
        for response in responses {
            let status = response.status();
            let body: serde_json::Value = response.json().await.unwrap();
            match status {
                StatusCode::OK => {
                    issued += 1;
                    let token = body["access_token"].as_str().unwrap();
                    assert_eq!(app.introspection_of(&c.billing, token).await, json!({"active": false}));
                }
                StatusCode::BAD_REQUEST => assert_eq!(body["error"], "invalid_request"),
                other => panic!("unexpected {other}: {body}"),
            }
        }
        println!("{issued} of 30 exchanges were issued before the revocation");
    }
}

db_test! {
    async fn the_exchange_policy_is_enforced_with_rfc_8693_errors(app: TestApp) {
        let c = chain(&app).await;
        let (for_gateway, refresh, _) = signed_in(&app, &c.web).await;
        let refused = async |actor: &TestClient, subject: &str, extra: &[(&str, &str)], error: &str| {
            let response = exchange(&app, actor, subject, extra).await;
            assert_oauth_error(response, StatusCode::BAD_REQUEST, error).await;
        };
        // Orders did not receive this token: it is meant for the gateway.
        refused(&c.orders, &for_gateway, &[("resource", BILLING)], "invalid_request").await;
        // The gateway may exchange only towards orders.
        refused(&c.gateway, &for_gateway, &[("resource", BILLING)], "invalid_target").await;
        refused(&c.gateway, &for_gateway, &[("resource", "https://unknown.example")], "invalid_target").await;
        refused(&c.gateway, &for_gateway, &[("resource", "not-a-uri")], "invalid_target").await;
        refused(&c.gateway, &for_gateway, &[], "invalid_target").await;
        // orders:write is allowed at orders, but the subject token does not carry it.
        refused(&c.gateway, &for_gateway, &[("resource", ORDERS), ("scope", "orders:write")], "invalid_scope").await;
        // A refresh token is no subject token, nor is garbage.
        refused(&c.gateway, &refresh, &[("resource", ORDERS)], "invalid_request").await;
        refused(&c.gateway, "garbage", &[("resource", ORDERS)], "invalid_request").await;
        let with_actor = [("resource", ORDERS), ("actor_token", "x"), ("actor_token_type", ACCESS_TOKEN)];
        refused(&c.gateway, &for_gateway, &with_actor, "invalid_request").await;
        // The web app is not registered for the grant type.
        refused(&c.web, &for_gateway, &[("resource", ORDERS)], "unauthorized_client").await;
        // `audience` names a resource as well as `resource` does.
        let response = exchange(&app, &c.gateway, &for_gateway, &[("audience", ORDERS)]).await;
        assert_eq!(response.status(), StatusCode::OK);
        let metadata = app.get_json("/.well-known/oauth-authorization-server").await;
        assert!(metadata["grant_types_supported"].as_array().unwrap().contains(&json!(EXCHANGE)));
    }
}

db_test_with! {
    |settings| settings.token_exchange.max_chain_depth = 2,
    async fn the_actor_chain_is_bounded(app: TestApp) {
        let c = chain(&app).await;
        let (for_gateway, _, _) = signed_in(&app, &c.web).await;
        let for_orders = exchanged(&app, &c.gateway, &for_gateway, ORDERS).await;
        let for_billing = exchanged(&app, &c.orders, &for_orders, BILLING).await;
        let response = exchange(&app, &c.billing, &for_billing, &[("resource", LEDGER)]).await;
        assert_oauth_error(response, StatusCode::BAD_REQUEST, "invalid_request").await;
    }
}

db_test! {
    async fn a_client_tokens_subject_stays_the_client_it_was_issued_to(app: TestApp) {
        let c = chain(&app).await;
        let checkout = app.register(ClientSpec::default()).await;
        app.allow_resource(&checkout, GATEWAY, None).await;
        let token = app.issue_token_for(&checkout, GATEWAY).await;
        let for_orders = exchanged(&app, &c.gateway, &token, ORDERS).await;
        let answer = app.introspection_of(&c.orders, &for_orders).await;
        assert_eq!(answer["sub"], checkout.id.as_str());
        assert_eq!(answer["client_id"], c.gateway.id.as_str());
        assert!(answer.get("username").is_none());
        assert_eq!(answer["act"], json!({"sub": c.gateway.id}));
    }
}

db_test_with! {
    |settings| settings.token_exchange.require_subject_audience = false,
    async fn without_the_audience_rule_any_active_token_may_be_exchanged(app: TestApp) {
        let c = chain(&app).await;
        let (for_gateway, _, _) = signed_in(&app, &c.web).await;
        // Orders never received this token, but the deployment allows it.
        let response = exchange(&app, &c.orders, &for_gateway, &[("resource", BILLING)]).await;
        assert_eq!(response.status(), StatusCode::OK);
    }
}
