//! Following Umbra's revocation stream (`GET <umbra>/revocations`, Server-Sent Events) so that
//! the positive cache drops an answer as soon as its token is revoked, instead of serving it
//! until the entry expires.
//!
//! A background task keeps the stream open and applies each event to the cache: `revoked`
//! with `jti`, `sub` or `client_id` drops the answers that name them, `reset` (and any event
//! this version does not know) drops every answer. After a drop it reconnects with
//! `Last-Event-ID`, so Umbra replays what was missed, waiting a short backoff between
//! attempts. While the stream is not connected, or nothing (event or heartbeat) arrived for
//! three heartbeats, the cache is bypassed: every request introspects.
use crate::cache::Caches;
use futures_util::StreamExt;
use reqwest::header::{self, HeaderValue};
use reqwest::{StatusCode, Url};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;

/// First and longest wait before reconnecting.
const BACKOFF: (Duration, Duration) = (Duration::from_millis(100), Duration::from_secs(5));

/// Longest line accepted; Umbra's events are far shorter.
const MAX_LINE: usize = 64 * 1024;

/// Whether the stream can be trusted right now, shared by the task and the introspector.
#[derive(Debug)]
pub(crate) struct Freshness {
    /// When the last event or heartbeat arrived on a connected stream; `None` while not
    /// connected.
    last_heard: Mutex<Option<Instant>>,
    /// How long the stream may stay silent before it is taken for dead.
    silence: Duration,
    /// Counts the events applied: an answer asked for before an event arrived must not be
    /// cached after it, since the event may have been about that very token.
    events: AtomicU64,
}

impl Freshness {
    fn new(heartbeat: Duration) -> Self {
        Self {
            last_heard: Mutex::new(None),
            silence: heartbeat.saturating_mul(3),
            events: AtomicU64::new(0),
        }
    }

    /// Whether cached answers may be served.
    pub(crate) fn serving(&self) -> bool {
        self.last_heard
            .lock()
            .ok()
            .and_then(|heard| *heard)
            .is_some_and(|heard| heard.elapsed() < self.silence)
    }

    /// The count to pass to [`Freshness::unchanged_since`] once the answer is in.
    pub(crate) fn events(&self) -> u64 {
        self.events.load(Ordering::SeqCst)
    }

    /// Whether no event arrived since `events` was read, and the stream still serves.
    pub(crate) fn unchanged_since(&self, events: u64) -> bool {
        self.serving() && self.events() == events
    }

    fn heard(&self, connected: bool) {
        if let Ok(mut heard) = self.last_heard.lock() {
            *heard = connected.then(Instant::now);
        }
    }
}

/// The running subscription; stops when dropped.
pub(crate) struct Subscription {
    pub(crate) freshness: Arc<Freshness>,
    task: JoinHandle<()>,
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Subscription {
    /// Starts following `endpoint` with the `Authorization` header `authorization`, applying
    /// the events to `caches`. Needs a Tokio runtime.
    pub(crate) fn start(
        http: reqwest::Client,
        endpoint: Url,
        authorization: HeaderValue,
        heartbeat: Duration,
        caches: Caches,
    ) -> Result<Self, tokio::runtime::TryCurrentError> {
        let runtime = tokio::runtime::Handle::try_current()?;
        let freshness = Arc::new(Freshness::new(heartbeat));
        let follower = Follower {
            http,
            endpoint,
            authorization,
            caches,
            freshness: freshness.clone(),
            last_id: None,
        };
        let task = runtime.spawn(follower.run());
        Ok(Self { freshness, task })
    }
}

struct Follower {
    http: reqwest::Client,
    endpoint: Url,
    authorization: HeaderValue,
    caches: Caches,
    freshness: Arc<Freshness>,
    last_id: Option<String>,
}

/// Why a stream ended.
#[derive(Debug, thiserror::Error)]
enum Ended {
    #[error("cannot reach Umbra: {0}")]
    Unreachable(#[from] reqwest::Error),
    #[error("Umbra answered HTTP {0}")]
    Status(StatusCode),
    #[error("silent for longer than three heartbeats")]
    Silent,
    #[error("the stream was closed")]
    Closed,
    #[error("a line longer than {MAX_LINE} bytes")]
    LineTooLong,
}

impl Follower {
    async fn run(mut self) {
        let mut backoff = BACKOFF.0;
        loop {
            let result = self.follow(&mut backoff).await;
            self.freshness.heard(false);
            if let Err(ended) = result {
                tracing::warn!(error = %ended, endpoint = %self.endpoint, ?backoff, "the revocation stream is down; the cache is bypassed until it is back");
            }
            tokio::time::sleep(backoff).await;
            backoff = backoff.saturating_mul(2).min(BACKOFF.1);
        }
    }

