//! The introspection cache never answers "active" for a token that is no longer active (issue
//! 12). For each event that can make a token inactive: the token is cached first (a second
//! introspection is counted as a cache hit), then the event, then the very next introspection at
//! the instance that served the event is `{"active": false}`. On Postgres a sibling instance on
//! the same database, which learns of the event only from the change log, is polled until it
//! answers inactive too, and the delay is printed. Events written to the database directly (as
//! the CLI writes them) reach even the first instance through the change log only, so there
//! both instances are polled with a bound instead of "the next request".
use futures_util::future::join_all;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::sync::OnceLock;
use std::time::{Duration, Instant};
use umbra::auth::password::Passwords;
use umbra_tests::{Backend, Pkce, TestApp, TestClient, location, metric_value};

/// How long a sibling instance may take to learn an event from the change log. On Postgres a
/// NOTIFY wakes its poller, so this is generous.
const ACROSS_INSTANCES: Duration = Duration::from_secs(2);

/// How long an event written to the database directly (as the CLI does) may take to reach an
/// instance: a change-log poll (`changes.poll_interval_ms`), or the bypass once the last poll is
/// older than `changes.max_staleness_ms`.
const FROM_THE_DATABASE: Duration = Duration::from_secs(3);

const PASSWORD: &str = "correct horse battery";

/// Introspections this instance answered from its cache.
async fn cache_hits(app: &TestApp) -> f64 {
    cache_metric(
        app,
        "umbra_introspection_cache_lookups_total{outcome=\"hit\"}",
    )
    .await
}

/// A series of the cache's metrics; a counter series appears with its first count, so absent is
/// zero. That the cache exports metrics at all is asserted through its entries gauge.
async fn cache_metric(app: &TestApp, series: &str) -> f64 {
    let text = app.metrics().await;
    assert!(
        metric_value(&text, "umbra_introspection_cache_entries").is_some(),
        "no introspection cache metrics: {text}"
    );
    metric_value(&text, series).unwrap_or(0.0)
}

/// A second instance on the app's database, on Postgres only: the promise measured here is the
/// Postgres one (a NOTIFY wakes the other instances' pollers), and SQLite serves
/// single-instance deployments.
async fn sibling(app: &TestApp) -> Option<TestApp> {
    match app.backend {
        Backend::Postgres => Some(app.spawn_sibling().await),
        Backend::Sqlite => None,
    }
}

