//! `GET/POST /login` (the password step) and `POST /logout`.
use crate::auth::{MAX_PASSWORD_LEN, MAX_USERNAME_LEN};
use crate::clock;
use crate::http::AppState;
use crate::http::client_address::client_address;
use crate::http::error::PageError;
use crate::http::oauth::authorize::resume;
use crate::http::page_extract::CsrfForm;
use crate::http::redirect;
use crate::http::session::signed_in_user;
use crate::http::session::{UserSession, pending_client_name};
use crate::http::templates::templates;
use crate::second_factor::Actor;
use crate::store::AuditKind;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use secrecy::SecretString;
use serde::Deserialize;

#[derive(Deserialize)]
pub struct LoginForm {
    csrf_token: String,
    username: String,
    password: SecretString,
}

pub async fn login_page(
    state: web::Data<AppState>,
    session: UserSession,
) -> Result<HttpResponse, PageError> {
    render(&state, &session, StatusCode::OK, "", None).await
}

pub async fn login(
    req: HttpRequest,
    state: web::Data<AppState>,
    session: UserSession,
    form: web::Form<LoginForm>,
) -> Result<HttpResponse, PageError> {
    let form = form.into_inner();
    if !session.check_csrf(&form.csrf_token) {
        return Err(PageError::Forbidden);
    }
    let username = form.username.trim();
    // No account has such a name or password: refused before it can become a limiter key,
    // cost a hash, or fill the audit log.
    if username.chars().count() > MAX_USERNAME_LEN
        || secrecy::ExposeSecret::expose_secret(&form.password).len() > MAX_PASSWORD_LEN
    {
        state.metrics.login_failures.inc();
        return wrong_credentials(&state, &session, "").await;
    }
    let actor = actor(&req, &session);
    let user = state.store.find_user_by_username(username).await?;
    let stored_hash = user
        .as_ref()
        .filter(|u| !u.disabled)
        .map(|u| u.password_hash.clone());
    let verified = state
        .limiter
        .verify(
            &state.passwords,
            username,
            actor.address,
            form.password,
            stored_hash,
        )
        .await?;
    let now = clock::now();
    let Some(user) = user.filter(|_| verified) else {
        tracing::info!("sign-in failed");
        state.metrics.login_failures.inc();
        state
            .factors
            .audit_sign_in(
                AuditKind::LoginFailed,
                None,
                username,
                &actor,
                "password",
                now,
            )
            .await?;
        return wrong_credentials(&state, &session, username).await;
    };
    if let Some(retry_after_secs) = state.factors.locked_for(&user, now).await? {
        return Err(PageError::too_many_attempts(retry_after_secs));
    }
    if !state.store.confirmed_factors(user.id).await?.is_empty() {
        // Any earlier sign-in of this session is dropped: it does not stand in for the code.
        session.begin_second_step(&user, now)?;
        return Ok(redirect("/login/2fa"));
    }
    session.sign_in(&user, now, None)?;
    state
        .factors
        .audit_sign_in(
            AuditKind::LoginSucceeded,
            Some(&user),
            username,
            &actor,
            "password",
            now,
        )
        .await?;
    tracing::info!(user_id = %user.id, "signed in");
    resume(&state, &session).await
}

/// Who is acting, for the audit log: the client of the request in progress and the client
/// address (resolved through the trusted proxies).
pub fn actor(req: &HttpRequest, session: &UserSession) -> Actor {
    Actor {
        client_id: session.pending().map(|request| request.client_id),
        address: client_address(req),
    }
}

/// The one answer for every failed password step, whatever the reason.
async fn wrong_credentials(
    state: &AppState,
    session: &UserSession,
    username: &str,
) -> Result<HttpResponse, PageError> {
    render(
        state,
        session,
        StatusCode::UNPROCESSABLE_ENTITY,
        username,
        Some("Wrong username or password."),
    )
    .await
}

pub async fn logout(
    session: UserSession,
    form: web::Form<CsrfForm>,
) -> Result<HttpResponse, PageError> {
    if !session.check_csrf(&form.csrf_token) {
        return Err(PageError::Forbidden);
    }
    session.sign_out();
    Ok(templates().page(StatusCode::OK, "signed_out.html", minijinja::context! {}))
}

async fn render(
    state: &AppState,
    session: &UserSession,
    status: StatusCode,
    username: &str,
    error: Option<&str>,
) -> Result<HttpResponse, PageError> {
    if status == StatusCode::OK
        && session.pending().is_none()
        && signed_in_user(state, session).await?.is_some()
    {
        return Ok(redirect("/account"));
    }
    if status == StatusCode::OK && session.second_step_user(clock::now()).is_some() {
        return Ok(redirect("/login/2fa"));
    }
    let client_name = pending_client_name(state, session).await?;
    // The application's `login_hint` (OpenID Connect) fills an empty form; what the person
    // typed wins.
    let hint = session.pending().and_then(|request| request.login_hint);
    let username = match (username, &hint) {
        ("", Some(hint)) => hint.as_str(),
        (typed, _) => typed,
    };
    Ok(templates().page(
        status,
        "login.html",
        minijinja::context! {
            csrf_token => session.csrf_token()?,
            client_name,
            username,
            error,
        },
    ))
}