    /// One connection, until it ends.
    async fn follow(&mut self, backoff: &mut Duration) -> Result<(), Ended> {
        let mut request = self
            .http
            .get(self.endpoint.clone())
            .header(header::ACCEPT, "text/event-stream")
            .header(header::AUTHORIZATION, self.authorization.clone());
        if let Some(id) = &self.last_id {
            request = request.header("Last-Event-ID", id.as_str());
        }
        let response = tokio::time::timeout(self.freshness.silence, request.send())
            .await
            .map_err(|_| Ended::Silent)??;
        if response.status() != StatusCode::OK {
            return Err(Ended::Status(response.status()));
        }
        let mut chunks = response.bytes_stream();
        let mut parser = Parser::default();
        loop {
            let chunk = tokio::time::timeout(self.freshness.silence, chunks.next())
                .await
                .map_err(|_| Ended::Silent)?
                .ok_or(Ended::Closed)??;
            for line in parser.push(&chunk)? {
                match line {
                    Line::Heartbeat => {}
                    Line::Event(event) => self.apply(event),
                }
                self.freshness.heard(true);
                *backoff = BACKOFF.0;
            }
        }
    }

    fn apply(&mut self, event: Event) {
        // Counted before the drop, so that an answer asked for meanwhile is not cached.
        self.freshness.events.fetch_add(1, Ordering::SeqCst);
        let data: serde_json::Value = serde_json::from_str(&event.data).unwrap_or_default();
        let text = |member: &str| data.get(member).and_then(|v| v.as_str()).map(str::to_owned);
        match event.name.as_str() {
            "revoked" => {
                if let Some(jtis) = data.get("jti").and_then(|v| v.as_array()) {
                    let jtis: Vec<String> = jtis
                        .iter()
                        .filter_map(|v| v.as_str().map(str::to_owned))
                        .collect();
                    self.caches.drop_active_where(move |t| {
                        t.jti.as_ref().is_some_and(|j| jtis.contains(j))
                    });
                } else if let Some(sub) = text("sub") {
                    self.caches.drop_active_where(move |t| t.sub == sub);
                } else if let Some(client_id) = text("client_id") {
                    self.caches
                        .drop_active_where(move |t| t.client_id == client_id);
                } else {
                    self.caches.drop_all_active();
                }
            }
            // `reset`, and whatever a newer Umbra sends that this version cannot read.
            _ => self.caches.drop_all_active(),
        }
        if event.id.is_some() {
            self.last_id = event.id;
        }
    }
}

/// One Server-Sent Event (WHATWG HTML §9.2.6), as far as Umbra uses them.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Event {
    id: Option<String>,
    name: String,
    data: String,
}

#[derive(Debug, PartialEq, Eq)]
enum Line {
    Heartbeat,
    Event(Event),
}

/// Splits the stream into lines and lines into events.
#[derive(Debug, Default)]
struct Parser {
    partial: Vec<u8>,
    event: Event,
}

impl Parser {
    fn push(&mut self, chunk: &[u8]) -> Result<Vec<Line>, Ended> {
        let mut out = Vec::new();
        for &byte in chunk {
            if byte != b'\n' {
                if self.partial.len() >= MAX_LINE {
                    return Err(Ended::LineTooLong);
                }
                self.partial.push(byte);
                continue;
            }
            let line = String::from_utf8_lossy(&self.partial)
                .trim_end_matches('\r')
                .to_owned();
            self.partial.clear();
            if line.is_empty() {
                let event = std::mem::take(&mut self.event);
                if !event.name.is_empty() || !event.data.is_empty() {
                    out.push(Line::Event(event));
                }
                continue;
            }
            if line.starts_with(':') {
                out.push(Line::Heartbeat);
                continue;
            }
            let (field, value) = line.split_once(':').unwrap_or((&line, ""));
            let value = value.strip_prefix(' ').unwrap_or(value).to_owned();
            match field {
                "id" => self.event.id = Some(value),
                "event" => self.event.name = value,
                "data" if self.event.data.is_empty() => self.event.data = value,
                "data" => {
                    self.event.data.push('\n');
                    self.event.data.push_str(&value);
                }
                _ => {}
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_and_heartbeats_are_read_across_chunks() {
        let mut parser = Parser::default();
        assert_eq!(
            parser.push(b": hb\n\nid: 7\nevent: rev").unwrap(),
            [Line::Heartbeat]
        );
        let lines = parser.push(b"oked\r\ndata: {\"jti\":[\"a\"]}\n\n").unwrap();
        assert_eq!(
            lines,
            [Line::Event(Event {
                id: Some("7".into()),
                name: "revoked".into(),
                data: r#"{"jti":["a"]}"#.into(),
            })]
        );
    }

    #[test]
    fn an_endless_line_is_refused() {
        let mut parser = Parser::default();
        assert!(parser.push(&vec![b'x'; MAX_LINE + 1]).is_err());
    }

    #[test]
    fn a_silent_stream_stops_serving() {
        let freshness = Freshness::new(Duration::from_millis(10));
        assert!(!freshness.serving(), "not before it connects");
        freshness.heard(true);
        assert!(freshness.serving());
        let events = freshness.events();
        assert!(freshness.unchanged_since(events));
        freshness.events.fetch_add(1, Ordering::SeqCst);
        assert!(!freshness.unchanged_since(events));
        std::thread::sleep(Duration::from_millis(40));
        assert!(!freshness.serving());
    }
}
