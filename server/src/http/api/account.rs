//! `/api/account/…`: the second-factor enrolment API for apps, in JSON. The caller presents
//! the user's own access token with scope `account` (RFC 6750 §2.1, `Authorization: Bearer`);
//! errors follow RFC 6750 §3 with a `WWW-Authenticate: Bearer` challenge.
//!
//! Security changes of a user who has a confirmed factor carry a fresh proof in the body,
//! `password` or `current_code` (see [`crate::http::step_up`]): the token alone is not enough.
use crate::auth::factor::{FactorKind, mask_destination};
use crate::clock;
use crate::http::AppState;
use crate::http::bearer::{bearer, user_token};
use crate::http::error::ApiError;
use crate::http::step_up::{prove_presence, step_up_due};
use crate::oauth::introspection::Caller;
use crate::second_factor::{Actor, Enabled, FactorError};
use crate::store::User;
use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest, HttpResponse, web};
use futures_util::future::LocalBoxFuture;
use secrecy::SecretString;
use serde::{Deserialize, Serialize, de::DeserializeOwned};

/// The scope an access token needs to use this API.
pub const ACCOUNT_SCOPE: &str = "account";

/// The user behind a valid bearer token with the `account` scope.
pub struct AccountCaller {
    user: User,
    actor: Actor,
}

/// The account API as a resource server of its own: it accepts the tokens that name no
/// resource, and none meant for another service.
const ACCOUNT_API: Caller<'static> = Caller {
    client_id: "",
    can_introspect: true,
    introspects_for: &[],
    require_audience: false,
};

impl FromRequest for AccountCaller {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let authorization = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let address = crate::http::client_address::client_address(req);
        Box::pin(async move {
            let state = state.ok_or_else(|| ApiError::Internal("no application state".into()))?;
            let presented = bearer(authorization.as_deref())?;
            let (user, details) =
                user_token(&state, presented, &ACCOUNT_API, ACCOUNT_SCOPE).await?;
            Ok(Self {
                user,
                actor: Actor {
                    client_id: Some(details.client_id),
                    address,
                },
            })
        })
    }
}

/// A security change by the caller: its JSON body `T`, whose fresh proof has been checked
/// when the user has a confirmed factor.
pub struct Change<T> {
    caller: AccountCaller,
    request: T,
}

impl<T> FromRequest for Change<T>
where
    T: DeserializeOwned + Default + CarriesProof + 'static,
{
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<'static, Result<Self, actix_web::Error>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let caller = AccountCaller::from_request(req, payload);
        let bytes = web::Bytes::from_request(req, payload);
        Box::pin(async move {
            let caller = caller.await?;
            let bytes = bytes.await?;
            let state = state.ok_or_else(|| ApiError::Internal("no application state".into()))?;
            let request = caller.change(&state, &bytes, false).await?;
            Ok(Self { caller, request })
        })
    }
}

impl AccountCaller {
    /// The body of a security change, once its fresh proof is checked: needed when the user
    /// has a confirmed factor, or `always` (removing a factor).
    async fn change<T>(&self, state: &AppState, bytes: &[u8], always: bool) -> Result<T, ApiError>
    where
        T: DeserializeOwned + Default + CarriesProof,
    {
        let mut request: T = body(bytes)?;
        self.step_up(state, request.take_proof(), always).await?;
        Ok(request)
    }

    async fn step_up(
        &self,
        state: &AppState,
        proof: FreshProof,
        always: bool,
    ) -> Result<(), ApiError> {
        if !always && !step_up_due(state, &self.user, false).await? {
            return Ok(());
        }
        if prove_presence(
            state,
            &self.user,
            proof.password,
            &proof.current_code,
            &self.actor,
        )
        .await?
        {
            return Ok(());
        }
        Err(ApiError::InvalidCode(
            "a valid password or current code is required for this change".into(),
        ))
    }
}

/// The proof a security change carries: the password, or a current code from the
/// authenticator app or a recovery code.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct FreshProof {
    #[serde(default)]
    password: Option<SecretString>,
    /// `code` is accepted too, where the body has no other code (removal, recovery codes).
    #[serde(default, alias = "code")]
    current_code: String,
}

