//! `GET /revocations`: resource servers follow revocations as Server-Sent Events, filtered as
//! introspection filters, resumable from the last event id, with a heartbeat, and bounded.
use futures_util::StreamExt;
use futures_util::future::join_all;
use futures_util::stream::BoxStream;
use reqwest::StatusCode;
use std::time::{Duration, Instant};
use umbra_tests::{Pkce, TestApp, TestClient};

/// Longest wait for any one event: a revocation reaches the stream at the next poll of the
/// change log (200 ms by default, at once on Postgres), well within this.
const WAIT: Duration = Duration::from_secs(5);

/// One event of the stream.
#[derive(Debug, Default, Clone, PartialEq)]
struct Event {
    id: Option<String>,
    name: String,
    data: serde_json::Value,
}

/// The stream as its subscriber reads it: events, and the heartbeats in between.
struct Subscriber {
    chunks: BoxStream<'static, reqwest::Result<Vec<u8>>>,
    buffer: String,
    heartbeats: usize,
}

impl Subscriber {
    async fn open(app: &TestApp, client: &TestClient, last_event_id: Option<&str>) -> Self {
        let response = open(app, client, last_event_id).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            response.headers()["content-type"].to_str().unwrap(),
            "text/event-stream"
        );
        Self {
            chunks: response
                .bytes_stream()
                .map(|c| c.map(|b| b.to_vec()))
                .boxed(),
            buffer: String::new(),
            heartbeats: 0,
        }
    }

    /// The next event about tokens, past those about resources, clients and users that
    /// arranging the test causes; fails after [`WAIT`] for each.
    async fn next_jti(&mut self) -> Event {
        loop {
            let event = self.next().await;
            if event.data.get("jti").is_some() {
                return event;
            }
        }
    }

    /// The next event; fails after [`WAIT`].
    async fn next(&mut self) -> Event {
        tokio::time::timeout(WAIT, self.read_event())
            .await
            .expect("an event within the wait")
    }

    async fn read_event(&mut self) -> Event {
        loop {
            while let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let mut event = Event::default();
                for line in block.lines() {
                    match line.split_once(": ") {
                        Some(("id", id)) => event.id = Some(id.to_owned()),
                        Some(("event", name)) => event.name = name.to_owned(),
                        Some(("data", data)) => event.data = serde_json::from_str(data).unwrap(),
                        _ if line.starts_with(':') => self.heartbeats += 1,
                        _ if line.is_empty() => {}
                        _ => panic!("unexpected line {line:?}"),
                    }
                }
                if !event.name.is_empty() {
                    return event;
                }
            }
            let chunk = self.chunks.next().await.expect("the stream goes on");
            self.buffer
                .push_str(std::str::from_utf8(&chunk.unwrap()).unwrap());
        }
    }
}

async fn open(
    app: &TestApp,
    client: &TestClient,
    last_event_id: Option<&str>,
) -> reqwest::Response {
    let mut request = app
        .http
        .get(app.url("/revocations"))
        .basic_auth(&client.id, client.secret.as_deref());
    if let Some(id) = last_event_id {
        request = request.header("Last-Event-ID", id);
    }
    request.send().await.expect("request sent")
}

/// The `jti` introspection gives `token`.
async fn jti(app: &TestApp, resource_server: &TestClient, token: &str) -> String {
    let answer = app.introspection_of(resource_server, token).await;
    answer["jti"].as_str().expect("an active token").to_owned()
}

db_test! {
    async fn only_resource_servers_may_follow_revocations(app: TestApp) {
        let anonymous = app.http.get(app.url("/revocations")).send().await.unwrap();
        assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
        let mut impostor = app.resource_server().await;
        impostor.secret = Some("wrong".into());
        assert_eq!(open(&app, &impostor, None).await.status(), StatusCode::UNAUTHORIZED);

        let service = app.service_client("").await;
        assert_eq!(open(&app, &service, None).await.status(), StatusCode::FORBIDDEN);

        let resource_server = app.resource_server().await;
        let bad_id = open(&app, &resource_server, Some("yesterday")).await;
        assert_eq!(bad_id.status(), StatusCode::BAD_REQUEST);
    }
}

db_test! {
    async fn a_revoked_token_is_announced_by_its_jti(app: TestApp) {
        let resource_server = app.resource_server().await;
        let service = app.service_client("").await;
        let token = app.issue_token(&service).await;
        let jti = jti(&app, &resource_server, &token).await;
        let mut stream = Subscriber::open(&app, &resource_server, None).await;
        assert_eq!(stream.next().await.name, "reset", "a fresh stream starts afresh");

        let revoked = Instant::now();
        assert_eq!(app.revoke(&service, &token).await.status(), StatusCode::OK);
        let event = stream.next_jti().await;

        println!("revocation announced after {:?}", revoked.elapsed());
        assert_eq!(event.name, "revoked");
        assert_eq!(event.data, serde_json::json!({ "jti": [jti] }));
        assert!(event.id.unwrap().parse::<i64>().unwrap() > 0);
    }
}

