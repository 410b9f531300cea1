//! Liveness and readiness probes.
use super::AppState;
use actix_web::{HttpResponse, web};
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Whether this instance wants new requests. A load balancer that polls `/health/ready` stops
/// routing to an instance that is shutting down while it still serves, so that closing the
/// listener afterwards fails no request (see `server.shutdown_drain_secs`).
#[derive(Clone, Debug, Default)]
pub struct Readiness(Arc<AtomicBool>);

impl Readiness {
    /// From now on `/health/ready` answers 503, whatever the database says.
    pub fn start_draining(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    fn draining(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// The process answers HTTP.
#[utoipa::path(get, path = "/health/live", tag = "operations", responses((status = 200, body = super::schemas::Health)))]
pub async fn live() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

/// The process can reach its database and is not shutting down.
#[utoipa::path(
    get,
    path = "/health/ready",
    tag = "operations",
    responses((status = 200, body = super::schemas::Health), (status = 503, body = super::schemas::Health))
)]
pub async fn ready(state: web::Data<AppState>, readiness: web::Data<Readiness>) -> HttpResponse {
    if readiness.draining() {
        return HttpResponse::ServiceUnavailable().json(json!({"status": "draining"}));
    }
    match state.store.ping().await {
        Ok(()) => HttpResponse::Ok().json(json!({"status": "ok"})),
        Err(err) => {
            tracing::warn!(error = %err, "readiness check failed");
            HttpResponse::ServiceUnavailable().json(json!({"status": "unavailable"}))
        }
    }
}