/// A request body with the fields of a [`FreshProof`].
trait CarriesProof {
    fn take_proof(&mut self) -> FreshProof;
}

impl CarriesProof for FreshProof {
    fn take_proof(&mut self) -> FreshProof {
        std::mem::take(self)
    }
}

/// Bodies with their own `password` and `current_code` fields beside the others (serde's
/// `flatten` would not work with `deny_unknown_fields`).
macro_rules! carries_proof {
    ($($body:ty),*) => {$(
        impl CarriesProof for $body {
            fn take_proof(&mut self) -> FreshProof {
                FreshProof {
                    password: self.password.take(),
                    current_code: std::mem::take(&mut self.current_code),
                }
            }
        }
    )*};
}

carries_proof!(StartBody, ConfirmBody);

fn kind_of(path: &str) -> Result<FactorKind, ApiError> {
    FactorKind::parse(path).ok_or(ApiError::NotFound)
}

/// An optional JSON body: empty means all defaults. Public for the `api_json` fuzz target,
/// which must parse exactly as the handlers do.
pub fn body<T: DeserializeOwned + Default>(bytes: &[u8]) -> Result<T, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    // serde would also read a struct from a JSON array (`["123456"]`); the API takes objects.
    if bytes.trim_ascii_start().first() != Some(&b'{') {
        return Err(ApiError::InvalidRequest(
            "the JSON body must be an object".into(),
        ));
    }
    serde_json::from_slice(bytes).map_err(|e| ApiError::invalid_json(&e))
}

fn no_store(mut builder: actix_web::HttpResponseBuilder) -> actix_web::HttpResponseBuilder {
    builder.insert_header((header::CACHE_CONTROL, "no-store"));
    builder
}

#[derive(Serialize)]
struct FactorView {
    kind: &'static str,
    confirmed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    destination: Option<String>,
    created_at: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    confirmed_at: Option<i64>,
}

