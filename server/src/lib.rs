//! Umbra: an OAuth 2.0 authorization server with opaque tokens.
//!
//! Three layers, visible in the module names: [`oauth`] holds the protocol rules and knows
//! neither actix-web nor SeaORM; [`store`] keeps clients, grants and tokens through SeaORM;
//! [`http`] parses requests, calls the two and renders responses.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod auth;
pub mod cli;
pub mod clock;
pub mod http;
pub mod keys;
pub mod manage;
pub mod oauth;
pub mod remote_jwks;
pub mod second_factor;
pub mod sender;
pub mod settings;
pub mod startup;
pub mod store;
pub mod telemetry;
