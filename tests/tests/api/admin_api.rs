//! The admin API (issue 13): grants of a user or a client, listed and revoked.
use crate::introspection_cache::inactive_within;
use std::time::{Duration, Instant};
use umbra::oauth::introspection::RecordKind;
use umbra::oauth::token::TokenHash;
use umbra::store::{GrantOwner, Store, TokenCache};
use umbra_tests::TestApp;

const PASSWORD: &str = "correct horse battery";

/// How long the app, which learns of a revocation made beside it only from the change log,
/// may take to answer inactive.
const FROM_THE_DATABASE: Duration = Duration::from_secs(3);

/// A handle on the app's database with an introspection cache of its own that serves (as an
/// instance's does while it follows the change log).
fn cached_store(app: &TestApp) -> Store {
    let store = app
        .store
        .clone()
        .with_token_cache(TokenCache::new(100, Duration::from_secs(60)));
    store.token_cache().polled(Instant::now());
    store
}

/// Looks `token` up twice through `store`, so that it is cached; returns whether it is revoked.
async fn revoked(store: &Store, token: &str) -> bool {
    let record = store
        .token_record(&TokenHash::of(token), RecordKind::Access)
        .await
        .unwrap()
        .expect("a stored token");
    record.revoked
}

db_test! {
    async fn revoking_the_grants_of_a_user_or_a_client_inactivates_their_tokens_at_the_next_lookup(app: TestApp) {
        // Arrange: a user's token at a web app, a client's own token, both cached.
        let web = app.web_app(false).await;
        let service = app.service_client("").await;
        let rs = app.resource_server().await;
        let user = app.create_user("grace", PASSWORD).await;
        let user_token = app.user_access_token(&web, "grace", PASSWORD, "read").await;
        let service_token = app.issue_token(&service).await;
        let store = cached_store(&app);
        let now = umbra::clock::now();
        for token in [&user_token, &service_token] {
            assert!(!revoked(&store, token).await);
            assert!(!revoked(&store, token).await);
        }
        assert_eq!(store.token_cache().len(), 2);

        let theirs = store.list_grants(&GrantOwner::User(user.id), now, 10).await.unwrap();
        assert_eq!(theirs.len(), 1);
        assert_eq!(theirs[0].client_id, web.id);
        assert_eq!(theirs[0].user_id, Some(user.id));
        assert_eq!(theirs[0].scope, "read");
        assert_eq!(theirs[0].grant_type, "authorization_code");
        let owned = store
            .list_grants(&GrantOwner::Client(service.id.clone()), now, 10)
            .await
            .unwrap();
        assert_eq!(owned.len(), 1);
        assert_eq!(owned[0].user_id, None);
        assert_eq!(owned[0].grant_type, "client_credentials");

        // Act and assert: another owner's grant is refused and left alone.
        let web_owner = GrantOwner::Client(web.id.clone());
        assert!(!store.revoke_grant_of(&web_owner, owned[0].id, now).await.unwrap());
        assert!(!revoked(&store, &service_token).await);

        // A user's grants: the very next lookup through the revoking store is revoked, and the
        // app learns it from the change log.
        let since = Instant::now();
        let count = store.revoke_grants_of(&GrantOwner::User(user.id), now).await.unwrap();
        assert_eq!(count, 1);
        assert!(revoked(&store, &user_token).await);
        assert!(!revoked(&store, &service_token).await);
        assert!(store.list_grants(&GrantOwner::User(user.id), now, 10).await.unwrap().is_empty());
        inactive_within(&app, &rs, &user_token, since, FROM_THE_DATABASE).await;
        assert_eq!(store.revoke_grants_of(&GrantOwner::User(user.id), now).await.unwrap(), 0);

        // One grant of a client.
        let since = Instant::now();
        let service_owner = GrantOwner::Client(service.id.clone());
        assert!(store.revoke_grant_of(&service_owner, owned[0].id, now).await.unwrap());
        assert!(revoked(&store, &service_token).await);
        inactive_within(&app, &rs, &service_token, since, FROM_THE_DATABASE).await;
        assert!(!store.revoke_grant_of(&service_owner, owned[0].id, now).await.unwrap());
        assert!(store.list_grants(&service_owner, now, 10).await.unwrap().is_empty());
    }
}

db_test! {
    async fn revoking_every_grant_of_a_client_counts_each_once_under_concurrent_revokers(app: TestApp) {
        let service = app.service_client("").await;
        let mut tokens = Vec::new();
        for _ in 0..5 {
            tokens.push(app.issue_token(&service).await);
        }
        let owner = GrantOwner::Client(service.id.clone());
        let now = umbra::clock::now();
        assert_eq!(app.store.list_grants(&owner, now, 3).await.unwrap().len(), 3);

        let revokers = (0..12).map(|_| app.store.revoke_grants_of(&owner, now));
        let counts: Vec<u64> = futures_util::future::join_all(revokers)
            .await
            .into_iter()
            .map(Result::unwrap)
            .collect();

        assert_eq!(counts.iter().sum::<u64>(), 5, "{counts:?}");
        let store = cached_store(&app);
        for token in &tokens {
            assert!(revoked(&store, token).await);
        }
        assert!(app.store.list_grants(&owner, now, 10).await.unwrap().is_empty());
    }
}

// ---------------------------------------------------------------------------------------------
// The admin API over HTTP.

use futures_util::future::join_all;
use reqwest::{Method, Response, StatusCode};
use serde_json::{Value, json};
use umbra::oauth::grant_type::GrantType;
use umbra::store::AuditQuery;
use umbra_tests::{ClientSpec, REDIRECT_URI};