/// `GET /api/account/factors`
pub async fn list(
    state: web::Data<AppState>,
    caller: AccountCaller,
) -> Result<HttpResponse, ApiError> {
    let factors: Vec<FactorView> = state
        .store
        .factors(caller.user.id)
        .await?
        .into_iter()
        .map(|f| FactorView {
            kind: f.kind.as_str(),
            confirmed: f.confirmed(),
            destination: f.destination.as_deref().map(mask_destination),
            created_at: f.created_at,
            confirmed_at: f.confirmed_at,
        })
        .collect();
    let left = state.store.recovery_codes_left(caller.user.id).await?;
    Ok(no_store(HttpResponse::Ok())
        .json(serde_json::json!({"factors": factors, "recovery_codes_left": left})))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct StartBody {
    destination: Option<String>,
    #[serde(default)]
    password: Option<SecretString>,
    #[serde(default)]
    current_code: String,
}

/// `POST /api/account/factors/{kind}`: TOTP answers the secret and URI; e-mail/SMS sends a
/// code to `destination` (202).
pub async fn start(
    state: web::Data<AppState>,
    kind: web::Path<String>,
    change: Change<StartBody>,
) -> Result<HttpResponse, ApiError> {
    let kind = kind_of(&kind)?;
    let Change { caller, request } = change;
    let now = clock::now();
    if kind == FactorKind::Totp {
        let enrolment = state
            .factors
            .totp_enrolment(&caller.user, now, true)
            .await?;
        return Ok(no_store(HttpResponse::Ok()).json(enrolment));
    }
    let destination = request
        .destination
        .ok_or_else(|| ApiError::InvalidRequest("destination is required".into()))?;
    let factor = state
        .factors
        .start_sent_factor(&caller.user, kind, &destination, now)
        .await?;
    Ok(no_store(HttpResponse::Accepted()).json(serde_json::json!({
        "kind": kind.as_str(),
        "sent_to": factor.destination.as_deref().map(mask_destination),
        "expires_in": state.settings.second_factor.code_ttl_secs,
    })))
}

/// `POST /api/account/factors/{kind}/resend`: a new code to the factor being enrolled. No
/// proof: it only repeats what a proven start began, to the destination chosen then.
pub async fn resend(
    state: web::Data<AppState>,
    caller: AccountCaller,
    kind: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let kind = kind_of(&kind)?;
    state
        .factors
        .resend(&caller.user, kind, clock::now())
        .await?;
    Ok(no_store(HttpResponse::Accepted()).json(serde_json::json!({"kind": kind.as_str()})))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ConfirmBody {
    /// The code of the factor being enrolled.
    #[serde(default)]
    code: String,
    #[serde(default)]
    password: Option<SecretString>,
    /// A code of a factor the user already has.
    #[serde(default)]
    current_code: String,
}

/// `POST /api/account/factors/{kind}/confirm` with `{"code": "123456"}` (plus a fresh proof
/// when the user already has a factor)
pub async fn confirm(
    state: web::Data<AppState>,
    kind: web::Path<String>,
    change: Change<ConfirmBody>,
) -> Result<HttpResponse, ApiError> {
    let kind = kind_of(&kind)?;
    let Change { caller, request } = change;
    let Enabled { recovery_codes } = state
        .factors
        .confirm(
            &caller.user,
            kind,
            &request.code,
            &caller.actor,
            clock::now(),
        )
        .await?;
    let mut answer = serde_json::json!({"kind": kind.as_str(), "confirmed": true});
    if let Some(codes) = recovery_codes {
        answer["recovery_codes"] = serde_json::json!(codes);
    }
    Ok(no_store(HttpResponse::Ok()).json(answer))
}

/// `DELETE /api/account/factors/{kind}` with `{"password": "…"}` or `{"code": "…"}`: a
/// token alone does not remove a factor. Every browser session of the user is signed out.
pub async fn remove(
    state: web::Data<AppState>,
    caller: AccountCaller,
    kind: web::Path<String>,
    bytes: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let kind = kind_of(&kind)?;
    caller.change::<FreshProof>(&state, &bytes, true).await?;
    state
        .factors
        .remove(&caller.user, kind, &caller.actor, clock::now())
        .await?;
    Ok(no_store(HttpResponse::NoContent()).finish())
}

/// `POST /api/account/recovery-codes` with `{"password": "…"}` or `{"code": "…"}`: new
/// codes, the old ones stop working.
pub async fn regenerate(
    state: web::Data<AppState>,
    change: Change<FreshProof>,
) -> Result<HttpResponse, ApiError> {
    let caller = change.caller;
    let codes = state
        .factors
        .regenerate_recovery_codes(&caller.user, &caller.actor, clock::now())
        .await?;
    Ok(no_store(HttpResponse::Ok()).json(serde_json::json!({"recovery_codes": codes})))
}

impl From<FactorError> for ApiError {
    fn from(err: FactorError) -> Self {
        match err {
            FactorError::WrongCode => Self::InvalidCode("the code is not valid".into()),
            FactorError::Invalid(message) => Self::InvalidRequest(message),
            FactorError::NotEnrolling | FactorError::NotFound => Self::NotFound,
            FactorError::Conflict(message) => Self::Conflict(message),
            FactorError::Throttled { retry_after_secs }
            | FactorError::Locked { retry_after_secs } => {
                Self::TooManyRequests { retry_after_secs }
            }
            FactorError::Store(err) => err.into(),
            FactorError::Busy => Self::Unavailable(err.to_string()),
            FactorError::Send(_) | FactorError::Internal(_) => Self::Internal(err.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_body_must_be_an_object_or_empty() {
        // Found by the `api_json` fuzz target: serde reads a struct from an array too.
        for array in [&br#"["123456"]"#[..], br#" ["x", null]"#] {
            assert!(matches!(
                body::<ConfirmBody>(array),
                Err(ApiError::InvalidRequest(_))
            ));
            assert!(body::<StartBody>(array).is_err());
        }
        assert_eq!(body::<ConfirmBody>(br#"{"code":"1"}"#).unwrap().code, "1");
        assert_eq!(body::<ConfirmBody>(b" \n").unwrap().code, "");
    }
}
