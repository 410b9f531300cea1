//! The sign-in session: an encrypted, signed cookie holding who is signed in, a CSRF token
//! and the authorization requests in progress (the last few, each under its own id).
//!
//! A small state machine: anonymous → (password) → second step pending → (code) → signed in.
//! Only the last state sets `user_id`, so a half-signed-in session is anonymous to every page
//! but the second step. The session id is renewed at each transition.
use super::AppState;
use super::error::PageError;
use crate::auth::factor::{FactorKind, Proof};
use crate::clock;
use crate::oauth::authorize::AuthorizationRequest;
use crate::oauth::token::random_urlsafe;
use crate::store::User;
use actix_session::{Session, SessionExt};
use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest};
use serde::{Deserialize, Serialize};
use std::future::{Ready, ready};
use subtle::ConstantTimeEq;
use uuid::Uuid;

const USER_ID: &str = "user_id";
const AUTH_TIME: &str = "auth_time";
const CSRF: &str = "csrf";
/// The list of requests in progress (a new name: the single request of old cookies is ignored).
const PENDING: &str = "authorizations";
const LEGACY_PENDING: &str = "authorization";
/// Set with `user_id` when the sign-in passed a second factor.
const SECOND_FACTOR: &str = "mfa";
/// How the second factor was proved (`totp`, `email`, `sms`, `recovery_code`), for `amr`.
const SECOND_FACTOR_METHOD: &str = "mfa_method";
/// A random id of this sign-in (OpenID Connect `sid`): kept across session id renewals, new
/// at each sign-in.
const SID: &str = "sid";
const SECOND_STEP_USER: &str = "second_step_user";
const SECOND_STEP_AT: &str = "second_step_at";
/// The user's security stamp when this session signed in (or began the second step).
const STAMP: &str = "stamp";
/// Where a page that sent the person to sign in wants them back when no authorization
/// request is in progress (one of [`RETURN_PAGES`]).
const RETURN_TO: &str = "return_to";
/// The pages a sign-in may return to: fixed paths, so that the value can never become an open
/// redirect.
const RETURN_PAGES: &[&str] = &["/console"];

/// How long the second step waits for its code after the password was accepted.
const SECOND_STEP_TTL_SECS: i64 = 600;
/// A typed view of the session.
pub struct UserSession(Session);

impl FromRequest for UserSession {
    type Error = actix_web::Error;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(Ok(Self::of(req)))
    }
}

impl UserSession {
    /// The session of `req`.
    pub fn of(req: &HttpRequest) -> Self {
        Self(req.get_session())
    }

    /// The signed-in user, unless the sign-in is older than `ttl` seconds.
    pub fn user_id(&self, now: i64, ttl: i64) -> Option<Uuid> {
        let signed_in_at = self.0.get::<i64>(AUTH_TIME).ok().flatten()?;
        if now.saturating_sub(signed_in_at) >= ttl {
            return None;
        }
        self.0.get::<Uuid>(USER_ID).ok().flatten()
    }

    /// Forgets the signed-in (or half-signed-in) user but keeps the request in progress.
    pub fn forget_user(&self) {
        for key in [
            USER_ID,
            AUTH_TIME,
            SECOND_FACTOR,
            SECOND_FACTOR_METHOD,
            SID,
            SECOND_STEP_USER,
            SECOND_STEP_AT,
            STAMP,
        ] {
            self.0.remove(key);
        }
    }

    /// Marks the user signed in under a new session id, keeping the request in progress.
    /// `second_factor`: how the sign-in proved a second factor, if it did.
    /// The user's security stamp is remembered: when it moves, the sign-in ends.
    pub fn sign_in(
        &self,
        user: &User,
        now: i64,
        second_factor: Option<Proof>,
    ) -> Result<(), SessionError> {
        self.forget_user();
        self.0.renew();
        self.0.insert(USER_ID, user.id)?;
        self.0.insert(AUTH_TIME, now)?;
        self.0.insert(SECOND_FACTOR, second_factor.is_some())?;
        if let Some(proof) = second_factor {
            self.0.insert(SECOND_FACTOR_METHOD, proof.as_str())?;
        }
        let sid = random_urlsafe(SID_BYTES).map_err(|e| SessionError(e.to_string()))?;
        self.0.insert(SID, sid)?;
        self.0.insert(STAMP, user.security_stamp)?;
        // A new CSRF token too: the old one was shown to an anonymous page.
        self.0.remove(CSRF);
        Ok(())
    }

