//! OpenID Connect Core 1.0 for the authorization code flow: the ID token (§2) and its
//! `at_hash` (§3.1.3.6), how a sign-in is described (`auth_time`, `amr`, `acr`, `sid`),
//! `max_age` (§3.1.2.1), the claims each scope releases at the UserInfo endpoint (§5.3, §5.4),
//! and reading an `id_token_hint` back (RP-Initiated Logout 1.0 §2).
//!
//! `acr` values: `"1"` for a sign-in with a password alone, `"2"` with a second factor too.
//! `amr` values (RFC 8176): `pwd` always; with a second factor `otp` (an authenticator code, a
//! code sent by e-mail or SMS, or a recovery code), `sms` as well for a code sent by SMS, and
//! `mfa`.
use super::scope::ScopeSet;
use crate::auth::factor::{FactorKind, Proof};
use crate::keys::SigningAlg;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256, Sha512};

/// The scope that makes an authorization request an OpenID Connect authentication request.
pub const OPENID: &str = "openid";
/// Releases `name` and `preferred_username` (§5.4).
pub const PROFILE: &str = "profile";
/// Releases `email` and `email_verified` (§5.4).
pub const EMAIL: &str = "email";
/// The OpenID Connect scopes Umbra knows. They are about the user, not about an API, so a
/// client allowed them may ask for them beside the scopes of any resource (RFC 8707).
pub const SCOPES: [&str; 3] = [OPENID, PROFILE, EMAIL];

/// `acr` of a sign-in with a password alone.
pub const ACR_PASSWORD: &str = "1";
/// `acr` of a sign-in with a password and a second factor.
pub const ACR_SECOND_FACTOR: &str = "2";
/// Every `acr` Umbra issues, for discovery.
pub const ACR_VALUES: [&str; 2] = [ACR_PASSWORD, ACR_SECOND_FACTOR];

/// Longest `nonce` accepted: the request travels in the session cookie, and the value is
/// stored with the grant.
pub const MAX_NONCE_LEN: usize = 512;

/// Whether `scope` is one of the OpenID Connect scopes.
pub fn is_oidc_scope(scope: &str) -> bool {
    SCOPES.contains(&scope)
}

/// The OpenID Connect scopes of `scopes`.
pub fn oidc_scopes(scopes: &ScopeSet) -> ScopeSet {
    ScopeSet::from_stored(
        &scopes
            .iter()
            .filter(|s| is_oidc_scope(s))
            .collect::<Vec<_>>()
            .join(" "),
    )
}

/// What the ID tokens of a grant say about the sign-in that approved it. Kept with the grant,
/// so that an ID token issued at a refresh repeats the original `auth_time`, `amr`, `acr`,
/// `sid` and `nonce` (§12.2). Fields are empty for grants from before OpenID Connect.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Authentication {
    /// When the person signed in (seconds since the epoch).
    pub auth_time: Option<i64>,
    pub amr: Vec<String>,
    pub acr: Option<String>,
    /// The browser session that signed in.
    pub sid: Option<String>,
    /// The `nonce` of the authentication request.
    pub nonce: Option<String>,
}

impl Authentication {
    /// A sign-in at `auth_time` in browser session `sid`, with `second_factor` if one was
    /// proved, for a request that sent `nonce`.
    pub fn of_sign_in(
        auth_time: i64,
        second_factor: Option<Proof>,
        sid: Option<String>,
        nonce: Option<String>,
    ) -> Self {
        Self {
            auth_time: Some(auth_time),
            amr: amr(second_factor).into_iter().map(str::to_owned).collect(),
            acr: Some(acr(second_factor).to_owned()),
            sid,
            nonce,
        }
    }
}

/// The authentication methods (RFC 8176) of a sign-in with a password and `second_factor`.
pub fn amr(second_factor: Option<Proof>) -> Vec<&'static str> {
    match second_factor {
        None => vec!["pwd"],
        Some(Proof::Factor(FactorKind::Sms)) => vec!["pwd", "otp", "sms", "mfa"],
        Some(_) => vec!["pwd", "otp", "mfa"],
    }
}

