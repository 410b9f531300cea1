//! Migrations as a job: many processes migrating one database apply each migration once, a
//! second run waits for the first (within a bound), and an expand migration applied to the
//! live database of a running instance fails none of its requests.
use futures_util::future::join_all;
use migration::{ColumnDef, ConnectionTrait, Index, Table};
use migration::{DbErr, MigrationName, MigrationTrait, Migrator, MigratorTrait, SchemaManager};
use sea_orm::DbBackend;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use umbra::settings::DatabaseSettings;
use umbra::store::{self, Holder, Store};
use umbra_tests::{TestApp, TestDatabase};

/// The settings of `app` pointed at `database`.
fn settings_for(app: &TestApp, database: &TestDatabase) -> DatabaseSettings {
    DatabaseSettings {
        url: database.url().to_owned(),
        ..app.settings.database.clone()
    }
}

db_test! {
    async fn dozens_of_processes_migrating_a_fresh_database_together_apply_each_migration_once(app: TestApp) {
        let database = TestDatabase::create(app.backend).await.unwrap();
        let settings = settings_for(&app, &database);

        let runs = join_all((0..16).map(|_| store::migrate(&settings))).await;

        for run in runs {
            run.expect("every run succeeds: the first applies, the others find nothing to do");
        }
        let db = store::connect(&settings).await.unwrap();
        let status = store::schema_status::<Migrator>(&db).await.unwrap();
        assert!(status.pending.is_empty() && status.unknown.is_empty(), "{status:?}");
        store::check_schema(&db, false).await.unwrap();
        let lease = Store::new(db.clone()).lease("migrations").await.unwrap();
        assert!(lease.is_none(), "released after use: {lease:?}");
        db.close().await.ok();
    }
}

db_test! {
    async fn a_migration_run_waits_for_the_lease_holder_and_gives_up_after_the_bound(app: TestApp) {
        let other = Holder::generate();
        let now = umbra::clock::now();
        assert!(app.store.acquire_lease("migrations", &other, now, 600).await.unwrap());
        let mut settings = app.settings.database.clone();
        settings.migration_wait_secs = 1;

        let started = Instant::now();
        let refused = store::migrate(&settings).await.expect_err("the lease is held");

        let waited = started.elapsed();
        assert!(waited >= Duration::from_secs(1) && waited < Duration::from_secs(5), "{waited:?}");
        let message = refused.to_string();
        assert!(message.contains("migrations are being applied by"), "{message}");
        assert!(message.contains(other.as_str()), "names the holder: {message}");
        assert!(message.contains("UMBRA__DATABASE__MIGRATION_WAIT_SECS"), "{message}");
        assert!(!message.contains('\n'), "{message}");

        settings.migration_wait_secs = 30;
        let waiting = tokio::spawn({
            let settings = settings.clone();
            async move {
                let started = Instant::now();
                store::migrate(&settings).await.map(|()| started.elapsed())
            }
        });
        tokio::time::sleep(Duration::from_millis(700)).await;
        assert!(!waiting.is_finished(), "waits while the lease is held");
        app.store.release_lease("migrations", &other).await.unwrap();
        let waited = waiting.await.unwrap().expect("runs once the lease is free");
        assert!(waited < Duration::from_secs(5), "{waited:?}");
    }
}

/// An expand-style migration as the rule in docs/migrations.md writes them: a nullable
/// column, a backfill in batches that commit one by one, then an index built without blocking
/// writes. It pauses between batches as a backfill of a big table would take time.
struct ExpandAccessTokens;

impl MigrationName for ExpandAccessTokens {
    fn name(&self) -> &str {
        "m20991231_000001_expand_access_tokens_for_a_test"
    }
}

#[migration::async_trait::async_trait]
impl MigrationTrait for ExpandAccessTokens {
    fn use_transaction(&self) -> Option<bool> {
        // One transaction around it all would hold the ALTER TABLE's lock until the end.
        Some(false)
    }

    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table("access_tokens")
                    .add_column(ColumnDef::new("note").string_len(32).null())
                    .to_owned(),
            )
            .await?;
        let db = manager.get_connection();
        for _ in 0..5 {
            backfill_batch(db).await?;
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        match db.get_database_backend() {
            DbBackend::Postgres => {
                db.execute_unprepared(
                    "CREATE INDEX CONCURRENTLY idx_access_tokens_note ON access_tokens (note)",
                )
                .await?;
            }
            _ => {
                manager
                    .create_index(
                        Index::create()
                            .name("idx_access_tokens_note")
                            .table("access_tokens")
                            .col("note")
                            .to_owned(),
                    )
                    .await?;
            }
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name("idx_access_tokens_note")
                    .table("access_tokens")
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table("access_tokens")
                    .drop_column("note")
                    .to_owned(),
            )
            .await
    }
}