    /// The password was right and a second factor is due: the session holds the user only
    /// as "waiting for the second step", under a new id; nobody is signed in.
    /// A new password (or another stamp move) meanwhile ends the wait too.
    pub fn begin_second_step(&self, user: &User, now: i64) -> Result<(), SessionError> {
        self.forget_user();
        self.0.renew();
        self.0.insert(SECOND_STEP_USER, user.id)?;
        self.0.insert(SECOND_STEP_AT, now)?;
        self.0.insert(STAMP, user.security_stamp)?;
        self.0.remove(CSRF);
        Ok(())
    }

    /// The user waiting for the second step, unless that wait is over.
    pub fn second_step_user(&self, now: i64) -> Option<Uuid> {
        let since = self.0.get::<i64>(SECOND_STEP_AT).ok().flatten()?;
        if now.saturating_sub(since) >= SECOND_STEP_TTL_SECS {
            return None;
        }
        self.0.get::<Uuid>(SECOND_STEP_USER).ok().flatten()
    }

    /// Whether `user`'s security stamp is still the one this session signed in under. A
    /// session from before stamps existed holds none and counts as the initial stamp, 0.
    pub fn stamp_matches(&self, user: &User) -> bool {
        let stamp = self.0.get::<i64>(STAMP).ok().flatten().unwrap_or(0);
        stamp == user.security_stamp
    }

    /// Keeps this session signed in across a stamp move it caused itself after a fresh proof
    /// (removing a factor), while every other session is signed out.
    pub fn adopt_stamp(&self, stamp: i64) -> Result<(), SessionError> {
        self.0.renew();
        self.0.insert(STAMP, stamp)?;
        Ok(())
    }

    /// Whether the signed-in user passed a second factor in this session.
    pub fn second_factor_passed(&self) -> bool {
        self.0
            .get::<bool>(SECOND_FACTOR)
            .ok()
            .flatten()
            .unwrap_or(false)
    }

    /// Records that the signed-in user just proved a factor of `kind` (at enrolment), under
    /// a new id.
    pub fn mark_second_factor_passed(&self, kind: FactorKind) -> Result<(), SessionError> {
        self.0.renew();
        self.0.insert(SECOND_FACTOR, true)?;
        self.0
            .insert(SECOND_FACTOR_METHOD, Proof::Factor(kind).as_str())?;
        Ok(())
    }

    /// When and how the signed-in user signed in, for the ID tokens of what they approve.
    /// `None` when nobody is signed in.
    pub fn sign_in_facts(&self) -> Option<SignInFacts> {
        let auth_time = self.0.get::<i64>(AUTH_TIME).ok().flatten()?;
        let second_factor = self.second_factor_passed().then(|| {
            self.0
                .get::<String>(SECOND_FACTOR_METHOD)
                .ok()
                .flatten()
                .and_then(|method| Proof::parse(&method))
                // A sign-in from before the method was recorded: a one-time code of some kind.
                .unwrap_or(Proof::RecoveryCode)
        });
        Some(SignInFacts {
            auth_time,
            second_factor,
            sid: self.0.get::<String>(SID).ok().flatten(),
        })
    }

    /// After the coming sign-in (or second step), go to `page` unless an authorization request
    /// is in progress. Only the pages of [`RETURN_PAGES`] are remembered.
    pub fn return_after_sign_in(&self, page: &'static str) -> Result<(), SessionError> {
        if RETURN_PAGES.contains(&page) {
            self.0.insert(RETURN_TO, page)?;
        }
        Ok(())
    }

