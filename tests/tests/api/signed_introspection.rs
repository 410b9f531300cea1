//! Signed introspection answers (RFC 9701), checked by an independent JOSE implementation
//! (jwt-simple, not the jsonwebtoken crate Umbra signs with) against Umbra's `/jwks.json`.
use futures_util::future::join_all;
use jwt_simple::prelude::*;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::collections::HashSet;
use std::time::Duration;
use umbra::keys::SigningAlg;
use umbra_tests::{TestApp, TestClient, assert_oauth_error};

const JWT: &str = "application/token-introspection+jwt";

/// What the independent library found in a signed answer.
struct Verified {
    alg: String,
    kid: String,
    iss: String,
    aud: String,
    iat: i64,
    token_introspection: Value,
}

#[derive(Serialize, Deserialize)]
struct AnswerClaims {
    token_introspection: Value,
}

/// Verifies `jwt` with jwt-simple against the key of its `kid` in `jwks`, requiring the
/// RFC 9701 `typ`, Umbra's issuer, `rs` as the audience and an `iat` within a minute.
fn verify(jwks: &Value, jwt: &str, issuer: &str, rs: &TestClient) -> Verified {
    let metadata = Token::decode_metadata(jwt).expect("a JWS");
    let kid = metadata.key_id().expect("a kid").to_owned();
    let jwk = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == kid.as_str())
        .unwrap_or_else(|| panic!("kid {kid} is not in the JWKS {jwks}"))
        .to_string();
    let options = VerificationOptions {
        required_signature_type: Some("token-introspection+jwt".into()),
        required_key_id: Some(kid.clone()),
        allowed_issuers: Some(HashSet::from([issuer.to_owned()])),
        allowed_audiences: Some(HashSet::from([rs.id.clone()])),
        time_tolerance: Some(jwt_simple::prelude::Duration::from_secs(60)),
        max_validity: Some(jwt_simple::prelude::Duration::from_secs(60)),
        ..VerificationOptions::default()
    };
    let claims: JWTClaims<AnswerClaims> = match metadata.algorithm() {
        "RS256" => RS256PublicKey::from_jwk(&jwk)
            .unwrap()
            .verify_token(jwt, Some(options)),
        "ES256" => ES256PublicKey::from_jwk(&jwk)
            .unwrap()
            .verify_token(jwt, Some(options)),
        "EdDSA" => Ed25519PublicKey::from_jwk(&jwk)
            .unwrap()
            .verify_token(jwt, Some(options)),
        other => panic!("unexpected alg {other}"),
    }
    .expect("the answer verifies");
    // RFC 9701 §5: no `sub` and no `exp` at the top level, so it cannot pass for a token.
    assert!(claims.subject.is_none() && claims.expires_at.is_none());
    let aud = match claims.audiences.expect("an aud") {
        Audiences::AsString(aud) => aud,
        Audiences::AsSet(set) => panic!("one audience expected, got {set:?}"),
    };
    Verified {
        alg: metadata.algorithm().to_owned(),
        kid,
        iss: claims.issuer.expect("an iss"),
        aud,
        iat: claims.issued_at.expect("an iat").as_secs() as i64,
        token_introspection: claims.custom.token_introspection,
    }
}

async fn jwks(app: &TestApp) -> Value {
    app.get_json("/jwks.json").await
}

/// `POST /introspect` as `rs` with `accept` (none when `None`).
async fn introspect_accepting(
    app: &TestApp,
    rs: &TestClient,
    token: &str,
    accept: Option<&str>,
) -> reqwest::Response {
    let mut request = app
        .http
        .post(app.url("/introspect"))
        .basic_auth(&rs.id, rs.secret.as_deref())
        .form(&[("token", token)]);
    if let Some(accept) = accept {
        request = request.header("accept", accept);
    }
    request.send().await.unwrap()
}

/// The signed answer about `token` for `rs`, checked to be one (status, media type, no-store).
async fn signed_answer(app: &TestApp, rs: &TestClient, token: &str) -> String {
    let response = introspect_accepting(app, rs, token, Some(JWT)).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], JWT);
    assert_eq!(response.headers()["cache-control"], "no-store");
    response.text().await.unwrap()
}

