//! Client assertions: `private_key_jwt` client authentication (RFC 7523 §2.2 and §3,
//! RFC 7521 §4.2, OpenID Connect Core §9). The client proves who it is with a JWT it signed
//! with a private key whose public half it registered.
//!
//! What is checked, in order: the size and shape of the compact JWS; an allowlisted asymmetric
//! `alg` (never `none`, never an HMAC); the signature, by a registered key of the right type
//! (chosen by `kid` when the header has one); then the claims: `iss` and `sub` are the
//! client_id, `aud` names this server (its issuer, its token endpoint, or the endpoint
//! called), `exp` is present and not past, `nbf` and `iat` not in the future, the lifetime is
//! short, and a `jti` is present. That the `jti` is used only once is the store's rule: it is
//! recorded last, so that only an assertion that passed everything else can take one.
//!
//! Every refusal is `invalid_client` ("If the client assertion is not valid or has expired,
//! the authorization server constructs an error response as defined in OAuth 2.0 … The value
//! of the "error" parameter MUST be the "invalid_client" error code", RFC 7521 §4.2.1), with a
//! description that names the rule and never repeats the assertion.
use super::client_jwks::{AssertionAlg, ClientJwks};
use super::error::OAuthError;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value};
use std::fmt;

/// `client_assertion_type` of a JWT client assertion (RFC 7523 §2.2).
pub const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// Longest assertion read. A signed assertion is well under 2 KiB (an RSA-4096 signature is
/// 683 characters); this bounds the work an unauthenticated request can cause.
pub const MAX_ASSERTION_BYTES: usize = 8 * 1024;

/// The rules of `[client_assertions]`.
#[derive(Debug, Clone, Copy)]
pub struct AssertionPolicy {
    /// Longest lifetime accepted: `exp - iat`, or `exp - now` without `iat`.
    pub max_lifetime_secs: i64,
    /// How far the client's clock may be from Umbra's.
    pub clock_skew_secs: i64,
}

/// A client assertion whose form is valid, not yet verified.
pub struct Assertion {
    alg: AssertionAlg,
    kid: Option<String>,
    /// `base64url(header) "." base64url(payload)`, what the signature covers.
    signing_input: String,
    /// The signature part, base64url.
    signature: String,
    claims: Claims,
}

impl fmt::Debug for Assertion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A valid assertion is a credential until it is used: show what identifies it only.
        f.debug_struct("Assertion")
            .field("alg", &self.alg)
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

/// The registered claims read from the payload; their presence is checked after the
/// signature.
#[derive(Debug, Default, Clone, PartialEq)]
struct Claims {
    iss: Option<String>,
    sub: Option<String>,
    aud: Vec<String>,
    exp: Option<i64>,
    nbf: Option<i64>,
    iat: Option<i64>,
    jti: Option<String>,
}

/// What an accepted assertion leaves to the store: its `jti`, refused again until
/// `expires_at` (its `exp` plus the clock skew, when it could no longer be accepted anyway).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    pub jti: String,
    pub expires_at: i64,
}

/// Why an assertion was not accepted.
#[derive(Debug)]
pub enum Refusal {
    /// No registered key has the assertion's `kid` (or, without one, fits its `alg`): keys
    /// fetched from a `jwks_uri` may have been rotated since they were cached.
    UnknownKey,
    /// Anything else: the answer to send.
    Invalid(OAuthError),
}

impl From<OAuthError> for Refusal {
    fn from(err: OAuthError) -> Self {
        Self::Invalid(err)
    }
}

fn refused(description: &'static str) -> OAuthError {
    OAuthError::invalid_client(description)
}

fn malformed() -> OAuthError {
    refused("the client_assertion is not a well-formed signed JWT (RFC 7515 compact form)")
}

