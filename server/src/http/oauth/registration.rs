//! `POST /register`: dynamic client registration (RFC 7591 §3), with an operator's initial
//! access token unless `registration.open`; `GET | PUT | DELETE /register/{client_id}`: the
//! client manages its registration with its registration access token (RFC 7592 §2).
//!
//! What a self-registered client may ask for is `registration`'s policy, checked by
//! [`crate::oauth::registration`] like every other registration. Errors are RFC 7591 §3.2.2
//! JSON through [`OAuthError`]; a missing or wrong token is 401 `invalid_token` with a Bearer
//! challenge, and RFC 7592 never tells an unknown client from a wrong token.
use super::token::no_store;
use crate::auth::limiter::registration_key;
use crate::clock;
use crate::http::AppState;
use crate::http::client_address::client_address;
use crate::http::error::json_problem;
use crate::oauth::error::{ErrorCode, OAuthError};
use crate::oauth::registration::ClientMetadata;
use crate::oauth::token::{self, Token, TokenHash, TokenKind};
use crate::store::{Actor, AuditEntry, AuditKind, Registered, Replaced, SignInSlot};
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};

/// Largest registration body: the metadata (16 KiB) and a JWK Set.
pub const BODY_LIMIT: usize = 16 * 1024 + crate::oauth::client_jwks::MAX_JWKS_BYTES;

/// A registration as the client is told of it (RFC 7591 §3.2.1, RFC 7592 §3): its metadata
/// and the credentials it needs.
#[derive(Serialize, utoipa::ToSchema)]
pub struct RegistrationResponse {
    #[serde(flatten)]
    pub metadata: ClientMetadata,
    /// Issued once, at registration: only its hash is kept.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
    /// When the client was registered (seconds since the epoch); in the registration
    /// response only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id_issued_at: Option<i64>,
    /// When the secret stops working; 0: never. Present for a client with a secret.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_secret_expires_at: Option<i64>,
    /// The key to `registration_client_uri`; a new one with every update. Present when
    /// issued (registration and update), never on a read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub registration_access_token: Option<String>,
    pub registration_client_uri: String,
}

impl std::fmt::Debug for RegistrationResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistrationResponse")
            .field("client_id", &self.metadata.client_id)
            .finish_non_exhaustive()
    }
}

/// An RFC 7592 §2.2 update: the whole metadata, the client's own `client_id`, and its secret
/// if it chooses to send it.
#[derive(Deserialize)]
struct UpdateRequest {
    #[serde(flatten)]
    metadata: ClientMetadata,
    client_secret: Option<String>,
}

