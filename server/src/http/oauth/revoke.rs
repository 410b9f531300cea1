//! `POST /revoke` (RFC 7009): a client revokes one of its own tokens.
use super::client_auth::authenticate;
use super::token::no_store;
use crate::clock;
use crate::http::AppState;
use crate::http::form::OAuthRequest;
use crate::oauth::OAuthError;
use crate::oauth::revocation::{RevocationOutcome, RevocationTarget};
use crate::store::{AuditEntry, AuditKind};
use actix_web::{HttpRequest, HttpResponse, web};

/// Revokes a token (RFC 7009); unknown tokens also answer 200.
#[utoipa::path(
    post,
    path = "/revoke",
    tag = "oauth",
    request_body(content = crate::http::schemas::TokenActionRequest, content_type = "application/x-www-form-urlencoded"),
    security((), ("client_secret_basic" = [])),
    responses(
        (status = 200, description = "Revoked, or unknown"),
        (status = 400, description = "invalid_request, or unauthorized_client for another client's token", body = crate::http::schemas::ErrorResponse),
        (status = 401, description = "invalid_client", body = crate::http::schemas::ErrorResponse),
        (status = 503, description = "temporarily_unavailable", body = crate::http::schemas::ErrorResponse)
    )
)]
#[tracing::instrument(level = "debug", name = "revoke", skip_all, fields(client_id))]
pub async fn revoke(
    req: HttpRequest,
    state: web::Data<AppState>,
    request: OAuthRequest,
) -> Result<HttpResponse, OAuthError> {
    let client = authenticate(&state, &request).await?;
    let presented = request.params.require("token")?;
    if let Some(target) = RevocationTarget::of(presented) {
        let kind = target.kind_name();
        let now = clock::now();
        match state.store.revoke(target, &client.id, now).await? {
            RevocationOutcome::Revoked => {
                state.metrics.revocations.inc();
                let entry = AuditEntry::new(AuditKind::TokenRevoked)
                    .client(Some(&client.id))
                    .address(crate::http::client_address::client_address(&req))
                    .detail(kind);
                state.store.record_audit(entry, now).await?;
            }
            RevocationOutcome::Unknown => {}
            RevocationOutcome::IssuedToAnotherClient => {
                return Err(OAuthError::unauthorized_client(
                    "the token was not issued to this client",
                ));
            }
        }
    }
    Ok(no_store(HttpResponse::Ok()).finish())
}
