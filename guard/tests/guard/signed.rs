//! Signed introspection answers (RFC 9701): the guard verifies Umbra's against its JWKS, keeps
//! verifying across a key rotation, and refuses every forgery a fake endpoint can make.
use crate::support::{Api, FakeUmbra, ISSUER, Logs, NOTES, Umbra, refusal};
use futures_util::future::join_all;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use std::time::Duration;
use tracing::instrument::WithSubscriber;
use umbra::keys::SigningAlg;
use umbra::keys::material;
use umbra::oauth::token::{Token, TokenKind};
use umbra_guard::{GuardError, Introspector, Unavailable};

/// A key pair that signs answers as Umbra would, or as a forger does.
struct Signer {
    alg: SigningAlg,
    kid: String,
    key: EncodingKey,
    jwk: Value,
}

impl Signer {
    fn new(alg: SigningAlg) -> Self {
        let generated = material::generate(alg).unwrap();
        Self {
            alg,
            kid: generated.kid.clone(),
            key: material::encoding_key(alg, &generated.pkcs8).unwrap(),
            jwk: serde_json::to_value(&generated.public_jwk).unwrap(),
        }
    }

    fn header(&self) -> Header {
        let mut header = Header::new(self.alg.jws());
        header.kid = Some(self.kid.clone());
        header.typ = Some("token-introspection+jwt".into());
        header
    }

    fn sign(&self, claims: &Value) -> String {
        self.sign_with(self.header(), claims)
    }

    fn sign_with(&self, header: Header, claims: &Value) -> String {
        jsonwebtoken::encode(&header, claims, &self.key).unwrap()
    }
}

fn jwks(keys: &[&Signer]) -> Value {
    json!({"keys": keys.iter().map(|k| k.jwk.clone()).collect::<Vec<_>>()})
}

fn now() -> i64 {
    umbra::clock::now()
}

/// The claims of a genuine answer to the fake's resource server `rs` about `token`.
fn claims_about(token: &str) -> Value {
    let mut answer = FakeUmbra::active_answer("read", now() + 600);
    answer["jti"] = public_id(token).into();
    json!({"iss": ISSUER, "aud": "rs", "iat": now(), "token_introspection": answer})
}

/// Umbra's `jti` for `token`.
fn public_id(token: &str) -> String {
    umbra::oauth::token::parse(token).unwrap().hash.public_id()
}

fn new_token() -> String {
    Token::generate(TokenKind::AccessToken)
        .unwrap()
        .into_string()
}

fn signed_introspector(fake: &FakeUmbra) -> Introspector {
    fake.introspector()
        .issuer(ISSUER)
        .resource(NOTES)
        .signed_answers()
        .build()
        .unwrap()
}

fn base64url(value: &Value) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(value.to_string())
}

