//! The operator console at `/console`: server-rendered pages (no JavaScript) for users with the
//! admin role who signed in with a second factor ([`access`]). Clients (list, create, rotate a
//! secret, delete), users (list, disable, enable, reset the second factor), a user's grants and
//! consents (revoke), and the audit log with filters.
//!
//! Every form carries the session's CSRF token; every change is audited with the operator as
//! actor (`user:<name>`) and answered with a redirect (POST/redirect/GET) to a page that shows
//! a one-time notice kept in the session. A new or rotated client secret is the exception: it
//! is shown once, in the answer to the POST, never in a URL or a cookie.
mod access;
mod audit;
mod clients;
mod overview;
mod users;

pub use access::{ConsoleForm, ConsolePage};

use crate::http::error::PageError;
use crate::http::session::UserSession;
use crate::http::templates::templates;
use crate::http::{get, method_not_allowed, post, redirect};
use crate::store::{Actor, AuditEntry, StoreError, User};
use actix_session::SessionExt;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use serde::Serialize;

/// Rows on one page of a console list.
const PAGE_SIZE: u64 = 50;

/// Registers the console's routes.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(get("/console", overview::overview))
        .service(
            web::resource("/console/clients")
                .route(web::get().to(clients::list))
                .route(web::post().to(clients::create))
                .default_service(web::to(|| method_not_allowed("GET, POST"))),
        )
        .service(post("/console/clients/{id}/secret", clients::rotate_secret))
        .service(
            web::resource("/console/clients/{id}/delete")
                .route(web::get().to(clients::confirm_delete))
                .route(web::post().to(clients::delete))
                .default_service(web::to(|| method_not_allowed("GET, POST"))),
        )
        .service(get("/console/users", users::list))
        .service(get("/console/users/{id}", users::show))
        .service(post("/console/users/{id}/disable", users::disable))
        .service(post("/console/users/{id}/enable", users::enable))
        .service(post(
            "/console/users/{id}/second-factor/reset",
            users::reset_second_factor,
        ))
        .service(post(
            "/console/users/{id}/grants/{grant_id}/revoke",
            users::revoke_grant,
        ))
        .service(post(
            "/console/users/{id}/consents/{client_id}/withdraw",
            users::withdraw_consent,
        ))
        .service(get("/console/audit", audit::audit));
}

/// Why a console request was refused or failed; rendered as an HTML page.
#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    #[error(transparent)]
    Page(#[from] PageError),
    /// `console.enabled` is off.
    #[error("the console is off")]
    Off,
    /// Signed in, but without the admin role.
    #[error("not an operator")]
    NotOperator,
    /// An operator who has no second factor to sign in with.
    #[error("no second factor")]
    NoSecondFactor,
    /// What the page names does not exist (any more).
    #[error("not found: {0}")]
    NotFound(&'static str),
}

impl From<StoreError> for ConsoleError {
    fn from(err: StoreError) -> Self {
        Self::Page(err.into())
    }
}

impl From<crate::http::session::SessionError> for ConsoleError {
    fn from(err: crate::http::session::SessionError) -> Self {
        Self::Page(err.into())
    }
}

impl ResponseError for ConsoleError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::Page(err) => err.status_code(),
            Self::Off | Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::NotOperator | Self::NoSecondFactor => StatusCode::FORBIDDEN,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let (title, message, link) = match self {
            Self::Page(err) => return err.error_response(),
            Self::Off => ("Not found", "There is no console on this server.", None),
            Self::NotFound(what) => (
                "Not found",
                *what,
                Some(("/console", "Back to the console")),
            ),
            Self::NotOperator => (
                "Not for this account",
                "The operator console is for accounts with the admin role, which an operator \
                 grants on the command line (umbra user admin NAME).",
                Some(("/account", "Your account")),
            ),
            Self::NoSecondFactor => (
                "A second factor is needed",
                "The operator console is only open to a sign-in with a second factor. Set one up \
                 on your account page, then sign out and sign in again with it.",
                Some(("/account", "Set up a second factor")),
            ),
        };
        templates().page(
            self.status_code(),
            "console_refused.html",
            minijinja::context! { title, message, link_href => link.map(|l| l.0), link_text => link.map(|l| l.1) },
        )
    }
}

/// Where the one-time notice of the next console page waits in the session.
const NOTICE: &str = "console_notice";
/// Longest notice kept: the session is a cookie of bounded size.
const MAX_NOTICE: usize = 300;

/// Keeps `notice` for the next console page (POST/redirect/GET).
fn flash(req: &HttpRequest, notice: &str) {
    let notice: String = notice.chars().take(MAX_NOTICE).collect();
    if req.get_session().insert(NOTICE, notice).is_err() {
        // A string always serialises; a lost notice is the safe side anyway.
        tracing::debug!("console notice not kept");
    }
}

/// `flash`, then a 303 redirect to `location`.
fn done(req: &HttpRequest, location: &str, notice: &str) -> HttpResponse {
    flash(req, notice);
    redirect(location)
}

/// Renders console page `name` with what every console page shows (the operator, the form
/// token, the waiting notice) and `context`.
fn render<C: Serialize>(
    req: &HttpRequest,
    session: &UserSession,
    operator: &User,
    status: StatusCode,
    name: &str,
    context: C,
) -> Result<HttpResponse, ConsoleError> {
    let notice = req
        .get_session()
        .remove_as::<String>(NOTICE)
        .and_then(Result::ok);
    let context = minijinja::context! {
        csrf_token => session.csrf_token()?,
        operator => &operator.username,
        notice,
        ..minijinja::Value::from_serialize(&context)
    };
    Ok(templates().page(status, name, context))
}

/// An audit entry of an operator's change, with the operator as actor.
fn audited(req: &HttpRequest, operator: &User, kind: crate::store::AuditKind) -> AuditEntry {
    AuditEntry::new(kind)
        .actor(&Actor::User(operator.username.clone()))
        .address(crate::http::client_address::client_address(req))
}

/// Unix seconds as a UTC date and time, `2026-12-01 04:05 UTC`.
fn when(unix: i64) -> String {
    const FORMAT: &[time::format_description::BorrowedFormatItem<'_>] =
        time::macros::format_description!("[year]-[month]-[day] [hour]:[minute] UTC");
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|at| at.format(FORMAT).ok())
        .unwrap_or_else(|| unix.to_string())
}

/// A `YYYY-MM-DD` date as the Unix second its UTC day starts; `None` if it is not one (31
/// February included) or lies before 1970.
fn day_start(text: &str) -> Option<i64> {
    const FORMAT: &[time::format_description::BorrowedFormatItem<'_>] =
        time::macros::format_description!("[year]-[month]-[day]");
    let date = time::Date::parse(text.trim(), FORMAT).ok()?;
    let start = date.midnight().assume_utc().unix_timestamp();
    (start >= 0).then_some(start)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_times_read_as_utc_calendar_dates() {
        assert_eq!(when(0), "1970-01-01 00:00 UTC");
        assert_eq!(when(1_796_443_541), "2026-12-05 04:05 UTC");
        assert_eq!(when(951_782_400), "2000-02-29 00:00 UTC");
        assert_eq!(day_start("1970-01-01"), Some(0));
        assert_eq!(day_start("2000-02-29"), Some(951_782_400));
        assert_eq!(day_start("2026-12-04"), Some(1_796_342_400));
        for wrong in [
            "2001-02-29",
            "2026-13-01",
            "2026-00-10",
            "2026-1-0",
            "x",
            "",
            "1969-12-31",
        ] {
            assert_eq!(day_start(wrong), None, "{wrong}");
        }
    }
}