/// Registers a client (RFC 7591 §3).
#[utoipa::path(
    post,
    path = "/register",
    tag = "registration",
    request_body(content = ClientMetadata, content_type = "application/json"),
    security(("bearer" = []), ()),
    responses(
        (status = 201, description = "Registered: the metadata as registered, the client_id, its secret (confidential clients) and the registration access token", body = RegistrationResponse),
        (status = 400, description = "invalid_redirect_uri, invalid_client_metadata or invalid_request", body = crate::http::schemas::ErrorResponse),
        (status = 401, description = "invalid_token: no initial access token, or one unknown, expired or used up (`WWW-Authenticate: Bearer`)", body = crate::http::schemas::ErrorResponse),
        (status = 404, description = "Dynamic registration is off"),
        (status = 413, description = "The body is too large", body = crate::http::schemas::ErrorResponse),
        (status = 503, description = "temporarily_unavailable", body = crate::http::schemas::ErrorResponse)
    )
)]
#[tracing::instrument(level = "debug", name = "register", skip_all, fields(client_id))]
pub async fn register(
    req: HttpRequest,
    state: web::Data<AppState>,
    payload: web::Payload,
) -> Result<HttpResponse, OAuthError> {
    let settings = &state.settings.registration;
    if !settings.enabled {
        return Ok(crate::http::not_found().await);
    }
    let now = clock::now();
    // The token first: without a good one, the body is not looked at. Open registration
    // still takes a token that is presented (and uses it up as ever); without one, the
    // request counts against its address.
    let initial = if settings.open && !req.headers().contains_key(header::AUTHORIZATION) {
        count_open_registration(&state, &req, now).await?;
        None
    } else {
        let hash = presented_token(&req, TokenKind::InitialAccessToken)?;
        let id = state
            .store
            .usable_initial_access_token(&hash, now)
            .await?
            .ok_or_else(|| {
                invalid_token("the initial access token is unknown, expired or used up")
            })?;
        Some((hash, id))
    };
    let metadata: ClientMetadata = json_body(&req, payload).await?;
    let mut registration = metadata.register(&settings.policy())?;
    if registration.secret.is_some() && settings.secret_lifetime_secs > 0 {
        registration.client.secret_expires_at = Some(now + settings.secret_lifetime_secs);
    }
    let access_token = generate(TokenKind::RegistrationAccessToken)?;
    let client = match state
        .store
        .register_client(
            &registration.client,
            initial.as_ref().map(|(hash, _)| hash),
            &access_token.hash(),
            now,
        )
        .await?
    {
        Registered::Done(client) => client,
        // Used up by concurrent registrations since it was looked at.
        Registered::TokenRefused => {
            return Err(invalid_token(
                "the initial access token is unknown, expired or used up",
            ));
        }
    };
    tracing::Span::current().record("client_id", client.id.as_str());
    let entry = AuditEntry::new(AuditKind::ClientRegistered)
        .actor(&Actor::Registration)
        .client(Some(&client.id))
        .address(client_address(&req))
        .detail(match &initial {
            Some((_, id)) => format!("initial access token {id}"),
            None => "open registration".to_owned(),
        });
    state.store.record_audit(entry, now).await?;
    let body = RegistrationResponse {
        client_secret: registration.secret.map(Token::into_string),
        client_id_issued_at: Some(now),
        registration_access_token: Some(access_token.into_string()),
        ..response(&state, &client)
    };
    Ok(no_store(HttpResponse::Created()).json(body))
}

