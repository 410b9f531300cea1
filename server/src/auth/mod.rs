//! Signing people in: password hashing and the brute-force limiter. No HTTP here.
pub mod limiter;
pub mod password;

/// Longest accepted username and password; longer input is refused before any work.
pub const MAX_USERNAME_LEN: usize = 64;
pub const MAX_PASSWORD_LEN: usize = 1024;

/// A username is 1 to 64 printable characters without whitespace (an e-mail address works).
pub fn validate_username(username: &str) -> Result<(), &'static str> {
    let trimmed = username.trim();
    if trimmed.is_empty() || trimmed.chars().count() > MAX_USERNAME_LEN {
        return Err("a username is 1 to 64 characters");
    }
    if trimmed.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("a username may not contain spaces or control characters");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::validate_username;

    #[test]
    fn usernames_are_printable_and_bounded() {
        assert!(validate_username("ada@example.com").is_ok());
        assert!(validate_username("Ádám").is_ok());
        assert!(validate_username("").is_err());
        assert!(validate_username("a b").is_err());
        assert!(validate_username("a\u{0}b").is_err());
        assert!(validate_username(&"x".repeat(65)).is_err());
    }
}
