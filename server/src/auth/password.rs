//! argon2id password hashes (PHC strings), verified off the async runtime.
//!
//! Unknown users are checked against a dummy hash made with the same parameters, so a failed
//! sign-in takes as long whether or not the username exists.
//!
//! Each verification holds `argon2_memory_kib` of memory and a core for its duration, so at
//! most `max_concurrent_verifications` run at once; a caller that cannot start one within
//! [`QUEUE_WAIT`] is told the service is busy instead of queueing without bound.
use crate::settings::PasswordSettings;
use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use rand::TryRng;
use secrecy::{ExposeSecret, SecretString};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;

/// How long a verification may wait for a free slot before the caller is told to come back.
pub const QUEUE_WAIT: Duration = Duration::from_millis(200);

#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error("password hashing failed: {0}")]
    Hash(String),
    #[error("the operating system's random number generator failed: {0}")]
    Random(#[from] rand::rngs::SysError),
    #[error("password hashing was interrupted")]
    Interrupted,
    /// Every verification slot stayed busy for [`QUEUE_WAIT`].
    #[error("every password verification slot is busy")]
    Busy,
}

/// Hashes and verifies passwords with the configured argon2id parameters.
pub struct Passwords {
    argon2: Argon2<'static>,
    dummy: String,
    slots: Arc<Semaphore>,
}

impl Passwords {
    pub fn new(settings: &PasswordSettings) -> Result<Self, PasswordError> {
        let params = Params::new(
            settings.argon2_memory_kib,
            settings.argon2_iterations,
            settings.argon2_parallelism,
            None,
        )
        .map_err(|e| PasswordError::Hash(e.to_string()))?;
        let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
        let slots = match settings.max_concurrent_verifications {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            configured => configured,
        };
        let mut passwords = Self {
            argon2,
            dummy: String::new(),
            slots: Arc::new(Semaphore::new(slots.min(Semaphore::MAX_PERMITS))),
        };
        passwords.dummy = passwords.hash("a password nobody has")?;
        Ok(passwords)
    }

    /// A PHC string with a fresh 128-bit salt.
    pub fn hash(&self, password: &str) -> Result<String, PasswordError> {
        let mut salt = [0u8; 16];
        rand::rngs::SysRng.try_fill_bytes(&mut salt)?;
        let salt = SaltString::encode_b64(&salt).map_err(|e| PasswordError::Hash(e.to_string()))?;
        self.argon2
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| PasswordError::Hash(e.to_string()))
    }

    /// [`Self::hash`] on the blocking pool, keeping the caller's span: argon2 holds a core for
    /// its whole run, which the async runtime must not lose.
    pub async fn hash_off_runtime(
        self: &Arc<Self>,
        password: SecretString,
    ) -> Result<String, PasswordError> {
        let passwords = Arc::clone(self);
        let span = tracing::Span::current();
        tokio::task::spawn_blocking(move || {
            span.in_scope(|| passwords.hash(password.expose_secret()))
        })
        .await
        .map_err(|_| PasswordError::Interrupted)?
    }

    /// Checks `password` against `stored` (its own parameters apply), or against the dummy
    /// hash when there is no user, in which case the answer is always `false`.
    pub fn verify(&self, password: &str, stored: Option<&str>) -> bool {
        let (phc, real) = match stored {
            Some(phc) => (phc, true),
            None => (self.dummy.as_str(), false),
        };
        let Ok(parsed) = PasswordHash::new(phc) else {
            return false;
        };
        let matches = self
            .argon2
            .verify_password(password.as_bytes(), &parsed)
            .is_ok();
        matches && real
    }

    /// [`Self::verify`] on the blocking pool, keeping the caller's span, once a verification
    /// slot is free; [`PasswordError::Busy`] when none frees up within [`QUEUE_WAIT`].
    pub async fn verify_off_runtime(
        self: &Arc<Self>,
        password: SecretString,
        stored: Option<String>,
    ) -> Result<bool, PasswordError> {
        let slot = tokio::time::timeout(QUEUE_WAIT, Arc::clone(&self.slots).acquire_owned())
            .await
            .map_err(|_| PasswordError::Busy)?
            .map_err(|_| PasswordError::Interrupted)?;
        let passwords = Arc::clone(self);
        let span = tracing::Span::current();
        // The slot travels with the work: if the caller goes away, the hash still runs to the
        // end and only then frees its slot.
        tokio::task::spawn_blocking(move || {
            let _slot = slot;
            span.in_scope(|| passwords.verify(password.expose_secret(), stored.as_deref()))
        })
        .await
        .map_err(|_| PasswordError::Interrupted)
    }
}

/// Whether `password` may be set: at least `min_length` characters (`passwords.min_length`)
/// and at most [`MAX_PASSWORD_LEN`](super::MAX_PASSWORD_LEN) bytes. The message says which
/// rule failed, never the password.
pub fn check_policy(password: &str, min_length: usize) -> Result<(), String> {
    if password.chars().count() < min_length {
        return Err(format!(
            "the password must have at least {min_length} characters"
        ));
    }
    if password.len() > super::MAX_PASSWORD_LEN {
        return Err(format!(
            "the password must have at most {} bytes",
            super::MAX_PASSWORD_LEN
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fast() -> Passwords {
        Passwords::new(&PasswordSettings {
            argon2_memory_kib: 1024,
            argon2_iterations: 1,
            argon2_parallelism: 1,
            min_length: 8,
            max_concurrent_verifications: 1,
        })
        .unwrap()
    }

    #[test]
    fn a_hash_is_argon2id_and_verifies_only_its_password() {
        let passwords = fast();
        let hash = passwords.hash("correct horse").unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=1024,t=1,p=1$"));
        assert!(passwords.verify("correct horse", Some(&hash)));
        assert!(!passwords.verify("wrong horse", Some(&hash)));
    }

    #[test]
    fn two_hashes_of_one_password_differ_by_salt() {
        let passwords = fast();
        assert_ne!(passwords.hash("pw").unwrap(), passwords.hash("pw").unwrap());
    }

    #[tokio::test]
    async fn a_verification_that_finds_every_slot_busy_is_refused_not_queued() {
        let passwords = Arc::new(fast());
        let hash = passwords.hash("pw").unwrap();
        let held = Arc::clone(&passwords.slots).acquire_owned().await.unwrap();
        let started = std::time::Instant::now();
        let busy = passwords
            .verify_off_runtime("pw".to_owned().into(), Some(hash.clone()))
            .await;
        assert!(matches!(busy, Err(PasswordError::Busy)));
        assert!(started.elapsed() < QUEUE_WAIT * 3);
        drop(held);
        assert!(
            passwords
                .verify_off_runtime("pw".to_owned().into(), Some(hash))
                .await
                .unwrap()
        );
    }

    #[test]
    fn an_unknown_user_never_verifies_even_with_the_dummy_password() {
        let passwords = fast();
        assert!(!passwords.verify("a password nobody has", None));
        assert!(!passwords.verify("anything", Some("not a phc string")));
    }
}
