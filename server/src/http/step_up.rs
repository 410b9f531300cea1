//! Step-up for security changes: adding or confirming a factor, new recovery codes, removing a
//! factor. A user who has a confirmed factor proves it again before such a change, so that a
//! stolen session cookie or bearer token cannot replace or drop what protects the account.
//!
//! - Pages: a session that passed the second factor (at sign-in, or by confirming a factor in
//!   it) is enough ([`SteppedUp`]); any other session is sent through the second step first.
//! - JSON API: a bearer token never stands in for the person (it outlives the sign-in, and the
//!   app holds it), so the body carries a fresh proof, the password or a current code
//!   ([`prove_presence`]).
//! - A user without a confirmed factor has nothing to step up to: the signed-in session (or the
//!   token) adds the first factor, as the forced enrolment after sign-in needs.
//! - Removing a factor always takes a fresh proof, in the pages too.
use super::AppState;
use super::page_extract::{PageUser, Refusal};
use super::session::{UserSession, signed_in_user};
use crate::auth::codes::normalize_recovery_code;
use crate::auth::factor::{FactorKind, Proof};
use crate::auth::limiter::Refused;
use crate::clock;
use crate::second_factor::{Actor, FactorError};
use crate::store::{StoreError, User};
use secrecy::{ExposeSecret, SecretString};

/// Where a page sends a session that must pass the second factor before a security change.
pub const SECOND_STEP: &str = "/login/2fa";

/// Whether `user` must prove a factor before a security change, given whether this sign-in
/// already did.
pub async fn step_up_due(state: &AppState, user: &User, passed: bool) -> Result<bool, StoreError> {
    Ok(!passed && !state.store.confirmed_factors(user.id).await?.is_empty())
}

/// The signed-in user, whose session passed the second factor if they have one. A session
/// that did not is turned back into "waiting for the second step" and sent there; after it,
/// the person lands on the account page and repeats the change.
pub struct SteppedUp(pub User);

impl PageUser for SteppedUp {
    async fn load(state: &AppState, session: &UserSession) -> Result<Self, Refusal> {
        let user = signed_in_user(state, session)
            .await?
            .ok_or(Refusal::Detour("/login"))?;
        if step_up_due(state, &user, session.second_factor_passed()).await? {
            session.begin_second_step(&user, clock::now())?;
            return Err(Refusal::Detour(SECOND_STEP));
        }
        Ok(Self(user))
    }
}

/// The password, or else a code from the authenticator app or a recovery code. Wrong codes
/// count towards the lockout; wrong passwords towards the sign-in limiter.
pub async fn prove_presence(
    state: &AppState,
    user: &User,
    password: Option<SecretString>,
    code: &str,
    actor: &Actor,
) -> Result<bool, FactorError> {
    if let Some(password) = password.filter(|p| !p.expose_secret().is_empty()) {
        return state
            .limiter
            .verify(
                &state.passwords,
                &user.username,
                actor.address,
                password,
                Some(user.password_hash.clone()),
            )
            .await
            .map_err(|refused| match refused {
                Refused::TooMany(wait) => FactorError::Locked {
                    retry_after_secs: i64::try_from(wait.as_secs()).unwrap_or(1).max(1),
                },
                Refused::Password(err) => err.into(),
                Refused::Store(err) => FactorError::Store(err),
            });
    }
    let code = code.trim();
    if code.is_empty() {
        return Ok(false);
    }
    let proof = if normalize_recovery_code(code).is_some() {
        Proof::RecoveryCode
    } else {
        Proof::Factor(FactorKind::Totp)
    };
    match state
        .factors
        .verify_sign_in(user, proof, code, actor, clock::now())
        .await
    {
        Ok(()) => Ok(true),
        Err(FactorError::WrongCode) => Ok(false),
        Err(other) => Err(other),
    }
}
