//! Prometheus metrics, served on their own listener (`metrics.*`) so they never face the
//! internet with the OAuth endpoints.
use super::AppState;
use crate::store::{ClientCache, Store};
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::middleware::Next;
use actix_web::{HttpResponse, web};
use prometheus::{
    Encoder, Gauge, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGaugeVec, Opts,
    Registry, TextEncoder,
};
use std::time::Instant;

/// Every metric Umbra exports.
pub struct Metrics {
    registry: Registry,
    http_requests: IntCounterVec,
    http_duration: HistogramVec,
    pub tokens_issued: IntCounterVec,
    pub introspections: IntCounterVec,
    pub revocations: IntCounter,
    pub login_failures: IntCounter,
    pub second_factor_failures: IntCounter,
    /// Change-log polls that failed (`crate::store::ChangePoller`).
    pub change_poll_failures: IntCounter,
    change_poll_age: Gauge,
    /// Cleanup passes this instance ran (it held the cleanup lease), so that with many
    /// instances one can see that a single one does the work.
    pub cleanup_passes: IntCounter,
    db_pool: IntGaugeVec,
}

impl Metrics {
    /// The metrics of an instance whose storage is `store` (its retry counter is exported too).
    pub fn new(store: &Store) -> Result<Self, prometheus::Error> {
        let registry = Registry::new_custom(Some("umbra".into()), None)?;
        let http_requests = IntCounterVec::new(
            Opts::new(
                "http_requests_total",
                "HTTP requests by route pattern, method and status",
            ),
            &["endpoint", "method", "status"],
        )?;
        let http_duration = HistogramVec::new(
            HistogramOpts::new(
                "http_request_duration_seconds",
                "HTTP request latency by route pattern",
            )
            .buckets(vec![
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
            ]),
            &["endpoint", "method"],
        )?;
        let tokens_issued = IntCounterVec::new(
            Opts::new("tokens_issued_total", "Access tokens issued by grant type"),
            &["grant_type"],
        )?;
        let introspections = IntCounterVec::new(
            Opts::new("introspections_total", "Introspection answers by result"),
            &["result"],
        )?;
        let revocations = IntCounter::new("revocations_total", "Successful revocation requests")?;
        let login_failures = IntCounter::new("login_failures_total", "Failed password sign-ins")?;
        let second_factor_failures = IntCounter::new(
            "second_factor_failures_total",
            "Failed second-factor checks",
        )?;
        let change_poll_failures = IntCounter::new(
            "change_poll_failures_total",
            "Change-log polls that failed (caches are bypassed while they fail)",
        )?;
        let change_poll_age = Gauge::new(
            "change_poll_age_seconds",
            "Seconds since the last successful change-log poll started (+Inf before the first); \
             above changes.max_staleness_ms the client cache is bypassed",
        )?;
        let cleanup_passes = IntCounter::new(
            "cleanup_passes_total",
            "Cleanup passes run by this instance (the holder of the cleanup lease)",
        )?;
        let db_pool = IntGaugeVec::new(
            Opts::new("db_pool_connections", "Database pool connections by state"),
            &["state"],
        )?;
        registry.register(Box::new(http_requests.clone()))?;
        registry.register(Box::new(http_duration.clone()))?;
        registry.register(Box::new(tokens_issued.clone()))?;
        registry.register(Box::new(introspections.clone()))?;
        registry.register(Box::new(revocations.clone()))?;
        registry.register(Box::new(login_failures.clone()))?;
        registry.register(Box::new(second_factor_failures.clone()))?;
        registry.register(Box::new(change_poll_failures.clone()))?;
        registry.register(Box::new(change_poll_age.clone()))?;
        registry.register(Box::new(cleanup_passes.clone()))?;
        registry.register(Box::new(db_pool.clone()))?;
        registry.register(Box::new(store.retries().collector()))?;
        for collector in store.token_cache().collectors() {
            registry.register(collector)?;
        }
        Ok(Self {
            registry,
            http_requests,
            http_duration,
            tokens_issued,
            introspections,
            revocations,
            login_failures,
            second_factor_failures,
            change_poll_failures,
            change_poll_age,
            cleanup_passes,
            db_pool,
        })
    }

    /// The text exposition format, with the pool and change-log gauges read now.
    pub fn render(
        &self,
        store: &Store,
        clients: &ClientCache,
    ) -> Result<String, prometheus::Error> {
        let poll_age = clients.since_last_poll();
        self.change_poll_age
            .set(poll_age.map_or(f64::INFINITY, |age| age.as_secs_f64()));
        let (in_use, idle) = store.pool_usage();
        self.db_pool.with_label_values(&["in_use"]).set(in_use);
        self.db_pool.with_label_values(&["idle"]).set(idle);
        let mut buffer = Vec::new();
        TextEncoder::new().encode(&self.registry.gather(), &mut buffer)?;
        Ok(String::from_utf8_lossy(&buffer).into_owned())
    }
}

/// Middleware: counts and times every request. Every label comes from a fixed set, so that no
/// client can create series: the route pattern (never the raw path) or `unmatched`, one of
/// the standard methods or `OTHER`, and the status the server chose.
pub async fn record(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody + 'static>, actix_web::Error> {
    let started = Instant::now();
    let method = method_label(req.method());
    let metrics = req
        .app_data::<web::Data<AppState>>()
        .map(|s| s.metrics.clone());
    let response = next.call(req).await?;
    if let Some(metrics) = metrics {
        let endpoint = response
            .request()
            .match_pattern()
            .unwrap_or_else(|| "unmatched".into());
        let status = response.status().as_u16().to_string();
        metrics
            .http_requests
            .with_label_values(&[endpoint.as_str(), method, status.as_str()])
            .inc();
        metrics
            .http_duration
            .with_label_values(&[endpoint.as_str(), method])
            .observe(started.elapsed().as_secs_f64());
    }
    Ok(response)
}

/// The `method` label: the methods of RFC 9110 and PATCH as themselves, anything a client
/// invents as `OTHER`.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::CONNECT => "CONNECT",
        Method::OPTIONS => "OPTIONS",
        Method::TRACE => "TRACE",
        Method::PATCH => "PATCH",
        _ => "OTHER",
    }
}

/// `GET /metrics` on the metrics listener.
pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    match state.metrics.render(&state.store, &state.clients) {
        Ok(body) => HttpResponse::Ok()
            .content_type("text/plain; version=0.0.4; charset=utf-8")
            .body(body),
        Err(err) => {
            tracing::error!(error = %err, "metrics could not be encoded");
            HttpResponse::InternalServerError().finish()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invented_methods_share_one_label() {
        assert_eq!(method_label(&Method::POST), "POST");
        for invented in ["FOO", "get", "BREW", "PROPFIND"] {
            let method = Method::from_bytes(invented.as_bytes()).unwrap();
            assert_eq!(method_label(&method), "OTHER", "{invented}");
        }
    }
}
