//! Signing people in: password hashing, the brute-force limiter and the rules of the second
//! factor (TOTP, one-time and recovery codes, lockout, secrets at rest). No HTTP, no SeaORM.
pub mod codes;
pub mod factor;
pub mod limiter;
pub mod lockout;
pub mod password;
pub mod secret_box;
pub mod totp;

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

/// Longest display name (OpenID Connect `name`) accepted.
pub const MAX_NAME_LEN: usize = 200;

/// A display name is 1 to 200 characters without control characters, trimmed.
pub fn validate_display_name(name: &str) -> Result<String, String> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > MAX_NAME_LEN || name.chars().any(char::is_control)
    {
        return Err(format!(
            "a name is 1 to {MAX_NAME_LEN} characters without control characters"
        ));
    }
    Ok(name.to_owned())
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