/// Asserts the guard refused `token` because the answer is not one it may believe.
async fn assert_unverified(introspector: &Introspector, token: &str, case: &str) {
    match introspector.introspect(token).await {
        Err(GuardError::Unavailable(
            Unavailable::Unverified(_) | Unavailable::InvalidAnswer(_) | Unavailable::Jwks(_),
        )) => {}
        other => panic!("{case}: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn umbras_signed_answers_verify_for_each_algorithm_and_a_good_token_passes() {
    let umbra = Umbra::signed(SigningAlg::Rs256, |_| {}).await;
    let issuer = umbra.app.settings.server.issuer.clone();
    let (client, token) = umbra.token("read write", "read").await;
    let unknown = new_token();

    for alg in [SigningAlg::Rs256, SigningAlg::Es256, SigningAlg::EdDsa] {
        if alg != SigningAlg::Rs256 {
            umbra.app.rotate_signing_key(alg).await;
        }
        let rs = umbra.app.signed_resource_server(alg).await;
        let introspector = umbra
            .introspector_for(&rs)
            .issuer(issuer.clone())
            .signed_answers()
            .build()
            .unwrap();

        let validated = introspector.introspect(&token).await.unwrap();
        assert_eq!(validated.client_id, client.id, "{alg}");
        assert!(validated.has_scope("read"));
        assert!(
            matches!(
                introspector.introspect(&unknown).await,
                Err(GuardError::Inactive)
            ),
            "{alg}: a signed inactive answer is believed too"
        );
    }
    let api = Api::start(Some(
        umbra
            .introspector()
            .issuer(issuer)
            .signed_answers()
            .build()
            .unwrap(),
    ));
    let response = api.get_with("/read", &token).await;
    assert_eq!(response.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resource_server_not_registered_for_signed_answers_is_refused_and_told_how_to_fix_it() {
    let umbra = Umbra::start().await;
    let (_, token) = umbra.token("read", "read").await;
    let introspector = umbra.introspector().signed_answers().build().unwrap();
    let logs = Logs::default();

    let result = introspector
        .introspect(&token)
        .with_subscriber(logs.subscriber())
        .await;

    match result {
        Err(GuardError::Unavailable(Unavailable::Unverified(why))) => {
            assert!(why.contains("introspection-signing"), "{why}");
        }
        other => panic!("{other:?}"),
    }
    assert!(
        logs.text().contains("introspection-signing"),
        "{}",
        logs.text()
    );
    let api = Api::start(Some(introspector));
    let (status, _, error) = refusal(api.get_with("/read", &token).await).await;
    assert_eq!((status, error.as_str()), (503, "temporarily_unavailable"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_rotation_in_the_middle_never_makes_the_guard_refuse_a_good_token() {
    let umbra = Umbra::signed(SigningAlg::Rs256, |s| s.keys.refresh_secs = 1).await;
    let issuer = umbra.app.settings.server.issuer.clone();
    let (_, token) = umbra.token("read", "read").await;
    let introspector = umbra
        .introspector()
        .issuer(issuer)
        .signed_answers()
        .build()
        .unwrap();
    introspector.introspect(&token).await.unwrap();

    let new_kid = umbra.app.rotate_signing_key(SigningAlg::Rs256).await;
    // Until the running app re-reads its keys it signs with the old one; from then on with
    // the new one, which the guard has not seen: it fetches the key set again and goes on.
    let deadline = std::time::Instant::now() + Duration::from_secs(3);
    while std::time::Instant::now() < deadline {
        let results = join_all((0..5).map(|_| introspector.introspect(&token))).await;
        for result in results {
            result.unwrap();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let answer = umbra
        .app
        .http
        .post(umbra.app.url("/introspect"))
        .basic_auth(&umbra.rs.id, umbra.rs.secret.as_deref())
        .header("accept", "application/token-introspection+jwt")
        .form(&[("token", token.as_str())])
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(
        jsonwebtoken::decode_header(&answer).unwrap().kid,
        Some(new_kid),
        "the answers the guard verified last were signed by the new key"
    );
    introspector.introspect(&token).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_signed_by_the_published_key_with_every_claim_right_passes() {
    let fake = FakeUmbra::start();
    let key = Signer::new(SigningAlg::Es256);
    fake.publish(jwks(&[&key]));
    let token = new_token();
    fake.answer_signed(&key.sign(&claims_about(&token)));

    let validated = signed_introspector(&fake).introspect(&token).await.unwrap();

    assert_eq!(validated.sub, "user-1");
    assert_eq!(
        fake.last_accept().as_deref(),
        Some("application/token-introspection+jwt")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_tampered_misaddressed_and_replayed_answers_are_refused() {
    let fake = FakeUmbra::start();
    let key = Signer::new(SigningAlg::Rs256);
    let other = Signer::new(SigningAlg::Rs256);
    let unpublished = Signer::new(SigningAlg::EdDsa);
    fake.publish(jwks(&[&key]));
    let token = new_token();
    let good = claims_about(&token);
    let with = |member: &str, value: Value| {
        let mut claims = good.clone();
        claims[member] = value;
        claims
    };
    let without = |member: &str| {
        let mut claims = good.clone();
        claims.as_object_mut().unwrap().remove(member);
        claims
    };
    let header = |edit: &dyn Fn(&mut Header)| {
        let mut header = key.header();
        edit(&mut header);
        header
    };
    let mut another_tokens_answer = good["token_introspection"].clone();
    another_tokens_answer["jti"] = public_id(&new_token()).into();
    let mut no_jti = good["token_introspection"].clone();
    no_jti.as_object_mut().unwrap().remove("jti");
    let genuine = key.sign(&good);
    let tampered = {
        let parts: Vec<&str> = genuine.split('.').collect();
        let mut claims = good.clone();
        claims["token_introspection"]["scope"] = "read write admin".into();
        format!("{}.{}.{}", parts[0], base64url(&claims), parts[2])
    };
    let none = format!(
        "{}.{}.",
        base64url(&json!({"alg": "none", "typ": "token-introspection+jwt", "kid": key.kid})),
        base64url(&good)
    );
    // The classic confusion: HS256 keyed with what the JWKS publishes.
    let hs256 = jsonwebtoken::encode(
        &header(&|h| h.alg = Algorithm::HS256),
        &good,
        &EncodingKey::from_secret(key.jwk.to_string().as_bytes()),
    )
    .unwrap();

    let cases: Vec<(&str, String)> = vec![
        ("signed by another key under the published kid", {
            let mut h = other.header();
            h.kid = Some(key.kid.clone());
            other.sign_with(h, &good)
        }),
        (
            "signed by a key the JWKS does not publish",
            unpublished.sign(&good),
        ),
        ("tampered after signing", tampered),
        ("alg none", none),
        ("HS256 keyed with the public key", hs256),
        (
            "another audience",
            key.sign(&with("aud", "other-rs".into())),
        ),
        ("no audience", key.sign(&without("aud"))),
        (
            "another issuer",
            key.sign(&with("iss", "http://evil.test".into())),
        ),
        ("no issuer", key.sign(&without("iss"))),
        (
            "typ JWT",
            key.sign_with(header(&|h| h.typ = Some("JWT".into())), &good),
        ),
        (
            "typ at+jwt",
            key.sign_with(header(&|h| h.typ = Some("at+jwt".into())), &good),
        ),
        ("no typ", key.sign_with(header(&|h| h.typ = None), &good)),
        ("no kid", key.sign_with(header(&|h| h.kid = None), &good)),
        (
            "issued ten minutes ago (replayed)",
            key.sign(&with("iat", (now() - 600).into())),
        ),
        (
            "issued ten minutes ahead",
            key.sign(&with("iat", (now() + 600).into())),
        ),
        ("no iat", key.sign(&without("iat"))),
        (
            "an answer about another token",
            key.sign(&with("token_introspection", another_tokens_answer)),
        ),
        (
            "an active answer without jti",
            key.sign(&with("token_introspection", no_jti)),
        ),
        (
            "no token_introspection",
            key.sign(&without("token_introspection")),
        ),
        (
            "token_introspection not an object",
            key.sign(&with("token_introspection", "active".into())),
        ),
        ("not a JWS", "active".into()),
    ];
    let introspector = signed_introspector(&fake);
    for (case, jwt) in &cases {
        fake.answer_signed(jwt);
        assert_unverified(&introspector, &token, case).await;
    }
    // And the untouched answer passes, so every refusal above is the change's doing.
    fake.answer_signed(&genuine);
    introspector.introspect(&token).await.unwrap();

    // A plain JSON answer, however right, is not a signed one.
    let mut json_answer = good["token_introspection"].clone();
    json_answer["jti"] = public_id(&token).into();
    fake.answer(200, json_answer);
    assert_unverified(&introspector, &token, "unsigned JSON").await;

    // Through the protected app: 503, never a pass.
    fake.answer_signed(&key.sign(&with("aud", "other-rs".into())));
    let api = Api::start(Some(introspector));
    let (status, _, error) = refusal(api.get_with("/me", &token).await).await;
    assert_eq!((status, error.as_str()), (503, "temporarily_unavailable"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_set_that_offers_an_hmac_secret_or_nothing_verifies_nothing() {
    let fake = FakeUmbra::start();
    let key = Signer::new(SigningAlg::Rs256);
    let token = new_token();
    let good = claims_about(&token);
    let secret = b"a shared secret of thirty-two by";
    fake.publish(json!({"keys": [
        {"kty": "oct", "kid": "hmac", "k": base64url_bytes(secret)},
        key.jwk,
    ]}));
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some("hmac".into());
    header.typ = Some("token-introspection+jwt".into());
    fake.answer_signed(
        &jsonwebtoken::encode(&header, &good, &EncodingKey::from_secret(secret)).unwrap(),
    );
    let introspector = signed_introspector(&fake);
    assert_unverified(&introspector, &token, "HS256 with a published oct key").await;
    let mut header = key.header();
    header.kid = Some("hmac".into());
    fake.answer_signed(&key.sign_with(header, &good));
    assert_unverified(&introspector, &token, "RS256 naming the oct key").await;

    // A key set that cannot be fetched.
    fake.publish(Value::Null);
    fake.answer_signed(&key.sign(&good));
    let introspector = signed_introspector(&fake);
    match introspector.introspect(&token).await {
        Err(GuardError::Unavailable(Unavailable::Jwks(why))) => {
            assert!(why.contains("404"), "{why}")
        }
        other => panic!("{other:?}"),
    }
}

fn base64url_bytes(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_kid_fetches_the_key_set_again_and_no_more_than_once_a_second() {
    let fake = FakeUmbra::start();
    let old = Signer::new(SigningAlg::EdDsa);
    let new = Signer::new(SigningAlg::EdDsa);
    fake.publish(jwks(&[&old]));
    let token = new_token();
    let introspector = signed_introspector(&fake);
    fake.answer_signed(&old.sign(&claims_about(&token)));
    introspector.introspect(&token).await.unwrap();
    assert_eq!(fake.jwks_hits(), 1);
    introspector.introspect(&token).await.unwrap();
    assert_eq!(fake.jwks_hits(), 1, "a known kid is served from the cache");

    // Forty answers under a kid nobody publishes, at once: all refused, within about the
    // one-second spacing of fetches, and no more than one fetch per second for the lot.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    fake.answer_signed(&new.sign(&claims_about(&token)));
    let started = std::time::Instant::now();
    let results = join_all((0..40).map(|_| introspector.introspect(&token))).await;
    let elapsed = started.elapsed();
    assert!(results.iter().all(Result::is_err));
    let hits = fake.jwks_hits();
    assert!(hits >= 2, "the unknown kid made the set fetched again");
    assert!(
        hits - 1 <= 1 + elapsed.as_secs() as usize,
        "{hits} fetches in {elapsed:?}"
    );
    assert!(elapsed < Duration::from_secs(10), "{elapsed:?}");

    // Umbra publishes the new key (as a rotation does): the next fetch finds it.
    fake.publish(jwks(&[&old, &new]));
    tokio::time::sleep(Duration::from_millis(1100)).await;
    introspector.introspect(&token).await.unwrap();
    assert_eq!(fake.jwks_hits(), hits + 1);

    // A key dropped from the set (its signatures expired) verifies nothing for a guard that
    // reads the set afresh.
    fake.publish(jwks(&[&new]));
    fake.answer_signed(&old.sign(&claims_about(&token)));
    assert_unverified(&signed_introspector(&fake), &token, "a dropped key").await;
}
