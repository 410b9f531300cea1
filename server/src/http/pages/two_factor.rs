//! `/account/2fa/…` and `/account/recovery-codes`: enrolling, confirming and removing second
//! factors in the browser, and regenerating recovery codes. The rules live in
//! [`crate::second_factor`]; these handlers parse forms and render pages.
use super::login::actor;
use crate::auth::factor::{FactorKind, mask_destination};
use crate::clock;
use crate::http::AppState;
use crate::http::error::{PageError, capitalize};
use crate::http::page_extract::{CsrfForm, Page, PageForm, csrf_protected};
use crate::http::redirect;
use crate::http::session::UserSession;
use crate::http::step_up::{SteppedUp, prove_presence};
use crate::http::templates::templates;
use crate::second_factor::{Enabled, FactorError};
use crate::store::User;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use secrecy::SecretString;
use serde::Deserialize;

#[derive(Deserialize)]
pub struct StartForm {
    csrf_token: String,
    #[serde(default)]
    destination: String,
}

#[derive(Deserialize)]
pub struct ConfirmForm {
    csrf_token: String,
    code: String,
}

#[derive(Deserialize)]
pub struct RemoveForm {
    csrf_token: String,
    #[serde(default)]
    password: Option<SecretString>,
    #[serde(default)]
    code: String,
}

csrf_protected!(StartForm, ConfirmForm, RemoveForm);

fn kind_of(path: &str) -> Result<FactorKind, PageError> {
    FactorKind::parse(path).ok_or_else(|| PageError::bad_request("There is no such factor."))
}

/// `GET /account/2fa/{kind}`: the enrolment page (TOTP: QR code; e-mail/SMS: the code form).
pub async fn enrol_page(
    state: web::Data<AppState>,
    kind: web::Path<String>,
    page: Page<SteppedUp>,
) -> Result<HttpResponse, PageError> {
    let kind = kind_of(&kind)?;
    let (session, SteppedUp(user)) = page.into_parts();
    render_enrolment(&state, &session, &user, kind, StatusCode::OK, None, false).await
}

/// `POST /account/2fa/{kind}`: e-mail/SMS: starts with the destination and sends a code;
/// TOTP: replaces the offered secret with a new one.
pub async fn start(
    state: web::Data<AppState>,
    kind: web::Path<String>,
    page: PageForm<SteppedUp, StartForm>,
) -> Result<HttpResponse, PageError> {
    let kind = kind_of(&kind)?;
    let (session, SteppedUp(user), form) = page.into_parts();
    let now = clock::now();
    if kind == FactorKind::Totp {
        state.factors.totp_enrolment(&user, now, true).await?;
        return Ok(redirect("/account/2fa/totp"));
    }
    match state
        .factors
        .start_sent_factor(&user, kind, &form.destination, now)
        .await
    {
        Ok(_) => render_enrolment(&state, &session, &user, kind, StatusCode::OK, None, true).await,
        Err(FactorError::Invalid(message)) | Err(FactorError::Conflict(message)) => {
            super::account::render(
                &state,
                &session,
                &user,
                StatusCode::UNPROCESSABLE_ENTITY,
                Some(&capitalize(&message)),
                false,
            )
            .await
        }
        Err(other) => Err(other.into()),
    }
}

/// `POST /account/2fa/{kind}/resend`
pub async fn resend(
    state: web::Data<AppState>,
    kind: web::Path<String>,
    page: PageForm<SteppedUp, CsrfForm>,
) -> Result<HttpResponse, PageError> {
    let kind = kind_of(&kind)?;
    let (session, SteppedUp(user), _) = page.into_parts();
    match state.factors.resend(&user, kind, clock::now()).await {
        Ok(_) => render_enrolment(&state, &session, &user, kind, StatusCode::OK, None, true).await,
        Err(FactorError::Throttled { retry_after_secs }) => {
            let message = super::resend_throttled(retry_after_secs);
            render_enrolment(
                &state,
                &session,
                &user,
                kind,
                StatusCode::TOO_MANY_REQUESTS,
                Some(&message),
                false,
            )
            .await
        }
        Err(other) => Err(other.into()),
    }
}

/// `POST /account/2fa/{kind}/confirm`: one valid code enables the factor.
pub async fn confirm(
    req: HttpRequest,
    state: web::Data<AppState>,
    kind: web::Path<String>,
    page: PageForm<SteppedUp, ConfirmForm>,
) -> Result<HttpResponse, PageError> {
    let kind = kind_of(&kind)?;
    let (session, SteppedUp(user), form) = page.into_parts();
    let actor = actor(&req, &session);
    match state
        .factors
        .confirm(&user, kind, &form.code, &actor, clock::now())
        .await
    {
        Ok(Enabled { recovery_codes }) => {
            // Proving the new factor is as good as a second step for this session.
            session.mark_second_factor_passed(kind)?;
            match recovery_codes {
                Some(codes) => Ok(recovery_page(&session, codes)?),
                None => Ok(after_change(&session)),
            }
        }
        Err(FactorError::WrongCode) => {
            render_enrolment(
                &state,
                &session,
                &user,
                kind,
                StatusCode::UNPROCESSABLE_ENTITY,
                Some("That code is not valid. Check it and try again."),
                false,
            )
            .await
        }
        Err(FactorError::NotEnrolling) => Ok(redirect("/account")),
        Err(other) => Err(other.into()),
    }
}

