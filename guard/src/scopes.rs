//! Scopes (RFC 6749 §3.3, "a list of space-delimited, case-sensitive strings") and what a
//! route requires of them.
use std::fmt;

/// An ordered set of scope tokens without duplicates.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scopes(Vec<String>);

impl Scopes {
    /// Parses a space-delimited scope string as the authorization server sends it; empty
    /// tokens (repeated spaces) are skipped and repeated tokens kept once.
    pub fn parse(raw: &str) -> Self {
        raw.split(' ').filter(|t| !t.is_empty()).collect()
    }

    pub fn contains(&self, scope: &str) -> bool {
        self.0.iter().any(|s| s == scope)
    }

    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<S: Into<String>> FromIterator<S> for Scopes {
    fn from_iter<I: IntoIterator<Item = S>>(iter: I) -> Self {
        let mut scopes: Vec<String> = Vec::new();
        for scope in iter {
            let scope = scope.into();
            if !scope.is_empty() && !scopes.contains(&scope) {
                scopes.push(scope);
            }
        }
        Self(scopes)
    }
}

impl fmt::Display for Scopes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.join(" "))
    }
}

/// The scopes a route requires: all of them, or any one of them.
///
/// An empty requirement is met by every active token (authentication only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScopeRequirement {
    /// Every listed scope must have been granted.
    All(Scopes),
    /// At least one listed scope must have been granted.
    Any(Scopes),
}

impl ScopeRequirement {
    /// Requires every scope in `scopes`.
    pub fn all<I, S>(scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self::All(scopes.into_iter().collect())
    }

    /// Requires at least one scope in `scopes`.
    pub fn any<I, S>(scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self::Any(scopes.into_iter().collect())
    }

    /// Requires nothing but an active token.
    pub fn none() -> Self {
        Self::All(Scopes::default())
    }

    /// The scopes named by the requirement.
    pub fn scopes(&self) -> &Scopes {
        match self {
            Self::All(scopes) | Self::Any(scopes) => scopes,
        }
    }

    /// Whether a token granted `granted` may pass.
    pub fn is_met_by(&self, granted: &Scopes) -> bool {
        match self {
            Self::All(required) => required.iter().all(|s| granted.contains(s)),
            Self::Any(required) => {
                required.is_empty() || required.iter().any(|s| granted.contains(s))
            }
        }
    }

    /// The value of the `scope` attribute of an `insufficient_scope` challenge (RFC 6750
    /// §3): the required scopes, leaving out any token outside the RFC 6749 §3.3 grammar
    /// (Umbra never grants one, and it could not be quoted safely).
    pub(crate) fn challenge_scope(&self) -> String {
        self.scopes()
            .iter()
            .filter(|s| s.bytes().all(is_scope_char))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// `scope-token = 1*( %x21 / %x23-5B / %x5D-7E )` (RFC 6749 §3.3).
fn is_scope_char(byte: u8) -> bool {
    matches!(byte, 0x21 | 0x23..=0x5B | 0x5D..=0x7E)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parsing_skips_empty_and_repeated_tokens() {
        assert_eq!(
            Scopes::parse(" read  write read ").to_string(),
            "read write"
        );
        assert!(Scopes::parse("").is_empty());
    }

    #[test]
    fn all_of_needs_every_scope_and_any_of_needs_one() {
        let granted = Scopes::parse("read");
        assert!(ScopeRequirement::all(["read"]).is_met_by(&granted));
        assert!(!ScopeRequirement::all(["read", "write"]).is_met_by(&granted));
        assert!(ScopeRequirement::any(["write", "read"]).is_met_by(&granted));
        assert!(!ScopeRequirement::any(["write", "admin"]).is_met_by(&granted));
    }

    #[test]
    fn an_empty_requirement_is_met_by_any_token() {
        let none = Scopes::default();
        assert!(ScopeRequirement::none().is_met_by(&none));
        assert!(ScopeRequirement::any(Vec::<String>::new()).is_met_by(&none));
    }

    #[test]
    fn scope_matching_is_case_sensitive() {
        assert!(!ScopeRequirement::all(["Read"]).is_met_by(&Scopes::parse("read")));
    }

    #[test]
    fn the_challenge_leaves_out_tokens_that_cannot_be_quoted() {
        let requirement = ScopeRequirement::all(["read", "we\"ird", "write"]);
        assert_eq!(requirement.challenge_scope(), "read write");
    }
}
