//! `POST /introspect` (RFC 7662): resource servers ask whether a token is active.
use super::client_auth::authenticate;
use super::token::no_store;
use crate::clock;
use crate::http::AppState;
use crate::http::form::OAuthRequest;
use crate::oauth::OAuthError;
use crate::oauth::introspection::Introspection;
use crate::oauth::token::{self, TokenKind};
use actix_web::{HttpResponse, web};

/// Introspects a token (RFC 7662); the caller is a client allowed to introspect.
#[utoipa::path(
    post,
    path = "/introspect",
    tag = "oauth",
    request_body(content = crate::http::schemas::TokenActionRequest, content_type = "application/x-www-form-urlencoded"),
    security(("client_secret_basic" = [])),
    responses(
        (status = 200, description = "`{\"active\": false}` or the token's details", body = Introspection),
        (status = 400, description = "invalid_request", body = crate::http::schemas::ErrorResponse),
        (status = 401, description = "invalid_client", body = crate::http::schemas::ErrorResponse),
        (status = 403, description = "the client may not introspect", body = crate::http::schemas::ErrorResponse),
        (status = 503, description = "temporarily_unavailable", body = crate::http::schemas::ErrorResponse)
    )
)]
#[tracing::instrument(level = "debug", name = "introspect", skip_all, fields(client_id))]
pub async fn introspect(
    state: web::Data<AppState>,
    request: OAuthRequest,
) -> Result<HttpResponse, OAuthError> {
    let caller = authenticate(&state, &request).await?;
    if caller.is_public() || !caller.can_introspect {
        return Err(
            OAuthError::unauthorized_client("this client may not introspect tokens")
                .with_status(403),
        );
    }
    let presented = request.params.require("token")?;
    let answer = match token::parse(presented) {
        Some(parsed) if parsed.kind == TokenKind::AccessToken => {
            let record = state.store.access_token_record(&parsed.hash).await?;
            Introspection::of(record, clock::now(), &state.settings.server.issuer)
        }
        _ => Introspection::inactive(),
    };
    let result = if answer.active { "active" } else { "inactive" };
    state
        .metrics
        .introspections
        .with_label_values(&[result])
        .inc();
    Ok(no_store(HttpResponse::Ok()).json(answer))
}
