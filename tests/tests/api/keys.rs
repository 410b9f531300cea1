//! Umbra's signing keys: the JWKS, rotation with pre-publication, retirement, and keys
//! encrypted at rest.
use reqwest::StatusCode;
use std::time::{Duration, Instant};
use umbra::keys::{self, SigningAlg};
use umbra_tests::TestApp;

/// The kids of the JWKS the running app serves.
async fn published(app: &TestApp) -> Vec<String> {
    let jwks = app.get_json("/jwks.json").await;
    jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect()
}

/// Waits (up to 10 s) until the running app serves exactly `kids` (in any order).
async fn until_published(app: &TestApp, kids: &[&str]) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut now = published(app).await;
        now.sort();
        let mut want: Vec<String> = kids.iter().map(|k| k.to_string()).collect();
        want.sort();
        if now == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "served {now:?}, expected {want:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// What `umbra keys …` uses: the app's key encryptor and life-cycle rules.
fn parts(
    app: &TestApp,
) -> (
    std::sync::Arc<umbra::auth::secret_box::SecretBox>,
    keys::KeyPolicy,
) {
    umbra::startup::key_parts(&app.settings).unwrap()
}

db_test! {
    async fn a_new_installation_publishes_one_active_rs256_key(app: TestApp) {
        let response = app.http.get(app.url("/jwks.json")).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["content-type"], "application/jwk-set+json");
        let cache = response.headers()["cache-control"].to_str().unwrap().to_owned();
        assert!(cache.starts_with("public, max-age="), "{cache}");
        let jwks: serde_json::Value = response.json().await.unwrap();
        let keys = jwks["keys"].as_array().unwrap();
        assert_eq!(keys.len(), 1, "{jwks}");
        assert_eq!(keys[0]["kty"], "RSA");
        assert_eq!(keys[0]["alg"], "RS256");
        assert_eq!(keys[0]["use"], "sig");
        assert!(keys[0].get("d").is_none(), "no private member: {jwks}");

        let listed = keys::list(&app.store, umbra::clock::now()).await.unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].state, "active");
        assert_eq!(keys[0]["kid"], listed[0].kid.as_str());
        let metadata = app.get_json("/.well-known/oauth-authorization-server").await;
        assert_eq!(metadata["jwks_uri"], app.url("/jwks.json"));
    }
}

db_test_with! {
    |settings| {
        settings.keys.refresh_secs = 1;
        settings.keys.prepublish_secs = 3600;
        settings.keys.publish_retired_secs = 86400;
    },
    async fn a_rotation_publishes_the_new_key_before_it_signs_and_keeps_the_old_one(app: TestApp) {
        let (sealer, policy) = parts(&app);
        let now = umbra::clock::now();
        let first = keys::list(&app.store, now).await.unwrap().remove(0);
        let second = keys::rotate(&app.store, &sealer, &policy, SigningAlg::Rs256, false, now)
            .await
            .unwrap();
        assert_eq!(second.state, "pending");
        assert_eq!(second.activates_at, now + 3600);

        // Every instance re-reads the keys: both are served, the old one still signs.
        until_published(&app, &[&first.kid, &second.kid]).await;
        let listed = keys::list(&app.store, now).await.unwrap();
        let old = listed.iter().find(|k| k.kid == first.kid).unwrap();
        assert_eq!(old.state, "active");
        assert_eq!(old.retired_at, Some(now + 3600), "retires when the new one activates");
        assert_eq!(old.expires_at, Some(now + 3600 + 86400), "published until its signatures expire");
    }
}

db_test_with! {
    |settings| settings.keys.refresh_secs = 1,
    async fn retiring_is_refused_for_the_last_key_and_brings_a_pending_successor_forward(app: TestApp) {
        let (sealer, policy) = parts(&app);
        let now = umbra::clock::now();
        let first = keys::list(&app.store, now).await.unwrap().remove(0);
        let refused = keys::retire(&app.store, &policy, &first.kid, now).await;
        assert!(matches!(refused, Err(keys::KeyError::LastActiveKey { .. })), "{refused:?}");

        let second = keys::rotate(&app.store, &sealer, &policy, SigningAlg::Rs256, false, now)
            .await
            .unwrap();
        assert_eq!(second.state, "pending");
        // A compromise: retire the signing key now; the successor signs at once.
        let retired = keys::retire(&app.store, &policy, &first.kid, now).await.unwrap();
        assert_eq!(retired.state, "retired");
        let listed = keys::list(&app.store, now).await.unwrap();
        let successor = listed.iter().find(|k| k.kid == second.kid).unwrap();
        assert_eq!(successor.state, "active");
        // The retired key stays published for what it signed.
        until_published(&app, &[&first.kid, &second.kid]).await;
        assert!(matches!(
            keys::retire(&app.store, &policy, "no-such-kid", now).await,
            Err(keys::KeyError::UnknownKey(_))
        ));
    }
}

