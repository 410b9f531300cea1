//! The guard authenticating its introspection calls with a private key (`private_key_jwt`,
//! RFC 7523) against the real Umbra, which holds only the public key.
use crate::support::{Api, Umbra};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use umbra::keys::{SigningAlg, material};
use umbra::oauth::client::Client;
use umbra::oauth::client_jwks::{ClientJwks, ClientKeys};
use umbra::oauth::grant_type::GrantType;
use umbra_guard::{AssertionAlgorithm, AssertionKey, GuardError, Introspector, Unavailable};
use umbra_tests::Backend;

/// A PKCS#8 PEM document, as `openssl genpkey` writes one.
fn pem(pkcs8: &[u8]) -> String {
    let body = STANDARD.encode(pkcs8);
    let lines: Vec<&str> = body
        .as_bytes()
        .chunks(64)
        .map(|line| std::str::from_utf8(line).unwrap())
        .collect();
    format!(
        "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
        lines.join("\n")
    )
}

fn guard_alg(alg: SigningAlg) -> AssertionAlgorithm {
    match alg {
        SigningAlg::Rs256 => AssertionAlgorithm::Rs256,
        SigningAlg::Es256 => AssertionAlgorithm::Es256,
        SigningAlg::EdDsa => AssertionAlgorithm::EdDsa,
    }
}

/// Registers a resource server that authenticates with a new key of `alg`; returns its id,
/// the private key as the guard is given it, and its kid.
async fn key_resource_server(umbra: &Umbra, alg: SigningAlg) -> (String, AssertionKey, String) {
    let generated = material::generate(alg).unwrap();
    let set = serde_json::json!({ "keys": [generated.public_jwk] });
    let jwks = ClientJwks::parse_registered(&serde_json::to_vec(&set).unwrap()).unwrap();
    let id = format!("rs-{}", uuid::Uuid::new_v4().simple());
    umbra
        .app
        .store
        .create_client(
            Client {
                id: id.clone(),
                name: "Key resource server".into(),
                secret_hash: None,
                redirect_uris: vec![],
                grant_types: vec![GrantType::ClientCredentials],
                scopes: Default::default(),
                can_introspect: true,
                skip_consent: false,
                require_2fa: false,
                assertion_keys: Some(ClientKeys::Inline(jwks)),
                resources: Default::default(),
                introspection_signed_response_alg: None,
                version: 1,
                secret_expires_at: None,
                openid: Default::default(),
            },
            umbra::clock::now(),
        )
        .await
        .unwrap();
    let key = AssertionKey::from_pkcs8_pem(&pem(&generated.pkcs8), guard_alg(alg))
        .unwrap()
        .with_kid(generated.kid.clone());
    (id, key, generated.kid)
}

async fn a_guard_with_a_private_key_introspects_every_call_with_a_new_assertion(umbra: Umbra) {
    let (_, token) = umbra.token("read write", "read").await;
    for alg in SigningAlg::ALL {
        let (id, key, _) = key_resource_server(&umbra, alg).await;
        let introspector =
            Introspector::builder_with_private_key(umbra.app.address.clone(), id, key)
                .build()
                .unwrap();

        // Each call signs a new assertion: a repeated one would be refused as a replay.
        for _ in 0..3 {
            let validated = introspector.introspect(&token).await.unwrap();
            assert!(validated.scopes.contains("read"), "{alg}");
        }
        let api = Api::start(Some(introspector));
        assert_eq!(api.get_with("/read", &token).await.status(), 200, "{alg}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guard_with_a_private_key_introspects_on_sqlite() {
    a_guard_with_a_private_key_introspects_every_call_with_a_new_assertion(Umbra::start().await)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guard_with_a_private_key_introspects_on_postgres() {
    if let Some(umbra) = Umbra::on(Backend::Postgres).await {
        a_guard_with_a_private_key_introspects_every_call_with_a_new_assertion(umbra).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_umbra_does_not_know_is_refused_credentials_not_a_pass() {
    let umbra = Umbra::start().await;
    let (_, token) = umbra.token("read", "read").await;
    let (id, _, kid) = key_resource_server(&umbra, SigningAlg::Es256).await;
    // Another key, presented under the registered key's kid.
    let other = material::generate(SigningAlg::Es256).unwrap();
    let stranger = AssertionKey::from_pkcs8_der(&other.pkcs8, AssertionAlgorithm::Es256)
        .unwrap()
        .with_kid(kid);

    let introspector =
        Introspector::builder_with_private_key(umbra.app.address.clone(), id, stranger)
            .build()
            .unwrap();
    let refused = introspector.introspect(&token).await;

    assert!(
        matches!(
            refused,
            Err(GuardError::Unavailable(Unavailable::CredentialsRefused(
                401
            )))
        ),
        "{refused:?}"
    );
}