impl Assertion {
    /// Reads the compact JWS: three base64url parts, a JSON header with an allowlisted `alg`,
    /// a JSON object of claims.
    pub fn parse(raw: &str) -> Result<Self, OAuthError> {
        if raw.len() > MAX_ASSERTION_BYTES {
            return Err(refused("the client_assertion exceeds 8192 bytes"));
        }
        let mut parts = raw.split('.');
        let (Some(header), Some(payload), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(malformed());
        };
        let header = json_object(header)?;
        let alg = match header.get("alg").and_then(Value::as_str) {
            Some(name) => allowed_alg(name)?,
            None => return Err(refused("the client_assertion header has no alg")),
        };
        // RFC 7515 §4.1.11: a recipient that does not understand a critical extension must
        // refuse the JWS; Umbra understands none.
        if header.contains_key("crit") {
            return Err(refused(
                "the client_assertion header names critical extensions (crit), which are not \
                 supported",
            ));
        }
        let kid = match header.get("kid") {
            None => None,
            Some(Value::String(kid)) => Some(kid.clone()),
            Some(_) => return Err(refused("the client_assertion header's kid is not a string")),
        };
        if signature.is_empty() || URL_SAFE_NO_PAD.decode(signature).is_err() {
            return Err(malformed());
        }
        let claims = Claims::read(&json_object(payload)?)?;
        Ok(Self {
            alg,
            kid,
            signing_input: raw[..header_and_payload_len(raw)].to_owned(),
            signature: signature.to_owned(),
            claims,
        })
    }

    /// The client the assertion claims to come from (`sub`, RFC 7523 §3: "For client
    /// authentication, the subject MUST be the "client_id" of the OAuth client"), before
    /// anything is verified.
    pub fn subject(&self) -> Option<&str> {
        self.claims.sub.as_deref()
    }

    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    pub fn alg(&self) -> AssertionAlg {
        self.alg
    }

    /// Verifies the assertion as `client_id`'s with its `keys`, at `now`. `audiences` are the
    /// values `aud` may hold to name this server.
    pub fn verify(
        &self,
        client_id: &str,
        keys: &ClientJwks,
        audiences: &[&str],
        policy: &AssertionPolicy,
        now: i64,
    ) -> Result<Accepted, Refusal> {
        self.verify_signature(keys)?;
        Ok(self.claims.check(client_id, audiences, policy, now)?)
    }

    /// "The JWT MUST be digitally signed or have a Message Authentication Code (MAC) applied
    /// by the issuer. The authorization server MUST reject JWTs with an invalid signature or
    /// MAC" (RFC 7523 §3, item 9).
    fn verify_signature(&self, keys: &ClientJwks) -> Result<(), Refusal> {
        let named: Vec<_> = keys
            .keys()
            .iter()
            .filter(|key| self.kid.is_none() || key.kid == self.kid)
            .collect();
        let fitting: Vec<_> = named.iter().filter(|key| key.fits(self.alg)).collect();
        if fitting.is_empty() {
            return Err(if self.kid.is_some() && !named.is_empty() {
                Refusal::Invalid(refused(
                    "the key with the client_assertion's kid is not of the type its alg needs",
                ))
            } else {
                Refusal::UnknownKey
            });
        }
        let verified = fitting.iter().any(|key| {
            key.decoding_key().is_some_and(|decoding| {
                jsonwebtoken::crypto::verify(
                    &self.signature,
                    self.signing_input.as_bytes(),
                    &decoding,
                    self.alg.jws(),
                )
                .unwrap_or(false)
            })
        });
        if verified {
            Ok(())
        } else {
            Err(Refusal::Invalid(refused(
                "the client_assertion's signature does not verify with the client's registered \
                 keys",
            )))
        }
    }
}

