//! The guard against the real Umbra (started in-process by `umbra_tests::TestApp`, on a fresh
//! database) and, where a test needs an answer Umbra would not give or needs to count calls,
//! against a fake introspection endpoint. Protected routes are served by a real actix-web app
//! on a random port and called with reqwest.
mod support;

mod audience;
mod caching;
mod http;
mod introspector;
mod private_key_jwt;
mod revocation_stream;
mod signed;
mod standards;
