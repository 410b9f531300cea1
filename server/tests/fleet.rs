//! Three `umbra serve` processes on one Postgres database behind a real HAProxy (round-robin,
//! health checks on `/health/ready`), as an operator runs them: what one instance guarantees,
//! three must guarantee too, and a rolling restart fails no request.
//!
//! Runs when `UMBRA_FLEET_TEST=1` (CI sets it); needs `haproxy` and `pgbouncer` on the PATH
//! (`apt-get install haproxy pgbouncer`), which under `CI` is a failure when missing, and
//! `TEST_DATABASE_URL`. Each test prints its numbers (requests sent, failures).
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::Value;

mod common;
use common::{PostgresDatabase, free_port};

const INSTANCES: usize = 3;
/// `database.max_connections` of each instance behind PgBouncer.
const POOLED_CONNECTIONS: usize = 8;
const REDIRECT_URI: &str = "http://127.0.0.1/callback";
/// Long enough for HAProxy to see two failed checks 200 ms apart and take the instance out.
const DRAIN_SECS: u64 = 2;
/// A 66-byte session key shared by the instances: a sign-in at one is valid at the others.
const SESSION_KEY: &str =
    "ZmxlZXQtdGVzdC1zZXNzaW9uLWtleS1mbGVldC10ZXN0LXNlc3Npb24ta2V5LWZsZWV0LXRlc3Qtc2Vzc2lvbi1r";

/// True when the fleet tests should run: `UMBRA_FLEET_TEST=1` and the tools installed (a
/// missing tool fails the run in CI rather than skipping it).
fn fleet_enabled() -> bool {
    if std::env::var("UMBRA_FLEET_TEST").as_deref() != Ok("1") {
        println!("skipped: set UMBRA_FLEET_TEST=1 to run the multi-instance tests");
        return false;
    }
    for tool in ["haproxy", "pgbouncer"] {
        let found = Command::new(tool)
            .arg("-V")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok();
        if !found {
            assert!(
                std::env::var_os("CI").is_none(),
                "{tool} is missing (apt-get install haproxy pgbouncer)"
            );
            println!("skipped: {tool} is not installed");
            return false;
        }
    }
    true
}

/// Fleets run one after the other: three servers and a load each are enough for two cores,
/// and the rolling restart counts failures that an overloaded machine would add.
fn one_fleet_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    static FLEET: std::sync::Mutex<()> = std::sync::Mutex::new(());
    FLEET
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A child process killed when dropped.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        self.0.kill().ok();
        self.0.wait().ok();
    }
}

/// One `umbra serve` process and the ports it was given.
struct Instance {
    port: u16,
    metrics_port: u16,
    process: Option<Running>,
}

/// Which database URL the servers use: Postgres itself, or a PgBouncer in front of it.
enum Pooling {
    Direct,
    PgBouncer,
}

/// The fleet: a fresh database, migrated once, three servers and the HAProxy in front.
struct Fleet {
    dir: PathBuf,
    database: PostgresDatabase,
    /// The URL the servers connect to (the database's, or PgBouncer's).
    serve_url: String,
    extra_env: Vec<(String, String)>,
    instances: Vec<Instance>,
    _pgbouncer: Option<Running>,
    _haproxy: Running,
    /// HAProxy's address, the issuer of every instance.
    base: String,
}

