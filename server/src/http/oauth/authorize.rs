//! `GET /authorize` (RFC 6749 §4.1.1) and the steps that finish it: sign-in, second factor,
//! consent, code.
use crate::clock;
use crate::http::AppState;
use crate::http::error::PageError;
use crate::http::redirect;
use crate::http::session::{PendingError, PendingRequest, UserSession, signed_in_user};
use crate::oauth::authorize::{self, AuthorizationRequest, AuthorizeError, ErrorRedirect};
use crate::oauth::client::Client;
use crate::oauth::oidc::{self, Authentication};
use crate::oauth::params::Params;
use crate::oauth::token::{Token, TokenKind};
use crate::oauth::{ErrorCode, OAuthError};
use crate::store::{NewAuthorizationCode, StoreError, User};
use actix_web::{HttpRequest, HttpResponse, web};

/// Longest query string accepted; the request must fit in the session cookie.
const MAX_QUERY_LEN: usize = 4096;

pub async fn authorize(
    req: HttpRequest,
    state: web::Data<AppState>,
    session: UserSession,
) -> Result<HttpResponse, PageError> {
    let query = req.query_string();
    if query.len() > MAX_QUERY_LEN {
        return Err(PageError::bad_request(
            "The authorization request is too long.",
        ));
    }
    let params = Params::parse(query.as_bytes()).map_err(|e| {
        PageError::bad_request(format!(
            "The authorization request is malformed: {}",
            e.description()
        ))
    })?;
    let client = match params.get("client_id") {
        Some(id) => state.clients.get(&state.store, id).await?,
        None => {
            return Err(PageError::bad_request(
                "The request names no application (client_id).",
            ));
        }
    };
    let request = match authorize::validate(
        &params,
        client.as_deref(),
        state.settings.authorize.require_pkce_for_all,
    ) {
        Ok(request) => request,
        Err(AuthorizeError::Page(message)) => return Err(PageError::bad_request(message)),
        Err(AuthorizeError::Redirect(error)) => {
            return Ok(redirect(&error.location(issuer(&state))));
        }
    };
    let pending = match session.add_pending(request) {
        Ok(pending) => pending,
        Err(PendingError::TooLarge(request)) => {
            return Ok(refuse(
                &state,
                &request,
                OAuthError::invalid_request("the authorization request is too large"),
            ));
        }
        Err(PendingError::Session(err)) => return Err(err.into()),
    };
    proceed(&state, &session, pending).await
}

/// Takes the request in progress as far as it can go: to the sign-in page, to the consent
/// page, or back to the client with a code.
pub async fn proceed(
    state: &AppState,
    session: &UserSession,
    pending: PendingRequest,
) -> Result<HttpResponse, PageError> {
    let request = &pending.request;
    let signed_in = signed_in_user(state, session).await?;
    let fresh_enough = session.sign_in_facts().is_some_and(|facts| {
        !oidc::sign_in_too_old(request.max_age, facts.auth_time, clock::now())
    });
    let user = match signed_in {
        Some(user) if !request.prompt.login && fresh_enough => user,
        signed_in if request.prompt.none => {
            session.remove_pending(&pending.id);
            let why = if signed_in.is_some() {
                "the sign-in is older than max_age allows"
            } else {
                "the user is not signed in"
            };
            return Ok(refuse(
                state,
                request,
                OAuthError::new(ErrorCode::LoginRequired, why),
            ));
        }
        _ => return Ok(redirect("/login")),
    };
    let client = registered_client(state, session, &pending).await?;
    let gate = second_factor_gate(state, session, &user, &client).await?;
    if gate != Gate::Pass && request.prompt.none {
        session.remove_pending(&pending.id);
        // The second step is part of signing in; enrolling a factor is another kind of
        // interaction (OpenID Connect Core §3.1.2.6).
        let error = match gate {
            Gate::Enrol => OAuthError::new(
                ErrorCode::InteractionRequired,
                "the user must enrol a second factor first",
            ),
            _ => OAuthError::new(ErrorCode::LoginRequired, "a second factor is required"),
        };
        return Ok(refuse(state, request, error));
    }
    if let Some(detour) = gate.detour(session, &user)? {
        return Ok(detour);
    }
    let remembered = if client.skip_consent && !request.prompt.consent {
        true
    } else {
        !request.prompt.consent
            && state
                .store
                .consent(user.id, &client.id)
                .await?
                .is_some_and(|approved| approved.covers(&request.scope_set(), &request.audience()))
    };
    if !remembered {
        if request.prompt.none {
            session.remove_pending(&pending.id);
            return Ok(refuse(
                state,
                request,
                OAuthError::new(ErrorCode::ConsentRequired, "consent is required"),
            ));
        }
        // The page shows the newest request and its form carries that request's id, so a
        // request started later in another tab or popup cannot take its place.
        return Ok(redirect("/consent"));
    }
    issue_code(state, session, &pending, &user).await
}

