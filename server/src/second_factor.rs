//! The second factor as a service: enrolment, confirmation, removal, recovery codes and the
//! check at sign-in with lockout and audit. It ties the rules of [`crate::auth`] to
//! [`crate::store`] and a [`CodeSender`]; the HTML pages and the JSON API both call it, so each
//! rule exists once. No actix here.
use crate::auth::codes::{self, hash_code, is_one_time_code, normalize_recovery_code};
use crate::auth::factor::{FactorKind, Proof, validate_destination};
use crate::auth::lockout::{Attempt, LockoutPolicy};
use crate::auth::secret_box::{SecretBox, SecretBoxError};
use crate::auth::totp;
use crate::sender::{Channel, CodeMessage, CodeSender, Purpose, SendError};
use crate::settings::SecondFactorSettings;
use crate::store::{
    AuditEntry, AuditKind, CodeCheck, CodeStored, Factor, NewFactor, Store, StoreError, User,
};
use secrecy::SecretString;
use std::net::IpAddr;
use std::sync::Arc;

/// Why a second-factor operation did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum FactorError {
    #[error("{0}")]
    Invalid(String),
    /// The code (or password) does not prove the factor.
    #[error("the code is not valid")]
    WrongCode,
    #[error("no such factor is being enrolled")]
    NotEnrolling,
    #[error("no such factor")]
    NotFound,
    #[error("{0}")]
    Conflict(String),
    /// Another code was sent moments ago.
    #[error("a code was sent recently; wait {retry_after_secs} s before asking again")]
    Throttled { retry_after_secs: i64 },
    /// Too many second-factor failures: sign-in is locked.
    #[error("too many failed attempts; try again in {retry_after_secs} s")]
    Locked { retry_after_secs: i64 },
    #[error("the code could not be sent: {0}")]
    Send(#[from] SendError),
    /// Every password verification slot is busy (the password was not checked).
    #[error("the server is busy checking passwords; try again in a moment")]
    Busy,
    #[error(transparent)]
    Store(StoreError),
    #[error("internal: {0}")]
    Internal(String),
}

impl From<StoreError> for FactorError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::Conflict(message) => Self::Conflict(message),
            other => Self::Store(other),
        }
    }
}

impl From<crate::auth::password::PasswordError> for FactorError {
    fn from(err: crate::auth::password::PasswordError) -> Self {
        match err {
            crate::auth::password::PasswordError::Busy => Self::Busy,
            other => Self::Internal(other.to_string()),
        }
    }
}

impl From<SecretBoxError> for FactorError {
    fn from(err: SecretBoxError) -> Self {
        Self::Internal(err.to_string())
    }
}

impl From<rand::rngs::SysError> for FactorError {
    fn from(err: rand::rngs::SysError) -> Self {
        Self::Internal(err.to_string())
    }
}

impl From<totp::TotpError> for FactorError {
    fn from(err: totp::TotpError) -> Self {
        Self::Internal(err.to_string())
    }
}

/// What an authenticator app needs: the secret in base32 and the `otpauth://` URI.
#[derive(Clone, serde::Serialize)]
pub struct TotpEnrolment {
    pub secret: String,
    pub otpauth_uri: String,
}

impl std::fmt::Debug for TotpEnrolment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TotpEnrolment(..)")
    }
}

/// Who is acting, for the audit log.
#[derive(Debug, Clone, Default)]
pub struct Actor {
    pub client_id: Option<String>,
    pub address: Option<IpAddr>,
}

/// One factor as an operator sees it.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct FactorSummary {
    /// `totp`, `email` or `sms`.
    pub kind: &'static str,
    /// Enabled; `false` while enrolling.
    pub confirmed: bool,
    /// Where codes go (e-mail address or phone number), for sent-code factors.
    pub destination: Option<String>,
    pub created_at: i64,
}

/// A user's second factor as an operator sees it (`umbra user 2fa status`, the admin API).
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct FactorStatus {
    pub username: String,
    pub factors: Vec<FactorSummary>,
    pub recovery_codes_left: u64,
    /// Seconds until sign-in is possible again, when locked.
    pub locked_for_secs: Option<i64>,
}

/// The outcome of a confirmed enrolment: the recovery codes, when this was the first factor.
#[derive(Debug)]
pub struct Enabled {
    pub recovery_codes: Option<Vec<String>>,
}

/// How long a TOTP enrolment that was never confirmed is offered again before a new secret
/// replaces it.
const ENROLMENT_REUSE_SECS: i64 = 600;

