//! The `umbra` binary as an operator runs it: commands, JSON output, one-line errors.
use std::io::{BufRead, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

mod common;
use common::{PostgresDatabase, free_port, test_database_server};

/// Runs one SQL statement on the database at `url`.
fn execute(url: &str, statement: &str) {
    common::execute(&url::Url::parse(url).unwrap(), statement);
}

/// A scratch directory used as the working directory, removed afterwards; its database is the
/// default SQLite file in it, or a fresh Postgres database dropped afterwards.
struct Scratch {
    dir: PathBuf,
    postgres: Option<PostgresDatabase>,
}

impl Scratch {
    fn new() -> Self {
        let dir = std::env::temp_dir().join(format!("umbra-cli-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        Self {
            dir,
            postgres: None,
        }
    }

    /// A scratch for each database the tests run on: SQLite, and Postgres when
    /// `TEST_DATABASE_URL` names a server.
    fn on_each_database() -> Vec<Self> {
        let mut scratches = vec![Self::new()];
        if let Some(postgres) = PostgresDatabase::create() {
            let mut scratch = Self::new();
            scratch.postgres = Some(postgres);
            scratches.push(scratch);
        }
        scratches
    }

    fn umbra(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_umbra"));
        command
            .args(args)
            .current_dir(&self.dir)
            .env_remove("DATABASE_URL")
            .env_remove("UMBRA_ENV")
            .env_remove("RUST_LOG")
            .env("UMBRA_CONFIG_DIR", self.dir.join("config"))
            // Tests run in parallel: let each server pick free metrics and admin ports.
            .env("UMBRA__METRICS__PORT", "0")
            .env("UMBRA__ADMIN__PORT", "0");
        if let Some(postgres) = &self.postgres {
            command.env("DATABASE_URL", postgres.url.as_str());
        }
        command
    }

    fn run(&self, args: &[&str]) -> Output {
        self.umbra(args).output().unwrap()
    }

    fn path(&self) -> &Path {
        &self.dir
    }

    /// The URL of this scratch's database: the Postgres one, or the default SQLite file.
    fn database_url(&self) -> String {
        match &self.postgres {
            Some(postgres) => postgres.url.to_string(),
            None => format!(
                "sqlite://{}?mode=rw",
                self.dir.join("data/umbra.db").display()
            ),
        }
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        std::fs::remove_dir_all(&self.dir).ok();
    }
}

fn json(output: &Output) -> serde_json::Value {
    assert!(
        output.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

/// Asserts a failure printed exactly one line, without a panic or a backtrace.
fn assert_one_line_error(output: &Output, mentions: &str) {
    assert!(!output.status.success());
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.trim_end().lines().count(), 1, "stderr: {stderr}");
    assert!(stderr.starts_with("umbra: error: "), "stderr: {stderr}");
    assert!(stderr.contains(mentions), "stderr: {stderr}");
    assert!(!stderr.contains("panicked"), "stderr: {stderr}");
}

#[test]
fn client_commands_create_list_show_rotate_and_delete_on_a_fresh_sqlite_file() {
    let scratch = Scratch::new();

    let created = json(&scratch.run(&[
        "client",
        "create",
        "Billing",
        "--scope",
        "read write",
        "--scope",
        "admin",
        "--json",
    ]));
    let id = created["client_id"].as_str().unwrap().to_owned();
    let secret = created["client_secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("cs_") && secret.len() == 52);
    assert_eq!(created["scopes"], "read write admin");
    assert_eq!(
        created["grant_types"],
        serde_json::json!(["client_credentials"])
    );
    assert!(
        scratch.path().join("data/umbra.db").exists(),
        "the default SQLite file is created"
    );

    let listed = json(&scratch.run(&["client", "list", "--json"]));
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert!(
        listed[0].get("client_secret").is_none(),
        "the secret is shown only once"
    );

    let shown = json(&scratch.run(&["client", "show", &id, "--json"]));
    assert_eq!(shown["name"], "Billing");

    let rotated = json(&scratch.run(&["client", "rotate-secret", &id, "--json"]));
    assert_ne!(rotated["client_secret"], secret.as_str());

    let deleted = json(&scratch.run(&["client", "delete", &id, "--json"]));
    assert_eq!(deleted["deleted"], id.as_str());
    assert_one_line_error(&scratch.run(&["client", "show", &id]), "no client");
}

#[test]
fn a_duplicate_client_id_is_a_one_line_error() {
    let scratch = Scratch::new();
    assert!(
        scratch
            .run(&["client", "create", "A", "--id", "svc-a"])
            .status
            .success()
    );

    assert_one_line_error(
        &scratch.run(&["client", "create", "B", "--id", "svc-a"]),
        "already exists",
    );
}

#[test]
fn invalid_registrations_are_refused() {
    let scratch = Scratch::new();
    for (args, mentions) in [
        (
            &["client", "create", "X", "--public"][..],
            "client_credentials",
        ),
        (
            &[
                "client",
                "create",
                "X",
                "--grant-type",
                "authorization_code",
            ],
            "redirect-uri",
        ),
        (
            &["client", "create", "X", "--redirect-uri", "/relative"],
            "absolute",
        ),
        (
            &[
                "client",
                "create",
                "X",
                "--public",
                "--introspect",
                "--redirect-uri",
                "https://a/cb",
            ],
            "introspect",
        ),
        (&["client", "create", "X", "--id", "bad id"], "client id"),
        (&["client", "create", "X", "--scope", "a\"b"], "scope"),
    ] {
        assert_one_line_error(&scratch.run(args), mentions);
    }
}

#[test]
fn a_bad_configuration_is_one_line_and_a_non_zero_exit() {
    let scratch = Scratch::new();

    let output = scratch
        .umbra(&["migrate"])
        .env("UMBRA__SERVER__PORT", "not-a-port")
        .output()
        .unwrap();
    assert_one_line_error(&output, "configuration");

    let output = scratch
        .umbra(&["migrate"])
        .env("UMBRA__SERVER__NO_SUCH_KEY", "1")
        .output()
        .unwrap();
    assert_one_line_error(&output, "no_such_key");

    let output = scratch
        .umbra(&["migrate"])
        .env("UMBRA_ENV", "staging")
        .output()
        .unwrap();
    assert_one_line_error(&output, "UMBRA_ENV");
}

#[test]
fn an_unreachable_database_is_one_line_and_a_non_zero_exit() {
    let scratch = Scratch::new();

    let output = scratch
        .umbra(&["serve"])
        .env("DATABASE_URL", "postgres://umbra@127.0.0.1:1/umbra")
        .env("UMBRA__DATABASE__ACQUIRE_TIMEOUT_SECS", "1")
        .output()
        .unwrap();

    assert_one_line_error(&output, "cannot reach the database server at 127.0.0.1:1");
}

/// Starts `umbra` (serve) on a free port and waits until it accepts connections.
fn start_server(scratch: &Scratch) -> (std::process::Child, u16) {
    start_serving(scratch.umbra(&[]))
}

/// Starts `command` (an `umbra serve`) on a free port and waits until it answers ready.
fn start_serving(mut command: Command) -> (std::process::Child, u16) {
    let port = free_port();
    let server = command
        .env("UMBRA__SERVER__PORT", port.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !ready(port) {
        assert!(Instant::now() < deadline, "the server did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    (server, port)
}

fn ready(port: u16) -> bool {
    TcpStream::connect(("127.0.0.1", port)).is_ok()
        && get(port, "/health/ready").starts_with("HTTP/1.1 200")
}

fn get(port: u16, path: &str) -> String {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).ok();
    answer
}

#[test]
fn serve_with_no_setup_answers_ready_on_the_embedded_sqlite_default() {
    let scratch = Scratch::new();
    let (mut server, port) = start_server(&scratch);

    let answer = get(port, "/health/ready");
    server.kill().ok();
    server.wait().ok();

    assert!(answer.starts_with("HTTP/1.1 200"), "answer: {answer}");
    assert!(scratch.path().join("data/umbra.db").exists());
}

#[test]
fn sigterm_stops_accepting_finishes_the_request_in_flight_and_exits_zero() {
    let scratch = Scratch::new();
    let (mut server, port) = start_server(&scratch);
    let body = "grant_type=client_credentials&client_id=nobody&client_secret=x";
    let mut in_flight = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        in_flight,
        "POST /token HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{}",
        body.len(),
        &body[..10]
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(300));

    let killed = Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    std::thread::sleep(Duration::from_millis(500));
    let refused = TcpStream::connect(("127.0.0.1", port)).is_err();
    in_flight.write_all(&body.as_bytes()[10..]).unwrap();
    let mut answer = String::new();
    in_flight.read_to_string(&mut answer).unwrap();

    assert!(
        answer.starts_with("HTTP/1.1 401"),
        "the request in flight is answered: {answer}"
    );
    assert!(refused, "no new connection is accepted after SIGTERM");
    let deadline = Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(status) = server.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "the server did not exit");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(status.code(), Some(0));
}

#[test]
fn sigterm_with_a_drain_answers_not_ready_keeps_serving_then_exits_zero() {
    let scratch = Scratch::new();
    let port = free_port();
    let mut server = scratch
        .umbra(&[])
        .env("UMBRA__SERVER__PORT", port.to_string())
        .env("UMBRA__SERVER__SHUTDOWN_DRAIN_SECS", "2")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !ready(port) {
        assert!(Instant::now() < deadline, "the server did not start");
        std::thread::sleep(Duration::from_millis(100));
    }

    let signalled = Instant::now();
    let killed = Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    std::thread::sleep(Duration::from_millis(300));
    let readiness = get(port, "/health/ready");
    let liveness = get(port, "/health/live");
    let metadata = get(port, "/.well-known/oauth-authorization-server");
    let status = loop {
        if let Some(status) = server.try_wait().unwrap() {
            break status;
        }
        assert!(
            signalled.elapsed() < Duration::from_secs(20),
            "the server did not exit"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let drained_for = signalled.elapsed();

    assert!(readiness.starts_with("HTTP/1.1 503"), "{readiness}");
    assert!(readiness.contains("draining"), "{readiness}");
    assert!(liveness.starts_with("HTTP/1.1 200"), "{liveness}");
    assert!(
        metadata.starts_with("HTTP/1.1 200"),
        "requests are still served while draining: {metadata}"
    );
    assert!(drained_for >= Duration::from_secs(2), "{drained_for:?}");
    assert_eq!(status.code(), Some(0));
    assert!(
        TcpStream::connect(("127.0.0.1", port)).is_err(),
        "nothing listens afterwards"
    );
}

/// Runs `umbra` with `stdin` as standard input.
fn run_with_stdin(scratch: &Scratch, args: &[&str], stdin: &str) -> Output {
    let mut child = scratch
        .umbra(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn user_commands_manage_people_with_passwords_from_stdin_only() {
    let scratch = Scratch::new();

    let created = json(&run_with_stdin(
        &scratch,
        &["user", "create", "Ada", "--password-stdin", "--json"],
        "correct horse battery\n",
    ));
    assert_eq!(created["username"], "Ada");
    assert!(created.get("password").is_none() && created.get("password_hash").is_none());

    let duplicate = run_with_stdin(
        &scratch,
        &["user", "create", "ADA", "--password-stdin"],
        "another password\n",
    );
    assert_one_line_error(&duplicate, "taken");
    let short = run_with_stdin(
        &scratch,
        &["user", "create", "bob", "--password-stdin"],
        "short\n",
    );
    assert_one_line_error(&short, "at least 8");

    let disabled = json(&scratch.run(&["user", "disable", "ada", "--json"]));
    assert_eq!(disabled["disabled"], true);
    let shown = json(&scratch.run(&["user", "show", "ADA", "--json"]));
    assert_eq!(shown["disabled"], true);
    json(&scratch.run(&["user", "enable", "ada", "--json"]));
    let changed = json(&run_with_stdin(
        &scratch,
        &["user", "set-password", "ada", "--password-stdin", "--json"],
        "a brand new password\n",
    ));
    assert_eq!(changed["password_changed"], true);
    let listed = json(&scratch.run(&["user", "list", "--json"]));
    assert_eq!(listed.as_array().unwrap().len(), 1);
    json(&scratch.run(&["user", "delete", "ada", "--json"]));
    assert_one_line_error(&scratch.run(&["user", "show", "ada"]), "no user");
}

#[test]
fn a_password_is_never_accepted_as_an_argument() {
    let scratch = Scratch::new();

    let output = scratch.run(&["user", "create", "ada", "--password", "hunter22"]);

    assert_eq!(
        output.status.code(),
        Some(2),
        "clap refuses the unknown flag"
    );
}

#[test]
fn second_factor_commands_enroll_show_reset_and_are_audited() {
    let scratch = Scratch::new();
    json(&run_with_stdin(
        &scratch,
        &["user", "create", "ada", "--password-stdin", "--json"],
        "correct horse battery\n",
    ));

    let enrolled = json(&scratch.run(&["user", "totp", "enroll", "--username", "ada", "--json"]));
    let secret = enrolled["secret"].as_str().unwrap();
    assert_eq!(secret.len(), 32, "160 bits in base32");
    let uri = enrolled["otpauth_uri"].as_str().unwrap();
    assert!(
        uri.starts_with("otpauth://totp/Umbra:ada?") && uri.contains(secret),
        "{uri}"
    );
    assert_eq!(enrolled["recovery_codes"].as_array().unwrap().len(), 10);
    assert_one_line_error(
        &scratch.run(&["user", "totp", "enroll", "--username", "ada"]),
        "already enabled",
    );

    let status = json(&scratch.run(&["user", "2fa", "status", "--username", "ada", "--json"]));
    assert_eq!(status["factors"][0]["kind"], "totp");
    assert_eq!(status["factors"][0]["confirmed"], true);
    assert_eq!(status["recovery_codes_left"], 10);
    assert_eq!(status["locked_for_secs"], serde_json::Value::Null);

    let reset = json(&scratch.run(&["user", "2fa", "reset", "--username", "ada", "--json"]));
    assert_eq!(reset["factors_removed"], 1);
    let status = json(&scratch.run(&["user", "2fa", "status", "--username", "ada", "--json"]));
    assert_eq!(status["factors"], serde_json::json!([]));
    assert_eq!(status["recovery_codes_left"], 0);
    assert_one_line_error(
        &scratch.run(&["user", "2fa", "status", "--username", "bob"]),
        "no user",
    );

    let events = json(&scratch.run(&["audit", "list", "--user", "ada", "--json"]));
    let names: Vec<&str> = events
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    for expected in ["factor.enabled", "recovery_codes.generated", "factor.reset"] {
        assert!(names.contains(&expected), "{names:?}");
    }
    let text = scratch.run(&["audit", "list"]);
    assert!(String::from_utf8_lossy(&text.stdout).contains("factor.reset\tada"));

    let filtered = |args: &[&str]| -> Vec<String> {
        let mut argv = vec!["audit", "list", "--json"];
        argv.extend_from_slice(args);
        json(&scratch.run(&argv))
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["event"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(filtered(&["--event", "factor.reset"]), ["factor.reset"]);
    let factors = filtered(&["--event", "factor.", "--since", "1h"]);
    assert!(!factors.is_empty() && factors.iter().all(|e| e.starts_with("factor.")));
    assert!(filtered(&["--client", "nobody"]).is_empty());
    let refused = scratch.run(&["audit", "list", "--since", "1w"]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("a duration is"));
}

#[test]
fn production_refuses_a_missing_encryption_key_and_the_log_sender() {
    let scratch = Scratch::new();
    let production = |extra: &[(&str, &str)]| {
        let mut command = scratch.umbra(&["migrate"]);
        command
            .env("UMBRA_ENV", "production")
            .env("UMBRA__SERVER__ISSUER", "https://auth.example")
            .env(
                "UMBRA__SESSION__KEY",
                "c2Vzc2lvbi1rZXktc2Vzc2lvbi1rZXktc2Vzc2lvbi1rZXktc2Vzc2lvbi1rZXktc2Vzc2lvbi1rZXktc2Vzc2lvbi1rZXkt",
            )
            .env(
                "UMBRA__KEYS__ENCRYPTION_KEY",
                "a2V5cy1lbmNyeXB0aW9uLWtleS1vZi0zMi1ieXRlcyE=",
            );
        for (key, value) in extra {
            command.env(key, value);
        }
        command.output().unwrap()
    };
    let key = (
        "UMBRA__SECOND_FACTOR__ENCRYPTION_KEY",
        "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
    );

    assert_one_line_error(&production(&[]), "second_factor.encryption_key");
    assert_one_line_error(&production(&[key]), "sender.kind");
    assert_one_line_error(
        &production(&[
            key,
            ("UMBRA__SENDER__KIND", "webhook"),
            ("UMBRA__SENDER__WEBHOOK_URL", "http://sms.example"),
        ]),
        "https",
    );
    let output = production(&[
        key,
        ("UMBRA__SENDER__KIND", "webhook"),
        ("UMBRA__SENDER__WEBHOOK_URL", "https://sms.example/send"),
    ]);
    assert!(
        output.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    // Signing keys need a key of their own too.
    assert_one_line_error(
        &production(&[
            key,
            ("UMBRA__SENDER__KIND", "webhook"),
            ("UMBRA__SENDER__WEBHOOK_URL", "https://sms.example/send"),
            ("UMBRA__KEYS__ENCRYPTION_KEY", ""),
        ]),
        "keys.encryption_key",
    );
    let short_key = scratch
        .umbra(&["migrate"])
        .env("UMBRA__SECOND_FACTOR__ENCRYPTION_KEY", "c2hvcnQ=")
        .output()
        .unwrap();
    assert_one_line_error(&short_key, "exactly 32 bytes");
}

#[test]
fn logs_written_to_a_pipe_carry_no_colour_escapes() {
    let scratch = Scratch::new();
    let mut server = scratch
        .umbra(&[])
        .env("UMBRA__SERVER__PORT", "0")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();

    // Read up to the line that says the server listens; a server that fails to start closes
    // its output, which ends the loop too.
    let mut log = String::new();
    let mut lines = std::io::BufReader::new(server.stdout.take().unwrap()).lines();
    while let Some(Ok(line)) = lines.next() {
        log.push_str(&line);
        log.push('\n');
        if line.contains("umbra listening") {
            break;
        }
    }
    server.kill().ok();
    server.wait().ok();

    assert!(log.contains("umbra listening"), "log: {log}");
    assert!(!log.contains('\u{1b}'), "no ANSI escapes in a pipe: {log}");
}

#[test]
fn a_taken_metrics_port_names_the_setting_that_moves_it() {
    let scratch = Scratch::new();
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();

    let output = scratch
        .umbra(&["serve"])
        .env("UMBRA__SERVER__PORT", "0")
        .env("UMBRA__METRICS__PORT", port.to_string())
        .output()
        .unwrap();

    assert_one_line_error(&output, &format!("cannot listen on 127.0.0.1:{port}"));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("metrics.port"), "stderr: {stderr}");
    assert!(stderr.contains("UMBRA__METRICS__PORT"), "stderr: {stderr}");
    assert!(stderr.contains("0 picks a free port"), "stderr: {stderr}");
}

#[test]
fn a_missing_postgres_database_is_named_with_the_command_that_creates_it() {
    let Some(mut url) = test_database_server() else {
        assert!(
            std::env::var_os("CI").is_none(),
            "TEST_DATABASE_URL must be set in CI"
        );
        return;
    };
    let scratch = Scratch::new();
    let name = format!("umbra_missing_{}", uuid::Uuid::new_v4().simple());
    url.set_path(&name);

    let output = scratch
        .umbra(&["migrate"])
        .env("DATABASE_URL", url.as_str())
        .output()
        .unwrap();

    assert_one_line_error(
        &output,
        &format!("the database \"{name}\" does not exist on"),
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("createdb"), "stderr: {stderr}");
    assert!(!stderr.contains("database: database"), "stderr: {stderr}");
    assert!(!stderr.contains(" line "), "stderr: {stderr}");
}

#[test]
fn variables_are_checked_by_name_unknown_refused_single_underscores_warned() {
    let scratch = Scratch::new();

    let unknown = scratch
        .umbra(&["migrate"])
        .env("UMBRA__SERVER__PROT", "9000")
        .output()
        .unwrap();
    let misspelt = scratch
        .umbra(&["migrate"])
        .env("UMBRA_SERVER_PORT", "9000")
        .output()
        .unwrap();

    assert_one_line_error(&unknown, "UMBRA__SERVER__PROT");
    assert!(misspelt.status.success());
    let stderr = String::from_utf8_lossy(&misspelt.stderr);
    assert!(
        stderr.contains("UMBRA_SERVER_PORT is ignored") && stderr.contains("UMBRA__SERVER__PORT"),
        "stderr: {stderr}"
    );
}

const ORDERS: &str = "https://orders.example";
const BILLING: &str = "https://billing.example/api";

/// `client create` with the given id and options, checked to succeed.
fn create_client(scratch: &Scratch, id: &str, options: &[&str]) -> serde_json::Value {
    let mut args = vec!["client", "create", id, "--id", id, "--json"];
    args.extend_from_slice(options);
    json(&scratch.run(&args))
}

#[test]
fn resource_commands_create_list_show_update_and_delete() {
    for scratch in Scratch::on_each_database() {
        create_client(&scratch, "orders-api", &[]);
        create_client(&scratch, "orders-api-2", &[]);

        let created = json(&scratch.run(&[
            "resource",
            "create",
            "--identifier",
            ORDERS,
            "--name",
            "Orders",
            "--scope",
            "orders:read orders:write",
            "--introspector",
            "orders-api",
            "--json",
        ]));
        assert_eq!(
            created,
            serde_json::json!({
                "identifier": ORDERS,
                "name": "Orders",
                "scopes": "orders:read orders:write",
                "introspectors": ["orders-api"],
                "clients": [],
            })
        );
        json(&scratch.run(&[
            "resource",
            "create",
            "--identifier",
            "urn:example:billing",
            "--name",
            "Billing",
            "--json",
        ]));

        let listed = json(&scratch.run(&["resource", "list", "--json"]));
        let identifiers: Vec<&str> = listed
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["identifier"].as_str().unwrap())
            .collect();
        assert_eq!(identifiers, [ORDERS, "urn:example:billing"]);
        assert_eq!(
            json(&scratch.run(&["resource", "show", ORDERS, "--json"])),
            created
        );

        let updated = json(&scratch.run(&[
            "resource",
            "update",
            ORDERS,
            "--name",
            "Orders v2",
            "--scope",
            "orders:read",
            "--introspector",
            "orders-api-2",
            "--json",
        ]));
        assert_eq!(updated["name"], "Orders v2");
        assert_eq!(
            updated["scopes"], "orders:read",
            "--scope replaces the list"
        );
        assert_eq!(
            updated["introspectors"],
            serde_json::json!(["orders-api-2"])
        );
        let emptied = json(&scratch.run(&[
            "resource",
            "update",
            ORDERS,
            "--no-scopes",
            "--no-introspectors",
            "--json",
        ]));
        assert_eq!(emptied["name"], "Orders v2", "what is not given stays");
        assert_eq!(emptied["scopes"], "");
        assert_eq!(emptied["introspectors"], serde_json::json!([]));
        let introspector = json(&scratch.run(&["client", "show", "orders-api-2", "--json"]));
        assert_eq!(introspector["introspects_for"], serde_json::json!([]));

        let deleted = json(&scratch.run(&["resource", "delete", ORDERS, "--json"]));
        assert_eq!(deleted, serde_json::json!({"deleted": ORDERS}));
        assert_one_line_error(&scratch.run(&["resource", "show", ORDERS]), "no resource");
        let text = scratch.run(&["resource", "delete", "urn:example:billing"]);
        assert!(text.status.success());
        assert!(
            String::from_utf8_lossy(&text.stdout).contains("every token issued for it is revoked"),
            "the operator learns what happens to the tokens issued for it"
        );
    }
}

#[test]
fn bad_resources_are_refused_in_one_line() {
    let scratch = Scratch::new();
    create_client(&scratch, "orders-api", &[]);
    create_client(
        &scratch,
        "spa",
        &["--public", "--redirect-uri", "https://app.example/cb"],
    );
    json(&scratch.run(&[
        "resource",
        "create",
        "--identifier",
        ORDERS,
        "--name",
        "Orders",
        "--json",
    ]));
    let create = |identifier: &'static str, extra: &[&'static str]| {
        let mut args = vec![
            "resource",
            "create",
            "--identifier",
            identifier,
            "--name",
            "X",
        ];
        args.extend_from_slice(extra);
        scratch.run(&args)
    };

    for (output, mentions) in [
        (create("/orders", &[]), "absolute URI"),
        (create("orders", &[]), "absolute URI"),
        (create("https://x.example/#part", &[]), "fragment"),
        (create(ORDERS, &[]), "already exists"),
        (
            create("https://x.example", &["--introspector", "nobody"]),
            "\"nobody\" is not a registered client",
        ),
        (
            create("https://x.example", &["--introspector", "spa"]),
            "client \"spa\" is public",
        ),
        (create("https://x.example", &["--scope", "a\\b"]), "scope"),
        (
            scratch.run(&["resource", "update", ORDERS, "--introspector", "spa"]),
            "client \"spa\" is public",
        ),
        (
            scratch.run(&["resource", "update", ORDERS]),
            "nothing to change",
        ),
        (
            scratch.run(&["resource", "update", "https://x.example", "--name", "X"]),
            "no resource",
        ),
        (
            scratch.run(&["resource", "delete", "https://x.example"]),
            "no resource",
        ),
        (
            scratch.run(&["resource", "show", "https://x.example"]),
            "no resource",
        ),
    ] {
        assert_one_line_error(&output, mentions);
    }
    let listed = json(&scratch.run(&["resource", "list", "--json"]));
    assert_eq!(
        listed.as_array().unwrap().len(),
        1,
        "nothing was registered"
    );
}

#[test]
fn clients_are_allowed_resources_with_their_scopes_and_a_default() {
    for scratch in Scratch::on_each_database() {
        create_client(&scratch, "orders-api", &[]);
        for (identifier, name, scopes, introspector) in [
            (ORDERS, "Orders", "orders:read orders:write", "orders-api"),
            (
                BILLING,
                "Billing",
                "billing:read billing:write",
                "orders-api",
            ),
        ] {
            json(&scratch.run(&[
                "resource",
                "create",
                "--identifier",
                identifier,
                "--name",
                name,
                "--scope",
                scopes,
                "--introspector",
                introspector,
                "--json",
            ]));
        }

        let gateway = create_client(
            &scratch,
            "gateway",
            &["--resource", ORDERS, "--default-resource", ORDERS],
        );
        assert!(gateway["client_secret"].is_string());
        assert_eq!(
            gateway["resources"],
            serde_json::json!([{"identifier": ORDERS, "scopes": "orders:read orders:write"}])
        );
        assert_eq!(gateway["default_resource"], ORDERS);

        let allowed = json(&scratch.run(&[
            "client",
            "allow-resource",
            "gateway",
            BILLING,
            "--scope",
            "billing:read",
            "--json",
        ]));
        assert_eq!(
            allowed,
            serde_json::json!({
                "client_id": "gateway",
                "resource": BILLING,
                "scopes": "billing:read",
                "every_scope": false,
            })
        );
        let defaulted =
            json(&scratch.run(&["client", "default-resource", "gateway", BILLING, "--json"]));
        assert_eq!(
            defaulted,
            serde_json::json!({"client_id": "gateway", "default_resource": BILLING})
        );
        let shown = json(&scratch.run(&["client", "show", "gateway", "--json"]));
        assert_eq!(
            shown["resources"],
            serde_json::json!([
                {"identifier": BILLING, "scopes": "billing:read"},
                {"identifier": ORDERS, "scopes": "orders:read orders:write"},
            ])
        );
        assert_eq!(shown["default_resource"], BILLING);
        assert_eq!(shown["introspects_for"], serde_json::json!([]));
        let server = json(&scratch.run(&["client", "show", "orders-api", "--json"]));
        assert_eq!(
            server["introspects_for"],
            serde_json::json!([BILLING, ORDERS])
        );
        let listed = json(&scratch.run(&["client", "list", "--json"]));
        let listed = listed
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["client_id"] == "gateway")
            .unwrap();
        assert_eq!(listed["resources"], shown["resources"]);
        assert_eq!(listed["default_resource"], BILLING);
        let text = String::from_utf8(scratch.run(&["client", "show", "gateway"]).stdout).unwrap();
        assert!(
            text.contains(&format!("{BILLING}  billing:read\n"))
                && text.contains(&format!("{ORDERS}  orders:read orders:write\n")),
            "{text}"
        );

        // Without --scope the client follows the resource's scopes as they change.
        json(&scratch.run(&[
            "resource",
            "update",
            ORDERS,
            "--scope",
            "orders:read orders:cancel",
            "--json",
        ]));
        let shown = json(&scratch.run(&["client", "show", "gateway", "--json"]));
        assert_eq!(shown["resources"][1]["scopes"], "orders:read orders:cancel");
        let resource = json(&scratch.run(&["resource", "show", ORDERS, "--json"]));
        assert_eq!(
            resource["clients"],
            serde_json::json!([
                {"client_id": "gateway", "scopes": "orders:read orders:cancel", "every_scope": true},
            ])
        );

        let none =
            json(&scratch.run(&["client", "default-resource", "gateway", "--none", "--json"]));
        assert_eq!(none["default_resource"], serde_json::Value::Null);
        json(&scratch.run(&["client", "default-resource", "gateway", BILLING, "--json"]));
        let denied = json(&scratch.run(&["client", "deny-resource", "gateway", BILLING, "--json"]));
        assert_eq!(
            denied,
            serde_json::json!({"client_id": "gateway", "denied": BILLING, "default_removed": true})
        );
        let shown = json(&scratch.run(&["client", "show", "gateway", "--json"]));
        assert_eq!(
            shown["resources"],
            serde_json::json!([{"identifier": ORDERS, "scopes": "orders:read orders:cancel"}])
        );
        assert_eq!(shown["default_resource"], serde_json::Value::Null);
    }
}

#[test]
fn resource_permissions_refuse_undefined_scopes_unallowed_defaults_and_unknown_names() {
    let scratch = Scratch::new();
    for (identifier, scopes) in [(ORDERS, "orders:read"), (BILLING, "")] {
        json(&scratch.run(&[
            "resource",
            "create",
            "--identifier",
            identifier,
            "--name",
            "API",
            "--scope",
            scopes,
            "--json",
        ]));
    }
    create_client(&scratch, "gateway", &["--resource", ORDERS]);

    for (args, mentions) in [
        (
            &[
                "client",
                "allow-resource",
                "gateway",
                ORDERS,
                "--scope",
                "orders:write",
            ][..],
            "does not define the scope \"orders:write\" (it defines: orders:read)",
        ),
        (
            &[
                "client",
                "allow-resource",
                "gateway",
                BILLING,
                "--scope",
                "x",
            ],
            "(it defines: (none))",
        ),
        (
            &["client", "allow-resource", "nobody", ORDERS],
            "no client with id \"nobody\"",
        ),
        (
            &[
                "client",
                "allow-resource",
                "gateway",
                "https://nope.example",
            ],
            "no resource \"https://nope.example\"",
        ),
        (
            &["client", "default-resource", "gateway", BILLING],
            "not allowed the resource",
        ),
        (
            &[
                "client",
                "default-resource",
                "gateway",
                "https://nope.example",
            ],
            "no resource",
        ),
        (
            &["client", "default-resource", "nobody", "--none"],
            "no client with id",
        ),
        (
            &["client", "deny-resource", "gateway", BILLING],
            "not allowed the resource",
        ),
        (
            &["client", "deny-resource", "gateway", "https://nope.example"],
            "no resource",
        ),
        (
            &[
                "client",
                "create",
                "Late",
                "--id",
                "late",
                "--resource",
                "https://nope.example",
            ],
            "no resource",
        ),
        (
            &[
                "client",
                "create",
                "Late",
                "--id",
                "late",
                "--resource",
                ORDERS,
                "--default-resource",
                BILLING,
            ],
            "--default-resource",
        ),
    ] {
        assert_one_line_error(&scratch.run(args), mentions);
    }
    assert_one_line_error(
        &scratch.run(&["client", "show", "late"]),
        "no client with id",
    );
    let shown = json(&scratch.run(&["client", "show", "gateway", "--json"]));
    assert_eq!(
        shown["resources"],
        serde_json::json!([{"identifier": ORDERS, "scopes": "orders:read"}]),
        "a refused change changes nothing"
    );
    assert_eq!(shown["default_resource"], serde_json::Value::Null);
}

#[test]
fn deleting_a_resource_removes_its_links() {
    for scratch in Scratch::on_each_database() {
        create_client(&scratch, "orders-api", &[]);
        json(&scratch.run(&[
            "resource",
            "create",
            "--identifier",
            ORDERS,
            "--name",
            "Orders",
            "--scope",
            "orders:read",
            "--introspector",
            "orders-api",
            "--json",
        ]));
        create_client(
            &scratch,
            "gateway",
            &["--resource", ORDERS, "--default-resource", ORDERS],
        );

        json(&scratch.run(&["resource", "delete", ORDERS, "--json"]));

        let gateway = json(&scratch.run(&["client", "show", "gateway", "--json"]));
        assert_eq!(gateway["resources"], serde_json::json!([]));
        assert_eq!(gateway["default_resource"], serde_json::Value::Null);
        let server = json(&scratch.run(&["client", "show", "orders-api", "--json"]));
        assert_eq!(server["introspects_for"], serde_json::json!([]));
        // A resource registered again under the same identifier starts with no links.
        let again = json(&scratch.run(&[
            "resource",
            "create",
            "--identifier",
            ORDERS,
            "--name",
            "Orders",
            "--json",
        ]));
        assert_eq!(again["clients"], serde_json::json!([]));
        assert_eq!(again["introspectors"], serde_json::json!([]));
    }
}

#[test]
fn key_commands_list_rotate_and_retire() {
    for scratch in Scratch::on_each_database() {
        let empty = scratch.run(&["keys", "list"]);
        assert!(empty.status.success());
        assert!(String::from_utf8_lossy(&empty.stdout).contains("no signing keys yet"));

        let first = json(&scratch.run(&["keys", "rotate", "--now", "--json"]));
        assert_eq!(first["alg"], "RS256");
        assert_eq!(first["state"], "active");
        let pending = json(&scratch.run(&["keys", "rotate", "--alg", "ES256", "--json"]));
        assert_eq!(pending["alg"], "ES256");
        assert_eq!(pending["state"], "pending", "published before it signs");
        let listed = json(&scratch.run(&["keys", "list", "--json"]));
        assert_eq!(listed.as_array().unwrap().len(), 2);

        let kid = first["kid"].as_str().unwrap();
        assert_one_line_error(
            &scratch.run(&["keys", "retire", kid]),
            "last active RS256 key",
        );
        assert_one_line_error(&scratch.run(&["keys", "retire", "nope"]), "no signing key");
        assert_one_line_error(&scratch.run(&["keys", "rotate", "--alg", "HS256"]), "HS256");

        let second = json(&scratch.run(&["keys", "rotate", "--now", "--json"]));
        let retired = json(&scratch.run(&["keys", "retire", kid, "--json"]));
        assert_eq!(retired["state"], "retired");
        assert!(
            retired["expires_at"].as_i64().is_some(),
            "still published for a while"
        );
        let text = String::from_utf8_lossy(&scratch.run(&["keys", "list"]).stdout).into_owned();
        assert!(text.contains(second["kid"].as_str().unwrap()) && text.contains("retired"));
    }
}

#[test]
fn signed_introspection_is_registered_shown_changed_and_turned_off() {
    for scratch in Scratch::on_each_database() {
        // No ES256 key yet: the registration stands, with a warning that says how to make one.
        let output = scratch.run(&[
            "client",
            "create",
            "Orders API",
            "--id",
            "orders-api",
            "--introspect",
            "--introspection-signed-alg",
            "ES256",
            "--json",
        ]);
        let created = json(&output);
        assert_eq!(created["introspection_signed_response_alg"], "ES256");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains("umbra keys rotate --alg ES256 --now"),
            "{stderr}"
        );
        let listed = json(&scratch.run(&["client", "list", "--json"]));
        assert_eq!(listed[0]["introspection_signed_response_alg"], "ES256");

        assert!(
            scratch
                .run(&["keys", "rotate", "--alg", "EdDSA", "--now"])
                .status
                .success()
        );
        let output = scratch.run(&[
            "client",
            "introspection-signing",
            "orders-api",
            "EdDSA",
            "--json",
        ]);
        assert_eq!(json(&output)["introspection_signed_response_alg"], "EdDSA");
        assert!(output.stderr.is_empty(), "an EdDSA key signs: no warning");
        let shown = json(&scratch.run(&["client", "show", "orders-api", "--json"]));
        assert_eq!(shown["introspection_signed_response_alg"], "EdDSA");
        let text = scratch.run(&["client", "show", "orders-api"]);
        assert!(String::from_utf8_lossy(&text.stdout).contains("EdDSA"));

        let off = json(&scratch.run(&[
            "client",
            "introspection-signing",
            "orders-api",
            "--none",
            "--json",
        ]));
        assert!(off["introspection_signed_response_alg"].is_null());
        let shown = json(&scratch.run(&["client", "show", "orders-api", "--json"]));
        assert!(shown["introspection_signed_response_alg"].is_null());

        // Neither an algorithm Umbra does not sign with nor a client that cannot introspect.
        for args in [
            &[
                "client",
                "create",
                "X",
                "--introspection-signed-alg",
                "HS256",
            ][..],
            &["client", "introspection-signing", "orders-api", "none"],
            &["client", "introspection-signing", "orders-api"],
        ] {
            let output = scratch.run(args);
            assert!(!output.status.success(), "{args:?}");
            assert!(!String::from_utf8_lossy(&output.stderr).contains("panicked"));
        }
        assert_one_line_error(
            &scratch.run(&[
                "client",
                "create",
                "App",
                "--public",
                "--redirect-uri",
                "https://app.example/cb",
                "--introspection-signed-alg",
                "RS256",
            ]),
            "cannot introspect",
        );
        assert_one_line_error(
            &scratch.run(&["client", "introspection-signing", "nobody", "RS256"]),
            "no client",
        );
    }
}

/// A JWK Set of one new public key of `alg`, with `extra` members added to the key.
fn jwk_set(alg: umbra::keys::SigningAlg, extra: serde_json::Value) -> String {
    let generated = umbra::keys::material::generate(alg).unwrap();
    let mut key = serde_json::to_value(generated.public_jwk).unwrap();
    for (name, value) in extra.as_object().unwrap() {
        key[name] = value.clone();
    }
    serde_json::json!({ "keys": [key] }).to_string()
}

#[test]
fn private_key_jwt_clients_register_keys_replace_them_and_refuse_private_ones() {
    use umbra::keys::SigningAlg;
    for scratch in Scratch::on_each_database() {
        let file = scratch.path().join("jwks.json");
        std::fs::write(
            &file,
            jwk_set(SigningAlg::Rs256, serde_json::json!({"kid": "r1"})),
        )
        .unwrap();
        let method = ["--auth-method", "private_key_jwt"];

        let created = create_client(
            &scratch,
            "reports",
            &[method[0], method[1], "--jwks", file.to_str().unwrap()],
        );
        assert_eq!(created["token_endpoint_auth_method"], "private_key_jwt");
        assert_eq!(created["public"], false);
        assert!(created.get("client_secret").is_none(), "{created}");
        assert_eq!(created["jwks"]["keys"][0]["kid"], "r1");
        assert!(created["jwks"]["keys"][0].get("d").is_none());

        let text = scratch.run(&["client", "show", "reports"]);
        let shown = String::from_utf8_lossy(&text.stdout);
        assert!(
            shown.contains("private_key_jwt") && shown.contains("r1 (RS256)"),
            "{shown}"
        );

        let replaced = json(&scratch.run(&[
            "client",
            "set-keys",
            "reports",
            "--jwks-uri",
            "https://reports.example/jwks.json",
            "--json",
        ]));
        assert_eq!(replaced["jwks_uri"], "https://reports.example/jwks.json");
        assert!(replaced.get("jwks").is_none());
        let inline = jwk_set(SigningAlg::EdDsa, serde_json::json!({"kid": "e1"}));
        let replaced =
            json(&scratch.run(&["client", "set-keys", "reports", "--jwks", &inline, "--json"]));
        assert_eq!(replaced["jwks"]["keys"][0]["kid"], "e1");

        assert_one_line_error(
            &scratch.run(&["client", "rotate-secret", "reports"]),
            "private_key_jwt",
        );
        create_client(&scratch, "secret-svc", &[]);
        assert_one_line_error(
            &scratch.run(&["client", "set-keys", "secret-svc", "--jwks", &inline]),
            "not private_key_jwt",
        );

        let private = jwk_set(SigningAlg::Es256, serde_json::json!({"d": "c2VjcmV0"}));
        assert_one_line_error(
            &scratch.run(&[
                "client", "create", "Leaky", method[0], method[1], "--jwks", &private,
            ]),
            "private key material",
        );
        let hmac = r#"{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}"#;
        assert_one_line_error(
            &scratch.run(&[
                "client", "create", "Sym", method[0], method[1], "--jwks", hmac,
            ]),
            "private key material",
        );
        assert_one_line_error(
            &scratch.run(&[
                "client",
                "create",
                "Plain",
                method[0],
                method[1],
                "--jwks-uri",
                "http://reports.example/jwks.json",
            ]),
            "https",
        );
        assert_one_line_error(
            &scratch.run(&["client", "create", "NoKeys", method[0], method[1]]),
            "--jwks",
        );
        let listed = json(&scratch.run(&["client", "list", "--json"]));
        assert_eq!(
            listed.as_array().unwrap().len(),
            2,
            "nothing refused was registered"
        );
    }
}

#[test]
fn users_get_a_name_and_an_e_mail_address_that_an_operator_may_vouch_for() {
    for scratch in Scratch::on_each_database() {
        let created = json(&run_with_stdin(
            &scratch,
            &[
                "user",
                "create",
                "ada",
                "--password-stdin",
                "--name",
                "Ada Lovelace",
                "--email",
                "ada@example.com",
                "--json",
            ],
            "correct horse battery\n",
        ));
        assert_eq!(created["name"], "Ada Lovelace");
        assert_eq!(created["email"], "ada@example.com");
        assert_eq!(created["email_verified"], false);

        let vouched = json(&scratch.run(&["user", "update", "ada", "--email-verified", "--json"]));
        assert_eq!(vouched["email_verified"], true);
        assert_eq!(vouched["email"], "ada@example.com");
        // A new address is not the one vouched for.
        let moved = json(&scratch.run(&[
            "user",
            "update",
            "ada",
            "--email",
            "ada@lovelace.example",
            "--json",
        ]));
        assert_eq!(moved["email"], "ada@lovelace.example");
        assert_eq!(moved["email_verified"], false);
        let cleared = json(&scratch.run(&[
            "user",
            "update",
            "ada",
            "--clear-name",
            "--clear-email",
            "--json",
        ]));
        assert_eq!(cleared["name"], serde_json::Value::Null);
        assert_eq!(cleared["email"], serde_json::Value::Null);

        assert_one_line_error(
            &scratch.run(&["user", "update", "ada", "--email", "not-an-address"]),
            "e-mail address",
        );
        assert_one_line_error(
            &scratch.run(&["user", "update", "ada"]),
            "nothing to change",
        );
        assert_one_line_error(
            &scratch.run(&["user", "update", "ada", "--email-verified"]),
            "no e-mail address",
        );
        assert_one_line_error(
            &scratch.run(&["user", "update", "nobody", "--name", "X"]),
            "no user",
        );
    }
}

#[test]
fn an_id_token_algorithm_needs_an_active_key_and_logout_uris_are_checked() {
    for scratch in Scratch::on_each_database() {
        let base = ["--redirect-uri", "https://app.example/cb"];
        let mut es256 = base.to_vec();
        es256.extend(["--id-token-alg", "ES256"]);
        let refused = scratch.run(&[&["client", "create", "App"][..], &es256].concat());
        assert_one_line_error(&refused, "umbra keys rotate --alg ES256");

        json(&scratch.run(&["keys", "rotate", "--alg", "ES256", "--now", "--json"]));
        let mut options = es256.clone();
        options.extend(["--post-logout-redirect-uri", "https://app.example/bye"]);
        let client = create_client(&scratch, "rp", &options);
        assert_eq!(client["id_token_alg"], "ES256");
        assert_eq!(
            client["post_logout_redirect_uris"],
            serde_json::json!(["https://app.example/bye"])
        );
        let shown = json(&scratch.run(&["client", "show", "rp", "--json"]));
        assert_eq!(shown["id_token_alg"], "ES256");

        let mut bad = base.to_vec();
        bad.extend(["--post-logout-redirect-uri", "http://app.example/bye"]);
        assert_one_line_error(
            &scratch.run(&[&["client", "create", "App"][..], &bad].concat()),
            "post-logout redirect URI",
        );
    }
}

#[test]
fn serve_refuses_a_schema_newer_than_it_knows_unless_told_it_is_compatible() {
    for scratch in Scratch::on_each_database() {
        assert!(scratch.run(&["migrate"]).status.success());
        execute(
            &scratch.database_url(),
            "INSERT INTO seaql_migrations (version, applied_at) \
             VALUES ('m20991231_000001_from_a_newer_umbra', 0)",
        );

        let serve = scratch
            .umbra(&["serve"])
            .env("UMBRA__SERVER__PORT", "0")
            .output()
            .unwrap();
        let migrate = scratch.run(&["migrate"]);

        for refused in [&serve, &migrate] {
            assert_one_line_error(refused, "the database schema is newer than this Umbra");
            let stderr = String::from_utf8_lossy(&refused.stderr);
            assert!(
                stderr.contains("m20991231_000001_from_a_newer_umbra")
                    && stderr.contains("database.allow_newer_schema"),
                "stderr: {stderr}"
            );
        }
        let mut compatible = scratch.umbra(&[]);
        compatible.env("UMBRA__DATABASE__ALLOW_NEWER_SCHEMA", "true");
        let (mut server, port) = start_serving(compatible);
        assert!(get(port, "/health/ready").starts_with("HTTP/1.1 200"));
        server.kill().ok();
        server.wait().ok();
    }
}

#[test]
fn serve_without_migrating_refuses_a_schema_older_than_it_needs_and_names_the_command() {
    for scratch in Scratch::on_each_database() {
        assert!(scratch.run(&["migrate"]).status.success());
        execute(
            &scratch.database_url(),
            "DELETE FROM seaql_migrations WHERE version = 'm20261202_000003_leases'",
        );

        let refused = scratch
            .umbra(&["serve"])
            .env("UMBRA__SERVER__PORT", "0")
            .env("UMBRA__DATABASE__MIGRATE_ON_START", "false")
            .output()
            .unwrap();

        assert_one_line_error(
            &refused,
            "the database schema is older than this Umbra needs",
        );
        let stderr = String::from_utf8_lossy(&refused.stderr);
        assert!(
            stderr.contains("m20261202_000003_leases") && stderr.contains("run `umbra migrate`"),
            "stderr: {stderr}"
        );
        assert!(
            scratch.run(&["migrate"]).status.success(),
            "the job catches up"
        );
        let mut current = scratch.umbra(&[]);
        current.env("UMBRA__DATABASE__MIGRATE_ON_START", "false");
        let (mut server, port) = start_serving(current);
        assert!(get(port, "/health/ready").starts_with("HTTP/1.1 200"));
        server.kill().ok();
        server.wait().ok();
    }
}

#[test]
fn registration_tokens_are_created_once_listed_without_secrets_and_audited() {
    for scratch in Scratch::on_each_database() {
        let created = json(&scratch.run(&[
            "client",
            "registration-token",
            "create",
            "--max-uses",
            "3",
            "--expires",
            "1h",
            "--description",
            "CI pipeline",
            "--json",
        ]));
        let token = created["token"].as_str().unwrap();
        assert!(token.starts_with("it_") && token.len() == 52, "{token}");
        assert_eq!(created["max_uses"], 3);
        let now = umbra::clock::now();
        let expires_at = created["expires_at"].as_i64().unwrap();
        assert!(
            (now + 3590..=now + 3600).contains(&expires_at),
            "{expires_at}"
        );

        let listed = scratch.run(&["client", "registration-token", "list", "--json"]);
        let listed_text = String::from_utf8_lossy(&listed.stdout).into_owned();
        assert!(
            !listed_text.contains(token),
            "a listing never shows the token"
        );
        let listed = json(&listed);
        assert_eq!(listed[0]["id"], created["id"]);
        assert_eq!(listed[0]["uses"], 0);
        assert_eq!(listed[0]["description"], "CI pipeline");
        let text = scratch.run(&["client", "registration-token", "list"]);
        assert!(String::from_utf8_lossy(&text.stdout).contains("0/3 used\tusable"));

        for (args, mentions) in [
            (&["--max-uses", "3", "--expires", "1w"][..], "duration"),
            (&["--max-uses", "3", "--expires", "400d"], "365 days"),
            (&["--max-uses", "0", "--expires", "1h"], "max-uses"),
        ] {
            let mut argv = vec!["client", "registration-token", "create"];
            argv.extend(args);
            let output = scratch.run(&argv);
            assert!(!output.status.success(), "{args:?}");
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert!(stderr.contains(mentions), "{args:?}: {stderr}");
        }

        let events = json(&scratch.run(&["audit", "list", "--json"]));
        let event = events
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["event"] == "registration_token.created")
            .expect("an audit event");
        assert_eq!(event["actor"], "cli");
        let detail = event["detail"].as_str().unwrap();
        assert!(detail.contains(created["id"].as_str().unwrap()), "{detail}");
        assert!(!detail.contains(token));
    }
}

#[test]
fn user_admin_grants_and_revokes_the_console_role_warning_without_a_second_factor() {
    let scratch = Scratch::new();
    json(&run_with_stdin(
        &scratch,
        &["user", "create", "ada", "--password-stdin", "--json"],
        "correct horse battery\n",
    ));

    let granted = scratch.run(&["user", "admin", "ada", "--json"]);
    assert!(granted.status.success());
    let stderr = String::from_utf8_lossy(&granted.stderr);
    assert!(
        stderr.contains("warning") && stderr.contains("second factor"),
        "{stderr}"
    );
    let granted = json(&granted);
    assert_eq!(
        (granted["admin"].clone(), granted["second_factor"].clone()),
        (true.into(), false.into())
    );
    assert_eq!(
        json(&scratch.run(&["user", "show", "ada", "--json"]))["admin"],
        true
    );

    json(&scratch.run(&["user", "totp", "enroll", "--username", "ada", "--json"]));
    let again = scratch.run(&["user", "admin", "ada"]);
    assert!(again.status.success() && again.stderr.is_empty());
    assert_eq!(
        String::from_utf8_lossy(&again.stdout).trim(),
        "ada may use the operator console"
    );

    let revoked = json(&scratch.run(&["user", "admin", "ada", "--revoke", "--json"]));
    assert_eq!(revoked["admin"], false);
    assert_eq!(
        json(&scratch.run(&["user", "show", "ada", "--json"]))["admin"],
        false
    );
    assert_one_line_error(&scratch.run(&["user", "admin", "bob"]), "no user");

    let events = json(&scratch.run(&["audit", "list", "--user", "ada", "--json"]));
    // Newest first, but events of the same second in no particular order.
    let mut roles: Vec<(&str, &str)> = events
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["event"] == "user.admin_role")
        .map(|e| (e["actor"].as_str().unwrap(), e["detail"].as_str().unwrap()))
        .collect();
    roles.sort_unstable();
    assert_eq!(
        roles,
        [("cli", "granted"), ("cli", "granted"), ("cli", "revoked")]
    );
}
