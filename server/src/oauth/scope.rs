//! Scopes (RFC 6749 §3.3): "a list of space-delimited, case-sensitive strings", each
//! `scope-token = 1*( %x21 / %x23-5B / %x5D-7E )`.
use std::fmt;

/// An ordered set of scope tokens without duplicates.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScopeSet(Vec<String>);

/// A scope string that breaks the RFC 6749 §3.3 grammar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MalformedScope;

impl ScopeSet {
    /// Parses a space-delimited scope string; repeated tokens are kept once.
    pub fn parse(raw: &str) -> Result<Self, MalformedScope> {
        let mut scopes: Vec<String> = Vec::new();
        for token in raw.split(' ').filter(|t| !t.is_empty()) {
            if !token.bytes().all(is_scope_char) {
                return Err(MalformedScope);
            }
            if !scopes.iter().any(|s| s == token) {
                scopes.push(token.to_owned());
            }
        }
        Ok(Self(scopes))
    }

    /// Builds a set from tokens already known to be valid (e.g. read back from storage).
    pub fn from_stored(stored: &str) -> Self {
        Self::parse(stored).unwrap_or_default()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn contains(&self, scope: &str) -> bool {
        self.0.iter().any(|s| s == scope)
    }

    /// Every scope of `self` is also in `other`.
    pub fn is_subset_of(&self, other: &ScopeSet) -> bool {
        self.0.iter().all(|s| other.contains(s))
    }

    /// Adds the scopes of `other` that are not in `self` yet.
    pub fn extend(&mut self, other: &ScopeSet) {
        for scope in other.iter() {
            if !self.contains(scope) {
                self.0.push(scope.to_owned());
            }
        }
    }

    /// The scopes of `self` that are also in `other`, in `self`'s order.
    pub fn intersection(&self, other: &ScopeSet) -> ScopeSet {
        Self(
            self.0
                .iter()
                .filter(|s| other.contains(s))
                .cloned()
                .collect(),
        )
    }

    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }
}

impl fmt::Display for ScopeSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.join(" "))
    }
}

fn is_scope_char(byte: u8) -> bool {
    matches!(byte, 0x21 | 0x23..=0x5B | 0x5D..=0x7E)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_space_delimited_tokens_without_duplicates() {
        let set = ScopeSet::parse("read  write read").unwrap();
        assert_eq!(set.to_string(), "read write");
    }

    #[test]
    fn refuses_characters_outside_the_rfc_grammar() {
        for bad in ["re\"ad", "a\\b", "tab\there", "é"] {
            assert_eq!(ScopeSet::parse(bad), Err(MalformedScope), "{bad:?}");
        }
    }

    #[test]
    fn subset_is_checked_token_by_token() {
        let allowed = ScopeSet::parse("read write").unwrap();
        assert!(ScopeSet::parse("write").unwrap().is_subset_of(&allowed));
        assert!(
            !ScopeSet::parse("read admin")
                .unwrap()
                .is_subset_of(&allowed)
        );
        assert!(ScopeSet::default().is_subset_of(&allowed));
    }
}