    /// Where to go after signing in with no request in progress: the page that asked for it
    /// (once), or the account page.
    pub fn after_sign_in(&self) -> &'static str {
        let asked = self.0.remove_as::<String>(RETURN_TO).and_then(Result::ok);
        RETURN_PAGES
            .iter()
            .find(|page| asked.as_deref() == Some(**page))
            .copied()
            .unwrap_or("/account")
    }

    /// Forgets everything.
    pub fn sign_out(&self) {
        self.0.purge();
    }

    /// The form token of this session, created on first use.
    pub fn csrf_token(&self) -> Result<String, SessionError> {
        if let Some(token) = self.0.get::<String>(CSRF).ok().flatten() {
            return Ok(token);
        }
        let token = random_urlsafe(32).map_err(|e| SessionError(e.to_string()))?;
        self.0.insert(CSRF, &token)?;
        Ok(token)
    }

    /// Compares a submitted form token with the session's, in constant time.
    pub fn check_csrf(&self, presented: &str) -> bool {
        match self.0.get::<String>(CSRF).ok().flatten() {
            Some(expected) => bool::from(expected.as_bytes().ct_eq(presented.as_bytes())),
            None => false,
        }
    }

    /// The newest authorization request in progress (the one a fresh sign-in resumes).
    pub fn pending(&self) -> Option<AuthorizationRequest> {
        self.latest_pending().map(|pending| pending.request)
    }

    /// The newest authorization request in progress, with its id.
    pub fn latest_pending(&self) -> Option<PendingRequest> {
        self.pending_list().pop()
    }

    /// The request in progress that a form or link names, if it is still in progress.
    pub fn pending_by_id(&self, id: &str) -> Option<PendingRequest> {
        self.pending_list()
            .into_iter()
            .rev()
            .find(|pending| pending.id == id)
    }

    /// Keeps `request` in progress under a new random id, beside the last few others, so
    /// that two tabs can each finish their own. The oldest are forgotten first when there
    /// are more than [`MAX_PENDING`] or when they no longer fit in the cookie.
    pub fn add_pending(
        &self,
        request: AuthorizationRequest,
    ) -> Result<PendingRequest, PendingError> {
        let id = random_urlsafe(PENDING_ID_BYTES)
            .map_err(|e| PendingError::Session(SessionError(e.to_string())))?;
        let pending = PendingRequest { id, request };
        let mut list = self.pending_list();
        list.push(pending.clone());
        let excess = list.len().saturating_sub(MAX_PENDING);
        list.drain(..excess);
        while cookie_size(&list) > PENDING_BUDGET {
            if list.len() == 1 {
                return Err(PendingError::TooLarge(Box::new(pending.request)));
            }
            list.remove(0);
        }
        self.0
            .insert(PENDING, &list)
            .map_err(|e| PendingError::Session(e.into()))?;
        // The single request of cookies from before ids: dead weight in a bounded cookie.
        self.0.remove(LEGACY_PENDING);
        Ok(pending)
    }

    /// Replaces the request in progress that has `pending`'s id (e.g. once `prompt=login`
    /// is satisfied); a no-op if it is no longer in progress.
    pub fn update_pending(&self, pending: &PendingRequest) -> Result<(), SessionError> {
        let mut list = self.pending_list();
        if let Some(slot) = list.iter_mut().find(|p| p.id == pending.id) {
            slot.request = pending.request.clone();
            self.0.insert(PENDING, &list)?;
        }
        Ok(())
    }

    /// Makes the request in progress with `id` the newest, the one the next sign-in resumes;
    /// a no-op if it is no longer in progress.
    pub fn resume_next(&self, id: &str) -> Result<(), SessionError> {
        let mut list = self.pending_list();
        if let Some(at) = list.iter().position(|p| p.id == id) {
            let pending = list.remove(at);
            list.push(pending);
            self.0.insert(PENDING, &list)?;
        }
        Ok(())
    }

    /// Ends one request in progress (answered, refused or failed); the others stay.
    pub fn remove_pending(&self, id: &str) {
        let mut list = self.pending_list();
        let before = list.len();
        list.retain(|p| p.id != id);
        if list.len() == before {
            return;
        }
        if list.is_empty() {
            self.0.remove(PENDING);
        } else if self.0.insert(PENDING, &list).is_err() {
            // A smaller list than the one already stored always serialises; should it not,
            // forgetting every request is the safe side.
            self.0.remove(PENDING);
        }
    }

    /// Ends every request in progress.
    pub fn clear_pending(&self) {
        self.0.remove(PENDING);
    }

    /// Oldest first. A cookie from before requests had ids does not parse and counts as none.
    fn pending_list(&self) -> Vec<PendingRequest> {
        self.0
            .get::<Vec<PendingRequest>>(PENDING)
            .ok()
            .flatten()
            .unwrap_or_default()
    }
}

