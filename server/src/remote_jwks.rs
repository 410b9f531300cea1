//! The keys of `private_key_jwt` clients registered with a `jwks_uri`: fetched over HTTP with
//! timeouts and a size limit (https only in production), cached per client for
//! `client_assertions.jwks_cache_ttl_secs`, and fetched again when an assertion names a `kid`
//! the cached keys lack (a key rotation), at most once per
//! `client_assertions.jwks_refetch_interval_secs`, so that unknown `kid`s cannot make Umbra
//! fetch on every request. A failed fetch is not retried within that interval either.
//!
//! The cache holds what clients publish, not Umbra's own state: each instance keeps its own,
//! and a client's key removal takes effect everywhere within the TTL.
//!
//! Requests for one client wait for a fetch in progress instead of starting their own, so a
//! burst after a rotation costs one fetch.
use crate::oauth::client_jwks::{ClientJwks, JwksError, MAX_JWKS_BYTES};
use crate::settings::ClientAssertionSettings;
use reqwest::header;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Why a client's keys could not be had. Logged; the client learns only that its keys could
/// not be fetched.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("the jwks_uri is not https, which production requires")]
    Insecure,
    #[error("the jwks_uri could not be fetched: {0}")]
    Unreachable(String),
    #[error("the jwks_uri answered HTTP {0}")]
    Status(u16),
    #[error("the jwks_uri answered more than {MAX_JWKS_BYTES} bytes")]
    TooLarge,
    #[error("the jwks_uri does not serve a usable JWK Set: {0}")]
    Invalid(#[from] JwksError),
    #[error("the last fetch of the jwks_uri failed moments ago; not retried yet")]
    RecentlyFailed,
}

/// Keys fetched from clients' `jwks_uri`s. Cheap to share: clones share the cache and the
/// connection pool.
#[derive(Clone)]
pub struct RemoteJwks {
    http: reqwest::Client,
    entries: moka::sync::Cache<(String, String), Arc<Entry>>,
    ttl: Duration,
    refetch_interval: Duration,
    https_only: bool,
}

/// One client's keys and the times that limit fetching them.
#[derive(Default)]
struct Entry {
    state: Mutex<State>,
    /// Held while fetching, so that concurrent requests wait for one fetch.
    fetching: tokio::sync::Mutex<()>,
}

#[derive(Default)]
struct State {
    keys: Option<(Arc<ClientJwks>, Instant)>,
    /// The last fetch made because an assertion's `kid` was unknown.
    refetched_at: Option<Instant>,
    /// The last fetch that failed.
    failed_at: Option<Instant>,
}

impl Entry {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn fresh(&self, now: Instant, ttl: Duration) -> Option<Arc<ClientJwks>> {
        match &self.state().keys {
            Some((keys, at)) if now.saturating_duration_since(*at) < ttl => Some(keys.clone()),
            _ => None,
        }
    }
}

impl RemoteJwks {
    /// A fetcher configured by `[client_assertions]`; `https_only` in production.
    pub fn new(settings: &ClientAssertionSettings, https_only: bool) -> reqwest::Result<Self> {
        crate::sender::install_crypto_provider();
        let timeout = Duration::from_secs(settings.jwks_timeout_secs);
        let http = reqwest::Client::builder()
            .connect_timeout(timeout)
            .timeout(timeout)
            // A redirect could lead anywhere; the registered URL is the one trusted.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("umbra/", env!("CARGO_PKG_VERSION")))
            .build()?;
        let ttl = Duration::from_secs(settings.jwks_cache_ttl_secs);
        let refetch_interval = Duration::from_secs(settings.jwks_refetch_interval_secs);
        Ok(Self {
            http,
            entries: moka::sync::Cache::builder()
                .max_capacity(10_000)
                // Rate-limit state must outlive the keys it guards.
                .time_to_idle(ttl.max(refetch_interval).saturating_mul(2))
                .build(),
            ttl,
            refetch_interval,
            https_only,
        })
    }

    fn entry(&self, client_id: &str, uri: &str) -> Arc<Entry> {
        self.entries
            .get_with((client_id.to_owned(), uri.to_owned()), Default::default)
    }

