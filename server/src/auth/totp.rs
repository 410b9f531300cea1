//! TOTP (RFC 6238) as authenticator apps speak it: HMAC-SHA-1, 6 digits, 30-second steps,
//! one step of clock skew either way.
//!
//! RFC 6238 §5.2: "the verifier MUST NOT accept the second attempt of the OTP after the
//! successful validation has been issued for the first OTP". The matched time step is
//! returned so that storage can accept only steps after the last one used, atomically.
use totp_rs::{Algorithm, Builder, Secret, Totp};

pub const DIGITS: u8 = 6;
pub const STEP_SECS: u64 = 30;
pub const SKEW_STEPS: u16 = 1;
/// 160 bits, the HMAC-SHA-1 block size RFC 4226 §4 recommends.
pub const SECRET_LEN: usize = 20;

#[derive(Debug, thiserror::Error)]
pub enum TotpError {
    #[error("the operating system's random number generator failed: {0}")]
    Random(#[from] rand::rngs::SysError),
    #[error("TOTP: {0}")]
    Totp(String),
}

/// A fresh random shared secret.
pub fn generate_secret() -> Result<Vec<u8>, TotpError> {
    use rand::TryRng;
    let mut secret = vec![0u8; SECRET_LEN];
    rand::rngs::SysRng.try_fill_bytes(&mut secret)?;
    Ok(secret)
}

fn totp(secret: &[u8], issuer: &str, account: &str) -> Result<Totp, TotpError> {
    Builder::new()
        .with_algorithm(Algorithm::SHA1)
        .with_digits(DIGITS)
        .with_step_duration(STEP_SECS)
        .with_skew(SKEW_STEPS)
        .with_secret(secret.to_vec())
        // `:` separates issuer and account in the otpauth label, so it may not appear in either.
        .with_issuer(Some(issuer.replace(':', " ")))
        .with_account_name(account.replace(':', " "))
        .build()
        .map_err(|e| TotpError::Totp(e.to_string()))
}

/// The secret in base32, as people type it into an authenticator.
pub fn secret_base32(secret: &[u8]) -> String {
    Secret::from(secret.to_vec()).to_base32()
}

/// The `otpauth://totp/…` URI that authenticator apps read from the QR code.
pub fn otpauth_uri(secret: &[u8], issuer: &str, account: &str) -> Result<String, TotpError> {
    totp(secret, issuer, account)?
        .to_url()
        .map_err(|e| TotpError::Totp(e.to_string()))
}

/// The time step `code` belongs to, if it is valid at `now` (±1 step) and later than
/// `last_used_step`; `None` otherwise.
pub fn verify(secret: &[u8], code: &str, now: i64, last_used_step: Option<i64>) -> Option<i64> {
    let code = code.trim();
    if code.len() != usize::from(DIGITS) || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let totp = totp(secret, "umbra", "").ok()?;
    let now = u64::try_from(now).ok()?;
    let step = i64::try_from(totp.check(code, now)?).ok()?;
    match last_used_step {
        Some(last) if step <= last => None,
        _ => Some(step),
    }
}

/// The code of the step containing `now` (for the CLI's tests and documentation examples).
pub fn code_at(secret: &[u8], now: i64) -> Result<String, TotpError> {
    let now = u64::try_from(now).map_err(|e| TotpError::Totp(e.to_string()))?;
    Ok(totp(secret, "umbra", "")?.generate(now).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 Appendix B, SHA-1 secret "12345678901234567890", truncated to 6 digits.
    const RFC_SECRET: &[u8] = b"12345678901234567890";

    #[test]
    fn codes_match_the_rfc_6238_test_vectors() {
        assert_eq!(code_at(RFC_SECRET, 59).unwrap(), "287082");
        assert_eq!(code_at(RFC_SECRET, 1_111_111_109).unwrap(), "081804");
        assert_eq!(code_at(RFC_SECRET, 2_000_000_000).unwrap(), "279037");
    }

    #[test]
    fn a_code_is_accepted_one_step_early_or_late_but_not_two() {
        let now = 1_111_111_109;
        let code = code_at(RFC_SECRET, now).unwrap();
        let step = now / 30;
        assert_eq!(verify(RFC_SECRET, &code, now, None), Some(step));
        assert_eq!(verify(RFC_SECRET, &code, now + 30, None), Some(step));
        assert_eq!(verify(RFC_SECRET, &code, now - 30, None), Some(step));
        assert_eq!(verify(RFC_SECRET, &code, now + 60, None), None);
    }

    #[test]
    fn a_step_at_or_before_the_last_used_one_is_refused() {
        let now = 1_111_111_109;
        let code = code_at(RFC_SECRET, now).unwrap();
        let step = now / 30;
        assert_eq!(verify(RFC_SECRET, &code, now, Some(step)), None);
        assert_eq!(verify(RFC_SECRET, &code, now, Some(step + 1)), None);
        assert_eq!(verify(RFC_SECRET, &code, now, Some(step - 1)), Some(step));
    }

    #[test]
    fn malformed_codes_are_refused_without_work() {
        for code in ["", "12345", "1234567", "12a456", "-12345"] {
            assert_eq!(verify(RFC_SECRET, code, 59, None), None, "{code}");
        }
    }

    #[test]
    fn the_uri_names_issuer_account_and_parameters() {
        let uri = otpauth_uri(RFC_SECRET, "Umbra", "ada@example.com").unwrap();
        assert!(
            uri.starts_with("otpauth://totp/Umbra:ada%40example.com?"),
            "{uri}"
        );
        assert!(
            uri.contains(&format!("secret={}", secret_base32(RFC_SECRET))),
            "{uri}"
        );
        assert!(uri.contains("issuer=Umbra"), "{uri}");
    }
}
