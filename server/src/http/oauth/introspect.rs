//! `POST /introspect` (RFC 7662): resource servers ask whether a token is active; as JSON, or
//! as a signed JWT for those registered for it (RFC 9701, see `oauth::signed_introspection`).
use super::client_auth::authenticate;
use super::token::no_store;
use crate::clock;
use crate::http::AppState;
use crate::http::form::OAuthRequest;
use crate::keys::KeyError;
use crate::oauth::OAuthError;
use crate::oauth::introspection::{Caller, Introspection, RecordKind};
use crate::oauth::signed_introspection::{self, Rendering, SignedAnswer};
use crate::oauth::token::{self, TokenKind};
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};

/// Introspects a token (RFC 7662), answered for the caller: a resource server sees the access
/// tokens meant for its resources, a client its own refresh tokens; anything else is
/// `{"active": false}`.
#[utoipa::path(
    post,
    path = "/introspect",
    tag = "oauth",
    request_body(content = crate::http::schemas::TokenActionRequest, content_type = "application/x-www-form-urlencoded"),
    security(("client_secret_basic" = [])),
    responses(
        (status = 200, description = "`{\"active\": false}` or the token's details; for a client registered for signed answers that asks for them, the same as a JWT (RFC 9701) under `token_introspection`", content(
            (Introspection = "application/json"),
            (String = "application/token-introspection+jwt")
        )),
        (status = 400, description = "invalid_request", body = crate::http::schemas::ErrorResponse),
        (status = 401, description = "invalid_client", body = crate::http::schemas::ErrorResponse),
        (status = 403, description = "a public client may not introspect", body = crate::http::schemas::ErrorResponse),
        (status = 406, description = "a signed answer was asked for by a client not registered for one", body = crate::http::schemas::ErrorResponse),
        (status = 503, description = "temporarily_unavailable", body = crate::http::schemas::ErrorResponse)
    )
)]
#[tracing::instrument(level = "debug", name = "introspect", skip_all, fields(client_id))]
pub async fn introspect(
    state: web::Data<AppState>,
    http: HttpRequest,
    request: OAuthRequest,
) -> Result<HttpResponse, OAuthError> {
    let caller = authenticate(&state, &request).await?;
    // Any confidential client may ask: a resource server about the access tokens meant for
    // it, any client about its own refresh tokens. A public client proves nothing of who it is.
    if caller.is_public() {
        return Err(
            OAuthError::unauthorized_client("a public client may not introspect tokens")
                .with_status(403),
        );
    }
    let rendering = Rendering::negotiate(
        accept(&http).as_deref(),
        caller.introspection_signed_response_alg,
    );
    if rendering == Rendering::NotAcceptable {
        return Err(OAuthError::invalid_request(
            "this client is not registered for signed introspection answers (RFC 9701); \
             accept application/json",
        )
        .with_status(406));
    }
    let now = clock::now();
    // `token_type_hint` is only a hint (RFC 7662 §2.1): the prefix says what a token is.
    let presented = request.params.require("token")?;
    let kind = token::parse(presented).and_then(|parsed| {
        let kind = match parsed.kind {
            TokenKind::AccessToken => RecordKind::Access,
            TokenKind::RefreshToken => RecordKind::Refresh,
            _ => return None,
        };
        Some((parsed.hash, kind))
    });
    let answer = match kind {
        Some((hash, kind)) => {
            let record = state.store.token_record(&hash, kind).await?;
            let viewer = Caller {
                client_id: &caller.id,
                can_introspect: caller.can_introspect,
                introspects_for: &caller.resources.introspects_for,
                require_audience: state.settings.introspection.require_audience,
            };
            Introspection::of(
                record,
                now,
                &state.settings.server.issuer,
                &viewer,
                hash.public_id(),
            )
        }
        None => Introspection::inactive(),
    };
    let result = if answer.active { "active" } else { "inactive" };
    state
        .metrics
        .introspections
        .with_label_values(&[result])
        .inc();
    match rendering {
        Rendering::Jwt(alg) => {
            let claims = SignedAnswer {
                iss: &state.settings.server.issuer,
                aud: &caller.id,
                iat: now,
                token_introspection: &answer,
            };
            let jwt = state
                .keys
                .sign(alg, signed_introspection::TYP, &claims, now)
                .await
                .map_err(signing_failed)?;
            Ok(no_store(HttpResponse::Ok())
                .content_type(signed_introspection::MEDIA_TYPE)
                .body(jwt))
        }
        Rendering::Json | Rendering::NotAcceptable => Ok(no_store(HttpResponse::Ok()).json(answer)),
    }
}

/// Every `Accept` header of the request as one list (RFC 9110 §5.3); `None` without one.
fn accept(http: &HttpRequest) -> Option<String> {
    let values: Vec<&str> = http
        .headers()
        .get_all(header::ACCEPT)
        .filter_map(|value| value.to_str().ok())
        .collect();
    (!values.is_empty()).then(|| values.join(","))
}

/// A database outage while re-reading the keys is one like any other; no key of the
/// registered algorithm is the operator's to fix (`umbra keys rotate`), logged with the cause.
fn signing_failed(err: KeyError) -> OAuthError {
    match err {
        KeyError::Store(err) => err.into(),
        err => OAuthError::server_error(err),
    }
}
