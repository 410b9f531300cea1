//! `GET/POST /userinfo` (OpenID Connect Core §5.3): the claims about the user that the access
//! token's scopes release. The token travels as RFC 6750 allows: the `Authorization` header,
//! or an `access_token` form parameter in a POST body; errors are RFC 6750 §3 with a
//! `WWW-Authenticate: Bearer` challenge.
//!
//! The endpoint is a resource server of its own: it accepts a user's access token with
//! `openid` that names no resource (RFC 8707), or that names this issuer among its
//! resources; a token meant only for another service is refused, so that a service cannot
//! read the profile with the token it was handed.
use crate::auth::factor::FactorKind;
use crate::http::AppState;
use crate::http::bearer::{bearer, user_token};
use crate::http::error::ApiError;
use crate::oauth::introspection::Caller;
use crate::oauth::oidc::{self, Profile};
use crate::oauth::params::Params;
use crate::oauth::scope::ScopeSet;
use crate::store::User;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};

/// The claims of the token's user.
#[utoipa::path(
    get,
    path = "/userinfo",
    tag = "openid",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The claims its scopes release: `sub`; `name`, `preferred_username` (profile); `email`, `email_verified` (email)", content_type = "application/json"),
        (status = 401, description = "No token, or an invalid, expired, revoked one, or one meant for another resource (`WWW-Authenticate: Bearer`)", body = crate::http::schemas::ErrorResponse),
        (status = 403, description = "insufficient_scope: not a user's token with openid", body = crate::http::schemas::ErrorResponse)
    )
)]
pub async fn userinfo(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    answer(&state, header_token(&req)).await
}

/// The same as `GET /userinfo`; the token may also be the `access_token` form parameter.
#[utoipa::path(
    post,
    path = "/userinfo",
    tag = "openid",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The claims its scopes release", content_type = "application/json"),
        (status = 400, description = "invalid_request: a malformed body, or a token sent two ways", body = crate::http::schemas::ErrorResponse),
        (status = 401, description = "No token, or an invalid one (`WWW-Authenticate: Bearer`)", body = crate::http::schemas::ErrorResponse),
        (status = 403, description = "insufficient_scope", body = crate::http::schemas::ErrorResponse)
    )
)]
pub async fn userinfo_post(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let in_body = body_token(&req, &body)?;
    let presented = match (header_token(&req), in_body) {
        // "Clients MUST NOT use more than one method to transmit the token in each request."
        (Some(_), Some(_)) => {
            return Err(ApiError::InvalidRequest(
                "the access token was sent both in the header and in the body".into(),
            ));
        }
        (Some(header), None) => Some(header),
        (None, body) => body,
    };
    answer(&state, presented).await
}

fn header_token(req: &HttpRequest) -> Option<String> {
    req.headers()
        .get(header::AUTHORIZATION)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
}

/// The `access_token` of a form body (RFC 6750 §2.2), if the body is a form.
fn body_token(req: &HttpRequest, body: &[u8]) -> Result<Option<String>, ApiError> {
    if body.is_empty() || !crate::http::form::is_form_urlencoded(req) {
        return Ok(None);
    }
    let params =
        Params::parse(body).map_err(|e| ApiError::InvalidRequest(e.description().to_owned()))?;
    Ok(params
        .get("access_token")
        .map(|token| format!("Bearer {token}")))
}

async fn answer(state: &AppState, authorization: Option<String>) -> Result<HttpResponse, ApiError> {
    let presented = bearer(authorization.as_deref())?;
    let ours = [state.settings.server.issuer.clone()];
    let endpoint = Caller {
        client_id: "",
        can_introspect: true,
        introspects_for: &ours,
        require_audience: false,
    };
    let (user, token) = user_token(state, presented, &endpoint, oidc::OPENID).await?;
    let email_verified = email_verified(state, &user).await?;
    let user_id = user.id.to_string();
    let claims = oidc::userinfo(
        &ScopeSet::from_stored(&token.scope),
        &Profile {
            user_id: &user_id,
            username: &user.username,
            name: user.name.as_deref(),
            email: user.email.as_deref(),
            email_verified,
        },
    );
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(claims))
}

/// Whether the user's profile address is verified: an operator vouched for it, or the user
/// proved they receive mail there by confirming an e-mail second factor at that address.
async fn email_verified(state: &AppState, user: &User) -> Result<bool, ApiError> {
    let Some(email) = &user.email else {
        return Ok(false);
    };
    if user.email_verified {
        return Ok(true);
    }
    let factors = state.store.confirmed_factors(user.id).await?;
    Ok(factors.iter().any(|factor| {
        factor.kind == FactorKind::Email
            && factor
                .destination
                .as_deref()
                .is_some_and(|address| address.eq_ignore_ascii_case(email))
    }))
}