pub struct SecondFactor {
    store: Store,
    secrets: SecretBox,
    sender: Arc<dyn CodeSender>,
    settings: SecondFactorSettings,
    lockout: LockoutPolicy,
    /// Counts failed second-factor checks for the metrics, when the server exports them.
    failures: Option<prometheus::IntCounter>,
}

impl SecondFactor {
    pub fn new(
        store: Store,
        key: &[u8; 32],
        sender: Arc<dyn CodeSender>,
        settings: &SecondFactorSettings,
    ) -> Self {
        Self {
            store,
            secrets: SecretBox::new(key),
            sender,
            settings: settings.clone(),
            lockout: LockoutPolicy::from_settings(settings),
            failures: None,
        }
    }

    /// Counts every failed second-factor check on `counter`.
    pub fn with_failure_counter(mut self, counter: prometheus::IntCounter) -> Self {
        self.failures = Some(counter);
        self
    }

    /// The TOTP enrolment of `user` in progress (if recent), or a new one with a new secret.
    pub async fn totp_enrolment(
        &self,
        user: &User,
        now: i64,
        fresh: bool,
    ) -> Result<TotpEnrolment, FactorError> {
        if let Some(factor) = self.store.factor(user.id, FactorKind::Totp).await? {
            if factor.confirmed() {
                return Err(FactorError::Conflict(
                    "an authenticator app is already enabled".into(),
                ));
            }
            if !fresh && now - factor.created_at < ENROLMENT_REUSE_SECS {
                let secret = self.totp_secret(&factor)?;
                return self.enrolment_of(&secret, user);
            }
        }
        let secret = totp::generate_secret()?;
        self.store
            .start_factor(
                NewFactor {
                    user_id: user.id,
                    kind: FactorKind::Totp,
                    secret_ciphertext: Some(self.secrets.seal(&secret, user.id.as_bytes())?),
                    destination: None,
                },
                now,
            )
            .await?;
        self.enrolment_of(&secret, user)
    }

    fn enrolment_of(&self, secret: &[u8], user: &User) -> Result<TotpEnrolment, FactorError> {
        Ok(TotpEnrolment {
            secret: totp::secret_base32(secret),
            otpauth_uri: totp::otpauth_uri(secret, &self.settings.totp_issuer, &user.username)?,
        })
    }

    fn totp_secret(&self, factor: &Factor) -> Result<Vec<u8>, FactorError> {
        let sealed = factor
            .secret_ciphertext
            .as_deref()
            .ok_or_else(|| FactorError::Internal("a TOTP factor without a secret".into()))?;
        Ok(self.secrets.open(sealed, factor.user_id.as_bytes())?)
    }

    /// Starts enrolling an e-mail or SMS factor and sends the confirmation code.
    pub async fn start_sent_factor(
        &self,
        user: &User,
        kind: FactorKind,
        destination: &str,
        now: i64,
    ) -> Result<Factor, FactorError> {
        if !kind.is_sent() {
            return Err(FactorError::Invalid(
                "an authenticator app is enrolled with a secret, not a destination".into(),
            ));
        }
        let destination = validate_destination(kind, destination)
            .map_err(|message| FactorError::Invalid(message.to_owned()))?;
        // Starting over replaces the enrolling factor and its code; without this check that
        // would be a way around the resend throttle (and a way to send mail to anyone).
        if let Some(enrolling) = self.store.factor(user.id, kind).await? {
            let wait = enrolling.created_at + self.settings.resend_interval_secs - now;
            if !enrolling.confirmed() && wait > 0 {
                return Err(FactorError::Throttled {
                    retry_after_secs: wait,
                });
            }
        }
        let factor = self
            .store
            .start_factor(
                NewFactor {
                    user_id: user.id,
                    kind,
                    secret_ciphertext: None,
                    destination: Some(destination),
                },
                now,
            )
            .await?;
        self.send_code(&factor, Purpose::Enrolment, now).await?;
        Ok(factor)
    }

    /// Sends a new code to an e-mail/SMS factor: the enrolling one, or a confirmed one to sign
    /// in. Throttled per factor.
    pub async fn resend(
        &self,
        user: &User,
        kind: FactorKind,
        now: i64,
    ) -> Result<Factor, FactorError> {
        let factor = self
            .store
            .factor(user.id, kind)
            .await?
            .filter(|f| f.kind.is_sent())
            .ok_or(FactorError::NotFound)?;
        let purpose = if factor.confirmed() {
            Purpose::SignIn
        } else {
            Purpose::Enrolment
        };
        self.send_code(&factor, purpose, now).await?;
        Ok(factor)
    }

