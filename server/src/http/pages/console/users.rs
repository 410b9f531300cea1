//! `/console/users`: the list with a username filter; one user's second factor, grants and
//! consents; disable, enable, reset the second factor, revoke a grant, withdraw a consent.
use super::{ConsoleError, ConsoleForm, ConsolePage, PAGE_SIZE, audited, done, render, when};
use crate::clock;
use crate::http::AppState;
use crate::http::page_extract::CsrfForm;
use crate::store::{Actor, AuditKind, GrantOwner, User, normalize_username};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Live grants the user page lists (newest first).
const MAX_GRANTS: u64 = 100;

/// Longest username filter read (usernames have at most 64 characters).
const MAX_FILTER: usize = 64;

#[derive(Deserialize)]
pub struct ListQuery {
    /// Part of a username.
    q: Option<String>,
    /// The last (normalized) username of the previous page.
    after: Option<String>,
}

#[derive(Serialize)]
struct Line {
    id: String,
    username: String,
    disabled: bool,
    admin: bool,
    created: String,
}

pub async fn list(
    req: HttpRequest,
    state: web::Data<AppState>,
    page: ConsolePage,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, ConsoleError> {
    let filter: String = query
        .q
        .as_deref()
        .unwrap_or("")
        .trim()
        .chars()
        .take(MAX_FILTER)
        .collect();
    let after = query.after.as_deref().filter(|a| !a.is_empty());
    let mut rows = state
        .store
        .user_summaries(&filter, after, PAGE_SIZE + 1)
        .await?;
    let more = rows.len() as u64 > PAGE_SIZE;
    rows.truncate(PAGE_SIZE as usize);
    let next = more
        .then(|| rows.last().map(|u| normalize_username(&u.username)))
        .flatten();
    let users: Vec<Line> = rows
        .into_iter()
        .map(|u| Line {
            id: u.id.to_string(),
            created: when(u.created_at),
            username: u.username,
            disabled: u.disabled,
            admin: u.admin,
        })
        .collect();
    render(
        &req,
        &page.session,
        &page.operator,
        StatusCode::OK,
        "console_users.html",
        minijinja::context! { section => "users", users, q => filter, next, paged => after.is_some() },
    )
}

#[derive(Serialize)]
struct ConsentLine {
    client_id: String,
    client_name: String,
    scope: String,
    updated: String,
}

#[derive(Serialize)]
struct GrantLine {
    id: String,
    client_id: String,
    grant_type: String,
    scope: String,
    created: String,
    expires: String,
}

/// `GET /console/users/{id}`
pub async fn show(
    req: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
    page: ConsolePage,
) -> Result<HttpResponse, ConsoleError> {
    let user = find(&state, &id).await?;
    let factors: Vec<&'static str> = state
        .store
        .confirmed_factors(user.id)
        .await?
        .iter()
        .map(|f| f.kind.label())
        .collect();
    let consents: Vec<ConsentLine> = state
        .store
        .list_consents(user.id)
        .await?
        .into_iter()
        .map(|c| ConsentLine {
            client_id: c.client_id,
            client_name: c.client_name,
            scope: c.scope.to_string(),
            updated: when(c.updated_at),
        })
        .collect();
    let grants: Vec<GrantLine> = state
        .store
        .list_grants(&GrantOwner::User(user.id), clock::now(), MAX_GRANTS)
        .await?
        .into_iter()
        .map(|g| GrantLine {
            id: g.id.to_string(),
            client_id: g.client_id,
            grant_type: g.grant_type,
            scope: g.scope,
            created: when(g.created_at),
            expires: when(g.expires_at),
        })
        .collect();
    render(
        &req,
        &page.session,
        &page.operator,
        StatusCode::OK,
        "console_user.html",
        minijinja::context! {
            section => "users",
            user => minijinja::context! {
                id => user.id.to_string(),
                username => &user.username,
                name => &user.name,
                email => &user.email,
                disabled => user.disabled,
                admin => user.admin,
                created => when(user.created_at),
            },
            myself => user.id == page.operator.id,
            factors,
            consents,
            grants,
        },
    )
}

/// `POST /console/users/{id}/disable`: the user cannot sign in; their sessions end and every
/// grant (all their tokens) is revoked.
pub async fn disable(
    req: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
    page: ConsoleForm<CsrfForm>,
) -> Result<HttpResponse, ConsoleError> {
    set_disabled(req, state, id, page, true).await
}

/// `POST /console/users/{id}/enable`
pub async fn enable(
    req: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
    page: ConsoleForm<CsrfForm>,
) -> Result<HttpResponse, ConsoleError> {
    set_disabled(req, state, id, page, false).await
}

async fn set_disabled(
    req: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
    page: ConsoleForm<CsrfForm>,
    disabled: bool,
) -> Result<HttpResponse, ConsoleError> {
    let user = find(&state, &id).await?;
    let location = format!("/console/users/{}", user.id);
    if user.id == page.operator.id {
        // The console would lock its own operator out at the next request.
        return Ok(done(
            &req,
            &location,
            "You cannot disable your own account here.",
        ));
    }
    let now = clock::now();
    if !state
        .store
        .set_user_disabled(user.id, disabled, now)
        .await?
    {
        return Err(ConsoleError::NotFound(
            "There is no such user: they may have been deleted.",
        ));
    }
    let (kind, notice) = if disabled {
        (
            AuditKind::UserDisabled,
            format!(
                "Disabled {}: their sessions are signed out and their tokens revoked.",
                user.username
            ),
        )
    } else {
        (
            AuditKind::UserEnabled,
            format!("Enabled {}.", user.username),
        )
    };
    let entry = audited(&req, &page.operator, kind)
        .user(user.id, &user.username)
        .detail("in the console");
    state.store.record_audit(entry, now).await?;
    Ok(done(&req, &location, &notice))
}

/// `POST /console/users/{id}/second-factor/reset`: every factor and recovery code goes and
/// any lock is lifted (a lost device); the user's sessions are signed out.
pub async fn reset_second_factor(
    req: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
    page: ConsoleForm<CsrfForm>,
) -> Result<HttpResponse, ConsoleError> {
    let user = find(&state, &id).await?;
    let location = format!("/console/users/{}", user.id);
    if user.id == page.operator.id {
        return Ok(done(
            &req,
            &location,
            "You cannot reset your own second factor here: remove it on your account page.",
        ));
    }
    let now = clock::now();
    let operator = Actor::User(page.operator.username.clone());
    let removed = state
        .factors
        .reset_by(&user, Some(&operator), now)
        .await
        .map_err(|err| ConsoleError::Page(err.into()))?;
    Ok(done(
        &req,
        &location,
        &format!(
            "Removed {removed} factor(s) and the recovery codes of {}; their sessions are signed out.",
            user.username
        ),
    ))
}

/// `POST /console/users/{id}/grants/{grant_id}/revoke`: every token of the grant stops
/// working. The consent stays: the application may ask again without asking the user.
pub async fn revoke_grant(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    page: ConsoleForm<CsrfForm>,
) -> Result<HttpResponse, ConsoleError> {
    let (id, grant_id) = path.into_inner();
    let user = find(&state, &id).await?;
    let location = format!("/console/users/{}", user.id);
    let Ok(grant_id) = grant_id.parse::<Uuid>() else {
        return Err(ConsoleError::NotFound("There is no such grant."));
    };
    let now = clock::now();
    if !state
        .store
        .revoke_grant_of(&GrantOwner::User(user.id), grant_id, now)
        .await?
    {
        return Ok(done(
            &req,
            &location,
            "That grant was already revoked or has expired.",
        ));
    }
    let entry = audited(&req, &page.operator, AuditKind::GrantsRevoked)
        .user(user.id, &user.username)
        .detail(format!("grant {grant_id}, in the console"));
    state.store.record_audit(entry, now).await?;
    Ok(done(
        &req,
        &location,
        "Revoked the grant: its tokens no longer work.",
    ))
}

/// `POST /console/users/{id}/consents/{client_id}/withdraw`: the consent goes and every grant
/// the user gave the client is revoked.
pub async fn withdraw_consent(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    page: ConsoleForm<CsrfForm>,
) -> Result<HttpResponse, ConsoleError> {
    let (id, client_id) = path.into_inner();
    let user = find(&state, &id).await?;
    let location = format!("/console/users/{}", user.id);
    let now = clock::now();
    if !state
        .store
        .withdraw_consent(user.id, &client_id, now)
        .await?
    {
        return Ok(done(&req, &location, "That consent was already withdrawn."));
    }
    let entry = audited(&req, &page.operator, AuditKind::ConsentWithdrawn)
        .user(user.id, &user.username)
        .client(Some(&client_id))
        .detail("in the console: every grant of the client revoked");
    state.store.record_audit(entry, now).await?;
    Ok(done(
        &req,
        &location,
        &format!(
            "Withdrew the consent of {} to {client_id} and revoked its grants.",
            user.username
        ),
    ))
}

/// The user `id` names; 404 for anything else.
async fn find(state: &AppState, id: &str) -> Result<User, ConsoleError> {
    const UNKNOWN: &str = "There is no such user: they may have been deleted.";
    let id: Uuid = id.parse().map_err(|_| ConsoleError::NotFound(UNKNOWN))?;
    state
        .store
        .find_user(id)
        .await?
        .ok_or(ConsoleError::NotFound(UNKNOWN))
}
