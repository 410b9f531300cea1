//! Liveness and readiness probes.
use super::AppState;
use actix_web::{HttpResponse, web};
use serde_json::json;

/// The process answers HTTP.
#[utoipa::path(get, path = "/health/live", tag = "operations", responses((status = 200, body = super::schemas::Health)))]
pub async fn live() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

/// The process can reach its database.
#[utoipa::path(
    get,
    path = "/health/ready",
    tag = "operations",
    responses((status = 200, body = super::schemas::Health), (status = 503, body = super::schemas::Health))
)]
pub async fn ready(state: web::Data<AppState>) -> HttpResponse {
    match state.store.ping().await {
        Ok(()) => HttpResponse::Ok().json(json!({"status": "ok"})),
        Err(err) => {
            tracing::warn!(error = %err, "readiness check failed");
            HttpResponse::ServiceUnavailable().json(json!({"status": "unavailable"}))
        }
    }
}
