//! `GET/POST /consent`: the user approves or denies the scopes an application asks for.
use crate::clock;
use crate::http::AppState;
use crate::http::error::PageError;
use crate::http::oauth::authorize::{issue_code, refuse, store_error_page};
use crate::http::redirect;
use crate::http::session::{PendingRequest, UserSession, signed_in_user};
use crate::http::templates::templates;
use crate::oauth::{ErrorCode, OAuthError};
use crate::store::User;
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};

#[derive(Deserialize)]
pub struct ConsentForm {
    csrf_token: String,
    /// The id of the request the page showed; a decision binds to it and to nothing else.
    #[serde(default)]
    request: String,
    decision: String,
}

#[derive(Serialize)]
struct ScopeLine<'a> {
    name: &'a str,
    description: &'a str,
}

/// `GET /consent`: the newest request in progress; its form names it.
pub async fn consent_page(
    state: web::Data<AppState>,
    session: UserSession,
) -> Result<HttpResponse, PageError> {
    let Some((user, pending)) = in_progress(&state, &session, None).await? else {
        return Ok(redirect("/login"));
    };
    let client = state
        .clients
        .get(&state.store, &pending.request.client_id)
        .await?
        .ok_or_else(|| PageError::bad_request("The application is no longer registered."))?;
    let scope = pending.request.scope_set();
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
            request_id => pending.id,
            client_name => client.name.clone(),
            username => user.username,
            scopes,
        },
    ))
}

/// `POST /consent`: the decision on the request the form names, and on no other.
pub async fn decide(
    state: web::Data<AppState>,
    session: UserSession,
    form: web::Form<ConsentForm>,
) -> Result<HttpResponse, PageError> {
    if !session.check_csrf(&form.csrf_token) {
        return Err(PageError::Forbidden);
    }
    let Some((user, pending)) = in_progress(&state, &session, Some(&form.request)).await? else {
        return Ok(redirect("/login"));
    };
    let request = &pending.request;
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
                .await
                .map_err(|err| store_error_page(&state, &session, &pending, err))?;
            issue_code(&state, &session, &pending, &user).await
        }
        "deny" => {
            session.remove_pending(&pending.id);
            Ok(refuse(
                &state,
                request,
                OAuthError::new(ErrorCode::AccessDenied, "the user denied the request"),
            ))
        }
        _ => Err(PageError::bad_request("Choose Allow or Deny.")),
    }
}

/// The signed-in user and the request in progress that `id` names (the newest when `None`);
/// `None` sends to sign-in. A request no longer in progress (answered, or pushed out by
/// newer ones) is an error page: a decision never falls through to another request.
async fn in_progress(
    state: &AppState,
    session: &UserSession,
    id: Option<&str>,
) -> Result<Option<(User, PendingRequest)>, PageError> {
    let Some(user) = signed_in_user(state, session).await? else {
        return Ok(None);
    };
    let pending = match id {
        Some(id) => session.pending_by_id(id).ok_or_else(|| {
            PageError::bad_request(
                "This authorization request is no longer in progress: it was answered, or \
                 replaced by newer ones. Start again from the application.",
            )
        })?,
        None => session
            .latest_pending()
            .ok_or_else(|| PageError::bad_request("No authorization request is in progress."))?,
    };
    if pending.request.prompt.login {
        return Ok(None);
    }
    Ok(Some((user, pending)))
}
