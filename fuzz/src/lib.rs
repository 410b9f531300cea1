//! What the fuzz targets share: building clients and requests from fuzzer input, and the
//! reference rule for redirect-URI matching that two targets check the server against.
use arbitrary::Arbitrary;
use umbra::oauth::client::Client;
use umbra::oauth::grant_type::GrantType;
use umbra::oauth::params::Params;
use umbra::oauth::scope::ScopeSet;
use umbra::oauth::token::TokenHash;

/// Redirect URIs a fuzzer would take long to invent: loopback with and without a port,
/// IPv6, a private-use scheme, a query, schemes that must never be registered.
pub const URI_POOL: &[&str] = &[
    "https://app.example/cb",
    "https://app.example/cb?x=1",
    "http://127.0.0.1/cb",
    "http://127.0.0.1:8080/cb",
    "http://[::1]:3000/cb",
    "http://[::1]/cb?x=1",
    "http://127.0.0.1:65535",
    "http://localhost/cb",
    "http://app.example/cb",
    "com.example.app:/oauth",
    "javascript:alert(1)",
    "data:text/html,hi",
    "file:///etc/passwd",
];

/// A valid S256 challenge (RFC 7636 Appendix B).
pub const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

/// The reference rule: a requested redirect URI matches a registered one by exact string
/// equality (RFC 6749 §3.1.2.3, RFC 9700 §4.1.3), except that for `http` to a loopback IP
/// literal, `127.0.0.1` or `[::1]`, the port is not compared (RFC 8252 §7.3): with or without
/// one, any port. Scheme, host, path and query still compare exactly; `localhost` is an
/// ordinary host. Written apart from the server's `redirect_uri::matches` on purpose: the
/// targets check that one against this one.
pub fn registered_match(registered: &str, requested: &str) -> bool {
    registered == requested
        || matches!(
            (LoopbackUri::split(registered), LoopbackUri::split(requested)),
            (Some(a), Some(b)) if a == b
        )
}

/// A loopback IP redirect URI without its port.
#[derive(PartialEq, Eq)]
struct LoopbackUri<'a> {
    host: &'a str,
    /// Everything after the authority, starting with `/` or `?` (or empty).
    path_and_query: &'a str,
}

impl<'a> LoopbackUri<'a> {
    /// `http://` + authority + path and query, where the authority is a loopback IP literal
    /// with an optional port: one or more digits, at most 65535. Anything else in the authority
    /// (`@`, `#`, more of a host name) makes it another URI, which only matches exactly.
    fn split(uri: &'a str) -> Option<Self> {
        let rest = uri.strip_prefix("http://")?;
        let (authority, path_and_query) =
            rest.split_at(rest.find(['/', '?']).unwrap_or(rest.len()));
        let (host, port) = match authority.rsplit_once(':') {
            Some((host, port)) if !port.contains(']') => (host, Some(port)),
            _ => (authority, None),
        };
        if host != "127.0.0.1" && host != "[::1]" {
            return None;
        }
        if let Some(port) = port {
            if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            let in_range = port.bytes().try_fold(0u32, |v, b| {
                Some(v * 10 + u32::from(b - b'0')).filter(|v| *v <= 65_535)
            });
            in_range?;
        }
        Some(Self {
            host,
            path_and_query,
        })
    }
}

/// Whether `text` may be an `error_description`: only %x20-21 / %x23-5B / %x5D-7E
/// (RFC 6749 §5.2), so no `"`, `\`, control or non-ASCII character.
pub fn is_error_description(text: &str) -> bool {
    text.bytes()
        .all(|b| (0x20..=0x7e).contains(&b) && b != b'"' && b != b'\\')
}

/// A URI from the pool or from the fuzzer.
#[derive(Debug, Arbitrary)]
pub enum UriChoice {
    Pool(u8),
    Raw(String),
}

