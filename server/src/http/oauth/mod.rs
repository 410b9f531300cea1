//! The protocol endpoints: `/authorize` (RFC 6749 §4.1) and the steps that finish it, `/token`
//! (RFC 6749 §3.2), `/introspect` (RFC 7662), `/revoke` (RFC 7009), `/revocations` (revocations pushed to resource servers) and the server metadata
//! (RFC 8414), and OpenID Connect's UserInfo endpoint and discovery. Clients and resource
//! servers speak to these; errors are RFC 6749 §5.2 JSON (RFC 6750 at UserInfo) or redirects.
pub mod authorize;
pub mod client_auth;
pub mod introspect;
pub mod jwks;
pub mod metadata;
pub mod registration;
pub mod revocations;
pub mod revoke;
pub mod token;
pub mod userinfo;