    async fn send_code(
        &self,
        factor: &Factor,
        purpose: Purpose,
        now: i64,
    ) -> Result<(), FactorError> {
        let (channel, to) = match (factor.kind, &factor.destination) {
            (FactorKind::Email, Some(to)) => (Channel::Email, to.clone()),
            (FactorKind::Sms, Some(to)) => (Channel::Sms, to.clone()),
            _ => {
                return Err(FactorError::Internal(
                    "a factor without a destination".into(),
                ));
            }
        };
        let code = codes::one_time_code()?;
        let s = &self.settings;
        match self
            .store
            .store_one_time_code(
                factor.id,
                hash_code(&code),
                now,
                s.code_ttl_secs,
                s.resend_interval_secs,
            )
            .await?
        {
            CodeStored::Stored => {}
            CodeStored::Throttled { retry_after_secs } => {
                return Err(FactorError::Throttled { retry_after_secs });
            }
        }
        let message = CodeMessage {
            channel,
            to,
            code: SecretString::from(code),
            purpose,
        };
        self.sender.send(&message).await?;
        Ok(())
    }

    /// Confirms the factor of `kind` being enrolled with one valid code. The first factor of a
    /// user also gets a fresh set of recovery codes.
    pub async fn confirm(
        &self,
        user: &User,
        kind: FactorKind,
        code: &str,
        actor: &Actor,
        now: i64,
    ) -> Result<Enabled, FactorError> {
        let factor = self
            .store
            .factor(user.id, kind)
            .await?
            .filter(|f| !f.confirmed())
            .ok_or(FactorError::NotEnrolling)?;
        let step = match kind {
            FactorKind::Totp => Some(
                totp::verify(&self.totp_secret(&factor)?, code, now, None)
                    .ok_or(FactorError::WrongCode)?,
            ),
            FactorKind::Email | FactorKind::Sms => {
                self.check_sent_code(&factor, code, now).await?;
                None
            }
        };
        let first = self.store.confirmed_factors(user.id).await?.is_empty();
        if !self.store.confirm_factor(factor.id, step, now).await? {
            return Err(FactorError::NotEnrolling);
        }
        self.audit(
            AuditEntry::new(AuditKind::FactorEnabled),
            user,
            actor,
            kind.as_str(),
            now,
        )
        .await?;
        let recovery_codes = if first {
            Some(self.regenerate_recovery_codes(user, actor, now).await?)
        } else {
            None
        };
        Ok(Enabled { recovery_codes })
    }

    async fn check_sent_code(
        &self,
        factor: &Factor,
        code: &str,
        now: i64,
    ) -> Result<(), FactorError> {
        let code = code.trim();
        if !is_one_time_code(code) {
            return Err(FactorError::WrongCode);
        }
        match self
            .store
            .check_one_time_code(
                factor.id,
                hash_code(code),
                now,
                self.settings.max_code_attempts,
            )
            .await?
        {
            CodeCheck::Accepted => Ok(()),
            CodeCheck::Wrong | CodeCheck::Dead => Err(FactorError::WrongCode),
        }
    }

    /// Removes a factor. With no confirmed factor left, the recovery codes go too. The
    /// security stamp moves, so every session that may have passed the removed factor is signed
    /// out; returns the new stamp for the one session that made the change after a proof.
    pub async fn remove(
        &self,
        user: &User,
        kind: FactorKind,
        actor: &Actor,
        now: i64,
    ) -> Result<i64, FactorError> {
        if !self.store.remove_factor(user.id, kind).await? {
            return Err(FactorError::NotFound);
        }
        if self.store.confirmed_factors(user.id).await?.is_empty() {
            self.store.replace_recovery_codes(user.id, &[], now).await?;
        }
        let stamp = self
            .store
            .rotate_security_stamp(user.id, now)
            .await?
            .ok_or(FactorError::NotFound)?;
        self.audit(
            AuditEntry::new(AuditKind::FactorRemoved),
            user,
            actor,
            kind.as_str(),
            now,
        )
        .await?;
        Ok(stamp)
    }

