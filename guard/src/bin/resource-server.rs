//! An example resource server protected by Umbra: in-memory notes, `GET /notes` needs the
//! `read` scope and `POST /notes` needs `write`; `GET /health` is open.
//!
//! Configured by environment (see guard/README.md):
//! `UMBRA_URL` (default `http://127.0.0.1:8080`), the resource server's own client credentials
//! as `RS_CLIENT_ID` + `RS_CLIENT_SECRET` or as a JSON file `RS_CREDENTIALS_FILE` (the output
//! of `umbra client create … --introspect --json`), `RESOURCE_IDENTIFIER` (the resource this
//! server is, as registered with Umbra: tokens not meant for it are refused), `UMBRA_ISSUER`
//! (Umbra's `server.issuer`: answers naming another issuer are refused), `BIND` (default
//! `127.0.0.1:8081`), `RS_CACHE_TTL_SECS` (positive cache lifetime, default 0: off),
//! `RUST_LOG`, `LOG_FORMAT`.
use actix_web::{App, HttpResponse, HttpServer, error, web};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use std::process::ExitCode;
use std::sync::Mutex;
use std::time::Duration;
use tracing_actix_web::TracingLogger;
use tracing_subscriber::EnvFilter;
use umbra_guard::{CacheSettings, Introspector, RequireScopes, ValidatedToken};

/// Notes kept at most; older ones are dropped.
const MAX_NOTES: usize = 1000;
const MAX_TEXT_CHARS: usize = 1000;

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("resource-server: error: {}", err.replace(['\n', '\r'], " "));
            ExitCode::FAILURE
        }
    }
}

struct Config {
    umbra_url: String,
    client_id: String,
    client_secret: SecretString,
    resource: Option<String>,
    issuer: Option<String>,
    bind: String,
    cache_ttl: Duration,
}

fn run() -> Result<(), String> {
    let config = Config::from_env()?;
    init_logging();
    let mut builder = Introspector::builder(
        config.umbra_url.clone(),
        config.client_id,
        config.client_secret,
    );
    if let Some(resource) = &config.resource {
        builder = builder.resource(resource.clone());
    }
    if let Some(issuer) = &config.issuer {
        builder = builder.issuer(issuer.clone());
    }
    if !config.cache_ttl.is_zero() {
        builder = builder.cache(CacheSettings::new(10_000, config.cache_ttl));
    }
    let introspector = builder.build().map_err(|err| err.to_string())?;
    if config.resource.is_none() {
        tracing::warn!(
            "RESOURCE_IDENTIFIER is not set: every token Umbra calls active is accepted, \
             whichever service it was meant for (RFC 9700 §2.3); set it in production"
        );
    }
    let notes = web::Data::new(Notes::default());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|err| format!("cannot start the async runtime: {err}"))?;
    runtime.block_on(async move {
        let server = HttpServer::new(move || {
            App::new()
                .wrap(TracingLogger::default())
                .app_data(introspector.clone())
                .app_data(notes.clone())
                .app_data(
                    web::JsonConfig::default()
                        .limit(4096)
                        .error_handler(|err, _| {
                            let body = ErrorBody::new("invalid_request", &err.to_string());
                            error::InternalError::from_response(
                                err,
                                HttpResponse::BadRequest().json(body),
                            )
                            .into()
                        }),
                )
                .route("/health", web::get().to(health))
                .service(
                    web::resource("/notes")
                        .route(web::get().to(list_notes).wrap(RequireScopes::all(["read"])))
                        .route(
                            web::post()
                                .to(create_note)
                                .wrap(RequireScopes::all(["write"])),
                        ),
                )
                .default_service(web::to(not_found))
        })
        .bind(&config.bind)
        .map_err(|err| format!("cannot listen on {}: {err}", config.bind))?;
        tracing::info!(
            bind = %config.bind,
            umbra = %config.umbra_url,
            resource = config.resource.as_deref().unwrap_or("(any)"),
            issuer = config.issuer.as_deref().unwrap_or("(any)"),
            "resource server listening"
        );
        server.run().await.map_err(|err| err.to_string())
    })
}