async fn signing_algs(app: &TestApp) -> Value {
    app.get_json("/.well-known/oauth-authorization-server")
        .await["introspection_signing_alg_values_supported"]
        .clone()
}

db_test! {
    async fn a_registered_resource_server_gets_the_json_answer_signed_for_it_active_or_not(app: TestApp) {
        let client = app.service_client("read write").await;
        let rs = app.signed_resource_server(SigningAlg::Rs256).await;
        let token = app.issue_token(&client).await;
        let issuer = app.settings.server.issuer.as_str();

        let active = signed_answer(&app, &rs, &token).await;
        let inactive = signed_answer(&app, &rs, "at_unknown").await;

        let keys = jwks(&app).await;
        let active = verify(&keys, &active, issuer, &rs);
        assert_eq!(active.alg, "RS256");
        assert_eq!((active.iss.as_str(), active.aud.as_str()), (issuer, rs.id.as_str()));
        assert!((active.iat - umbra::clock::now()).abs() < 60);
        // One decision, two renderings: the JWT carries exactly the JSON answer.
        let json = app.introspection_of(&rs, &token).await;
        assert_eq!(json["active"], true);
        assert_eq!(json["scope"], "read write");
        assert_eq!(active.token_introspection, json);
        let inactive = verify(&keys, &inactive, issuer, &rs);
        assert_eq!(inactive.token_introspection, json!({"active": false}));
    }
}

db_test! {
    async fn each_algorithm_signs_with_a_key_of_its_own_and_the_metadata_lists_those_that_can(app: TestApp) {
        let client = app.service_client("read").await;
        let token = app.issue_token(&client).await;
        let issuer = app.settings.server.issuer.as_str();
        assert_eq!(signing_algs(&app).await, json!(["RS256"]));

        let mut kids = HashSet::new();
        for (alg, name) in [
            (SigningAlg::Rs256, "RS256"),
            (SigningAlg::Es256, "ES256"),
            (SigningAlg::EdDsa, "EdDSA"),
        ] {
            if alg != SigningAlg::Rs256 {
                // Made by the CLI's code path: the running app re-reads the keys when it has
                // no key of the algorithm a signature needs.
                app.rotate_signing_key(alg).await;
            }
            let rs = app.signed_resource_server(alg).await;

            let jwt = signed_answer(&app, &rs, &token).await;

            let verified = verify(&jwks(&app).await, &jwt, issuer, &rs);
            assert_eq!(verified.alg, name);
            assert_eq!(verified.token_introspection["client_id"], client.id.as_str());
            assert!(kids.insert(verified.kid), "{name} has a key of its own");
        }
        assert_eq!(signing_algs(&app).await, json!(["RS256", "ES256", "EdDSA"]));
    }
}

