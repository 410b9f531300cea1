//! Issue 9 item 6: a guard given its resource identifier refuses tokens that are not meant for
//! it (RFC 8707, RFC 9700 §2.3), a guard given its issuer refuses answers from anyone else,
//! the caches never let either check be skipped, and a delegated token shows its `act` chain.
use crate::support::{Api, FakeUmbra, ISSUER, Logs, NOTES, Umbra};
use serde_json::{Value, json};
use std::time::Duration;
use tracing::instrument::WithSubscriber;
use umbra_guard::{CacheSettings, GuardError, Introspector};
use umbra_tests::Backend;

const BILLING: &str = "https://billing.example.test";
const TOKEN: &str = "at_a_token_the_guard_must_never_echo";

/// A fake Umbra giving the answer Umbra gives for [`NOTES`], with `edit` applied.
fn fake_answering(edit: impl FnOnce(&mut Value)) -> FakeUmbra {
    let fake = FakeUmbra::start();
    let mut answer = FakeUmbra::active_answer("read", umbra::clock::now() + 600);
    edit(&mut answer);
    fake.answer(200, answer);
    fake
}

fn guarding_notes(fake: &FakeUmbra) -> Introspector {
    fake.introspector().resource(NOTES).build().unwrap()
}

/// Status, `WWW-Authenticate`, and the whole body of a refusal, after checking that neither
/// echoes the token.
async fn refused(response: reqwest::Response) -> (u16, String, Value) {
    let status = response.status().as_u16();
    let challenge = response.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned();
    let body = response.text().await.unwrap();
    assert!(!challenge.contains(TOKEN) && !body.contains(TOKEN));
    (status, challenge, serde_json::from_str(&body).unwrap())
}

