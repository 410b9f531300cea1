//! Who may use the console, checked by the extractors [`ConsolePage`] and [`ConsoleForm`] on
//! every request, so that no handler repeats it: the console is on, someone is signed in (else
//! `/login`), their row, read again now, holds the admin role (else 403), and this sign-in
//! passed a second factor (else the second step, or 403 for an admin without one). Revoking
//! the role or disabling the user therefore acts at the next request. Forms check their CSRF
//! token before anything else ([`PageForm`]).
use super::ConsoleError;
use crate::clock;
use crate::http::AppState;
use crate::http::error::PageError;
use crate::http::page_extract::{CsrfProtected, Page, PageForm, Refusal};
use crate::http::session::UserSession;
use crate::http::step_up::{SECOND_STEP, step_up_due};
use crate::store::User;
use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest, web};
use futures_util::future::LocalBoxFuture;

/// A console page, for an operator.
pub struct ConsolePage {
    pub session: UserSession,
    /// The operator, as their row reads now.
    pub operator: User,
}

/// A console form `F` posted by an operator, its CSRF token checked.
pub struct ConsoleForm<F> {
    pub session: UserSession,
    pub operator: User,
    pub form: F,
}

/// The error of the extractors is `actix_web::Error`: a detour stays a [`Refusal`], which the
/// `plain_detours` middleware turns into a plain redirect, and a refusal of the console's own
/// is a [`ConsoleError`] page.
impl FromRequest for ConsolePage {
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<'static, Result<Self, actix_web::Error>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let visitor = UserSession::of(req);
        let page = Page::<User>::from_request(req, payload);
        Box::pin(async move {
            let state = enabled(state)?;
            let admitted = async {
                let (session, operator) = page.await?.into_parts();
                admit(&state, &session, &operator).await?;
                Ok(Self { session, operator })
            };
            come_back(&visitor, admitted.await)
        })
    }
}

impl<F> FromRequest for ConsoleForm<F>
where
    F: CsrfProtected + serde::de::DeserializeOwned + 'static,
{
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<'static, Result<Self, actix_web::Error>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let page = PageForm::<User, F>::from_request(req, payload);
        Box::pin(async move {
            let state = enabled(state)?;
            let (session, operator, form) = page.await?.into_parts();
            admit(&state, &session, &operator).await?;
            Ok(Self {
                session,
                operator,
                form,
            })
        })
    }
}

/// A person sent to sign in, or to prove their second factor, comes back to the console
/// afterwards rather than to the account page. (Forms are not replayed: a form posted by
/// someone whose sign-in ended is simply refused.)
fn come_back<T>(
    session: &UserSession,
    result: Result<T, actix_web::Error>,
) -> Result<T, actix_web::Error> {
    if let Err(err) = &result
        && matches!(err.as_error::<Refusal>(), Some(Refusal::Detour(_)))
    {
        session
            .return_after_sign_in(CONSOLE)
            .map_err(|err| ConsoleError::Page(err.into()))?;
    }
    result
}

/// The console's first page.
const CONSOLE: &str = "/console";

/// The application state, if the console is on.
fn enabled(state: Option<web::Data<AppState>>) -> Result<web::Data<AppState>, actix_web::Error> {
    let state =
        state.ok_or_else(|| ConsoleError::Page(PageError::internal("no application state")))?;
    if !state.settings.console.enabled {
        return Err(ConsoleError::Off.into());
    }
    Ok(state)
}

/// Lets `user` in if they hold the role and this sign-in passed a second factor.
async fn admit(
    state: &AppState,
    session: &UserSession,
    user: &User,
) -> Result<(), actix_web::Error> {
    if !user.admin {
        tracing::info!(user_id = %user.id, "console refused: not an operator");
        return Err(ConsoleError::NotOperator.into());
    }
    if session.second_factor_passed() {
        return Ok(());
    }
    let due = step_up_due(state, user, false)
        .await
        .map_err(|err| ConsoleError::Page(err.into()))?;
    if due {
        // The factor exists but this sign-in did not prove it: prove it now, as the account
        // page's security changes do.
        session
            .begin_second_step(user, clock::now())
            .map_err(|err| ConsoleError::Page(err.into()))?;
        return Err(Refusal::Detour(SECOND_STEP).into());
    }
    tracing::info!(user_id = %user.id, "console refused: no second factor");
    Err(ConsoleError::NoSecondFactor.into())
}
