//! What the database holds: hashes, never plaintext; and cleanup of dead rows.
use entity::{access_token, client, grant};
use sea_orm::{EntityTrait, PaginatorTrait};
use sha2::{Digest, Sha256};
use umbra::oauth::scope::ScopeSet;
use umbra::oauth::token::{Token, TokenKind};
use umbra::store::NewAccessToken;

db_test! {
    async fn no_token_or_secret_is_stored_in_plaintext(app: TestApp) {
        let client = app.service_client("read").await;
        let secret = client.secret.clone().unwrap();
        let token = app.issue_token(&client).await;

        let db = app.store.connection();
        let rows = format!(
            "{:?}{:?}{:?}",
            access_token::Entity::find().all(db).await.unwrap(),
            client::Entity::find().all(db).await.unwrap(),
            grant::Entity::find().all(db).await.unwrap(),
        );

        // Debug prints byte vectors as decimal lists; search for the text and the raw bytes.
        for plaintext in [&token, &secret] {
            assert!(!rows.contains(plaintext.as_str()));
            assert!(!rows.contains(&format!("{:?}", plaintext.as_bytes())[1..40]));
        }
        let stored = access_token::Entity::find().one(db).await.unwrap().unwrap();
        assert_eq!(stored.hash, Sha256::digest(token.as_bytes()).to_vec());
        let stored_client = client::Entity::find_by_id(client.id.clone()).one(db).await.unwrap().unwrap();
        assert_eq!(stored_client.secret_hash.unwrap(), Sha256::digest(secret.as_bytes()).to_vec());
    }
}

db_test! {
    async fn cleanup_deletes_expired_and_long_revoked_rows_in_batches_and_keeps_live_ones(app: TestApp) {
        let client = app.service_client("read").await;
        let rs = app.resource_server().await;
        let now = umbra::clock::now();
        let mut cleanup = app.settings.cleanup.clone();
        cleanup.batch_size = 2;
        for expires_at in [now - 10, now - 5, now - 1] {
            let token = Token::generate(TokenKind::AccessToken).unwrap();
            app.store
                .issue_client_credentials(&client.id, &NewAccessToken {
                    hash: token.hash(),
                    audience: Default::default(),
                    scope: ScopeSet::parse("read").unwrap(),
                    issued_at: now - 20,
                    expires_at,
                })
                .await
                .unwrap();
        }
        let live = app.issue_token(&client).await;
        let revoked = app.issue_token(&client).await;
        assert_eq!(app.revoke(&client, &revoked).await.status(), 200);
        let db = app.store.connection();

        let report = app.store.purge(now, &cleanup).await.unwrap();

        assert_eq!(report.grants, 3, "the expired families go, in batches of two");
        assert_eq!(access_token::Entity::find().count(db).await.unwrap(), 2, "revoked rows are kept for the retention period");

        cleanup.revoked_retention_secs = 0;
        let report = app.store.purge(now + 5, &cleanup).await.unwrap();

        assert_eq!(report.access_tokens, 1, "the revoked token goes once its retention is over");
        assert_eq!(access_token::Entity::find().count(db).await.unwrap(), 1);
        assert_eq!(app.introspection_of(&rs, &live).await["active"], true);
    }
}
