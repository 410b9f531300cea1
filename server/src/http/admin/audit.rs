//! `GET /admin/audit`: the audit log by user, client, event (or `prefix.`) and time range,
//! newest first, a page at a time.
use super::caller::AdminCaller;
use super::problem::Problem;
use super::support::PageParams;
use crate::http::AppState;
use crate::store::{AuditCursor, AuditQuery, AuditRecord};
use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// Filters of an audit query; every filter given must hold.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditFilter {
    /// A user's id.
    pub user: Option<String>,
    /// A client's id.
    pub client: Option<String>,
    /// An event name (`login.failed`) or a prefix ending in `.` (`client.`).
    pub event: Option<String>,
    /// Unix seconds, inclusive.
    pub since: Option<i64>,
    /// Unix seconds, exclusive.
    pub until: Option<i64>,
    pub limit: Option<u64>,
    pub cursor: Option<String>,
}

/// A page of events.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditList {
    pub events: Vec<AuditRecord>,
    /// The cursor of the next page; absent on the last.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

/// Audit events, newest first.
#[utoipa::path(
    get,
    path = "/admin/audit",
    tag = "audit",
    params(AuditFilter),
    responses((status = 200, description = "A page of events", body = AuditList))
)]
pub async fn query(
    _caller: AdminCaller,
    state: web::Data<AppState>,
    filter: web::Query<AuditFilter>,
) -> Result<HttpResponse, Problem> {
    let filter = filter.into_inner();
    let page = PageParams {
        limit: filter.limit,
        cursor: None,
    };
    let user_id = match filter.user.as_deref() {
        Some(user) => Some(
            uuid::Uuid::parse_str(user)
                .map_err(|_| Problem::bad_request("user must be a user's id"))?,
        ),
        None => None,
    };
    let after = match filter.cursor.as_deref() {
        Some(cursor) => Some(
            AuditCursor::decode(cursor)
                .ok_or_else(|| Problem::bad_request("the cursor is not one this API gave"))?,
        ),
        None => None,
    };
    let query = AuditQuery {
        user_id,
        client_id: filter.client,
        event: filter.event.filter(|e| !e.is_empty()),
        since: filter.since,
        until: filter.until,
        after,
        limit: page.size()?,
    };
    let page = state.store.query_audit(&query).await?;
    Ok(HttpResponse::Ok().json(AuditList {
        events: page.events,
        next: page.next.as_ref().map(AuditCursor::encode),
    }))
}
