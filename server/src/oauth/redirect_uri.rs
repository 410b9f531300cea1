//! Redirect URIs: which ones a client may register (RFC 6749 §3.1.2, RFC 8252 §7, RFC 9700
//! §4.1) and how a requested one is compared with them (exact string match, RFC 9700 §4.1.3,
//! with the one exception RFC 8252 §7.3 makes for the port of loopback addresses).
//!
//! Pure functions of strings: the CLI validates with them, `/authorize` and `/token` match
//! with them, and a fuzz target can drive them.

/// Longest redirect URI that may be registered: a request in progress carries it in the
/// session cookie, whose size browsers bound.
pub const MAX_REDIRECT_URI_LEN: usize = 1024;

/// Schemes that run code, read local files or render inline content in a browser; never a
/// redirect target, whatever the development flag says.
const DANGEROUS_SCHEMES: &[&str] = &[
    "javascript",
    "vbscript",
    "data",
    "file",
    "blob",
    "filesystem",
    "about",
    "view-source",
];

/// Loopback IP literals (RFC 8252 §7.3), the only hosts whose port is not compared.
const LOOPBACK_IPS: &[&str] = &["127.0.0.1", "[::1]"];

/// Why a redirect URI cannot be registered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RedirectUriError {
    #[error("is longer than {MAX_REDIRECT_URI_LEN} characters")]
    TooLong,
    #[error("must be printable ASCII without spaces (percent-encode anything else)")]
    InvalidCharacter,
    /// "The redirection endpoint URI MUST be an absolute URI" (RFC 6749 §3.1.2).
    #[error("must be an absolute URI")]
    NotAbsolute,
    /// "The endpoint URI MUST NOT include a fragment component" (RFC 6749 §3.1.2).
    #[error("must not contain a fragment (#)")]
    Fragment,
    #[error("must name a host after //")]
    NoHost,
    /// `https://trusted.example@evil.example/` reads as the first host and goes to the second.
    #[error("must not contain user information (user@host)")]
    UserInfo,
    #[error("has an invalid port")]
    InvalidPort,
    #[error("uses a scheme that runs code or reads local files (javascript:, data:, file: …)")]
    DangerousScheme,
    /// Plain http leaks the code to anyone on the path (RFC 9700 §4.1, RFC 8252 §8.1).
    #[error(
        "plain http is allowed only to a loopback address (127.0.0.1, [::1] or localhost); use \
         https (or, for development only, --allow-insecure-redirect)"
    )]
    InsecureHttp,
    /// "a URI scheme based on a domain name under their control, expressed in reverse order"
    /// (RFC 8252 §7.1).
    #[error(
        "a private-use scheme must be a reverse domain name, such as com.example.app:/callback"
    )]
    NotReverseDomain,
}

/// Checks a redirect URI at registration. Accepted:
/// - `https://host[:port]/…`;
/// - `http://` to a loopback host: `127.0.0.1`, `[::1]` (any port is then accepted at request
///   time, RFC 8252 §7.3) or `localhost` (matched exactly, port included: RFC 8252 §8.3 calls
///   it NOT RECOMMENDED, since the name may not resolve to the loopback interface);
/// - a private-use scheme named after a reverse domain, e.g. `com.example.app:/callback`
///   (RFC 8252 §7.1).
///
/// Refused: fragments, user information, whitespace and non-ASCII, `javascript:`, `data:`,
/// `file:` and their kin, and plain http to any other host unless `allow_insecure_http` (a
/// development setting) is true.
pub fn validate(uri: &str, allow_insecure_http: bool) -> Result<(), RedirectUriError> {
    if uri.len() > MAX_REDIRECT_URI_LEN {
        return Err(RedirectUriError::TooLong);
    }
    if !uri.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(RedirectUriError::InvalidCharacter);
    }
    if uri.contains('#') {
        return Err(RedirectUriError::Fragment);
    }
    let (scheme, rest) = uri.split_once(':').ok_or(RedirectUriError::NotAbsolute)?;
    let scheme_ok = scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c));
    if !scheme_ok || rest.is_empty() {
        return Err(RedirectUriError::NotAbsolute);
    }
    let scheme = scheme.to_ascii_lowercase();
    match scheme.as_str() {
        "https" => host(rest).map(|_| ()),
        "http" => {
            let host = host(rest)?;
            if is_loopback_host(host) || allow_insecure_http {
                Ok(())
            } else {
                Err(RedirectUriError::InsecureHttp)
            }
        }
        s if DANGEROUS_SCHEMES.contains(&s) => Err(RedirectUriError::DangerousScheme),
        s if s.contains('.') && !s.starts_with('.') && !s.ends_with('.') => Ok(()),
        _ => Err(RedirectUriError::NotReverseDomain),
    }
}

