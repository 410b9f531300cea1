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
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_span_events(FmtSpan::CLOSE)
        .with_target(false);
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