/// Asserts `response` is a problem of `status` and returns its body.
async fn problem(response: Response, status: StatusCode) -> Value {
    assert_eq!(response.status(), status, "{:?}", response.headers());
    let content_type = response.headers()[reqwest::header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(content_type, "application/problem+json");
    let body: Value = response.json().await.unwrap();
    for member in ["type", "title", "detail"] {
        assert!(body[member].is_string(), "{member} in {body}");
    }
    assert_eq!(body["status"], status.as_u16(), "{body}");
    body
}

/// The JSON body of a response of `status`.
async fn json_of(response: Response, status: StatusCode) -> Value {
    let got = response.status();
    let body = response.text().await.unwrap();
    assert_eq!(got, status, "{body}");
    serde_json::from_str(&body).unwrap_or(Value::Null)
}

/// A request with bad input: method, path, content type and body, and the status it gets.
type BadCase = (Method, String, Option<(&'static str, Vec<u8>)>, StatusCode);

/// The audit events named `event`, newest first.
async fn audited(app: &TestApp, event: &str) -> Vec<umbra::store::AuditRecord> {
    let query = AuditQuery {
        event: Some(event.to_owned()),
        limit: 100,
        ..AuditQuery::default()
    };
    app.store.query_audit(&query).await.unwrap().events
}

db_test! {
    async fn the_admin_api_refuses_missing_invalid_revoked_and_unscoped_tokens_and_people(app: TestApp) {
        let (admin, token) = app.admin_client().await;
        let user = app.create_user("grace", PASSWORD).await;
        let routes = [
            (Method::GET, "/admin/users".to_owned()),
            (Method::GET, format!("/admin/users/{}", user.id)),
            (Method::DELETE, format!("/admin/users/{}", user.id)),
            (Method::GET, "/admin/audit".to_owned()),
            (Method::POST, "/admin/keys/rotate".to_owned()),
        ];
        // Without the scope.
        let reader = app.service_client("read").await;
        let unscoped = app.issue_token(&reader).await;
        // A person's token that carries the scope: a person never administers.
        let people_app = app
            .register(ClientSpec {
                public: true,
                scopes: "read umbra:admin",
                grant_types: &[GrantType::AuthorizationCode],
                redirect_uris: &[REDIRECT_URI],
                skip_consent: true,
                ..ClientSpec::default()
            })
            .await;
        let persons = app
            .user_access_token(&people_app, "grace", PASSWORD, "umbra:admin")
            .await;
        // Revoked.
        let revoked = app.issue_token(&admin).await;
        assert_eq!(app.revoke(&admin, &revoked).await.status(), StatusCode::OK);

        for (method, path) in &routes {
            let response = app.admin(method.clone(), path, None).send().await.unwrap();
            let challenge = response.headers()["www-authenticate"].to_str().unwrap().to_owned();
            assert!(challenge.starts_with("Bearer"), "{challenge}");
            problem(response, StatusCode::UNAUTHORIZED).await;
            for bad in ["at_garbage", revoked.as_str()] {
                let response = app.admin(method.clone(), path, Some(bad)).send().await.unwrap();
                let challenge = response.headers()["www-authenticate"].to_str().unwrap().to_owned();
                assert!(challenge.contains("error=\"invalid_token\""), "{path}: {challenge}");
                problem(response, StatusCode::UNAUTHORIZED).await;
            }
            for refused in [unscoped.as_str(), persons.as_str()] {
                let response = app.admin(method.clone(), path, Some(refused)).send().await.unwrap();
                let challenge = response.headers()["www-authenticate"].to_str().unwrap().to_owned();
                assert!(challenge.contains("insufficient_scope"), "{path}: {challenge}");
                problem(response, StatusCode::FORBIDDEN).await;
            }
        }
        // Nothing happened, and the admin token works.
        assert!(app.store.find_user(user.id).await.unwrap().is_some());
        let response = app.admin(Method::GET, "/admin/users", Some(&token)).send().await.unwrap();
        json_of(response, StatusCode::OK).await;
    }
}

db_test! {
    async fn users_are_created_listed_shown_updated_disabled_enabled_and_deleted_with_audit(app: TestApp) {
        let (admin, token) = app.admin_client().await;
        let actor = format!("client:{}", admin.id);
        let t = Some(token.as_str());

        // Create.
        let body = json!({"username": "Ada", "password": PASSWORD, "name": "Ada Lovelace",
                          "email": "ada@example.com", "email_verified": true});
        let response = app.admin(Method::POST, "/admin/users", t).json(&body).send().await.unwrap();
        assert_eq!(response.headers()["etag"], "\"1\"");
        let created = json_of(response, StatusCode::CREATED).await;
        assert_eq!(created["username"], "Ada");
        assert_eq!(created["email_verified"], true);
        assert!(created.get("password").is_none() && created.get("password_hash").is_none());
        let id = created["id"].as_str().unwrap().to_owned();
        // The password works at sign-in.
        let web = app.web_app(false).await;
        app.user_access_token(&web, "ada", PASSWORD, "read").await;
        // A weak password is refused.
        let weak = json!({"username": "weak", "password": "short"});
        let response = app.admin(Method::POST, "/admin/users", t).json(&weak).send().await.unwrap();
        problem(response, StatusCode::BAD_REQUEST).await;

        // List with filters and pages.
        for name in ["adam", "bob", "adele"] {
            app.create_user(name, PASSWORD).await;
        }
        let response = app.admin(Method::GET, "/admin/users?username=AD&limit=2", t).send().await.unwrap();
        let page = json_of(response, StatusCode::OK).await;
        let names: Vec<&str> = page["users"].as_array().unwrap().iter().map(|u| u["username"].as_str().unwrap()).collect();
        assert_eq!(names, ["Ada", "adam"]);
        let next = page["next"].as_str().unwrap();
        let response = app.admin(Method::GET, &format!("/admin/users?username=ad&limit=2&cursor={next}"), t).send().await.unwrap();
        let page = json_of(response, StatusCode::OK).await;
        assert_eq!(page["users"][0]["username"], "adele");
        assert!(page.get("next").is_none(), "{page}");

        // Show, then update with If-Match.
        let path = format!("/admin/users/{id}");
        let response = app.admin(Method::GET, &path, t).send().await.unwrap();
        let etag = response.headers()["etag"].to_str().unwrap().to_owned();
        json_of(response, StatusCode::OK).await;
        let response = app.admin(Method::PATCH, &path, t).header("if-match", &etag)
            .json(&json!({"name": null, "email": "ada@new.example"})).send().await.unwrap();
        let new_etag = response.headers()["etag"].to_str().unwrap().to_owned();
        let updated = json_of(response, StatusCode::OK).await;
        assert_ne!(new_etag, etag);
        assert_eq!(updated["name"], Value::Null);
        assert_eq!(updated["email"], "ada@new.example");
        assert_eq!(updated["email_verified"], false);
        // Stale.
        let response = app.admin(Method::PATCH, &path, t).header("if-match", &etag)
            .json(&json!({"name": "x"})).send().await.unwrap();
        problem(response, StatusCode::PRECONDITION_FAILED).await;

        // Disable: their tokens stop at once; enable; set a password.
        let user_token = app.user_access_token(&web, "ada", PASSWORD, "read").await;
        let rs = app.resource_server().await;
        let response = app.admin(Method::POST, &format!("{path}/disable"), t).send().await.unwrap();
        assert_eq!(json_of(response, StatusCode::OK).await["disabled"], true);
        assert_eq!(app.introspection_of(&rs, &user_token).await, json!({"active": false}));
        let response = app.admin(Method::POST, &format!("{path}/enable"), t).send().await.unwrap();
        assert_eq!(json_of(response, StatusCode::OK).await["disabled"], false);
        let response = app.admin(Method::POST, &format!("{path}/password"), t)
            .json(&json!({"password": "another long password"})).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::NO_CONTENT);
        app.user_access_token(&web, "ada", "another long password", "read").await;

        // Delete.
        let response = app.admin(Method::DELETE, &path, t).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::NO_CONTENT);
        let response = app.admin(Method::GET, &path, t).send().await.unwrap();
        problem(response, StatusCode::NOT_FOUND).await;

        for event in ["user.created", "user.updated", "user.disabled", "user.enabled", "user.password_set", "user.deleted"] {
            let events = audited(&app, event).await;
            assert_eq!(events.len(), 1, "{event}");
            assert_eq!(events[0].actor.as_deref(), Some(actor.as_str()), "{event}");
            assert_eq!(events[0].user_id.as_deref(), Some(id.as_str()), "{event}");
        }
    }
}

db_test! {
    async fn of_concurrent_patches_with_one_if_match_exactly_one_wins_and_a_missing_if_match_is_428(app: TestApp) {
        let (_, token) = app.admin_client().await;
        let user = app.create_user("grace", PASSWORD).await;
        let path = format!("/admin/users/{}", user.id);
        let response = app.admin(Method::PATCH, &path, Some(&token))
            .json(&json!({"name": "Grace"})).send().await.unwrap();
        problem(response, StatusCode::PRECONDITION_REQUIRED).await;
        let etag = format!("\"{}\"", user.version);

        let patches = (0..24).map(|i| {
            app.admin(Method::PATCH, &path, Some(&token))
                .header("if-match", &etag)
                .json(&json!({"name": format!("Grace {i}")}))
                .send()
        });
        let statuses: Vec<StatusCode> = join_all(patches).await.into_iter().map(|r| r.unwrap().status()).collect();

        let won = statuses.iter().filter(|s| s.is_success()).count();
        let stale = statuses.iter().filter(|s| **s == StatusCode::PRECONDITION_FAILED).count();
        assert_eq!((won, stale), (1, 23), "{statuses:?}");
        let user = app.store.find_user(user.id).await.unwrap().unwrap();
        assert_eq!(user.version, 2);
        assert_eq!(audited(&app, "user.updated").await.len(), 1);
    }
}

db_test! {
    async fn creating_a_user_is_idempotent_by_username_even_when_repeated_concurrently(app: TestApp) {
        let (_, token) = app.admin_client().await;
        let body = json!({"username": "linus", "password": PASSWORD, "name": "Linus"});

        let creates = (0..12).map(|_| app.admin(Method::POST, "/admin/users", Some(&token)).json(&body).send());
        let statuses: Vec<StatusCode> = join_all(creates).await.into_iter().map(|r| r.unwrap().status()).collect();

        let created = statuses.iter().filter(|s| **s == StatusCode::CREATED).count();
        let found = statuses.iter().filter(|s| **s == StatusCode::OK).count();
        assert_eq!((created, found), (1, 11), "{statuses:?}");
        let page = app.store.query_users(&umbra::store::UserQuery { limit: 10, ..Default::default() }).await.unwrap();
        assert_eq!(page.users.len(), 1);
        assert_eq!(audited(&app, "user.created").await.len(), 1);
        let other = json!({"username": "LINUS", "password": PASSWORD, "name": "Someone else"});
        let response = app.admin(Method::POST, "/admin/users", Some(&token)).json(&other).send().await.unwrap();
        problem(response, StatusCode::CONFLICT).await;
        // The same profile with another password is not "the same user again": the caller
        // must not believe it set that password.
        let other = json!({"username": "linus", "password": "another long password", "name": "Linus"});
        let response = app.admin(Method::POST, "/admin/users", Some(&token)).json(&other).send().await.unwrap();
        problem(response, StatusCode::CONFLICT).await;
        let stored = app.store.find_user_by_username("linus").await.unwrap().unwrap();
        let passwords = umbra::auth::password::Passwords::new(&app.settings.passwords).unwrap();
        assert!(passwords.verify(PASSWORD, Some(&stored.password_hash)));
    }
}

db_test! {
    async fn grants_and_consents_of_users_and_clients_are_listed_and_revoked_at_once(app: TestApp) {
        let (admin, token) = app.admin_client().await;
        let actor = format!("client:{}", admin.id);
        let t = Some(token.as_str());
        let web = app.web_app(false).await;
        let rs = app.resource_server().await;
        let user = app.create_user("grace", PASSWORD).await;
        let first = app.user_access_token(&web, "grace", PASSWORD, "read").await;
        let second = app.user_access_token(&web, "grace", PASSWORD, "read").await;
        let service = app.service_client("read").await;
        let service_token = app.issue_token(&service).await;
        for token in [&first, &second, &service_token] {
            assert_eq!(app.introspection_of(&rs, token).await["active"], true);
        }

        let grants_path = format!("/admin/users/{}/grants", user.id);
        let response = app.admin(Method::GET, &grants_path, t).send().await.unwrap();
        let grants = json_of(response, StatusCode::OK).await;
        assert_eq!(grants.as_array().unwrap().len(), 2, "{grants}");
        assert_eq!(grants[0]["client_id"], web.id.as_str());
        assert!(!grants.to_string().contains(&first), "no token in a grant view");

        // One grant, then all.
        let one = grants[0]["id"].as_str().unwrap();
        let response = app.admin(Method::DELETE, &format!("{grants_path}/{one}"), t).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::NO_CONTENT);
        let response = app.admin(Method::DELETE, &format!("{grants_path}/{one}"), t).send().await.unwrap();
        problem(response, StatusCode::NOT_FOUND).await;
        let response = app.admin(Method::DELETE, &grants_path, t).send().await.unwrap();
        assert_eq!(json_of(response, StatusCode::OK).await["revoked"], 1);
        for token in [&first, &second] {
            assert_eq!(app.introspection_of(&rs, token).await, json!({"active": false}));
        }

        // Consents.
        let consents_path = format!("/admin/users/{}/consents", user.id);
        let response = app.admin(Method::GET, &consents_path, t).send().await.unwrap();
        let consents = json_of(response, StatusCode::OK).await;
        assert_eq!(consents[0]["client_id"], web.id.as_str(), "{consents}");
        let response = app.admin(Method::DELETE, &format!("{consents_path}/{}", web.id), t).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::NO_CONTENT);
        let response = app.admin(Method::GET, &consents_path, t).send().await.unwrap();
        assert_eq!(json_of(response, StatusCode::OK).await, json!([]));

        // A client's grants.
        let client_grants = format!("/admin/clients/{}/grants", service.id);
        let response = app.admin(Method::GET, &client_grants, t).send().await.unwrap();
        assert_eq!(json_of(response, StatusCode::OK).await.as_array().unwrap().len(), 1);
        let response = app.admin(Method::DELETE, &client_grants, t).send().await.unwrap();
        assert_eq!(json_of(response, StatusCode::OK).await["revoked"], 1);
        assert_eq!(app.introspection_of(&rs, &service_token).await, json!({"active": false}));
        let response = app.admin(Method::GET, "/admin/clients/nobody/grants", t).send().await.unwrap();
        problem(response, StatusCode::NOT_FOUND).await;

        let revocations = audited(&app, "grants.revoked").await;
        assert_eq!(revocations.len(), 3);
        assert!(revocations.iter().all(|e| e.actor.as_deref() == Some(actor.as_str())));
        assert!(revocations.iter().any(|e| e.client_id.as_deref() == Some(service.id.as_str())));
        let withdrawn = audited(&app, "consent.withdrawn").await;
        assert_eq!(withdrawn[0].actor.as_deref(), Some(actor.as_str()));
    }
}

