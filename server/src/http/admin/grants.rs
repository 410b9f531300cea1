//! `/admin/users/{id}/grants` and `/admin/clients/{id}/grants`: the live grants (token
//! families) of a person or a client, and their revocation. A revoked grant's tokens are
//! inactive at once here and, through the change log, everywhere.
use super::caller::AdminCaller;
use super::problem::{Problem, ProblemBody};
use super::support::{no_content, path_uuid};
use crate::clock;
use crate::http::AppState;
use crate::store::{AuditKind, GrantOwner, GrantView, MAX_GRANT_LIST};
use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// How many grants a revocation revoked.
#[derive(Debug, Serialize, ToSchema)]
pub struct GrantsRevoked {
    pub revoked: u64,
}

/// The size of a grant listing.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct GrantLimit {
    /// At most this many grants, newest first (default and most: 1000).
    pub limit: Option<u64>,
}

/// A user `id` names, as an owner, with the name the audit log shows.
async fn user_owner(
    state: &AppState,
    id: &str,
) -> Result<(GrantOwner, uuid::Uuid, String), Problem> {
    let id = path_uuid(id)?;
    let user = state
        .store
        .find_user(id)
        .await?
        .ok_or_else(|| Problem::not_found("no such user"))?;
    Ok((GrantOwner::User(user.id), user.id, user.username))
}

/// The id of the client `id` names.
async fn client_owner(state: &AppState, id: &str) -> Result<String, Problem> {
    let client = state
        .store
        .find_client(id)
        .await?
        .ok_or_else(|| Problem::not_found("no such client"))?;
    Ok(client.id)
}

async fn listing(
    state: &AppState,
    owner: &GrantOwner,
    limit: &GrantLimit,
) -> Result<HttpResponse, Problem> {
    if limit.limit == Some(0) {
        return Err(Problem::bad_request("limit must be at least 1"));
    }
    let grants = state
        .store
        .list_grants(owner, clock::now(), limit.limit.unwrap_or(MAX_GRANT_LIST))
        .await?;
    Ok(HttpResponse::Ok().json(grants))
}

/// The user's live grants, newest first.
#[utoipa::path(
    get,
    path = "/admin/users/{id}/grants",
    tag = "grants",
    params(("id" = String, Path, description = "The user's id"), GrantLimit),
    responses(
        (status = 200, description = "Live grants", body = Vec<GrantView>),
        (status = 404, description = "No such user", body = ProblemBody, content_type = "application/problem+json"),
    )
)]
pub async fn of_user(
    _caller: AdminCaller,
    state: web::Data<AppState>,
    id: web::Path<String>,
    limit: web::Query<GrantLimit>,
) -> Result<HttpResponse, Problem> {
    let (owner, ..) = user_owner(&state, &id).await?;
    listing(&state, &owner, &limit).await
}

/// The client's live grants (its own and those people gave it), newest first.
#[utoipa::path(
    get,
    path = "/admin/clients/{id}/grants",
    tag = "grants",
    params(("id" = String, Path, description = "The client's id"), GrantLimit),
    responses(
        (status = 200, description = "Live grants", body = Vec<GrantView>),
        (status = 404, description = "No such client", body = ProblemBody, content_type = "application/problem+json"),
    )
)]
pub async fn of_client(
    _caller: AdminCaller,
    state: web::Data<AppState>,
    id: web::Path<String>,
    limit: web::Query<GrantLimit>,
) -> Result<HttpResponse, Problem> {
    let owner = GrantOwner::Client(client_owner(&state, &id).await?);
    listing(&state, &owner, &limit).await
}

/// Revokes every live grant of the user: all their tokens.
#[utoipa::path(
    delete,
    path = "/admin/users/{id}/grants",
    tag = "grants",
    params(("id" = String, Path, description = "The user's id")),
    responses(
        (status = 200, description = "Revoked", body = GrantsRevoked),
        (status = 404, description = "No such user", body = ProblemBody, content_type = "application/problem+json"),
    )
)]
pub async fn revoke_user_grants(
    caller: AdminCaller,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, Problem> {
    let (owner, user_id, username) = user_owner(&state, &id).await?;
    let now = clock::now();
    let revoked = state.store.revoke_grants_of(&owner, now).await?;
    let entry = caller
        .audit(AuditKind::GrantsRevoked)
        .user(user_id, &username)
        .detail(format!("all: {revoked}"));
    state.store.record_audit(entry, now).await?;
    Ok(HttpResponse::Ok().json(GrantsRevoked { revoked }))
}

/// Revokes one grant of the user.
#[utoipa::path(
    delete,
    path = "/admin/users/{id}/grants/{grant_id}",
    tag = "grants",
    params(
        ("id" = String, Path, description = "The user's id"),
        ("grant_id" = String, Path, description = "The grant's id"),
    ),
    responses(
        (status = 204, description = "Revoked"),
        (status = 404, description = "No such user, or no live grant of theirs with this id", body = ProblemBody, content_type = "application/problem+json"),
    )
)]
pub async fn revoke_user_grant(
    caller: AdminCaller,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, Problem> {
    let (id, grant_id) = path.into_inner();
    let (owner, user_id, username) = user_owner(&state, &id).await?;
    let grant_id = path_uuid(&grant_id)?;
    let now = clock::now();
    if !state.store.revoke_grant_of(&owner, grant_id, now).await? {
        return Err(Problem::not_found(
            "the user has no live grant with this id",
        ));
    }
    let entry = caller
        .audit(AuditKind::GrantsRevoked)
        .user(user_id, &username)
        .detail(format!("grant {grant_id}"));
    state.store.record_audit(entry, now).await?;
    Ok(no_content())
}

/// Revokes every live grant of the client: all its tokens, and those it holds for people.
#[utoipa::path(
    delete,
    path = "/admin/clients/{id}/grants",
    tag = "grants",
    params(("id" = String, Path, description = "The client's id")),
    responses(
        (status = 200, description = "Revoked", body = GrantsRevoked),
        (status = 404, description = "No such client", body = ProblemBody, content_type = "application/problem+json"),
    )
)]
pub async fn revoke_client_grants(
    caller: AdminCaller,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, Problem> {
    let client_id = client_owner(&state, &id).await?;
    let now = clock::now();
    let owner = GrantOwner::Client(client_id.clone());
    let revoked = state.store.revoke_grants_of(&owner, now).await?;
    let entry = caller
        .audit(AuditKind::GrantsRevoked)
        .client(Some(&client_id))
        .detail(format!("all: {revoked}"));
    state.store.record_audit(entry, now).await?;
    Ok(HttpResponse::Ok().json(GrantsRevoked { revoked }))
}
