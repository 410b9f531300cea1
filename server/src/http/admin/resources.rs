//! `/admin/resources…`: the APIs tokens are for (RFC 8707), as `umbra resource …` manages
//! them, through the same checks ([`crate::manage`]). The identifier is an absolute URI: in a
//! path it is percent-encoded (`/admin/resources/https%3A%2F%2Forders.example`).
use super::caller::AdminCaller;
use super::problem::{Problem, ProblemBody};
use super::support::{if_match, no_content, with_etag};
use crate::clock;
use crate::http::AppState;
use crate::manage::{self, ManageError, ResourceView};
use crate::oauth::scope::ScopeSet;
use crate::store::{AuditKind, Replaced, Resource, ResourceChange};
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, HttpResponseBuilder, web};
use serde::Deserialize;
use utoipa::ToSchema;

impl From<ManageError> for Problem {
    fn from(err: ManageError) -> Self {
        match err {
            ManageError::Invalid(message) => Problem::BadRequest(message),
            ManageError::NotFound(message) => Problem::NotFound(message),
            ManageError::Random => Problem::internal(err),
            ManageError::Store(err) => err.into(),
        }
    }
}

/// A new resource.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewResource {
    /// The absolute URI that names it (RFC 8707 §2).
    pub identifier: String,
    pub name: String,
    /// Space-separated scopes it defines.
    #[serde(default)]
    pub scopes: String,
    /// Confidential clients that introspect its tokens.
    #[serde(default)]
    pub introspectors: Vec<String>,
}

/// A change of a resource; a member left out stays as it is.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResourcePatch {
    pub name: Option<String>,
    /// Space-separated scopes: replaces the list. A client allowed only some scopes keeps
    /// those still defined.
    pub scopes: Option<String>,
    /// Replaces the list of introspecting clients.
    pub introspectors: Option<Vec<String>>,
}

fn scopes(raw: &str) -> Result<ScopeSet, Problem> {
    ScopeSet::parse(raw)
        .map_err(|_| Problem::bad_request("a scope may not contain quotes or backslashes"))
}

/// The identifier in a path, percent-decoded.
fn identifier(raw: &str) -> Result<String, Problem> {
    percent_encoding::percent_decode_str(raw)
        .decode_utf8()
        .map(|id| id.into_owned())
        .map_err(|_| Problem::not_found("no such resource"))
}

/// The resource as it is stored now, answered with `status` and its version as `ETag`.
async fn view(
    state: &AppState,
    identifier: &str,
    status: HttpResponseBuilder,
) -> Result<HttpResponse, Problem> {
    let resource = state
        .store
        .find_resource(identifier)
        .await?
        .ok_or_else(|| Problem::not_found("no such resource"))?;
    Ok(with_etag(status, resource.version).json(ResourceView::of(&resource)))
}

/// Every resource.
#[utoipa::path(
    get,
    path = "/admin/resources",
    tag = "resources",
    responses((status = 200, description = "Resources", body = Vec<ResourceView>))
)]
pub async fn list(
    _caller: AdminCaller,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Problem> {
    let resources = state.store.list_resources().await?;
    let views: Vec<ResourceView> = resources.iter().map(ResourceView::of).collect();
    Ok(HttpResponse::Ok().json(views))
}

/// Registers a resource.
#[utoipa::path(
    post,
    path = "/admin/resources",
    tag = "resources",
    request_body = NewResource,
    responses(
        (status = 201, description = "Created", body = ResourceView),
        (status = 409, description = "The identifier is registered already", body = ProblemBody, content_type = "application/problem+json"),
    )
)]
pub async fn create(
    caller: AdminCaller,
    state: web::Data<AppState>,
    body: web::Json<NewResource>,
) -> Result<HttpResponse, Problem> {
    let body = body.into_inner();
    manage::resource_identifier(&body.identifier)?;
    let new = Resource {
        name: manage::resource_name(&body.name)?,
        scopes: scopes(&body.scopes)?,
        introspectors: manage::introspectors(&state.store, &body.introspectors).await?,
        identifier: body.identifier,
        clients: Vec::new(),
        version: 1,
    };
    let now = clock::now();
    state.store.create_resource(&new, now).await?;
    state
        .store
        .record_audit(
            caller
                .audit(AuditKind::ResourceCreated)
                .detail(new.identifier.clone()),
            now,
        )
        .await?;
    let location = format!(
        "/admin/resources/{}",
        percent_encoding::utf8_percent_encode(&new.identifier, percent_encoding::NON_ALPHANUMERIC)
    );
    let mut created = HttpResponse::Created();
    created.insert_header((header::LOCATION, location));
    view(&state, &new.identifier, created).await
}

