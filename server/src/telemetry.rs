//! Logging: one subscriber, initialised once; a span per request carrying a request id.
//!
//! The request span records the path but never the query string, since a careless client may
//! put a secret there, and the client address as the trusted proxies resolve it (never a
//! forwarding header that any client can write).
use crate::settings::{LogFormat, LogSettings};
use actix_web::Error;
use actix_web::HttpMessage;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use std::io::IsTerminal;
use tracing::Span;
use tracing_actix_web::{DefaultRootSpanBuilder, RequestId, RootSpanBuilder};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::FmtSpan;

/// Installs the global subscriber. `RUST_LOG` wins over the configured level. Calling it twice
/// is harmless (the second call is ignored).
pub fn init(settings: &LogSettings, writer: Writer) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&settings.level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    // Colour escapes help a person at a terminal and garble files, pipes and log collectors.
    let ansi = match writer {
        Writer::Stdout => std::io::stdout().is_terminal(),
        Writer::Stderr => std::io::stderr().is_terminal(),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_span_events(FmtSpan::CLOSE)
        .with_target(false)
        .with_ansi(ansi);
    let result = match (settings.format, writer) {
        (LogFormat::Json, Writer::Stdout) => builder.json().flatten_event(true).try_init(),
        (LogFormat::Json, Writer::Stderr) => builder
            .json()
            .flatten_event(true)
            .with_writer(std::io::stderr)
            .try_init(),
        (LogFormat::Pretty, Writer::Stdout) => builder.try_init(),
        (LogFormat::Pretty, Writer::Stderr) => builder.with_writer(std::io::stderr).try_init(),
    };
    drop(result);
}

/// Where log lines go: the server logs to stdout, CLI commands to stderr so that their
/// output stays machine-readable.
#[derive(Debug, Clone, Copy)]
pub enum Writer {
    Stdout,
    Stderr,
}

/// The root span of every request.
pub struct RequestSpan;

impl RootSpanBuilder for RequestSpan {
    fn on_request_start(request: &ServiceRequest) -> Span {
        let request_id = request.extensions().get::<RequestId>().copied();
        let client_ip = crate::http::client_address::client_address(request.request());
        tracing::info_span!(
            "request",
            method = %request.method(),
            path = %request.path(),
            request_id = request_id.map(tracing::field::display),
            client_ip = client_ip.map(tracing::field::display),
            client_id = tracing::field::Empty,
            http.status_code = tracing::field::Empty,
            otel.status_code = tracing::field::Empty,
            exception.message = tracing::field::Empty,
            exception.details = tracing::field::Empty,
        )
    }

    fn on_request_end<B: MessageBody>(span: Span, outcome: &Result<ServiceResponse<B>, Error>) {
        DefaultRootSpanBuilder::on_request_end(span, outcome);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::AppState;
    use crate::settings::{Settings, TrustedProxies};
    use actix_web::test::TestRequest;
    use actix_web::web;
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// The log line of a request span from `peer` carrying `X-Forwarded-For: forwarded`.
    fn span_line(state: &web::Data<AppState>, peer: &str, forwarded: &str) -> String {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_span_events(FmtSpan::CLOSE)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        let request = TestRequest::default()
            .peer_addr(peer.parse().unwrap())
            .insert_header(("x-forwarded-for", forwarded))
            .app_data(state.clone())
            .to_srv_request();
        tracing::subscriber::with_default(subscriber, || {
            drop(RequestSpan::on_request_start(&request));
        });
        String::from_utf8(captured.0.lock().unwrap().clone()).unwrap()
    }

    #[test]
    fn the_request_span_names_the_client_the_trusted_proxies_resolve() {
        let mut settings = Settings::built_in().unwrap();
        settings.server.trusted_proxies =
            TrustedProxies::try_from(vec!["10.0.0.1".to_owned()]).unwrap();
        settings.passwords.argon2_memory_kib = 1024;
        settings.passwords.argon2_iterations = 1;
        let store = crate::store::Store::new(sea_orm::DatabaseConnection::default());
        let (sealer, policy) = crate::startup::key_parts(&settings).unwrap();
        let keys = Arc::new(crate::keys::KeyRing::empty(store.clone(), sealer, policy));
        let state = web::Data::new(
            crate::startup::app_state(
                store,
                Arc::new(settings),
                Arc::new(crate::sender::LogSender),
                keys,
            )
            .unwrap(),
        );

        let proxied = span_line(&state, "10.0.0.1:4000", "6.6.6.6, 198.51.100.7");
        let direct = span_line(&state, "192.0.2.9:4000", "198.51.100.8");

        assert!(proxied.contains("client_ip=198.51.100.7"), "{proxied}");
        assert!(!proxied.contains("6.6.6.6"), "{proxied}");
        assert!(direct.contains("client_ip=192.0.2.9"), "{direct}");
        assert!(!direct.contains("198.51.100.8"), "{direct}");
    }
}
