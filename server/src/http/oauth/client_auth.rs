//! Authenticating the calling client: credentials from the request, the record from the
//! cache (or the store), the check from the protocol layer. A client assertion
//! (`private_key_jwt`) also needs the client's keys (registered, or fetched from its
//! `jwks_uri`) and the store's record of used `jti`s.
use crate::clock;
use crate::http::AppState;
use crate::http::form::OAuthRequest;
use crate::oauth::OAuthError;
use crate::oauth::client::Client;
use crate::oauth::client_assertion::{Accepted, Assertion, Refusal};
use crate::oauth::client_auth::ClientCredentials;
use crate::oauth::client_jwks::ClientKeys;
use crate::remote_jwks::FetchError;
use crate::store::{AssertionUse, StoreError};
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
    let client = match &credentials.assertion {
        Some(assertion) => authenticate_assertion(state, request, assertion, client).await?,
        None => credentials.authenticate(client, clock::now())?,
    };
    tracing::Span::current().record("client_id", client.id.as_str());
    Ok(client)
}

/// `private_key_jwt`: the assertion verified with the client's keys, then its `jti` used.
async fn authenticate_assertion(
    state: &AppState,
    request: &OAuthRequest,
    assertion: &Assertion,
    client: Option<Arc<Client>>,
) -> Result<Arc<Client>, OAuthError> {
    let Some((client, keys)) = client.and_then(|client| {
        let keys = client.assertion_keys.clone()?;
        Some((client, keys))
    }) else {
        // One answer for an unknown client and one that authenticates otherwise.
        return Err(OAuthError::invalid_client(
            "client authentication failed: no client of that id uses private_key_jwt",
        ));
    };
    let issuer = &state.settings.server.issuer;
    let token_endpoint = format!("{issuer}/token");
    let endpoint = format!("{issuer}{}", request.path);
    let audiences = [issuer.as_str(), &token_endpoint, &endpoint];
    let policy = state.settings.client_assertions.policy();
    let now = clock::now();
    let verify = |jwks| assertion.verify(&client.id, jwks, &audiences, &policy, now);
    let outcome = match &keys {
        ClientKeys::Inline(jwks) => verify(jwks),
        ClientKeys::Uri(uri) => {
            let fetched = state
                .remote_jwks
                .keys(&client.id, uri)
                .await
                .map_err(fetch_failed)?;
            match verify(&fetched) {
                // The client may have rotated its keys since they were fetched.
                Err(Refusal::UnknownKey) => {
                    match state
                        .remote_jwks
                        .refetch(&client.id, uri, &fetched)
                        .await
                        .map_err(fetch_failed)?
                    {
                        Some(refetched) => verify(&refetched),
                        None => Err(Refusal::UnknownKey),
                    }
                }
                outcome => outcome,
            }
        }
    };
    let Accepted { jti, expires_at } = outcome.map_err(|refusal| match refusal {
        Refusal::UnknownKey => OAuthError::invalid_client(
            "no key registered for the client has the client_assertion's kid and fits its alg",
        ),
        Refusal::Invalid(err) => err,
    })?;
    match state
        .store
        .use_client_assertion(&client.id, &jti, expires_at, now)
        .await
    {
        Ok(AssertionUse::First) => Ok(client),
        Ok(AssertionUse::Replayed) => {
            tracing::warn!(client_id = %client.id, "client assertion replayed");
            Err(OAuthError::invalid_client(
                "the client_assertion was already used: its jti is accepted once",
            ))
        }
        // Deleted by another process while this instance still had it cached.
        Err(StoreError::Gone(_)) => {
            state.clients.evict(&client.id);
            Err(OAuthError::invalid_client("the client is not registered"))
        }
        Err(err) => Err(err.into()),
    }
}

/// The client's key server failing is the client's problem, not an outage of Umbra: the
/// client cannot be authenticated (401), and the cause is logged.
fn fetch_failed(err: FetchError) -> OAuthError {
    OAuthError::invalid_client("the client's keys could not be fetched from its jwks_uri")
        .with_cause(err)
}
