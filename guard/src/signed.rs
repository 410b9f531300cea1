//! Signed introspection answers (RFC 9701): asking for them, and believing one only once it is
//! verified against Umbra's JSON Web Key Set.
//!
//! An answer is accepted only when all of these hold; anything else refuses the request
//! (503, like every answer the guard cannot use: the token could not be checked, which says
//! nothing against the client's token, and a 401 would send it to fetch a new one for
//! nothing):
//! - the response is `application/token-introspection+jwt`;
//! - the JWS header says `typ` `token-introspection+jwt` (§5: it keeps an ID token or a JWT
//!   access token from being passed off as an answer), an `alg` Umbra signs with (RS256,
//!   ES256, EdDSA: never `none` or an HMAC, whose "key" a JWKS would publish) and a `kid`;
//! - the key of that `kid` in the JWKS has the type and curve of that `alg`, and the signature
//!   verifies with it;
//! - `aud` names this resource server's client_id (so an answer given to another resource
//!   server cannot be replayed to this one), `iss` is the configured issuer when one is set,
//!   and `iat` is within [`LEEWAY_SECS`] of the local clock either way (an old answer replayed
//!   by whoever sits between the guard and Umbra is refused);
//! - `token_introspection` is an introspection answer, and an active one names, by its `jti`,
//!   the very token asked about: a genuine answer about another token proves nothing here.
//!
//! The key set is fetched from `<umbra>/jwks.json` when first needed and again after
//! [`JWKS_TTL`]; a `kid` it does not hold makes it fetched again (Umbra publishes a new key
//! before it signs with it, but `umbra keys rotate --now` skips that). A key set fetched after
//! the answer arrived is the proof: Umbra publishes a key before anything it signs leaves, so
//! a `kid` absent from such a set is refused. Fetches are made by one request at a time and at
//! least [`REFETCH_INTERVAL`] apart: a request whose answer came after the last fetch started
//! waits for the next one (at most that long) rather than being refused, and every request
//! waiting meanwhile uses that one, so a stream of unknown `kid`s costs Umbra at most one
//! request per interval.
use crate::error::Unavailable;
use crate::introspector::BuildError;
use crate::token::Answer;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use reqwest::header::{self, HeaderValue};
use reqwest::{StatusCode, Url};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

/// What the guard asks for and requires back (RFC 9701 §4, §5).
pub(crate) const MEDIA_TYPE: &str = "application/token-introspection+jwt";
/// The `typ` of an answer; RFC 7515 §4.1.9 lets it carry the `application/` prefix too.
const TYP: &str = "token-introspection+jwt";
/// How far `iat` may be from the local clock, either way.
pub(crate) const LEEWAY_SECS: i64 = 60;
/// How long a fetched key set is used before it is fetched again.
pub(crate) const JWKS_TTL: Duration = Duration::from_secs(300);
/// The shortest time between two fetches of the key set.
pub(crate) const REFETCH_INTERVAL: Duration = Duration::from_secs(1);
/// Largest key set read; Umbra's hold a few keys of under a kilobyte each.
const MAX_JWKS_BYTES: usize = 64 * 1024;
/// Keys beyond this many in a set are ignored.
const MAX_KEYS: usize = 32;

/// Verifies the signed answers of one Umbra for one resource server.
pub(crate) struct SignedAnswers {
    http: reqwest::Client,
    jwks_url: Url,
    audience: String,
    issuer: Option<String>,
    keys: RwLock<Arc<KeySet>>,
    /// Held while the key set is fetched (one fetch at a time): when the last attempt started.
    fetching: tokio::sync::Mutex<Option<Instant>>,
}

/// The keys of the last successful fetch.
#[derive(Default)]
struct KeySet {
    keys: HashMap<String, Arc<VerifyingKey>>,
    fetched_at: Option<Instant>,
}

struct VerifyingKey {
    alg: Algorithm,
    key: DecodingKey,
}

