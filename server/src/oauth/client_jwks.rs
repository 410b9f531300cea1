//! The public keys of a `private_key_jwt` client (RFC 7523 §2.2, OpenID Connect Core §9): a
//! JWK Set (RFC 7517 §5) registered inline (`jwks`) or published at a URL (`jwks_uri`), and
//! the algorithms its assertions may use.
//!
//! Only public signature keys of the allowlisted algorithms are accepted: a member that
//! belongs to a private or symmetric key (`d`, `p`, `k`, …) refuses the whole set, since
//! whoever published it has leaked the key. A registered set is read strictly (any other key
//! is an error, so that the operator learns of it at once); a set fetched from `jwks_uri` may
//! also hold keys for other purposes (encryption, other algorithms), which are skipped.
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, DecodingKey};
use serde_json::{Map, Value};
use std::fmt;
use std::str::FromStr;

/// Largest JWK Set accepted, registered or fetched.
pub const MAX_JWKS_BYTES: usize = 64 * 1024;
/// Most keys a set may hold: an assertion without `kid` is tried against each fitting key.
pub const MAX_KEYS: usize = 16;
/// Longest `jwks_uri` accepted (the column's width).
pub const MAX_JWKS_URI_LEN: usize = 2048;
/// RSA keys shorter than this are refused (RFC 7518 §3.3: "A key of size 2048 bits or larger
/// MUST be used"); longer than the maximum, they only cost verification time.
const RSA_BITS: std::ops::RangeInclusive<usize> = 2048..=8192;
/// Members that only a private or symmetric key has (RFC 7518 §6.2.2, §6.3.2, §6.4.1).
const PRIVATE_MEMBERS: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/// The algorithms a client assertion may be signed with: asymmetric ones only. `none` proves
/// nothing, and an HMAC would need a secret shared with Umbra, which is what private_key_jwt
/// exists to avoid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AssertionAlg {
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    Rs256,
    /// RSASSA-PSS with SHA-256.
    Ps256,
    /// ECDSA on P-256 with SHA-256.
    Es256,
    /// Ed25519 (RFC 8037).
    EdDsa,
}

impl AssertionAlg {
    pub const ALL: [AssertionAlg; 4] = [Self::Rs256, Self::Ps256, Self::Es256, Self::EdDsa];

    /// The `alg` value of JWS headers and JWKs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Rs256 => "RS256",
            Self::Ps256 => "PS256",
            Self::Es256 => "ES256",
            Self::EdDsa => "EdDSA",
        }
    }

    pub fn jws(self) -> Algorithm {
        match self {
            Self::Rs256 => Algorithm::RS256,
            Self::Ps256 => Algorithm::PS256,
            Self::Es256 => Algorithm::ES256,
            Self::EdDsa => Algorithm::EdDSA,
        }
    }

    /// The kind of key that verifies this algorithm.
    fn key_kind(self) -> KeyKind {
        match self {
            Self::Rs256 | Self::Ps256 => KeyKind::Rsa,
            Self::Es256 => KeyKind::P256,
            Self::EdDsa => KeyKind::Ed25519,
        }
    }

    /// The names, for messages and metadata.
    pub fn names() -> [&'static str; 4] {
        Self::ALL.map(Self::as_str)
    }
}

impl fmt::Display for AssertionAlg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for AssertionAlg {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|alg| alg.as_str() == s)
            .ok_or(())
    }
}

/// What a key is, as far as the algorithms care.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyKind {
    Rsa,
    P256,
    Ed25519,
}

/// One public key of a client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientKey {
    /// The key's `kid`, if it has one.
    pub kid: Option<String>,
    /// The key's `alg`, if it restricts itself to one.
    alg: Option<AssertionAlg>,
    kind: KeyKind,
    jwk: Jwk,
}

impl ClientKey {
    /// Whether this key may verify an assertion signed with `alg`: the right kind of key, and
    /// the same `alg` when the key names one.
    pub fn fits(&self, alg: AssertionAlg) -> bool {
        self.kind == alg.key_kind() && self.alg.is_none_or(|own| own == alg)
    }

