//! Builds the application from settings: database, migrations, listener, server, background
//! tasks. Tests start the very same thing on port 0.
use crate::auth::limiter::LoginLimiter;
use crate::auth::password::Passwords;
use crate::http::{self, AppState};
use crate::second_factor::SecondFactor;
use crate::sender::{self, CodeSender};
use crate::settings::Settings;
use crate::store::{self, ClientCache, Store, StoreError};
use crate::telemetry::RequestSpan;
use actix_session::SessionMiddleware;
use actix_session::config::CookieContentSecurity;
use actix_session::storage::CookieSessionStore;
use actix_web::cookie::{Key, SameSite};
use actix_web::dev::Server;
use actix_web::{App, HttpServer, web};
use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;
use tracing_actix_web::TracingLogger;

/// Why the service could not start; each message is one line for the operator.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("database: {0}")]
    Database(#[from] StoreError),
    #[error("password hashing: {0}")]
    Passwords(#[from] crate::auth::password::PasswordError),
    #[error("second factor: {0}")]
    SecondFactor(String),
    #[error("cannot listen on {address}: {source}")]
    Bind {
        address: String,
        #[source]
        source: std::io::Error,
    },
}

/// A bound, ready-to-run Umbra.
pub struct Application {
    port: u16,
    server: Server,
    cleanup: Option<JoinHandle<()>>,
}

impl Application {
    /// Builds the application with the code sender `sender.kind` names.
    pub async fn build(settings: Settings) -> Result<Self, StartupError> {
        let sender = sender::from_settings(&settings.sender)
            .map_err(|e| StartupError::SecondFactor(format!("sender: {e}")))?;
        Self::build_with(settings, sender).await
    }

    /// Builds the application with the given code sender (tests capture codes this way).
    pub async fn build_with(
        settings: Settings,
        sender: Arc<dyn CodeSender>,
    ) -> Result<Self, StartupError> {
        if settings.database.migrate_on_start {
            store::migrate(&settings.database).await?;
        }
        let db = store::connect(&settings.database).await?;
        let store = Store::new(db);
        let address = format!("{}:{}", settings.server.host, settings.server.port);
        let listener = TcpListener::bind(&address).map_err(|source| StartupError::Bind {
            address: address.clone(),
            source,
        })?;
        let port = listener
            .local_addr()
            .map_err(|source| StartupError::Bind { address, source })?
            .port();
        let cleanup = store::spawn_cleanup(store.clone(), settings.cleanup.clone());
        let server = run(listener, store, Arc::new(settings), sender)?;
        Ok(Self {
            port,
            server,
            cleanup,
        })
    }

    /// The port actually bound (useful with port 0).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Serves until the server is stopped (SIGINT/SIGTERM), then stops background tasks.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let result = self.server.await;
        if let Some(cleanup) = self.cleanup {
            cleanup.abort();
        }
        result
    }
}

fn run(
    listener: TcpListener,
    store: Store,
    settings: Arc<Settings>,
    sender: Arc<dyn CodeSender>,
) -> Result<Server, StartupError> {
    let workers = settings.server.workers;
    let clients = ClientCache::new(Duration::from_secs(settings.clients.cache_ttl_secs));
    let session_key = session_key(&settings);
    let secure_cookies = settings.server.issuer.starts_with("https://");
    if settings.uses_development_key() {
        tracing::warn!(
            "second_factor.encryption_key is not set: TOTP secrets are encrypted with the public \
             development key; set a key before enrolling real users"
        );
    }
    let factors = second_factor(&settings, store.clone(), sender)?;
    let state = web::Data::new(AppState {
        factors,
        store,
        clients,
        passwords: Arc::new(Passwords::new(&settings.passwords)?),
        limiter: LoginLimiter::new(&settings.login),
        settings,
    });
    let address = listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    let mut server = HttpServer::new(move || {
        let sessions =
            SessionMiddleware::builder(CookieSessionStore::default(), session_key.clone())
                .cookie_name("umbra_session".into())
                .cookie_secure(secure_cookies)
                .cookie_http_only(true)
                .cookie_same_site(SameSite::Lax)
                .cookie_content_security(CookieContentSecurity::Private)
                .build();
        App::new()
            .wrap(sessions)
            .wrap(TracingLogger::<RequestSpan>::new())
            .app_data(state.clone())
            .configure(http::routes)
    })
    .listen(listener)
    .map_err(|source| StartupError::Bind {
        address: address.clone(),
        source,
    })?;
    if workers > 0 {
        server = server.workers(workers);
    }
    tracing::info!(%address, "umbra listening");
    Ok(server.run())
}

/// The second-factor service with the configured key (or, outside production, the public
/// development key: the settings refuse a missing key in production).
pub fn second_factor(
    settings: &Settings,
    store: Store,
    sender: Arc<dyn CodeSender>,
) -> Result<SecondFactor, StartupError> {
    let key = settings.second_factor_key().ok_or_else(|| {
        StartupError::SecondFactor("second_factor.encryption_key is not 32 bytes of base64".into())
    })?;
    Ok(SecondFactor::new(
        store,
        &key,
        sender,
        &settings.second_factor,
    ))
}

/// The configured session key, or a random one for this process (development only: the
/// settings refuse an empty key in production).
fn session_key(settings: &Settings) -> Key {
    match settings.session_key() {
        Some(bytes) => Key::derive_from(&bytes),
        None => {
            tracing::warn!(
                "session.key is not set: using a random key, so sign-ins do not survive a restart \
                 and are not shared between instances"
            );
            Key::generate()
        }
    }
}