/// When and how the person of a session signed in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignInFacts {
    pub auth_time: i64,
    /// How the second factor was proved, if it was.
    pub second_factor: Option<Proof>,
    /// The id of the sign-in (OpenID Connect `sid`); `None` for one from before sids.
    pub sid: Option<String>,
}

/// Random bytes of a `sid`.
const SID_BYTES: usize = 16;

/// An authorization request in progress and the id that binds the pages shown for it (the
/// consent form) to it: a decision names the request the person saw, so a request started
/// meanwhile in another tab or a popup cannot take its place.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingRequest {
    /// 128 random bits, URL-safe. Not a secret from the person (it is in their page); it only
    /// has to be unguessable by another site, which cannot read the page or the cookie.
    pub id: String,
    pub request: AuthorizationRequest,
}

/// Why a request could not be kept in progress.
#[derive(Debug, thiserror::Error)]
pub enum PendingError {
    /// Even alone it would not fit in the session cookie (e.g. a `state` full of characters
    /// that JSON escapes): refused, so that nothing is silently cut.
    #[error("the authorization request is too large to keep in the session")]
    TooLarge(Box<AuthorizationRequest>),
    #[error(transparent)]
    Session(#[from] SessionError),
}

/// How many authorization requests a session keeps in progress at once.
pub const MAX_PENDING: usize = 3;
const PENDING_ID_BYTES: usize = 16;
/// Bytes the pending requests may take in the session state, escaped as the cookie store
/// writes them. A browser keeps cookies up to 4096 bytes; the state is encrypted and base64
/// encoded (about 4/3 of its size plus 40 bytes), and the sign-in keys need a few hundred.
const PENDING_BUDGET: usize = 2400;

/// The size `list` takes in the session state: the session serialises each value to JSON and
/// then the whole state again, so quotes and backslashes count several times.
fn cookie_size(list: &[PendingRequest]) -> usize {
    serde_json::to_string(list)
        .and_then(|inner| serde_json::to_string(&inner))
        .map_or(usize::MAX, |outer| outer.len())
}

/// The signed-in user, if the sign-in is still valid, the account usable and its security
/// stamp unchanged since the sign-in; otherwise the session is signed out. Every page goes
/// through here, so a stamp move ends every session at its next request.
pub async fn signed_in_user(
    state: &AppState,
    session: &UserSession,
) -> Result<Option<User>, PageError> {
    let Some(id) = session.user_id(clock::now(), state.settings.session.ttl_secs) else {
        return Ok(None);
    };
    current_user(state, session, id).await
}

/// The user `id` of this session if still usable under the session's stamp; otherwise the
/// session forgets them.
pub async fn current_user(
    state: &AppState,
    session: &UserSession,
    id: Uuid,
) -> Result<Option<User>, PageError> {
    match state.store.find_user(id).await? {
        Some(user) if !user.disabled && session.stamp_matches(&user) => Ok(Some(user)),
        _ => {
            session.forget_user();
            Ok(None)
        }
    }
}

/// The name of the application whose authorization request is in progress, for the pages
/// that say who is asking.
pub async fn pending_client_name(
    state: &AppState,
    session: &UserSession,
) -> Result<Option<String>, PageError> {
    let Some(request) = session.pending() else {
        return Ok(None);
    };
    Ok(state
        .clients
        .get(&state.store, &request.client_id)
        .await?
        .map(|c| c.name.clone()))
}

/// The session could not be written (serialisation), which should not happen.
#[derive(Debug, thiserror::Error)]
#[error("session: {0}")]
pub struct SessionError(String);

impl From<actix_session::SessionInsertError> for SessionError {
    fn from(err: actix_session::SessionInsertError) -> Self {
        Self(err.to_string())
    }
}