fn assert_not_for_this_resource((status, challenge, body): (u16, String, Value)) {
    assert_eq!(status, 401);
    assert_eq!(body["error"], "invalid_token");
    assert_eq!(
        body["error_description"],
        "the access token is not meant for this resource"
    );
    assert_eq!(
        challenge,
        r#"Bearer realm="umbra", error="invalid_token", error_description="the access token is not meant for this resource""#
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_for_another_resource_is_refused_with_401_invalid_token() {
    let fake = fake_answering(|answer| answer["aud"] = json!([BILLING]));
    let api = Api::start(Some(guarding_notes(&fake)));

    for path in ["/me", "/read"] {
        assert_not_for_this_resource(refused(api.get_with(path, TOKEN).await).await);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_without_aud_is_refused_when_a_resource_is_configured() {
    let without = |answer: &mut Value| {
        answer.as_object_mut().unwrap().remove("aud");
    };
    // Umbra before resources named the client the token was issued to.
    let the_client = |answer: &mut Value| answer["aud"] = json!("app");
    let empty = |answer: &mut Value| answer["aud"] = json!([]);
    for edit in [&without as &dyn Fn(&mut Value), &the_client, &empty] {
        let fake = fake_answering(edit);
        let api = Api::start(Some(guarding_notes(&fake)));

        assert_not_for_this_resource(refused(api.get_with("/read", TOKEN).await).await);

        // The same answer passes a guard that protects no particular resource.
        let unbound = Api::start(Some(fake.introspector().build().unwrap()));
        assert_eq!(unbound.get_with("/read", TOKEN).await.status(), 200);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_audience_that_includes_the_resource_is_accepted_as_an_array_or_a_string() {
    for aud in [json!([NOTES]), json!([BILLING, NOTES]), json!(NOTES)] {
        let fake = fake_answering(|answer| answer["aud"] = aud.clone());
        let api = Api::start(Some(guarding_notes(&fake)));

        let response = api.get_with("/read", TOKEN).await;

        assert_eq!(response.status(), 200, "{aud}");
        let me: Value = response.json().await.unwrap();
        let expected = match &aud {
            Value::String(one) => json!([one]),
            many => many.clone(),
        };
        assert_eq!(me["aud"], expected);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn any_of_several_resource_identifiers_will_do() {
    let fake = fake_answering(|answer| answer["aud"] = json!(["urn:example:notes"]));
    let introspector = fake
        .introspector()
        .resource(NOTES)
        .resource("urn:example:notes")
        .build()
        .unwrap();

    assert!(introspector.introspect(TOKEN).await.is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_or_missing_issuer_is_refused_and_logged_when_an_issuer_is_configured() {
    let other = |answer: &mut Value| answer["iss"] = json!("http://evil.test");
    let missing = |answer: &mut Value| {
        answer.as_object_mut().unwrap().remove("iss");
    };
    for edit in [&other as &dyn Fn(&mut Value), &missing] {
        let fake = fake_answering(edit);
        let introspector = fake.introspector().issuer(ISSUER).build().unwrap();
        let api = Api::start(Some(introspector.clone()));
        let logs = Logs::default();

        let result = introspector
            .introspect(TOKEN)
            .with_subscriber(logs.subscriber())
            .await;
        let (status, challenge, body) = refused(api.get_with("/read", TOKEN).await).await;

        assert!(matches!(result, Err(GuardError::WrongIssuer)), "{result:?}");
        assert_eq!(
            (status, body["error"].as_str()),
            (401, Some("invalid_token"))
        );
        assert!(challenge.contains("not issued by the expected authorization server"));
        let logged = logs.text();
        assert!(logged.contains("WARN"), "{logged}");
        assert!(
            logged.contains(ISSUER),
            "names the expected issuer: {logged}"
        );
        assert!(!logged.contains(TOKEN), "never logs the token: {logged}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_right_issuer_and_resource_pass_together() {
    let fake = fake_answering(|_| {});
    let introspector = fake
        .introspector()
        .issuer(ISSUER)
        .resource(NOTES)
        .build()
        .unwrap();
    let api = Api::start(Some(introspector));

    let response = api.get_with("/read", TOKEN).await;

    assert_eq!(response.status(), 200);
    let me: Value = response.json().await.unwrap();
    assert_eq!(me["iss"], ISSUER);
    assert_eq!(me["aud"], json!([NOTES]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_positive_cache_holds_only_answers_meant_for_this_resource() {
    let fake = fake_answering(|answer| answer["aud"] = json!([BILLING]));
    let introspector = fake
        .introspector()
        .resource(NOTES)
        .cache(CacheSettings::new(100, Duration::from_secs(600)))
        .build()
        .unwrap();

    for _ in 0..3 {
        assert!(matches!(
            introspector.introspect(TOKEN).await,
            Err(GuardError::NotForThisResource)
        ));
    }
    assert_eq!(
        fake.hits(),
        3,
        "a refused answer never enters the positive cache"
    );

    fake.answer(
        200,
        FakeUmbra::active_answer("read", umbra::clock::now() + 600),
    );
    for _ in 0..3 {
        assert!(introspector.introspect(TOKEN).await.is_ok());
    }
    assert_eq!(fake.hits(), 4, "an answer for this resource is cached");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_negative_cache_remembers_a_token_for_another_resource_as_such() {
    let fake = fake_answering(|answer| answer["aud"] = json!([BILLING]));
    let introspector = fake
        .introspector()
        .resource(NOTES)
        .cache(CacheSettings::default())
        .negative_cache(CacheSettings::new(100, Duration::from_secs(600)))
        .build()
        .unwrap();
    let api = Api::start(Some(introspector));

    for _ in 0..3 {
        assert_not_for_this_resource(refused(api.get_with("/read", TOKEN).await).await);
    }
    assert_eq!(fake.hits(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_issuer_is_never_cached_and_warned_about_every_time() {
    let fake = fake_answering(|answer| answer["iss"] = json!("http://evil.test"));
    let introspector = fake
        .introspector()
        .issuer(ISSUER)
        .cache(CacheSettings::default())
        .negative_cache(CacheSettings::default())
        .build()
        .unwrap();

    for _ in 0..2 {
        assert!(matches!(
            introspector.introspect(TOKEN).await,
            Err(GuardError::WrongIssuer)
        ));
    }
    fake.answer(
        200,
        FakeUmbra::active_answer("read", umbra::clock::now() + 600),
    );
    let fixed = introspector.introspect(TOKEN).await;

    assert!(fixed.is_ok(), "{fixed:?}");
    assert_eq!(fake.hits(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exchanged_token_shows_the_handler_its_actor_chain() {
    let chain =
        json!({"sub": "billing-caller", "act": {"sub": "orders", "act": {"sub": "gateway"}}});
    let fake = fake_answering(|answer| {
        answer["client_id"] = json!("billing-caller");
        answer["act"] = chain.clone();
    });
    let api = Api::start(Some(guarding_notes(&fake)));

    let response = api.get_with("/read", TOKEN).await;

    assert_eq!(response.status(), 200);
    let me: Value = response.json().await.unwrap();
    assert_eq!(me["sub"], "user-1", "the subject stays the user");
    assert_eq!(me["user"], true);
    assert_eq!(me["client_id"], "billing-caller");
    assert_eq!(me["act"], chain);
    assert_eq!(me["actors"], json!(["billing-caller", "orders", "gateway"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_used_by_its_own_client_has_no_actor() {
    let fake = fake_answering(|_| {});
    let api = Api::start(Some(guarding_notes(&fake)));

    let me: Value = api.get_with("/read", TOKEN).await.json().await.unwrap();

    assert_eq!(me["act"], Value::Null);
    assert_eq!(me["actors"], json!([]));
}

async fn the_real_umbra_passes_a_guard_given_its_issuer_and_no_other(umbra: Umbra) {
    let (_, token) = umbra.token("read", "read").await;
    let issuer = umbra.app.settings.server.issuer.clone();

    let right = umbra.introspector().issuer(issuer).build().unwrap();
    let wrong = umbra
        .introspector()
        .issuer("https://elsewhere.example.test")
        .build()
        .unwrap();

    assert!(right.introspect(&token).await.is_ok());
    assert!(matches!(
        wrong.introspect(&token).await,
        Err(GuardError::WrongIssuer)
    ));
}

async fn a_real_token_issued_without_a_resource_is_refused_by_a_guard_that_protects_one(
    umbra: Umbra,
) {
    let (_, token) = umbra.token("read", "read").await;
    let api = Api::start(Some(umbra.introspector().resource(NOTES).build().unwrap()));
    let unbound = Api::start(Some(umbra.introspector().build().unwrap()));

    let response = api.get_with("/read", &token).await;

    let (status, challenge, body) = refused(response).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_token"))
    );
    assert!(
        challenge.contains("not meant for this resource"),
        "{challenge}"
    );
    assert!(!challenge.contains(&token) && !body.to_string().contains(&token));
    assert_eq!(unbound.get_with("/read", &token).await.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_real_umbra_passes_only_a_guard_given_its_issuer_on_sqlite() {
    the_real_umbra_passes_a_guard_given_its_issuer_and_no_other(Umbra::start().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_real_umbra_passes_only_a_guard_given_its_issuer_on_postgres() {
    if let Some(umbra) = Umbra::on(Backend::Postgres).await {
        the_real_umbra_passes_a_guard_given_its_issuer_and_no_other(umbra).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_token_without_a_resource_is_refused_by_a_bound_guard_on_sqlite() {
    a_real_token_issued_without_a_resource_is_refused_by_a_guard_that_protects_one(
        Umbra::start().await,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_token_without_a_resource_is_refused_by_a_bound_guard_on_postgres() {
    if let Some(umbra) = Umbra::on(Backend::Postgres).await {
        a_real_token_issued_without_a_resource_is_refused_by_a_guard_that_protects_one(umbra).await;
    }
}

/// Against the real Umbra with resources (RFC 8707): the resource server introspects for the
/// notes API; a token meant for it passes a guard bound to it, with its audience; a token
/// meant for another API is refused, first by Umbra's per-caller answer and, were that
/// misconfigured, by the guard's own check.
async fn a_real_token_for_the_guards_resource_passes_and_one_for_another_does_not(umbra: Umbra) {
    const OTHER: &str = "https://other.example.test";
    let other_rs = umbra.app.service_client("").await;
    umbra
        .app
        .create_resource(NOTES, "read write", &[&umbra.rs])
        .await;
    umbra.app.create_resource(OTHER, "read", &[&other_rs]).await;
    let client = umbra.app.service_client("").await;
    umbra.app.allow_resource(&client, NOTES, None).await;
    umbra.app.allow_resource(&client, OTHER, None).await;
    let for_notes = umbra.app.issue_token_for(&client, NOTES).await;
    let for_other = umbra.app.issue_token_for(&client, OTHER).await;
    let issuer = umbra.app.settings.server.issuer.clone();
    let guard = umbra
        .introspector()
        .resource(NOTES)
        .issuer(issuer)
        .build()
        .unwrap();

    let token = guard.introspect(&for_notes).await.expect("meant for notes");
    assert_eq!(token.aud, vec![NOTES.to_owned()]);
    assert_eq!(token.sub, client.id);
    assert!(!token.is_user_token());
    // Umbra answers this resource server `{"active": false}` for it.
    assert!(matches!(
        guard.introspect(&for_other).await,
        Err(GuardError::Inactive)
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_token_for_the_guards_resource_passes_on_sqlite() {
    a_real_token_for_the_guards_resource_passes_and_one_for_another_does_not(Umbra::start().await)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_token_for_the_guards_resource_passes_on_postgres() {
    if let Some(umbra) = Umbra::on(Backend::Postgres).await {
        a_real_token_for_the_guards_resource_passes_and_one_for_another_does_not(umbra).await;
    }
}