    /// Replaces the recovery codes with new ones, returned in plain text this once.
    pub async fn regenerate_recovery_codes(
        &self,
        user: &User,
        actor: &Actor,
        now: i64,
    ) -> Result<Vec<String>, FactorError> {
        if self.store.confirmed_factors(user.id).await?.is_empty() {
            return Err(FactorError::Invalid(
                "recovery codes need a second factor first".into(),
            ));
        }
        let plain = codes::recovery_codes()?;
        let hashes: Vec<[u8; 32]> = plain
            .iter()
            .filter_map(|code| normalize_recovery_code(code))
            .map(|code| hash_code(&code))
            .collect();
        self.store
            .replace_recovery_codes(user.id, &hashes, now)
            .await?;
        self.audit(
            AuditEntry::new(AuditKind::RecoveryCodesGenerated),
            user,
            actor,
            &hashes.len().to_string(),
            now,
        )
        .await?;
        Ok(plain)
    }

    /// Seconds until a locked account may try again; `None` when it is not locked.
    pub async fn locked_for(&self, user: &User, now: i64) -> Result<Option<i64>, FactorError> {
        let state = self.store.lockout_state(user.id).await?;
        Ok(self.lockout.locked_for(state.as_ref(), now))
    }

    /// Checks a sign-in's second step (also the proof of presence for account changes).
    ///
    /// The guess takes a lockout slot before it is judged, so guesses sent in parallel are
    /// judged at most `max_failures` times in a window; one refused (locked, or every slot
    /// taken) is not looked at: no code is consumed and no TOTP step used (`Locked`). A failure
    /// is audited and counted in the metrics; the first one judged once every slot is taken
    /// locks the account (`Locked`, audited once). A success forgives the count, not a running
    /// lock.
    pub async fn verify_sign_in(
        &self,
        user: &User,
        proof: Proof,
        code: &str,
        actor: &Actor,
        now: i64,
    ) -> Result<(), FactorError> {
        let slot = match self
            .store
            .reserve_second_factor_attempt(user.id, &self.lockout, now)
            .await?
        {
            Attempt::Allowed(slot) => slot,
            Attempt::Refused { retry_after_secs } => {
                return Err(FactorError::Locked { retry_after_secs });
            }
        };
        match self.prove(user, proof, code, now).await {
            Ok(()) => {
                self.store
                    .forgive_second_factor_failures(user.id, now)
                    .await?;
                if proof == Proof::RecoveryCode {
                    let left = self.store.recovery_codes_left(user.id).await?;
                    self.audit(
                        AuditEntry::new(AuditKind::RecoveryCodeUsed),
                        user,
                        actor,
                        &format!("{left} left"),
                        now,
                    )
                    .await?;
                }
                Ok(())
            }
            Err(FactorError::WrongCode) => {
                if let Some(failures) = &self.failures {
                    failures.inc();
                }
                self.audit(
                    AuditEntry::new(AuditKind::SecondFactorFailed),
                    user,
                    actor,
                    proof.as_str(),
                    now,
                )
                .await?;
                if let Some(locked) = self
                    .store
                    .lock_after_failure(user.id, &self.lockout, slot.window_started_at, now)
                    .await?
                {
                    self.audit(
                        AuditEntry::new(AuditKind::LockedOut),
                        user,
                        actor,
                        &format!("{} failures", locked.failures),
                        now,
                    )
                    .await?;
                }
                // Locked by this failure or by one judged alongside it: say so either way.
                match self.locked_for(user, now).await? {
                    Some(retry_after_secs) => Err(FactorError::Locked { retry_after_secs }),
                    None => Err(FactorError::WrongCode),
                }
            }
            // The slot stays taken: a guess that could not be judged still counts.
            Err(other) => Err(other),
        }
    }

    /// Checks that `code` proves `proof` for `user`, consuming it (a TOTP step, a one-time
    /// code or a recovery code is accepted once).
    pub async fn prove(
        &self,
        user: &User,
        proof: Proof,
        code: &str,
        now: i64,
    ) -> Result<(), FactorError> {
        match proof {
            Proof::RecoveryCode => {
                let code = normalize_recovery_code(code).ok_or(FactorError::WrongCode)?;
                if self
                    .store
                    .use_recovery_code(user.id, hash_code(&code), now)
                    .await?
                {
                    Ok(())
                } else {
                    Err(FactorError::WrongCode)
                }
            }
            Proof::Factor(kind) => {
                let factor = self
                    .store
                    .factor(user.id, kind)
                    .await?
                    .filter(Factor::confirmed)
                    .ok_or(FactorError::WrongCode)?;
                match kind {
                    FactorKind::Totp => {
                        let secret = self.totp_secret(&factor)?;
                        let step = totp::verify(&secret, code, now, factor.last_used_step)
                            .ok_or(FactorError::WrongCode)?;
                        if self.store.use_totp_step(factor.id, step).await? {
                            Ok(())
                        } else {
                            Err(FactorError::WrongCode)
                        }
                    }
                    FactorKind::Email | FactorKind::Sms => {
                        self.check_sent_code(&factor, code, now).await
                    }
                }
            }
        }
    }

