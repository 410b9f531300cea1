//! The database goes away and comes back (Postgres: connections refused, then allowed).
use reqwest::StatusCode;
use sea_orm::{ConnectionTrait, Database};
use std::time::Duration;
use umbra_tests::{Backend, TestApp};

async fn admin(app: &TestApp, sql: &str) {
    let (admin_url, _) = app.database.admin_url().unwrap();
    let admin = Database::connect(admin_url).await.unwrap();
    admin.execute_unprepared(sql).await.unwrap();
    admin.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_get_503_while_the_database_is_down_and_succeed_once_it_is_back() {
    let Some(app) =
        TestApp::spawn_with(Backend::Postgres, |s| s.database.acquire_timeout_secs = 1).await
    else {
        return;
    };
    let client = app.service_client("read").await;
    let rs = app.resource_server().await;
    let token = app.issue_token(&client).await;
    let (_, name) = app.database.admin_url().unwrap();
    let name = name.to_owned();

    admin(
        &app,
        &format!("ALTER DATABASE \"{name}\" ALLOW_CONNECTIONS false"),
    )
    .await;
    admin(
        &app,
        &format!("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"),
    )
    .await;

    let response = app
        .post_token(Some(&client), &[("grant_type", "client_credentials")])
        .await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(response.headers().contains_key("retry-after"));
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"], "temporarily_unavailable");
    let response = app.introspect(&rs, &token).await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    let response = app.http.get(app.url("/health/ready")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);

    admin(
        &app,
        &format!("ALTER DATABASE \"{name}\" ALLOW_CONNECTIONS true"),
    )
    .await;

    let mut recovered = false;
    for _ in 0..20 {
        let response = app.introspect(&rs, &token).await;
        if response.status() == StatusCode::OK {
            let body: serde_json::Value = response.json().await.unwrap();
            assert_eq!(body["active"], true);
            recovered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(recovered, "the service did not recover by itself");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sqlite_app_keeps_working_after_a_restart_on_the_same_file() {
    let Some(first) = TestApp::spawn(Backend::Sqlite).await else {
        return;
    };
    let client = first.service_client("read").await;
    let token = first.issue_token(&client).await;

    let second = TestApp::spawn_with(Backend::Sqlite, |s| {
        s.database.url = first.database.url().to_owned()
    })
    .await
    .unwrap();
    let rs = second.resource_server().await;

    assert_eq!(second.introspection_of(&rs, &token).await["active"], true);
}
