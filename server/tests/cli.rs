//! The `umbra` binary as an operator runs it: commands, JSON output, one-line errors.
use std::io::{BufRead, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A scratch directory used as the working directory, removed afterwards.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Self {
        let dir = std::env::temp_dir().join(format!("umbra-cli-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    fn umbra(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_umbra"));
        command
            .args(args)
            .current_dir(&self.0)
            .env_remove("DATABASE_URL")
            .env_remove("UMBRA_ENV")
            .env_remove("RUST_LOG")
            .env("UMBRA_CONFIG_DIR", self.0.join("config"))
            // Tests run in parallel: let each server pick a free metrics port.
            .env("UMBRA__METRICS__PORT", "0");
        command
    }

    fn run(&self, args: &[&str]) -> Output {
        self.umbra(args).output().unwrap()
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        std::fs::remove_dir_all(&self.0).ok();
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
    let port = free_port();
    let server = scratch
        .umbra(&[])
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
    let Some(server) = std::env::var("TEST_DATABASE_URL")
        .ok()
        .filter(|u| !u.is_empty())
    else {
        assert!(
            std::env::var_os("CI").is_none(),
            "TEST_DATABASE_URL must be set in CI"
        );
        return;
    };
    let scratch = Scratch::new();
    let name = format!("umbra_missing_{}", uuid::Uuid::new_v4().simple());
    let mut url = url::Url::parse(&server).unwrap();
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

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
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
