//! `GET /account`: who is signed in, their second factors and which applications they
//! allowed; `POST /account/consents/{client_id}/withdraw` takes an approval back;
//! `POST /account/sign-out-everywhere` ends every browser session of the user.
use crate::auth::factor::{FactorKind, mask_destination};
use crate::clock;
use crate::http::AppState;
use crate::http::error::PageError;
use crate::http::page_extract::{CsrfForm, Page, PageForm};
use crate::http::redirect;
use crate::http::session::UserSession;
use crate::http::templates::templates;
use crate::store::{AuditEntry, AuditKind, User};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};

#[derive(Serialize)]
struct ConsentLine {
    client_id: String,
    client_name: String,
    scope: String,
}

#[derive(Serialize)]
struct FactorLine {
    kind: &'static str,
    label: &'static str,
    destination: Option<String>,
    confirmed: bool,
}

#[derive(Deserialize)]
pub struct AccountQuery {
    second_factor: Option<String>,
}

pub async fn account(
    state: web::Data<AppState>,
    page: Page<User>,
    query: web::Query<AccountQuery>,
) -> Result<HttpResponse, PageError> {
    let (session, user) = page.into_parts();
    let required = query.second_factor.as_deref() == Some("required");
    render(&state, &session, &user, StatusCode::OK, None, required).await
}

/// The account page; `required` explains that an application needs a second factor first.
pub async fn render(
    state: &AppState,
    session: &UserSession,
    user: &User,
    status: StatusCode,
    error: Option<&str>,
    required: bool,
) -> Result<HttpResponse, PageError> {
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
    let factors = state.store.factors(user.id).await?;
    let lines: Vec<FactorLine> = factors
        .iter()
        .map(|f| FactorLine {
            kind: f.kind.as_str(),
            label: f.kind.label(),
            destination: f.destination.as_deref().map(mask_destination),
            confirmed: f.confirmed(),
        })
        .collect();
    let addable: Vec<&'static str> = FactorKind::ALL
        .into_iter()
        .filter(|kind| !factors.iter().any(|f| f.kind == *kind && f.confirmed()))
        .map(FactorKind::as_str)
        .collect();
    let has_factor = factors.iter().any(|f| f.confirmed());
    let recovery_codes_left = if has_factor {
        state.store.recovery_codes_left(user.id).await?
    } else {
        0
    };
    Ok(templates().page(
        status,
        "account.html",
        minijinja::context! {
            csrf_token => session.csrf_token()?,
            username => user.username.clone(),
            consents,
            factors => lines,
            addable,
            has_factor,
            recovery_codes_left,
            required,
            error,
        },
    ))
}

pub async fn withdraw(
    req: HttpRequest,
    state: web::Data<AppState>,
    client_id: web::Path<String>,
    page: PageForm<User, CsrfForm>,
) -> Result<HttpResponse, PageError> {
    let user = page.who;
    let now = clock::now();
    if state
        .store
        .withdraw_consent(user.id, &client_id, now)
        .await?
    {
        let entry = AuditEntry::new(AuditKind::TokenRevoked)
            .user(user.id, &user.username)
            .client(Some(&client_id))
            .address(crate::http::client_address::client_address(&req))
            .detail("consent withdrawn: every grant of the client");
        state.store.record_audit(entry, now).await?;
    }
    Ok(redirect("/account"))
}

/// `POST /account/sign-out-everywhere`: moves the security stamp, so that every session of the
/// user, this one included, is signed out at its next request. Grants are left alone: an
/// application's access is withdrawn per application above, and a password change (by an
/// operator) revokes them all.
pub async fn sign_out_everywhere(
    req: HttpRequest,
    state: web::Data<AppState>,
    page: PageForm<User, CsrfForm>,
) -> Result<HttpResponse, PageError> {
    let (session, user, _) = page.into_parts();
    let now = clock::now();
    state.store.rotate_security_stamp(user.id, now).await?;
    let entry = AuditEntry::new(AuditKind::SessionsEnded)
        .user(user.id, &user.username)
        .address(crate::http::client_address::client_address(&req))
        .detail("every browser session, by the user");
    state.store.record_audit(entry, now).await?;
    tracing::info!(user_id = %user.id, "signed out everywhere");
    session.sign_out();
    Ok(templates().page(StatusCode::OK, "signed_out.html", minijinja::context! {}))
}
