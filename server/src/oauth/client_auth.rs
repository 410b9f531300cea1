//! Client authentication at the token, introspection and revocation endpoints
//! (RFC 6749 §2.3.1): HTTP Basic (`client_secret_basic`), credentials in the body
//! (`client_secret_post`), a signed JWT (`private_key_jwt`, RFC 7523 §2.2, checked by
//! [`client_assertion`](super::client_assertion)), or a bare `client_id` for public clients
//! (`none`).
use super::client::Client;
use super::client_assertion::{ASSERTION_TYPE, Assertion};
use super::error::OAuthError;
use super::params::Params;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use percent_encoding::percent_decode_str;
use secrecy::{ExposeSecret, SecretString};
use std::borrow::Borrow;

/// How the client presented its credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMethod {
    ClientSecretBasic,
    ClientSecretPost,
    /// A JWT signed with the client's private key (RFC 7523 §2.2, OpenID Connect Core §9).
    PrivateKeyJwt,
    /// A public client identifying itself with `client_id` alone.
    None,
}

impl AuthMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ClientSecretBasic => "client_secret_basic",
            Self::ClientSecretPost => "client_secret_post",
            Self::PrivateKeyJwt => "private_key_jwt",
            Self::None => "none",
        }
    }
}

/// Credentials as presented, not yet checked.
#[derive(Debug)]
pub struct ClientCredentials {
    pub client_id: String,
    pub secret: Option<SecretString>,
    /// The client assertion of `private_key_jwt`, its form checked.
    pub assertion: Option<Assertion>,
    pub method: AuthMethod,
}

impl ClientCredentials {
    /// Reads credentials from the `Authorization` header value (if any) and the body.
    ///
    /// "The client MUST NOT use more than one authentication method in each request."
    pub fn extract(authorization: Option<&[u8]>, params: &Params) -> Result<Self, OAuthError> {
        let body_id = params.get("client_id");
        let body_secret = params.get("client_secret");
        if params.get("client_assertion").is_some() || params.get("client_assertion_type").is_some()
        {
            if authorization.is_some() || body_secret.is_some() {
                return Err(OAuthError::invalid_request(
                    "use one client authentication method, not a client_assertion and a secret",
                ));
            }
            return Self::from_assertion(params, body_id);
        }
        if let Some(header) = authorization {
            let (client_id, secret) = parse_basic(header)?;
            if body_secret.is_some() {
                return Err(OAuthError::invalid_request(
                    "use one client authentication method, not both Basic and client_secret",
                ));
            }
            if body_id.is_some_and(|id| id != client_id) {
                return Err(OAuthError::invalid_request(
                    "client_id in the body differs from the Authorization header",
                ));
            }
            return Ok(Self {
                client_id,
                secret: Some(secret),
                assertion: None,
                method: AuthMethod::ClientSecretBasic,
            });
        }
        match (body_id, body_secret) {
            (Some(id), Some(secret)) => Ok(Self {
                client_id: id.to_owned(),
                secret: Some(SecretString::from(secret)),
                assertion: None,
                method: AuthMethod::ClientSecretPost,
            }),
            (Some(id), None) => Ok(Self {
                client_id: id.to_owned(),
                secret: None,
                assertion: None,
                method: AuthMethod::None,
            }),
            (None, _) => Err(OAuthError::invalid_client(
                "client authentication is required",
            )),
        }
    }

    /// `client_assertion_type` and `client_assertion` (RFC 7521 §4.2); the client is the
    /// assertion's `sub`, which a `client_id` in the body, "if present, … MUST identify".
    fn from_assertion(params: &Params, body_id: Option<&str>) -> Result<Self, OAuthError> {
        let (Some(kind), Some(raw)) = (
            params.get("client_assertion_type"),
            params.get("client_assertion"),
        ) else {
            return Err(OAuthError::invalid_request(
                "client_assertion and client_assertion_type must be sent together",
            ));
        };
        if kind != ASSERTION_TYPE {
            return Err(OAuthError::invalid_client(
                "unsupported client_assertion_type: only \
                 urn:ietf:params:oauth:client-assertion-type:jwt-bearer is accepted",
            ));
        }
        let assertion = Assertion::parse(raw)?;
        let Some(subject) = assertion.subject().map(str::to_owned) else {
            return Err(OAuthError::invalid_client(
                "the client_assertion has no sub: it must be the client_id",
            ));
        };
        if body_id.is_some_and(|id| id != subject) {
            return Err(OAuthError::invalid_request(
                "client_id in the body differs from the client_assertion's sub",
            ));
        }
        Ok(Self {
            client_id: subject,
            secret: None,
            assertion: Some(assertion),
            method: AuthMethod::PrivateKeyJwt,
        })
    }