    /// `client_id`'s keys from `uri`: the cached ones while fresh, else fetched.
    pub async fn keys(&self, client_id: &str, uri: &str) -> Result<Arc<ClientJwks>, FetchError> {
        let entry = self.entry(client_id, uri);
        if let Some(keys) = entry.fresh(Instant::now(), self.ttl) {
            return Ok(keys);
        }
        let _fetching = entry.fetching.lock().await;
        let now = Instant::now();
        // Another request may have fetched them while this one waited.
        if let Some(keys) = entry.fresh(now, self.ttl) {
            return Ok(keys);
        }
        if self.failed_recently(&entry, now) {
            return Err(FetchError::RecentlyFailed);
        }
        self.fetch_into(&entry, client_id, uri, now).await
    }

    /// Fetches `client_id`'s keys again because `seen` lacked what an assertion named. `None`
    /// when that was done less than the refetch interval ago: the keys are what they are.
    pub async fn refetch(
        &self,
        client_id: &str,
        uri: &str,
        seen: &Arc<ClientJwks>,
    ) -> Result<Option<Arc<ClientJwks>>, FetchError> {
        let entry = self.entry(client_id, uri);
        let _fetching = entry.fetching.lock().await;
        let now = Instant::now();
        {
            let mut state = entry.state();
            // A request that waited here while another refetched uses what it got.
            if let Some((keys, _)) = &state.keys
                && !Arc::ptr_eq(keys, seen)
            {
                return Ok(Some(keys.clone()));
            }
            let recent = |at: Option<Instant>| {
                at.is_some_and(|at| now.saturating_duration_since(at) < self.refetch_interval)
            };
            if recent(state.refetched_at) || recent(state.failed_at) {
                return Ok(None);
            }
            state.refetched_at = Some(now);
        }
        self.fetch_into(&entry, client_id, uri, now).await.map(Some)
    }

    fn failed_recently(&self, entry: &Entry, now: Instant) -> bool {
        entry
            .state()
            .failed_at
            .is_some_and(|at| now.saturating_duration_since(at) < self.refetch_interval)
    }

    async fn fetch_into(
        &self,
        entry: &Entry,
        client_id: &str,
        uri: &str,
        now: Instant,
    ) -> Result<Arc<ClientJwks>, FetchError> {
        let fetched = self.fetch(uri).await.map(Arc::new);
        let mut state = entry.state();
        match &fetched {
            Ok(keys) => {
                tracing::info!(
                    client_id,
                    jwks_uri = uri,
                    keys = keys.keys().len(),
                    "fetched client keys"
                );
                state.keys = Some((keys.clone(), now));
                state.failed_at = None;
            }
            Err(err) => {
                tracing::warn!(client_id, jwks_uri = uri, error = %err, "cannot fetch client keys");
                state.failed_at = Some(now);
            }
        }
        fetched
    }

    async fn fetch(&self, uri: &str) -> Result<ClientJwks, FetchError> {
        if self.https_only && !uri.starts_with("https://") {
            return Err(FetchError::Insecure);
        }
        let unreachable =
            |err: reqwest::Error| FetchError::Unreachable(err.without_url().to_string());
        let mut response = self
            .http
            .get(uri)
            .header(header::ACCEPT, "application/jwk-set+json, application/json")
            .send()
            .await
            .map_err(unreachable)?;
        if response.status() != reqwest::StatusCode::OK {
            return Err(FetchError::Status(response.status().as_u16()));
        }
        if response
            .content_length()
            .is_some_and(|len| len > MAX_JWKS_BYTES as u64)
        {
            return Err(FetchError::TooLarge);
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(unreachable)? {
            if body.len() + chunk.len() > MAX_JWKS_BYTES {
                return Err(FetchError::TooLarge);
            }
            body.extend_from_slice(&chunk);
        }
        Ok(ClientJwks::parse_published(&body)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::Settings;

    fn fetcher(https_only: bool) -> RemoteJwks {
        let settings = Settings::built_in().unwrap().client_assertions;
        RemoteJwks::new(&settings, https_only).unwrap()
    }

    #[tokio::test]
    async fn production_fetches_https_only_and_a_failure_is_not_retried_at_once() {
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let plain = format!("http://{}/jwks.json", closed.local_addr().unwrap());
        drop(closed);
        let plain = plain.as_str();
        let production = fetcher(true);
        assert!(matches!(
            production.keys("svc", plain).await,
            Err(FetchError::Insecure)
        ));
        assert!(
            matches!(
                production.keys("svc", plain).await,
                Err(FetchError::RecentlyFailed)
            ),
            "a failed fetch is not repeated within the refetch interval"
        );

        // Nothing listens there: development tries, and fails to connect.
        let development = fetcher(false);
        assert!(matches!(
            development.keys("svc", plain).await,
            Err(FetchError::Unreachable(_))
        ));
    }
}
