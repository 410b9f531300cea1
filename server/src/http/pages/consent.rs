//! `GET/POST /consent`: the user approves or denies the scopes an application asks for.
use crate::clock;
use crate::http::AppState;
use crate::http::error::PageError;
use crate::http::oauth::authorize::{issue_code, refuse};
use crate::http::redirect;
use crate::http::session::UserSession;
use crate::http::session::signed_in_user;
use crate::http::templates::templates;
use crate::oauth::authorize::AuthorizationRequest;
use crate::oauth::{ErrorCode, OAuthError};
use crate::store::User;
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};

#[derive(Deserialize)]
pub struct ConsentForm {
    csrf_token: String,
    decision: String,
}

#[derive(Serialize)]
struct ScopeLine<'a> {
    name: &'a str,
    description: &'a str,
}

pub async fn consent_page(
    state: web::Data<AppState>,
    session: UserSession,
) -> Result<HttpResponse, PageError> {
    let Some((user, request)) = in_progress(&state, &session).await? else {
        return Ok(redirect("/login"));
    };
    let client = state
        .clients
        .get(&state.store, &request.client_id)
        .await?
        .ok_or_else(|| PageError::bad_request("The application is no longer registered."))?;
    let scope = request.scope_set();
    let descriptions = &state.settings.scopes.descriptions;
    let scopes: Vec<ScopeLine> = scope
        .iter()
        .map(|name| ScopeLine {
            name,
            description: descriptions.get(name).map_or(name, String::as_str),
        })
        .collect();
    Ok(templates().page(
        StatusCode::OK,
        "consent.html",
        minijinja::context! {
            csrf_token => session.csrf_token()?,
            client_name => client.name.clone(),
            username => user.username,
            scopes,
        },
    ))
}

pub async fn decide(
    state: web::Data<AppState>,
    session: UserSession,
    form: web::Form<ConsentForm>,
) -> Result<HttpResponse, PageError> {
    if !session.check_csrf(&form.csrf_token) {
        return Err(PageError::Forbidden);
    }
    let Some((user, request)) = in_progress(&state, &session).await? else {
        return Ok(redirect("/login"));
    };
    match form.decision.as_str() {
        "approve" => {
            state
                .store
                .remember_consent(
                    user.id,
                    &request.client_id,
                    &request.scope_set(),
                    clock::now(),
                )
                .await?;
            issue_code(&state, &session, &request, &user).await
        }
        "deny" => {
            session.clear_pending();
            Ok(refuse(
                &state,
                &request,
                OAuthError::new(ErrorCode::AccessDenied, "the user denied the request"),
            ))
        }
        _ => Err(PageError::bad_request("Choose Allow or Deny.")),
    }
}

/// The signed-in user and the request waiting for consent; `None` sends to sign-in.
async fn in_progress(
    state: &AppState,
    session: &UserSession,
) -> Result<Option<(User, AuthorizationRequest)>, PageError> {
    let Some(user) = signed_in_user(state, session).await? else {
        return Ok(None);
    };
    let request = session
        .pending()
        .ok_or_else(|| PageError::bad_request("No authorization request is in progress."))?;
    if request.prompt.login {
        return Ok(None);
    }
    Ok(Some((user, request)))
}