    /// The key as jsonwebtoken verifies with it.
    pub fn decoding_key(&self) -> Option<DecodingKey> {
        DecodingKey::from_jwk(&self.jwk).ok()
    }
}

/// A client's public keys, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientJwks {
    keys: Vec<ClientKey>,
}

/// Why a JWK Set is refused. Messages name keys by position and `kid`, never their material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwksError {
    #[error("the JWK Set exceeds {MAX_JWKS_BYTES} bytes")]
    TooLarge,
    #[error("the JWK Set is not a JSON object with a \"keys\" array")]
    NotAJwkSet,
    #[error("the JWK Set holds no usable signature key (RS256, PS256, ES256 or EdDSA)")]
    NoKeys,
    #[error("the JWK Set holds more than {MAX_KEYS} keys")]
    TooManyKeys,
    #[error(
        "key {0} holds private key material ({1:?}): register only the public key (a private \
         key that was published must be considered compromised)"
    )]
    PrivateKey(String, &'static str),
    #[error("key {0}: {1}")]
    Unsupported(String, String),
    #[error("two keys have the kid {0:?}: an assertion could not say which one signed it")]
    DuplicateKid(String),
}

/// How strictly a set is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Registered by an operator: every key must be usable.
    Registered,
    /// Fetched from `jwks_uri`: keys for other uses are skipped.
    Published,
}

impl ClientJwks {
    /// Reads a JWK Set given at registration: every key must be a public signature key of an
    /// allowlisted algorithm, and `kid`s distinct.
    pub fn parse_registered(json: &[u8]) -> Result<Self, JwksError> {
        Self::parse(json, Mode::Registered)
    }

    /// Reads a JWK Set fetched from a client's `jwks_uri`: keys that are not usable for
    /// assertions are skipped, but private key material anywhere refuses the whole set.
    pub fn parse_published(json: &[u8]) -> Result<Self, JwksError> {
        Self::parse(json, Mode::Published)
    }

    fn parse(json: &[u8], mode: Mode) -> Result<Self, JwksError> {
        if json.len() > MAX_JWKS_BYTES {
            return Err(JwksError::TooLarge);
        }
        let set: Value = serde_json::from_slice(json).map_err(|_| JwksError::NotAJwkSet)?;
        let entries = set
            .get("keys")
            .and_then(Value::as_array)
            .ok_or(JwksError::NotAJwkSet)?;
        let mut keys = Vec::new();
        for (index, entry) in entries.iter().enumerate() {
            let object = entry.as_object().ok_or_else(|| {
                JwksError::Unsupported(format!("#{}", index + 1), "is not a JSON object".into())
            })?;
            let name = key_name(index, object);
            if let Some(member) = PRIVATE_MEMBERS.iter().find(|m| object.contains_key(**m)) {
                return Err(JwksError::PrivateKey(name, member));
            }
            match read_key(object) {
                Ok(key) => keys.push(key),
                Err(why) if mode == Mode::Registered => {
                    return Err(JwksError::Unsupported(name, why));
                }
                Err(_) => {}
            }
        }
        if keys.is_empty() {
            return Err(JwksError::NoKeys);
        }
        if keys.len() > MAX_KEYS {
            return Err(JwksError::TooManyKeys);
        }
        if mode == Mode::Registered {
            for (i, key) in keys.iter().enumerate() {
                if let Some(kid) = &key.kid
                    && keys[..i]
                        .iter()
                        .any(|other| other.kid.as_ref() == Some(kid))
                {
                    return Err(JwksError::DuplicateKid(kid.clone()));
                }
            }
        }
        Ok(Self { keys })
    }

    pub fn keys(&self) -> &[ClientKey] {
        &self.keys
    }

    /// Whether any key has this `kid`.
    pub fn has_kid(&self, kid: &str) -> bool {
        self.keys.iter().any(|k| k.kid.as_deref() == Some(kid))
    }

