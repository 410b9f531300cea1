//! `/admin/users…`: people who sign in. What `umbra user …` does, through the same store and
//! second-factor functions; the password policy and argon2 are the app's own.
use super::caller::AdminCaller;
use super::problem::{Problem, ProblemBody};
use super::support::{
    PageParams, decode_cursor, encode_cursor, if_match, no_content, nullable, path_uuid, with_etag,
};
use crate::auth::factor::{FactorKind, validate_destination};
use crate::auth::password::check_policy;
use crate::auth::{validate_display_name, validate_username};
use crate::clock;
use crate::http::AppState;
use crate::second_factor::FactorStatus;
use crate::store::{AuditKind, ProfileChange, StoreError, User, UserQuery, UserUpdate};
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// A user as the admin API shows it; never the password hash.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserView {
    #[schema(value_type = String, format = "uuid")]
    pub id: uuid::Uuid,
    pub username: String,
    pub name: Option<String>,
    pub email: Option<String>,
    pub email_verified: bool,
    pub disabled: bool,
    /// May use the operator console.
    pub admin: bool,
    pub created_at: i64,
    /// The row version, also the `ETag`.
    pub version: i64,
}

impl UserView {
    fn of(user: &User) -> Self {
        Self {
            id: user.id,
            username: user.username.clone(),
            name: user.name.clone(),
            email: user.email.clone(),
            email_verified: user.email_verified,
            disabled: user.disabled,
            admin: user.admin,
            created_at: user.created_at,
            version: user.version,
        }
    }
}

/// A page of users.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserList {
    pub users: Vec<UserView>,
    /// The cursor of the next page; absent on the last.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

/// A new user. Creating is idempotent by username: the same username with the same profile
/// again answers 200 with the user (its password is not changed: use `/password`); with
/// another profile, 409.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    pub username: String,
    #[schema(value_type = String, format = Password)]
    pub password: SecretString,
    pub name: Option<String>,
    pub email: Option<String>,
    /// The operator vouches that `email` is the user's.
    pub email_verified: Option<bool>,
}

/// A change of profile: a member left out stays as it is, `null` removes it.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProfilePatch {
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub name: Option<Option<String>>,
    /// A new address is unverified unless `email_verified` says otherwise.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub email: Option<Option<String>>,
    pub email_verified: Option<bool>,
}

/// A new password.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewPassword {
    #[schema(value_type = String, format = Password)]
    pub password: SecretString,
}

/// Filters of the user list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UserFilter {
    /// Usernames starting with this (case-insensitive).
    pub username: Option<String>,
    pub disabled: Option<bool>,
    pub limit: Option<u64>,
    pub cursor: Option<String>,
}

/// A consent a user gave a client.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConsentItem {
    pub client_id: String,
    pub client_name: String,
    /// Space-separated scopes approved.
    pub scope: String,
    pub updated_at: i64,
}

/// How many factors a reset removed.
#[derive(Debug, Serialize, ToSchema)]
pub struct FactorsReset {
    pub factors_removed: u64,
}

/// The profile a request asks for, checked as the CLI checks it.
fn checked_profile(
    name: Option<Option<String>>,
    email: Option<Option<String>>,
    email_verified: Option<bool>,
) -> Result<ProfileChange, Problem> {
    let name = match name {
        Some(Some(name)) => Some(Some(
            validate_display_name(&name).map_err(Problem::BadRequest)?,
        )),
        other => other,
    };
    let email = match email {
        Some(Some(email)) => Some(Some(
            validate_destination(FactorKind::Email, &email)
                .map_err(|why| Problem::bad_request(format!("email: {why}")))?,
        )),
        other => other,
    };
    Ok(ProfileChange {
        name,
        email,
        email_verified,
    })
}

fn unknown_user() -> Problem {
    Problem::not_found("no such user")
}

/// The user `id` names.
async fn find(state: &AppState, id: &str) -> Result<User, Problem> {
    let id = path_uuid(id)?;
    state.store.find_user(id).await?.ok_or_else(unknown_user)
}

fn user_response(response: actix_web::HttpResponseBuilder, user: &User) -> HttpResponse {
    with_etag(response, user.version).json(UserView::of(user))
}

async fn hashed(state: &AppState, password: SecretString) -> Result<String, Problem> {
    check_policy(
        password.expose_secret(),
        state.settings.passwords.min_length,
    )
    .map_err(Problem::BadRequest)?;
    Ok(state.passwords.hash_off_runtime(password).await?)
}