/// Reads a registration (RFC 7592 §2.1).
#[utoipa::path(
    get,
    path = "/register/{client_id}",
    tag = "registration",
    params(("client_id" = String, Path, description = "The client's id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The metadata as registered", body = RegistrationResponse),
        (status = 401, description = "invalid_token: a missing or wrong registration access token, or an unknown client", body = crate::http::schemas::ErrorResponse)
    )
)]
#[tracing::instrument(level = "debug", name = "read_registration", skip_all)]
pub async fn read(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, OAuthError> {
    if !state.settings.registration.enabled {
        return Ok(crate::http::not_found().await);
    }
    let presented = presented_token(&req, TokenKind::RegistrationAccessToken)?;
    let client = state
        .store
        .find_registered_client(&path, &presented)
        .await?
        .ok_or_else(wrong_registration_token)?;
    Ok(no_store(HttpResponse::Ok()).json(response(&state, &client)))
}

/// Replaces a registration's metadata (RFC 7592 §2.2); the response carries a new
/// registration access token, and the old one stops working.
#[utoipa::path(
    put,
    path = "/register/{client_id}",
    tag = "registration",
    params(("client_id" = String, Path, description = "The client's id")),
    request_body(content = ClientMetadata, description = "The whole metadata, with the client's own client_id (and, optionally, its client_secret)", content_type = "application/json"),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Updated: the metadata and a new registration access token", body = RegistrationResponse),
        (status = 400, description = "invalid_redirect_uri or invalid_client_metadata", body = crate::http::schemas::ErrorResponse),
        (status = 401, description = "invalid_token", body = crate::http::schemas::ErrorResponse),
        (status = 413, description = "The body is too large", body = crate::http::schemas::ErrorResponse)
    )
)]
#[tracing::instrument(level = "debug", name = "update_registration", skip_all)]
pub async fn update(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, OAuthError> {
    let settings = &state.settings.registration;
    if !settings.enabled {
        return Ok(crate::http::not_found().await);
    }
    let presented = presented_token(&req, TokenKind::RegistrationAccessToken)?;
    let client = state
        .store
        .find_registered_client(&path, &presented)
        .await?
        .ok_or_else(wrong_registration_token)?;
    let request: UpdateRequest = json_body(&req, payload).await?;
    // RFC 7592 §2.2: "The client MUST include its 'client_id' field in the request".
    if request.metadata.client_id.is_none() {
        return Err(OAuthError::new(
            ErrorCode::InvalidClientMetadata,
            "client_id is missing: an update names the client it replaces",
        ));
    }
    // "If the client includes the 'client_secret' field in the request, the value of this
    // field MUST match the currently issued client secret for that client."
    if let Some(secret) = &request.client_secret
        && !client
            .secret_hash
            .is_some_and(|hash| TokenHash::of(secret).ct_eq(&hash))
    {
        return Err(OAuthError::new(
            ErrorCode::InvalidClientMetadata,
            "client_secret does not match the client's secret: it cannot be changed here",
        ));
    }
    let updated = request.metadata.apply_to(&client, &settings.policy())?;
    let new_token = generate(TokenKind::RegistrationAccessToken)?;
    let now = clock::now();
    match state
        .store
        .replace_registered_client(&updated, &presented, &new_token.hash(), client.version, now)
        .await?
    {
        Replaced::Done { .. } => {}
        // Another update (with the same token) came first and replaced the token.
        Replaced::VersionMismatch { .. } | Replaced::NotFound => {
            return Err(wrong_registration_token());
        }
    }
    state.clients.evict(&client.id);
    let entry = AuditEntry::new(AuditKind::ClientUpdated)
        .client(Some(&client.id))
        .address(client_address(&req))
        .detail("registration updated (RFC 7592)")
        .actor(&Actor::Client(client.id.clone()));
    state.store.record_audit(entry, now).await?;
    let stored = state
        .store
        .find_client(&client.id)
        .await?
        .ok_or_else(wrong_registration_token)?;
    let body = RegistrationResponse {
        registration_access_token: Some(new_token.into_string()),
        ..response(&state, &stored)
    };
    Ok(no_store(HttpResponse::Ok()).json(body))
}

/// Deletes a registration with all its grants and tokens (RFC 7592 §2.3).
#[utoipa::path(
    delete,
    path = "/register/{client_id}",
    tag = "registration",
    params(("client_id" = String, Path, description = "The client's id")),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Deleted, with every grant and token of the client"),
        (status = 401, description = "invalid_token", body = crate::http::schemas::ErrorResponse)
    )
)]
#[tracing::instrument(level = "debug", name = "delete_registration", skip_all)]
pub async fn delete(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, OAuthError> {
    if !state.settings.registration.enabled {
        return Ok(crate::http::not_found().await);
    }
    let presented = presented_token(&req, TokenKind::RegistrationAccessToken)?;
    if !state
        .store
        .delete_registered_client(&path, &presented)
        .await?
    {
        return Err(wrong_registration_token());
    }
    state.clients.evict(&path);
    let entry = AuditEntry::new(AuditKind::ClientDeleted)
        .client(Some(&path))
        .address(client_address(&req))
        .detail("registration deleted (RFC 7592)")
        .actor(&Actor::Client(path.to_string()));
    state.store.record_audit(entry, clock::now()).await?;
    Ok(no_store(HttpResponse::NoContent()).finish())
}

/// What `registration` lets a client ask for: its grant types and scopes (never the admin
/// scope), redirect URIs https or http to a loopback address.
/// Counts an open registration against its address, or refuses it (429) when the address
/// used up its window: anyone may register, but nobody may fill the clients table. Every
/// attempt counts, whatever becomes of it, so the count is settled as it is taken.
async fn count_open_registration(
    state: &AppState,
    req: &HttpRequest,
    now: i64,
) -> Result<(), OAuthError> {
    let key = registration_key(client_address(req));
    let limit = state.settings.registration.open_limit();
    match state.store.take_sign_in_slot(&key, &limit, now).await? {
        SignInSlot::Taken { window_ends_at } => {
            state
                .store
                .settle_sign_in_slot(&key, window_ends_at, true)
                .await?;
            Ok(())
        }
        SignInSlot::Refused { retry_after_secs } => Err(OAuthError::too_many_requests(
            "too many registrations from this address, retry later",
            retry_after_secs,
        )),
    }
}

/// The response for `client`: its metadata, where to manage it, and its secret's expiry.
fn response(state: &AppState, client: &crate::oauth::client::Client) -> RegistrationResponse {
    let issuer = &state.settings.server.issuer;
    RegistrationResponse {
        metadata: ClientMetadata::of(client),
        client_secret: None,
        client_id_issued_at: None,
        client_secret_expires_at: client
            .secret_hash
            .map(|_| client.secret_expires_at.unwrap_or(0)),
        registration_access_token: None,
        registration_client_uri: format!("{issuer}/register/{}", client.id),
    }
}

/// The hash of the `Authorization: Bearer` token of `kind`; anything else is `invalid_token`.
fn presented_token(req: &HttpRequest, kind: TokenKind) -> Result<TokenHash, OAuthError> {
    let authorization = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok());
    let presented = crate::http::bearer::bearer(authorization)
        .map_err(|_| invalid_token("a bearer token is required"))?;
    token::parse(presented)
        .filter(|parsed| parsed.kind == kind)
        .map(|parsed| parsed.hash)
        .ok_or_else(|| invalid_token("the token is malformed or of another kind"))
}

