//! `/admin/clients…`: clients, created and replaced through the one client-metadata module
//! ([`crate::oauth::registration`]) with an operator's trusted policy, as `umbra client`
//! does.
//!
//! A create that names its `client_id` is idempotent: the same id with the same metadata
//! again answers 200 with the client as it is (its secret is not shown again); with other
//! metadata, 409. A replacement (`PUT`) is conditional on the `ETag` it read.
use super::caller::AdminCaller;
use super::problem::{Problem, ProblemBody};
use super::support::{
    PageParams, decode_cursor, encode_cursor, if_match, no_content, no_store, with_etag,
};
use crate::clock;
use crate::http::AppState;
use crate::manage;
use crate::oauth::client::Client;
use crate::oauth::grant_type::GrantType;
use crate::oauth::registration::{ClientMetadata, MetadataError, RegistrationPolicy};
use crate::store::{AuditKind, ClientQuery, Replaced, StoreError};
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, HttpResponseBuilder, web};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// A client as the admin API shows it: its metadata, never its secret.
#[derive(Debug, Serialize, ToSchema)]
pub struct ClientView {
    #[serde(flatten)]
    pub metadata: ClientMetadata,
    /// When its secret expires (Unix seconds); absent: never, or no secret.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_secret_expires_at: Option<i64>,
    /// The row version, also the `ETag`.
    pub version: i64,
}

impl ClientView {
    fn of(client: &Client) -> Self {
        Self {
            metadata: ClientMetadata::of(client),
            client_secret_expires_at: client.secret_expires_at,
            version: client.version,
        }
    }
}

/// A client just created, with its secret: shown this once.
#[derive(Serialize, ToSchema)]
pub struct CreatedClient {
    #[serde(flatten)]
    pub client: ClientView,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
}

/// A new secret, shown this once.
#[derive(Serialize, ToSchema)]
pub struct NewSecret {
    pub client_id: String,
    pub client_secret: String,
}

/// A page of clients.
#[derive(Debug, Serialize, ToSchema)]
pub struct ClientList {
    pub clients: Vec<ClientView>,
    /// The cursor of the next page; absent on the last.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

/// Filters of the client list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ClientFilter {
    /// Names starting with this (ASCII letters case-insensitive).
    pub name: Option<String>,
    /// Clients allowed this grant type.
    pub grant_type: Option<String>,
    pub limit: Option<u64>,
    pub cursor: Option<String>,
}

impl From<MetadataError> for Problem {
    fn from(err: MetadataError) -> Self {
        match err {
            MetadataError::Random => Problem::internal(err),
            other => Problem::BadRequest(other.to_string()),
        }
    }
}

/// An operator's policy: everything Umbra can do, no development shortcuts.
fn policy() -> RegistrationPolicy {
    RegistrationPolicy::trusted(false, false)
}

fn unknown_client() -> Problem {
    Problem::not_found("no such client")
}

fn client_response(response: HttpResponseBuilder, client: &Client) -> HttpResponse {
    with_etag(response, client.version).json(ClientView::of(client))
}

/// What a metadata document says, in a form two documents can be compared in: resources in
/// order, without repeats.
fn comparable(mut metadata: ClientMetadata) -> ClientMetadata {
    metadata.resources.sort_unstable();
    metadata.resources.dedup();
    metadata
}

/// 200 with `existing` if `asked` would leave it as it is, else 409.
fn existing_or_conflict(existing: &Client, asked: ClientMetadata) -> Result<HttpResponse, Problem> {
    let resources = asked.resources.clone();
    let same = match asked.apply_to(existing, &policy()) {
        Ok(candidate) => {
            let mut candidate = ClientMetadata::of(&candidate);
            candidate.resources = resources;
            comparable(candidate) == comparable(ClientMetadata::of(existing))
        }
        Err(_) => false,
    };
    if same {
        Ok(client_response(HttpResponse::Ok(), existing))
    } else {
        Err(Problem::conflict(format!(
            "a client with id {:?} exists with other metadata",
            existing.id
        )))
    }
}

