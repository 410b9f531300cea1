//! `GET /account`: who is signed in and which applications they allowed;
//! `POST /account/consents/{client_id}/withdraw` takes an approval back.
use super::AppState;
use super::authorize::{redirect, signed_in_user};
use super::error::PageError;
use super::login::CsrfForm;
use super::session::UserSession;
use super::templates::templates;
use crate::clock;
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use serde::Serialize;

#[derive(Serialize)]
struct ConsentLine {
    client_id: String,
    client_name: String,
    scope: String,
}

pub async fn account(
    state: web::Data<AppState>,
    session: UserSession,
) -> Result<HttpResponse, PageError> {
    let Some(user) = signed_in_user(&state, &session).await? else {
        return Ok(redirect("/login"));
    };
    let consents: Vec<ConsentLine> = state
        .store
        .list_consents(user.id)
        .await?
        .into_iter()
        .map(|c| ConsentLine {
            client_id: c.client_id,
            client_name: c.client_name,
            scope: c.scope.to_string(),
        })
        .collect();
    Ok(templates().page(
        StatusCode::OK,
        "account.html",
        minijinja::context! {
            csrf_token => session.csrf_token()?,
            username => user.username,
            consents,
        },
    ))
}

pub async fn withdraw(
    state: web::Data<AppState>,
    session: UserSession,
    client_id: web::Path<String>,
    form: web::Form<CsrfForm>,
) -> Result<HttpResponse, PageError> {
    if !session.check_csrf(&form.csrf_token) {
        return Err(PageError::Forbidden);
    }
    let Some(user) = signed_in_user(&state, &session).await? else {
        return Ok(redirect("/login"));
    };
    state
        .store
        .withdraw_consent(user.id, &client_id, clock::now())
        .await?;
    Ok(redirect("/account"))
}
