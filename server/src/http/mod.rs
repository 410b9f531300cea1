//! The HTTP layer: routes, extractors and handlers. Thin: parse, call protocol and storage,
//! render. Errors become responses in one place ([`error`]).
//!
//! Rooms by audience: [`oauth`] holds the protocol endpoints (authorize, token, introspect,
//! revoke, metadata), [`pages`] the browser pages (sign-in, second step, consent, account),
//! [`api`] the JSON APIs; the plumbing they share (errors, forms, sessions, templates, metrics,
//! OpenAPI, health) sits beside them.
pub mod admin;
pub mod api;
pub mod bearer;
pub mod client_address;
pub mod error;
pub mod form;
mod health;
pub mod metrics;
pub mod oauth;
pub mod openapi;
pub mod page_extract;
mod pages;
mod schemas;
pub mod session;
pub mod step_up;
pub mod templates;

pub use health::Readiness;
use oauth::{authorize, introspect, metadata, revocations, revoke, token};
use pages::{account, consent, end_session, login, second_step, two_factor};

use crate::auth::limiter::LoginLimiter;
use crate::auth::password::Passwords;
use crate::second_factor::SecondFactor;
use crate::settings::Settings;
use crate::store::{ClientCache, Store};
use actix_web::{HttpResponse, web};
use std::sync::Arc;

/// What every handler shares; travels in `web::Data`.
pub struct AppState {
    pub store: Store,
    pub clients: ClientCache,
    pub settings: Arc<Settings>,
    pub passwords: Arc<Passwords>,
    pub limiter: LoginLimiter,
    pub metrics: Arc<metrics::Metrics>,
    pub factors: SecondFactor,
    /// Umbra's signing keys (JWKS, ID tokens, signed introspection answers).
    pub keys: Arc<crate::keys::KeyRing>,
    /// Keys of `private_key_jwt` clients registered with a `jwks_uri`.
    pub remote_jwks: crate::remote_jwks::RemoteJwks,
    /// The live changes behind `GET /revocations`, and how many streams are open.
    pub revocations: revocations::RevocationFeed,
}

/// Largest HTML form accepted.
const PAGE_FORM_LIMIT: usize = 16 * 1024;

/// Registers every route. A known path with the wrong method answers 405.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(post("/token", token::token))
        .service(
            post("/introspect", introspect::introspect).app_data(form::FormLimit::TOKEN_ACTIONS),
        )
        .service(post("/revoke", revoke::revoke).app_data(form::FormLimit::TOKEN_ACTIONS))
        .service(get("/revocations", revocations::revocations))
        .service(get(
            "/.well-known/oauth-authorization-server",
            metadata::metadata,
        ))
        .service(get("/jwks.json", oauth::jwks::jwks))
        .service(post("/register", oauth::registration::register))
        .service(
            web::resource("/register/{client_id}")
                .route(web::get().to(oauth::registration::read))
                .route(web::put().to(oauth::registration::update))
                .route(web::delete().to(oauth::registration::delete))
                .default_service(web::to(|| method_not_allowed("GET, PUT, DELETE"))),
        )
        .service(get(
            "/.well-known/openid-configuration",
            metadata::openid_configuration,
        ))
        .service(
            web::resource("/userinfo")
                .route(web::get().to(oauth::userinfo::userinfo))
                .route(web::post().to(oauth::userinfo::userinfo_post))
                .default_service(web::to(|| method_not_allowed("GET, POST"))),
        )
        .service(get("/", home))
        // RFC 8414 §3.1: the issuer's path, if any, follows the well-known segment.
        .service(get(
            "/.well-known/oauth-authorization-server/{issuer_path:.+}",
            metadata::metadata_for_path,
        ))
        .service(get("/health/live", health::live))
        .service(get("/health/ready", health::ready))
        .service(get("/openapi.json", openapi::openapi_json))
        .service(get("/authorize", authorize::authorize))
        .service(
            web::resource("/login")
                .route(web::get().to(login::login_page))
                .route(web::post().to(login::login))
                .default_service(web::to(|| method_not_allowed("GET, POST"))),
        )
        .service(
            web::resource("/login/2fa")
                .route(web::get().to(second_step::page))
                .route(web::post().to(second_step::submit))
                .default_service(web::to(|| method_not_allowed("GET, POST"))),
        )
        .service(post("/login/2fa/send", second_step::send))
        .service(get("/login/continue", authorize::resume_page))
        .service(post("/logout", login::logout))
        .service(
            web::resource("/end-session")
                .route(web::get().to(end_session::end_session_get))
                .route(web::post().to(end_session::end_session_post))
                .default_service(web::to(|| method_not_allowed("GET, POST"))),
        )
        .service(post("/end-session/confirm", end_session::confirm))
        .service(
            web::resource("/consent")
                .route(web::get().to(consent::consent_page))
                .route(web::post().to(consent::decide))
                .default_service(web::to(|| method_not_allowed("GET, POST"))),
        )
        .service(get("/account", account::account))
        .service(post(
            "/account/consents/{client_id}/withdraw",
            account::withdraw,
        ))
        .service(post(
            "/account/sign-out-everywhere",
            account::sign_out_everywhere,
        ))
        .service(post("/account/recovery-codes", two_factor::regenerate))
        .service(
            web::resource("/account/2fa/{kind}")
                .route(web::get().to(two_factor::enrol_page))
                .route(web::post().to(two_factor::start))
                .default_service(web::to(|| method_not_allowed("GET, POST"))),
        )
        .service(post("/account/2fa/{kind}/confirm", two_factor::confirm))
        .service(post("/account/2fa/{kind}/resend", two_factor::resend))
        .service(post("/account/2fa/{kind}/remove", two_factor::remove))
        .service(get("/api/account/factors", api::account::list))
        .service(
            web::resource("/api/account/factors/{kind}")
                .route(web::post().to(api::account::start))
                .route(web::delete().to(api::account::remove))
                .default_service(web::to(|| method_not_allowed("POST, DELETE"))),
        )
        .service(post(
            "/api/account/factors/{kind}/confirm",
            api::account::confirm,
        ))
        .service(post(
            "/api/account/factors/{kind}/resend",
            api::account::resend,
        ))
        .service(post(
            "/api/account/recovery-codes",
            api::account::regenerate,
        ))
        .service(get("/static/umbra.css", templates::stylesheet))
        .configure(pages::console::routes)
        // JSON bodies of the enrolment API are as small as forms.
        .app_data(web::PayloadConfig::new(PAGE_FORM_LIMIT))
        .app_data(
            web::FormConfig::default()
                .limit(PAGE_FORM_LIMIT)
                .error_handler(|err, _| error::PageError::invalid_form(&err).into()),
        )
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

/// `GET /`: what this server is, for a person who opens its address in a browser.
async fn home(state: web::Data<AppState>) -> HttpResponse {
    templates::templates().page(
        actix_web::http::StatusCode::OK,
        "home.html",
        minijinja::context! { issuer => &state.settings.server.issuer },
    )
}

pub(crate) async fn not_found() -> HttpResponse {
    HttpResponse::NotFound().json(serde_json::json!({"error": "not_found"}))
}

/// `303 See Other`: after a POST the browser follows with a GET and never re-sends the form
/// (RFC 9700 §4.12).
pub fn redirect(location: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header(("Location", location))
        .insert_header(("Cache-Control", "no-store"))
        .finish()
}
