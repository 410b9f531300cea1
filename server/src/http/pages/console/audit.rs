//! `GET /console/audit`: the audit log, newest first, filtered by user, client, event (a name
//! or a prefix ending in `.`) and UTC dates, a page at a time with an "older" link.
use super::{ConsoleError, ConsolePage, PAGE_SIZE, day_start, render, when};
use crate::http::AppState;
use crate::store::{AuditCursor, AuditQuery};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};

/// Longest value of a filter read.
const MAX_FILTER: usize = 128;

/// The filters as the form sends them; empty fields are no filter.
#[derive(Debug, Default, Deserialize, Serialize)]
pub struct Filters {
    #[serde(default)]
    user: String,
    #[serde(default)]
    client: String,
    #[serde(default)]
    event: String,
    /// `YYYY-MM-DD`, UTC, inclusive.
    #[serde(default)]
    since: String,
    /// `YYYY-MM-DD`, UTC, inclusive.
    #[serde(default)]
    until: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    cursor: String,
}

impl Filters {
    fn trimmed(self) -> Self {
        let cut = |s: String| s.trim().chars().take(MAX_FILTER).collect::<String>();
        Self {
            user: cut(self.user),
            client: cut(self.client),
            event: cut(self.event),
            since: cut(self.since),
            until: cut(self.until),
            cursor: cut(self.cursor),
        }
    }
}

#[derive(Serialize)]
struct Line {
    when: String,
    event: String,
    user_id: Option<String>,
    username: Option<String>,
    client_id: Option<String>,
    actor: Option<String>,
    address: Option<String>,
    detail: Option<String>,
}

pub async fn audit(
    req: HttpRequest,
    state: web::Data<AppState>,
    page: ConsolePage,
    filters: web::Query<Filters>,
) -> Result<HttpResponse, ConsoleError> {
    let filters = filters.into_inner().trimmed();
    let mut problems: Vec<&str> = Vec::new();
    let date = |text: &str, problem: &'static str, problems: &mut Vec<&str>| {
        if text.is_empty() {
            return None;
        }
        let start = day_start(text);
        if start.is_none() {
            problems.push(problem);
        }
        start
    };
    let since = date(
        &filters.since,
        "“Since” is not a date (YYYY-MM-DD).",
        &mut problems,
    );
    // The whole day named is included.
    let until = date(
        &filters.until,
        "“Until” is not a date (YYYY-MM-DD).",
        &mut problems,
    )
    .map(|start| start + 86_400);
    let after = if filters.cursor.is_empty() {
        None
    } else {
        let cursor = AuditCursor::decode(&filters.cursor);
        if cursor.is_none() {
            problems.push("The page link is not valid: start again from the newest events.");
        }
        cursor
    };
    // A username that names nobody matches no event (not every event).
    let mut unknown_user = false;
    let user_id = if filters.user.is_empty() {
        None
    } else {
        match state.store.find_user_by_username(&filters.user).await? {
            Some(user) => Some(user.id),
            None => {
                unknown_user = true;
                None
            }
        }
    };
    let paged = after.is_some();
    let (events, next) = if problems.is_empty() && !unknown_user {
        let query = AuditQuery {
            user_id,
            client_id: Some(filters.client.clone()).filter(|c| !c.is_empty()),
            event: Some(filters.event.clone()).filter(|e| !e.is_empty()),
            since,
            until,
            after,
            limit: PAGE_SIZE,
        };
        let page = state.store.query_audit(&query).await?;
        let next = page.next.map(|cursor| {
            let older = Filters {
                cursor: cursor.encode(),
                user: filters.user.clone(),
                client: filters.client.clone(),
                event: filters.event.clone(),
                since: filters.since.clone(),
                until: filters.until.clone(),
            };
            serde_urlencoded::to_string(&older).unwrap_or_default()
        });
        (page.events, next)
    } else {
        (Vec::new(), None)
    };
    let events: Vec<Line> = events
        .into_iter()
        .map(|e| Line {
            when: when(e.at),
            event: e.event,
            user_id: e.user_id,
            username: e.username,
            client_id: e.client_id,
            actor: e.actor,
            address: e.address,
            detail: e.detail,
        })
        .collect();
    let status = if problems.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::BAD_REQUEST
    };
    render(
        &req,
        &page.session,
        &page.operator,
        status,
        "console_audit.html",
        minijinja::context! {
            section => "audit",
            filters,
            problems,
            unknown_user,
            events,
            next,
            paged,
        },
    )
}