/// The host of `//authority/…` (what follows `scheme:`), checked: present, no user
/// information, a numeric port if any.
fn host(hier_part: &str) -> Result<&str, RedirectUriError> {
    let after = hier_part
        .strip_prefix("//")
        .ok_or(RedirectUriError::NoHost)?;
    let end = after.find(['/', '?']).unwrap_or(after.len());
    let authority = &after[..end];
    if authority.contains('@') {
        return Err(RedirectUriError::UserInfo);
    }
    let (host, port) = split_port(authority).ok_or(RedirectUriError::InvalidPort)?;
    if host.is_empty() {
        return Err(RedirectUriError::NoHost);
    }
    if port.is_some_and(|p| p.parse::<u16>().is_err()) {
        return Err(RedirectUriError::InvalidPort);
    }
    Ok(host)
}

/// `host[:port]` split in two; an IPv6 literal keeps its brackets. `None` when what follows
/// the host is neither nothing nor `:port`.
fn split_port(authority: &str) -> Option<(&str, Option<&str>)> {
    let host_end = if authority.starts_with('[') {
        authority.find(']')? + 1
    } else {
        authority.find(':').unwrap_or(authority.len())
    };
    let (host, after) = authority.split_at(host_end);
    match after {
        "" => Some((host, None)),
        _ => {
            let port = after.strip_prefix(':')?;
            (!port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()))
                .then_some((host, Some(port)))
        }
    }
}

fn is_loopback_host(host: &str) -> bool {
    LOOPBACK_IPS.contains(&host) || host.eq_ignore_ascii_case("localhost")
}

/// Whether a redirect URI from a request matches a registered one. Exact string comparison
/// ("The authorization server MUST utilize exact string matching", RFC 9700 §4.1.3), except
/// for `http` to a loopback IP literal, whose port is ignored: "The authorization server MUST
/// allow any port to be specified at the time of the request for loopback IP redirect URIs"
/// (RFC 8252 §7.3). Host, path and query must still be identical.
pub fn matches(registered: &str, requested: &str) -> bool {
    if registered == requested {
        return true;
    }
    match (
        without_loopback_port(registered),
        without_loopback_port(requested),
    ) {
        (Some(a), Some(b)) => a == b,
        _ => false,
    }
}

/// For `http://127.0.0.1[:port]rest` or `http://[::1][:port]rest`: the host and the rest,
/// port left out. `None` for anything else.
fn without_loopback_port(uri: &str) -> Option<(&str, &str)> {
    let after = uri.strip_prefix("http://")?;
    let host = LOOPBACK_IPS.iter().find(|h| after.starts_with(**h))?;
    let after_host = &after[host.len()..];
    let rest = match after_host.strip_prefix(':') {
        Some(port_and_rest) => {
            let digits = port_and_rest.bytes().take_while(u8::is_ascii_digit).count();
            port_and_rest[..digits].parse::<u16>().ok()?;
            &port_and_rest[digits..]
        }
        None => after_host,
    };
    // Anything else after the host (`.evil.example`, `@evil.example`) is another host.
    (rest.is_empty() || rest.starts_with(['/', '?'])).then_some((host, rest))
}

#[cfg(test)]
mod tests {
    use super::*;
    use RedirectUriError as E;

    #[test]
    fn https_loopback_http_and_reverse_domain_schemes_are_accepted() {
        for uri in [
            "https://app.example/cb",
            "https://app.example:8443/cb?x=1",
            "https://[2001:db8::1]/cb",
            "http://127.0.0.1/cb",
            "http://127.0.0.1:8080/cb",
            "http://[::1]/cb",
            "http://[::1]:9000/cb",
            "http://localhost:3000/callback",
            "com.example.app:/oauth",
            "com.example.app://callback",
        ] {
            assert_eq!(validate(uri, false), Ok(()), "{uri}");
        }
    }