db_test_with! {
    |settings| settings.keys.refresh_secs = 1,
    async fn a_key_rotation_in_the_middle_leaves_earlier_answers_verifiable_and_signs_later_ones_with_the_new_key(app: TestApp) {
        let client = app.service_client("read").await;
        let rs = app.signed_resource_server(SigningAlg::Rs256).await;
        let token = app.issue_token(&client).await;
        let issuer = app.settings.server.issuer.as_str();
        let before = signed_answer(&app, &rs, &token).await;
        let old_kid = verify(&jwks(&app).await, &before, issuer, &rs).kid;

        let new_kid = app.rotate_signing_key(SigningAlg::Rs256).await;
        // Requests keep being answered while the running app learns of the rotation (within
        // keys.refresh_secs): each answer is signed by the old key or the new one.
        let mut during = Vec::new();
        let deadline = std::time::Instant::now() + Duration::from_secs(15);
        loop {
            let batch = join_all((0..10).map(|_| signed_answer(&app, &rs, &token))).await;
            let done = batch
                .iter()
                .any(|jwt| Token::decode_metadata(jwt).unwrap().key_id() == Some(new_kid.as_str()));
            during.extend(batch);
            if done {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "the new key never signed");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let after = signed_answer(&app, &rs, &token).await;

        let keys = jwks(&app).await;
        let published: Vec<&str> = keys["keys"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|k| k["kid"].as_str())
            .collect();
        assert!(published.contains(&old_kid.as_str()), "the retired key stays published");
        assert!(published.contains(&new_kid.as_str()));
        assert_eq!(verify(&keys, &before, issuer, &rs).kid, old_kid);
        for jwt in &during {
            let kid = verify(&keys, jwt, issuer, &rs).kid;
            assert!(kid == old_kid || kid == new_kid, "{kid}");
        }
        let after = verify(&keys, &after, issuer, &rs);
        assert_eq!(after.kid, new_kid);
        assert_eq!(after.token_introspection["active"], true);
    }
}

db_test! {
    async fn a_client_not_registered_for_signed_answers_that_asks_only_for_one_gets_406(app: TestApp) {
        let client = app.service_client("read").await;
        let rs = app.resource_server().await;
        let token = app.issue_token(&client).await;

        for accept in [JWT, "application/token-introspection+jwt, application/json;q=0"] {
            let response = introspect_accepting(&app, &rs, &token, Some(accept)).await;
            let body = assert_oauth_error(response, StatusCode::NOT_ACCEPTABLE, "invalid_request").await;
            assert!(body["error_description"].as_str().unwrap().contains("application/json"), "{body}");
        }
        // One that also takes JSON gets the RFC 7662 answer.
        let response = introspect_accepting(
            &app, &rs, &token, Some("application/token-introspection+jwt, application/json;q=0.5"),
        )
        .await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["content-type"], "application/json");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["active"], true);
    }
}

db_test! {
    async fn a_registered_client_that_asks_for_json_or_nothing_in_particular_gets_json(app: TestApp) {
        let client = app.service_client("read").await;
        let rs = app.signed_resource_server(SigningAlg::Rs256).await;
        let token = app.issue_token(&client).await;

        for accept in [
            None,
            Some("application/json"),
            Some("*/*"),
            Some("application/*"),
            Some("application/token-introspection+jwt;q=0"),
            Some("application/token-introspection+jwt;q=0.2, application/json"),
        ] {
            let response = introspect_accepting(&app, &rs, &token, accept).await;

            assert_eq!(response.status(), StatusCode::OK, "{accept:?}");
            assert_eq!(response.headers()["content-type"], "application/json", "{accept:?}");
            let body: Value = response.json().await.unwrap();
            assert_eq!(body["active"], true, "{accept:?}");
        }
    }
}

db_test! {
    async fn a_signed_answer_is_addressed_to_the_caller_and_shows_only_what_it_may_see(app: TestApp) {
        // Two resource servers registered for signed answers; the token is for the first's
        // resource only.
        let orders_rs = app.signed_resource_server(SigningAlg::Rs256).await;
        let billing_rs = app.signed_resource_server(SigningAlg::Rs256).await;
        app.create_resource("https://orders.example", "orders:read", &[&orders_rs]).await;
        app.create_resource("https://billing.example", "billing:read", &[&billing_rs]).await;
        let client = app.service_client("").await;
        app.allow_resource(&client, "https://orders.example", None).await;
        let token = app.issue_token_for(&client, "https://orders.example").await;
        let issuer = app.settings.server.issuer.as_str();

        let for_orders = signed_answer(&app, &orders_rs, &token).await;
        let for_billing = signed_answer(&app, &billing_rs, &token).await;

        let keys = jwks(&app).await;
        let for_orders = verify(&keys, &for_orders, issuer, &orders_rs);
        assert_eq!(for_orders.token_introspection["aud"], json!(["https://orders.example"]));
        let for_billing = verify(&keys, &for_billing, issuer, &billing_rs);
        assert_eq!(for_billing.token_introspection, json!({"active": false}));
        assert_eq!(for_billing.aud, billing_rs.id);
    }
}
