//! `GET /revocations`: resource servers that cache introspection answers follow what stops
//! being active as Server-Sent Events (WHATWG HTML §9.2), instead of waiting for their cache
//! to expire.
//!
//! The events come from the change log ([`crate::store::changes`]): each instance's poller
//! publishes the rows it applies, and each stream turns them into events for its caller:
//! - `revoked` with `{"jti": [...]}` for a revoked token or grant: the public ids of its
//!   unexpired access tokens that the caller may see, as introspection would show them;
//! - `revoked` with `{"sub": "..."}` for a user (disabled, deleted, consent withdrawn…) and
//!   `{"client_id": "..."}` for a client: every token of theirs may have changed;
//! - `reset` when the subscriber must drop everything: a resource changed (it shapes who
//!   sees what), a kind this version does not know, rows the subscriber may have missed.
//!
//! Each event's `id` is its change-log id. A fresh stream starts with a `reset` that carries
//! the newest id; a stream resumed with `Last-Event-ID` replays the log above it first (a
//! `reset` instead when cleanup has deleted rows it would need). A stream that falls behind
//! the live feed gets a `reset` and goes on. A comment line (`: hb`) every
//! `revocations.heartbeat_secs` tells a quiet stream from a dead one. After a change to its
//! own client or to a resource the caller's rights are read again; the stream ends when it
//! may follow revocations no longer.
use super::client_auth::authenticate;
use super::token::no_store;
use crate::clock;
use crate::http::AppState;
use crate::http::form::OAuthRequest;
use crate::oauth::OAuthError;
use crate::oauth::client::Client;
use crate::oauth::introspection::Caller;
use crate::oauth::params::Params;
use crate::store::{Change, ChangeKind, StoreError};
use actix_web::http::header;
use actix_web::web::{self, Bytes};
use actix_web::{HttpRequest, HttpResponse};
use std::collections::{BTreeSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, broadcast};

/// Changes held for streams that have not sent them yet; a stream further behind is reset.
const FEED_CAPACITY: usize = 1024;

/// What the revocation streams of this instance share: the live changes and the bound on how
/// many streams are open.
#[derive(Debug, Clone)]
pub struct RevocationFeed {
    changes: broadcast::Sender<Change>,
    streams: Arc<Semaphore>,
}

impl RevocationFeed {
    /// A feed for at most `max_streams` streams at once.
    pub fn new(max_streams: usize) -> Self {
        Self {
            changes: broadcast::channel(FEED_CAPACITY).0,
            streams: Arc::new(Semaphore::new(max_streams)),
        }
    }

    /// Where the change poller publishes the changes it applies.
    pub fn publisher(&self) -> broadcast::Sender<Change> {
        self.changes.clone()
    }
}

/// Streams the revocations a resource server may see, as Server-Sent Events.
#[utoipa::path(
    get,
    path = "/revocations",
    tag = "oauth",
    params(("Last-Event-ID" = Option<i64>, Header, description = "the `id` of the last event received: the stream replays what followed")),
    security(("client_secret_basic" = [])),
    responses(
        (status = 200, description = "`text/event-stream`: `revoked` events with `{\"jti\": [...]}`, `{\"sub\": \"...\"}` or `{\"client_id\": \"...\"}`, `reset` events (drop every cached answer), `: hb` heartbeats", content_type = "text/event-stream", body = String),
        (status = 401, description = "invalid_client", body = crate::http::schemas::ErrorResponse),
        (status = 403, description = "the client is not a resource server", body = crate::http::schemas::ErrorResponse),
        (status = 503, description = "temporarily_unavailable: too many streams open, or the store is unreachable", body = crate::http::schemas::ErrorResponse)
    )
)]
#[tracing::instrument(level = "debug", name = "revocations", skip_all)]
pub async fn revocations(
    state: web::Data<AppState>,
    http: HttpRequest,
) -> Result<HttpResponse, OAuthError> {
    // Credentials travel in the header: a GET has no form.
    let request = OAuthRequest {
        params: Params::default(),
        authorization: http
            .headers()
            .get(header::AUTHORIZATION)
            .map(|v| v.as_bytes().to_vec()),
        path: http.path().to_owned(),
    };
    let client = authenticate(&state, &request).await?;
    if !may_follow(&client) {
        return Err(OAuthError::unauthorized_client(
            "only a resource server that may introspect tokens may follow revocations",
        )
        .with_status(403));
    }
    let last = match http.headers().get("last-event-id") {
        None => None,
        Some(value) => Some(
            value
                .to_str()
                .ok()
                .and_then(|v| v.trim().parse::<i64>().ok())
                .filter(|id| *id >= 0)
                .ok_or_else(|| {
                    OAuthError::invalid_request("Last-Event-ID must be an event id of this stream")
                })?,
        ),
    };
    let permit = state
        .revocations
        .streams
        .clone()
        .try_acquire_owned()
        .map_err(|_| OAuthError::temporarily_unavailable("too many revocation streams"))?;
    // Subscribed before the log is read, so that nothing committed in between is lost; what
    // both deliver is sent once (`replayed`).
    let live = state.revocations.changes.subscribe();
    let heartbeat = Duration::from_secs(state.settings.revocations.heartbeat_secs);
    let mut stream = Subscription {
        state: state.clone(),
        client,
        live,
        pending: VecDeque::new(),
        replayed: BTreeSet::new(),
        heartbeat: tokio::time::interval(heartbeat),
        ending: false,
        _permit: permit,
    };
    stream.start(last).await?;
    Ok(no_store(HttpResponse::Ok())
        .content_type("text/event-stream")
        // Proxies that buffer responses (nginx) would hold the events back.
        .insert_header(("X-Accel-Buffering", "no"))
        .streaming(futures_util::stream::unfold(stream, |mut stream| async {
            let chunk = stream.next_chunk().await?;
            Some((Ok::<_, actix_web::Error>(chunk), stream))
        })))
}