/// The authentication context class of a sign-in with `second_factor`.
pub fn acr(second_factor: Option<Proof>) -> &'static str {
    match second_factor {
        None => ACR_PASSWORD,
        Some(_) => ACR_SECOND_FACTOR,
    }
}

/// Whether a sign-in at `auth_time` is too old for `max_age` at `now`: "If the elapsed time is
/// greater than this value, the OP MUST attempt to actively re-authenticate the End-User", and
/// `max_age=0` is equivalent to `prompt=login` (§3.1.2.1).
pub fn sign_in_too_old(max_age: Option<i64>, auth_time: i64, now: i64) -> bool {
    match max_age {
        None => false,
        Some(0) => true,
        Some(max_age) => now.saturating_sub(auth_time) > max_age,
    }
}

/// The claims of an ID token (§2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdTokenClaims {
    pub iss: String,
    /// The user's id: stable, never reassigned (`public` subject type).
    pub sub: String,
    /// The client id.
    pub aud: String,
    pub exp: i64,
    pub iat: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth_time: Option<i64>,
    /// "If present in the Authentication Request, Authorization Servers MUST include a nonce
    /// Claim in the ID Token with the Claim Value being the nonce value sent."
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub amr: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub acr: Option<String>,
    /// The hash of the access token issued with the ID token (§3.1.3.6).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub at_hash: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
}

/// What goes into one ID token besides the grant's [`Authentication`].
#[derive(Debug, Clone, Copy)]
pub struct IdTokenFor<'a> {
    pub issuer: &'a str,
    pub user_id: &'a str,
    pub client_id: &'a str,
    /// The access token of the same response.
    pub access_token: &'a str,
    pub alg: SigningAlg,
    pub now: i64,
    /// `tokens.id_token_ttl_secs`.
    pub ttl_secs: i64,
}

impl IdTokenClaims {
    /// The claims of an ID token issued with `request.access_token` for a grant whose sign-in
    /// is `auth`.
    pub fn new(request: &IdTokenFor<'_>, auth: &Authentication) -> Self {
        Self {
            iss: request.issuer.to_owned(),
            sub: request.user_id.to_owned(),
            aud: request.client_id.to_owned(),
            exp: request.now + request.ttl_secs,
            iat: request.now,
            auth_time: auth.auth_time,
            nonce: auth.nonce.clone(),
            amr: auth.amr.clone(),
            acr: auth.acr.clone(),
            at_hash: Some(at_hash(request.alg, request.access_token)),
            sid: auth.sid.clone(),
        }
    }
}

/// `at_hash` (§3.1.3.6): "the base64url encoding of the left-most half of the hash of the
/// octets of the ASCII representation of the access_token value, where the hash algorithm
/// used is the hash algorithm used in the alg Header Parameter of the ID Token's JOSE Header".
/// RS256 and ES256 hash with SHA-256; Ed25519 (EdDSA) signs with SHA-512 internally, and that
/// is what relying parties use for it (as the `openidconnect` crate and node-oidc-provider do).
pub fn at_hash(alg: SigningAlg, access_token: &str) -> String {
    let digest: Vec<u8> = match alg {
        SigningAlg::Rs256 | SigningAlg::Es256 => Sha256::digest(access_token.as_bytes()).to_vec(),
        SigningAlg::EdDsa => Sha512::digest(access_token.as_bytes()).to_vec(),
    };
    URL_SAFE_NO_PAD.encode(&digest[..digest.len() / 2])
}

/// What the UserInfo endpoint and `profile`/`email` scopes may tell of a user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile<'a> {
    pub user_id: &'a str,
    pub username: &'a str,
    pub name: Option<&'a str>,
    pub email: Option<&'a str>,
    pub email_verified: bool,
}