    /// Records a sign-in (success or password failure) in the audit log.
    pub async fn audit_sign_in(
        &self,
        kind: AuditKind,
        user: Option<&User>,
        username: &str,
        actor: &Actor,
        how: &str,
        now: i64,
    ) -> Result<(), FactorError> {
        let mut entry = AuditEntry::new(kind)
            .client(actor.client_id.as_deref())
            .address(actor.address)
            .detail(how);
        entry = match user {
            Some(user) => entry.user(user.id, &user.username),
            None => AuditEntry {
                username: Some(username.chars().take(64).collect()),
                ..entry
            },
        };
        self.store.record_audit(entry, now).await?;
        Ok(())
    }

    async fn audit(
        &self,
        entry: AuditEntry,
        user: &User,
        actor: &Actor,
        detail: &str,
        now: i64,
    ) -> Result<(), FactorError> {
        let entry = entry
            .user(user.id, &user.username)
            .client(actor.client_id.as_deref())
            .address(actor.address)
            .detail(detail);
        self.store.record_audit(entry, now).await?;
        Ok(())
    }

    /// Clears every factor, recovery code and lock of a user (an operator's reset) and signs
    /// out every session of the user.
    pub async fn reset(&self, user: &User, now: i64) -> Result<u64, FactorError> {
        self.reset_by(user, None, now).await
    }

    /// [`Self::reset`], audited as made by `operator`.
    pub async fn reset_by(
        &self,
        user: &User,
        operator: Option<&crate::store::Actor>,
        now: i64,
    ) -> Result<u64, FactorError> {
        let removed = self.store.reset_second_factor(user.id).await?;
        self.store.clear_lockout(user.id).await?;
        self.store.rotate_security_stamp(user.id, now).await?;
        let mut entry = AuditEntry::new(AuditKind::FactorsReset);
        if let Some(operator) = operator {
            entry = entry.actor(operator);
        }
        self.audit(entry, user, &Actor::default(), "by an operator", now)
            .await?;
        Ok(removed)
    }

    /// What an operator sees of a user's second factor: the factors, the recovery codes left
    /// and any sign-in lock. Never a secret or a destination's codes.
    pub async fn status(&self, user: &User, now: i64) -> Result<FactorStatus, FactorError> {
        Ok(FactorStatus {
            username: user.username.clone(),
            factors: self
                .store
                .factors(user.id)
                .await?
                .into_iter()
                .map(|f| FactorSummary {
                    kind: f.kind.as_str(),
                    confirmed: f.confirmed(),
                    destination: f.destination.clone(),
                    created_at: f.created_at,
                })
                .collect(),
            recovery_codes_left: self.store.recovery_codes_left(user.id).await?,
            locked_for_secs: self.locked_for(user, now).await?,
        })
    }

    /// Enrols and confirms a TOTP factor in one go (the operator's `user totp enroll`).
    pub async fn enroll_totp_directly(
        &self,
        user: &User,
        now: i64,
    ) -> Result<(TotpEnrolment, Enabled), FactorError> {
        let enrolment = self.totp_enrolment(user, now, true).await?;
        let first = self.store.confirmed_factors(user.id).await?.is_empty();
        let factor = self
            .store
            .factor(user.id, FactorKind::Totp)
            .await?
            .ok_or(FactorError::NotEnrolling)?;
        // No step is recorded: the first code the user types must still be accepted.
        if !self.store.confirm_factor(factor.id, None, now).await? {
            return Err(FactorError::NotEnrolling);
        }
        let actor = Actor::default();
        self.audit(
            AuditEntry::new(AuditKind::FactorEnabled),
            user,
            &actor,
            "totp (cli)",
            now,
        )
        .await?;
        let recovery_codes = if first {
            Some(self.regenerate_recovery_codes(user, &actor, now).await?)
        } else {
            None
        };
        Ok((enrolment, Enabled { recovery_codes }))
    }
}
