//! Prometheus metrics, served on their own listener (`metrics.*`) so they never face the
//! internet with the OAuth endpoints.
use super::AppState;
use crate::store::Store;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::middleware::Next;
use actix_web::{HttpResponse, web};
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGaugeVec, Opts, Registry,
    TextEncoder,
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
        registry.register(Box::new(db_pool.clone()))?;
        registry.register(Box::new(store.retries().collector()))?;
        Ok(Self {
            registry,
            http_requests,
            http_duration,
            tokens_issued,
            introspections,
            revocations,
            login_failures,
            second_factor_failures,
            db_pool,
        })
    }

    /// The text exposition format, with the pool gauges read now.
    pub fn render(&self, store: &Store) -> Result<String, prometheus::Error> {
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
    match state.metrics.render(&state.store) {
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
