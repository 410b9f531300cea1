//! Proof Key for Code Exchange (RFC 7636), S256 only: `plain` offers no protection against an
//! attacker who can read the authorization request, so Umbra refuses it (RFC 9700 §2.1.1).
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// An S256 challenge is BASE64URL(SHA256(verifier)): exactly 43 base64url characters.
pub fn is_valid_s256_challenge(challenge: &str) -> bool {
    challenge.len() == 43
        && challenge
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// `code-verifier = 43*128unreserved` (RFC 7636 §4.1).
pub fn is_valid_verifier(verifier: &str) -> bool {
    (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

/// "BASE64URL-ENCODE(SHA256(ASCII(code_verifier))) == code_challenge" (RFC 7636 §4.6),
/// compared in constant time.
pub fn verify_s256(verifier: &str, challenge: &str) -> bool {
    if !is_valid_verifier(verifier) {
        return false;
    }
    let computed = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    computed.as_bytes().ct_eq(challenge.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 7636 Appendix B.
    const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

    #[test]
    fn the_rfc_7636_example_verifies() {
        assert!(is_valid_s256_challenge(CHALLENGE));
        assert!(verify_s256(VERIFIER, CHALLENGE));
    }

    #[test]
    fn a_wrong_verifier_fails() {
        let wrong = VERIFIER.replace('d', "e");
        assert!(!verify_s256(&wrong, CHALLENGE));
    }

    #[test]
    fn the_plain_method_never_verifies() {
        // With `plain` the challenge would be the verifier itself.
        assert!(!verify_s256(VERIFIER, VERIFIER));
    }

    #[test]
    fn verifiers_outside_the_grammar_are_refused() {
        assert!(!is_valid_verifier("short"));
        assert!(!is_valid_verifier(&"a".repeat(129)));
        assert!(!is_valid_verifier(&format!("{}+", "a".repeat(50))));
        assert!(is_valid_verifier(&"a~.-_".repeat(10)));
    }

    #[test]
    fn challenges_must_have_the_s256_shape() {
        assert!(!is_valid_s256_challenge("too-short"));
        assert!(!is_valid_s256_challenge(&format!("{}=", &CHALLENGE[..42])));
    }
}