    /// The set as stored and shown: the keys as read, members Umbra does not know dropped.
    pub fn to_json(&self) -> Value {
        serde_json::json!({ "keys": self.keys.iter().map(|k| &k.jwk).collect::<Vec<_>>() })
    }
}

/// How messages name a key: its position, and its `kid` when it has a printable one.
fn key_name(index: usize, object: &Map<String, Value>) -> String {
    let kid = object
        .get("kid")
        .and_then(Value::as_str)
        .filter(|kid| kid.len() <= 64 && kid.chars().all(|c| c.is_ascii_graphic()));
    match kid {
        Some(kid) => format!("#{} ({kid})", index + 1),
        None => format!("#{}", index + 1),
    }
}

/// A public signature key of a supported kind, or why the entry is not one.
fn read_key(object: &Map<String, Value>) -> Result<ClientKey, String> {
    let text = |member: &str| -> Result<Option<&str>, String> {
        match object.get(member) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(format!("\"{member}\" is not a string")),
        }
    };
    if let Some(usage) = text("use")?
        && usage != "sig"
    {
        return Err("its \"use\" is not \"sig\"".into());
    }
    if let Some(ops) = object.get("key_ops") {
        let verifies = ops
            .as_array()
            .is_some_and(|ops| ops.iter().any(|op| op.as_str() == Some("verify")));
        if !verifies {
            return Err("its \"key_ops\" do not include \"verify\"".into());
        }
    }
    let kind = match (text("kty")?, text("crv")?) {
        (Some("RSA"), _) => {
            let bits = rsa_bits(text("n")?.unwrap_or(""));
            if !RSA_BITS.contains(&bits) {
                return Err(format!(
                    "an RSA modulus of {bits} bits (between {} and {} accepted)",
                    RSA_BITS.start(),
                    RSA_BITS.end()
                ));
            }
            if decoded_len(text("e")?.unwrap_or("")).unwrap_or(0) == 0 {
                return Err("an RSA key without a valid \"e\"".into());
            }
            KeyKind::Rsa
        }
        (Some("EC"), Some("P-256")) => {
            for coordinate in ["x", "y"] {
                if decoded_len(text(coordinate)?.unwrap_or("")) != Some(32) {
                    return Err(format!(
                        "a P-256 key whose \"{coordinate}\" is not 32 bytes"
                    ));
                }
            }
            KeyKind::P256
        }
        (Some("OKP"), Some("Ed25519")) => {
            if decoded_len(text("x")?.unwrap_or("")) != Some(32) {
                return Err("an Ed25519 key whose \"x\" is not 32 bytes".into());
            }
            KeyKind::Ed25519
        }
        (Some("EC" | "OKP"), _) => {
            return Err("only the curves P-256 (EC) and Ed25519 (OKP) are supported".into());
        }
        _ => return Err("\"kty\" must be RSA, EC or OKP".into()),
    };
    let alg = match text("alg")? {
        None => None,
        Some(name) => {
            let alg = name.parse::<AssertionAlg>().map_err(|()| {
                format!(
                    "\"alg\" must be one of {} for client assertions",
                    AssertionAlg::names().join(", ")
                )
            })?;
            if alg.key_kind() != kind {
                return Err(format!("its \"alg\" {alg} does not fit its key type"));
            }
            Some(alg)
        }
    };
    let kid = text("kid")?.map(str::to_owned);
    let jwk: Jwk = serde_json::from_value(Value::Object(object.clone()))
        .map_err(|_| "is not a JWK jsonwebtoken can read".to_owned())?;
    DecodingKey::from_jwk(&jwk).map_err(|_| "its key material does not decode".to_owned())?;
    Ok(ClientKey {
        kid,
        alg,
        kind,
        jwk,
    })
}

/// Bytes of a base64url value (RFC 7515 §2: no padding), `None` when it does not decode.
fn decoded_len(value: &str) -> Option<usize> {
    URL_SAFE_NO_PAD.decode(value).ok().map(|bytes| bytes.len())
}

