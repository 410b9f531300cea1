//! The JSON APIs for applications, authenticated with bearer access tokens (RFC 6750).
pub mod account;
