//! `GET/POST /login/2fa` and `POST /login/2fa/send`: the second step of a sign-in. The
//! session holds the user as "waiting for the second step" (see [`crate::http::session`]); only a
//! valid code turns it into a sign-in, under a new session id.
use super::login::actor;
use crate::auth::factor::{FactorKind, Proof, mask_destination};
use crate::clock;
use crate::http::AppState;
use crate::http::error::PageError;
use crate::http::oauth::authorize::resume;
use crate::http::page_extract::{Page, PageForm, PageUser, Refusal, csrf_protected};
use crate::http::session::{UserSession, current_user, pending_client_name};
use crate::http::templates::templates;
use crate::second_factor::FactorError;
use crate::store::{AuditKind, Factor, User};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};

#[derive(Deserialize)]
pub struct MethodQuery {
    method: Option<String>,
}

#[derive(Deserialize)]
pub struct CodeForm {
    csrf_token: String,
    method: String,
    code: String,
}

#[derive(Deserialize)]
pub struct SendForm {
    csrf_token: String,
    method: String,
}

csrf_protected!(CodeForm, SendForm);

#[derive(Serialize)]
struct MethodLine {
    value: &'static str,
    label: &'static str,
}

/// What the page shows besides the form.
#[derive(Default)]
struct Notice<'a> {
    error: Option<&'a str>,
    sent: bool,
}

pub async fn page(
    state: web::Data<AppState>,
    query: web::Query<MethodQuery>,
    page: Page<Waiting>,
) -> Result<HttpResponse, PageError> {
    let (session, waiting) = page.into_parts();
    let method = chosen(&waiting.factors, query.method.as_deref());
    render(
        &state,
        &session,
        &waiting,
        method,
        StatusCode::OK,
        Notice::default(),
    )
    .await
}

pub async fn submit(
    req: HttpRequest,
    state: web::Data<AppState>,
    page: PageForm<Waiting, CodeForm>,
) -> Result<HttpResponse, PageError> {
    let (session, waiting, form) = page.into_parts();
    let method = chosen(&waiting.factors, Some(&form.method));
    let now = clock::now();
    let actor = actor(&req, &session);
    match state
        .factors
        .verify_sign_in(&waiting.user, method, &form.code, &actor, now)
        .await
    {
        Ok(()) => {
            let user = &waiting.user;
            session.sign_in(user, now, Some(method))?;
            state
                .factors
                .audit_sign_in(
                    AuditKind::LoginSucceeded,
                    Some(user),
                    &user.username,
                    &actor,
                    &format!("password+{}", method.as_str()),
                    now,
                )
                .await?;
            tracing::info!(user_id = %user.id, "signed in with a second factor");
            resume(&state, &session).await
        }
        Err(FactorError::WrongCode) => {
            let notice = Notice {
                error: Some("That code is not valid. Check it and try again."),
                ..Notice::default()
            };
            render(
                &state,
                &session,
                &waiting,
                method,
                StatusCode::UNPROCESSABLE_ENTITY,
                notice,
            )
            .await
        }
        Err(other) => Err(other.into()),
    }
}

pub async fn send(
    state: web::Data<AppState>,
    page: PageForm<Waiting, SendForm>,
) -> Result<HttpResponse, PageError> {
    let (session, waiting, form) = page.into_parts();
    let method = chosen(&waiting.factors, Some(&form.method));
    let Proof::Factor(kind) = method else {
        return Err(PageError::bad_request("Recovery codes are not sent."));
    };
    if let Some(retry_after_secs) = state
        .factors
        .locked_for(&waiting.user, clock::now())
        .await?
    {
        return Err(PageError::too_many_attempts(retry_after_secs));
    }
    match state
        .factors
        .resend(&waiting.user, kind, clock::now())
        .await
    {
        Ok(_) => {
            let notice = Notice {
                sent: true,
                ..Notice::default()
            };
            render(&state, &session, &waiting, method, StatusCode::OK, notice).await
        }
        Err(FactorError::Throttled { retry_after_secs }) => {
            let message = super::resend_throttled(retry_after_secs);
            let notice = Notice {
                error: Some(&message),
                ..Notice::default()
            };
            let mut response = render(
                &state,
                &session,
                &waiting,
                method,
                StatusCode::TOO_MANY_REQUESTS,
                notice,
            )
            .await?;
            if let Ok(value) = retry_after_secs.to_string().parse() {
                response
                    .headers_mut()
                    .insert(actix_web::http::header::RETRY_AFTER, value);
            }
            Ok(response)
        }
        Err(other) => Err(other.into()),
    }
}

/// The user waiting for their second step and their confirmed factors; anyone else goes to
/// `/login`.
pub struct Waiting {
    user: User,
    factors: Vec<Factor>,
}

impl PageUser for Waiting {
    async fn load(state: &AppState, session: &UserSession) -> Result<Self, Refusal> {
        let sign_in_again = Refusal::Detour("/login");
        let Some(id) = session.second_step_user(clock::now()) else {
            return Err(sign_in_again);
        };
        let Some(user) = current_user(state, session, id).await? else {
            return Err(sign_in_again);
        };
        let factors = state.store.confirmed_factors(user.id).await?;
        if factors.is_empty() {
            // The factor was removed meanwhile (e.g. an operator's reset): sign in again.
            session.forget_user();
            return Err(sign_in_again);
        }
        Ok(Self { user, factors })
    }
}

/// The method asked for if the user has it, else their first factor (the app before codes).
fn chosen(factors: &[Factor], asked: Option<&str>) -> Proof {
    let has = |kind| factors.iter().any(|f| f.kind == kind);
    match asked.and_then(Proof::parse) {
        Some(Proof::RecoveryCode) => Proof::RecoveryCode,
        Some(Proof::Factor(kind)) if has(kind) => Proof::Factor(kind),
        _ => FactorKind::ALL
            .into_iter()
            .find(|kind| has(*kind))
            .map_or(Proof::RecoveryCode, Proof::Factor),
    }
}

async fn render(
    state: &AppState,
    session: &UserSession,
    waiting: &Waiting,
    method: Proof,
    status: StatusCode,
    notice: Notice<'_>,
) -> Result<HttpResponse, PageError> {
    let Waiting { user, factors } = waiting;
    let mut methods: Vec<MethodLine> = factors
        .iter()
        .map(|f| MethodLine {
            value: f.kind.as_str(),
            label: f.kind.label(),
        })
        .collect();
    methods.push(MethodLine {
        value: "recovery",
        label: "Recovery code",
    });
    let destination = match method {
        Proof::Factor(kind) => factors
            .iter()
            .find(|f| f.kind == kind)
            .and_then(|f| f.destination.as_deref())
            .map(mask_destination),
        Proof::RecoveryCode => None,
    };
    let client_name = pending_client_name(state, session).await?;
    let method_value = match method {
        Proof::Factor(kind) => kind.as_str(),
        Proof::RecoveryCode => "recovery",
    };
    Ok(templates().page(
        status,
        "second_step.html",
        minijinja::context! {
            csrf_token => session.csrf_token()?,
            username => user.username.clone(),
            client_name,
            methods,
            method => method_value,
            destination,
            sent => notice.sent,
            error => notice.error,
        },
    ))
}
