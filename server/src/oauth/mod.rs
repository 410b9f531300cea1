//! The OAuth 2.0 protocol rules: token format, scopes, client authentication, grants,
//! introspection and the RFC 6749 §5.2 error type.
//!
//! Pure code: nothing here touches actix-web, SeaORM or the clock. Callers pass `now` in.

pub mod authorize;
pub mod client;
pub mod client_assertion;
pub mod client_auth;
pub mod client_jwks;
pub mod error;
pub mod grant_type;
pub mod grants;
pub mod introspection;
pub mod logout;
pub mod oidc;
pub mod params;
pub mod pkce;
pub mod redirect_uri;
pub mod registration;
pub mod resource;
pub mod revocation;
pub mod scope;
pub mod signed_introspection;
pub mod token;

pub use error::{ErrorCode, OAuthError};
