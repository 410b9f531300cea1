//! `GET/POST /end-session`: OpenID Connect RP-Initiated Logout 1.0 (the
//! `end_session_endpoint`), and `POST /end-session/confirm`, the answer of its confirmation
//! page. The rules are in [`crate::oauth::logout`]; the page's own `POST /logout` button is
//! untouched.
use crate::clock;
use crate::http::AppState;
use crate::http::error::PageError;
use crate::http::pages::consent::destination;
use crate::http::redirect;
use crate::http::session::{UserSession, signed_in_user};
use crate::http::templates::templates;
use crate::oauth::client::Client;
use crate::oauth::logout::{self, LogoutError};
use crate::oauth::oidc::{self, Hint};
use crate::oauth::params::Params;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use std::sync::Arc;

/// Longest logout request read: an ID token hint and a return address fit easily.
const MAX_REQUEST_LEN: usize = 8192;

/// `GET /end-session?id_token_hint=…&post_logout_redirect_uri=…&state=…`
pub async fn end_session_get(
    req: HttpRequest,
    state: web::Data<AppState>,
    session: UserSession,
) -> Result<HttpResponse, PageError> {
    let params = parse(req.query_string().as_bytes())?;
    end_session(&state, &session, &params).await
}

/// `POST /end-session` with the same parameters as a form (§2 allows both methods).
pub async fn end_session_post(
    req: HttpRequest,
    state: web::Data<AppState>,
    session: UserSession,
    body: web::Bytes,
) -> Result<HttpResponse, PageError> {
    if !body.is_empty() && !crate::http::form::is_form_urlencoded(&req) {
        return Err(PageError::bad_request(
            "The sign-out request must be a form (application/x-www-form-urlencoded).",
        ));
    }
    let params = parse(&body)?;
    end_session(&state, &session, &params).await
}

fn parse(raw: &[u8]) -> Result<Params, PageError> {
    if raw.len() > MAX_REQUEST_LEN {
        return Err(LogoutError::TooLong.into());
    }
    Params::parse(raw).map_err(|e| {
        PageError::bad_request(format!(
            "The sign-out request is malformed: {}",
            e.description()
        ))
    })
}

impl From<LogoutError> for PageError {
    fn from(err: LogoutError) -> Self {
        PageError::bad_request(err.to_string())
    }
}

async fn end_session(
    state: &AppState,
    session: &UserSession,
    params: &Params,
) -> Result<HttpResponse, PageError> {
    let hint = match params.get("id_token_hint") {
        Some(raw) => Some(verified_hint(state, raw)?),
        None => None,
    };
    let client_id = logout::client_of(hint.as_ref(), params.get("client_id"))?;
    let request = LogoutRequest::new(
        state,
        client_id,
        params.get("post_logout_redirect_uri"),
        params.get("state"),
    )
    .await?;
    let Some(user) = signed_in_user(state, session).await? else {
        // Nobody is signed in: nothing to confirm. A half-finished sign-in goes too.
        session.sign_out();
        return Ok(request.done(true));
    };
    let sid = session.sign_in_facts().and_then(|facts| facts.sid);
    if logout::hint_matches_session(hint.as_ref(), &user.id.to_string(), sid.as_deref()) {
        session.sign_out();
        tracing::info!(user_id = %user.id, "signed out at the request of an application");
        return Ok(request.done(true));
    }
    Ok(templates().page(
        StatusCode::OK,
        "end_session.html",
        minijinja::context! {
            csrf_token => session.csrf_token()?,
            username => user.username,
            client_name => request.client.as_ref().map(|c| c.name.clone()),
            // Empty fields for what the request did not name: the form sends them back.
            client_id => request.client.as_ref().map(|c| c.id.clone()).unwrap_or_default(),
            post_logout_redirect_uri => request.uri.clone().unwrap_or_default(),
            state => request.state.clone().unwrap_or_default(),
            destination => request.uri.as_deref().map(destination),
        },
    ))
}

/// The claims of an `id_token_hint` signed by one of Umbra's published keys and issued here.
fn verified_hint(state: &AppState, raw: &str) -> Result<Hint, LogoutError> {
    let claims = state
        .keys
        .verify(raw, clock::now())
        .map_err(|_| LogoutError::BadHint)?;
    oidc::read_hint(&claims, &state.settings.server.issuer).map_err(|_| LogoutError::BadHint)
}

/// A checked logout request: the client it is from and where the browser goes afterwards.
struct LogoutRequest {
    client: Option<Arc<Client>>,
    uri: Option<String>,
    state: Option<String>,
    /// The return address with `state`, if one was asked for.
    location: Option<String>,
}

impl LogoutRequest {
    async fn new(
        state: &AppState,
        client_id: Option<String>,
        uri: Option<&str>,
        given_state: Option<&str>,
    ) -> Result<Self, PageError> {
        let client = match &client_id {
            Some(id) => state.clients.get(&state.store, id).await?,
            None => None,
        };
        // A client that is gone matters only when the browser is to be sent back to it.
        if client_id.is_some() && client.is_none() && uri.is_some() {
            return Err(LogoutError::UnknownClient.into());
        }
        let location = logout::return_location(client.as_deref(), uri, given_state)?;
        Ok(Self {
            client,
            uri: uri.map(str::to_owned),
            state: given_state.map(str::to_owned),
            location,
        })
    }

    /// The answer once the person is signed out (or chose to stay): back to the application,
    /// or Umbra's own page.
    fn done(&self, signed_out: bool) -> HttpResponse {
        match (&self.location, signed_out) {
            (Some(location), _) => redirect(location),
            (None, true) => {
                templates().page(StatusCode::OK, "signed_out.html", minijinja::context! {})
            }
            (None, false) => redirect("/account"),
        }
    }
}

/// The confirmation page's answer.
#[derive(Deserialize)]
pub struct ConfirmForm {
    csrf_token: String,
    /// `sign_out` or `stay`.
    decision: String,
    #[serde(default)]
    client_id: String,
    #[serde(default)]
    post_logout_redirect_uri: String,
    #[serde(default)]
    state: String,
}

/// `POST /end-session/confirm`: signs out (or not) and goes where the request asked, checked
/// again against the client's registration.
pub async fn confirm(
    state: web::Data<AppState>,
    session: UserSession,
    form: web::Form<ConfirmForm>,
) -> Result<HttpResponse, PageError> {
    let form = form.into_inner();
    if !session.check_csrf(&form.csrf_token) {
        return Err(PageError::Forbidden);
    }
    let some = |value: &str| (!value.is_empty()).then(|| value.to_owned());
    let request = LogoutRequest::new(
        &state,
        some(&form.client_id),
        some(&form.post_logout_redirect_uri).as_deref(),
        some(&form.state).as_deref(),
    )
    .await?;
    let signed_out = match form.decision.as_str() {
        "sign_out" => {
            session.sign_out();
            true
        }
        "stay" => false,
        _ => return Err(PageError::bad_request("Choose to sign out or to stay.")),
    };
    Ok(request.done(signed_out))
}