/// The UserInfo response (§5.3.2) for a token with `scope`: `sub` always; `profile` adds
/// `preferred_username` and `name` (when the user has one); `email` adds `email` and
/// `email_verified` (when the user has an address). Claims without a value are left out.
pub fn userinfo(scope: &ScopeSet, profile: &Profile<'_>) -> serde_json::Value {
    let mut claims = serde_json::Map::new();
    claims.insert("sub".into(), profile.user_id.into());
    if scope.contains(PROFILE) {
        if let Some(name) = profile.name {
            claims.insert("name".into(), name.into());
        }
        claims.insert("preferred_username".into(), profile.username.into());
    }
    if scope.contains(EMAIL)
        && let Some(email) = profile.email
    {
        claims.insert("email".into(), email.into());
        claims.insert("email_verified".into(), profile.email_verified.into());
    }
    serde_json::Value::Object(claims)
}

/// The claims Umbra may release, for discovery.
pub const CLAIMS_SUPPORTED: [&str; 15] = [
    "iss",
    "sub",
    "aud",
    "exp",
    "iat",
    "auth_time",
    "nonce",
    "amr",
    "acr",
    "at_hash",
    "sid",
    "name",
    "preferred_username",
    "email",
    "email_verified",
];

/// What an `id_token_hint` says once its signature has been checked: who it was for and in
/// which browser session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hint {
    pub sub: String,
    /// The client ids of `aud`.
    pub audience: Vec<String>,
    pub sid: Option<String>,
}

/// Why an `id_token_hint` is not one of Umbra's ID tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HintError {
    #[error("the id_token_hint was issued by another server")]
    OtherIssuer,
    #[error("the id_token_hint lacks sub or aud")]
    Incomplete,
}

