//! Authenticating the calling client: credentials from the request, the record from the
//! cache (or the store), the check from the protocol layer.
use crate::http::AppState;
use crate::http::form::OAuthRequest;
use crate::oauth::OAuthError;
use crate::oauth::client::Client;
use crate::oauth::client_auth::ClientCredentials;
use std::sync::Arc;

pub async fn authenticate(
    state: &AppState,
    request: &OAuthRequest,
) -> Result<Arc<Client>, OAuthError> {
    let credentials =
        ClientCredentials::extract(request.authorization.as_deref(), &request.params)?;
    let client = state
        .clients
        .get(&state.store, &credentials.client_id)
        .await?;
    let client = credentials.authenticate(client)?;
    tracing::Span::current().record("client_id", client.id.as_str());
    Ok(client)
}