/// `POST /account/2fa/{kind}/remove`: needs the password or a fresh code (an authenticator
/// code or a recovery code), even in a session that passed the second factor. Signs out every
/// other session of the user.
pub async fn remove(
    req: HttpRequest,
    state: web::Data<AppState>,
    kind: web::Path<String>,
    page: PageForm<User, RemoveForm>,
) -> Result<HttpResponse, PageError> {
    let kind = kind_of(&kind)?;
    let (session, user, form) = page.into_parts();
    let actor = actor(&req, &session);
    let proven = prove_presence(&state, &user, form.password, &form.code, &actor).await?;
    if !proven {
        return super::account::render(
            &state,
            &session,
            &user,
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("To remove a factor, enter your password or a current code."),
            false,
        )
        .await;
    }
    match state
        .factors
        .remove(&user, kind, &actor, clock::now())
        .await
    {
        Ok(stamp) => {
            // Every other session is signed out; this one just gave a fresh proof.
            session.adopt_stamp(stamp)?;
            Ok(redirect("/account"))
        }
        Err(FactorError::NotFound) => Ok(redirect("/account")),
        Err(other) => Err(other.into()),
    }
}

/// `POST /account/recovery-codes`: new recovery codes, the old ones stop working.
pub async fn regenerate(
    req: HttpRequest,
    state: web::Data<AppState>,
    page: PageForm<SteppedUp, CsrfForm>,
) -> Result<HttpResponse, PageError> {
    let (session, SteppedUp(user), _) = page.into_parts();
    let codes = state
        .factors
        .regenerate_recovery_codes(&user, &actor(&req, &session), clock::now())
        .await?;
    recovery_page(&session, codes)
}

/// Where to go after a change: back into an authorization request, or the account page.
fn after_change(session: &UserSession) -> HttpResponse {
    if session.pending().is_some() {
        redirect("/login/continue")
    } else {
        redirect("/account")
    }
}

fn recovery_page(session: &UserSession, codes: Vec<String>) -> Result<HttpResponse, PageError> {
    Ok(templates().page(
        StatusCode::OK,
        "recovery_codes.html",
        minijinja::context! {
            codes,
            resume => session.pending().is_some(),
        },
    ))
}

async fn render_enrolment(
    state: &AppState,
    session: &UserSession,
    user: &User,
    kind: FactorKind,
    status: StatusCode,
    error: Option<&str>,
    sent: bool,
) -> Result<HttpResponse, PageError> {
    let csrf_token = session.csrf_token()?;
    if kind == FactorKind::Totp {
        let enrolment = match state
            .factors
            .totp_enrolment(user, clock::now(), false)
            .await
        {
            Ok(enrolment) => enrolment,
            Err(FactorError::Conflict(_)) => return Ok(redirect("/account")),
            Err(other) => return Err(other.into()),
        };
        let qr_code = qr_data_uri(&enrolment.otpauth_uri)?;
        return Ok(templates().page(
            status,
            "enrol_totp.html",
            minijinja::context! {
                csrf_token,
                qr_code,
                secret_groups => groups_of_four(&enrolment.secret),
                otpauth_uri => enrolment.otpauth_uri,
                error,
            },
        ));
    }
    let Some(factor) = state
        .store
        .factor(user.id, kind)
        .await?
        .filter(|f| !f.confirmed())
    else {
        return Ok(redirect("/account"));
    };
    Ok(templates().page(
        status,
        "enrol_code.html",
        minijinja::context! {
            csrf_token,
            kind => kind.as_str(),
            label => kind.label(),
            destination => factor.destination.as_deref().map(mask_destination),
            error,
            sent,
        },
    ))
}

/// The secret in groups of four characters, as a person types it into an app. Only for the
/// display: the page puts no spaces between the groups, so a copy of it is the exact secret.
fn groups_of_four(secret: &str) -> Vec<String> {
    secret
        .chars()
        .collect::<Vec<_>>()
        .chunks(4)
        .map(|group| group.iter().collect())
        .collect()
}

/// The QR code of `uri` as an SVG `data:` URI, drawn here: no external service ever sees the
/// secret. (The page's CSP allows `data:` images and nothing else from elsewhere.)
pub fn qr_data_uri(uri: &str) -> Result<String, PageError> {
    use base64::Engine;
    use qrcode::render::svg;
    let code = qrcode::QrCode::with_error_correction_level(uri, qrcode::EcLevel::M)
        .map_err(PageError::internal)?;
    let image = code
        .render::<svg::Color>()
        .min_dimensions(200, 200)
        .quiet_zone(true)
        .build();
    Ok(format!(
        "data:image/svg+xml;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(image)
    ))
}

#[cfg(test)]
mod tests {
    use super::groups_of_four;

    #[test]
    fn the_secret_is_shown_in_groups_of_four() {
        assert_eq!(
            groups_of_four("JBSWY3DPEHPK3PXPA"),
            ["JBSW", "Y3DP", "EHPK", "3PXP", "A"]
        );
        assert!(groups_of_four("").is_empty());
    }
}
