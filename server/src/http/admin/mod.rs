//! The admin API: JSON over REST on its own listener (`admin.host`/`admin.port`, like the
//! metrics listener, never the public one), covering what the `umbra` CLI does.
//!
//! Every call presents a client's own access token with the [`ADMIN_SCOPE`] scope
//! ([`caller::AdminCaller`]); every change is audited with that client as the actor. Errors
//! are RFC 7807 problems ([`problem::Problem`]). Updates are conditional: `ETag` carries the
//! row's version and `If-Match` is required (428 without, 412 when stale).
//!
//! The routes are declared once, in [`ROUTES`]: the router registers that table and a test
//! checks that the OpenAPI document ([`openapi::AdminDoc`]) describes every entry of it.
mod audit;
pub mod caller;
mod clients;
mod grants;
mod keys;
pub mod openapi;
pub mod problem;
mod resources;
mod support;
mod users;

use actix_web::{HttpResponse, Route, web};
use problem::Problem;

/// The scope an access token needs to use the admin API. A client gets it only if an
/// operator put it in its scopes (`umbra client create ops --scope umbra:admin`).
pub use crate::oauth::registration::ADMIN_SCOPE;

/// Largest JSON body accepted.
pub const BODY_LIMIT: usize = 64 * 1024;

/// An HTTP method of an admin route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    Get,
    Post,
    Put,
    Patch,
    Delete,
}

impl Verb {
    fn route(self) -> Route {
        match self {
            Self::Get => web::get(),
            Self::Post => web::post(),
            Self::Put => web::put(),
            Self::Patch => web::patch(),
            Self::Delete => web::delete(),
        }
    }

    /// The method as HTTP names it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Get => "GET",
            Self::Post => "POST",
            Self::Put => "PUT",
            Self::Patch => "PATCH",
            Self::Delete => "DELETE",
        }
    }

    /// The method as OpenAPI names it.
    pub fn openapi(self) -> utoipa::openapi::HttpMethod {
        use utoipa::openapi::HttpMethod;
        match self {
            Self::Get => HttpMethod::Get,
            Self::Post => HttpMethod::Post,
            Self::Put => HttpMethod::Put,
            Self::Patch => HttpMethod::Patch,
            Self::Delete => HttpMethod::Delete,
        }
    }
}

/// One route of the admin API.
pub struct AdminRoute {
    pub verb: Verb,
    /// The path, in the `{name}` template syntax that actix and OpenAPI share.
    pub path: &'static str,
    handler: fn(Route) -> Route,
}

const fn route(verb: Verb, path: &'static str, handler: fn(Route) -> Route) -> AdminRoute {
    AdminRoute {
        verb,
        path,
        handler,
    }
}

