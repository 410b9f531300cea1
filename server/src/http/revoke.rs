//! `POST /revoke` (RFC 7009): a client revokes one of its own tokens.
use super::AppState;
use super::client_auth::authenticate;
use super::form::OAuthRequest;
use super::token::no_store;
use crate::clock;
use crate::oauth::OAuthError;
use crate::oauth::revocation::{RevocationOutcome, RevocationTarget};
use actix_web::{HttpResponse, web};

#[tracing::instrument(level = "debug", name = "revoke", skip_all, fields(client_id))]
pub async fn revoke(
    state: web::Data<AppState>,
    request: OAuthRequest,
) -> Result<HttpResponse, OAuthError> {
    let client = authenticate(&state, &request).await?;
    let presented = request.params.require("token")?;
    if let Some(target) = RevocationTarget::of(presented) {
        match state.store.revoke(target, &client.id, clock::now()).await? {
            RevocationOutcome::Revoked | RevocationOutcome::Unknown => {}
            RevocationOutcome::IssuedToAnotherClient => {
                return Err(OAuthError::unauthorized_client(
                    "the token was not issued to this client",
                ));
            }
        }
    }
    Ok(no_store(HttpResponse::Ok()).finish())
}