/// Whether `user` already has the profile `asked` would give a new user.
fn same_profile(user: &User, asked: &ProfileChange) -> bool {
    let email = asked.email.clone().flatten();
    let verified = email.is_some() && asked.email_verified == Some(true);
    user.name == asked.name.clone().flatten()
        && user.email == email
        && user.email_verified == verified
}

/// 200 with `user` when it has the profile asked for, else 409.
/// The answer to a create that names an existing user: the same user (200) only if the
/// request would have made exactly it, its password included; otherwise a conflict, so that
/// automation never believes it set a password it did not.
async fn existing(
    state: &AppState,
    user: &User,
    asked: &ProfileChange,
    password: SecretString,
) -> Result<HttpResponse, Problem> {
    let same_password = state
        .passwords
        .verify_off_runtime(password, Some(user.password_hash.clone()))
        .await?;
    if same_profile(user, asked) && same_password {
        Ok(user_response(HttpResponse::Ok(), user))
    } else {
        Err(Problem::conflict(format!(
            "the username {:?} is taken by a user with another profile or password",
            user.username
        )))
    }
}

/// Creates a user (idempotent by username).
#[utoipa::path(
    post,
    path = "/admin/users",
    tag = "users",
    request_body = NewUser,
    responses(
        (status = 201, description = "Created", body = UserView),
        (status = 200, description = "The same user existed already", body = UserView),
        (status = 409, description = "The username is taken by a user with another profile or password", body = ProblemBody, content_type = "application/problem+json"),
    )
)]
pub async fn create(
    caller: AdminCaller,
    state: web::Data<AppState>,
    body: web::Json<NewUser>,
) -> Result<HttpResponse, Problem> {
    let NewUser {
        username,
        password,
        name,
        email,
        email_verified,
    } = body.into_inner();
    validate_username(&username).map_err(Problem::bad_request)?;
    let profile = checked_profile(name.map(Some), email.map(Some), email_verified)?;
    if profile.email.is_none() && profile.email_verified == Some(true) {
        return Err(Problem::bad_request("email_verified needs email"));
    }
    if let Some(user) = state.store.find_user_by_username(&username).await? {
        return existing(&state, &user, &profile, password).await;
    }
    let hash = hashed(&state, password.clone()).await?;
    let now = clock::now();
    let user = match state
        .store
        .create_user_with(&username, hash, &profile, now)
        .await
    {
        Ok(user) => user,
        // Another request created it meanwhile: the same answer as if it had come first.
        Err(StoreError::Conflict(_)) => {
            let user = state
                .store
                .find_user_by_username(&username)
                .await?
                .ok_or_else(|| Problem::conflict("the username was taken and freed meanwhile"))?;
            return existing(&state, &user, &profile, password).await;
        }
        Err(err) => return Err(err.into()),
    };
    state
        .store
        .record_audit(
            caller
                .audit(AuditKind::UserCreated)
                .user(user.id, &user.username),
            now,
        )
        .await?;
    let mut response = HttpResponse::Created();
    response.insert_header((header::LOCATION, format!("/admin/users/{}", user.id)));
    Ok(user_response(response, &user))
}

/// Lists users in username order, a page at a time.
#[utoipa::path(
    get,
    path = "/admin/users",
    tag = "users",
    params(UserFilter),
    responses((status = 200, description = "A page of users", body = UserList))
)]
pub async fn list(
    _caller: AdminCaller,
    state: web::Data<AppState>,
    filter: web::Query<UserFilter>,
) -> Result<HttpResponse, Problem> {
    let filter = filter.into_inner();
    let page = PageParams {
        limit: filter.limit,
        cursor: filter.cursor,
    };
    let query = UserQuery {
        username_prefix: filter.username.filter(|p| !p.is_empty()),
        disabled: filter.disabled,
        after: page.cursor.as_deref().map(decode_cursor).transpose()?,
        limit: page.size()?,
    };
    let page = state.store.query_users(&query).await?;
    Ok(HttpResponse::Ok().json(UserList {
        users: page.users.iter().map(UserView::of).collect(),
        next: page.next.as_deref().map(encode_cursor),
    }))
}