    /// Checks a secret, or the absence of one, against the client record looked up by
    /// `client_id`: a client registered for one method cannot use another. Every failure
    /// gives the same answer, so the response does not tell which part was wrong. An
    /// assertion is checked elsewhere (it needs the client's keys and the store) and never
    /// passes here. A secret past its expiry fails like a wrong one.
    pub fn authenticate<C: Borrow<Client>>(
        &self,
        client: Option<C>,
        now: i64,
    ) -> Result<C, OAuthError> {
        let authenticated = client.filter(|client| {
            let client: &Client = client.borrow();
            match (self.method, &self.secret) {
                (AuthMethod::None, None) => client.is_public(),
                (AuthMethod::ClientSecretBasic | AuthMethod::ClientSecretPost, Some(secret)) => {
                    client.verify_secret(secret.expose_secret(), now)
                }
                _ => false,
            }
        });
        authenticated.ok_or_else(|| self.failure())
    }

    /// `invalid_client` (401, so rendered with the Basic challenge whatever the method).
    pub fn failure(&self) -> OAuthError {
        OAuthError::invalid_client("client authentication failed")
    }
}

/// `Basic base64(urlencode(id) ":" urlencode(secret))`.
fn parse_basic(header: &[u8]) -> Result<(String, SecretString), OAuthError> {
    let malformed = || OAuthError::invalid_client("malformed Basic authorization header");
    // Optional whitespace in HTTP is space and tab (RFC 9110 §5.6.3); `str::trim` would also
    // drop Unicode spaces and accept headers that are not Basic.
    const OWS: [char; 2] = [' ', '\t'];
    let header = std::str::from_utf8(header).map_err(|_| malformed())?;
    let (scheme, encoded) = header
        .trim_matches(OWS)
        .split_once(' ')
        .ok_or_else(malformed)?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(OAuthError::invalid_client(
            "only the Basic authorization scheme is supported here",
        ));
    }
    let decoded = STANDARD
        .decode(encoded.trim_matches(OWS))
        .map_err(|_| malformed())?;
    let decoded = String::from_utf8(decoded).map_err(|_| malformed())?;
    let (id, secret) = decoded.split_once(':').ok_or_else(malformed)?;
    let url_decode = |s: &str| {
        percent_decode_str(&s.replace('+', " "))
            .decode_utf8()
            .map(|s| s.into_owned())
            .map_err(|_| malformed())
    };
    let id = url_decode(id)?;
    if id.is_empty() {
        return Err(malformed());
    }
    Ok((id, SecretString::from(url_decode(secret)?)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oauth::ErrorCode;

    fn basic(id: &str, secret: &str) -> Vec<u8> {
        format!("Basic {}", STANDARD.encode(format!("{id}:{secret}"))).into_bytes()
    }

    #[test]
    fn basic_credentials_are_url_decoded() {
        let creds =
            ClientCredentials::extract(Some(&basic("my%20app", "s%3Ae")), &Params::default())
                .unwrap();
        assert_eq!(creds.client_id, "my app");
        assert_eq!(creds.secret.unwrap().expose_secret(), "s:e");
        assert_eq!(creds.method, AuthMethod::ClientSecretBasic);
    }

    #[test]
    fn the_scheme_is_case_insensitive() {
        let header = format!("bAsIc {}", STANDARD.encode("a:b"));
        let creds = ClientCredentials::extract(Some(header.as_bytes()), &Params::default());
        assert_eq!(creds.unwrap().client_id, "a");
    }

    #[test]
    fn post_credentials_come_from_the_body() {
        let params = Params::parse(b"client_id=a&client_secret=b").unwrap();
        let creds = ClientCredentials::extract(None, &params).unwrap();
        assert_eq!(creds.method, AuthMethod::ClientSecretPost);
    }

    #[test]
    fn a_bare_client_id_is_a_public_client() {
        let params = Params::parse(b"client_id=spa").unwrap();
        let creds = ClientCredentials::extract(None, &params).unwrap();
        assert_eq!(creds.method, AuthMethod::None);
        assert!(creds.secret.is_none());
    }

    #[test]
    fn two_methods_at_once_are_invalid_request() {
        let params = Params::parse(b"client_secret=b").unwrap();
        let err = ClientCredentials::extract(Some(&basic("a", "b")), &params).unwrap_err();
        assert_eq!(err.code(), ErrorCode::InvalidRequest);
    }

    #[test]
    fn no_credentials_is_invalid_client_with_a_challenge() {
        let err = ClientCredentials::extract(None, &Params::default()).unwrap_err();
        assert_eq!(err.code(), ErrorCode::InvalidClient);
        assert!(err.basic_challenge());
    }

    #[test]
    fn only_spaces_and_tabs_may_surround_the_credentials() {
        // Unicode spaces around the value used to be trimmed, so a header that is not valid
        // Basic was accepted; the `client_auth` fuzz target now checks every header against a
        // strict reading of RFC 7617.
        let encoded = STANDARD.encode("a:b");
        for header in [
            format!("\u{a0}Basic {encoded}"),
            format!("Basic {encoded}\u{2003}"),
            format!("Basic \u{85}{encoded}"),
        ] {
            let err = ClientCredentials::extract(Some(header.as_bytes()), &Params::default())
                .unwrap_err();
            assert_eq!(err.code(), ErrorCode::InvalidClient, "{header:?}");
        }
        let spaced = format!("\tBasic  {encoded} \t");
        let creds = ClientCredentials::extract(Some(spaced.as_bytes()), &Params::default());
        assert_eq!(creds.unwrap().client_id, "a");
    }

    #[test]
    fn malformed_basic_headers_are_invalid_client() {
        for header in [
            &b"Basic"[..],
            b"Basic !!!",
            b"Bearer abc",
            b"Basic bm9jb2xvbg==", // "nocolon"
            b"Basic OnNlY3JldA==", // ":secret"
            b"\xff\xfe",
        ] {
            let err = ClientCredentials::extract(Some(header), &Params::default()).unwrap_err();
            assert_eq!(err.code(), ErrorCode::InvalidClient, "{header:?}");
            assert!(err.basic_challenge());
        }
    }

    /// An assertion of valid form (its signature is not checked here).
    fn assertion_form(extra: &str) -> Params {
        use base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"ES256"}"#);
        let payload = URL_SAFE_NO_PAD.encode(r#"{"iss":"svc","sub":"svc"}"#);
        let body = format!(
            "client_assertion_type={}&client_assertion={header}.{payload}.c2ln{extra}",
            percent_encoding::utf8_percent_encode(
                ASSERTION_TYPE,
                percent_encoding::NON_ALPHANUMERIC
            )
        );
        Params::parse(body.as_bytes()).unwrap()
    }

    #[test]
    fn an_assertion_names_its_client_by_sub() {
        let creds = ClientCredentials::extract(None, &assertion_form("")).unwrap();
        assert_eq!(creds.method, AuthMethod::PrivateKeyJwt);
        assert_eq!(creds.client_id, "svc");
        assert!(creds.secret.is_none() && creds.assertion.is_some());
        let same = ClientCredentials::extract(None, &assertion_form("&client_id=svc"));
        assert_eq!(same.unwrap().client_id, "svc");
    }

    #[test]
    fn an_assertion_with_another_method_or_another_client_id_is_invalid_request() {
        for (header, extra) in [
            (Some(basic("svc", "b")), ""),
            (None, "&client_secret=b"),
            (None, "&client_id=other"),
        ] {
            let err =
                ClientCredentials::extract(header.as_deref(), &assertion_form(extra)).unwrap_err();
            assert_eq!(err.code(), ErrorCode::InvalidRequest, "{extra}");
        }
    }

    #[test]
    fn an_incomplete_or_unknown_assertion_type_is_refused() {
        let missing_type = Params::parse(b"client_assertion=a.b.c").unwrap();
        let err = ClientCredentials::extract(None, &missing_type).unwrap_err();
        assert_eq!(err.code(), ErrorCode::InvalidRequest);
        let missing_assertion = Params::parse(b"client_assertion_type=x&client_id=a").unwrap();
        let err = ClientCredentials::extract(None, &missing_assertion).unwrap_err();
        assert_eq!(err.code(), ErrorCode::InvalidRequest);
        let saml = Params::parse(
            b"client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Asaml2-bearer&client_assertion=a.b.c",
        )
        .unwrap();
        let err = ClientCredentials::extract(None, &saml).unwrap_err();
        assert_eq!(err.code(), ErrorCode::InvalidClient);
    }

    #[test]
    fn assertion_credentials_never_pass_the_secret_check() {
        let creds = ClientCredentials::extract(None, &assertion_form("")).unwrap();
        let public = Client {
            id: "svc".into(),
            name: "svc".into(),
            secret_hash: None,
            redirect_uris: vec![],
            grant_types: vec![],
            scopes: Default::default(),
            can_introspect: false,
            skip_consent: false,
            require_2fa: false,
            assertion_keys: None,
            resources: Default::default(),
            introspection_signed_response_alg: None,
            version: 1,
            secret_expires_at: None,
            openid: Default::default(),
        };
        assert!(creds.authenticate(Some(&public), 0).is_err());
    }

    #[test]
    fn a_failed_body_authentication_is_challenged_too() {
        let params = Params::parse(b"client_id=a&client_secret=wrong").unwrap();
        let creds = ClientCredentials::extract(None, &params).unwrap();
        let err = creds.authenticate::<Client>(None, 0).unwrap_err();
        assert_eq!(err.status(), 401);
        assert!(err.basic_challenge());
    }
}
