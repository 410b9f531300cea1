//! How the introspector authenticates to Umbra: with its client secret (HTTP Basic), or with
//! a private key (`private_key_jwt`, RFC 7523 §2.2, OpenID Connect Core §9).
//!
//! With a key, every introspection call carries a fresh client assertion: a JWT whose `iss`
//! and `sub` are the client id, whose `aud` is the introspection endpoint, with a new `jti`
//! (Umbra accepts each once) and a one-minute lifetime. Umbra holds only the public key, so
//! there is no shared secret to leak from either side.
use crate::clock;
use crate::error::Unavailable;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::RequestBuilder;
use reqwest::header::{self, HeaderValue};
use std::fmt;

/// `client_assertion_type` of a JWT client assertion (RFC 7523 §2.2).
const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// How long an assertion is valid: long enough for one call and any clock skew Umbra allows,
/// far below its `client_assertions.max_lifetime_secs`.
const LIFETIME_SECS: i64 = 60;

/// The algorithms Umbra accepts for client assertions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum AssertionAlgorithm {
    /// RSASSA-PKCS1-v1_5 with SHA-256 (an RSA key of at least 2048 bits).
    Rs256,
    /// RSASSA-PSS with SHA-256 (an RSA key of at least 2048 bits).
    Ps256,
    /// ECDSA on P-256 with SHA-256.
    Es256,
    /// Ed25519.
    EdDsa,
}

impl AssertionAlgorithm {
    fn jws(self) -> Algorithm {
        match self {
            Self::Rs256 => Algorithm::RS256,
            Self::Ps256 => Algorithm::PS256,
            Self::Es256 => Algorithm::ES256,
            Self::EdDsa => Algorithm::EdDSA,
        }
    }
}

/// Why a private key cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    #[error(
        "not a PKCS#8 PEM private key (\"-----BEGIN PRIVATE KEY-----\"; convert others with \
         `openssl pkcs8 -topk8 -nocrypt`)"
    )]
    NotPem,
    #[error("the key is not a PKCS#8 private key")]
    NotPkcs8,
    #[error(
        "the key is not of the type {0:?} needs (RSA for RS256/PS256, P-256 for ES256, Ed25519 for EdDSA)"
    )]
    WrongType(AssertionAlgorithm),
}

/// The private key of a `private_key_jwt` client, with the algorithm and `kid` it signs with.
/// Its public half is registered with Umbra (`umbra client create … --auth-method
/// private_key_jwt --jwks …`).
#[derive(Clone)]
pub struct AssertionKey {
    key: EncodingKey,
    alg: AssertionAlgorithm,
    kid: Option<String>,
}

impl fmt::Debug for AssertionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AssertionKey")
            .field("alg", &self.alg)
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

/// Object identifiers of the key algorithms in a PKCS#8 document.
const RSA_ENCRYPTION: pkcs8::ObjectIdentifier =
    pkcs8::ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
const EC_PUBLIC_KEY: pkcs8::ObjectIdentifier =
    pkcs8::ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const P256: pkcs8::ObjectIdentifier = pkcs8::ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
const ED25519: pkcs8::ObjectIdentifier = pkcs8::ObjectIdentifier::new_unwrap("1.3.101.112");

impl AssertionKey {
    /// A key from a PKCS#8 PEM document (`-----BEGIN PRIVATE KEY-----`).
    pub fn from_pkcs8_pem(pem: &str, alg: AssertionAlgorithm) -> Result<Self, KeyError> {
        let body: String = pem
            .trim()
            .strip_prefix("-----BEGIN PRIVATE KEY-----")
            .and_then(|rest| rest.trim_end().strip_suffix("-----END PRIVATE KEY-----"))
            .ok_or(KeyError::NotPem)?
            .split_whitespace()
            .collect();
        let der = STANDARD.decode(body).map_err(|_| KeyError::NotPem)?;
        Self::from_pkcs8_der(&der, alg)
    }

    /// A key from a PKCS#8 DER document.
    pub fn from_pkcs8_der(der: &[u8], alg: AssertionAlgorithm) -> Result<Self, KeyError> {
        let info = pkcs8::PrivateKeyInfo::try_from(der).map_err(|_| KeyError::NotPkcs8)?;
        let oid = info.algorithm.oid;
        let curve = info.algorithm.parameters_oid().ok();
        let key = match alg {
            // jsonwebtoken reads RSA keys as PKCS#1, the RSAPrivateKey inside the document.
            AssertionAlgorithm::Rs256 | AssertionAlgorithm::Ps256 if oid == RSA_ENCRYPTION => {
                EncodingKey::from_rsa_der(info.private_key)
            }
            AssertionAlgorithm::Es256 if oid == EC_PUBLIC_KEY && curve == Some(P256) => {
                EncodingKey::from_ec_der(der)
            }
            AssertionAlgorithm::EdDsa if oid == ED25519 => EncodingKey::from_ed_der(der),
            _ => return Err(KeyError::WrongType(alg)),
        };
        // A key that does not sign fails here, at start-up, not at the first request.
        jsonwebtoken::crypto::sign(b"probe", &key, alg.jws())
            .map_err(|_| KeyError::WrongType(alg))?;
        Ok(Self {
            key,
            alg,
            kid: None,
        })
    }