/// Backfills one batch, again when it loses a race with the running version's writes under
/// SERIALIZABLE (SQLSTATE 40001), as every backfill batch must.
async fn backfill_batch(db: &migration::SchemaManagerConnection<'_>) -> Result<(), DbErr> {
    const BATCH: &str = "UPDATE access_tokens SET note = 'backfilled' WHERE hash IN \
        (SELECT hash FROM access_tokens WHERE note IS NULL LIMIT 500)";
    let mut attempt = 0;
    loop {
        match db.execute_unprepared(BATCH).await {
            Ok(_) => return Ok(()),
            Err(err) if attempt < 20 && serialization_failure(&err) => {
                attempt += 1;
                tokio::time::sleep(Duration::from_millis(10 * attempt)).await;
            }
            Err(err) => return Err(err),
        }
    }
}

fn serialization_failure(err: &DbErr) -> bool {
    let DbErr::Exec(sea_orm::RuntimeErr::SqlxError(e)) = err else {
        return false;
    };
    e.as_database_error()
        .and_then(|e| e.code())
        .is_some_and(|code| code == "40001")
}

/// Umbra's migrations and the test's expansion, as the next release's migrator would be.
struct NextRelease;

#[migration::async_trait::async_trait]
impl MigratorTrait for NextRelease {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        let mut all = Migrator::migrations();
        all.push(Box::new(ExpandAccessTokens));
        all
    }
}

/// What a steady load saw: requests that succeeded, failed, and succeeded while the
/// migration ran.
#[derive(Default)]
struct Tally {
    ok: AtomicUsize,
    failed: AtomicUsize,
    during: AtomicUsize,
    /// The first few failures, for the assertion message.
    failures: std::sync::Mutex<Vec<String>>,
}

db_test! {
    async fn an_expand_migration_applied_to_the_live_database_fails_no_request(app: TestApp) {
        let app = Arc::new(app);
        let client = app.service_client("read").await;
        let introspector = app.resource_server().await;
        let tally = Arc::new(Tally::default());
        let migrating = Arc::new(AtomicBool::new(false));
        let stop = Arc::new(AtomicBool::new(false));
        let workers: Vec<_> = (0..8)
            .map(|_| {
                let (app, client, introspector) = (app.clone(), client.clone(), introspector.clone());
                let (tally, migrating, stop) = (tally.clone(), migrating.clone(), stop.clone());
                tokio::spawn(async move {
                    while !stop.load(Ordering::Relaxed) {
                        let issued = app.post_token(Some(&client), &[("grant_type", "client_credentials")]).await;
                        let failure = match issued.status().is_success() {
                            true => {
                                let body: serde_json::Value = issued.json().await.unwrap();
                                let token = body["access_token"].as_str().unwrap();
                                let answer = app.introspect(&introspector, token).await;
                                let status = answer.status();
                                let body = answer.text().await.unwrap();
                                (!status.is_success() || !body.contains("\"active\":true"))
                                    .then(|| format!("introspection: {status} {body}"))
                            }
                            false => Some(format!("issuance: {} {}", issued.status(), issued.text().await.unwrap())),
                        };
                        let ok = failure.is_none();
                        if let Some(failure) = failure {
                            let mut failures = tally.failures.lock().unwrap();
                            if failures.len() < 3 {
                                failures.push(failure);
                            }
                        }
                        let counter = if ok { &tally.ok } else { &tally.failed };
                        counter.fetch_add(1, Ordering::Relaxed);
                        if ok && migrating.load(Ordering::Relaxed) {
                            tally.during.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(500)).await;

        migrating.store(true, Ordering::Relaxed);
        let started = Instant::now();
        store::migrate_with::<NextRelease>(&app.settings.database).await.expect("the expansion applies");
        let took = started.elapsed();
        migrating.store(false, Ordering::Relaxed);
        tokio::time::sleep(Duration::from_millis(500)).await;
        stop.store(true, Ordering::Relaxed);
        for worker in workers {
            worker.await.unwrap();
        }

        let (ok, failed, during) = (
            tally.ok.load(Ordering::Relaxed),
            tally.failed.load(Ordering::Relaxed),
            tally.during.load(Ordering::Relaxed),
        );
        println!("{ok} issued and introspected, {during} of them during the {took:?} migration, {failed} failed");
        assert_eq!(failed, 0, "{ok} issued and introspected, {failed} failed: {:?}", tally.failures.lock().unwrap());
        assert!(during >= 20, "only {during} of {ok} during the {took:?} migration");
        let status = store::schema_status::<NextRelease>(app.store.connection()).await.unwrap();
        assert!(status.pending.is_empty(), "{status:?}");
        assert!(SchemaManager::new(app.store.connection()).has_column("access_tokens", "note").await.unwrap());
        let token = app.issue_token(&client).await;
        assert_eq!(app.introspection_of(&introspector, &token).await["active"], true);
    }
}
