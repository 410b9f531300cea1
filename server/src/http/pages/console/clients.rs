//! `/console/clients`: the list, a new client, a new secret, deletion after a confirmation.
//! A secret is shown once, in the answer to the POST that drew it (no URL, no cookie holds it).
use super::{ConsoleError, ConsoleForm, ConsolePage, PAGE_SIZE, audited, done, render, when};
use crate::clock;
use crate::http::AppState;
use crate::http::error::PageError;
use crate::http::page_extract::{CsrfForm, csrf_protected};
use crate::http::session::UserSession;
use crate::manage::{self, ManageError};
use crate::oauth::client::Client;
use crate::oauth::registration::{ClientMetadata, MetadataError, RegistrationPolicy};
use crate::oauth::token::Token;
use crate::store::{AuditKind, StoreError, User};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};

#[derive(Deserialize)]
pub struct ListQuery {
    /// The last client id of the previous page.
    after: Option<String>,
}

#[derive(Serialize)]
struct Line {
    id: String,
    name: String,
    authentication: &'static str,
    grant_types: String,
    created: String,
}

pub async fn list(
    req: HttpRequest,
    state: web::Data<AppState>,
    page: ConsolePage,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, ConsoleError> {
    let after = query.after.as_deref().filter(|a| !a.is_empty());
    let (session, operator) = (&page.session, &page.operator);
    list_page(&req, &state, session, operator, after, None).await
}

/// A refused new-client form: what was wrong and what was typed, to show again.
struct Refused<'a> {
    error: String,
    form: &'a NewClientForm,
}

/// The list (a page of it, after the id `after`) and the new-client form.
async fn list_page(
    req: &HttpRequest,
    state: &AppState,
    session: &UserSession,
    operator: &User,
    after: Option<&str>,
    refused: Option<Refused<'_>>,
) -> Result<HttpResponse, ConsoleError> {
    let mut rows = state.store.client_summaries(after, PAGE_SIZE + 1).await?;
    let more = rows.len() as u64 > PAGE_SIZE;
    rows.truncate(PAGE_SIZE as usize);
    let next = more.then(|| rows.last().map(|c| c.id.clone())).flatten();
    let clients: Vec<Line> = rows
        .into_iter()
        .map(|c| Line {
            created: when(c.created_at),
            id: c.id,
            name: c.name,
            authentication: c.authentication,
            grant_types: c.grant_types,
        })
        .collect();
    let status = if refused.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    let (error, form) = match refused {
        Some(Refused { error, form }) => (Some(error), Some(form)),
        None => (None, None),
    };
    render(
        req,
        session,
        operator,
        status,
        "console_clients.html",
        minijinja::context! {
            section => "clients",
            clients,
            next,
            paged => after.is_some(),
            error,
            form,
        },
    )
}

/// The new-client form. Check boxes are fields of their own: a form decoder reads one value
/// per name.
#[derive(Deserialize, Serialize)]
pub struct NewClientForm {
    #[serde(skip_serializing)]
    csrf_token: String,
    #[serde(default)]
    client_name: String,
    #[serde(default)]
    client_id: String,
    /// One a line.
    #[serde(default)]
    redirect_uris: String,
    #[serde(default)]
    scope: String,
    #[serde(default)]
    token_endpoint_auth_method: String,
    authorization_code: Option<String>,
    refresh_token: Option<String>,
    client_credentials: Option<String>,
    introspect: Option<String>,
    skip_consent: Option<String>,
    require_2fa: Option<String>,
}

csrf_protected!(NewClientForm);

impl NewClientForm {
    /// The metadata this form asks for; checking it is [`ClientMetadata::register`]'s.
    fn metadata(&self) -> ClientMetadata {
        let text = |s: &str| Some(s.trim().to_owned()).filter(|s| !s.is_empty());
        let grant_types = [
            ("authorization_code", &self.authorization_code),
            ("refresh_token", &self.refresh_token),
            ("client_credentials", &self.client_credentials),
        ]
        .into_iter()
        .filter(|(_, checked)| checked.is_some())
        .map(|(grant, _)| grant.to_owned())
        .collect();
        ClientMetadata {
            client_id: text(&self.client_id),
            client_name: text(&self.client_name),
            redirect_uris: self
                .redirect_uris
                .lines()
                .map(str::trim)
                .filter(|line| !line.is_empty())
                .map(str::to_owned)
                .collect(),
            grant_types,
            scope: text(&self.scope),
            token_endpoint_auth_method: text(&self.token_endpoint_auth_method),
            introspect: self.introspect.is_some(),
            skip_consent: self.skip_consent.is_some(),
            require_2fa: self.require_2fa.is_some(),
            ..ClientMetadata::default()
        }
    }
}

