//! One integration-test binary. Every test runs twice, against SQLite and against Postgres
//! (when `TEST_DATABASE_URL` is set), each time on a fresh database and a freshly started app.

/// Declares a test that runs on both backends: `mod name { fn sqlite(); fn postgres(); }`.
macro_rules! db_test {
    ($(#[$meta:meta])* async fn $name:ident($app:ident: TestApp) $body:block) => {
        $(#[$meta])*
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            async fn body($app: umbra_tests::TestApp) $body

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                if let Some(app) = umbra_tests::TestApp::spawn(umbra_tests::Backend::Sqlite).await {
                    body(app).await;
                }
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if let Some(app) = umbra_tests::TestApp::spawn(umbra_tests::Backend::Postgres).await {
                    body(app).await;
                }
            }
        }
    };
}

mod authorize_errors;
mod bad_input;
mod client_credentials;
mod code_flow;
mod compose;
mod consent;
mod discovery;
mod interop;
mod introspection;
mod operations;
mod outage;
mod refresh;
mod revocation;
mod robustness;
mod senders;
mod sign_in;
mod storage;
mod two_factor;
mod two_factor_api;