/// The length in bits of a base64url big-endian modulus; 0 when it does not decode.
fn rsa_bits(n: &str) -> usize {
    let Ok(bytes) = URL_SAFE_NO_PAD.decode(n) else {
        return 0;
    };
    let Some(first) = bytes.iter().position(|b| *b != 0) else {
        return 0;
    };
    (bytes.len() - first) * 8 - bytes[first].leading_zeros() as usize
}

/// Where a `private_key_jwt` client's keys are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientKeys {
    /// Registered with the client.
    Inline(ClientJwks),
    /// Fetched, and cached for `client_assertions.jwks_cache_ttl_secs`.
    Uri(String),
}

/// Checks a `jwks_uri` at registration: an absolute https URL without credentials or
/// fragment; plain http only to a loopback host, or anywhere when `allow_insecure` (for
/// development: a production Umbra fetches https only, whatever was registered).
pub fn validate_jwks_uri(uri: &str, allow_insecure: bool) -> Result<(), String> {
    if uri.len() > MAX_JWKS_URI_LEN {
        return Err(format!("is longer than {MAX_JWKS_URI_LEN} characters"));
    }
    let parsed = url::Url::parse(uri).map_err(|e| format!("is not an absolute URL ({e})"))?;
    if parsed.fragment().is_some() || !parsed.username().is_empty() || parsed.password().is_some() {
        return Err("must not carry credentials or a fragment".into());
    }
    let loopback = match parsed.host() {
        Some(url::Host::Domain(domain)) => domain.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => return Err("has no host".into()),
    };
    match parsed.scheme() {
        "https" => Ok(()),
        "http" if loopback || allow_insecure => Ok(()),
        "http" => Err(
            "must use https (plain http only to a loopback host, or anywhere in development \
             with --allow-insecure-jwks-uri)"
                .into(),
        ),
        _ => Err("must be an https URL".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::{SigningAlg, material};

    fn public_jwk(alg: SigningAlg) -> Value {
        serde_json::to_value(material::generate(alg).unwrap().public_jwk).unwrap()
    }

    fn set(keys: Vec<Value>) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({ "keys": keys })).unwrap()
    }

    #[test]
    fn public_keys_of_every_supported_kind_are_accepted() {
        let keys: Vec<Value> = SigningAlg::ALL.into_iter().map(public_jwk).collect();
        let jwks = ClientJwks::parse_registered(&set(keys)).unwrap();
        assert_eq!(jwks.keys().len(), 3);
        assert!(jwks.keys()[0].fits(AssertionAlg::Rs256));
        assert!(
            !jwks.keys()[0].fits(AssertionAlg::Ps256),
            "the key says RS256"
        );
        assert!(jwks.keys()[1].fits(AssertionAlg::Es256));
        assert!(jwks.keys()[2].fits(AssertionAlg::EdDsa));
        assert!(!jwks.keys()[2].fits(AssertionAlg::Es256));
        let round_trip = serde_json::to_vec(&jwks.to_json()).unwrap();
        assert_eq!(ClientJwks::parse_registered(&round_trip).unwrap(), jwks);
    }

    #[test]
    fn an_rsa_key_without_alg_fits_both_rsa_algorithms() {
        let mut key = public_jwk(SigningAlg::Rs256);
        key.as_object_mut().unwrap().remove("alg");
        let jwks = ClientJwks::parse_registered(&set(vec![key])).unwrap();
        assert!(jwks.keys()[0].fits(AssertionAlg::Rs256));
        assert!(jwks.keys()[0].fits(AssertionAlg::Ps256));
        assert!(!jwks.keys()[0].fits(AssertionAlg::Es256));
    }

    #[test]
    fn any_private_member_refuses_the_set_even_when_fetched() {
        for member in PRIVATE_MEMBERS {
            let mut key = public_jwk(SigningAlg::Es256);
            key[member] = Value::String("AAAA".into());
            let json = set(vec![public_jwk(SigningAlg::Rs256), key]);
            for parsed in [
                ClientJwks::parse_registered(&json),
                ClientJwks::parse_published(&json),
            ] {
                match parsed {
                    Err(JwksError::PrivateKey(_, found)) => assert_eq!(found, member),
                    other => panic!("{member}: {other:?}"),
                }
            }
        }
    }

    #[test]
    fn symmetric_encryption_and_unsupported_keys_are_refused_at_registration() {
        let mut enc = public_jwk(SigningAlg::Rs256);
        enc["use"] = "enc".into();
        let mut hs = public_jwk(SigningAlg::Rs256);
        hs["alg"] = "HS256".into();
        let mut mismatched = public_jwk(SigningAlg::Es256);
        mismatched["alg"] = "RS256".into();
        let mut p384 = public_jwk(SigningAlg::Es256);
        p384["crv"] = "P-384".into();
        let mut short_rsa = public_jwk(SigningAlg::Rs256);
        short_rsa["n"] = URL_SAFE_NO_PAD.encode([0xffu8; 128]).into();
        let mut no_verify = public_jwk(SigningAlg::EdDsa);
        no_verify["key_ops"] = serde_json::json!(["encrypt"]);
        for bad in [enc, hs, mismatched, p384, short_rsa, no_verify] {
            let err = ClientJwks::parse_registered(&set(vec![bad.clone()])).unwrap_err();
            assert!(matches!(err, JwksError::Unsupported(..)), "{bad}: {err:?}");
            let fetched = set(vec![bad, public_jwk(SigningAlg::EdDsa)]);
            let published = ClientJwks::parse_published(&fetched).unwrap();
            assert_eq!(published.keys().len(), 1, "the unusable key is skipped");
        }
    }

    #[test]
    fn malformed_empty_oversized_and_ambiguous_sets_are_refused() {
        assert_eq!(
            ClientJwks::parse_registered(b"[]"),
            Err(JwksError::NotAJwkSet)
        );
        assert_eq!(
            ClientJwks::parse_registered(b"not json"),
            Err(JwksError::NotAJwkSet)
        );
        assert_eq!(
            ClientJwks::parse_registered(&set(vec![])),
            Err(JwksError::NoKeys)
        );
        let mut huge = set(vec![public_jwk(SigningAlg::EdDsa)]);
        huge.resize(MAX_JWKS_BYTES + 1, b' ');
        assert_eq!(
            ClientJwks::parse_registered(&huge),
            Err(JwksError::TooLarge)
        );
        let many = (0..=MAX_KEYS)
            .map(|_| public_jwk(SigningAlg::EdDsa))
            .collect();
        assert_eq!(
            ClientJwks::parse_registered(&set(many)),
            Err(JwksError::TooManyKeys)
        );
        let mut a = public_jwk(SigningAlg::EdDsa);
        let mut b = public_jwk(SigningAlg::Es256);
        a["kid"] = "same".into();
        b["kid"] = "same".into();
        assert_eq!(
            ClientJwks::parse_registered(&set(vec![a, b])),
            Err(JwksError::DuplicateKid("same".into()))
        );
    }

    #[test]
    fn a_jwks_uri_is_https_or_loopback_http() {
        for ok in [
            "https://svc.example/jwks.json",
            "http://127.0.0.1:8080/jwks",
            "http://localhost/jwks",
            "http://[::1]:9000/jwks",
        ] {
            assert_eq!(validate_jwks_uri(ok, false), Ok(()), "{ok}");
        }
        for bad in [
            "http://svc.example/jwks",
            "ftp://svc.example/jwks",
            "https://user:pw@svc.example/jwks",
            "https://svc.example/jwks#x",
            "/jwks.json",
        ] {
            assert!(validate_jwks_uri(bad, false).is_err(), "{bad}");
        }
        assert_eq!(validate_jwks_uri("http://svc.example/jwks", true), Ok(()));
    }
}