/// One user, with its version as `ETag`.
#[utoipa::path(
    get,
    path = "/admin/users/{id}",
    tag = "users",
    params(("id" = String, Path, description = "The user's id")),
    responses(
        (status = 200, description = "The user", body = UserView),
        (status = 404, description = "No such user", body = ProblemBody, content_type = "application/problem+json"),
    )
)]
pub async fn show(
    _caller: AdminCaller,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, Problem> {
    let user = find(&state, &id).await?;
    Ok(user_response(HttpResponse::Ok(), &user))
}

/// Changes a user's profile; `If-Match` with the user's `ETag` is required.
#[utoipa::path(
    patch,
    path = "/admin/users/{id}",
    tag = "users",
    params(
        ("id" = String, Path, description = "The user's id"),
        ("If-Match" = String, Header, description = "The ETag of the version this change replaces"),
    ),
    request_body = ProfilePatch,
    responses(
        (status = 200, description = "Changed", body = UserView),
        (status = 404, description = "No such user", body = ProblemBody, content_type = "application/problem+json"),
        (status = 412, description = "The user changed since that ETag", body = ProblemBody, content_type = "application/problem+json"),
        (status = 428, description = "If-Match is missing", body = ProblemBody, content_type = "application/problem+json"),
    )
)]
pub async fn update(
    caller: AdminCaller,
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<String>,
    body: web::Json<ProfilePatch>,
) -> Result<HttpResponse, Problem> {
    let user = find(&state, &id).await?;
    let version = if_match(&req)?;
    let ProfilePatch {
        name,
        email,
        email_verified,
    } = body.into_inner();
    let change = checked_profile(name, email, email_verified)?;
    if change == ProfileChange::default() {
        return Err(Problem::bad_request(
            "nothing to change: give name, email or email_verified",
        ));
    }
    let no_address = match &change.email {
        Some(email) => email.is_none(),
        None => user.email.is_none(),
    };
    if no_address && change.email_verified == Some(true) {
        return Err(Problem::bad_request(
            "there is no e-mail address to vouch for",
        ));
    }
    let now = clock::now();
    match state
        .store
        .update_user_profile_if(user.id, &change, version, now)
        .await?
    {
        UserUpdate::Done { .. } => {}
        UserUpdate::VersionMismatch { current } => {
            return Err(Problem::PreconditionFailed { current });
        }
        UserUpdate::NotFound => return Err(unknown_user()),
    }
    state
        .store
        .record_audit(
            caller
                .audit(AuditKind::UserUpdated)
                .user(user.id, &user.username)
                .detail("profile"),
            now,
        )
        .await?;
    let user = state
        .store
        .find_user(user.id)
        .await?
        .ok_or_else(unknown_user)?;
    Ok(user_response(HttpResponse::Ok(), &user))
}

/// Disables or enables `id` and audits it as `kind`.
async fn set_disabled(
    caller: &AdminCaller,
    state: &AppState,
    id: &str,
    disabled: bool,
    kind: AuditKind,
) -> Result<HttpResponse, Problem> {
    let user = find(state, id).await?;
    let now = clock::now();
    if !state
        .store
        .set_user_disabled(user.id, disabled, now)
        .await?
    {
        return Err(unknown_user());
    }
    state
        .store
        .record_audit(caller.audit(kind).user(user.id, &user.username), now)
        .await?;
    let user = state
        .store
        .find_user(user.id)
        .await?
        .ok_or_else(unknown_user)?;
    Ok(user_response(HttpResponse::Ok(), &user))
}

/// Disables a user: their sessions are signed out and every grant (all their tokens) revoked.
#[utoipa::path(
    post,
    path = "/admin/users/{id}/disable",
    tag = "users",
    params(("id" = String, Path, description = "The user's id")),
    responses(
        (status = 200, description = "Disabled", body = UserView),
        (status = 404, description = "No such user", body = ProblemBody, content_type = "application/problem+json"),
    )
)]
pub async fn disable(
    caller: AdminCaller,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, Problem> {
    set_disabled(&caller, &state, &id, true, AuditKind::UserDisabled).await
}

/// Lets a disabled user sign in again (no old token comes back).
#[utoipa::path(
    post,
    path = "/admin/users/{id}/enable",
    tag = "users",
    params(("id" = String, Path, description = "The user's id")),
    responses(
        (status = 200, description = "Enabled", body = UserView),
        (status = 404, description = "No such user", body = ProblemBody, content_type = "application/problem+json"),
    )
)]
pub async fn enable(
    caller: AdminCaller,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, Problem> {
    set_disabled(&caller, &state, &id, false, AuditKind::UserEnabled).await
}

/// Sets a new password: the user's sessions are signed out and every grant revoked.
#[utoipa::path(
    post,
    path = "/admin/users/{id}/password",
    tag = "users",
    params(("id" = String, Path, description = "The user's id")),
    request_body = NewPassword,
    responses(
        (status = 204, description = "Set"),
        (status = 404, description = "No such user", body = ProblemBody, content_type = "application/problem+json"),
    )
)]
pub async fn set_password(
    caller: AdminCaller,
    state: web::Data<AppState>,
    id: web::Path<String>,
    body: web::Json<NewPassword>,
) -> Result<HttpResponse, Problem> {
    let user = find(&state, &id).await?;
    let hash = hashed(&state, body.into_inner().password).await?;
    let now = clock::now();
    if !state.store.set_user_password(user.id, hash, now).await? {
        return Err(unknown_user());
    }
    state
        .store
        .record_audit(
            caller
                .audit(AuditKind::PasswordSet)
                .user(user.id, &user.username),
            now,
        )
        .await?;
    Ok(no_content())
}