/// The claims of an answer (RFC 9701 §5); `iss` and `aud` are checked by jsonwebtoken.
#[derive(Deserialize)]
struct Claims {
    iat: i64,
    token_introspection: serde_json::Value,
}

impl SignedAnswers {
    /// For answers from `endpoint` (`<umbra>/introspect`), whose key set is at
    /// `<umbra>/jwks.json`, addressed to `audience` (the resource server's client_id).
    pub(crate) fn new(
        http: reqwest::Client,
        endpoint: &Url,
        audience: String,
        issuer: Option<String>,
    ) -> Result<Self, BuildError> {
        let jwks_url = endpoint.join("jwks.json").map_err(|err| BuildError::Url {
            url: endpoint.to_string(),
            reason: err.to_string(),
        })?;
        Ok(Self {
            http,
            jwks_url,
            audience,
            issuer,
            keys: RwLock::new(Arc::new(KeySet::default())),
            fetching: tokio::sync::Mutex::new(None),
        })
    }

    /// The `Accept` header of a request for a signed answer.
    pub(crate) fn accept() -> HeaderValue {
        HeaderValue::from_static(MEDIA_TYPE)
    }

    /// Refuses a response that is not a signed answer, whatever Umbra meant by it.
    pub(crate) fn check_content_type(response: &reqwest::Response) -> Result<(), Unavailable> {
        let content_type = response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default();
        let media_type = content_type.split(';').next().unwrap_or_default().trim();
        if media_type.eq_ignore_ascii_case(MEDIA_TYPE) {
            Ok(())
        } else {
            Err(unverified(format!(
                "the answer is {media_type:?}, not a signed answer ({MEDIA_TYPE}): is the \
                 client registered for them (`umbra client introspection-signing`)?"
            )))
        }
    }

    /// The introspection answer inside `body` about `token`, once every check of the module
    /// documentation has passed.
    pub(crate) async fn verify(
        &self,
        body: &[u8],
        token: &str,
        now: i64,
    ) -> Result<Answer, Unavailable> {
        let received = Instant::now();
        let jwt = std::str::from_utf8(body)
            .map_err(|_| unverified("the answer is not text"))?
            .trim();
        let header = jsonwebtoken::decode_header(jwt).map_err(|err| {
            unverified(format!("the answer is not a JWS Umbra would sign: {err}"))
        })?;
        let typ = header.typ.as_deref().unwrap_or_default();
        if !typ.eq_ignore_ascii_case(TYP) && !typ.eq_ignore_ascii_case(MEDIA_TYPE) {
            return Err(unverified(format!(
                "the answer's typ is {typ:?}, not {TYP:?}"
            )));
        }
        if !matches!(
            header.alg,
            Algorithm::RS256 | Algorithm::ES256 | Algorithm::EdDSA
        ) {
            return Err(unverified(format!(
                "the answer is signed with {:?}, which Umbra never uses",
                header.alg
            )));
        }
        let kid = header
            .kid
            .as_deref()
            .ok_or_else(|| unverified("the answer names no key (kid)"))?;
        let key = self.key(kid, received).await?;
        if key.alg != header.alg {
            return Err(unverified(format!(
                "the answer says {:?} but the key {kid} is for {:?}",
                header.alg, key.alg
            )));
        }
        let mut validation = Validation::new(key.alg);
        validation.validate_exp = false;
        validation.set_required_spec_claims(&["iss", "aud"]);
        validation.set_audience(&[&self.audience]);
        if let Some(issuer) = &self.issuer {
            validation.set_issuer(&[issuer]);
        }
        let claims = jsonwebtoken::decode::<Claims>(jwt, &key.key, &validation)
            .map_err(|err| unverified(format!("the signed answer does not verify: {err}")))?
            .claims;
        if (claims.iat - now).abs() > LEEWAY_SECS {
            return Err(unverified(format!(
                "the signed answer was issued at {}, {} s from the local clock (at most \
                 {LEEWAY_SECS} s)",
                claims.iat,
                claims.iat - now
            )));
        }
        if !claims.token_introspection.is_object() {
            return Err(unverified("token_introspection is not an object"));
        }
        let answer: Answer = serde_json::from_value(claims.token_introspection)
            .map_err(|err| Unavailable::InvalidAnswer(format!("token_introspection: {err}")))?;
        if answer.is_active() && answer.jti() != Some(token_id(token).as_str()) {
            return Err(unverified(
                "the signed answer is about another token (its jti does not name this one)",
            ));
        }
        Ok(answer)
    }