impl UriChoice {
    pub fn resolve(&self) -> String {
        match self {
            Self::Pool(i) => URI_POOL[usize::from(*i) % URI_POOL.len()].to_owned(),
            Self::Raw(s) => s.clone(),
        }
    }
}

/// A requested redirect URI: one of the client's, a near miss of one, or anything.
#[derive(Debug, Arbitrary)]
pub enum RequestedUri {
    Registered(u8),
    Near(u8, NearMiss),
    Other(UriChoice),
}

/// Ways a redirect URI can almost match.
#[derive(Debug, Arbitrary)]
pub enum NearMiss {
    Append(String),
    Truncate(u8),
    /// Set or replace the port after the host.
    Port(u16),
    Uppercase,
    Percent,
}

impl RequestedUri {
    pub fn resolve(&self, registered: &[String]) -> String {
        let pick = |i: &u8| match registered.len() {
            0 => URI_POOL[0].to_owned(),
            n => registered[usize::from(*i) % n].clone(),
        };
        match self {
            Self::Registered(i) => pick(i),
            Self::Near(i, miss) => miss.apply(&pick(i)),
            Self::Other(choice) => choice.resolve(),
        }
    }
}

impl NearMiss {
    fn apply(&self, uri: &str) -> String {
        match self {
            Self::Append(s) => format!("{uri}{s}"),
            Self::Truncate(n) => {
                let keep = uri.len().saturating_sub(usize::from(*n % 8) + 1);
                uri.char_indices()
                    .take_while(|(i, _)| *i < keep)
                    .map(|(_, c)| c)
                    .collect()
            }
            Self::Port(port) => with_port(uri, *port),
            Self::Uppercase => uri.to_ascii_uppercase(),
            Self::Percent => uri.replacen('/', "%2F", 1),
        }
    }
}

/// `uri` with its authority's port set to `port` (unchanged when it has no authority).
fn with_port(uri: &str, port: u16) -> String {
    let Some((scheme, rest)) = uri.split_once("://") else {
        return uri.to_owned();
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(end);
    let host = match authority.rfind(':') {
        Some(colon) if !authority[colon..].contains(']') => &authority[..colon],
        _ => authority,
    };
    format!("{scheme}://{host}:{port}{path}")
}

/// A client record from fuzzer input.
#[derive(Debug, Arbitrary)]
pub struct ClientInput {
    pub id: String,
    pub public: bool,
    pub redirect_uris: Vec<UriChoice>,
    /// Bit i set: the client may use `GrantType::ALL[i]`.
    pub grants: u8,
    pub scopes: String,
}

impl ClientInput {
    pub fn build(&self) -> Client {
        Client {
            id: self.id.clone(),
            name: "Fuzzed".to_owned(),
            secret_hash: (!self.public).then(|| TokenHash::of("not a real secret")),
            redirect_uris: self.redirect_uris.iter().map(UriChoice::resolve).collect(),
            grant_types: GrantType::ALL
                .into_iter()
                .enumerate()
                .filter(|(i, _)| self.grants & (1 << i) != 0)
                .map(|(_, g)| g)
                .collect(),
            scopes: ScopeSet::parse(&self.scopes).unwrap_or_default(),
            can_introspect: false,
            skip_consent: false,
            require_2fa: false,
            resources: Default::default(),
            assertion_keys: None,
            introspection_signed_response_alg: None,
            version: 1,
            secret_expires_at: None,
            openid: Default::default(),
        }
    }
}

/// Parses the form encoding of `pairs`, dropping later pairs that repeat a name (the
/// `params` target covers repetition).
pub fn params(pairs: &[(String, String)]) -> Params {
    let mut distinct: Vec<(&str, &str)> = Vec::new();
    for (name, value) in pairs {
        if !distinct.iter().any(|(n, _)| n == name) {
            distinct.push((name, value));
        }
    }
    let encoded = serde_urlencoded::to_string(&distinct).expect("strings always encode");
    Params::parse(encoded.as_bytes()).expect("an encoded map parses")
}