/// `POST /console/clients`: registers a client as an operator may (any grant type or scope,
/// a chosen id) and shows its secret once. A refusal shows the form again with the reason.
pub async fn create(
    req: HttpRequest,
    state: web::Data<AppState>,
    page: ConsoleForm<NewClientForm>,
) -> Result<HttpResponse, ConsoleError> {
    let (session, operator, form) = (&page.session, &page.operator, &page.form);
    let refuse = |error: String| Refused { error, form };
    let registration = match form
        .metadata()
        .register(&RegistrationPolicy::trusted(false, false))
    {
        Ok(registration) => registration,
        Err(MetadataError::Random) => {
            return Err(ConsoleError::Page(PageError::internal(
                MetadataError::Random,
            )));
        }
        Err(why) => {
            let error = format!("Not created: {why}.");
            return list_page(&req, &state, session, operator, None, Some(refuse(error))).await;
        }
    };
    let now = clock::now();
    let client = match state
        .store
        .create_client_with_resources(registration.client, &registration.resources, now)
        .await
    {
        Ok(client) => client,
        Err(StoreError::Conflict(why)) => {
            let error = format!("Not created: {why}.");
            return list_page(&req, &state, session, operator, None, Some(refuse(error))).await;
        }
        Err(other) => return Err(other.into()),
    };
    let entry = audited(&req, operator, AuditKind::ClientCreated)
        .client(Some(&client.id))
        .detail("in the console");
    state.store.record_audit(entry, now).await?;
    secret_page(
        &req,
        session,
        operator,
        &client,
        registration.secret.as_ref(),
        true,
    )
}

/// The page that shows a client's id and secret (if it has one), once.
fn secret_page(
    req: &HttpRequest,
    session: &UserSession,
    operator: &User,
    client: &Client,
    secret: Option<&Token>,
    created: bool,
) -> Result<HttpResponse, ConsoleError> {
    render(
        req,
        session,
        operator,
        StatusCode::OK,
        "console_secret.html",
        minijinja::context! {
            section => "clients",
            client_id => &client.id,
            client_name => &client.name,
            client_secret => secret.map(Token::expose),
            created,
        },
    )
}

/// `POST /console/clients/{id}/secret`: a new secret; the old one stops working at once here
/// and within `changes.max_staleness_ms` on other instances.
pub async fn rotate_secret(
    req: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
    page: ConsoleForm<CsrfForm>,
) -> Result<HttpResponse, ConsoleError> {
    let now = clock::now();
    // An operator's new secret does not expire (as `umbra client rotate-secret`'s).
    let (client, secret) = match manage::rotate_client_secret(&state.store, &id, now).await {
        Ok(rotated) => rotated,
        Err(ManageError::NotFound(_)) => return Ok(gone(&req, &id)),
        // A secret would turn a public or a key-signing client into another kind of client.
        Err(ManageError::Invalid(why)) => return Ok(done(&req, "/console/clients", &why)),
        Err(ManageError::Store(err)) => return Err(err.into()),
        Err(ManageError::Random) => {
            return Err(ConsoleError::Page(PageError::internal(ManageError::Random)));
        }
    };
    state.clients.evict(&client.id);
    let entry = audited(&req, &page.operator, AuditKind::ClientSecretRotated)
        .client(Some(&client.id))
        .detail("in the console");
    state.store.record_audit(entry, now).await?;
    secret_page(
        &req,
        &page.session,
        &page.operator,
        &client,
        Some(&secret),
        false,
    )
}

/// `GET /console/clients/{id}/delete`: what deleting takes away, and the button.
pub async fn confirm_delete(
    req: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
    page: ConsolePage,
) -> Result<HttpResponse, ConsoleError> {
    let Some(client) = state.store.find_client(&id).await? else {
        return Err(ConsoleError::NotFound(
            "There is no such client: it may have been deleted.",
        ));
    };
    render(
        &req,
        &page.session,
        &page.operator,
        StatusCode::OK,
        "console_client_delete.html",
        minijinja::context! {
            section => "clients",
            client_id => &client.id,
            client_name => &client.name,
        },
    )
}

/// `POST /console/clients/{id}/delete`: the client goes with its grants, tokens, codes and
/// consents. Of concurrent deletions one wins; the others are told it is gone.
pub async fn delete(
    req: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
    page: ConsoleForm<CsrfForm>,
) -> Result<HttpResponse, ConsoleError> {
    let now = clock::now();
    if !state.store.delete_client(&id).await? {
        return Ok(gone(&req, &id));
    }
    state.clients.evict(&id);
    let entry = audited(&req, &page.operator, AuditKind::ClientDeleted)
        .client(Some(&id))
        .detail("in the console");
    state.store.record_audit(entry, now).await?;
    Ok(done(
        &req,
        "/console/clients",
        &format!("Deleted {} with its grants and tokens.", id.as_str()),
    ))
}

/// Back to the list, saying the client is gone (deleted meanwhile, by another operator or by
/// a concurrent click).
fn gone(req: &HttpRequest, id: &str) -> HttpResponse {
    done(
        req,
        "/console/clients",
        &format!("There is no client {id}: it was deleted or never existed."),
    )
}