/// Introspects `token` at `app` until an answer is counted as a cache hit, so that what follows
/// tests the cache and not the database. Until an instance follows the change log its cache is
/// bypassed, hence the loop; the answers must all be active.
async fn cache(app: &TestApp, caller: &TestClient, token: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let before = cache_hits(app).await;
        let answer = app.introspection_of(caller, token).await;
        assert_eq!(answer["active"], true, "{answer}");
        if cache_hits(app).await > before {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the token is never answered from the cache"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Polls `app` until `token` is inactive for `caller`, failing after `bound` from `since`;
/// returns how long it took. Once inactive, the answer is exactly `{"active": false}`.
pub(super) async fn inactive_within(
    app: &TestApp,
    caller: &TestClient,
    token: &str,
    since: Instant,
    bound: Duration,
) -> Duration {
    loop {
        let answer = app.introspection_of(caller, token).await;
        if answer["active"] == false {
            assert_eq!(answer, json!({"active": false}));
            return since.elapsed();
        }
        assert!(
            since.elapsed() < bound,
            "still active after {:?}: {answer}",
            since.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Tokens cached for one caller at an instance, and on Postgres at a sibling as well.
struct Watched<'a> {
    app: &'a TestApp,
    other: Option<&'a TestApp>,
    caller: &'a TestClient,
    tokens: Vec<&'a str>,
}

impl<'a> Watched<'a> {
    /// Caches every token at every instance.
    async fn cached(
        app: &'a TestApp,
        other: Option<&'a TestApp>,
        caller: &'a TestClient,
        tokens: &[&'a str],
    ) -> Self {
        for instance in std::iter::once(app).chain(other) {
            for token in tokens {
                cache(instance, caller, token).await;
            }
        }
        Self {
            app,
            other,
            caller,
            tokens: tokens.to_vec(),
        }
    }

    /// The event went through the first instance and has just returned: its very next answer
    /// for each token is inactive; the sibling must learn it from the change log (the delay is
    /// counted from now).
    async fn inactive_at_once(&self, event: &str) {
        let since = Instant::now();
        for token in &self.tokens {
            let answer = self.app.introspection_of(self.caller, token).await;
            assert_eq!(
                answer,
                json!({"active": false}),
                "{event}: at the very next request"
            );
        }
        if let Some(other) = self.other {
            self.learned_by(other, event, "the other instance", since, ACROSS_INSTANCES)
                .await;
        }
    }

    /// The event was written to the database directly: every instance learns it from the
    /// change log, within [`FROM_THE_DATABASE`].
    async fn inactive_everywhere(&self, event: &str, since: Instant) {
        for (instance, name) in std::iter::once((self.app, "the instance"))
            .chain(self.other.map(|other| (other, "the other instance")))
        {
            self.learned_by(instance, event, name, since, FROM_THE_DATABASE)
                .await;
        }
    }

    async fn learned_by(
        &self,
        instance: &TestApp,
        event: &str,
        name: &str,
        since: Instant,
        bound: Duration,
    ) {
        for token in &self.tokens {
            let took = inactive_within(instance, self.caller, token, since, bound).await;
            println!("{event}: inactive at {name} after {took:?}");
        }
    }
}

db_test! {
    async fn a_revoked_access_token_is_inactive_at_once_though_cached(app: TestApp) {
        let other = sibling(&app).await;
        let client = app.service_client("read").await;
        let rs = app.resource_server().await;
        let token = app.issue_token(&client).await;
        let watched = Watched::cached(&app, other.as_ref(), &rs, &[&token]).await;

        assert_eq!(app.revoke(&client, &token).await.status(), StatusCode::OK);

        watched.inactive_at_once("access token revoked").await;
    }
}

db_test! {
    async fn revoking_a_refresh_token_inactivates_the_cached_access_tokens_of_its_grant(app: TestApp) {
        let other = sibling(&app).await;
        let client = app.web_app(false).await;
        let rs = app.resource_server().await;
        let first = crate::refresh::signed_in(&app, &client).await;
        // Two access tokens of the grant: the refresh token revoked is the second one's.
        let second: Value = app
            .refresh(&client, first["refresh_token"].as_str().unwrap(), None)
            .await
            .json()
            .await
            .unwrap();
        let tokens = [first["access_token"].as_str().unwrap(), second["access_token"].as_str().unwrap()];
        let watched = Watched::cached(&app, other.as_ref(), &rs, &tokens).await;

        let response = app.revoke(&client, second["refresh_token"].as_str().unwrap()).await;
        assert_eq!(response.status(), StatusCode::OK);

        watched.inactive_at_once("grant revoked through its refresh token").await;
    }
}

db_test_with! {
    crate::refresh::no_retry_window,
    async fn a_reused_refresh_token_inactivates_the_cached_access_tokens_of_its_grant(app: TestApp) {
        let other = sibling(&app).await;
        let client = app.web_app(false).await;
        let rs = app.resource_server().await;
        let first = crate::refresh::signed_in(&app, &client).await;
        let rotated = first["refresh_token"].as_str().unwrap();
        let second: Value = app.refresh(&client, rotated, None).await.json().await.unwrap();
        let tokens = [first["access_token"].as_str().unwrap(), second["access_token"].as_str().unwrap()];
        let watched = Watched::cached(&app, other.as_ref(), &rs, &tokens).await;

        let reuse = app.refresh(&client, rotated, None).await;
        assert_eq!(reuse.status(), StatusCode::BAD_REQUEST);

        watched.inactive_at_once("grant revoked for refresh token reuse").await;
    }
}

db_test! {
    async fn a_replayed_code_inactivates_the_cached_access_token_of_its_first_redemption(app: TestApp) {
        let other = sibling(&app).await;
        app.create_user("ada", PASSWORD).await;
        let client = app.web_app(false).await;
        let rs = app.resource_server().await;
        let pkce = Pkce::new();
        let code = app.authorization_code(&app.browser(), &client, &pkce, "ada", PASSWORD).await;
        let first: Value = app.exchange_code(&client, &code, &pkce.verifier).await.json().await.unwrap();
        let token = first["access_token"].as_str().unwrap();
        let watched = Watched::cached(&app, other.as_ref(), &rs, &[token]).await;

        let replay = app.exchange_code(&client, &code, &pkce.verifier).await;
        assert_eq!(replay.status(), StatusCode::BAD_REQUEST);

        watched.inactive_at_once("grant revoked for a replayed code").await;
    }
}

/// A user signed in to a web app: the user, the resource server, the access token.
async fn users_token(app: &TestApp) -> (umbra::store::User, TestClient, String) {
    let user = app.create_user("ada", PASSWORD).await;
    let client = app.web_app(false).await;
    let rs = app.resource_server().await;
    let token = app
        .user_access_token(&client, "ada", PASSWORD, "read")
        .await;
    (user, rs, token)
}

db_test! {
    async fn a_user_disabled_by_the_cli_has_no_cached_token_left_active(app: TestApp) {
        let other = sibling(&app).await;
        let (user, rs, token) = users_token(&app).await;
        let watched = Watched::cached(&app, other.as_ref(), &rs, &[&token]).await;

        let since = Instant::now();
        assert!(app.store.set_user_disabled(user.id, true, umbra::clock::now()).await.unwrap());

        watched.inactive_everywhere("user disabled", since).await;
    }
}

db_test! {
    async fn a_user_deleted_by_the_cli_has_no_cached_token_left_active(app: TestApp) {
        let other = sibling(&app).await;
        let (user, rs, token) = users_token(&app).await;
        let watched = Watched::cached(&app, other.as_ref(), &rs, &[&token]).await;

        let since = Instant::now();
        assert!(app.store.delete_user(user.id).await.unwrap());

        watched.inactive_everywhere("user deleted", since).await;
    }
}

db_test! {
    async fn a_password_set_by_the_cli_inactivates_the_users_cached_tokens(app: TestApp) {
        let other = sibling(&app).await;
        let (user, rs, token) = users_token(&app).await;
        let watched = Watched::cached(&app, other.as_ref(), &rs, &[&token]).await;
        let hash = Passwords::new(&app.settings.passwords).unwrap().hash("a new password").unwrap();

        let since = Instant::now();
        assert!(app.store.set_user_password(user.id, hash, umbra::clock::now()).await.unwrap());

        watched.inactive_everywhere("password set", since).await;
    }
}

db_test! {
    async fn a_client_deleted_by_the_cli_has_no_cached_token_left_active(app: TestApp) {
        let other = sibling(&app).await;
        let service = app.service_client("read").await;
        let web = app.web_app(false).await;
        let rs = app.resource_server().await;
        app.create_user("ada", PASSWORD).await;
        let service_token = app.issue_token(&service).await;
        let user_token = app.user_access_token(&web, "ada", PASSWORD, "read").await;
        let watched_service = Watched::cached(&app, other.as_ref(), &rs, &[&service_token]).await;
        let watched_web = Watched::cached(&app, other.as_ref(), &rs, &[&user_token]).await;

        let since = Instant::now();
        assert!(app.store.delete_client(&service.id).await.unwrap());
        assert!(app.store.delete_client(&web.id).await.unwrap());

        watched_service.inactive_everywhere("client deleted (client_credentials)", since).await;
        watched_web.inactive_everywhere("client deleted (a user's token)", since).await;
    }
}

db_test! {
    async fn withdrawn_consent_inactivates_the_cached_tokens_of_that_client_only(app: TestApp) {
        let other = sibling(&app).await;
        let client = app.web_app(true).await;
        let another = app.web_app(false).await;
        let rs = app.resource_server().await;
        let browser = app.browser();
        let tokens = crate::consent::approved_once(&app, &browser, &client).await;
        let token = tokens["access_token"].as_str().unwrap();
        let untouched = app.user_access_token(&another, "ada", PASSWORD, "read").await;
        let watched = Watched::cached(&app, other.as_ref(), &rs, &[token]).await;
        Watched::cached(&app, other.as_ref(), &rs, &[&untouched]).await;
        let csrf = browser.form_token("/account").await;

        let response = browser
            .post(&format!("/account/consents/{}/withdraw", client.id), &[("csrf_token", &csrf)])
            .await;
        assert_eq!(location(&response), "/account");

        watched.inactive_at_once("consent withdrawn").await;
        for instance in std::iter::once(&app).chain(other.as_ref()) {
            assert_eq!(instance.introspection_of(&rs, &untouched).await["active"], true);
        }
    }
}

db_test! {
    async fn revoking_the_origin_grant_inactivates_a_cached_exchanged_token(app: TestApp) {
        use crate::token_exchange::{ORDERS, chain, exchanged, signed_in};
        let other = sibling(&app).await;
        let c = chain(&app).await;
        let (for_gateway, refresh, _) = signed_in(&app, &c.web).await;
        let for_orders = exchanged(&app, &c.gateway, &for_gateway, ORDERS).await;
        let watched = Watched::cached(&app, other.as_ref(), &c.orders, &[&for_orders]).await;

        assert_eq!(app.revoke(&c.web, &refresh).await.status(), StatusCode::OK);

        watched.inactive_at_once("origin grant of an exchanged token revoked").await;
    }
}

db_test! {
    async fn a_resource_deleted_by_the_cli_has_no_cached_token_for_it_left_active(app: TestApp) {
        use crate::audiences::{BILLING, ORDERS, access_token, client_credentials, fleet};
        let other = sibling(&app).await;
        let fleet = fleet(&app).await;
        let both = access_token(
            client_credentials(&app, &fleet.service, &[("resource", ORDERS), ("resource", BILLING)]).await,
        )
        .await;
        // Asked by billing's resource server, which stays allowed to see the token: only the
        // revocation that came with the deletion can make it inactive there.
        let both = both["access_token"].as_str().unwrap();
        let watched = Watched::cached(&app, other.as_ref(), &fleet.billing_rs, &[both]).await;

        let since = Instant::now();
        assert!(app.store.delete_resource(ORDERS, umbra::clock::now()).await.unwrap());

        watched.inactive_everywhere("resource deleted", since).await;
    }
}

db_test_with! {
    |settings| settings.tokens.access_token_ttl_secs = 2,
    async fn a_cached_token_is_inactive_once_it_expires(app: TestApp) {
        let other = sibling(&app).await;
        let client = app.service_client("read").await;
        let rs = app.resource_server().await;
        // A first token gets both instances to follow the change log, so that the one under
        // test is cached well before it expires.
        let warm_up = app.issue_token(&client).await;
        Watched::cached(&app, other.as_ref(), &rs, &[&warm_up]).await;
        let token = app.issue_token(&client).await;
        let exp = app.introspection_of(&rs, &token).await["exp"].as_i64().unwrap();
        Watched::cached(&app, other.as_ref(), &rs, &[&token]).await;
        assert!(umbra::clock::now() < exp, "cached before it expired");

        while umbra::clock::now() < exp {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }

        // Expiry needs no event: no instance may answer from its cache past `exp`.
        for instance in std::iter::once(&app).chain(other.as_ref()) {
            assert_eq!(instance.introspection_of(&rs, &token).await, json!({"active": false}));
        }
    }
}

/// Introspections at each instance that run concurrently with a revocation.
const RACERS: usize = 24;

/// One introspection of a racer: when it started and ended, and whether it answered active.
struct Answered {
    started: Instant,
    ended: Instant,
    active: bool,
}

/// Introspects `token` again and again until one introspection started after the instant
/// `until` is set to.
async fn race(
    app: &TestApp,
    caller: &TestClient,
    token: &str,
    until: &OnceLock<Instant>,
) -> Vec<Answered> {
    let mut answers = Vec::new();
    loop {
        let started = Instant::now();
        let active = app.introspection_of(caller, token).await["active"] == true;
        answers.push(Answered {
            started,
            ended: Instant::now(),
            active,
        });
        if until.get().is_some_and(|until| started >= *until) {
            return answers;
        }
    }
}

db_test! {
    async fn introspections_racing_a_revocation_never_answer_active_once_it_returned(app: TestApp) {
        let other = sibling(&app).await;
        let client = app.service_client("read").await;
        let rs = app.resource_server().await;
        let instances: Vec<&TestApp> = std::iter::once(&app).chain(other.as_ref()).collect();
        // In even rounds the token is cached before the race, so the revocation must evict it.
        // In odd rounds it is not: the racers' first lookups miss and fill the cache while the
        // revocation commits, and a fill with a row read just before the commit must not
        // outlive the eviction. That window is narrow, hence several rounds with the
        // revocation sent a little later each time.
        for round in 0..8u64 {
            let token = app.issue_token(&client).await;
            let cached_first = round % 2 == 0;
            if cached_first {
                Watched::cached(&app, other.as_ref(), &rs, &[&token]).await;
            }
            let until = OnceLock::new();
            let racers = instances.iter().map(|instance| {
                join_all((0..RACERS).map(|_| race(instance, &rs, &token, &until)))
            });
            let revocation = async {
                let head_start = if cached_first { 100 } else { round * 2 };
                tokio::time::sleep(Duration::from_millis(head_start)).await;
                assert_eq!(app.revoke(&client, &token).await.status(), StatusCode::OK);
                let returned = Instant::now();
                if let Some(other) = other.as_ref() {
                    inactive_within(other, &rs, &token, returned, ACROSS_INSTANCES).await;
                }
                // Every racer goes on until it has introspected once after both instances knew.
                let known_everywhere = Instant::now();
                until.set(known_everywhere).unwrap();
                (returned, known_everywhere)
            };
            let (answers, (returned, known_everywhere)) = tokio::join!(join_all(racers), revocation);

            for (n, answers) in answers.into_iter().enumerate() {
                let answers: Vec<Answered> = answers.into_iter().flatten().collect();
                // At the instance that revoked, from the moment the revocation returned; at the
                // other, from the first inactive answer it gave after that.
                let known = if n == 0 {
                    returned
                } else {
                    answers
                        .iter()
                        .filter(|a| a.started >= returned && !a.active)
                        .map(|a| a.ended)
                        .chain([known_everywhere])
                        .min()
                        .unwrap()
                };
                let after: Vec<&Answered> = answers.iter().filter(|a| a.started >= known).collect();
                let active = after.iter().filter(|a| a.active).count();
                println!(
                    "round {round} (cached first: {cached_first}), instance {n}: {} introspections, {} after the revocation was known ({:?} after it returned), {active} of them active",
                    answers.len(),
                    after.len(),
                    known - returned,
                );
                assert!(after.len() >= RACERS, "the racers ran on after the revocation");
                assert_eq!(active, 0, "round {round}, instance {n}: active after the revocation");
            }
            let last = join_all((0..RACERS).map(|n| instances[n % instances.len()].introspection_of(&rs, &token))).await;
            assert!(last.iter().all(|a| *a == json!({"active": false})), "{last:?}");
        }
    }
}

db_test! {
    async fn while_the_change_log_cannot_be_read_the_cache_is_bypassed(app: TestApp) {
        use entity::access_token;
        use sea_orm::sea_query::Expr;
        use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};
        let client = app.service_client("read").await;
        let rs = app.resource_server().await;
        let token = app.issue_token(&client).await;
        let watched = Watched::cached(&app, None, &rs, &[&token]).await;

        app.store.connection().execute_unprepared("DROP TABLE change_log").await.unwrap();
        // A revocation the log cannot carry: only bypassing the cache can show it.
        let since = Instant::now();
        let hash = umbra::oauth::token::parse(&token).unwrap().hash;
        let revoked = access_token::Entity::update_many()
            .col_expr(access_token::Column::RevokedAt, Expr::value(umbra::clock::now()))
            .filter(access_token::Column::Hash.eq(hash.as_bytes().to_vec()))
            .exec(app.store.connection())
            .await
            .unwrap();
        assert_eq!(revoked.rows_affected, 1);

        watched.inactive_everywhere("revoked behind the change log's back", since).await;
        let bypassed = "umbra_introspection_cache_lookups_total{outcome=\"bypass\"}";
        assert!(cache_metric(&app, bypassed).await > 0.0, "{}", app.metrics().await);
    }
}

db_test_with! {
    |settings| settings.introspection.cache_enabled = false,
    async fn with_the_cache_disabled_no_introspection_is_answered_from_memory(app: TestApp) {
        let client = app.service_client("read").await;
        let rs = app.resource_server().await;
        let token = app.issue_token(&client).await;

        let answers = join_all((0..RACERS).map(|_| app.introspection_of(&rs, &token))).await;
        let revoked = app.revoke(&client, &token).await;

        assert!(answers.iter().all(|a| a["active"] == true), "{answers:?}");
        assert_eq!(revoked.status(), StatusCode::OK);
        assert_eq!(app.introspection_of(&rs, &token).await, json!({"active": false}));
        // A cache that is off exports no series of its own; none may count a hit or an entry.
        let metrics = app.metrics().await;
        let hits = "umbra_introspection_cache_lookups_total{outcome=\"hit\"}";
        assert_eq!(metric_value(&metrics, hits).unwrap_or(0.0), 0.0, "{metrics}");
        let entries = metric_value(&metrics, "umbra_introspection_cache_entries");
        assert_eq!(entries.unwrap_or(0.0), 0.0, "{metrics}");
    }
}
