//! `/admin/keys`: Umbra's signing keys, through what `umbra keys` calls. Running instances
//! pick a new key up from the change log.
use super::caller::AdminCaller;
use super::problem::{Problem, ProblemBody};
use crate::clock;
use crate::http::AppState;
use crate::keys::{self, KeyError, KeySummary, SigningAlg};
use crate::startup::key_parts;
use crate::store::AuditKind;
use actix_web::{HttpResponse, web};
use serde::Deserialize;
use utoipa::ToSchema;

/// A rotation.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Rotation {
    /// `RS256`, `ES256` or `EdDSA`; default `keys.default_algorithm`.
    pub alg: Option<String>,
    /// Sign with the new key at once, without pre-publication (a compromised key).
    #[serde(default)]
    pub now: bool,
}

impl From<KeyError> for Problem {
    fn from(err: KeyError) -> Self {
        match err {
            KeyError::Store(err) => err.into(),
            other => Problem::internal(other),
        }
    }
}

/// The keys in the JWKS: pending, active and retired.
#[utoipa::path(
    get,
    path = "/admin/keys",
    tag = "keys",
    responses((status = 200, description = "Published keys, newest first", body = Vec<KeySummary>))
)]
pub async fn list(
    _caller: AdminCaller,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Problem> {
    let keys = keys::list(&state.store, clock::now()).await?;
    Ok(HttpResponse::Ok().json(keys))
}

/// Creates a new key: published at once, signing after `keys.prepublish_secs` (or at once).
#[utoipa::path(
    post,
    path = "/admin/keys/rotate",
    tag = "keys",
    request_body = Rotation,
    responses(
        (status = 201, description = "The new key", body = KeySummary),
        (status = 400, description = "Unknown algorithm", body = ProblemBody, content_type = "application/problem+json"),
    )
)]
pub async fn rotate(
    caller: AdminCaller,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> Result<HttpResponse, Problem> {
    // The body is optional: none rotates the default algorithm's key.
    let rotation: Rotation = if body.iter().all(u8::is_ascii_whitespace) {
        Rotation::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| Problem::of_json(actix_web::error::JsonPayloadError::Deserialize(e)))?
    };
    let (sealer, policy) = key_parts(&state.settings).map_err(Problem::internal)?;
    let alg = match rotation.alg.as_deref() {
        Some(name) => name
            .parse::<SigningAlg>()
            .map_err(|e| Problem::bad_request(e.to_string()))?,
        None => policy.default_alg,
    };
    let now = clock::now();
    let key = keys::rotate(&state.store, &sealer, &policy, alg, rotation.now, now).await?;
    state
        .store
        .record_audit(
            caller
                .audit(AuditKind::KeysRotated)
                .detail(format!("{} {}", key.alg, key.kid)),
            now,
        )
        .await?;
    Ok(HttpResponse::Created().json(key))
}
