//! Builds the application from settings: database, migrations, listeners, servers, background
//! tasks. Tests start the very same thing on port 0.
use crate::auth::limiter::LoginLimiter;
use crate::auth::password::Passwords;
use crate::auth::secret_box::SecretBox;
use crate::http::metrics::{self, Metrics};
use crate::http::{self, AppState, Readiness};
use crate::keys::{KeyPolicy, KeyRing};
use crate::second_factor::SecondFactor;
use crate::sender::{self, CodeSender};
use crate::settings::Settings;
use crate::store::{self, ClientCache, Holder, Store, StoreError, TokenCache};
use crate::telemetry::RequestSpan;
use actix_session::SessionMiddleware;
use actix_session::config::CookieContentSecurity;
use actix_session::storage::CookieSessionStore;
use actix_web::cookie::{Key, SameSite};
use actix_web::dev::Server;
use actix_web::middleware::from_fn;
use actix_web::{App, HttpServer, web};
use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing_actix_web::TracingLogger;

/// Why the service could not start; each message is one line for the operator.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// The store's messages say themselves that they are about the database.
    #[error("{0}")]
    Database(#[from] StoreError),
    #[error("password hashing: {0}")]
    Passwords(#[from] crate::auth::password::PasswordError),
    #[error("metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    #[error("second factor: {0}")]
    SecondFactor(String),
    #[error("signing keys: {0}")]
    Keys(String),
    #[error("HTTP client: {0}")]
    HttpClient(String),
    #[error("cannot listen on {address} ({listener}; 0 picks a free port): {source}")]
    Bind {
        address: String,
        listener: &'static str,
        #[source]
        source: std::io::Error,
    },
}

/// A bound, ready-to-run Umbra.
pub struct Application {
    settings: Arc<Settings>,
    port: u16,
    metrics_port: Option<u16>,
    admin_port: Option<u16>,
    server: Server,
    metrics_server: Option<Server>,
    admin_server: Option<Server>,
    readiness: Readiness,
    stop_background: watch::Sender<bool>,
    cleanup: Option<JoinHandle<()>>,
    key_refresh: JoinHandle<()>,
    change_poller: JoinHandle<()>,
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
        let store = Store::new(store::connect(&settings.database).await?)
            .with_token_cache(token_cache(&settings))
            .with_issue_batching(settings.tokens.issue_batching());
        store::check_schema(store.connection(), settings.database.allow_newer_schema).await?;
        // Who this instance is when it takes a lease (cleanup, key rotation).
        let holder = Holder::generate();
        // Bound first: an unset issuer is the listener's URL, whose port may be chosen here.
        // Connections that arrive meanwhile wait in the backlog until the server runs.
        let mut settings = settings;
        let (listener, port) = bind(&settings.server.host, settings.server.port, HTTP_LISTENER)?;
        settings.default_issuer_to_listener(port);
        let keys = Arc::new(load_keys(&settings, store.clone(), holder.clone()).await?);
        let state = web::Data::new(app_state(
            store.clone(),
            Arc::new(settings),
            sender,
            keys.clone(),
        )?);
        let settings = &state.settings;
        let metrics_listener = match settings.metrics.enabled {
            true => Some(bind(
                &settings.metrics.host,
                settings.metrics.port,
                METRICS_LISTENER,
            )?),
            false => None,
        };
        let admin_listener = match settings.admin.enabled {
            true => Some(bind(
                &settings.admin.host,
                settings.admin.port,
                ADMIN_LISTENER,
            )?),
            false => None,
        };
        let (stop_background, stop) = watch::channel(false);
        let cleanup = store::spawn_cleanup(
            store.clone(),
            settings.cleanup.clone(),
            holder,
            state.metrics.cleanup_passes.clone(),
            stop.clone(),
        );
        let keys_changed = Arc::new(tokio::sync::Notify::new());
        let change_poller = store::ChangePoller {
            store,
            settings: settings.changes.clone(),
            retention_secs: settings.cleanup.change_retention_secs,
            clients: state.clients.clone(),
            keys_changed: keys_changed.clone(),
            failures: state.metrics.change_poll_failures.clone(),
            published: state.revocations.publisher(),
        }
        .spawn(stop.clone());
        let key_refresh = keys.spawn_refresh(
            Duration::from_secs(settings.keys.refresh_secs),
            keys_changed,
            stop,
        );
        let effective = state.settings.clone();
        let readiness = Readiness::default();
        let server = serve(listener, state.clone(), readiness.clone())?;
        let (admin_server, admin_port) = match admin_listener {
            Some((listener, port)) => (Some(serve_admin(listener, state.clone())?), Some(port)),
            None => (None, None),
        };
        let (metrics_server, metrics_port) = match metrics_listener {
            Some((listener, port)) => (Some(serve_metrics(listener, state)?), Some(port)),
            None => (None, None),
        };
        Ok(Self {
            settings: effective,
            port,
            metrics_port,
            admin_port,
            server,
            metrics_server,
            admin_server,
            readiness,
            stop_background,
            cleanup,
            key_refresh,
            change_poller,
        })
    }

    /// The settings in force, with the issuer filled in from the listener when it was unset.
    pub fn settings(&self) -> Arc<Settings> {
        self.settings.clone()
    }

    /// The port actually bound (useful with port 0).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The metrics listener's port, when metrics are enabled.
    pub fn metrics_port(&self) -> Option<u16> {
        self.metrics_port
    }

    /// The admin API listener's port, when the admin API is enabled.
    pub fn admin_port(&self) -> Option<u16> {
        self.admin_port
    }

    /// Serves until SIGTERM or SIGINT: then answers 503 on `/health/ready` while still serving
    /// for `server.shutdown_drain_secs`, stops accepting, lets requests in flight finish (up to
    /// `server.shutdown_timeout_secs`), stops the background tasks and returns.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let handles = std::iter::once(self.server.handle())
            .chain(self.metrics_server.as_ref().map(Server::handle))
            .chain(self.admin_server.as_ref().map(Server::handle))
            .collect::<Vec<_>>();
        let drain = Duration::from_secs(self.settings.server.shutdown_drain_secs);
        let readiness = self.readiness;
        // The servers ignore signals (see `serve`): stopping is decided here, after the drain.
        let on_signal = tokio::spawn(async move {
            shutdown_signal().await;
            readiness.start_draining();
            if !drain.is_zero() {
                tracing::info!(seconds = drain.as_secs(), "draining before shutdown");
                tokio::time::sleep(drain).await;
            }
            for handle in handles {
                handle.stop(true).await;
            }
        });
        let metrics = async {
            match self.metrics_server {
                Some(server) => server.await,
                None => Ok(()),
            }
        };
        let admin = async {
            match self.admin_server {
                Some(server) => server.await,
                None => Ok(()),
            }
        };
        let (served, metrics_served, admin_served) = tokio::join!(self.server, metrics, admin);
        on_signal.abort();
        self.stop_background.send_replace(true);
        if let Some(cleanup) = self.cleanup {
            cleanup.await.ok();
        }
        self.key_refresh.await.ok();
        self.change_poller.await.ok();
        tracing::info!("umbra stopped");
        served.and(metrics_served).and(admin_served)
    }
}