/// Reads the verified claims of an `id_token_hint`. Its signature must already have been
/// checked against Umbra's keys; its expiry is not checked, since "the OP SHOULD accept ID
/// Tokens when the RP identified by the ID Token's aud claim … had a recent session at the OP,
/// even when the exp time has passed" (RP-Initiated Logout 1.0 §4).
pub fn read_hint(claims: &serde_json::Value, issuer: &str) -> Result<Hint, HintError> {
    if claims["iss"].as_str() != Some(issuer) {
        return Err(HintError::OtherIssuer);
    }
    let sub = claims["sub"]
        .as_str()
        .ok_or(HintError::Incomplete)?
        .to_owned();
    let audience: Vec<String> = match &claims["aud"] {
        serde_json::Value::String(one) => vec![one.clone()],
        serde_json::Value::Array(many) => many
            .iter()
            .filter_map(|a| a.as_str().map(str::to_owned))
            .collect(),
        _ => Vec::new(),
    };
    if audience.is_empty() {
        return Err(HintError::Incomplete);
    }
    Ok(Hint {
        sub,
        audience,
        sid: claims["sid"].as_str().map(str::to_owned),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_at_hash_is_the_left_half_of_the_hash_of_the_algorithm() {
        // OpenID Connect Core appendix A.3: the access token and at_hash of the example.
        assert_eq!(
            at_hash(
                SigningAlg::Rs256,
                "jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y"
            ),
            "77QmUPtjPfzWtF2AnpK9RQ"
        );
        assert_eq!(at_hash(SigningAlg::Es256, "x").len(), 22);
        // SHA-512: 32 bytes kept, 43 characters.
        let eddsa = at_hash(SigningAlg::EdDsa, "x");
        assert_eq!(eddsa.len(), 43);
        assert_eq!(eddsa, URL_SAFE_NO_PAD.encode(&Sha512::digest(b"x")[..32]));
    }

    #[test]
    fn amr_and_acr_say_whether_a_second_factor_was_used() {
        assert_eq!(amr(None), ["pwd"]);
        assert_eq!(acr(None), "1");
        let totp = Some(Proof::Factor(FactorKind::Totp));
        assert_eq!(amr(totp), ["pwd", "otp", "mfa"]);
        assert_eq!(acr(totp), "2");
        assert_eq!(
            amr(Some(Proof::Factor(FactorKind::Sms))),
            ["pwd", "otp", "sms", "mfa"]
        );
        assert_eq!(amr(Some(Proof::RecoveryCode)), ["pwd", "otp", "mfa"]);
    }

    #[test]
    fn max_age_zero_always_asks_and_otherwise_only_past_the_age() {
        assert!(!sign_in_too_old(None, 0, 1_000_000));
        assert!(sign_in_too_old(Some(0), 100, 100));
        assert!(!sign_in_too_old(Some(60), 100, 160));
        assert!(sign_in_too_old(Some(60), 100, 161));
    }

    #[test]
    fn the_id_token_repeats_the_sign_in_and_binds_the_access_token() {
        let auth = Authentication::of_sign_in(
            90,
            Some(Proof::Factor(FactorKind::Totp)),
            Some("s1".into()),
            Some("n-0S6_WzA2Mj".into()),
        );
        let claims = IdTokenClaims::new(
            &IdTokenFor {
                issuer: "https://as",
                user_id: "u1",
                client_id: "app",
                access_token: "at_x",
                alg: SigningAlg::Rs256,
                now: 100,
                ttl_secs: 3600,
            },
            &auth,
        );
        let json = serde_json::to_value(&claims).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "iss": "https://as", "sub": "u1", "aud": "app", "exp": 3700, "iat": 100,
                "auth_time": 90, "nonce": "n-0S6_WzA2Mj", "amr": ["pwd", "otp", "mfa"],
                "acr": "2", "at_hash": at_hash(SigningAlg::Rs256, "at_x"), "sid": "s1",
            })
        );
        let legacy = IdTokenClaims::new(
            &IdTokenFor {
                issuer: "https://as",
                user_id: "u1",
                client_id: "app",
                access_token: "at_x",
                alg: SigningAlg::Rs256,
                now: 100,
                ttl_secs: 3600,
            },
            &Authentication::default(),
        );
        let json = serde_json::to_value(&legacy).unwrap();
        for absent in ["auth_time", "nonce", "amr", "acr", "sid"] {
            assert!(json.get(absent).is_none(), "{absent}: {json}");
        }
    }

    #[test]
    fn userinfo_releases_claims_by_scope_and_leaves_out_what_is_unset() {
        let profile = Profile {
            user_id: "u1",
            username: "ada",
            name: Some("Ada Lovelace"),
            email: Some("ada@example.com"),
            email_verified: true,
        };
        let scope = |s: &str| ScopeSet::parse(s).unwrap();
        assert_eq!(
            userinfo(&scope("openid"), &profile),
            serde_json::json!({"sub": "u1"})
        );
        assert_eq!(
            userinfo(&scope("openid profile email"), &profile),
            serde_json::json!({
                "sub": "u1", "name": "Ada Lovelace", "preferred_username": "ada",
                "email": "ada@example.com", "email_verified": true,
            })
        );
        let bare = Profile {
            name: None,
            email: None,
            ..profile
        };
        assert_eq!(
            userinfo(&scope("openid profile email"), &bare),
            serde_json::json!({"sub": "u1", "preferred_username": "ada"})
        );
    }

    #[test]
    fn a_hint_must_come_from_this_issuer_and_name_its_audience() {
        let hint = read_hint(
            &serde_json::json!({"iss": "https://as", "sub": "u1", "aud": "app", "sid": "s"}),
            "https://as",
        )
        .unwrap();
        assert_eq!(hint.audience, ["app"]);
        assert_eq!(hint.sid.as_deref(), Some("s"));
        let many = read_hint(
            &serde_json::json!({"iss": "https://as", "sub": "u1", "aud": ["a", "b"]}),
            "https://as",
        )
        .unwrap();
        assert_eq!(many.audience, ["a", "b"]);
        assert_eq!(
            read_hint(
                &serde_json::json!({"iss": "https://evil", "sub": "u1", "aud": "app"}),
                "https://as"
            ),
            Err(HintError::OtherIssuer)
        );
        assert_eq!(
            read_hint(
                &serde_json::json!({"iss": "https://as", "aud": "app"}),
                "https://as"
            ),
            Err(HintError::Incomplete)
        );
    }

    #[test]
    fn only_the_oidc_scopes_are_picked() {
        let scopes = ScopeSet::parse("read openid email write").unwrap();
        assert_eq!(oidc_scopes(&scopes).to_string(), "openid email");
    }
}