db_test! {
    async fn an_operator_reads_and_resets_a_users_second_factor(app: TestApp) {
        let (admin, token) = app.admin_client().await;
        let user = app.create_user("grace", PASSWORD).await;
        let (_, codes) = app.enroll_totp(&user).await;
        let path = format!("/admin/users/{}/second-factor", user.id);

        let response = app.admin(Method::GET, &path, Some(&token)).send().await.unwrap();
        let status = json_of(response, StatusCode::OK).await;
        assert_eq!(status["factors"][0]["kind"], "totp");
        assert_eq!(status["factors"][0]["confirmed"], true);
        assert_eq!(status["recovery_codes_left"], codes.len());
        assert!(status.get("secret").is_none() && !status.to_string().contains(&codes[0]));

        let response = app.admin(Method::DELETE, &path, Some(&token)).send().await.unwrap();
        assert_eq!(json_of(response, StatusCode::OK).await["factors_removed"], 1);
        let response = app.admin(Method::GET, &path, Some(&token)).send().await.unwrap();
        let status = json_of(response, StatusCode::OK).await;
        assert_eq!(status["factors"], json!([]));
        let resets = audited(&app, "factor.reset").await;
        assert_eq!(resets[0].actor, Some(format!("client:{}", admin.id)));
    }
}

