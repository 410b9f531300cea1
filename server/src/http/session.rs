//! The sign-in session: an encrypted, signed cookie holding who is signed in, a CSRF token
//! and the authorization request in progress.
//!
//! A small state machine: anonymous → (password) → second step pending → (code) → signed in.
//! Only the last state sets `user_id`, so a half-signed-in session is anonymous to every page
//! but the second step. The session id is renewed at each transition.
use super::AppState;
use super::error::PageError;
use crate::clock;
use crate::oauth::authorize::AuthorizationRequest;
use crate::oauth::token::random_urlsafe;
use crate::store::User;
use actix_session::{Session, SessionExt};
use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest};
use std::future::{Ready, ready};
use subtle::ConstantTimeEq;
use uuid::Uuid;

const USER_ID: &str = "user_id";
const AUTH_TIME: &str = "auth_time";
const CSRF: &str = "csrf";
const PENDING: &str = "authorization";
/// Set with `user_id` when the sign-in passed a second factor.
const SECOND_FACTOR: &str = "mfa";
const SECOND_STEP_USER: &str = "second_step_user";
const SECOND_STEP_AT: &str = "second_step_at";
/// The user's security stamp when this session signed in (or began the second step).
const STAMP: &str = "stamp";

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
            SECOND_STEP_USER,
            SECOND_STEP_AT,
            STAMP,
        ] {
            self.0.remove(key);
        }
    }

    /// Marks the user signed in under a new session id, keeping the request in progress.
    /// `second_factor`: the sign-in passed a second factor.
    /// The user's security stamp is remembered: when it moves, the sign-in ends.
    pub fn sign_in(&self, user: &User, now: i64, second_factor: bool) -> Result<(), SessionError> {
        self.forget_user();
        self.0.renew();
        self.0.insert(USER_ID, user.id)?;
        self.0.insert(AUTH_TIME, now)?;
        self.0.insert(SECOND_FACTOR, second_factor)?;
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

    /// Records that the signed-in user just proved a factor (at enrolment), under a new id.
    pub fn mark_second_factor_passed(&self) -> Result<(), SessionError> {
        self.0.renew();
        self.0.insert(SECOND_FACTOR, true)?;
        Ok(())
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

    pub fn pending(&self) -> Option<AuthorizationRequest> {
        self.0.get(PENDING).ok().flatten()
    }

    pub fn set_pending(&self, request: &AuthorizationRequest) -> Result<(), SessionError> {
        self.0.insert(PENDING, request)?;
        Ok(())
    }

    pub fn clear_pending(&self) {
        self.0.remove(PENDING);
    }
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