    /// The `kid` of the registered public key, sent in each assertion's header so that Umbra
    /// picks that key (and, for keys at a `jwks_uri`, fetches them again after a rotation).
    pub fn with_kid(mut self, kid: impl Into<String>) -> Self {
        self.kid = Some(kid.into());
        self
    }
}

/// The introspector's credentials, attached to each call.
pub(crate) enum Credentials {
    /// `Authorization: Basic …`, built once, marked sensitive.
    Basic(HeaderValue),
    /// A new client assertion per call.
    PrivateKeyJwt {
        key: AssertionKey,
        client_id: String,
        /// The introspection endpoint: the assertion's audience.
        audience: String,
    },
}

#[derive(serde::Serialize)]
struct Claims<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: &'a str,
    iat: i64,
    exp: i64,
    jti: String,
}

impl Credentials {
    /// `request` with the credentials and the form `params`.
    pub(crate) fn attach(
        &self,
        request: RequestBuilder,
        params: &[(&str, &str)],
    ) -> Result<RequestBuilder, Unavailable> {
        match self {
            Self::Basic(authorization) => Ok(request
                .header(header::AUTHORIZATION, authorization.clone())
                .form(params)),
            Self::PrivateKeyJwt {
                key,
                client_id,
                audience,
            } => {
                let assertion = sign(key, client_id, audience, clock::now())?;
                let mut form = params.to_vec();
                form.push(("client_assertion_type", ASSERTION_TYPE));
                form.push(("client_assertion", &assertion));
                Ok(request.form(&form))
            }
        }
    }
}

/// A client assertion of `client_id` for `audience`, issued at `now`.
fn sign(
    key: &AssertionKey,
    client_id: &str,
    audience: &str,
    now: i64,
) -> Result<String, Unavailable> {
    let mut header = Header::new(key.alg.jws());
    header.kid = key.kid.clone();
    let claims = Claims {
        iss: client_id,
        sub: client_id,
        aud: audience,
        iat: now,
        exp: now + LIFETIME_SECS,
        jti: uuid::Uuid::new_v4().to_string(),
    };
    jsonwebtoken::encode(&header, &claims, &key.key)
        .map_err(|err| Unavailable::Assertion(err.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    /// A P-256 key in PKCS#8, generated as Umbra generates its own.
    fn p256_pkcs8() -> Vec<u8> {
        use umbra::keys::{SigningAlg, material};
        material::generate(SigningAlg::Es256).unwrap().pkcs8
    }

    fn pem(der: &[u8]) -> String {
        let body = STANDARD.encode(der);
        let lines: Vec<&str> = body
            .as_bytes()
            .chunks(64)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect();
        format!(
            "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
            lines.join("\n")
        )
    }

    #[test]
    fn each_assertion_has_the_client_the_endpoint_and_a_fresh_jti() {
        let key = AssertionKey::from_pkcs8_pem(&pem(&p256_pkcs8()), AssertionAlgorithm::Es256)
            .unwrap()
            .with_kid("k1");
        let first = sign(&key, "rs", "http://umbra/introspect", 1_000).unwrap();
        let second = sign(&key, "rs", "http://umbra/introspect", 1_000).unwrap();

        let part = |jwt: &str, i: usize| -> serde_json::Value {
            let raw = URL_SAFE_NO_PAD
                .decode(jwt.split('.').nth(i).unwrap())
                .unwrap();
            serde_json::from_slice(&raw).unwrap()
        };
        assert_eq!(part(&first, 0)["alg"], "ES256");
        assert_eq!(part(&first, 0)["kid"], "k1");
        let claims = part(&first, 1);
        assert_eq!(claims["iss"], "rs");
        assert_eq!(claims["sub"], "rs");
        assert_eq!(claims["aud"], "http://umbra/introspect");
        assert_eq!(claims["exp"], 1_060);
        assert_ne!(claims["jti"], part(&second, 1)["jti"]);
    }

    #[test]
    fn a_key_of_another_type_or_not_pkcs8_is_refused() {
        let der = p256_pkcs8();
        assert!(matches!(
            AssertionKey::from_pkcs8_der(&der, AssertionAlgorithm::Rs256),
            Err(KeyError::WrongType(_))
        ));
        assert!(matches!(
            AssertionKey::from_pkcs8_der(&der, AssertionAlgorithm::EdDsa),
            Err(KeyError::WrongType(_))
        ));
        assert!(matches!(
            AssertionKey::from_pkcs8_der(b"junk", AssertionAlgorithm::Es256),
            Err(KeyError::NotPkcs8)
        ));
        assert!(matches!(
            AssertionKey::from_pkcs8_pem(
                "-----BEGIN RSA PRIVATE KEY-----",
                AssertionAlgorithm::Rs256
            ),
            Err(KeyError::NotPem)
        ));
    }

    #[test]
    fn the_debug_output_shows_no_key_material() {
        let key = AssertionKey::from_pkcs8_der(&p256_pkcs8(), AssertionAlgorithm::Es256).unwrap();
        let shown = format!("{key:?}");
        assert!(
            shown.contains("Es256") && !shown.contains("key:"),
            "{shown}"
        );
    }
}
