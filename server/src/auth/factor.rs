//! The kinds of second factor and how a sign-in proves one.
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FactorKind {
    /// An authenticator app (RFC 6238).
    Totp,
    /// A one-time code sent by e-mail.
    Email,
    /// A one-time code sent by SMS.
    Sms,
}

impl FactorKind {
    pub const ALL: [FactorKind; 3] = [Self::Totp, Self::Email, Self::Sms];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Totp => "totp",
            Self::Email => "email",
            Self::Sms => "sms",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == value)
    }

    /// Factors whose codes are sent to a destination.
    pub fn is_sent(self) -> bool {
        !matches!(self, Self::Totp)
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::Totp => "Authenticator app",
            Self::Email => "E-mail",
            Self::Sms => "Text message (SMS)",
        }
    }
}

/// How a second step was passed, as the audit log records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proof {
    Factor(FactorKind),
    RecoveryCode,
}

impl Proof {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Factor(kind) => kind.as_str(),
            Self::RecoveryCode => "recovery_code",
        }
    }

    /// The method named in a form or request: a factor kind or `recovery`.
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "recovery" | "recovery_code" => Some(Self::RecoveryCode),
            other => FactorKind::parse(other).map(Self::Factor),
        }
    }
}

/// A plausible e-mail address or phone number for a factor of `kind`: enough to refuse typos
/// and header injection; the real check is that the code arrives.
pub fn validate_destination(kind: FactorKind, destination: &str) -> Result<String, &'static str> {
    let destination = destination.trim();
    match kind {
        FactorKind::Totp => Err("an authenticator has no destination"),
        FactorKind::Email => {
            let valid = destination.len() <= 254
                && destination.split_once('@').is_some_and(|(local, domain)| {
                    !local.is_empty() && domain.contains('.') && !domain.starts_with('.')
                })
                && !destination
                    .chars()
                    .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | ','));
            if valid {
                Ok(destination.to_owned())
            } else {
                Err("enter an e-mail address such as ada@example.com")
            }
        }
        FactorKind::Sms => {
            let digits: String = destination
                .chars()
                .filter(|c| !matches!(c, ' ' | '-' | '(' | ')'))
                .collect();
            let valid = digits.starts_with('+')
                && (8..=16).contains(&digits.len())
                && digits[1..].bytes().all(|b| b.is_ascii_digit());
            if valid {
                Ok(digits)
            } else {
                Err("enter a phone number in international form, such as +41 79 123 45 67")
            }
        }
    }
}

/// Shows only the edges of a destination, for pages that remind the user where a code went.
pub fn mask_destination(destination: &str) -> String {
    match destination.split_once('@') {
        Some((local, domain)) => {
            let first: String = local.chars().take(1).collect();
            format!("{first}…@{domain}")
        }
        None => {
            let count = destination.chars().count();
            let tail: String = destination.chars().skip(count.saturating_sub(2)).collect();
            format!("…{tail}")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destinations_are_checked_per_kind() {
        assert_eq!(
            validate_destination(FactorKind::Email, " ada@example.com "),
            Ok("ada@example.com".into())
        );
        assert!(validate_destination(FactorKind::Email, "ada").is_err());
        assert!(validate_destination(FactorKind::Email, "a@b.c\r\nBcc: x@y.z").is_err());
        assert_eq!(
            validate_destination(FactorKind::Sms, "+41 79 123-45-67"),
            Ok("+41791234567".into())
        );
        assert!(validate_destination(FactorKind::Sms, "0791234567").is_err());
    }

    #[test]
    fn masks_keep_only_the_edges() {
        assert_eq!(mask_destination("ada@example.com"), "a…@example.com");
        assert_eq!(mask_destination("+41791234567"), "…67");
    }

    #[test]
    fn methods_parse_from_their_names() {
        assert_eq!(Proof::parse("totp"), Some(Proof::Factor(FactorKind::Totp)));
        assert_eq!(Proof::parse("recovery"), Some(Proof::RecoveryCode));
        assert_eq!(Proof::parse("fax"), None);
    }
}