/// One open stream.
struct Subscription {
    state: web::Data<AppState>,
    client: Arc<Client>,
    live: broadcast::Receiver<Change>,
    /// Events ready to send, in order.
    pending: VecDeque<Bytes>,
    /// Ids sent from the log at the start, not to be sent again when the live feed has them.
    replayed: BTreeSet<i64>,
    heartbeat: tokio::time::Interval,
    /// Ends once `pending` is sent.
    ending: bool,
    _permit: OwnedSemaphorePermit,
}

impl Subscription {
    /// Queues what comes before the live feed: a replay of the log above `last`, or a `reset`
    /// positioned at the newest change when there is nothing to resume from.
    async fn start(&mut self, last: Option<i64>) -> Result<(), StoreError> {
        let bounds = self.state.store.change_bounds().await?;
        let resumable = match (last, bounds) {
            (Some(last), Some((lowest, highest))) => lowest <= last + 1 && last <= highest,
            // Nothing was logged yet, or nothing to resume from.
            (Some(last), None) => last == 0,
            (None, _) => false,
        };
        match last {
            Some(last) if resumable => {
                for change in self.state.store.changes_after(last).await? {
                    self.replayed.insert(change.id);
                    let event = self.event(&change).await;
                    self.pending.extend(event);
                }
            }
            _ => {
                let position = bounds.map(|(_, highest)| highest);
                self.pending.push_back(reset(position));
            }
        }
        Ok(())
    }

    /// The next bytes to send; `None` ends the stream.
    async fn next_chunk(&mut self) -> Option<Bytes> {
        loop {
            if let Some(chunk) = self.pending.pop_front() {
                return Some(chunk);
            }
            if self.ending {
                return None;
            }
            tokio::select! {
                received = self.live.recv() => match received {
                    Ok(change) if self.replayed.remove(&change.id) => {}
                    Ok(change) => {
                        let event = self.event(&change).await;
                        self.pending.extend(event);
                    }
                    // Changes were dropped before this stream read them.
                    Err(RecvError::Lagged(_)) => self.pending.push_back(reset(None)),
                    Err(RecvError::Closed) => return None,
                },
                _ = self.heartbeat.tick() => return Some(Bytes::from_static(b": hb\n\n")),
            }
        }
    }

    /// The event `change` makes for this caller, if any; a `reset` when the store cannot say
    /// which tokens it names, since dropping everything is always safe.
    async fn event(&mut self, change: &Change) -> Option<Bytes> {
        let id = Some(change.id).filter(|id| *id > 0);
        let data = match change.kind {
            Some(ChangeKind::Token | ChangeKind::Grant) => {
                let tokens = match self
                    .state
                    .store
                    .access_tokens_of_change(change, clock::now())
                    .await
                {
                    Ok(tokens) => tokens,
                    Err(err) => {
                        tracing::warn!(error = %err, "cannot read the tokens of a revocation; the stream is reset");
                        return Some(reset(id));
                    }
                };
                let caller = Caller {
                    client_id: &self.client.id,
                    can_introspect: self.client.can_introspect,
                    introspects_for: &self.client.resources.introspects_for,
                    require_audience: self.state.settings.introspection.require_audience,
                };
                let jti: Vec<String> = tokens
                    .into_iter()
                    .filter(|(_, audience)| caller.may_see_access(audience))
                    .map(|(hash, _)| hash.public_id())
                    .collect();
                if jti.is_empty() {
                    return None;
                }
                serde_json::json!({ "jti": jti })
            }
            Some(ChangeKind::User) => serde_json::json!({ "sub": change.subject }),
            Some(ChangeKind::Client) => {
                if change.subject == self.client.id {
                    self.reload_caller().await;
                }
                serde_json::json!({ "client_id": change.subject })
            }
            Some(ChangeKind::Key) => return None,
            Some(ChangeKind::Resource) => {
                self.reload_caller().await;
                return Some(reset(id));
            }
            None => return Some(reset(id)),
        };
        Some(event(id, "revoked", &data.to_string()))
    }

    /// Reads the caller's rights again after a change that may have moved them (the poller
    /// has evicted the cached client before publishing); ends the stream when the caller is
    /// gone, may no longer follow, or cannot be read.
    async fn reload_caller(&mut self) {
        match self
            .state
            .clients
            .get(&self.state.store, &self.client.id)
            .await
        {
            Ok(Some(client)) if may_follow(&client) => self.client = client,
            _ => self.ending = true,
        }
    }
}

/// Whether `client` may follow revocations: a confidential client that may introspect.
fn may_follow(client: &Client) -> bool {
    !client.is_public() && (client.can_introspect || !client.resources.introspects_for.is_empty())
}

/// A `reset` event, at `id` when there is one.
fn reset(id: Option<i64>) -> Bytes {
    event(id, "reset", "{}")
}

/// One Server-Sent Event; `data` holds no line break (it is compact JSON).
fn event(id: Option<i64>, name: &str, data: &str) -> Bytes {
    let id = id.map(|id| format!("id: {id}\n")).unwrap_or_default();
    Bytes::from(format!("{id}event: {name}\ndata: {data}\n\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_server_sent_event_blocks() {
        assert_eq!(
            event(Some(7), "revoked", r#"{"sub":"u"}"#),
            Bytes::from_static(b"id: 7\nevent: revoked\ndata: {\"sub\":\"u\"}\n\n")
        );
        assert_eq!(
            reset(None),
            Bytes::from_static(b"event: reset\ndata: {}\n\n")
        );
    }
}
