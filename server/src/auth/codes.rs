//! One-time codes (6 digits, sent by e-mail or SMS) and recovery codes: their formats, how
//! they are generated and how they are hashed for storage.
use rand::TryRng;
use sha2::{Digest, Sha256};

/// Digits of a one-time code.
pub const ONE_TIME_CODE_LEN: usize = 6;
/// Recovery codes generated at enrolment.
pub const RECOVERY_CODE_COUNT: usize = 10;
/// Characters of a recovery code (without dashes): 12 × 5 bits = 60 bits of entropy.
const RECOVERY_CODE_LEN: usize = 12;
/// Crockford's base32 alphabet: no I, L, O, U, so nothing is misread when typed from paper.
const ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";

/// A random 6-digit code, uniform over 000000–999999.
pub fn one_time_code() -> Result<String, rand::rngs::SysError> {
    // Rejection sampling: values at or above the largest multiple of 10^6 would bias the result.
    const RANGE: u32 = 1_000_000;
    const LIMIT: u32 = u32::MAX - (u32::MAX % RANGE);
    loop {
        let mut bytes = [0u8; 4];
        rand::rngs::SysRng.try_fill_bytes(&mut bytes)?;
        let value = u32::from_le_bytes(bytes);
        if value < LIMIT {
            return Ok(format!("{:06}", value % RANGE));
        }
    }
}

/// `RECOVERY_CODE_COUNT` fresh codes, formatted `xxxx-xxxx-xxxx`.
pub fn recovery_codes() -> Result<Vec<String>, rand::rngs::SysError> {
    (0..RECOVERY_CODE_COUNT).map(|_| recovery_code()).collect()
}

fn recovery_code() -> Result<String, rand::rngs::SysError> {
    let mut bytes = [0u8; RECOVERY_CODE_LEN];
    rand::rngs::SysRng.try_fill_bytes(&mut bytes)?;
    let chars: Vec<char> = bytes
        .iter()
        .map(|b| char::from(ALPHABET[usize::from(b & 31)]))
        .collect();
    Ok(chars
        .chunks(4)
        .map(|chunk| chunk.iter().collect::<String>())
        .collect::<Vec<_>>()
        .join("-"))
}

/// The form a typed recovery code is hashed in: lower case, without dashes or spaces.
pub fn normalize_recovery_code(input: &str) -> Option<String> {
    let code: String = input
        .chars()
        .filter(|c| !matches!(c, '-' | ' '))
        .map(|c| c.to_ascii_lowercase())
        .collect();
    (code.len() == RECOVERY_CODE_LEN && code.bytes().all(|b| ALPHABET.contains(&b))).then_some(code)
}

/// A well-formed one-time code: exactly six ASCII digits.
pub fn is_one_time_code(input: &str) -> bool {
    input.len() == ONE_TIME_CODE_LEN && input.bytes().all(|b| b.is_ascii_digit())
}

/// SHA-256 of a code, for storage.
///
/// For recovery codes (60 random bits) a fast hash is enough: nobody can enumerate 2^60
/// candidates. A 6-digit one-time code could be found from its hash by trying all 10^6 values,
/// so its hash only keeps it out of casual view; what protects it is that it dies after five
/// attempts and five minutes.
pub fn hash_code(code: &str) -> [u8; 32] {
    Sha256::digest(code.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_time_codes_are_six_digits() {
        for _ in 0..100 {
            let code = one_time_code().unwrap();
            assert!(is_one_time_code(&code), "{code}");
        }
        assert!(!is_one_time_code("12345") && !is_one_time_code("12345a"));
    }

    #[test]
    fn recovery_codes_are_ten_distinct_and_normalise_back() {
        let codes = recovery_codes().unwrap();
        assert_eq!(codes.len(), 10);
        let mut unique = codes.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), 10);
        let code = &codes[0];
        assert_eq!(code.len(), 14, "{code}");
        let typed = format!(" {} ", code.to_uppercase().replace('-', " "));
        assert_eq!(normalize_recovery_code(&typed), Some(code.replace('-', "")));
        assert_eq!(normalize_recovery_code("too-short"), None);
        assert_eq!(normalize_recovery_code("iiii-iiii-iiii"), None);
    }

    #[test]
    fn hashes_differ_for_different_codes() {
        assert_ne!(hash_code("123456"), hash_code("123457"));
        assert_eq!(hash_code("123456"), hash_code("123456"));
    }
}
