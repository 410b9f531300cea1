//! `POST /token` (RFC 6749 §3.2): authenticate the client, then dispatch on the grant type.
use super::client_auth::authenticate;
use crate::clock;
use crate::http::AppState;
use crate::http::form::OAuthRequest;
use crate::oauth::client::Client;
use crate::oauth::grant_type::GrantType;
use crate::oauth::grants::{
    TokenResponse, authorization_code, client_credentials, refresh_token, token_exchange,
};
use crate::oauth::introspection::RecordKind;
use crate::oauth::oidc::{self, Authentication, IdTokenClaims, IdTokenFor};
use crate::oauth::params::Params;
use crate::oauth::scope::ScopeSet;
use crate::oauth::token::{self, Token, TokenKind};
use crate::oauth::{ErrorCode, OAuthError};
use crate::store::{Exchange, NewAccessToken, StoreError, TokenPlan};
use actix_web::http::header;
use actix_web::{HttpResponse, web};

/// Issues tokens (RFC 6749 §3.2).
#[utoipa::path(
    post,
    path = "/token",
    tag = "oauth",
    request_body(content = crate::http::schemas::TokenRequest, content_type = "application/x-www-form-urlencoded"),
    security((), ("client_secret_basic" = [])),
    responses(
        (status = 200, description = "Tokens; `Cache-Control: no-store`", body = TokenResponse),
        (status = 400, description = "invalid_request, invalid_grant, unauthorized_client, unsupported_grant_type, invalid_scope, invalid_target", body = crate::http::schemas::ErrorResponse),
        (status = 401, description = "invalid_client", body = crate::http::schemas::ErrorResponse),
        (status = 413, description = "body too large", body = crate::http::schemas::ErrorResponse),
        (status = 503, description = "temporarily_unavailable", body = crate::http::schemas::ErrorResponse)
    )
)]
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
    let requested = request.params.require("grant_type")?;
    let grant_type = requested.parse::<GrantType>();
    // Only a known name reaches the log: the value is the client's, and could be anything.
    let logged = grant_type.as_ref().map_or("unsupported", |g| g.as_str());
    tracing::Span::current().record("grant_type", logged);
    let client = authenticate(&state, &request).await?;
    let grant_type = grant_type.map_err(|_| unsupported(requested))?;
    let params = &request.params;
    let response = match grant_type {
        GrantType::ClientCredentials => issue_client_credentials(&state, &client, params).await?,
        GrantType::AuthorizationCode => redeem_code(&state, &client, params).await?,
        GrantType::RefreshToken => refresh(&state, &client, params).await?,
        GrantType::TokenExchange => exchange(&state, &client, params).await?,
    };
    state
        .metrics
        .tokens_issued
        .with_label_values(&[grant_type.as_str()])
        .inc();
    Ok(no_store(HttpResponse::Ok()).json(response))
}

async fn issue_client_credentials(
    state: &AppState,
    client: &Client,
    params: &Params,
) -> Result<TokenResponse, OAuthError> {
    let target = client_credentials::authorize(client, params)?;
    let fresh = FreshTokens::generate(state, false)?;
    let record = NewAccessToken {
        hash: fresh.plan.access,
        scope: target.scope,
        audience: target.audience,
        issued_at: fresh.plan.issued_at,
        expires_at: fresh.plan.access_expires_at,
    };
    state
        .store
        .issue_client_credentials(&client.id, &record)
        .await
        .map_err(|err| client_gone(state, client, err))?;
    let expires_in = state.settings.tokens.access_token_ttl_secs;
    Ok(fresh.response(expires_in, &record.scope))
}