/// Deletes a user with their grants, tokens and consents.
#[utoipa::path(
    delete,
    path = "/admin/users/{id}",
    tag = "users",
    params(("id" = String, Path, description = "The user's id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such user", body = ProblemBody, content_type = "application/problem+json"),
    )
)]
pub async fn delete(
    caller: AdminCaller,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, Problem> {
    let user = find(&state, &id).await?;
    if !state.store.delete_user(user.id).await? {
        return Err(unknown_user());
    }
    state
        .store
        .record_audit(
            caller
                .audit(AuditKind::UserDeleted)
                .user(user.id, &user.username),
            clock::now(),
        )
        .await?;
    Ok(no_content())
}

/// The user's second factors, recovery codes left and any sign-in lock.
#[utoipa::path(
    get,
    path = "/admin/users/{id}/second-factor",
    tag = "users",
    params(("id" = String, Path, description = "The user's id")),
    responses(
        (status = 200, description = "Second-factor status", body = FactorStatus),
        (status = 404, description = "No such user", body = ProblemBody, content_type = "application/problem+json"),
    )
)]
pub async fn second_factor(
    _caller: AdminCaller,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, Problem> {
    let user = find(&state, &id).await?;
    let status = state.factors.status(&user, clock::now()).await?;
    Ok(HttpResponse::Ok().json(status))
}

/// Removes every factor and recovery code of the user (a lost device) and lifts any lock;
/// their sessions are signed out.
#[utoipa::path(
    delete,
    path = "/admin/users/{id}/second-factor",
    tag = "users",
    params(("id" = String, Path, description = "The user's id")),
    responses(
        (status = 200, description = "Reset", body = FactorsReset),
        (status = 404, description = "No such user", body = ProblemBody, content_type = "application/problem+json"),
    )
)]
pub async fn reset_second_factor(
    caller: AdminCaller,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, Problem> {
    let user = find(&state, &id).await?;
    let removed = state
        .factors
        .reset_by(&user, Some(&caller.actor()), clock::now())
        .await?;
    Ok(HttpResponse::Ok().json(FactorsReset {
        factors_removed: removed,
    }))
}

/// The consents the user gave.
#[utoipa::path(
    get,
    path = "/admin/users/{id}/consents",
    tag = "users",
    params(("id" = String, Path, description = "The user's id")),
    responses(
        (status = 200, description = "Consents", body = Vec<ConsentItem>),
        (status = 404, description = "No such user", body = ProblemBody, content_type = "application/problem+json"),
    )
)]
pub async fn consents(
    _caller: AdminCaller,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, Problem> {
    let user = find(&state, &id).await?;
    let consents: Vec<ConsentItem> = state
        .store
        .list_consents(user.id)
        .await?
        .into_iter()
        .map(|c| ConsentItem {
            client_id: c.client_id,
            client_name: c.client_name,
            scope: c.scope.to_string(),
            updated_at: c.updated_at,
        })
        .collect();
    Ok(HttpResponse::Ok().json(consents))
}

/// Withdraws the user's consent to a client and revokes every grant they gave it.
#[utoipa::path(
    delete,
    path = "/admin/users/{id}/consents/{client_id}",
    tag = "users",
    params(
        ("id" = String, Path, description = "The user's id"),
        ("client_id" = String, Path, description = "The client's id"),
    ),
    responses(
        (status = 204, description = "Withdrawn"),
        (status = 404, description = "No such user or consent", body = ProblemBody, content_type = "application/problem+json"),
    )
)]
pub async fn withdraw_consent(
    caller: AdminCaller,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, Problem> {
    let (id, client_id) = path.into_inner();
    let user = find(&state, &id).await?;
    let now = clock::now();
    if !state
        .store
        .withdraw_consent(user.id, &client_id, now)
        .await?
    {
        return Err(Problem::not_found("the user gave this client no consent"));
    }
    state
        .store
        .record_audit(
            caller
                .audit(AuditKind::ConsentWithdrawn)
                .user(user.id, &user.username)
                .client(Some(&client_id)),
            now,
        )
        .await?;
    Ok(no_content())
}
