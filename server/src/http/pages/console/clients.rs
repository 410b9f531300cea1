//! `/console/clients`: the list, a new client, a new secret, deletion after a confirmation.
//! A secret is shown once, in the answer to the POST that drew it (no URL, no cookie holds it).
use super::{ConsoleError, ConsoleForm, ConsolePage, PAGE_SIZE, audited, done, render, when};
use crate::clock;
use crate::http::AppState;
use crate::http::page_extract::CsrfForm;
use crate::oauth::client::Client;
use crate::oauth::token::{Token, TokenKind};
use crate::store::AuditKind;
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
    render(
        &req,
        &page.session,
        &page.operator,
        StatusCode::OK,
        "console_clients.html",
        minijinja::context! { section => "clients", clients, next, paged => after.is_some() },
    )
}

/// The page that shows a client's secret, once.
fn secret_page(
    req: &HttpRequest,
    page: &ConsoleForm<impl Sized>,
    client: &Client,
    secret: &Token,
    created: bool,
) -> Result<HttpResponse, ConsoleError> {
    render(
        req,
        &page.session,
        &page.operator,
        StatusCode::OK,
        "console_secret.html",
        minijinja::context! {
            section => "clients",
            client_id => &client.id,
            client_name => &client.name,
            client_secret => secret.expose(),
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
    let Some(client) = state.store.find_client(&id).await? else {
        return Ok(gone(&req, &id));
    };
    if client.secret_hash.is_none() {
        // A secret would turn a public or a key-signing client into another kind of client.
        let notice = format!(
            "{} has no secret to rotate: it is a public client or signs with its keys.",
            client.id
        );
        return Ok(done(&req, "/console/clients", &notice));
    }
    let secret = Token::generate(TokenKind::ClientSecret)
        .map_err(|err| ConsoleError::Page(crate::http::error::PageError::internal(err)))?;
    let now = clock::now();
    if !state
        .store
        .set_client_secret(&client.id, secret.hash(), now)
        .await?
    {
        return Ok(gone(&req, &id));
    }
    state.clients.evict(&client.id);
    let entry = audited(&req, &page.operator, AuditKind::ClientSecretRotated)
        .client(Some(&client.id))
        .detail("in the console");
    state.store.record_audit(entry, now).await?;
    secret_page(&req, &page, &client, &secret, false)
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
