//! `GET /console`: how many users, operators and clients there are, and the latest events.
use super::{ConsoleError, ConsolePage, render, when};
use crate::http::AppState;
use crate::store::AuditQuery;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Serialize;

/// Events the overview shows.
const RECENT: u64 = 8;

#[derive(Serialize)]
struct Recent {
    when: String,
    event: String,
    username: Option<String>,
    client_id: Option<String>,
    actor: Option<String>,
}

pub async fn overview(
    req: HttpRequest,
    state: web::Data<AppState>,
    page: ConsolePage,
) -> Result<HttpResponse, ConsoleError> {
    let counts = state.store.console_counts().await?;
    let query = AuditQuery {
        limit: RECENT,
        ..AuditQuery::default()
    };
    let recent: Vec<Recent> = state
        .store
        .query_audit(&query)
        .await?
        .events
        .into_iter()
        .map(|e| Recent {
            when: when(e.at),
            event: e.event,
            username: e.username,
            client_id: e.client_id,
            actor: e.actor,
        })
        .collect();
    render(
        &req,
        &page.session,
        &page.operator,
        StatusCode::OK,
        "console.html",
        minijinja::context! { section => "overview", counts, recent },
    )
}