    fn snapshot(&self) -> Arc<KeySet> {
        self.keys.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The key `kid` of an answer `received` at that instant: from the cached set while it is
    /// fresh, else from a set fetched after the answer arrived.
    async fn key(&self, kid: &str, received: Instant) -> Result<Arc<VerifyingKey>, Unavailable> {
        let cached = self.snapshot();
        if cached.is_fresh()
            && let Some(key) = cached.keys.get(kid)
        {
            return Ok(key.clone());
        }
        let mut last_attempt = self.fetching.lock().await;
        // A fetch that started after the answer arrived (another request's, while this one
        // waited for the lock) has already said whether the key is published.
        if last_attempt.is_none_or(|at| at < received) {
            if let Some(at) = *last_attempt {
                tokio::time::sleep(REFETCH_INTERVAL.saturating_sub(at.elapsed())).await;
            }
            *last_attempt = Some(Instant::now());
            match self.fetch().await {
                Ok(keys) => {
                    let fetched = KeySet {
                        keys,
                        fetched_at: Some(Instant::now()),
                    };
                    *self.keys.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(fetched);
                }
                // A key already known keeps verifying while the set cannot be fetched.
                Err(err) if cached.keys.contains_key(kid) => {
                    tracing::warn!(error = %err, "cannot fetch Umbra's JWKS again; using the keys fetched before");
                }
                Err(err) => return Err(err),
            }
        }
        self.snapshot().keys.get(kid).cloned().ok_or_else(|| {
            unverified(format!(
                "the answer is signed by a key ({kid}) that Umbra's JWKS does not publish"
            ))
        })
    }

    async fn fetch(&self) -> Result<HashMap<String, Arc<VerifyingKey>>, Unavailable> {
        let jwks = |reason: String| Unavailable::Jwks(format!("{}: {reason}", self.jwks_url));
        let response = self
            .http
            .get(self.jwks_url.clone())
            .header(header::ACCEPT, "application/jwk-set+json, application/json")
            .send()
            .await
            .map_err(Unavailable::Unreachable)?;
        if response.status() != StatusCode::OK {
            return Err(jwks(format!("HTTP {}", response.status().as_u16())));
        }
        let body = crate::introspector::read_limited(response, MAX_JWKS_BYTES).await?;
        let set: JwkSetDocument =
            serde_json::from_slice(&body).map_err(|err| jwks(format!("not a JWK set: {err}")))?;
        let mut keys = HashMap::new();
        for value in set.keys.into_iter().take(MAX_KEYS) {
            // A key this guard cannot use (another type, an encryption key) is skipped rather
            // than failing the set: the others still verify.
            let Ok(jwk) = serde_json::from_value::<Jwk>(value) else {
                continue;
            };
            if let Some((kid, key)) = verifying_key(&jwk) {
                keys.insert(kid, Arc::new(key));
            }
        }
        tracing::debug!(keys = keys.len(), url = %self.jwks_url, "fetched Umbra's JWKS");
        Ok(keys)
    }
}

impl KeySet {
    fn is_fresh(&self) -> bool {
        self.fetched_at.is_some_and(|at| at.elapsed() < JWKS_TTL)
    }
}

/// `{"keys": [...]}`, each key read on its own.
#[derive(Deserialize)]
struct JwkSetDocument {
    keys: Vec<serde_json::Value>,
}

/// The kid and verifying key of a published signing key whose type fits the one algorithm
/// Umbra uses with it; `None` for anything else (an HMAC "key", a P-384 key, no kid).
fn verifying_key(jwk: &Jwk) -> Option<(String, VerifyingKey)> {
    let kid = jwk.common.key_id.clone()?;
    let alg = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => Algorithm::RS256,
        AlgorithmParameters::EllipticCurve(ec) if ec.curve == EllipticCurve::P256 => {
            Algorithm::ES256
        }
        AlgorithmParameters::OctetKeyPair(okp) if okp.curve == EllipticCurve::Ed25519 => {
            Algorithm::EdDSA
        }
        _ => return None,
    };
    // A key that names its algorithm or its use must name that one, and signing.
    let named_fits = match jwk.common.key_algorithm {
        None => true,
        Some(KeyAlgorithm::RS256) => alg == Algorithm::RS256,
        Some(KeyAlgorithm::ES256) => alg == Algorithm::ES256,
        Some(KeyAlgorithm::EdDSA) => alg == Algorithm::EdDSA,
        Some(_) => false,
    };
    let use_fits = matches!(
        jwk.common.public_key_use,
        None | Some(PublicKeyUse::Signature)
    );
    if !named_fits || !use_fits {
        return None;
    }
    let key = DecodingKey::from_jwk(jwk).ok()?;
    Some((kid, VerifyingKey { alg, key }))
}