fn invalid_token(description: &'static str) -> OAuthError {
    OAuthError::new(ErrorCode::InvalidToken, description)
}

/// One answer for an unknown client and a wrong token (RFC 7592 §2: "the authorization
/// server MUST NOT ... reveal" which).
fn wrong_registration_token() -> OAuthError {
    invalid_token("the registration access token is not valid for this client")
}

fn generate(kind: TokenKind) -> Result<Token, OAuthError> {
    Token::generate(kind).map_err(OAuthError::server_error)
}

/// A JSON object of at most [`BODY_LIMIT`] bytes, sent as `application/json`.
async fn json_body<T: serde::de::DeserializeOwned>(
    req: &HttpRequest,
    payload: web::Payload,
) -> Result<T, OAuthError> {
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default();
    let essence = content_type.split(';').next().unwrap_or_default().trim();
    if !essence.eq_ignore_ascii_case("application/json") {
        return Err(OAuthError::invalid_request(
            "the body must be JSON (Content-Type: application/json)",
        ));
    }
    let bytes = match payload.to_bytes_limited(BODY_LIMIT).await {
        Ok(Ok(bytes)) => bytes,
        Ok(Err(err)) => {
            return Err(OAuthError::invalid_request("the body could not be read").with_cause(err));
        }
        Err(_) => {
            return Err(OAuthError::invalid_request(format!(
                "the body exceeds {BODY_LIMIT} bytes"
            ))
            .with_status(413));
        }
    };
    // serde would also read a struct from a JSON array; metadata is an object.
    if bytes.trim_ascii_start().first() != Some(&b'{') {
        return Err(OAuthError::new(
            ErrorCode::InvalidClientMetadata,
            "the body must be a JSON object of client metadata",
        ));
    }
    serde_json::from_slice(&bytes)
        .map_err(|err| OAuthError::new(ErrorCode::InvalidClientMetadata, json_problem(&err)))
}
