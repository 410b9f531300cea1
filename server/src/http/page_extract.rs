//! The extractors of the browser pages: [`Page`] and [`PageForm`] load who a page acts for
//! ([`PageUser`]: the signed-in user, the user waiting for the second step, a stepped-up user)
//! and, for forms, check the CSRF token first, so that no handler repeats "check the token,
//! load the user or go to /login". Where the person must go first is a [`Refusal::Detour`],
//! which [`plain_detours`] turns back into a plain redirect.
use super::AppState;
use super::error::PageError;
use super::redirect;
use super::session::{SessionError, UserSession, signed_in_user};
use crate::store::User;
use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::middleware::Next;
use actix_web::{FromRequest, HttpRequest, HttpResponse, ResponseError, web};
use futures_util::future::LocalBoxFuture;
use serde::Deserialize;
use std::future::Future;

/// A form that carries the session's CSRF token.
pub trait CsrfProtected {
    /// The token the form was rendered with.
    fn csrf_token(&self) -> &str;
}

/// A form with nothing but its CSRF token (a button).
#[derive(Deserialize)]
pub struct CsrfForm {
    pub csrf_token: String,
}

/// Implements [`CsrfProtected`] for forms with a `csrf_token: String` field.
macro_rules! csrf_protected {
    ($($form:ty),*) => {$(
        impl $crate::http::page_extract::CsrfProtected for $form {
            fn csrf_token(&self) -> &str {
                &self.csrf_token
            }
        }
    )*};
}
pub(crate) use csrf_protected;

csrf_protected!(CsrfForm);

/// Why a page extractor gave no value: a page error, or somewhere the person must go first
/// (`/login`, the second step).
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    #[error(transparent)]
    Page(#[from] PageError),
    #[error("sign-in required: {0}")]
    Detour(&'static str),
    /// The form did not parse; rendered by the form configuration's handler.
    #[error("form: {0}")]
    Form(actix_web::Error),
}

impl ResponseError for Refusal {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::Page(err) => err.status_code(),
            Self::Detour(_) => StatusCode::SEE_OTHER,
            Self::Form(err) => err.as_response_error().status_code(),
        }
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            Self::Page(err) => err.error_response(),
            Self::Detour(location) => redirect(location),
            Self::Form(err) => err.error_response(),
        }
    }
}

/// Middleware: a page's detour leaves as a plain redirect. The extractors can only send it as
/// an error, which the request log would report at ERROR level for every visitor who is not
/// signed in.
pub async fn plain_detours(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody + 'static>>, actix_web::Error> {
    let response = next.call(req).await?;
    let detour = response
        .response()
        .error()
        .and_then(|err| err.as_error::<Refusal>())
        .and_then(|refusal| match refusal {
            Refusal::Detour(location) => Some(*location),
            _ => None,
        });
    Ok(match detour {
        Some(location) => response
            .into_response(redirect(location))
            .map_into_right_body(),
        None => response.map_into_left_body(),
    })
}

impl From<SessionError> for Refusal {
    fn from(err: SessionError) -> Self {
        Self::Page(err.into())
    }
}

impl From<crate::store::StoreError> for Refusal {
    fn from(err: crate::store::StoreError) -> Self {
        Self::Page(err.into())
    }
}

/// Who a page acts for, found from its session; `Err(Refusal::Detour(..))` sends the person
/// where they must go first.
pub trait PageUser: Sized + 'static {
    fn load(state: &AppState, session: &UserSession)
    -> impl Future<Output = Result<Self, Refusal>>;
}

/// The signed-in user; anyone else goes to `/login`.
impl PageUser for User {
    async fn load(state: &AppState, session: &UserSession) -> Result<Self, Refusal> {
        signed_in_user(state, session)
            .await?
            .ok_or(Refusal::Detour("/login"))
    }
}

/// A page shown to `W` (no form, so no CSRF token to check).
pub struct Page<W> {
    pub session: UserSession,
    pub who: W,
}

impl<W> Page<W> {
    /// The session and who the page is for.
    pub fn into_parts(self) -> (UserSession, W) {
        (self.session, self.who)
    }
}

impl<W: PageUser> FromRequest for Page<W> {
    type Error = Refusal;
    type Future = LocalBoxFuture<'static, Result<Self, Refusal>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let session = UserSession::of(req);
        Box::pin(async move {
            let state = state.ok_or_else(|| PageError::internal("no application state"))?;
            let who = W::load(&state, &session).await?;
            Ok(Self { session, who })
        })
    }
}

/// A form `F` posted by `W`: the CSRF token is checked before anyone is looked up.
pub struct PageForm<W, F> {
    pub session: UserSession,
    pub who: W,
    pub form: F,
}

impl<W, F> PageForm<W, F> {
    /// The session, who posted the form, and the form.
    pub fn into_parts(self) -> (UserSession, W, F) {
        (self.session, self.who, self.form)
    }
}

impl<W, F> FromRequest for PageForm<W, F>
where
    W: PageUser,
    F: CsrfProtected + serde::de::DeserializeOwned + 'static,
{
    type Error = Refusal;
    type Future = LocalBoxFuture<'static, Result<Self, Refusal>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let session = UserSession::of(req);
        let form = web::Form::<F>::from_request(req, payload);
        Box::pin(async move {
            let form = form.await.map_err(Refusal::Form)?.into_inner();
            if !session.check_csrf(form.csrf_token()) {
                return Err(PageError::Forbidden.into());
            }
            let state = state.ok_or_else(|| PageError::internal("no application state"))?;
            let who = W::load(&state, &session).await?;
            Ok(Self { session, who, form })
        })
    }
}