/// Creates a client; idempotent when the body names its `client_id`.
#[utoipa::path(
    post,
    path = "/admin/clients",
    tag = "clients",
    request_body = ClientMetadata,
    responses(
        (status = 201, description = "Created; the secret is shown this once", body = CreatedClient),
        (status = 200, description = "The same client existed already (no secret)", body = ClientView),
        (status = 409, description = "The client_id is taken by a client with other metadata", body = ProblemBody, content_type = "application/problem+json"),
    )
)]
pub async fn create(
    caller: AdminCaller,
    state: web::Data<AppState>,
    body: web::Json<ClientMetadata>,
) -> Result<HttpResponse, Problem> {
    let asked = body.into_inner();
    let registration = asked.clone().register(&policy())?;
    let chosen = asked.client_id.is_some();
    if chosen && let Some(existing) = state.store.find_client(&registration.client.id).await? {
        return existing_or_conflict(&existing, asked);
    }
    let now = clock::now();
    manage::registration_prerequisites(&state.store, &registration, now).await?;
    let client = match state
        .store
        .create_client_with_resources(registration.client, &registration.resources, now)
        .await
    {
        Ok(client) => client,
        // The same id created meanwhile by a request like this one: its answer.
        Err(StoreError::Conflict(_)) if chosen => {
            let id = asked.client_id.clone().unwrap_or_default();
            let existing =
                state.store.find_client(&id).await?.ok_or_else(|| {
                    Problem::conflict("the client_id was taken and freed meanwhile")
                })?;
            return existing_or_conflict(&existing, asked);
        }
        Err(StoreError::Gone(_)) => {
            return Err(Problem::bad_request(
                "a resource it names was deleted meanwhile",
            ));
        }
        Err(err) => return Err(err.into()),
    };
    state
        .store
        .record_audit(
            caller
                .audit(AuditKind::ClientCreated)
                .client(Some(&client.id)),
            now,
        )
        .await?;
    let mut response = with_etag(HttpResponse::Created(), client.version);
    no_store(&mut response);
    response.insert_header((header::LOCATION, format!("/admin/clients/{}", client.id)));
    Ok(response.json(CreatedClient {
        client: ClientView::of(&client),
        client_secret: registration.secret.map(|s| s.expose().to_owned()),
    }))
}

/// Lists clients in id order, a page at a time.
#[utoipa::path(
    get,
    path = "/admin/clients",
    tag = "clients",
    params(ClientFilter),
    responses((status = 200, description = "A page of clients", body = ClientList))
)]
pub async fn list(
    _caller: AdminCaller,
    state: web::Data<AppState>,
    filter: web::Query<ClientFilter>,
) -> Result<HttpResponse, Problem> {
    let filter = filter.into_inner();
    let grant_type = match filter.grant_type.as_deref() {
        Some(name) => Some(
            name.parse::<GrantType>()
                .map_err(|e| Problem::bad_request(e.to_string()))?,
        ),
        None => None,
    };
    let page = PageParams {
        limit: filter.limit,
        cursor: filter.cursor,
    };
    let query = ClientQuery {
        name_prefix: filter.name.filter(|n| !n.is_empty()),
        grant_type,
        after: page.cursor.as_deref().map(decode_cursor).transpose()?,
        limit: page.size()?,
    };
    let page = state.store.query_clients(&query).await?;
    Ok(HttpResponse::Ok().json(ClientList {
        clients: page.clients.iter().map(ClientView::of).collect(),
        next: page.next.as_deref().map(encode_cursor),
    }))
}

