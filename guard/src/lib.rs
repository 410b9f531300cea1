//! Protect a resource server with Umbra.
//!
//! A request carries an opaque access token (`Authorization: Bearer at_…`, RFC 6750 §2.1).
//! The guard asks Umbra about it by introspection (RFC 7662), checks the answer (active, not
//! expired by the local clock either, issued by the expected issuer and meant for this
//! resource when configured, granted the scopes the route needs) and either hands the handler
//! a [`ValidatedToken`] or answers for it as RFC 6750 §3 says:
//!
//! | why | status | `WWW-Authenticate` | `error` |
//! |---|---|---|---|
//! | no `Authorization` header, or another scheme | 401 | `Bearer realm="umbra"` | `unauthorized` |
//! | a repeated `Authorization` header | 400 | `Bearer realm="umbra", error="invalid_request", …` | `invalid_request` |
//! | not `Bearer <b64token>`, longer than any Umbra token, inactive, revoked or expired | 401 | `Bearer realm="umbra", error="invalid_token", …` | `invalid_token` |
//! | active, but its `aud` does not name the configured resource, or its `iss` is not the configured issuer | 401 | `Bearer realm="umbra", error="invalid_token", …` | `invalid_token` |
//! | a required scope is missing | 403 | `Bearer realm="umbra", error="insufficient_scope", …, scope="…"` | `insufficient_scope` |
//! | Umbra unreachable, 5xx, or refusing the guard's own credentials; with [`signed_answers`](IntrospectorBuilder::signed_answers), an answer that does not verify (RFC 9701) | 503 | — | `temporarily_unavailable` |
//!
//! Bodies are JSON `{"error": "…", "error_description": "…"}`. Nothing fails open: when the
//! token cannot be checked, the request is refused.
//!
//! The core ([`Introspector`], [`bearer`], [`GuardError`]) knows no web framework; the
//! [`actix`] module adds an extractor and a [`RequireScopes`] middleware for actix-web.
//!
//! ```no_run
//! use actix_web::{App, HttpServer, web};
//! use umbra_guard::{Introspector, RequireScopes, ValidatedToken};
//!
//! #[actix_web::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     // A client created with `umbra client create "Notes API" --introspect`, allowed to
//!     // introspect for the resource `https://notes.example.com`.
//!     let introspector = Introspector::builder("http://127.0.0.1:8080", "notes-api", "cs_…")
//!         .resource("https://notes.example.com")
//!         .issuer("http://127.0.0.1:8080")
//!         .build()?;
//!     HttpServer::new(move || {
//!         App::new().app_data(introspector.clone()).route(
//!             "/notes",
//!             web::get()
//!                 .to(|token: ValidatedToken| async move { format!("hello {}", token.principal()) })
//!                 .wrap(RequireScopes::all(["read"])),
//!         )
//!     })
//!     .bind("127.0.0.1:8081")?
//!     .run()
//!     .await?;
//!     Ok(())
//! }
//! ```
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod actix;
mod actor;
mod assertion;
pub mod bearer;
mod cache;
mod clock;
mod error;
mod expected;
mod introspector;
mod revocations;
mod scopes;
mod signed;
mod token;

pub use actix::RequireScopes;
pub use actor::Actor;
pub use assertion::{AssertionAlgorithm, AssertionKey, KeyError};
pub use cache::CacheSettings;
pub use error::{GuardError, Malformed, REALM, Unavailable};
pub use introspector::{BuildError, Introspector, IntrospectorBuilder};
pub use scopes::{ScopeRequirement, Scopes};
pub use token::ValidatedToken;

/// Installs rustls' ring provider as the process default unless one is installed already.
///
/// A reqwest built with `rustls-no-provider` (as Umbra's server builds it, and Cargo unifies
/// features across a workspace) panics when a client is built in a process without one; the
/// introspector calls this before building its client. Harmless otherwise.
pub fn ensure_tls_provider() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // An error only means another thread installed one first.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
}
