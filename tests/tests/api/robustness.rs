//! HTTP robustness: thousands of mutated requests against every route of a running app.
//!
//! A seeded generator (xorshift, so every run sends the same requests) builds requests from
//! the route list (the OpenAPI document plus the browser pages) and garbles them: odd and
//! invalid methods, bytes that are not allowed in a request line or a header, broken and
//! huge percent-encodings, repeated and huge parameters, wrong content types, chunked bodies,
//! real and mangled credentials, session cookies and forwarding headers. They go over raw TCP,
//! because most of them are not requests reqwest would agree to send.
//!
//! Every request must get an HTTP response that is not a 5xx (a `503` that carries
//! `Retry-After` is load shedding, not a failure); liveness must still answer afterwards; and
//! the process must not grow by more than a generous bound over a second round of the same size.
use reqwest::StatusCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use umbra::oauth::grant_type::GrantType;
use umbra_tests::{ClientSpec, Pkce, REDIRECT_URI, TestApp};

const SEED: u64 = 0x5eed_0b5c_u64;
/// Requests per round; the test sends two rounds.
const ROUND: usize = 1500;
const CONCURRENCY: usize = 8;
/// Growth of the resident set over a round above which we call it a leak (a round grows it
/// by under 1 MiB when nothing leaks). The app runs in this process alongside other tests, so
/// the bound is loose: it catches a leak of tens of kilobytes per request, not a few bytes.
const MAX_GROWTH_KIB: u64 = 32 * 1024;

/// Routes the OpenAPI document does not list: the browser pages and the plumbing.
const PAGE_ROUTES: &[(&str, &str)] = &[
    ("GET", "/authorize"),
    ("GET", "/login"),
    ("POST", "/login"),
    ("GET", "/login/2fa"),
    ("POST", "/login/2fa"),
    ("POST", "/login/2fa/send"),
    ("GET", "/login/continue"),
    ("POST", "/logout"),
    ("GET", "/end-session"),
    ("POST", "/end-session"),
    ("POST", "/end-session/confirm"),
    ("GET", "/consent"),
    ("POST", "/consent"),
    ("GET", "/account"),
    ("POST", "/account/consents/{client_id}/withdraw"),
    ("POST", "/account/recovery-codes"),
    ("GET", "/account/2fa/{kind}"),
    ("POST", "/account/2fa/{kind}"),
    ("POST", "/account/2fa/{kind}/confirm"),
    ("POST", "/account/2fa/{kind}/resend"),
    ("POST", "/account/2fa/{kind}/remove"),
    ("GET", "/static/umbra.css"),
    ("GET", "/health/live"),
    ("GET", "/health/ready"),
    ("GET", "/openapi.json"),
    ("GET", "/.well-known/oauth-authorization-server"),
    ("GET", "/metrics"),
    ("GET", "/no/such/route"),
];

const PARAM_NAMES: &[&str] = &[
    "grant_type",
    "client_id",
    "client_secret",
    "token",
    "token_type_hint",
    "code",
    "code_verifier",
    "code_challenge",
    "code_challenge_method",
    "redirect_uri",
    "response_type",
    "refresh_token",
    "scope",
    "state",
    "prompt",
    "nonce",
    "max_age",
    "login_hint",
    "id_token_hint",
    "post_logout_redirect_uri",
    "access_token",
    "username",
    "password",
    "csrf_token",
    "decision",
    "method",
    "destination",
    "resource",
];

const VALUES: &[&str] = &[
    "client_credentials",
    "authorization_code",
    "refresh_token",
    "code",
    "token",
    "S256",
    "plain",
    "read",
    "read write account",
    "none",
    "approve",
    "deny",
    "totp",
    "email",
    "sms",
    "recovery",
    "access_token",
    REDIRECT_URI,
    "https://evil.example/cb",
    "javascript:alert(1)",
    "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
    "robust",
    "123456",
    "",
    "%",
    "%%",
    "%zz",
    "%FF%FE",
    "%C3%28",
    "%00",
    "%0d%0a",
    "+",
    "=",
    "&",
    "\u{202e}",
];