db_test! {
    async fn a_revoked_grant_is_announced_by_the_jtis_of_its_access_tokens(app: TestApp) {
        let resource_server = app.resource_server().await;
        let web_app = app.web_app(false).await;
        app.create_user("alice", "correct horse battery").await;
        let browser = app.browser();
        let pkce = Pkce::new();
        let code = app
            .authorization_code(&browser, &web_app, &pkce, "alice", "correct horse battery")
            .await;
        let tokens: serde_json::Value = app
            .exchange_code(&web_app, &code, &pkce.verifier)
            .await
            .json()
            .await
            .unwrap();
        let access = tokens["access_token"].as_str().unwrap();
        let refresh = tokens["refresh_token"].as_str().unwrap();
        let jti = jti(&app, &resource_server, access).await;
        let mut stream = Subscriber::open(&app, &resource_server, None).await;
        stream.next().await;

        // RFC 7009 §2.1: revoking the refresh token revokes the grant.
        assert_eq!(app.revoke(&web_app, refresh).await.status(), StatusCode::OK);

        let event = stream.next_jti().await;
        assert_eq!(event.name, "revoked");
        assert_eq!(event.data, serde_json::json!({ "jti": [jti] }));
    }
}

db_test! {
    async fn a_resource_server_hears_only_of_the_tokens_it_may_introspect(app: TestApp) {
        let ours = app.resource_server().await;
        let theirs = app.resource_server().await;
        app.create_resource("https://ours.example", "read", &[&ours]).await;
        app.create_resource("https://theirs.example", "read", &[&theirs]).await;
        let service = app.service_client("").await;
        app.allow_resource(&service, "https://ours.example", None).await;
        app.allow_resource(&service, "https://theirs.example", None).await;
        let their_token = app.issue_token_for(&service, "https://theirs.example").await;
        let our_token = app.issue_token_for(&service, "https://ours.example").await;
        let our_jti = jti(&app, &ours, &our_token).await;
        let mut stream = Subscriber::open(&app, &ours, None).await;

        app.revoke(&service, &their_token).await;
        app.revoke(&service, &our_token).await;

        let event = stream.next_jti().await;
        assert_eq!(event.data, serde_json::json!({ "jti": [our_jti] }), "theirs is not ours to know");
    }
}

db_test! {
    async fn a_stream_resumed_from_its_last_event_replays_what_it_missed(app: TestApp) {
        let resource_server = app.resource_server().await;
        let service = app.service_client("").await;
        let first = app.issue_token(&service).await;
        let second = app.issue_token(&service).await;
        let second_jti = jti(&app, &resource_server, &second).await;
        let mut stream = Subscriber::open(&app, &resource_server, None).await;
        stream.next().await;
        app.revoke(&service, &first).await;
        let last = stream.next_jti().await.id.unwrap();
        drop(stream);

        app.revoke(&service, &second).await;
        let mut resumed = Subscriber::open(&app, &resource_server, Some(&last)).await;

        let event = resumed.next_jti().await;
        assert_eq!(event.name, "revoked");
        assert_eq!(event.data, serde_json::json!({ "jti": [second_jti] }));
        assert!(event.id.unwrap().parse::<i64>().unwrap() > last.parse::<i64>().unwrap());
    }
}

db_test! {
    async fn a_stream_resumed_from_beyond_the_log_is_reset(app: TestApp) {
        let resource_server = app.resource_server().await;

        let mut stream = Subscriber::open(&app, &resource_server, Some("999999")).await;

        assert_eq!(stream.next().await.name, "reset");
    }
}

db_test_with! {
    |settings| settings.revocations.heartbeat_secs = 1,
    async fn a_quiet_stream_sends_heartbeats(app: TestApp) {
        let resource_server = app.resource_server().await;
        let mut stream = Subscriber::open(&app, &resource_server, None).await;
        stream.next().await;
        let before = stream.heartbeats;

        let waited = tokio::time::timeout(Duration::from_secs(3), async {
            while stream.heartbeats < before + 2 {
                let chunk = stream.chunks.next().await.unwrap().unwrap();
                stream.heartbeats += chunk.windows(4).filter(|w| w == b": hb").count();
            }
        })
        .await;

        assert!(waited.is_ok(), "two heartbeats within three seconds");
    }
}

db_test_with! {
    |settings| {
        settings.revocations.max_streams = 5;
        settings.revocations.heartbeat_secs = 1;
    },
    async fn at_most_max_streams_are_open_at_once(app: TestApp) {
        let resource_server = app.resource_server().await;

        let responses = join_all((0..30).map(|_| open(&app, &resource_server, None))).await;

        let open_streams: Vec<_> = responses
            .into_iter()
            .filter_map(|response| match response.status() {
                StatusCode::OK => Some(response),
                status => {
                    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
                    None
                }
            })
            .collect();
        assert_eq!(open_streams.len(), 5);

        // A closed stream frees its place once the server notices (at its next write at the
        // latest: the heartbeat).
        drop(open_streams);
        let started = Instant::now();
        while open(&app, &resource_server, None).await.status() != StatusCode::OK {
            assert!(started.elapsed() < Duration::from_secs(20), "the places are never freed");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}
