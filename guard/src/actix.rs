//! actix-web integration: [`ValidatedToken`] as an extractor, [`RequireScopes`] as a
//! middleware for an app, a scope, a resource or a single route, and the RFC 6750 responses
//! of [`GuardError`].
//!
//! Register the [`Introspector`] as app data, either directly or in a `web::Data`. A token is
//! introspected once per request: the middleware leaves it in the request extensions, where
//! the extractor and inner middlewares find it.
//!
//! ```no_run
//! use actix_web::{App, HttpServer, Responder, web};
//! use umbra_guard::{Introspector, RequireScopes, ValidatedToken};
//!
//! async fn list_notes(token: ValidatedToken) -> impl Responder {
//!     format!("notes of {}", token.principal())
//! }
//!
//! async fn delete_note(token: ValidatedToken) -> Result<&'static str, umbra_guard::GuardError> {
//!     // The same check as a middleware, inside the handler.
//!     token.require_any(["admin", "notes:delete"])?;
//!     Ok("deleted")
//! }
//!
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! let introspector = Introspector::builder("http://127.0.0.1:8080", "orders-api", "cs_…").build()?;
//! HttpServer::new(move || {
//!     App::new()
//!         .app_data(introspector.clone())
//!         .route("/notes", web::get().to(list_notes).wrap(RequireScopes::all(["read"])))
//!         .route("/notes", web::delete().to(delete_note))
//!         .service(
//!             web::scope("/admin")
//!                 .wrap(RequireScopes::any(["admin", "ops"]))
//!                 .route("/stats", web::get().to(|| async { "ok" })),
//!         )
//! })
//! .bind("127.0.0.1:8081")?
//! .run()
//! .await?;
//! # Ok(())
//! # }
//! ```
use crate::bearer::token_from_headers;
use crate::error::GuardError;
use crate::introspector::Introspector;
use crate::scopes::ScopeRequirement;
use crate::token::ValidatedToken;
use actix_web::body::EitherBody;
use actix_web::dev::{Payload, Service, ServiceRequest, ServiceResponse, Transform, forward_ready};
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{FromRequest, HttpMessage, HttpRequest, HttpResponse, ResponseError, web};
use futures_util::future::{LocalBoxFuture, Ready, ready};
use serde::Serialize;
use std::rc::Rc;
use std::sync::Arc;

#[derive(Serialize)]
struct ErrorBody {
    error: &'static str,
    error_description: &'static str,
}

impl ResponseError for GuardError {
    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status_code());
        response.insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-store")));
        if let Some(challenge) = self.challenge() {
            let value = HeaderValue::from_str(&challenge)
                .unwrap_or_else(|_| HeaderValue::from_static("Bearer realm=\"umbra\""));
            response.insert_header((header::WWW_AUTHENTICATE, value));
        }
        if matches!(self, Self::Unavailable(_)) {
            response.insert_header((header::RETRY_AFTER, HeaderValue::from_static("5")));
        }
        response.json(ErrorBody {
            error: self.code(),
            error_description: self.description(),
        })
    }
}

/// The bearer token of the request, validated by the registered [`Introspector`]. Refuses the
/// request (401, 503…) when it cannot be validated.
///
/// Do not use `Option<ValidatedToken>` on a protected route: actix turns every refusal,
/// including "Umbra is unavailable", into `None`.
impl FromRequest for ValidatedToken {
    type Error = GuardError;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move { authorize(&req, &ScopeRequirement::none()).await })
    }
}

/// Validates the request's token and checks `requirement`, introspecting at most once per
/// request.
pub async fn authorize(
    req: &HttpRequest,
    requirement: &ScopeRequirement,
) -> Result<ValidatedToken, GuardError> {
    let known = req.extensions().get::<ValidatedToken>().cloned();
    let validated = match known {
        Some(validated) => validated,
        None => {
            let introspector = introspector_of(req).ok_or(GuardError::NotConfigured)?;
            let token = token_from_headers(
                req.headers()
                    .get_all(header::AUTHORIZATION)
                    .map(HeaderValue::as_bytes),
            )?
            .to_owned();
            let validated = introspector.introspect(&token).await?;
            req.extensions_mut().insert(validated.clone());
            validated
        }
    };
    validated.require(requirement)?;
    Ok(validated)
}

fn introspector_of(req: &HttpRequest) -> Option<Introspector> {
    req.app_data::<Introspector>().cloned().or_else(|| {
        req.app_data::<web::Data<Introspector>>()
            .map(|d| d.get_ref().clone())
    })
}

/// A middleware that lets a request through only with an active token meeting a scope
/// requirement; anything else is answered by the middleware (401, 403 or 503) and the
/// handler never runs.
///
/// Works with `App::wrap`, `Scope::wrap`, `Resource::wrap` and `Route::wrap`. Nested guards
/// introspect once and each checks its own requirement.
#[derive(Debug, Clone)]
pub struct RequireScopes {
    requirement: Arc<ScopeRequirement>,
}

impl RequireScopes {
    pub fn new(requirement: ScopeRequirement) -> Self {
        Self {
            requirement: Arc::new(requirement),
        }
    }

    /// Every scope in `scopes` must have been granted.
    pub fn all<I, S>(scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self::new(ScopeRequirement::all(scopes))
    }

    /// At least one scope in `scopes` must have been granted.
    pub fn any<I, S>(scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self::new(ScopeRequirement::any(scopes))
    }

    /// Any active token will do.
    pub fn authenticated() -> Self {
        Self::new(ScopeRequirement::none())
    }
}

impl<S, B> Transform<S, ServiceRequest> for RequireScopes
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = actix_web::Error;
    type Transform = RequireScopesMiddleware<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(RequireScopesMiddleware {
            service: Rc::new(service),
            requirement: Arc::clone(&self.requirement),
        }))
    }
}

/// The service [`RequireScopes`] wraps around a route.
pub struct RequireScopesMiddleware<S> {
    service: Rc<S>,
    requirement: Arc<ScopeRequirement>,
}

impl<S, B> Service<ServiceRequest> for RequireScopesMiddleware<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<'static, Result<Self::Response, Self::Error>>;

    forward_ready!(service);

    fn call(&self, req: ServiceRequest) -> Self::Future {
        let service = Rc::clone(&self.service);
        let requirement = Arc::clone(&self.requirement);
        Box::pin(async move {
            match authorize(req.request(), &requirement).await {
                Ok(_) => service
                    .call(req)
                    .await
                    .map(ServiceResponse::map_into_left_body),
                Err(err) => {
                    tracing::debug!(error = %err, path = req.path(), "request refused");
                    Ok(req.error_response(err).map_into_right_body())
                }
            }
        })
    }
}