/// One client, with its version as `ETag`.
#[utoipa::path(
    get,
    path = "/admin/clients/{id}",
    tag = "clients",
    params(("id" = String, Path, description = "The client's id")),
    responses(
        (status = 200, description = "The client", body = ClientView),
        (status = 404, description = "No such client", body = ProblemBody, content_type = "application/problem+json"),
    )
)]
pub async fn show(
    _caller: AdminCaller,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, Problem> {
    let client = state
        .store
        .find_client(&id)
        .await?
        .ok_or_else(unknown_client)?;
    Ok(client_response(HttpResponse::Ok(), &client))
}

/// Replaces a client's metadata (and its resource links); `If-Match` is required. The id,
/// the secret and the way the client authenticates stay.
#[utoipa::path(
    put,
    path = "/admin/clients/{id}",
    tag = "clients",
    params(
        ("id" = String, Path, description = "The client's id"),
        ("If-Match" = String, Header, description = "The ETag of the version this replaces"),
    ),
    request_body = ClientMetadata,
    responses(
        (status = 200, description = "Replaced", body = ClientView),
        (status = 404, description = "No such client", body = ProblemBody, content_type = "application/problem+json"),
        (status = 412, description = "The client changed since that ETag", body = ProblemBody, content_type = "application/problem+json"),
        (status = 428, description = "If-Match is missing", body = ProblemBody, content_type = "application/problem+json"),
    )
)]
pub async fn replace(
    caller: AdminCaller,
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<String>,
    body: web::Json<ClientMetadata>,
) -> Result<HttpResponse, Problem> {
    let existing = state
        .store
        .find_client(&id)
        .await?
        .ok_or_else(unknown_client)?;
    let version = if_match(&req)?;
    let metadata = body.into_inner();
    let resources = metadata.resources.clone();
    let client = metadata.apply_to(&existing, &policy())?;
    let now = clock::now();
    manage::client_prerequisites(&state.store, &resources, client.openid.id_token_alg, now).await?;
    match state
        .store
        .replace_client(&client, Some(&resources), version, now)
        .await
    {
        // This instance's client cache forgets it now; the others learn it from the log.
        Ok(Replaced::Done { .. }) => state.clients.evict(&existing.id),
        Ok(Replaced::VersionMismatch { current }) => {
            return Err(Problem::PreconditionFailed { current });
        }
        Ok(Replaced::NotFound) => return Err(unknown_client()),
        Err(StoreError::Gone(_)) => {
            return Err(Problem::bad_request(
                "a resource it names was deleted meanwhile",
            ));
        }
        Err(err) => return Err(err.into()),
    }
    state
        .store
        .record_audit(
            caller
                .audit(AuditKind::ClientUpdated)
                .client(Some(&existing.id)),
            now,
        )
        .await?;
    let client = state
        .store
        .find_client(&existing.id)
        .await?
        .ok_or_else(unknown_client)?;
    Ok(client_response(HttpResponse::Ok(), &client))
}

/// Deletes a client with all its grants, tokens, codes and consents.
#[utoipa::path(
    delete,
    path = "/admin/clients/{id}",
    tag = "clients",
    params(("id" = String, Path, description = "The client's id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such client", body = ProblemBody, content_type = "application/problem+json"),
    )
)]
pub async fn delete(
    caller: AdminCaller,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, Problem> {
    if !state.store.delete_client(&id).await? {
        return Err(unknown_client());
    }
    state.clients.evict(&id);
    state
        .store
        .record_audit(
            caller.audit(AuditKind::ClientDeleted).client(Some(&id)),
            clock::now(),
        )
        .await?;
    Ok(no_content())
}

/// Draws a new secret (the old one stops working at once); shown this once.
#[utoipa::path(
    post,
    path = "/admin/clients/{id}/secret",
    tag = "clients",
    params(("id" = String, Path, description = "The client's id")),
    responses(
        (status = 200, description = "The new secret", body = NewSecret),
        (status = 400, description = "A public or private_key_jwt client has no secret", body = ProblemBody, content_type = "application/problem+json"),
        (status = 404, description = "No such client", body = ProblemBody, content_type = "application/problem+json"),
    )
)]
pub async fn rotate_secret(
    caller: AdminCaller,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, Problem> {
    let now = clock::now();
    let (_, secret) = manage::rotate_client_secret(&state.store, &id, now).await?;
    // The old secret must stop here at once, not at the next poll of the change log.
    state.clients.evict(&id);
    state
        .store
        .record_audit(
            caller
                .audit(AuditKind::ClientSecretRotated)
                .client(Some(&id)),
            now,
        )
        .await?;
    let mut response = HttpResponse::Ok();
    no_store(&mut response);
    Ok(response.json(NewSecret {
        client_id: id.into_inner(),
        client_secret: secret.expose().to_owned(),
    }))
}