/// One resource, with the clients that introspect for it and that may ask for it.
#[utoipa::path(
    get,
    path = "/admin/resources/{identifier}",
    tag = "resources",
    params(("identifier" = String, Path, description = "The resource's identifier, percent-encoded")),
    responses(
        (status = 200, description = "The resource", body = ResourceView),
        (status = 404, description = "No such resource", body = ProblemBody, content_type = "application/problem+json"),
    )
)]
pub async fn show(
    _caller: AdminCaller,
    state: web::Data<AppState>,
    raw: web::Path<String>,
) -> Result<HttpResponse, Problem> {
    let identifier = identifier(&raw)?;
    view(&state, &identifier, HttpResponse::Ok()).await
}

/// Changes a resource's name, scopes or introspectors; `If-Match` with its `ETag` is required.
#[utoipa::path(
    patch,
    path = "/admin/resources/{identifier}",
    tag = "resources",
    params(
        ("identifier" = String, Path, description = "The resource's identifier, percent-encoded"),
        ("If-Match" = String, Header, description = "The ETag of the version this change replaces"),
    ),
    request_body = ResourcePatch,
    responses(
        (status = 200, description = "Changed", body = ResourceView),
        (status = 404, description = "No such resource", body = ProblemBody, content_type = "application/problem+json"),
        (status = 412, description = "The resource changed since that ETag", body = ProblemBody, content_type = "application/problem+json"),
        (status = 428, description = "If-Match is missing", body = ProblemBody, content_type = "application/problem+json"),
    )
)]
pub async fn update(
    req: HttpRequest,
    caller: AdminCaller,
    state: web::Data<AppState>,
    raw: web::Path<String>,
    body: web::Json<ResourcePatch>,
) -> Result<HttpResponse, Problem> {
    let identifier = identifier(&raw)?;
    let expected = if_match(&req)?.ok_or(Problem::PreconditionRequired)?;
    let body = body.into_inner();
    let introspectors = match &body.introspectors {
        Some(ids) => Some(manage::introspectors(&state.store, ids).await?),
        None => None,
    };
    let change = ResourceChange {
        name: body
            .name
            .as_deref()
            .map(manage::resource_name)
            .transpose()?,
        scopes: body.scopes.as_deref().map(scopes).transpose()?,
        introspectors,
    };
    if change.name.is_none() && change.scopes.is_none() && change.introspectors.is_none() {
        return Err(Problem::bad_request(
            "nothing to change: give name, scopes or introspectors",
        ));
    }
    let now = clock::now();
    match state
        .store
        .update_resource(&identifier, &change, Some(expected), now)
        .await?
    {
        Replaced::Done { .. } => {}
        Replaced::VersionMismatch { current } => {
            return Err(Problem::PreconditionFailed { current });
        }
        Replaced::NotFound => return Err(Problem::not_found("no such resource")),
    }
    state
        .store
        .record_audit(
            caller
                .audit(AuditKind::ResourceUpdated)
                .detail(identifier.clone()),
            now,
        )
        .await?;
    view(&state, &identifier, HttpResponse::Ok()).await
}

/// Deletes a resource and every client's permission for it, and revokes every token issued
/// for it.
#[utoipa::path(
    delete,
    path = "/admin/resources/{identifier}",
    tag = "resources",
    params(("identifier" = String, Path, description = "The resource's identifier, percent-encoded")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such resource", body = ProblemBody, content_type = "application/problem+json"),
    )
)]
pub async fn delete(
    caller: AdminCaller,
    state: web::Data<AppState>,
    raw: web::Path<String>,
) -> Result<HttpResponse, Problem> {
    let identifier = identifier(&raw)?;
    let now = clock::now();
    if !state.store.delete_resource(&identifier, now).await? {
        return Err(Problem::not_found("no such resource"));
    }
    state
        .store
        .record_audit(
            caller.audit(AuditKind::ResourceDeleted).detail(identifier),
            now,
        )
        .await?;
    Ok(no_content())
}