/// SIGTERM (what orchestrators send) or SIGINT (Ctrl-C).
async fn shutdown_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(err) => {
                tracing::warn!(error = %err, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        _ = terminate => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}

/// What each listener is and which settings move it, for the message when it cannot bind
/// (most often: another instance already runs on this machine).
const HTTP_LISTENER: &str = "HTTP listener, `server.port` / `UMBRA__SERVER__PORT`";
const METRICS_LISTENER: &str = "metrics listener, `metrics.port` / `UMBRA__METRICS__PORT`";
const ADMIN_LISTENER: &str = "admin API listener, `admin.port` / `UMBRA__ADMIN__PORT`";

fn bind(host: &str, port: u16, listener: &'static str) -> Result<(TcpListener, u16), StartupError> {
    let address = format!("{host}:{port}");
    let bound = TcpListener::bind(&address).and_then(|listener| {
        let port = listener.local_addr()?.port();
        Ok((listener, port))
    });
    bound.map_err(|source| StartupError::Bind {
        address,
        listener,
        source,
    })
}

pub(crate) fn app_state(
    store: Store,
    settings: Arc<Settings>,
    sender: Arc<dyn CodeSender>,
    keys: Arc<KeyRing>,
) -> Result<AppState, StartupError> {
    if settings.uses_development_key() {
        tracing::warn!(
            "second_factor.encryption_key is not set: TOTP secrets are encrypted with the public \
             development key; set a key before enrolling real users"
        );
    }
    let metrics = Arc::new(Metrics::new(&store)?);
    let production = settings.environment == crate::settings::Environment::Production;
    let remote_jwks = crate::remote_jwks::RemoteJwks::new(&settings.client_assertions, production)
        .map_err(|e| StartupError::HttpClient(e.to_string()))?;
    Ok(AppState {
        factors: second_factor(&settings, store.clone(), sender)?
            .with_failure_counter(metrics.second_factor_failures.clone()),
        limiter: LoginLimiter::new(store.clone(), &settings.login),
        store,
        clients: ClientCache::new(
            Duration::from_secs(settings.clients.cache_ttl_secs),
            Duration::from_millis(settings.changes.max_staleness_ms),
        ),
        passwords: Arc::new(Passwords::new(&settings.passwords)?),
        metrics,
        keys,
        remote_jwks,
        revocations: crate::http::oauth::revocations::RevocationFeed::new(
            settings.revocations.max_streams,
        ),
        settings,
    })
}

/// The introspection cache `settings` ask for: it serves only while the change log was read
/// less than `changes.max_staleness_ms` ago.
fn token_cache(settings: &Settings) -> TokenCache {
    match settings.introspection.cache_enabled {
        true => TokenCache::new(
            settings.introspection.cache_capacity,
            Duration::from_millis(settings.changes.max_staleness_ms),
        ),
        false => TokenCache::off(),
    }
}

/// The signing-key encryptor and life-cycle rules of `settings`.
pub fn key_parts(settings: &Settings) -> Result<(Arc<SecretBox>, KeyPolicy), StartupError> {
    let key = settings.keys_encryption_key().ok_or_else(|| {
        StartupError::Keys("keys.encryption_key is not 32 bytes of base64".into())
    })?;
    let policy = settings
        .signing_policy()
        .ok_or_else(|| StartupError::Keys("keys.default_algorithm is unknown".into()))?;
    Ok((Arc::new(SecretBox::new(&key)), policy))
}

/// The signing keys, a first one created when there is none.
async fn load_keys(
    settings: &Settings,
    store: Store,
    holder: Holder,
) -> Result<KeyRing, StartupError> {
    if settings.uses_development_signing_key() {
        tracing::warn!(
            "keys.encryption_key is not set: private signing keys are encrypted with the public \
             development key"
        );
    }
    let (sealer, policy) = key_parts(settings)?;
    KeyRing::load(store, sealer, policy, holder, crate::clock::now())
        .await
        .map_err(|e| StartupError::Keys(e.to_string()))
}

fn serve(
    listener: TcpListener,
    state: web::Data<AppState>,
    readiness: Readiness,
) -> Result<Server, StartupError> {
    let readiness = web::Data::new(readiness);
    let settings = state.settings.clone();
    let session_key = session_key(&settings);
    let secure_cookies = settings.server.issuer.starts_with("https://");
    let address = local_address(&listener);
    let server = HttpServer::new(move || {
        let sessions =
            SessionMiddleware::builder(CookieSessionStore::default(), session_key.clone())
                .cookie_name("umbra_session".into())
                .cookie_secure(secure_cookies)
                .cookie_http_only(true)
                .cookie_same_site(SameSite::Lax)
                .cookie_content_security(CookieContentSecurity::Private)
                .build();
        App::new()
            .wrap(from_fn(http::page_extract::plain_detours))
            .wrap(sessions)
            .wrap(from_fn(metrics::record))
            .wrap(TracingLogger::<RequestSpan>::new())
            .app_data(state.clone())
            .app_data(readiness.clone())
            .configure(http::routes)
    });
    let server = server
        .disable_signals()
        .workers(worker_count(settings.server.workers))
        .shutdown_timeout(settings.server.shutdown_timeout_secs)
        .listen(listener)
        .map_err(|source| StartupError::Bind {
            address: address.clone(),
            listener: HTTP_LISTENER,
            source,
        })?;
    tracing::info!(%address, "umbra listening");
    Ok(server.run())
}

/// The metrics listener: one worker, `GET /metrics` and nothing else.
fn serve_metrics(
    listener: TcpListener,
    state: web::Data<AppState>,
) -> Result<Server, StartupError> {
    let address = local_address(&listener);
    let shutdown_timeout = state.settings.server.shutdown_timeout_secs;
    let server = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .route("/metrics", web::get().to(metrics::metrics))
    })
    .disable_signals()
    .workers(1)
    .shutdown_timeout(shutdown_timeout)
    .listen(listener)
    .map_err(|source| StartupError::Bind {
        address: address.clone(),
        listener: METRICS_LISTENER,
        source,
    })?;
    tracing::info!(%address, "metrics listening");
    Ok(server.run())
}

/// The admin API listener: the admin routes and their OpenAPI document, nothing else.
fn serve_admin(listener: TcpListener, state: web::Data<AppState>) -> Result<Server, StartupError> {
    let address = local_address(&listener);
    let shutdown_timeout = state.settings.server.shutdown_timeout_secs;
    let server = HttpServer::new(move || {
        App::new()
            .wrap(TracingLogger::<RequestSpan>::new())
            .app_data(state.clone())
            .configure(http::admin::routes)
    })
    .disable_signals()
    .workers(2)
    .shutdown_timeout(shutdown_timeout)
    .listen(listener)
    .map_err(|source| StartupError::Bind {
        address: address.clone(),
        listener: ADMIN_LISTENER,
        source,
    })?;
    tracing::info!(%address, "admin API listening");
    Ok(server.run())
}

/// `server.workers`, where 0 means one per core.
fn worker_count(configured: usize) -> usize {
    if configured > 0 {
        configured
    } else {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    }
}

fn local_address(listener: &TcpListener) -> String {
    listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_default()
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