const CONTENT_TYPES: &[&str] = &[
    "application/x-www-form-urlencoded",
    "application/x-www-form-urlencoded; charset=utf-8",
    "application/x-www-form-urlencoded; charset=latin1",
    "APPLICATION/X-WWW-FORM-URLENCODED",
    "application/json",
    "application/json; charset=utf-8",
    "text/plain",
    "text/html",
    "multipart/form-data; boundary=x",
    "multipart/form-data",
    "application/xml",
    "application/",
    "/",
    ";;;",
    "application/x-www-form-urlencoded, application/json",
    "",
];

const METHODS: &[&str] = &[
    "GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "TRACE", "get", "post", "FOO",
    "PROPFIND", "M-SEARCH", "G", "GETT",
];

/// Deterministic pseudo-random numbers (xorshift64*), one stream per request.
struct Rng(u64);

impl Rng {
    fn for_request(index: usize) -> Self {
        let mut rng = Self(SEED ^ (index as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15));
        rng.next();
        rng
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    /// True with `percent` % probability.
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }

    fn pick<'a, T: ?Sized>(&mut self, items: &'a [&'a T]) -> &'a T {
        items[self.below(items.len())]
    }

    fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next() as u8).collect()
    }

    /// A length that is usually small and sometimes huge.
    fn length(&mut self) -> usize {
        match self.below(20) {
            0 => 4_000 + self.below(30_000),
            1 => 16 * 1024 + self.below(3) - 1,
            2..=5 => 100 + self.below(1_000),
            _ => self.below(40),
        }
    }
}

/// Real identifiers and credentials, so that requests reach past the first checks.
struct Material {
    routes: Vec<(String, String)>,
    client_id: String,
    basic: String,
    bearer: String,
    access_token: String,
    cookie: String,
}