    #[test]
    fn script_data_and_file_schemes_are_refused_even_in_development() {
        for uri in [
            "javascript:alert(1)",
            "JavaScript://%0aalert(1)",
            "data:text/html,<script>alert(1)</script>",
            "file:///etc/passwd",
            "vbscript:msgbox",
            "blob:https://app.example/uuid",
        ] {
            assert!(validate(uri, true).is_err(), "{uri}");
        }
        assert_eq!(
            validate("javascript:alert(1)", true),
            Err(E::DangerousScheme)
        );
    }

    #[test]
    fn plain_http_to_other_hosts_needs_the_development_flag() {
        for uri in [
            "http://app.example/cb",
            "http://127.0.0.1.evil.example/cb",
            "http://10.0.0.1/cb",
        ] {
            assert_eq!(validate(uri, false), Err(E::InsecureHttp), "{uri}");
            assert_eq!(validate(uri, true), Ok(()), "{uri}");
        }
    }

    #[test]
    fn malformed_uris_are_refused() {
        assert_eq!(validate("/relative", false), Err(E::NotAbsolute));
        assert_eq!(validate("", false), Err(E::NotAbsolute));
        assert_eq!(validate("1abc:/x", false), Err(E::NotAbsolute));
        assert_eq!(validate("https:", false), Err(E::NotAbsolute));
        assert_eq!(
            validate("https://app.example/cb#frag", false),
            Err(E::Fragment)
        );
        assert_eq!(
            validate("https://app.example/c b", false),
            Err(E::InvalidCharacter)
        );
        assert_eq!(
            validate("https://app.example/é", false),
            Err(E::InvalidCharacter)
        );
        assert_eq!(validate("https:/app.example/cb", false), Err(E::NoHost));
        assert_eq!(validate("https:///cb", false), Err(E::NoHost));
        assert_eq!(
            validate("https://good.example@evil.example/cb", false),
            Err(E::UserInfo)
        );
        assert_eq!(
            validate("https://app.example:99999/", false),
            Err(E::InvalidPort)
        );
        assert_eq!(
            validate("https://app.example:/", false),
            Err(E::InvalidPort)
        );
        assert_eq!(validate("myapp:/cb", false), Err(E::NotReverseDomain));
        assert_eq!(
            validate("com.example.:/cb", false),
            Err(E::NotReverseDomain)
        );
        let long = format!("https://app.example/{}", "a".repeat(MAX_REDIRECT_URI_LEN));
        assert_eq!(validate(&long, false), Err(E::TooLong));
    }

    #[test]
    fn loopback_ip_redirect_uris_match_on_any_port() {
        assert!(matches("http://127.0.0.1/cb", "http://127.0.0.1:51234/cb"));
        assert!(matches("http://127.0.0.1:8080/cb", "http://127.0.0.1:9/cb"));
        assert!(matches("http://127.0.0.1:8080/cb", "http://127.0.0.1/cb"));
        assert!(matches("http://[::1]/cb", "http://[::1]:65535/cb"));
        assert!(matches("http://[::1]/cb?x=1", "http://[::1]:1/cb?x=1"));
    }

    #[test]
    fn everything_else_is_an_exact_string_match() {
        // Host, path and query of a loopback URI still count.
        assert!(!matches("http://127.0.0.1/cb", "http://127.0.0.1:5000/cb2"));
        assert!(!matches("http://127.0.0.1/cb", "http://127.0.0.1:5000/cb/"));
        assert!(!matches("http://127.0.0.1/cb", "http://[::1]:5000/cb"));
        assert!(!matches("http://127.0.0.1/cb", "http://127.0.0.1:99999/cb"));
        assert!(!matches("http://127.0.0.1/cb", "http://127.0.0.1:/cb"));
        assert!(!matches(
            "http://127.0.0.1/cb",
            "http://127.0.0.1.evil.example/cb"
        ));
        assert!(!matches(
            "http://127.0.0.1/cb",
            "http://127.0.0.1:80@evil.example/cb"
        ));
        assert!(!matches("http://127.0.0.1/cb", "https://127.0.0.1:5000/cb"));
        // localhost and every other host: the port is part of the string.
        assert!(!matches("http://localhost/cb", "http://localhost:5000/cb"));
        assert!(!matches(
            "https://app.example/cb",
            "https://app.example:443/cb"
        ));
        assert!(!matches(
            "https://app.example/cb",
            "https://app.example/cb/"
        ));
        assert!(matches("https://app.example/cb", "https://app.example/cb"));
    }
}
