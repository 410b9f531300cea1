//! The HTTP layer: routes, extractors and handlers. Thin: parse, call protocol and storage,
//! render. Errors become responses in one place ([`error`]).
pub mod client_auth;
pub mod error;
pub mod form;
mod health;
mod introspect;
mod metadata;
mod revoke;
mod token;

use crate::settings::Settings;
use crate::store::{ClientCache, Store};
use actix_web::{HttpResponse, web};
use std::sync::Arc;

/// What every handler shares; travels in `web::Data`.
pub struct AppState {
    pub store: Store,
    pub clients: ClientCache,
    pub settings: Arc<Settings>,
}

/// Registers every route. A known path with the wrong method answers 405.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(post("/token", token::token))
        .service(post("/introspect", introspect::introspect))
        .service(post("/revoke", revoke::revoke))
        .service(get(
            "/.well-known/oauth-authorization-server",
            metadata::metadata,
        ))
        .service(get("/health/live", health::live))
        .service(get("/health/ready", health::ready))
        .default_service(web::to(not_found));
}

fn post<F, Args>(path: &str, handler: F) -> actix_web::Resource
where
    F: actix_web::Handler<Args>,
    Args: actix_web::FromRequest + 'static,
    F::Output: actix_web::Responder + 'static,
{
    web::resource(path)
        .route(web::post().to(handler))
        .default_service(web::to(|| method_not_allowed("POST")))
}

fn get<F, Args>(path: &str, handler: F) -> actix_web::Resource
where
    F: actix_web::Handler<Args>,
    Args: actix_web::FromRequest + 'static,
    F::Output: actix_web::Responder + 'static,
{
    web::resource(path)
        .route(web::get().to(handler))
        .default_service(web::to(|| method_not_allowed("GET")))
}

async fn method_not_allowed(allow: &'static str) -> HttpResponse {
    HttpResponse::MethodNotAllowed()
        .insert_header(("Allow", allow))
        .json(serde_json::json!({"error": "method_not_allowed"}))
}

async fn not_found() -> HttpResponse {
    HttpResponse::NotFound().json(serde_json::json!({"error": "not_found"}))
}