impl Config {
    fn from_env() -> Result<Self, String> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let (client_id, client_secret) = match (
            var("RS_CREDENTIALS_FILE"),
            var("RS_CLIENT_ID"),
            var("RS_CLIENT_SECRET"),
        ) {
            (Some(path), None, None) => read_credentials(&path)?,
            (None, Some(id), Some(secret)) => (id, secret),
            (Some(_), _, _) => {
                return Err(
                    "set RS_CREDENTIALS_FILE or RS_CLIENT_ID and RS_CLIENT_SECRET, not both".into(),
                );
            }
            _ => {
                return Err(
                    "the resource server needs its credentials: RS_CLIENT_ID and \
                     RS_CLIENT_SECRET, or RS_CREDENTIALS_FILE"
                        .into(),
                );
            }
        };
        let cache_ttl = match var("RS_CACHE_TTL_SECS") {
            None => Duration::ZERO,
            Some(raw) => Duration::from_secs(
                raw.parse()
                    .map_err(|_| format!("RS_CACHE_TTL_SECS must be whole seconds, not {raw:?}"))?,
            ),
        };
        Ok(Self {
            umbra_url: var("UMBRA_URL").unwrap_or_else(|| "http://127.0.0.1:8080".into()),
            client_id,
            client_secret: SecretString::from(client_secret),
            resource: var("RESOURCE_IDENTIFIER"),
            issuer: var("UMBRA_ISSUER"),
            bind: var("BIND").unwrap_or_else(|| "127.0.0.1:8081".into()),
            cache_ttl,
        })
    }
}

/// `{"client_id": "…", "client_secret": "…"}`, other members ignored: what
/// `umbra client create … --json` and `umbra client rotate-secret … --json` print.
fn read_credentials(path: &str) -> Result<(String, String), String> {
    #[derive(Deserialize)]
    struct Credentials {
        client_id: String,
        client_secret: String,
    }
    let raw = std::fs::read_to_string(path)
        .map_err(|err| format!("cannot read RS_CREDENTIALS_FILE {path}: {err}"))?;
    let credentials: Credentials = serde_json::from_str(&raw).map_err(|err| {
        format!(
            "RS_CREDENTIALS_FILE {path} is not {{\"client_id\", \"client_secret\"}} JSON: {err}"
        )
    })?;
    Ok((credentials.client_id, credentials.client_secret))
}

fn init_logging() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false);
    let result = if std::env::var("LOG_FORMAT").as_deref() == Ok("json") {
        builder.json().flatten_event(true).try_init()
    } else {
        builder.try_init()
    };
    drop(result);
}

#[derive(Default)]
struct Notes {
    inner: Mutex<NoteList>,
}

#[derive(Default)]
struct NoteList {
    next_id: u64,
    notes: Vec<Note>,
}

#[derive(Clone, Serialize)]
struct Note {
    id: u64,
    text: String,
    /// The user or client whose token created the note.
    author: String,
}

#[derive(Deserialize)]
struct NewNote {
    text: String,
}

#[derive(Serialize)]
struct ErrorBody {
    error: &'static str,
    error_description: String,
}

impl ErrorBody {
    fn new(error: &'static str, description: &str) -> Self {
        Self {
            error,
            error_description: description.to_owned(),
        }
    }
}

async fn health() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({"status": "ok"}))
}

async fn list_notes(notes: web::Data<Notes>) -> HttpResponse {
    let list = notes.inner.lock().unwrap_or_else(|e| e.into_inner());
    HttpResponse::Ok().json(&list.notes)
}

async fn create_note(
    token: ValidatedToken,
    notes: web::Data<Notes>,
    body: web::Json<NewNote>,
) -> HttpResponse {
    let text = body.into_inner().text;
    let length = text.chars().count();
    if length == 0 || length > MAX_TEXT_CHARS {
        return HttpResponse::BadRequest().json(ErrorBody::new(
            "invalid_request",
            &format!("text must be 1 to {MAX_TEXT_CHARS} characters"),
        ));
    }
    let mut list = notes.inner.lock().unwrap_or_else(|e| e.into_inner());
    list.next_id += 1;
    let note = Note {
        id: list.next_id,
        text,
        author: token.principal().to_owned(),
    };
    list.notes.push(note.clone());
    if list.notes.len() > MAX_NOTES {
        list.notes.remove(0);
    }
    HttpResponse::Created().json(note)
}

async fn not_found() -> HttpResponse {
    HttpResponse::NotFound().json(ErrorBody::new("not_found", "no such resource"))
}