/// Token exchange (RFC 8693): `client` trades an access token it received for one meant for
/// another resource, in the subject token's grant.
async fn exchange(
    state: &AppState,
    client: &Client,
    params: &Params,
) -> Result<TokenResponse, OAuthError> {
    token_exchange::check_client(client)?;
    let presented = token_exchange::subject_token(params)?;
    let subject = match token::parse(presented) {
        Some(parsed) if parsed.kind == TokenKind::AccessToken => {
            state
                .store
                .token_record_in_grant(&parsed.hash, RecordKind::Access)
                .await?
        }
        _ => None,
    };
    let policy = token_exchange::Policy {
        require_subject_audience: state.settings.token_exchange.require_subject_audience,
        max_chain_depth: state.settings.token_exchange.max_chain_depth,
        access_token_ttl_secs: state.settings.tokens.access_token_ttl_secs,
    };
    let fresh = FreshTokens::generate(state, false)?;
    let now = fresh.plan.issued_at;
    let exchanged = token_exchange::decide(
        client,
        subject.as_ref().map(|(record, _)| record),
        params,
        &policy,
        now,
    )?;
    let Some((_, grant_id)) = subject else {
        return Err(OAuthError::server_error(
            "an exchange was decided without a subject",
        ));
    };
    let record = NewAccessToken {
        hash: fresh.plan.access,
        scope: exchanged.target.scope,
        audience: exchanged.target.audience,
        issued_at: now,
        expires_at: exchanged.expires_at,
    };
    match state
        .store
        .issue_exchanged_token(grant_id, &client.id, &record, &exchanged.act)
        .await
    {
        Ok(()) => {}
        // The subject's grant was deleted (its client or user went) after the lookup.
        Err(StoreError::Gone(_)) => {
            return Err(OAuthError::invalid_request(
                "the subject_token is invalid, expired or revoked",
            ));
        }
        Err(err) => return Err(err.into()),
    }
    let mut response = fresh.response(exchanged.expires_at - now, &record.scope);
    response.issued_token_type = Some(token_exchange::ACCESS_TOKEN_TYPE);
    Ok(response)
}

async fn redeem_code(
    state: &AppState,
    client: &Client,
    params: &Params,
) -> Result<TokenResponse, OAuthError> {
    authorization_code::check_client(client)?;
    let code = presented(params, "code", TokenKind::AuthorizationCode)?;
    let fresh = FreshTokens::generate(state, client.allows_grant(GrantType::RefreshToken))?;
    let outcome = state
        .store
        .redeem_code(
            &code,
            fresh.plan.issued_at,
            |stored| authorization_code::check_redemption(stored, client, params),
            &fresh.plan,
        )
        .await;
    fresh
        .finish(
            state,
            client,
            outcome,
            "the authorization code was already used; every token issued from it is revoked",
            "the authorization code is invalid or expired",
        )
        .await
}

async fn refresh(
    state: &AppState,
    client: &Client,
    params: &Params,
) -> Result<TokenResponse, OAuthError> {
    refresh_token::check_client(client)?;
    let presented_token = presented(params, "refresh_token", TokenKind::RefreshToken)?;
    let fresh = FreshTokens::generate(state, true)?;
    let outcome = state
        .store
        .rotate_refresh_token(
            &presented_token,
            fresh.plan.issued_at,
            state.settings.tokens.refresh_reuse_grace_secs,
            |stored| refresh_token::check_refresh(stored, client, params),
            &fresh.plan,
        )
        .await;
    fresh
        .finish(
            state,
            client,
            outcome,
            "the refresh token was already used; the whole grant is revoked",
            "the refresh token is invalid, expired or revoked",
        )
        .await
}

/// A store error of a request made by `client`. `Gone` means the client was deleted (by
/// another process) while this instance still had it cached: the entry is dropped, and the
/// answer is `invalid_client`, not a 500.
fn client_gone(state: &AppState, client: &Client, err: StoreError) -> OAuthError {
    if matches!(err, StoreError::Gone(_)) {
        state.clients.evict(&client.id);
    }
    err.into()
}

/// A deleted client's codes and tokens go with it, so its exchanges find nothing; that is
/// `invalid_client` rather than `invalid_grant`. Asked only on this failure path, so the
/// success path costs nothing more.
async fn refuse_if_deleted(state: &AppState, client: &Client) -> Result<(), OAuthError> {
    if state
        .clients
        .still_registered(&state.store, &client.id)
        .await?
    {
        Ok(())
    } else {
        Err(OAuthError::invalid_client("the client is not registered"))
    }
}

/// The hash of a required token parameter; one of another kind or malformed is
/// `invalid_grant` without a database query.
fn presented(
    params: &Params,
    name: &'static str,
    kind: TokenKind,
) -> Result<token::TokenHash, OAuthError> {
    match token::parse(params.require(name)?) {
        Some(parsed) if parsed.kind == kind => Ok(parsed.hash),
        _ => Err(OAuthError::invalid_grant(format!(
            "the {name} is invalid or expired"
        ))),
    }
}

