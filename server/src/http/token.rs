//! `POST /token` (RFC 6749 §3.2): authenticate the client, dispatch on the grant type.
use super::AppState;
use super::client_auth::authenticate;
use super::form::OAuthRequest;
use crate::clock;
use crate::oauth::grant_type::GrantType;
use crate::oauth::grants::{TokenResponse, client_credentials};
use crate::oauth::token::{Token, TokenKind};
use crate::oauth::{ErrorCode, OAuthError};
use crate::store::NewAccessToken;
use actix_web::http::header;
use actix_web::{HttpResponse, web};

#[tracing::instrument(
    level = "debug",
    name = "token",
    skip_all,
    fields(client_id, grant_type)
)]
pub async fn token(
    state: web::Data<AppState>,
    request: OAuthRequest,
) -> Result<HttpResponse, OAuthError> {
    let grant_type = request.params.require("grant_type")?.to_owned();
    tracing::Span::current().record("grant_type", grant_type.as_str());
    let client = authenticate(&state, &request).await?;
    let grant_type: GrantType = grant_type.parse().map_err(|_| unsupported(&grant_type))?;
    let response = match grant_type {
        GrantType::ClientCredentials => {
            let scope = client_credentials::authorize(&client, &request.params)?;
            let now = clock::now();
            let ttl = state.settings.tokens.access_token_ttl_secs;
            let token =
                Token::generate(TokenKind::AccessToken).map_err(OAuthError::server_error)?;
            let record = NewAccessToken {
                hash: token.hash(),
                scope,
                issued_at: now,
                expires_at: now + ttl,
            };
            state
                .store
                .issue_client_credentials(&client.id, &record)
                .await?;
            TokenResponse {
                access_token: token.into_string(),
                token_type: "Bearer",
                expires_in: ttl,
                refresh_token: None,
                scope: record.scope.to_string(),
            }
        }
        GrantType::AuthorizationCode | GrantType::RefreshToken => {
            return Err(unsupported(grant_type.as_str()));
        }
    };
    Ok(no_store(HttpResponse::Ok()).json(response))
}

fn unsupported(grant_type: &str) -> OAuthError {
    let shown: String = grant_type
        .chars()
        .filter(char::is_ascii_graphic)
        .take(40)
        .collect();
    OAuthError::new(
        ErrorCode::UnsupportedGrantType,
        format!("grant type {shown:?} is not supported"),
    )
}

/// "The authorization server MUST include the HTTP Cache-Control response header field with a
/// value of no-store in any response containing tokens, credentials, or other sensitive
/// information, as well as the Pragma response header field with a value of no-cache."
pub fn no_store(mut builder: actix_web::HttpResponseBuilder) -> actix_web::HttpResponseBuilder {
    builder
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::PRAGMA, "no-cache"));
    builder
}