db_test! {
    async fn resources_keys_and_the_audit_log_are_managed_through_the_api(app: TestApp) {
        let (admin, token) = app.admin_client().await;
        let t = Some(token.as_str());
        let rs = app.resource_server().await;

        let body = json!({"identifier": "https://orders.example", "name": "Orders",
                          "scopes": "orders:read orders:write", "introspectors": [rs.id]});
        let response = app.admin(Method::POST, "/admin/resources", t).json(&body).send().await.unwrap();
        let created = json_of(response, StatusCode::CREATED).await;
        assert_eq!(created["introspectors"], json!([rs.id]));
        let response = app.admin(Method::POST, "/admin/resources", t).json(&body).send().await.unwrap();
        problem(response, StatusCode::CONFLICT).await;
        let bad = json!({"identifier": "not a uri", "name": "x"});
        let response = app.admin(Method::POST, "/admin/resources", t).json(&bad).send().await.unwrap();
        problem(response, StatusCode::BAD_REQUEST).await;
        let path = "/admin/resources/https%3A%2F%2Forders.example";
        let response = app.admin(Method::GET, path, t).send().await.unwrap();
        assert_eq!(response.headers()["etag"], "\"1\"");
        assert_eq!(json_of(response, StatusCode::OK).await["name"], "Orders");
        let patch = json!({"scopes": "orders:read"});
        let response = app.admin(Method::PATCH, path, t).json(&patch).send().await.unwrap();
        problem(response, StatusCode::PRECONDITION_REQUIRED).await;
        // Of 24 changes made from version 1 at once, exactly one is applied.
        let patches = (0..24).map(|i| {
            app.admin(Method::PATCH, path, t)
                .header("if-match", "\"1\"")
                .json(&json!({"scopes": "orders:read", "name": format!("Orders {i}")}))
                .send()
        });
        let responses: Vec<_> = join_all(patches).await.into_iter().map(Result::unwrap).collect();
        let won: Vec<_> = responses.iter().filter(|r| r.status() == StatusCode::OK).collect();
        let stale = responses.iter().filter(|r| r.status() == StatusCode::PRECONDITION_FAILED).count();
        assert_eq!((won.len(), stale), (1, 23));
        assert_eq!(won[0].headers()["etag"], "\"2\"");
        let response = app.admin(Method::GET, path, t).send().await.unwrap();
        assert_eq!(json_of(response, StatusCode::OK).await["scopes"], "orders:read");
        assert_eq!(audited(&app, "resource.updated").await.len(), 1);
        let response = app.admin(Method::GET, "/admin/resources", t).send().await.unwrap();
        assert_eq!(json_of(response, StatusCode::OK).await.as_array().unwrap().len(), 1);
        let response = app.admin(Method::DELETE, path, t).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::NO_CONTENT);
        let response = app.admin(Method::GET, path, t).send().await.unwrap();
        problem(response, StatusCode::NOT_FOUND).await;

        // Keys.
        let response = app.admin(Method::GET, "/admin/keys", t).send().await.unwrap();
        let before = json_of(response, StatusCode::OK).await.as_array().unwrap().len();
        let response = app.admin(Method::POST, "/admin/keys/rotate", t).json(&json!({"alg": "ES256"})).send().await.unwrap();
        assert_eq!(json_of(response, StatusCode::CREATED).await["alg"], "ES256");
        let response = app.admin(Method::POST, "/admin/keys/rotate", t).send().await.unwrap();
        json_of(response, StatusCode::CREATED).await;
        let response = app.admin(Method::POST, "/admin/keys/rotate", t).json(&json!({"alg": "HS1"})).send().await.unwrap();
        problem(response, StatusCode::BAD_REQUEST).await;
        let response = app.admin(Method::GET, "/admin/keys", t).send().await.unwrap();
        assert_eq!(json_of(response, StatusCode::OK).await.as_array().unwrap().len(), before + 2);

        // The audit log: by event prefix and acting client, a page at a time.
        let response = app.admin(Method::GET, "/admin/audit?event=resource.&limit=2", t).send().await.unwrap();
        let page = json_of(response, StatusCode::OK).await;
        let events: Vec<&str> = page["events"].as_array().unwrap().iter().map(|e| e["event"].as_str().unwrap()).collect();
        // Events of one second come in no particular order.
        let mut events = events;
        events.sort_unstable();
        assert_eq!(events.len(), 2);
        assert_eq!(page["events"][0]["actor"], format!("client:{}", admin.id));
        let next = page["next"].as_str().unwrap();
        let response = app.admin(Method::GET, &format!("/admin/audit?event=resource.&limit=2&cursor={next}"), t).send().await.unwrap();
        let page = json_of(response, StatusCode::OK).await;
        assert_eq!(page["events"].as_array().unwrap().len(), 1);
        let mut all: Vec<&str> = page["events"].as_array().unwrap().iter().map(|e| e["event"].as_str().unwrap()).collect();
        all.extend(events);
        all.sort_unstable();
        assert_eq!(all, ["resource.created", "resource.deleted", "resource.updated"]);
        assert!(page.get("next").is_none());
        let response = app.admin(Method::GET, "/admin/audit?event=keys.rotated", t).send().await.unwrap();
        assert_eq!(json_of(response, StatusCode::OK).await["events"].as_array().unwrap().len(), 2);
    }
}