/// Issues the code and sends the user back to the client; the request is then over.
pub async fn issue_code(
    state: &AppState,
    session: &UserSession,
    pending: &PendingRequest,
    user: &User,
) -> Result<HttpResponse, PageError> {
    let request = &pending.request;
    // Checked again here, the one place codes are issued, so that no path (e.g. posting the
    // consent form directly) can skip the second factor.
    let client = registered_client(state, session, pending).await?;
    let gate = second_factor_gate(state, session, user, &client).await?;
    if let Some(detour) = gate.detour(session, user)? {
        return Ok(detour);
    }
    let Some(facts) = session.sign_in_facts() else {
        return Ok(redirect("/login"));
    };
    let code = Token::generate(TokenKind::AuthorizationCode).map_err(PageError::internal)?;
    let now = clock::now();
    let stored = state
        .store
        .create_authorization_code(&NewAuthorizationCode {
            hash: code.hash(),
            client_id: request.client_id.clone(),
            user_id: user.id,
            redirect_uri: request
                .redirect_uri_given
                .then(|| request.redirect_uri.clone()),
            scope: request.scope_set(),
            audience: request.audience(),
            code_challenge: request.code_challenge.clone(),
            authentication: Authentication::of_sign_in(
                facts.auth_time,
                facts.second_factor,
                facts.sid,
                request.nonce.clone(),
            ),
            issued_at: now,
            expires_at: now + state.settings.tokens.authorization_code_ttl_secs,
        })
        .await;
    stored.map_err(|err| store_error_page(state, session, pending, err))?;
    session.remove_pending(&pending.id);
    Ok(redirect(&authorize::success_location(
        request,
        code.expose(),
        issuer(state),
    )))
}

/// A store error of the request in progress as a page. `Gone` means its client (or the
/// user) was deleted by another process while this one still had the client cached: the
/// request is over, the cached client is dropped, and the person gets an error page rather
/// than a 500.
pub fn store_error_page(
    state: &AppState,
    session: &UserSession,
    pending: &PendingRequest,
    err: StoreError,
) -> PageError {
    if !matches!(err, StoreError::Gone(_)) {
        return err.into();
    }
    state.clients.evict(&pending.request.client_id);
    session.remove_pending(&pending.id);
    PageError::bad_request(NO_LONGER_REGISTERED)
}

const NO_LONGER_REGISTERED: &str = "The application is no longer registered.";

async fn registered_client(
    state: &AppState,
    session: &UserSession,
    pending: &PendingRequest,
) -> Result<std::sync::Arc<Client>, PageError> {
    match state
        .clients
        .get(&state.store, &pending.request.client_id)
        .await?
    {
        Some(client) => Ok(client),
        None => {
            session.remove_pending(&pending.id);
            Err(PageError::bad_request(NO_LONGER_REGISTERED))
        }
    }
}

/// What a signed-in user still owes before an application gets a code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Gate {
    Pass,
    /// They have a factor this session has not seen (a sign-in from before the factor existed
    /// does not skip it).
    SecondStep,
    /// The policy wants a factor they do not have.
    Enrol,
}

impl Gate {
    /// The redirect that settles it; the second step first turns the sign-in back into
    /// "waiting for the second step".
    fn detour(self, session: &UserSession, user: &User) -> Result<Option<HttpResponse>, PageError> {
        match self {
            Self::Pass => Ok(None),
            Self::SecondStep => {
                session.begin_second_step(user, clock::now())?;
                Ok(Some(redirect("/login/2fa")))
            }
            Self::Enrol => Ok(Some(redirect(ENROLMENT_REQUIRED))),
        }
    }
}

async fn second_factor_gate(
    state: &AppState,
    session: &UserSession,
    user: &User,
    client: &Client,
) -> Result<Gate, PageError> {
    if session.second_factor_passed() {
        return Ok(Gate::Pass);
    }
    if !state.store.confirmed_factors(user.id).await?.is_empty() {
        return Ok(Gate::SecondStep);
    }
    if state.settings.second_factor.require_2fa || client.require_2fa {
        return Ok(Gate::Enrol);
    }
    Ok(Gate::Pass)
}

/// The account page, telling the user that the application needs a second factor first.
pub const ENROLMENT_REQUIRED: &str = "/account?second_factor=required";

/// After a fresh sign-in: back into the newest authorization request in progress (its
/// `prompt=login` and `max_age` now satisfied), or to the page that sent the person to sign
/// in (the console), or to the account.
pub async fn resume(state: &AppState, session: &UserSession) -> Result<HttpResponse, PageError> {
    match session.latest_pending() {
        Some(mut pending) => {
            pending.request.prompt.login = false;
            // Or `max_age=0` would send the person back to the sign-in form forever.
            pending.request.max_age = None;
            session.update_pending(&pending)?;
            proceed(state, session, pending).await
        }
        None => Ok(redirect(session.after_sign_in())),
    }
}

/// `GET /login/continue`: resumes the request in progress (after the recovery codes page).
pub async fn resume_page(
    state: web::Data<AppState>,
    session: UserSession,
) -> Result<HttpResponse, PageError> {
    match session.latest_pending() {
        Some(pending) => proceed(&state, &session, pending).await,
        None => Ok(redirect(session.after_sign_in())),
    }
}

/// Sends an error back to the client's redirect URI.
pub fn refuse(state: &AppState, request: &AuthorizationRequest, error: OAuthError) -> HttpResponse {
    let redirect_to = ErrorRedirect {
        redirect_uri: request.redirect_uri.clone(),
        state: request.state.clone(),
        error,
    };
    redirect(&redirect_to.location(issuer(state)))
}

fn issuer(state: &AppState) -> &str {
    &state.settings.server.issuer
}