/// Every route of the admin API, `GET /openapi.json` aside.
pub static ROUTES: &[AdminRoute] = &[
    route(Verb::Get, "/admin/users", |r| r.to(users::list)),
    route(Verb::Post, "/admin/users", |r| r.to(users::create)),
    route(Verb::Get, "/admin/users/{id}", |r| r.to(users::show)),
    route(Verb::Patch, "/admin/users/{id}", |r| r.to(users::update)),
    route(Verb::Delete, "/admin/users/{id}", |r| r.to(users::delete)),
    route(Verb::Post, "/admin/users/{id}/disable", |r| {
        r.to(users::disable)
    }),
    route(Verb::Post, "/admin/users/{id}/enable", |r| {
        r.to(users::enable)
    }),
    route(Verb::Post, "/admin/users/{id}/password", |r| {
        r.to(users::set_password)
    }),
    route(Verb::Get, "/admin/users/{id}/second-factor", |r| {
        r.to(users::second_factor)
    }),
    route(Verb::Delete, "/admin/users/{id}/second-factor", |r| {
        r.to(users::reset_second_factor)
    }),
    route(Verb::Get, "/admin/users/{id}/grants", |r| {
        r.to(grants::of_user)
    }),
    route(Verb::Delete, "/admin/users/{id}/grants", |r| {
        r.to(grants::revoke_user_grants)
    }),
    route(Verb::Delete, "/admin/users/{id}/grants/{grant_id}", |r| {
        r.to(grants::revoke_user_grant)
    }),
    route(Verb::Get, "/admin/users/{id}/consents", |r| {
        r.to(users::consents)
    }),
    route(
        Verb::Delete,
        "/admin/users/{id}/consents/{client_id}",
        |r| r.to(users::withdraw_consent),
    ),
    route(Verb::Get, "/admin/clients", |r| r.to(clients::list)),
    route(Verb::Post, "/admin/clients", |r| r.to(clients::create)),
    route(Verb::Get, "/admin/clients/{id}", |r| r.to(clients::show)),
    route(Verb::Put, "/admin/clients/{id}", |r| r.to(clients::replace)),
    route(Verb::Delete, "/admin/clients/{id}", |r| {
        r.to(clients::delete)
    }),
    route(Verb::Post, "/admin/clients/{id}/secret", |r| {
        r.to(clients::rotate_secret)
    }),
    route(Verb::Get, "/admin/clients/{id}/grants", |r| {
        r.to(grants::of_client)
    }),
    route(Verb::Delete, "/admin/clients/{id}/grants", |r| {
        r.to(grants::revoke_client_grants)
    }),
    route(Verb::Get, "/admin/resources", |r| r.to(resources::list)),
    route(Verb::Post, "/admin/resources", |r| r.to(resources::create)),
    route(Verb::Get, "/admin/resources/{identifier}", |r| {
        r.to(resources::show)
    }),
    route(Verb::Patch, "/admin/resources/{identifier}", |r| {
        r.to(resources::update)
    }),
    route(Verb::Delete, "/admin/resources/{identifier}", |r| {
        r.to(resources::delete)
    }),
    route(Verb::Get, "/admin/audit", |r| r.to(audit::query)),
    route(Verb::Get, "/admin/keys", |r| r.to(keys::list)),
    route(Verb::Post, "/admin/keys/rotate", |r| r.to(keys::rotate)),
];

/// Registers the admin API: [`ROUTES`], `GET /openapi.json`, and problem answers for
/// everything else (bad bodies, queries and paths, unknown paths, wrong methods).
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.app_data(
        web::JsonConfig::default()
            .limit(BODY_LIMIT)
            .error_handler(problem::json_error),
    )
    .app_data(web::PayloadConfig::new(BODY_LIMIT))
    .app_data(web::QueryConfig::default().error_handler(problem::query_error))
    .app_data(web::PathConfig::default().error_handler(problem::path_error));
    let mut paths: Vec<&'static str> = Vec::new();
    for route in ROUTES {
        if !paths.contains(&route.path) {
            paths.push(route.path);
        }
    }
    for path in paths {
        // One resource per path: actix answers 405 within a resource, never falls through.
        let mut resource = web::resource(path);
        let mut allow = Vec::new();
        for route in ROUTES.iter().filter(|r| r.path == path) {
            resource = resource.route((route.handler)(route.verb.route()));
            allow.push(route.verb.name());
        }
        cfg.service(resource.default_service(method_not_allowed(allow.join(", "))));
    }
    cfg.service(
        web::resource("/openapi.json")
            .route(web::get().to(openapi::openapi_json))
            .default_service(method_not_allowed("GET".to_owned())),
    )
    .default_service(web::to(not_found));
}

/// Answers 405 naming the methods `allow` lists.
fn method_not_allowed(allow: String) -> Route {
    web::to(move || {
        let allow = allow.clone();
        async move { Err::<HttpResponse, _>(Problem::MethodNotAllowed(allow)) }
    })
}

async fn not_found() -> Result<HttpResponse, Problem> {
    Err(Problem::not_found("no such resource"))
}