db_test! {
    async fn bad_input_is_a_4xx_problem_and_never_a_5xx(app: TestApp) {
        let (_, token) = app.admin_client().await;
        let t = Some(token.as_str());
        let user = app.create_user("grace", PASSWORD).await;
        let user_path = format!("/admin/users/{}", user.id);
        let cases: Vec<BadCase> = vec![
            (Method::POST, "/admin/users".into(), Some(("application/json", b"{\"username\": ".to_vec())), StatusCode::BAD_REQUEST),
            (Method::POST, "/admin/users".into(), Some(("application/json", br#"{"username": "x", "password": 12345678}"#.to_vec())), StatusCode::BAD_REQUEST),
            (Method::POST, "/admin/users".into(), Some(("application/json", br#"{"username": "x", "password": "long enough", "role": "god"}"#.to_vec())), StatusCode::BAD_REQUEST),
            (Method::POST, "/admin/users".into(), Some(("application/json", br#"{"username": "a b", "password": "long enough"}"#.to_vec())), StatusCode::BAD_REQUEST),
            (Method::POST, "/admin/users".into(), Some(("text/plain", b"{}".to_vec())), StatusCode::UNSUPPORTED_MEDIA_TYPE),
            (Method::POST, "/admin/users".into(), Some(("application/json", vec![b' '; 70 * 1024])), StatusCode::PAYLOAD_TOO_LARGE),
            (Method::GET, "/admin/users?limit=abc".into(), None, StatusCode::BAD_REQUEST),
            (Method::GET, "/admin/users?limit=0".into(), None, StatusCode::BAD_REQUEST),
            (Method::GET, "/admin/users?cursor=%%%".into(), None, StatusCode::BAD_REQUEST),
            (Method::GET, "/admin/users?disabled=maybe".into(), None, StatusCode::BAD_REQUEST),
            (Method::GET, "/admin/audit?user=nobody".into(), None, StatusCode::BAD_REQUEST),
            (Method::GET, "/admin/audit?cursor=garbage".into(), None, StatusCode::BAD_REQUEST),
            (Method::GET, "/admin/audit?since=yesterday".into(), None, StatusCode::BAD_REQUEST),
            (Method::GET, "/admin/users/not-a-uuid".into(), None, StatusCode::NOT_FOUND),
            (Method::GET, format!("/admin/users/{}", uuid::Uuid::new_v4()), None, StatusCode::NOT_FOUND),
            (Method::PATCH, user_path.clone(), Some(("application/json", b"{}".to_vec())), StatusCode::PRECONDITION_REQUIRED),
            (Method::PUT, user_path.clone(), None, StatusCode::METHOD_NOT_ALLOWED),
            (Method::GET, "/admin/nothing-here".into(), None, StatusCode::NOT_FOUND),
            (Method::GET, "/admin/clients?cursor=!!".into(), None, StatusCode::BAD_REQUEST),
            (Method::GET, "/admin/clients?limit=-1".into(), None, StatusCode::BAD_REQUEST),
            (Method::POST, "/admin/clients".into(), Some(("application/json", br#"{"grant_types": "client_credentials"}"#.to_vec())), StatusCode::BAD_REQUEST),
            (Method::POST, "/admin/clients".into(), Some(("application/json", br#"{"client_id": "bad id!", "grant_types": ["client_credentials"]}"#.to_vec())), StatusCode::BAD_REQUEST),
            (Method::PUT, "/admin/clients/nobody".into(), Some(("application/json", b"{}".to_vec())), StatusCode::NOT_FOUND),
            (Method::POST, "/admin/resources".into(), Some(("application/json", br#"{"identifier": "https://x.example", "name": "X", "introspectors": ["nobody"]}"#.to_vec())), StatusCode::BAD_REQUEST),
            (Method::POST, "/admin/keys/rotate".into(), Some(("application/json", br#"{"alg": 5}"#.to_vec())), StatusCode::BAD_REQUEST),
            (Method::GET, "/admin/users/../../etc/passwd".into(), None, StatusCode::NOT_FOUND),
        ];
        for (method, path, body, status) in cases {
            let mut request = app.admin(method.clone(), &path, t);
            if let Some((content_type, bytes)) = body {
                request = request.header("content-type", content_type).body(bytes);
            }
            let response = request.send().await.unwrap();
            assert_eq!(response.status(), status, "{method} {path}");
            let body = problem(response, status).await;
            assert!(!body.to_string().contains("12345678"), "{body}");
        }
        let response = app.admin(Method::PUT, &user_path, t).send().await.unwrap();
        assert_eq!(response.headers()["allow"], "GET, PATCH, DELETE");
        // An empty PATCH with If-Match names nothing to change.
        let response = app.admin(Method::PATCH, &user_path, t).header("if-match", "\"1\"")
            .json(&json!({})).send().await.unwrap();
        problem(response, StatusCode::BAD_REQUEST).await;
    }
}

db_test! {
    async fn admin_routes_are_served_only_on_the_admin_listener_and_all_are_documented(app: TestApp) {
        let (_, token) = app.admin_client().await;
        // Not on the public listener, even with a good token.
        for path in ["/admin/users", "/admin/audit", "/admin/keys"] {
            let response = app.http.get(app.url(path)).bearer_auth(&token).send().await.unwrap();
            assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
        }
        // The public document is not the admin one.
        let public = app.get_json("/openapi.json").await;
        assert!(public["paths"].get("/admin/users").is_none());

        let response = app.admin(Method::GET, "/openapi.json", None).send().await.unwrap();
        let doc = json_of(response, StatusCode::OK).await;
        assert!(doc["components"]["securitySchemes"]["bearer"].is_object(), "{doc}");
        for route in umbra::http::admin::ROUTES {
            let method = format!("{:?}", route.verb).to_lowercase();
            let operation = &doc["paths"][route.path][&method];
            assert!(operation.is_object(), "{method} {} is not documented", route.path);
            assert!(operation["responses"]["401"].is_object(), "{method} {}", route.path);
        }
    }
}

/// A client created through the admin API as the tests' client type, with `secret`.
async fn as_test_client(app: &TestApp, id: &str, secret: Option<&str>) -> umbra_tests::TestClient {
    umbra_tests::TestClient {
        id: id.to_owned(),
        secret: secret.map(str::to_owned),
        record: app.store.find_client(id).await.unwrap().unwrap(),
    }
}

db_test! {
    async fn clients_are_created_listed_shown_replaced_rotated_and_deleted_with_audit(app: TestApp) {
        let (admin, token) = app.admin_client().await;
        let actor = format!("client:{}", admin.id);
        let t = Some(token.as_str());

        let body = json!({"client_name": "Billing", "grant_types": ["client_credentials"], "scope": "read write"});
        let response = app.admin(Method::POST, "/admin/clients", t).json(&body).send().await.unwrap();
        assert_eq!(response.headers()["cache-control"], "no-store");
        assert_eq!(response.headers()["etag"], "\"1\"");
        let created = json_of(response, StatusCode::CREATED).await;
        let id = created["client_id"].as_str().unwrap().to_owned();
        let secret = created["client_secret"].as_str().unwrap().to_owned();
        let billing = as_test_client(&app, &id, Some(&secret)).await;
        let issued = app.issue_token(&billing).await;
        assert!(!issued.is_empty());
        // A policy refusal is a 400 problem.
        let bad = json!({"client_name": "x", "redirect_uris": ["not a uri"], "grant_types": ["authorization_code"]});
        let response = app.admin(Method::POST, "/admin/clients", t).json(&bad).send().await.unwrap();
        problem(response, StatusCode::BAD_REQUEST).await;

        // List: filters and pages.
        for name in ["billing-b", "Billing-c"] {
            let body = json!({"client_name": name, "grant_types": ["client_credentials"]});
            let response = app.admin(Method::POST, "/admin/clients", t).json(&body).send().await.unwrap();
            json_of(response, StatusCode::CREATED).await;
        }
        let web = app.web_app(false).await;
        let response = app.admin(Method::GET, "/admin/clients?name=BILL&limit=2", t).send().await.unwrap();
        let page = json_of(response, StatusCode::OK).await;
        assert_eq!(page["clients"].as_array().unwrap().len(), 2, "{page}");
        assert!(page["clients"][0].get("client_secret").is_none());
        let next = page["next"].as_str().unwrap();
        let response = app.admin(Method::GET, &format!("/admin/clients?name=bill&limit=2&cursor={next}"), t).send().await.unwrap();
        let page = json_of(response, StatusCode::OK).await;
        assert_eq!(page["clients"].as_array().unwrap().len(), 1, "{page}");
        assert!(page.get("next").is_none());
        let response = app.admin(Method::GET, "/admin/clients?grant_type=authorization_code", t).send().await.unwrap();
        let page = json_of(response, StatusCode::OK).await;
        let ids: Vec<&str> = page["clients"].as_array().unwrap().iter().map(|c| c["client_id"].as_str().unwrap()).collect();
        assert_eq!(ids, [web.id.as_str()]);
        let response = app.admin(Method::GET, "/admin/clients?grant_type=password", t).send().await.unwrap();
        problem(response, StatusCode::BAD_REQUEST).await;

        // Show and replace.
        let path = format!("/admin/clients/{id}");
        let response = app.admin(Method::GET, &path, t).send().await.unwrap();
        let etag = response.headers()["etag"].to_str().unwrap().to_owned();
        let mut shown = json_of(response, StatusCode::OK).await;
        shown["client_name"] = json!("Billing v2");
        shown["scope"] = json!("read");
        let response = app.admin(Method::PUT, &path, t).json(&shown).send().await.unwrap();
        problem(response, StatusCode::PRECONDITION_REQUIRED).await;
        let response = app.admin(Method::PUT, &path, t).header("if-match", &etag).json(&shown).send().await.unwrap();
        assert_ne!(response.headers()["etag"].to_str().unwrap(), etag);
        let replaced = json_of(response, StatusCode::OK).await;
        assert_eq!(replaced["client_name"], "Billing v2");
        assert_eq!(replaced["scope"], "read");
        let response = app.admin(Method::PUT, &path, t).header("if-match", &etag).json(&shown).send().await.unwrap();
        problem(response, StatusCode::PRECONDITION_FAILED).await;
        // The secret survived the replacement.
        app.issue_token(&billing).await;

        // Rotate: the old secret stops, the new one works.
        let response = app.admin(Method::POST, &format!("{path}/secret"), t).send().await.unwrap();
        assert_eq!(response.headers()["cache-control"], "no-store");
        let rotated = json_of(response, StatusCode::OK).await;
        let new_secret = rotated["client_secret"].as_str().unwrap();
        assert_ne!(new_secret, secret);
        let response = app.post_token(Some(&billing), &[("grant_type", "client_credentials")]).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        app.issue_token(&as_test_client(&app, &id, Some(new_secret)).await).await;
        let public = app.web_app(true).await;
        let response = app.admin(Method::POST, &format!("/admin/clients/{}/secret", public.id), t).send().await.unwrap();
        problem(response, StatusCode::BAD_REQUEST).await;

        // Delete.
        let response = app.admin(Method::DELETE, &path, t).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::NO_CONTENT);
        for method in [Method::GET, Method::DELETE] {
            let response = app.admin(method, &path, t).send().await.unwrap();
            problem(response, StatusCode::NOT_FOUND).await;
        }

        for event in ["client.updated", "client.secret_rotated", "client.deleted"] {
            let events = audited(&app, event).await;
            assert_eq!(events.len(), 1, "{event}");
            assert_eq!(events[0].actor.as_deref(), Some(actor.as_str()), "{event}");
            assert_eq!(events[0].client_id.as_deref(), Some(id.as_str()), "{event}");
        }
        assert_eq!(audited(&app, "client.created").await.len(), 3);
    }
}

db_test! {
    async fn of_24_concurrent_replacements_with_one_if_match_exactly_one_wins(app: TestApp) {
        let (_, token) = app.admin_client().await;
        let service = app.service_client("read").await;
        let path = format!("/admin/clients/{}", service.id);
        let response = app.admin(Method::GET, &path, Some(&token)).send().await.unwrap();
        let etag = response.headers()["etag"].to_str().unwrap().to_owned();
        let shown = json_of(response, StatusCode::OK).await;

        let puts = (0..24).map(|i| {
            let mut body = shown.clone();
            body["client_name"] = json!(format!("Service {i}"));
            app.admin(Method::PUT, &path, Some(&token)).header("if-match", &etag).json(&body).send()
        });
        let statuses: Vec<StatusCode> = join_all(puts).await.into_iter().map(|r| r.unwrap().status()).collect();

        let won = statuses.iter().filter(|s| s.is_success()).count();
        let stale = statuses.iter().filter(|s| **s == StatusCode::PRECONDITION_FAILED).count();
        assert_eq!((won, stale), (1, 23), "{statuses:?}");
        assert_eq!(audited(&app, "client.updated").await.len(), 1);
    }
}

db_test! {
    async fn a_create_with_a_chosen_id_repeated_concurrently_makes_one_client(app: TestApp) {
        let (_, token) = app.admin_client().await;
        let body = json!({"client_id": "ci-deployer", "client_name": "Deployer",
                          "grant_types": ["client_credentials"], "scope": "read"});

        let creates = (0..12).map(|_| app.admin(Method::POST, "/admin/clients", Some(&token)).json(&body).send());
        let responses: Vec<Response> = join_all(creates).await.into_iter().map(Result::unwrap).collect();

        let statuses: Vec<StatusCode> = responses.iter().map(Response::status).collect();
        let created = statuses.iter().filter(|s| **s == StatusCode::CREATED).count();
        let found = statuses.iter().filter(|s| **s == StatusCode::OK).count();
        assert_eq!((created, found), (1, 11), "{statuses:?}");
        for response in responses {
            let status = response.status();
            let body = json_of(response, status).await;
            assert_eq!(body["client_id"], "ci-deployer");
            assert_eq!(body.get("client_secret").is_some(), status == StatusCode::CREATED, "{body}");
        }
        assert_eq!(audited(&app, "client.created").await.len(), 1);
        let other = json!({"client_id": "ci-deployer", "client_name": "Someone else",
                           "grant_types": ["client_credentials"], "scope": "read"});
        let response = app.admin(Method::POST, "/admin/clients", Some(&token)).json(&other).send().await.unwrap();
        problem(response, StatusCode::CONFLICT).await;
    }
}

db_test! {
    async fn a_client_whose_admin_scope_is_taken_away_is_refused_at_the_next_call(app: TestApp) {
        let (admin, token) = app.admin_client().await;
        let response = app.admin(Method::GET, "/admin/users", Some(&token)).send().await.unwrap();
        json_of(response, StatusCode::OK).await;
        let mut record = app.store.find_client(&admin.id).await.unwrap().unwrap();
        record.scopes = umbra::oauth::scope::ScopeSet::parse("read").unwrap();
        app.store.replace_client(&record, None, None, umbra::clock::now()).await.unwrap();

        // The app learns of the change from the change log (its client cache).
        let deadline = std::time::Instant::now() + FROM_THE_DATABASE;
        loop {
            let response = app.admin(Method::GET, "/admin/users", Some(&token)).send().await.unwrap();
            if response.status() == StatusCode::FORBIDDEN {
                problem(response, StatusCode::FORBIDDEN).await;
                break;
            }
            assert_eq!(response.status(), StatusCode::OK);
            assert!(std::time::Instant::now() < deadline, "still administering");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

db_test! {
    async fn concurrent_revocations_of_a_users_grants_revoke_each_once(app: TestApp) {
        let (_, token) = app.admin_client().await;
        let web = app.web_app(false).await;
        let rs = app.resource_server().await;
        let user = app.create_user("grace", PASSWORD).await;
        let mut tokens = Vec::new();
        for _ in 0..3 {
            tokens.push(app.user_access_token(&web, "grace", PASSWORD, "read").await);
        }
        let path = format!("/admin/users/{}/grants", user.id);
        let grants = json_of(app.admin(Method::GET, &path, Some(&token)).send().await.unwrap(), StatusCode::OK).await;
        let one = format!("{path}/{}", grants[0]["id"].as_str().unwrap());

        // One grant, 24 times at once: one revocation, the others find nothing live.
        let singles = (0..24).map(|_| app.admin(Method::DELETE, &one, Some(&token)).send());
        let statuses: Vec<StatusCode> = join_all(singles).await.into_iter().map(|r| r.unwrap().status()).collect();
        let revoked = statuses.iter().filter(|s| **s == StatusCode::NO_CONTENT).count();
        let gone = statuses.iter().filter(|s| **s == StatusCode::NOT_FOUND).count();
        assert_eq!((revoked, gone), (1, 23), "{statuses:?}");

        // All of them, 24 times at once: the two left, counted once.
        let alls = (0..24).map(|_| app.admin(Method::DELETE, &path, Some(&token)).send());
        let mut total = 0;
        for response in join_all(alls).await {
            total += json_of(response.unwrap(), StatusCode::OK).await["revoked"].as_u64().unwrap();
        }
        assert_eq!(total, 2);
        for token in &tokens {
            assert_eq!(app.introspection_of(&rs, token).await, json!({"active": false}));
        }
    }
}