impl Fleet {
    /// Starts the fleet with `extra_env` (`UMBRA__…` settings) on every instance.
    fn start(pooling: Pooling, extra_env: &[(&str, &str)]) -> Self {
        let database = PostgresDatabase::create()
            .expect("the fleet tests need TEST_DATABASE_URL (a Postgres server)");
        let dir =
            std::env::temp_dir().join(format!("umbra-fleet-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let migrated = umbra(&dir, database.url.as_str())
            .arg("migrate")
            .output()
            .unwrap();
        assert!(migrated.status.success(), "{migrated:?}");
        let (pgbouncer, serve_url) = match pooling {
            Pooling::Direct => (None, database.url.to_string()),
            Pooling::PgBouncer => {
                let (process, url) = start_pgbouncer(&dir, &database.url);
                (Some(process), url)
            }
        };
        let haproxy_port = free_port();
        let base = format!("http://127.0.0.1:{haproxy_port}");
        let mut extra_env: Vec<(String, String)> = extra_env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        extra_env.push(("UMBRA__SERVER__ISSUER".into(), base.clone()));
        let instances = (0..INSTANCES)
            .map(|_| Instance {
                port: free_port(),
                metrics_port: free_port(),
                process: None,
            })
            .collect::<Vec<_>>();
        let haproxy = start_haproxy(&dir, haproxy_port, &instances);
        let mut fleet = Self {
            dir,
            database,
            serve_url,
            extra_env,
            instances,
            _pgbouncer: pgbouncer,
            _haproxy: haproxy,
            base,
        };
        // All at once, as an orchestrator starts replicas: the first start of each races the
        // others (e.g. to create the first signing key).
        for i in 0..INSTANCES {
            fleet.spawn(i);
        }
        for i in 0..INSTANCES {
            fleet.wait_ready(i);
        }
        fleet.wait_in_rotation();
        fleet
    }

    fn spawn(&mut self, i: usize) {
        let instance = &self.instances[i];
        let log = std::fs::File::create(self.dir.join(format!("umbra-{i}.log"))).unwrap();
        let child = umbra(&self.dir, &self.serve_url)
            .arg("serve")
            .env("UMBRA__SERVER__PORT", instance.port.to_string())
            .env("UMBRA__METRICS__PORT", instance.metrics_port.to_string())
            .env("UMBRA__ADMIN__PORT", "0")
            .env("UMBRA__DATABASE__MIGRATE_ON_START", "false")
            .env("UMBRA__SESSION__KEY", SESSION_KEY)
            .env("UMBRA__SERVER__TRUSTED_PROXIES", "127.0.0.1")
            .env("UMBRA__SERVER__SHUTDOWN_DRAIN_SECS", DRAIN_SECS.to_string())
            .env("UMBRA__LOG__LEVEL", "warn")
            .envs(self.extra_env.iter().map(|(k, v)| (k, v)))
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        self.instances[i].process = Some(Running(child));
    }

    fn wait_ready(&mut self, i: usize) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !get(self.instances[i].port, "/health/ready").starts_with("HTTP/1.1 200") {
            let exited = self.instances[i]
                .process
                .as_mut()
                .and_then(|p| p.0.try_wait().unwrap());
            assert!(
                exited.is_none() && Instant::now() < deadline,
                "instance {i} did not become ready: {}",
                self.log(i)
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits until HAProxy's checks see every instance up: each answers once in a round of
    /// readiness probes through the balancer.
    fn wait_in_rotation(&self) {
        let port: u16 = self.base.rsplit(':').next().unwrap().parse().unwrap();
        let deadline = Instant::now() + Duration::from_secs(15);
        let mut in_a_row = 0;
        while in_a_row < 3 * INSTANCES {
            assert!(
                Instant::now() < deadline,
                "HAProxy never had every instance up"
            );
            in_a_row = match get(port, "/health/ready").starts_with("HTTP/1.1 200") {
                true => in_a_row + 1,
                false => 0,
            };
            std::thread::sleep(Duration::from_millis(50));
        }
        // Checks run every 200 ms and need two successes: give the last instance its rise.
        std::thread::sleep(Duration::from_millis(600));
    }

    /// SIGTERM to instance `i`, then waits for it to exit 0.
    fn stop(&mut self, i: usize) {
        let mut process = self.instances[i].process.take().expect("running");
        let pid = process.0.id().to_string();
        assert!(
            Command::new("kill")
                .args(["-TERM", &pid])
                .status()
                .unwrap()
                .success()
        );
        let deadline = Instant::now() + Duration::from_secs(DRAIN_SECS + 40);
        let status = loop {
            if let Some(status) = process.0.try_wait().unwrap() {
                break status;
            }
            assert!(Instant::now() < deadline, "instance {i} did not exit");
            std::thread::sleep(Duration::from_millis(50));
        };
        assert_eq!(status.code(), Some(0), "{}", self.log(i));
    }

    fn log(&self, i: usize) -> String {
        std::fs::read_to_string(self.dir.join(format!("umbra-{i}.log"))).unwrap_or_default()
    }

    /// The URL of `path` at instance `i`, bypassing the balancer.
    fn at(&self, i: usize, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.instances[i].port)
    }

    /// The URL of `path` through HAProxy.
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Runs `umbra` with `args` against the fleet's database and returns its JSON output.
    fn cli(&self, args: &[&str]) -> Value {
        let output = umbra(&self.dir, self.database.url.as_str())
            .args(args)
            .arg("--json")
            .output()
            .unwrap();
        assert!(output.status.success(), "{output:?}");
        serde_json::from_slice(&output.stdout).unwrap()
    }

    /// A confidential client with `client_credentials`, `read` scope.
    fn service_client(&self) -> Credentials {
        let created = self.cli(&["client", "create", "Service", "--scope", "read"]);
        Credentials::of(&created)
    }

    /// A resource server that may introspect.
    fn introspector(&self) -> Credentials {
        let created = self.cli(&["client", "create", "API", "--introspect"]);
        Credentials::of(&created)
    }

    /// A confidential web app with the code flow and refresh tokens, no consent page.
    fn web_app(&self) -> Credentials {
        let created = self.cli(&[
            "client",
            "create",
            "Web",
            "--scope",
            "read",
            "--redirect-uri",
            REDIRECT_URI,
            "--skip-consent",
        ]);
        Credentials::of(&created)
    }

    fn create_user(&self, username: &str, password: &str) {
        let mut child = umbra(&self.dir, self.database.url.as_str())
            .args(["user", "create", username, "--password-stdin"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(password.as_bytes())
            .unwrap();
        assert!(child.wait().unwrap().success());
    }

    /// `umbra_cleanup_passes_total` on each instance's metrics listener (0 when absent).
    fn cleanup_passes(&self) -> Vec<f64> {
        self.instances
            .iter()
            .map(|instance| {
                let page = get(instance.metrics_port, "/metrics");
                // Summed over whatever labels the counter has.
                page.lines()
                    .filter_map(|line| line.strip_prefix("umbra_cleanup_passes_total"))
                    .filter(|rest| rest.starts_with([' ', '{']))
                    .filter_map(|rest| rest.rsplit(' ').next()?.trim().parse::<f64>().ok())
                    .fold(0.0, |total, n| total + n)
            })
            .collect()
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        // The servers hold connections to the database that is dropped next.
        for instance in &mut self.instances {
            instance.process.take();
        }
        if !std::thread::panicking() {
            std::fs::remove_dir_all(&self.dir).ok();
        } else {
            eprintln!("fleet logs kept in {}", self.dir.display());
        }
    }
}

fn umbra(dir: &Path, database_url: &str) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_umbra"));
    command
        .current_dir(dir)
        .env_remove("UMBRA_ENV")
        .env_remove("RUST_LOG")
        .env("UMBRA_CONFIG_DIR", dir.join("config"))
        .env("UMBRA__METRICS__PORT", "0")
        .env("UMBRA__ADMIN__PORT", "0")
        // Cheap hashes, as the other tests use: a debug build on a busy machine verifies the
        // default ones in about a second.
        .env("UMBRA__PASSWORDS__ARGON2_MEMORY_KIB", "1024")
        .env("UMBRA__PASSWORDS__ARGON2_ITERATIONS", "1")
        .env("DATABASE_URL", database_url);
    command
}

/// HAProxy in front of the instances. Each setting is explained in `deploy/haproxy.cfg`; the
/// checks here are faster so that the test is short.
fn start_haproxy(dir: &Path, port: u16, instances: &[Instance]) -> Running {
    let servers = instances
        .iter()
        .enumerate()
        .map(|(i, instance)| format!("    server umbra{i} 127.0.0.1:{} check\n", instance.port))
        .collect::<String>();
    let config = format!(
        "global\n    maxconn 2000\n\n\
         defaults\n    mode http\n    timeout connect 1s\n    timeout client 30s\n    \
         timeout server 30s\n    retries 3\n    option redispatch 1\n    \
         retry-on conn-failure empty-response\n\n\
         frontend umbra\n    bind 127.0.0.1:{port}\n    option forwardfor\n    \
         default_backend umbra\n\n\
         backend umbra\n    balance roundrobin\n    option httpchk GET /health/ready\n    \
         http-check expect status 200\n    default-server inter 200ms fall 2 rise 2\n{servers}"
    );
    let path = dir.join("haproxy.cfg");
    std::fs::write(&path, config).unwrap();
    let checked = Command::new("haproxy")
        .args(["-c", "-q", "-f"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(checked.status.success(), "haproxy -c: {checked:?}");
    let mut command = Command::new("haproxy");
    command.args(["-db", "-f"]).arg(&path);
    listening(command, &dir.join("haproxy.log"), port, "HAProxy")
}

/// Starts `command` with its output in `log` and waits (up to 10 s) until it accepts
/// connections on `port`.
fn listening(mut command: Command, log: &Path, port: u16, what: &str) -> Running {
    let log = std::fs::File::create(log).unwrap();
    let process = command
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "{what} did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    Running(process)
}

/// PgBouncer (Debian's 1.18) in session pooling mode in front of the database's server, with
/// room for every instance's pool (`POOLED_CONNECTIONS` each); returns it and the URL the
/// servers use through it.
///
/// Not transaction pooling: SeaORM 2 runs every statement as a named prepared statement of
/// sqlx 0.9 (`sqlx_s_1`, `sqlx_s_2`… per client connection; with `statement-cache-capacity=0`
/// they are still named, only never closed), and PgBouncer 1.18 passes them to whichever server
/// connection runs the next transaction: the instances fail at once with `prepared statement
/// "sqlx_s_1" already exists`. PgBouncer 1.21+ (`max_prepared_statements`) tracks them.
fn start_pgbouncer(dir: &Path, database: &url::Url) -> (Running, String) {
    let port = free_port();
    let user = database.username();
    let config = format!(
        "[databases]\n* = host={} port={}\n\n\
         [pgbouncer]\nlisten_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n\
         auth_type = trust\nauth_file = {}\npool_mode = session\n\
         max_client_conn = 500\ndefault_pool_size = {}\n\
         ignore_startup_parameters = extra_float_digits\n",
        database.host_str().unwrap(),
        database.port().unwrap_or(5432),
        dir.join("userlist.txt").display(),
        INSTANCES * POOLED_CONNECTIONS,
    );
    std::fs::write(dir.join("userlist.txt"), format!("\"{user}\" \"\"\n")).unwrap();
    let path = dir.join("pgbouncer.ini");
    std::fs::write(&path, config).unwrap();
    let mut command = Command::new("pgbouncer");
    // It refuses to run as root (CI containers run as root): it then drops to `nobody`.
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| out.stdout.trim_ascii() == b"0");
    if root {
        command.args(["-u", "nobody"]);
    }
    command.arg(&path);
    let process = listening(command, &dir.join("pgbouncer.log"), port, "PgBouncer");
    let mut url = database.clone();
    url.set_port(Some(port)).unwrap();
    (process, url.to_string())
}

/// A plain HTTP/1.1 GET with the raw answer (status line first), empty when nothing listens.
fn get(port: u16, path: &str) -> String {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return String::new();
    };
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok();
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    if stream.write_all(request.as_bytes()).is_err() {
        return String::new();
    }
    let mut answer = String::new();
    stream.read_to_string(&mut answer).ok();
    answer
}

/// A client's id and secret as `umbra client create --json` printed them.
#[derive(Clone)]
struct Credentials {
    id: String,
    secret: String,
}

impl Credentials {
    fn of(created: &Value) -> Self {
        Self {
            id: created["client_id"].as_str().unwrap().to_owned(),
            secret: created["client_secret"].as_str().unwrap().to_owned(),
        }
    }
}

fn http() -> reqwest::Client {
    umbra::sender::install_crypto_provider();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap()
}

/// A browser: its own cookies, redirects not followed.
fn browser() -> reqwest::Client {
    umbra::sender::install_crypto_provider();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .cookie_store(true)
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap()
}

/// POSTs `form` to `url` as `client` (HTTP Basic); the status and the JSON body.
async fn post(
    http: &reqwest::Client,
    url: &str,
    client: &Credentials,
    form: &[(&str, &str)],
) -> Result<(StatusCode, Value), reqwest::Error> {
    let response = http
        .post(url)
        .basic_auth(&client.id, Some(&client.secret))
        .form(form)
        .send()
        .await?;
    let status = response.status();
    let body = response.json().await.unwrap_or(Value::Null);
    Ok((status, body))
}

async fn issue(http: &reqwest::Client, url: &str, client: &Credentials) -> (StatusCode, Value) {
    post(http, url, client, &[("grant_type", "client_credentials")])
        .await
        .unwrap()
}

async fn active(http: &reqwest::Client, url: &str, caller: &Credentials, token: &str) -> bool {
    let (status, body) = post(http, url, caller, &[("token", token)]).await.unwrap();
    assert_eq!(status, StatusCode::OK, "{body}");
    body["active"].as_bool().unwrap()
}

fn hidden_field(html: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker)? + marker.len();
    let end = html[start..].find('"')?;
    Some(html[start..start + end].to_owned())
}

fn location(response: &reqwest::Response) -> String {
    response
        .headers()
        .get("location")
        .map(|l| l.to_str().unwrap().to_owned())
        .unwrap_or_default()
}

/// Submits the sign-in form at `base` in `browser`; the response.
async fn sign_in(
    browser: &reqwest::Client,
    base: &str,
    username: &str,
    password: &str,
) -> reqwest::Response {
    let page = browser
        .get(format!("{base}/login"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = hidden_field(&page, "csrf_token").expect("a sign-in form");
    browser
        .post(format!("{base}/login"))
        .form(&[
            ("csrf_token", csrf.as_str()),
            ("username", username),
            ("password", password),
        ])
        .send()
        .await
        .unwrap()
}

/// The PKCE pair of a fixed verifier (RFC 7636 appendix B).
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

/// An authorization code for `app` through the balancer: every step may land on another
/// instance, which only works if they share the session key and the database.
async fn authorization_code(
    fleet: &Fleet,
    browser: &reqwest::Client,
    app: &Credentials,
    signed_in: &mut bool,
) -> String {
    let authorize = fleet.url(&format!(
        "/authorize?response_type=code&client_id={}&redirect_uri={REDIRECT_URI}&scope=read\
         &state=s&code_challenge={CHALLENGE}&code_challenge_method=S256",
        app.id
    ));
    let mut response = browser.get(&authorize).send().await.unwrap();
    if !*signed_in {
        assert_eq!(location(&response), "/login");
        response = sign_in(browser, &fleet.base, "alice", "correct horse battery").await;
        *signed_in = true;
    }
    let to = location(&response);
    assert!(to.starts_with(REDIRECT_URI), "redirected to {to:?}");
    url::Url::parse(&to)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .expect("a code")
}

async fn exchange(
    http: &reqwest::Client,
    url: &str,
    app: &Credentials,
    code: &str,
) -> (StatusCode, Value) {
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", REDIRECT_URI),
        ("code_verifier", VERIFIER),
    ];
    post(http, url, app, &form).await.unwrap()
}

async fn refresh(
    http: &reqwest::Client,
    url: &str,
    app: &Credentials,
    token: &str,
) -> (StatusCode, Value) {
    let form = [("grant_type", "refresh_token"), ("refresh_token", token)];
    post(http, url, app, &form).await.unwrap()
}

fn run<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .unwrap()
        .block_on(future)
}

#[test]
fn three_instances_behind_haproxy_keep_single_use_reuse_detection_and_revocation() {
    if !fleet_enabled() {
        return;
    }
    let _one_fleet = one_fleet_at_a_time();
    let fleet = Fleet::start(Pooling::Direct, &[]);
    fleet.create_user("alice", "correct horse battery");
    let app = fleet.web_app();
    let api = fleet.introspector();
    let service = fleet.service_client();
    run(async {
        let http = http();

        // (a) Each code redeemed at every instance at once: exactly one wins, and the
        // replay revokes what the winner got.
        let browser = browser();
        let mut signed_in = false;
        let rounds = 10;
        for _ in 0..rounds {
            let code = authorization_code(&fleet, &browser, &app, &mut signed_in).await;
            let attempts = (0..INSTANCES).map(|i| {
                let (http, url, app, code) = (&http, fleet.at(i, "/token"), &app, &code);
                async move { exchange(http, &url, app, code).await }
            });
            let answers = futures_util::future::join_all(attempts).await;
            let winners = answers
                .iter()
                .filter(|(status, _)| *status == StatusCode::OK)
                .collect::<Vec<_>>();
            assert_eq!(winners.len(), 1, "{answers:?}");
            for (status, body) in answers.iter().filter(|(s, _)| *s != StatusCode::OK) {
                assert_eq!(*status, StatusCode::BAD_REQUEST, "{body}");
                assert_eq!(body["error"], "invalid_grant");
            }
            let token = winners[0].1["access_token"].as_str().unwrap();
            for i in 0..INSTANCES {
                assert!(
                    !active(&http, &fleet.at(i, "/introspect"), &api, token).await,
                    "the replayed code's token is inactive at instance {i}"
                );
            }
        }
        println!(
            "fleet (a) code replay: {rounds} codes x {INSTANCES} instances at once = {} \
             redemptions, {rounds} won, every winner's token revoked",
            rounds * INSTANCES
        );

        // (b) A refresh token rotated at one instance, its successor used at another, then
        // the first reused at a third: reuse (not a retry, since a successor was used), and
        // the grant is revoked everywhere.
        let code = authorization_code(&fleet, &browser, &app, &mut signed_in).await;
        let (status, first) = exchange(&http, &fleet.at(0, "/token"), &app, &code).await;
        assert_eq!(status, StatusCode::OK, "{first}");
        let old = first["refresh_token"].as_str().unwrap();
        let (status, second) = refresh(&http, &fleet.at(0, "/token"), &app, old).await;
        assert_eq!(status, StatusCode::OK, "{second}");
        let successor = second["refresh_token"].as_str().unwrap();
        let (status, third) = refresh(&http, &fleet.at(1, "/token"), &app, successor).await;
        assert_eq!(status, StatusCode::OK, "{third}");
        let (status, reuse) = refresh(&http, &fleet.at(2, "/token"), &app, old).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{reuse}");
        let latest = third["refresh_token"].as_str().unwrap();
        let (status, after) = refresh(&http, &fleet.at(0, "/token"), &app, latest).await;
        assert_eq!(
            status,
            StatusCode::BAD_REQUEST,
            "the latest token dies with the grant: {after}"
        );
        let access = third["access_token"].as_str().unwrap();
        for i in 0..INSTANCES {
            assert!(!active(&http, &fleet.at(i, "/introspect"), &api, access).await);
        }
        println!(
            "fleet (b) refresh reuse: rotated at 0, successor used at 1, first reused at 2: \
             grant revoked, inactive at 0, 1, 2"
        );

        // (c) Revoked at one instance, inactive at the others on the very next request.
        let tokens = 20;
        for n in 0..tokens {
            let (status, issued) = issue(&http, &fleet.at(n % INSTANCES, "/token"), &service).await;
            assert_eq!(status, StatusCode::OK, "{issued}");
            let token = issued["access_token"].as_str().unwrap();
            for i in 0..INSTANCES {
                assert!(active(&http, &fleet.at(i, "/introspect"), &api, token).await);
            }
            let (status, _) = post(
                &http,
                &fleet.at(n % INSTANCES, "/revoke"),
                &service,
                &[("token", token)],
            )
            .await
            .unwrap();
            assert_eq!(status, StatusCode::OK);
            for i in 0..INSTANCES {
                assert!(
                    !active(&http, &fleet.at(i, "/introspect"), &api, token).await,
                    "token {n} revoked at {} is inactive at {i}",
                    n % INSTANCES
                );
            }
        }
        println!(
            "fleet (c) revocation: {tokens} tokens, each introspected active at {INSTANCES} \
             instances, revoked at one, inactive at all {INSTANCES} on the next request"
        );
    });
}

/// (d) The old secret at each instance 1 s after `umbra client rotate-secret`, and the new
/// one: the instances that still took the old one or refused the new one.
async fn secret_rotation(fleet: &Fleet, http: &reqwest::Client) -> (Vec<usize>, Vec<usize>) {
    let service = fleet.service_client();
    // Every instance caches the client first.
    for i in 0..INSTANCES {
        let (status, _) = issue(http, &fleet.at(i, "/token"), &service).await;
        assert_eq!(status, StatusCode::OK);
    }
    let rotated = fleet.cli(&["client", "rotate-secret", &service.id]);
    let new = Credentials {
        id: service.id.clone(),
        secret: rotated["client_secret"].as_str().unwrap().to_owned(),
    };
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (mut old_accepted, mut new_refused) = (Vec::new(), Vec::new());
    for i in 0..INSTANCES {
        let (status, _) = issue(http, &fleet.at(i, "/token"), &service).await;
        if status != StatusCode::UNAUTHORIZED {
            old_accepted.push(i);
        }
        let (status, _) = issue(http, &fleet.at(i, "/token"), &new).await;
        if status != StatusCode::OK {
            new_refused.push(i);
        }
    }
    println!(
        "fleet (d) secret rotation: 1 s after it, the old secret was accepted by instances \
         {old_accepted:?} and the new one refused by {new_refused:?} (of {INSTANCES})"
    );
    (old_accepted, new_refused)
}

/// (e) `attempts` wrong passwords for one account at once, spread over the instances: how
/// many were checked (422) rather than refused over the limit (429).
async fn wrong_passwords(fleet: &Fleet, attempts: usize) -> usize {
    fleet.create_user("bob", "correct horse battery");
    let tries = (0..attempts).map(|n| {
        let base = fleet.at(n % INSTANCES, "");
        async move {
            let browser = browser();
            sign_in(&browser, &base, "bob", "wrong password")
                .await
                .status()
        }
    });
    let statuses = futures_util::future::join_all(tries).await;
    let count = |status| statuses.iter().filter(|s| **s == status).count();
    let (checked, limited) = (
        count(StatusCode::UNPROCESSABLE_ENTITY),
        count(StatusCode::TOO_MANY_REQUESTS),
    );
    println!(
        "fleet (e) sign-in limit: {attempts} wrong passwords at once over {INSTANCES} \
         instances: {checked} checked (limit {SIGN_IN_LIMIT} per account), {limited} answered 429"
    );
    assert_eq!(checked + limited, attempts, "{statuses:?}");
    checked
}

/// Failed sign-ins allowed per account in the shared-state fleet.
const SIGN_IN_LIMIT: usize = 5;

#[test]
fn limits_secrets_and_cleanup_are_shared_by_the_instances() {
    if !fleet_enabled() {
        return;
    }
    let _one_fleet = one_fleet_at_a_time();
    let limit = SIGN_IN_LIMIT.to_string();
    let fleet = Fleet::start(
        Pooling::Direct,
        &[
            ("UMBRA__LOGIN__MAX_ATTEMPTS_PER_ACCOUNT", limit.as_str()),
            ("UMBRA__LOGIN__MAX_ATTEMPTS_PER_ADDRESS", "1000"),
            // All at once, the tries would otherwise queue for the two cores' verifications
            // and some get 503 (busy) instead of an answer about the limit.
            ("UMBRA__PASSWORDS__MAX_CONCURRENT_VERIFICATIONS", "32"),
            ("UMBRA__CLEANUP__INTERVAL_SECS", "1"),
        ],
    );
    let started = Instant::now();
    let (old_accepted, new_refused, checked) = run(async {
        let http = http();
        let (old_accepted, new_refused) = secret_rotation(&fleet, &http).await;
        let checked = wrong_passwords(&fleet, 24).await;
        (old_accepted, new_refused, checked)
    });
    // (f) With a cleanup interval of 1 s, after a few intervals exactly one instance has
    // cleaned.
    std::thread::sleep(Duration::from_secs(5).saturating_sub(started.elapsed()));
    let passes = fleet.cleanup_passes();
    println!(
        "fleet (f) cleanup: umbra_cleanup_passes_total per instance after {:.0} s at an \
         interval of 1 s: {passes:?}",
        started.elapsed().as_secs_f64()
    );

    assert!(old_accepted.is_empty() && new_refused.is_empty());
    assert!(
        checked <= SIGN_IN_LIMIT,
        "{checked} tries checked, the limit is {SIGN_IN_LIMIT}"
    );
    assert_eq!(
        passes.iter().filter(|n| **n > 0.0).count(),
        1,
        "exactly one instance cleans: {passes:?}"
    );
}

/// Issues and introspects tokens through the balancer from `workers` tasks until `stop`;
/// counts requests and failures (any answer but the expected one, or no answer).
struct Load {
    sent: Arc<AtomicUsize>,
    failed: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Load {
    fn start(fleet: &Fleet, workers: usize, service: &Credentials, api: &Credentials) -> Self {
        let sent = Arc::new(AtomicUsize::new(0));
        let failed = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let tasks = (0..workers)
            .map(|_| {
                let (sent, failed, stop) = (sent.clone(), failed.clone(), stop.clone());
                let (service, api) = (service.clone(), api.clone());
                let (token_url, introspect_url) = (fleet.url("/token"), fleet.url("/introspect"));
                tokio::spawn(async move {
                    let http = http();
                    while !stop.load(Ordering::Relaxed) {
                        let issued = post(
                            &http,
                            &token_url,
                            &service,
                            &[("grant_type", "client_credentials")],
                        )
                        .await;
                        sent.fetch_add(1, Ordering::Relaxed);
                        let token = match issued {
                            Ok((StatusCode::OK, body)) => body["access_token"].to_string(),
                            other => {
                                eprintln!("issuance failed: {other:?}");
                                failed.fetch_add(1, Ordering::Relaxed);
                                continue;
                            }
                        };
                        let token = token.trim_matches('"');
                        let answer = post(&http, &introspect_url, &api, &[("token", token)]).await;
                        sent.fetch_add(1, Ordering::Relaxed);
                        match answer {
                            Ok((StatusCode::OK, body)) if body["active"] == true => {}
                            other => {
                                eprintln!("introspection failed: {other:?}");
                                failed.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                    }
                })
            })
            .collect();
        Self {
            sent,
            failed,
            stop,
            tasks,
        }
    }

    /// Stops the load; (requests sent, failures).
    async fn finish(self) -> (usize, usize) {
        self.stop.store(true, Ordering::Relaxed);
        for task in self.tasks {
            task.await.unwrap();
        }
        (
            self.sent.load(Ordering::Relaxed),
            self.failed.load(Ordering::Relaxed),
        )
    }
}

#[test]
fn a_rolling_restart_under_load_fails_no_request() {
    if !fleet_enabled() {
        return;
    }
    let _one_fleet = one_fleet_at_a_time();
    let fleet = Arc::new(std::sync::Mutex::new(Fleet::start(Pooling::Direct, &[])));
    let (service, api) = {
        let fleet = fleet.lock().unwrap();
        (fleet.service_client(), fleet.introspector())
    };
    run(async {
        let load = Load::start(&fleet.lock().unwrap(), 8, &service, &api);
        let started = Instant::now();
        let restarter = fleet.clone();
        tokio::task::spawn_blocking(move || {
            std::thread::sleep(Duration::from_secs(1));
            let mut fleet = restarter.lock().unwrap();
            for i in 0..INSTANCES {
                fleet.stop(i);
                fleet.spawn(i);
                fleet.wait_ready(i);
                fleet.wait_in_rotation();
            }
        })
        .await
        .unwrap();
        tokio::time::sleep(Duration::from_secs(1)).await;
        let (sent, failed) = load.finish().await;
        println!(
            "fleet (g) rolling restart: {INSTANCES} instances restarted one at a time (SIGTERM, \
             {DRAIN_SECS} s drain) in {:.1} s under 8 concurrent clients: {sent} requests \
             through HAProxy, {failed} failed",
            started.elapsed().as_secs_f64()
        );
        assert_eq!(failed, 0);
    });
}

#[test]
fn three_instances_work_through_pgbouncer_in_session_pooling() {
    if !fleet_enabled() {
        return;
    }
    let _one_fleet = one_fleet_at_a_time();
    let pool = POOLED_CONNECTIONS.to_string();
    let fleet = Fleet::start(
        Pooling::PgBouncer,
        &[("UMBRA__DATABASE__MAX_CONNECTIONS", pool.as_str())],
    );
    fleet.create_user("alice", "correct horse battery");
    let app = fleet.web_app();
    let api = fleet.introspector();
    let service = fleet.service_client();
    run(async {
        let load = Load::start(&fleet, 16, &service, &api);
        let http = http();
        let browser = browser();
        let mut signed_in = false;
        let codes = 10;
        for _ in 0..codes {
            let code = authorization_code(&fleet, &browser, &app, &mut signed_in).await;
            let (status, body) = exchange(&http, &fleet.url("/token"), &app, &code).await;
            assert_eq!(status, StatusCode::OK, "{body}");
            let refresh_token = body["refresh_token"].as_str().unwrap();
            let (status, body) = refresh(&http, &fleet.url("/token"), &app, refresh_token).await;
            assert_eq!(status, StatusCode::OK, "{body}");
        }
        tokio::time::sleep(Duration::from_secs(3)).await;
        let (sent, failed) = load.finish().await;
        println!(
            "fleet (h) PgBouncer 1.18, session pooling, {} server connections: {codes} code \
             flows with refresh, and {sent} issuances/introspections from 16 clients through \
             HAProxy, {failed} failed",
            INSTANCES * POOLED_CONNECTIONS
        );
        assert_eq!(failed, 0);
    });
}

#[test]
fn the_compose_haproxy_configuration_is_valid() {
    if !fleet_enabled() {
        return;
    }
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/haproxy.cfg");
    let checked = Command::new("haproxy")
        .args(["-c", "-f"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(checked.status.success(), "{checked:?}");
}