/// Percent-encodes every byte that is not unreserved.
fn percent_encode(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|&b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn value(rng: &mut Rng, material: &Material) -> Vec<u8> {
    match rng.below(10) {
        0 => material.client_id.clone().into_bytes(),
        1 => material.access_token.clone().into_bytes(),
        2 => percent_encode(&{
            let len = rng.length();
            rng.bytes(len)
        })
        .into_bytes(),
        3 => {
            let len = rng.length();
            rng.bytes(len)
        }
        4 => {
            let len = rng.length();
            "a".repeat(len).into_bytes()
        }
        5 => format!("{}%", rng.pick(VALUES)).into_bytes(),
        _ => percent_encode(rng.pick(VALUES).as_bytes()).into_bytes(),
    }
}

/// `name=value&…`, with repeated, empty, nameless and garbage pairs.
fn params(rng: &mut Rng, material: &Material) -> Vec<u8> {
    let mut out = Vec::new();
    let mut names: Vec<Vec<u8>> = Vec::new();
    for i in 0..rng.below(9) {
        if i > 0 {
            out.push(b'&');
        }
        let name = match rng.below(10) {
            0 if !names.is_empty() => names[rng.below(names.len())].clone(),
            1 => {
                let len = rng.length();
                rng.bytes(len)
            }
            2 => Vec::new(),
            _ => rng.pick(PARAM_NAMES).as_bytes().to_vec(),
        };
        out.extend_from_slice(&name);
        names.push(name);
        if !rng.chance(10) {
            out.push(b'=');
            out.extend(value(rng, material));
        }
    }
    if rng.chance(5) {
        out.extend_from_slice(b"&&==&");
    }
    out
}

fn json_body(rng: &mut Rng, material: &Material) -> Vec<u8> {
    let text = |rng: &mut Rng| String::from_utf8_lossy(&value(rng, material)).into_owned();
    let body = match rng.below(8) {
        0 => serde_json::json!({"code": text(rng)}).to_string(),
        1 => serde_json::json!({"destination": text(rng), "extra": 1}).to_string(),
        2 => serde_json::json!({"code": 123456, "password": ["x"]}).to_string(),
        3 => format!("{{\"code\": \"{}\"", text(rng)),
        4 => "[".repeat(rng.below(5_000)),
        5 => serde_json::json!({"password": text(rng), "code": text(rng)}).to_string(),
        6 => "null".to_owned(),
        _ => "{\"code\":\"1\",\"code\":\"2\"}".to_owned(),
    };
    body.into_bytes()
}

fn authorization(rng: &mut Rng, material: &Material) -> Option<Vec<u8>> {
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;
    let value = match rng.below(14) {
        0..=4 => return None,
        5 => material.basic.clone().into_bytes(),
        6 => format!("Bearer {}", material.bearer).into_bytes(),
        7 => {
            let mut basic = material.basic.clone().into_bytes();
            mutate(rng, &mut basic);
            basic
        }
        8 => {
            let len = rng.length();
            let inner = rng.bytes(len);
            format!("Basic {}", STANDARD.encode(inner)).into_bytes()
        }
        9 => b"Basic".to_vec(),
        10 => format!("Bearer {}", "at_".repeat(rng.below(8_000))).into_bytes(),
        11 => format!("bearer  {} ", material.access_token).into_bytes(),
        12 => format!(
            "Basic {}",
            STANDARD.encode(format!("{}:%zz%", material.client_id))
        )
        .into_bytes(),
        _ => {
            let len = rng.length();
            rng.bytes(len)
        }
    };
    Some(value)
}

/// Overwrites or inserts a few random bytes, usually printable ones (most others make the
/// HTTP parser refuse the request before the application sees it).
fn mutate(rng: &mut Rng, bytes: &mut Vec<u8>) {
    let printable = rng.chance(75);
    for _ in 0..=rng.below(4) {
        let at = rng.below(bytes.len() + 1);
        let byte = if printable {
            0x20 + rng.below(0x5f) as u8
        } else {
            rng.next() as u8
        };
        if at < bytes.len() && rng.chance(50) {
            bytes[at] = byte;
        } else {
            bytes.insert(at, byte);
        }
    }
}

/// Escapes what a request target may not hold, so that most queries reach the application
/// instead of being refused by the HTTP parser.
fn escape_for_target(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    for &b in bytes {
        if b.is_ascii_alphanumeric() || b"-._~:/?[]@!$&'()*+,;=%".contains(&b) {
            out.push(b);
        } else {
            out.extend_from_slice(format!("%{b:02X}").as_bytes());
        }
    }
    out
}

/// CR and LF would end the line early and make a different request; the rest is fair game.
fn no_line_breaks(bytes: &mut Vec<u8>) {
    bytes.retain(|b| *b != b'\r' && *b != b'\n');
}

/// One garbled request, ready for the wire.
fn request(index: usize, material: &Material) -> Vec<u8> {
    let rng = &mut Rng::for_request(index);
    let (route_method, template) = &material.routes[rng.below(material.routes.len())];

    let mut method = match rng.below(25) {
        0..=18 => route_method.clone().into_bytes(),
        19..=23 => rng.pick(METHODS).as_bytes().to_vec(),
        _ => {
            let len = 1 + rng.below(40);
            rng.bytes(len)
        }
    };
    if method.is_empty() || rng.chance(3) {
        mutate(rng, &mut method);
    }
    method.retain(|b| !b" \r\n".contains(b));
    if method.is_empty() {
        method = b"GET".to_vec();
    }

    let mut target = Vec::new();
    for segment in template.split('/').filter(|s| !s.is_empty()) {
        target.push(b'/');
        if segment.starts_with('{') {
            match rng.below(6) {
                0 => target.extend_from_slice(b"totp"),
                1 => target.extend_from_slice(b"email"),
                2 => target.extend_from_slice(material.client_id.as_bytes()),
                3 => target.extend_from_slice(b"%2e%2e"),
                4 => target.extend(
                    percent_encode(&{
                        let len = rng.length();
                        rng.bytes(len)
                    })
                    .into_bytes(),
                ),
                _ => target.extend_from_slice(b"sms"),
            }
        } else {
            target.extend_from_slice(segment.as_bytes());
        }
    }
    if target.is_empty() {
        target.push(b'/');
    }
    if rng.chance(50) {
        target.push(b'?');
        let query = params(rng, material);
        if rng.chance(10) {
            target.extend(query);
        } else {
            target.extend(escape_for_target(&query));
        }
    }
    if rng.chance(4) {
        mutate(rng, &mut target);
        target.retain(|b| !b" \r\n".contains(b));
    }

    let mut headers: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    if let Some(auth) = authorization(rng, material) {
        headers.push((b"Authorization".to_vec(), auth.clone()));
        if rng.chance(10) {
            headers.push((b"Authorization".to_vec(), auth));
        }
    }
    match rng.below(6) {
        0 => headers.push((b"Cookie".to_vec(), material.cookie.clone().into_bytes())),
        1 => {
            let mut cookie = material.cookie.clone().into_bytes();
            mutate(rng, &mut cookie);
            headers.push((b"Cookie".to_vec(), cookie));
        }
        2 => {
            let len = rng.length();
            let junk = percent_encode(&rng.bytes(len));
            headers.push((
                b"Cookie".to_vec(),
                format!("id={junk}; a=b; ;=").into_bytes(),
            ));
        }
        _ => {}
    }
    if rng.chance(15) {
        let forwarded: &[&str] = &[
            "for=\"[::1]:80\"",
            "for=unknown, for=_hidden",
            "for=300.1.1.1",
            "for=\"[2001:db8::1\"",
        ];
        headers.push((
            b"Forwarded".to_vec(),
            rng.pick(forwarded).as_bytes().to_vec(),
        ));
        headers.push((
            b"X-Forwarded-For".to_vec(),
            b"1.2.3.4, ::ffff:1.2.3.4, x".to_vec(),
        ));
    }
    if rng.chance(10) {
        headers.push((b"Accept".to_vec(), b"*/*;q=x, text/html;;".to_vec()));
    }
    if rng.chance(5) {
        let len = rng.length();
        headers.push((rng.bytes(len.min(200)), rng.bytes(len)));
    }

    let body = if rng.chance(60) {
        let content_type = rng.pick(CONTENT_TYPES).as_bytes().to_vec();
        if !content_type.is_empty() || rng.chance(50) {
            headers.push((b"Content-Type".to_vec(), content_type));
        }
        match rng.below(10) {
            0..=5 => params(rng, material),
            6 | 7 => json_body(rng, material),
            _ => {
                let len = rng.length();
                rng.bytes(len)
            }
        }
    } else {
        Vec::new()
    };
    if rng.chance(5) {
        let header = headers.len().saturating_sub(1);
        if let Some((_, value)) = headers.get_mut(header) {
            mutate(rng, value);
        }
    }
    for (name, value) in &mut headers {
        no_line_breaks(name);
        name.retain(|b| *b != b':');
        if name.is_empty() {
            name.extend_from_slice(b"X");
        }
        no_line_breaks(value);
    }

    let mut out = Vec::with_capacity(body.len() + 512);
    out.extend_from_slice(&method);
    out.push(b' ');
    out.extend_from_slice(&target);
    out.extend_from_slice(b" HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n");
    for (name, value) in &headers {
        out.extend_from_slice(name);
        out.extend_from_slice(b": ");
        out.extend_from_slice(value);
        out.extend_from_slice(b"\r\n");
    }
    let chunked = !body.is_empty() && rng.chance(15);
    if chunked {
        out.extend_from_slice(b"Transfer-Encoding: chunked\r\n\r\n");
        for chunk in body.chunks(1 + rng.below(4096)) {
            out.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
            out.extend_from_slice(chunk);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"0\r\n\r\n");
    } else {
        if !body.is_empty() || rng.chance(20) {
            out.extend_from_slice(format!("Content-Length: {}\r\n", body.len()).as_bytes());
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(&body);
    }
    out
}

/// What went wrong with one request, if anything.
async fn exchange(address: &str, request: &[u8]) -> Result<(), String> {
    let mut stream = TcpStream::connect(address)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let (mut reader, mut writer) = stream.split();
    // The server may answer (413, 400) before reading the whole request: keep reading while
    // writing, and do not count a write cut short by its answer as a failure.
    let write = async {
        let _ = writer.write_all(request).await;
    };
    let read = async {
        let mut response = Vec::new();
        let result = reader.read_to_end(&mut response).await;
        (response, result)
    };
    let (_, (response, result)) =
        tokio::time::timeout(Duration::from_secs(60), async { tokio::join!(write, read) })
            .await
            .map_err(|_| "no answer within 60 s".to_owned())?;
    let head = String::from_utf8_lossy(&response[..response.len().min(2048)]).into_owned();
    let status: u16 = head
        .strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| match &result {
            Err(e) => format!("connection dropped ({e}) after {} bytes", response.len()),
            Ok(_) => format!("no HTTP response: {head:?}"),
        })?;
    let shed = status == 503 && head.to_ascii_lowercase().contains("\r\nretry-after:");
    if status >= 500 && !shed {
        return Err(format!("status {status}: {head}"));
    }
    Ok(())
}

/// Sends requests `range` with `CONCURRENCY` connections at a time; returns the failures.
async fn round(
    address: &str,
    material: &Arc<Material>,
    range: std::ops::Range<usize>,
) -> Vec<String> {
    let next = Arc::new(AtomicUsize::new(range.start));
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..CONCURRENCY {
        let (next, material, address) = (next.clone(), material.clone(), address.to_owned());
        let end = range.end;
        workers.spawn(async move {
            let mut failures = Vec::new();
            loop {
                let index = next.fetch_add(1, Ordering::Relaxed);
                if index >= end {
                    return failures;
                }
                let request = request(index, &material);
                if let Err(problem) = exchange(&address, &request).await {
                    let shown = request[..request.len().min(400)].escape_ascii();
                    failures.push(format!("request {index}: {problem}\n  sent: {shown}"));
                }
            }
        });
    }
    let mut failures = Vec::new();
    while let Some(result) = workers.join_next().await {
        failures.extend(result.expect("worker"));
    }
    failures
}

fn resident_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

/// Every route: the OpenAPI document's operations and the pages.
async fn routes(app: &TestApp) -> Vec<(String, String)> {
    let document: serde_json::Value = app.get_json("/openapi.json").await;
    let mut routes: Vec<(String, String)> = Vec::new();
    for (path, operations) in document["paths"].as_object().expect("paths") {
        for method in operations.as_object().expect("operations").keys() {
            routes.push((method.to_ascii_uppercase(), path.clone()));
        }
    }
    assert!(routes.len() >= 5, "the OpenAPI document lists {routes:?}");
    for (method, path) in PAGE_ROUTES {
        let route = (method.to_string(), path.to_string());
        if !routes.contains(&route) {
            routes.push(route);
        }
    }
    routes
}

/// Signs a user in through the pages and returns the session cookie, plus a bearer token
/// with the `account` scope for the JSON API.
async fn signed_in(app: &TestApp) -> (String, String) {
    app.create_user("robust", "correct horse battery").await;
    let client = app
        .register(ClientSpec {
            public: true,
            scopes: "read account",
            grant_types: &[GrantType::AuthorizationCode, GrantType::RefreshToken],
            redirect_uris: &[REDIRECT_URI],
            ..ClientSpec::default()
        })
        .await;
    let bearer = app
        .user_access_token(&client, "robust", "correct horse battery", "account")
        .await;

    let browser = app.browser();
    browser
        .authorize(&client, &Pkce::new(), "&scope=read")
        .await;
    let response = browser.sign_in("robust", "correct horse battery").await;
    assert!(response.status().is_redirection(), "{}", response.status());
    let cookie = browser.cookie_header().expect("a session cookie");
    (cookie, bearer)
}

db_test! {
    async fn thousands_of_mutated_requests_get_answers_and_no_5xx(app: TestApp) {
        let service = app.service_client("read").await;
        let access_token = app.issue_token(&service).await;
        let (cookie, bearer) = signed_in(&app).await;
        let basic = {
            use base64::Engine;
            let pair = format!("{}:{}", service.id, service.secret.as_deref().unwrap());
            format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(pair))
        };
        let material = Arc::new(Material {
            routes: routes(&app).await,
            client_id: service.id.clone(),
            basic,
            bearer,
            access_token,
            cookie,
        });
        let address = app.address.trim_start_matches("http://").to_owned();

        let mut failures = round(&address, &material, 0..ROUND).await;
        let before = resident_kib();
        failures.extend(round(&address, &material, ROUND..2 * ROUND).await);
        let mut growth = resident_kib().saturating_sub(before);
        if growth >= MAX_GROWTH_KIB {
            // Tests share this process: a leak grows on every round, another test's
            // allocations rarely land on two rounds in a row.
            let before = resident_kib();
            failures.extend(round(&address, &material, 2 * ROUND..3 * ROUND).await);
            growth = resident_kib().saturating_sub(before);
        }

        assert!(
            failures.is_empty(),
            "{} requests failed; the first:\n{}",
            failures.len(),
            failures.iter().take(5).cloned().collect::<Vec<_>>().join("\n")
        );
        let live = app.http.get(app.url("/health/live")).send().await.unwrap();
        assert_eq!(live.status(), StatusCode::OK);
        assert!(
            growth < MAX_GROWTH_KIB,
            "the resident set grew by {growth} KiB over {ROUND} requests, twice"
        );
    }
}