/// The `jti` Umbra gives a token in its answers: 128 bits of SHA-256 over a label and the
/// token's own SHA-256, base64url (`TokenHash::public_id` on the server).
fn token_id(token: &str) -> String {
    let hash = Sha256::digest(token.as_bytes());
    let mut hasher = Sha256::new();
    hasher.update(b"umbra token id\0");
    hasher.update(hash);
    URL_SAFE_NO_PAD.encode(&hasher.finalize()[..16])
}

fn unverified(reason: impl Into<String>) -> Unavailable {
    Unavailable::Unverified(reason.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_id_is_the_one_umbra_computes() {
        // Umbra's `TokenHash::public_id` of this token (the guard's tests against the real
        // Umbra check the two agree on every token they introspect).
        assert_eq!(
            token_id("at_AXClCOVzYrN50op_YcppiN_ug206A1d_sTrPpxx8-x4_DasRg"),
            "OQgyydpDZ9WHVnbt9Wkyyw"
        );
    }

    #[test]
    fn the_key_set_is_next_to_the_introspection_endpoint() {
        crate::ensure_tls_provider();
        for (endpoint, jwks) in [
            (
                "http://umbra:8080/introspect",
                "http://umbra:8080/jwks.json",
            ),
            (
                "https://auth.example/tenant/introspect",
                "https://auth.example/tenant/jwks.json",
            ),
        ] {
            let signed = SignedAnswers::new(
                reqwest::Client::new(),
                &Url::parse(endpoint).unwrap(),
                "rs".into(),
                None,
            )
            .unwrap();
            assert_eq!(signed.jwks_url.as_str(), jwks);
        }
    }

    #[test]
    fn only_keys_that_fit_an_algorithm_umbra_signs_with_are_kept() {
        let jwk = |value: serde_json::Value| serde_json::from_value::<Jwk>(value).unwrap();
        let hmac = jwk(serde_json::json!({"kty": "oct", "kid": "h", "k": "c2VjcmV0"}));
        assert!(verifying_key(&hmac).is_none());
        let ed = serde_json::json!({
            "kty": "OKP", "crv": "Ed25519", "kid": "e",
            "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"
        });
        let (kid, key) = verifying_key(&jwk(ed.clone())).unwrap();
        assert_eq!((kid.as_str(), key.alg), ("e", Algorithm::EdDSA));
        let mut no_kid = ed.clone();
        no_kid.as_object_mut().unwrap().remove("kid");
        assert!(verifying_key(&jwk(no_kid)).is_none());
        let mut mislabelled = ed.clone();
        mislabelled["alg"] = "RS256".into();
        assert!(verifying_key(&jwk(mislabelled)).is_none());
        let mut for_encryption = ed;
        for_encryption["use"] = "enc".into();
        assert!(verifying_key(&jwk(for_encryption)).is_none());
    }
}