impl Claims {
    /// Reads the registered claims, refusing ones of the wrong JSON type.
    fn read(payload: &Map<String, Value>) -> Result<Self, OAuthError> {
        let text = |name: &'static str| match payload.get(name) {
            None => Ok(None),
            Some(Value::String(value)) => Ok(Some(value.clone())),
            Some(_) => Err(claim_type(name)),
        };
        let time = |name: &'static str| match payload.get(name) {
            None => Ok(None),
            Some(value) => numeric_date(value)
                .map(Some)
                .ok_or_else(|| claim_type(name)),
        };
        let aud = match payload.get("aud") {
            None => Vec::new(),
            Some(Value::String(one)) => vec![one.clone()],
            Some(Value::Array(many)) => many
                .iter()
                .map(|v| v.as_str().map(str::to_owned))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| claim_type("aud"))?,
            Some(_) => return Err(claim_type("aud")),
        };
        Ok(Self {
            iss: text("iss")?,
            sub: text("sub")?,
            aud,
            exp: time("exp")?,
            nbf: time("nbf")?,
            iat: time("iat")?,
            jti: text("jti")?,
        })
    }

    /// RFC 7523 §3 items 1 to 7, with OpenID Connect Core §9's required `jti`.
    fn check(
        &self,
        client_id: &str,
        audiences: &[&str],
        policy: &AssertionPolicy,
        now: i64,
    ) -> Result<Accepted, OAuthError> {
        let skew = policy.clock_skew_secs;
        if self.iss.as_deref() != Some(client_id) || self.sub.as_deref() != Some(client_id) {
            return Err(refused(
                "the client_assertion's iss and sub must both be the client_id",
            ));
        }
        // "The JWT MUST contain an "aud" (audience) claim containing a value that identifies
        // the authorization server as an intended audience."
        if !self.aud.iter().any(|aud| audiences.contains(&aud.as_str())) {
            return Err(refused(
                "the client_assertion's aud must name this server: its issuer identifier, its \
                 token endpoint or the endpoint called",
            ));
        }
        // "The JWT MUST contain an "exp" (expiration time) claim that limits the time window
        // during which the JWT can be used."
        let Some(exp) = self.exp else {
            return Err(refused("the client_assertion has no exp"));
        };
        if now >= exp.saturating_add(skew) {
            return Err(refused("the client_assertion has expired"));
        }
        if self.nbf.is_some_and(|nbf| nbf > now.saturating_add(skew)) {
            return Err(refused("the client_assertion is not valid yet (nbf)"));
        }
        if self.iat.is_some_and(|iat| iat > now.saturating_add(skew)) {
            return Err(refused(
                "the client_assertion was issued in the future (iat)",
            ));
        }
        // "The authorization server MAY reject JWTs with an "exp" claim value that is
        // unreasonably far in the future" (and, item 6, an "iat" unreasonably far in the past).
        let lifetime = match self.iat {
            Some(iat) => exp.saturating_sub(iat),
            None => exp.saturating_sub(now).saturating_sub(skew),
        };
        if lifetime > policy.max_lifetime_secs {
            return Err(OAuthError::invalid_client(format!(
                "the client_assertion lives longer than {} seconds (exp - iat)",
                policy.max_lifetime_secs
            )));
        }
        // OpenID Connect Core §9: "jti REQUIRED. JWT ID. A unique identifier for the token,
        // which can be used to prevent reuse of the token. These tokens MUST only be used
        // once".
        let Some(jti) = self.jti.clone().filter(|jti| !jti.is_empty()) else {
            return Err(refused("the client_assertion has no jti"));
        };
        Ok(Accepted {
            jti,
            expires_at: exp.saturating_add(skew),
        })
    }
}

/// The allowlisted algorithm named `name`, or why it is refused.
fn allowed_alg(name: &str) -> Result<AssertionAlg, OAuthError> {
    if let Ok(alg) = name.parse() {
        return Ok(alg);
    }
    Err(match name {
        "none" => refused(
            "the client_assertion is not signed (alg none): sign it with RS256, PS256, ES256 or \
             EdDSA",
        ),
        "HS256" | "HS384" | "HS512" => refused(
            "HMAC algorithms are not accepted for private_key_jwt: sign the client_assertion \
             with RS256, PS256, ES256 or EdDSA",
        ),
        _ => refused(
            "the client_assertion's alg is not supported: sign it with RS256, PS256, ES256 or \
             EdDSA",
        ),
    })
}

/// A base64url part that decodes to a JSON object.
fn json_object(part: &str) -> Result<Map<String, Value>, OAuthError> {
    let bytes = URL_SAFE_NO_PAD.decode(part).map_err(|_| malformed())?;
    match serde_json::from_slice(&bytes) {
        Ok(Value::Object(object)) => Ok(object),
        _ => Err(malformed()),
    }
}

/// A NumericDate (RFC 7519 §2): seconds, possibly fractional; the fraction is dropped.
fn numeric_date(value: &Value) -> Option<i64> {
    if let Some(seconds) = value.as_i64() {
        return Some(seconds);
    }
    let seconds = value.as_f64()?.floor();
    // Beyond these, a float no longer converts exactly (and no real date lies there).
    (seconds.is_finite() && seconds.abs() < 9.0e15).then_some(seconds as i64)
}

fn claim_type(name: &'static str) -> OAuthError {
    OAuthError::invalid_client(format!(
        "the client_assertion's {name} claim has the wrong JSON type"
    ))
}

