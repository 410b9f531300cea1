//! One integration-test binary. Every test runs twice, against SQLite and against Postgres
//! (when `TEST_DATABASE_URL` is set), each time on a fresh database and a freshly started app.

/// Declares a test that runs on both backends: `mod name { fn sqlite(); fn postgres(); }`.
macro_rules! db_test {
    ($(#[$meta:meta])* async fn $name:ident($app:ident: TestApp) $body:block) => {
        db_test_with! { |_| {}, $(#[$meta])* async fn $name($app: TestApp) $body }
    };
}

/// [`db_test!`] on an app started with `$configure` applied to its settings.
macro_rules! db_test_with {
    ($configure:expr, $(#[$meta:meta])* async fn $name:ident($app:ident: TestApp) $body:block) => {
        $(#[$meta])*
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            async fn body($app: umbra_tests::TestApp) $body

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let app = umbra_tests::TestApp::spawn_with(umbra_tests::Backend::Sqlite, $configure);
                if let Some(app) = app.await {
                    body(app).await;
                }
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let app =
                    umbra_tests::TestApp::spawn_with(umbra_tests::Backend::Postgres, $configure);
                if let Some(app) = app.await {
                    body(app).await;
                }
            }
        }
    };
}

mod admin_api;
mod audiences;
mod authorize_errors;
mod bad_input;
mod bounded;
mod change_log;
mod client_credentials;
mod code_flow;
mod compose;
mod consent;
mod consent_binding;
mod console;
mod deleted_client;
mod discovery;
mod interop;
mod introspection;
mod introspection_cache;
mod issue_batch;
mod keys;
mod large_tokens;
mod leases;
mod lockout;
mod migrations;
mod openid;
mod operations;
mod outage;
mod pages;
mod private_key_jwt;
mod proxy_limits;
mod redirect_uris;
mod refresh;
mod refresh_retry;
mod registration;
mod revocation;
mod revocation_stream;
mod robustness;
mod senders;
mod serializable;
mod shared_limits;
mod sign_in;
mod signed_introspection;
mod standards;
mod step_up;
mod storage;
mod token_exchange;
mod two_factor;
mod two_factor_api;