/// Newly drawn tokens and the plan to store them.
struct FreshTokens {
    access: Token,
    refresh: Option<Token>,
    plan: TokenPlan,
}

impl FreshTokens {
    fn generate(state: &AppState, with_refresh: bool) -> Result<Self, OAuthError> {
        let access = Token::generate(TokenKind::AccessToken).map_err(OAuthError::server_error)?;
        let refresh = with_refresh
            .then(|| Token::generate(TokenKind::RefreshToken))
            .transpose()
            .map_err(OAuthError::server_error)?;
        let now = clock::now();
        let lifetimes = &state.settings.tokens;
        let plan = TokenPlan {
            access: access.hash(),
            refresh: refresh.as_ref().map(Token::hash),
            issued_at: now,
            access_expires_at: now + lifetimes.access_token_ttl_secs,
            refresh_expires_at: now + lifetimes.refresh_token_ttl_secs,
        };
        Ok(Self {
            access,
            refresh,
            plan,
        })
    }

    /// Turns the outcome of `client`'s single-use exchange into the response or its
    /// `invalid_grant`. A credential found nowhere may be one deleted with its client (by
    /// another process, while this instance still had the client cached): that is
    /// `invalid_client`, as is a row that vanished under the exchange.
    async fn finish(
        self,
        state: &AppState,
        client: &Client,
        outcome: Result<Exchange<OAuthError>, StoreError>,
        replayed: &'static str,
        invalid: &'static str,
    ) -> Result<TokenResponse, OAuthError> {
        match outcome.map_err(|err| client_gone(state, client, err))? {
            Exchange::Issued {
                target,
                user_id,
                authentication,
            } => {
                let id_token = match user_id {
                    Some(user_id) if target.scope.contains(oidc::OPENID) => Some(
                        id_token(
                            state,
                            client,
                            &user_id.to_string(),
                            &authentication,
                            self.access.expose(),
                            self.plan.issued_at,
                        )
                        .await?,
                    ),
                    _ => None,
                };
                let mut response =
                    self.response(state.settings.tokens.access_token_ttl_secs, &target.scope);
                response.id_token = id_token;
                Ok(response)
            }
            Exchange::Refused(error) => Err(error),
            Exchange::Replayed => {
                tracing::warn!("single-use credential replayed; its grant is revoked");
                Err(OAuthError::invalid_grant(replayed))
            }
            Exchange::Invalid => {
                refuse_if_deleted(state, client).await?;
                Err(OAuthError::invalid_grant(invalid))
            }
        }
    }

    fn response(self, expires_in: i64, scope: &ScopeSet) -> TokenResponse {
        TokenResponse {
            access_token: self.access.into_string(),
            token_type: "Bearer",
            expires_in,
            refresh_token: self.refresh.map(Token::into_string),
            issued_token_type: None,
            scope: scope.to_string(),
            id_token: None,
        }
    }
}

/// The ID token (OpenID Connect Core §2) of a response that carries `access_token`, signed with
/// the client's registered algorithm or the server's default. At a refresh it repeats the
/// grant's `auth_time`, `amr`, `acr`, `sid` and `nonce` (§12.2).
async fn id_token(
    state: &AppState,
    client: &Client,
    user_id: &str,
    authentication: &Authentication,
    access_token: &str,
    now: i64,
) -> Result<String, OAuthError> {
    let alg = client
        .openid
        .id_token_alg
        .unwrap_or_else(|| state.keys.default_alg());
    let claims = IdTokenClaims::new(
        &IdTokenFor {
            issuer: &state.settings.server.issuer,
            user_id,
            client_id: &client.id,
            access_token,
            alg,
            now,
            ttl_secs: state.settings.tokens.id_token_ttl_secs,
        },
        authentication,
    );
    state
        .keys
        .sign(alg, "JWT", &claims, now)
        .await
        .map_err(OAuthError::server_error)
}

fn unsupported(grant_type: &str) -> OAuthError {
    let shown: String = grant_type
        .chars()
        .filter(char::is_ascii_graphic)
        .take(40)
        .collect();
    OAuthError::new(
        ErrorCode::UnsupportedGrantType,
        format!("grant type '{shown}' is not supported"),
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