db_test_with! {
    |settings| settings.keys.refresh_secs = 1,
    async fn keys_of_other_algorithms_join_the_jwks_and_expired_ones_leave(app: TestApp) {
        let (sealer, policy) = parts(&app);
        let now = umbra::clock::now();
        let first = keys::list(&app.store, now).await.unwrap().remove(0);
        let es = keys::rotate(&app.store, &sealer, &policy, SigningAlg::Es256, true, now).await.unwrap();
        let ed = keys::rotate(&app.store, &sealer, &policy, SigningAlg::EdDsa, true, now).await.unwrap();
        until_published(&app, &[&first.kid, &es.kid, &ed.kid]).await;
        let jwks = app.get_json("/jwks.json").await;
        let kty: Vec<&str> = jwks["keys"].as_array().unwrap().iter().map(|k| k["kty"].as_str().unwrap()).collect();
        assert!(kty.contains(&"EC") && kty.contains(&"OKP"), "{jwks}");

        // A retired key whose publication ended is dropped.
        app.store.retire_signing_key(&es.kid, now - 10, 5).await.unwrap();
        until_published(&app, &[&first.kid, &ed.kid]).await;
    }
}

db_test! {
    async fn private_keys_are_encrypted_at_rest_with_the_key_encryption_key(app: TestApp) {
        let rows = app.store.live_signing_keys(umbra::clock::now()).await.unwrap();
        let row = &rows[0];
        // A PKCS#8 document starts with a DER SEQUENCE (0x30 0x82 …) and names rsaEncryption;
        // the stored bytes are nonce + AES-GCM ciphertext.
        assert_ne!(&row.private_key[..2], &[0x30, 0x82]);
        let rsa_oid = [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
        assert!(!row.private_key.windows(rsa_oid.len()).any(|w| w == rsa_oid));

        // Another key-encryption key cannot read them: the server refuses to start, in one line.
        let mut settings = (*app.settings).clone();
        settings.server.port = 0;
        settings.metrics.enabled = false;
        settings.keys.encryption_key = "YW5vdGhlci1rZXktZW5jcnlwdGlvbi1rZXktMzItYiE=".into();
        assert!(settings.keys_encryption_key().is_some());
        let started = umbra::startup::Application::build(settings).await;
        let err = started.err().expect("refused").to_string();
        assert!(err.contains("keys.encryption_key"), "{err}");
    }
}

db_test_with! {
    |settings| {
        settings.keys.refresh_secs = 1;
        settings.keys.rotate_after_days = 30;
        settings.keys.prepublish_secs = 3600;
    },
    async fn a_key_older_than_rotate_after_days_is_rotated_by_the_running_server(app: TestApp) {
        use sea_orm::{ConnectionTrait, Statement};
        let now = umbra::clock::now();
        let first = keys::list(&app.store, now).await.unwrap().remove(0);
        // Make the key 31 days old.
        let db = app.store.connection();
        let backend = db.get_database_backend();
        let sql = match backend {
            sea_orm::DbBackend::Postgres => "UPDATE signing_keys SET created_at = $1 WHERE kid = $2",
            _ => "UPDATE signing_keys SET created_at = ? WHERE kid = ?",
        };
        db.execute_raw(Statement::from_sql_and_values(
            backend,
            sql,
            [(now - 31 * 86_400).into(), first.kid.clone().into()],
        ))
        .await
        .unwrap();

        let deadline = Instant::now() + Duration::from_secs(10);
        let successor = loop {
            let listed = keys::list(&app.store, umbra::clock::now()).await.unwrap();
            if let Some(new) = listed.iter().find(|k| k.kid != first.kid) {
                break new.clone();
            }
            assert!(Instant::now() < deadline, "no rotation by age: {listed:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        assert_eq!(successor.alg, "RS256");
        assert_eq!(successor.state, "pending", "pre-published like any rotation");
        until_published(&app, &[&first.kid, &successor.kid]).await;
        // Not rotated again on the next passes: the newest key is young.
        tokio::time::sleep(Duration::from_millis(2500)).await;
        assert_eq!(keys::list(&app.store, umbra::clock::now()).await.unwrap().len(), 2);
    }
}