/// The length of `header.payload` in a string of three dot-separated parts.
fn header_and_payload_len(raw: &str) -> usize {
    raw.rfind('.').unwrap_or(raw.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::{SigningAlg, material};
    use crate::oauth::ErrorCode;
    use jsonwebtoken::{EncodingKey, Header};

    const NOW: i64 = 1_800_000_000;
    const ISSUER: &str = "https://auth.example";
    const POLICY: AssertionPolicy = AssertionPolicy {
        max_lifetime_secs: 300,
        clock_skew_secs: 30,
    };

    struct Signer {
        alg: SigningAlg,
        key: EncodingKey,
        kid: String,
        jwks: ClientJwks,
    }

    impl Signer {
        fn new(alg: SigningAlg) -> Self {
            let generated = material::generate(alg).unwrap();
            let set = serde_json::json!({ "keys": [generated.public_jwk] });
            Self {
                alg,
                key: material::encoding_key(alg, &generated.pkcs8).unwrap(),
                kid: generated.kid,
                jwks: ClientJwks::parse_registered(&serde_json::to_vec(&set).unwrap()).unwrap(),
            }
        }

        fn sign(&self, claims: &Value) -> String {
            let mut header = Header::new(self.alg.jws());
            header.kid = Some(self.kid.clone());
            jsonwebtoken::encode(&header, claims, &self.key).unwrap()
        }
    }

    fn claims() -> Value {
        serde_json::json!({
            "iss": "svc", "sub": "svc", "aud": ISSUER,
            "iat": NOW, "exp": NOW + 60, "jti": "j-1",
        })
    }

    fn verify(signer: &Signer, jwt: &str) -> Result<Accepted, Refusal> {
        let token_endpoint = format!("{ISSUER}/token");
        Assertion::parse(jwt).map_err(Refusal::Invalid)?.verify(
            "svc",
            &signer.jwks,
            &[ISSUER, &token_endpoint],
            &POLICY,
            NOW,
        )
    }

    fn refusal(result: Result<Accepted, Refusal>) -> String {
        match result {
            Err(Refusal::Invalid(err)) => {
                assert_eq!(err.code(), ErrorCode::InvalidClient);
                assert_eq!(err.status(), 401);
                err.description().to_owned()
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn a_valid_assertion_of_each_algorithm_is_accepted_with_its_jti() {
        for alg in SigningAlg::ALL {
            let signer = Signer::new(alg);
            let accepted = verify(&signer, &signer.sign(&claims())).unwrap();
            assert_eq!(
                accepted,
                Accepted {
                    jti: "j-1".into(),
                    expires_at: NOW + 90
                },
                "{alg}"
            );
        }
    }

    #[test]
    fn the_token_endpoint_and_an_audience_list_are_accepted() {
        let signer = Signer::new(SigningAlg::Es256);
        let mut claims = claims();
        claims["aud"] = serde_json::json!(["https://other.example", format!("{ISSUER}/token")]);
        assert!(verify(&signer, &signer.sign(&claims)).is_ok());
    }

    #[test]
    fn each_broken_claim_is_refused_with_its_reason() {
        let signer = Signer::new(SigningAlg::EdDsa);
        let cases: [(&str, Value, &str); 11] = [
            ("exp", (NOW - 31).into(), "expired"),
            ("nbf", (NOW + 31).into(), "not valid yet"),
            ("iat", (NOW + 31).into(), "in the future"),
            ("aud", "https://evil.example".into(), "aud"),
            ("aud", serde_json::json!([]), "aud"),
            ("iss", "other".into(), "iss and sub"),
            ("sub", "other".into(), "iss and sub"),
            ("jti", Value::Null, "wrong JSON type"),
            ("jti", "".into(), "no jti"),
            ("exp", "soon".into(), "wrong JSON type"),
            ("aud", serde_json::json!([1]), "wrong JSON type"),
        ];
        for (claim, value, reason) in cases {
            let mut claims = claims();
            claims[claim] = value.clone();
            let description = refusal(verify(&signer, &signer.sign(&claims)));
            assert!(
                description.contains(reason),
                "{claim}={value}: {description}"
            );
        }
        for claim in ["exp", "jti", "iss"] {
            let mut claims = claims();
            claims.as_object_mut().unwrap().remove(claim);
            refusal(verify(&signer, &signer.sign(&claims)));
        }
    }

    #[test]
    fn a_long_lifetime_is_refused_with_or_without_iat() {
        let signer = Signer::new(SigningAlg::Es256);
        let mut claims = claims();
        claims["exp"] = (NOW + 301).into();
        assert!(refusal(verify(&signer, &signer.sign(&claims))).contains("longer than 300"));
        claims.as_object_mut().unwrap().remove("iat");
        assert!(
            verify(&signer, &signer.sign(&claims)).is_ok(),
            "exp - now within the lifetime and the skew"
        );
        claims["exp"] = (NOW + 400).into();
        refusal(verify(&signer, &signer.sign(&claims)));
        let mut old = self::claims();
        old["iat"] = (NOW - 400).into();
        assert!(refusal(verify(&signer, &signer.sign(&old))).contains("longer"));
    }

    #[test]
    fn another_clients_key_does_not_verify() {
        let signer = Signer::new(SigningAlg::Es256);
        let other = Signer::new(SigningAlg::Es256);
        let mut header = Header::new(jsonwebtoken::Algorithm::ES256);
        header.kid = Some(signer.kid.clone());
        let forged = jsonwebtoken::encode(&header, &claims(), &other.key).unwrap();
        assert!(refusal(verify(&signer, &forged)).contains("signature"));
    }

    #[test]
    fn an_unknown_kid_asks_for_fresh_keys() {
        let signer = Signer::new(SigningAlg::Rs256);
        let other = Signer::new(SigningAlg::Rs256);
        let result = verify(&signer, &other.sign(&claims()));
        assert!(matches!(result, Err(Refusal::UnknownKey)), "{result:?}");
    }

    #[test]
    fn a_key_of_the_wrong_type_for_the_alg_is_refused() {
        let rsa = Signer::new(SigningAlg::Rs256);
        let ec = Signer::new(SigningAlg::Es256);
        let mut header = Header::new(jsonwebtoken::Algorithm::ES256);
        header.kid = Some(rsa.kid.clone());
        let jwt = jsonwebtoken::encode(&header, &claims(), &ec.key).unwrap();
        assert!(refusal(verify(&rsa, &jwt)).contains("type"));
    }

    #[test]
    fn without_kid_every_fitting_key_is_tried() {
        let signer = Signer::new(SigningAlg::EdDsa);
        let header = Header::new(jsonwebtoken::Algorithm::EdDSA);
        let jwt = jsonwebtoken::encode(&header, &claims(), &signer.key).unwrap();
        assert!(verify(&signer, &jwt).is_ok());
    }

    #[test]
    fn unsigned_hmac_and_unknown_algorithms_are_refused_before_any_key_is_used() {
        let b64 = |v: &Value| URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap());
        let payload = b64(&claims());
        for (alg, reason) in [
            ("none", "alg none"),
            ("HS256", "HMAC"),
            ("RS512", "not supported"),
        ] {
            let header = b64(&serde_json::json!({ "alg": alg }));
            let err = Assertion::parse(&format!("{header}.{payload}.c2ln")).unwrap_err();
            assert_eq!(err.code(), ErrorCode::InvalidClient);
            assert!(err.description().contains(reason), "{alg}: {err:?}");
        }
        let unsigned = format!("{}.{payload}.", b64(&serde_json::json!({"alg": "ES256"})));
        assert!(Assertion::parse(&unsigned).is_err());
        let critical = b64(&serde_json::json!({"alg": "ES256", "crit": ["exp"]}));
        assert!(Assertion::parse(&format!("{critical}.{payload}.c2ln")).is_err());
    }

    #[test]
    fn malformed_and_oversized_assertions_are_invalid_client() {
        let b64 = |s: &str| URL_SAFE_NO_PAD.encode(s);
        let header = b64(r#"{"alg":"ES256"}"#);
        for raw in [
            String::new(),
            "a.b".into(),
            "a.b.c.d".into(),
            format!("{header}.!!!.c2ln"),
            format!("{}.{}.c2ln", b64("not json"), b64("{}")),
            format!("{header}.{}.c2ln", b64("[1,2]")),
            format!("{header}.{}.c2ln", b64("{}}")),
            format!("{header}.{}.***", b64("{}")),
            "x".repeat(MAX_ASSERTION_BYTES + 1),
        ] {
            let err = Assertion::parse(&raw).unwrap_err();
            assert_eq!(err.code(), ErrorCode::InvalidClient, "{raw:.40}");
        }
    }

    #[test]
    fn the_debug_output_does_not_show_the_assertion() {
        let signer = Signer::new(SigningAlg::Es256);
        let jwt = signer.sign(&claims());
        let shown = format!("{:?}", Assertion::parse(&jwt).unwrap());
        let signature = jwt.rsplit('.').next().unwrap();
        assert!(
            !shown.contains(signature) && !shown.contains("j-1"),
            "{shown}"
        );
    }

    #[test]
    fn fractional_numeric_dates_are_read() {
        assert_eq!(numeric_date(&serde_json::json!(12.7)), Some(12));
        assert_eq!(numeric_date(&serde_json::json!(1e300)), None);
        assert_eq!(numeric_date(&serde_json::json!("12")), None);
    }
}
