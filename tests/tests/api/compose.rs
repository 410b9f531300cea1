//! `docker-compose.yml`, `.env.example`, the `Dockerfile` and `deploy/bootstrap.sh`, checked
//! without a Docker engine: the compose file is parsed and its wiring asserted, and the
//! bootstrap script runs twice (then once more after losing a credentials file) with the very
//! environment compose gives it, against a fresh database and the `umbra` binary of this
//! build. The credentials it writes then drive the real `resource-server` binary against
//! Umbra.
use reqwest::StatusCode;
use serde_json::{Value as Json, json};
use serde_yaml_ng::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};
use umbra_tests::{Backend, TestApp, TestDatabase};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

fn read(relative: &str) -> String {
    std::fs::read_to_string(root().join(relative)).unwrap()
}

fn compose() -> Value {
    serde_yaml_ng::from_str(&read("docker-compose.yml")).expect("docker-compose.yml is YAML")
}

fn service<'a>(compose: &'a Value, name: &str) -> &'a Value {
    let service = &compose["services"][name];
    assert!(service.is_mapping(), "service {name} is declared");
    service
}

fn condition<'a>(service: &'a Value, dependency: &str) -> Option<&'a str> {
    service["depends_on"][dependency]["condition"].as_str()
}

/// A service's `environment`, in either of its compose forms, not yet interpolated.
fn environment(service: &Value) -> BTreeMap<String, String> {
    let scalar = |v: &Value| match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        other => panic!("unexpected environment value {other:?}"),
    };
    match &service["environment"] {
        Value::Mapping(map) => map.iter().map(|(k, v)| (scalar(k), scalar(v))).collect(),
        Value::Sequence(items) => items
            .iter()
            .map(|item| {
                let (k, v) = item.as_str().unwrap().split_once('=').unwrap();
                (k.to_owned(), v.to_owned())
            })
            .collect(),
        Value::Null => BTreeMap::new(),
        other => panic!("unexpected environment {other:?}"),
    }
}

/// `KEY=value` lines of `.env.example`, as compose reads a `.env` file.
fn env_example() -> BTreeMap<String, String> {
    read(".env.example")
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(|line| {
            let (key, value) = line.split_once('=').expect("KEY=value");
            (key.trim().to_owned(), value.trim().to_owned())
        })
        .collect()
}

/// Compose's interpolation: `$$`, `$VAR`, `${VAR}`, `${VAR:-default}`, `${VAR-default}`,
/// `${VAR:?error}`, `${VAR?error}`.
fn interpolate(text: &str, vars: &BTreeMap<String, String>) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(r) = after.strip_prefix('$') {
            out.push('$');
            rest = r;
        } else if let Some(r) = after.strip_prefix('{') {
            let end = r.find('}').expect("a closed ${");
            out.push_str(&resolve(&r[..end], vars));
            rest = &r[end + 1..];
        } else {
            let len = after
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(after.len());
            out.push_str(vars.get(&after[..len]).map_or("", String::as_str));
            rest = &after[len..];
        }
    }
    out.push_str(rest);
    out
}

fn resolve(expression: &str, vars: &BTreeMap<String, String>) -> String {
    let (name, modifier) = split_reference(expression);
    let value = vars.get(name);
    let set_and_non_empty = value.is_some_and(|v| !v.is_empty());
    if let Some(default) = modifier.strip_prefix(":-") {
        return if set_and_non_empty {
            value.unwrap().clone()
        } else {
            default.to_owned()
        };
    }
    if let Some(default) = modifier.strip_prefix('-') {
        return value.cloned().unwrap_or_else(|| default.to_owned());
    }
    if let Some(message) = modifier.strip_prefix(":?") {
        assert!(set_and_non_empty, "{name} is required: {message}");
    } else if let Some(message) = modifier.strip_prefix('?') {
        assert!(value.is_some(), "{name} is required: {message}");
    } else {
        assert!(
            modifier.is_empty(),
            "unsupported interpolation ${{{expression}}}"
        );
    }
    value.cloned().unwrap_or_default()
}

fn split_reference(expression: &str) -> (&str, &str) {
    let end = expression
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(expression.len());
    expression.split_at(end)
}

fn uncommented(text: &str) -> String {
    text.lines()
        .filter(|line| !line.trim_start().starts_with('#'))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every `${…}` of the compose file outside comments (and not the `$${…}` left to the
/// container's shell).
fn references(text: &str) -> Vec<String> {
    let text = uncommented(text);
    let text = text.as_str();
    let mut found = Vec::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while let Some(offset) = text[i..].find("${") {
        let start = i + offset;
        let escaped = start > 0 && bytes[start - 1] == b'$';
        let end = start + text[start..].find('}').expect("a closed ${");
        if !escaped {
            found.push(text[start + 2..end].to_owned());
        }
        i = end + 1;
    }
    found
}

#[test]
fn the_compose_file_starts_postgres_umbra_bootstrap_and_the_resource_server_in_order() {
    let compose = compose();
    let postgres = service(&compose, "postgres");
    let umbra = service(&compose, "umbra");
    let bootstrap = service(&compose, "bootstrap");
    let resource_server = service(&compose, "resource-server");

    assert!(
        postgres["image"]
            .as_str()
            .unwrap()
            .starts_with("postgres:15")
    );
    assert!(format!("{:?}", postgres["healthcheck"]["test"]).contains("pg_isready"));
    assert!(format!("{:?}", umbra["healthcheck"]["test"]).contains("/health/ready"));
    assert!(format!("{:?}", resource_server["healthcheck"]["test"]).contains("/health"));
    assert_eq!(condition(umbra, "postgres"), Some("service_healthy"));
    assert_eq!(condition(bootstrap, "umbra"), Some("service_healthy"));
    assert_eq!(condition(resource_server, "umbra"), Some("service_healthy"));
    assert_eq!(
        condition(resource_server, "bootstrap"),
        Some("service_completed_successfully")
    );
    assert_eq!(bootstrap["restart"].as_str(), Some("no"), "a one-shot");
    assert!(
        postgres["volumes"][0]
            .as_str()
            .unwrap()
            .ends_with(":/var/lib/postgresql/data"),
        "the database survives a restart"
    );
}

#[test]
fn the_compose_umbra_service_is_configured_by_environment_for_postgres() {
    let compose = compose();
    let env = env_example();
    let umbra = environment(service(&compose, "umbra"));

    let database_url = interpolate(&umbra["DATABASE_URL"], &env);
    assert!(
        database_url.starts_with("postgres://") && database_url.contains("@postgres:5432/"),
        "{database_url}"
    );
    assert!(database_url.contains(&env["POSTGRES_PASSWORD"]));
    assert_eq!(umbra["UMBRA__SERVER__HOST"], "0.0.0.0");
    assert!(interpolate(&umbra["UMBRA__SERVER__ISSUER"], &env).starts_with("http"));
    let command = format!("{:?}", service(&compose, "umbra")["command"]);
    assert!(
        command.contains("umbra migrate") && command.contains("exec umbra serve"),
        "migrations run before serving: {command}"
    );
    // The bootstrap service manages the same database.
    let bootstrap = environment(service(&compose, "bootstrap"));
    assert_eq!(bootstrap["DATABASE_URL"], umbra["DATABASE_URL"]);
}

#[test]
fn every_compose_variable_comes_from_env_example_and_is_written_one_way() {
    let text = read("docker-compose.yml");
    let env = env_example();
    let mut forms: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for expression in references(&text) {
        let (name, _) = split_reference(&expression);
        forms
            .entry(name.to_owned())
            .or_default()
            .insert(expression.clone());
    }

    for (name, expressions) in &forms {
        assert_eq!(
            expressions.len(),
            1,
            "{name} is written differently: {expressions:?}"
        );
        assert!(
            env.contains_key(name),
            "{name} is missing from .env.example"
        );
        let (_, modifier) = split_reference(expressions.first().unwrap());
        assert!(
            modifier.starts_with(":-") || modifier.starts_with(":?"),
            "{name} needs a default (:-) or an error (:?): ${{{}}}",
            expressions.first().unwrap()
        );
        if name.contains("PASSWORD") || name.contains("SECRET") {
            assert!(
                modifier.starts_with(":?"),
                "a secret has no default: {name}"
            );
        }
    }
    for name in env.keys() {
        assert!(
            forms.contains_key(name),
            ".env.example sets {name}, which compose never reads"
        );
    }
    let text = uncommented(&text);
    assert_eq!(
        interpolate(&text, &env).matches("${").count(),
        text.matches("$${").count(),
        "everything interpolates but what is left to the container's shell"
    );
}

#[test]
fn the_compose_resource_server_reads_the_credentials_file_bootstrap_writes() {
    let compose = compose();
    let env = env_example();
    let bootstrap = service(&compose, "bootstrap");
    let resource_server = service(&compose, "resource-server");
    let bootstrap_env = environment(bootstrap);
    let rs_env = environment(resource_server);

    let dir = interpolate(&bootstrap_env["CREDENTIALS_DIR"], &env);
    let rs_id = interpolate(&bootstrap_env["DEMO_RS_CLIENT_ID"], &env);
    assert_eq!(
        interpolate(&rs_env["RS_CREDENTIALS_FILE"], &env),
        format!("{dir}/{rs_id}.json")
    );
    assert_eq!(
        bootstrap["volumes"][0].as_str(),
        Some(format!("credentials:{dir}").as_str())
    );
    assert_eq!(
        resource_server["volumes"][0].as_str(),
        Some(format!("credentials:{dir}:ro").as_str())
    );
    assert_eq!(rs_env["UMBRA_URL"], "http://umbra:8080");
    // The image creates that directory for its unprivileged user, so the named volume is
    // writable by it, and installs the bootstrap script under the name compose runs.
    let dockerfile = read("Dockerfile");
    assert!(dockerfile.contains(&dir), "the image prepares {dir}");
    assert!(dockerfile.contains("USER umbra"));
    assert!(dockerfile.contains("--bin umbra") && dockerfile.contains("--bin resource-server"));
    let command = bootstrap["command"][0].as_str().unwrap();
    assert!(dockerfile.contains(&format!("deploy/bootstrap.sh /usr/local/bin/{command}")));
}

// ---- Running deploy/bootstrap.sh --------------------------------------------------------

/// `target/<profile>`, where this test binary lives (`target/<profile>/deps/api-…`).
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.parent().unwrap().parent().unwrap().to_owned()
}

/// The `umbra` and `resource-server` binaries of this build, built when missing (a test
/// binary of one package cannot depend on another package's binaries). `cargo test
/// --workspace` builds both before running any test; after `cargo test -p umbra-tests` alone,
/// binaries left by an earlier build are used as they are.
fn binaries() -> (PathBuf, PathBuf) {
    let dir = profile_dir();
    let (umbra, rs) = (dir.join("umbra"), dir.join("resource-server"));
    if !(umbra.exists() && rs.exists()) {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut build = Command::new(cargo);
        build.current_dir(root()).args([
            "build",
            "-p",
            "umbra-server",
            "--bin",
            "umbra",
            "-p",
            "umbra-guard",
            "--bin",
            "resource-server",
        ]);
        let profile = dir.file_name().unwrap().to_str().unwrap();
        if profile != "debug" {
            build.args(["--profile", profile]);
        }
        let status = build.status().unwrap();
        assert!(status.success(), "cargo build of the binaries failed");
        assert!(
            umbra.exists() && rs.exists(),
            "built, but not in {}: was CARGO_TARGET_DIR changed since this test was built?",
            dir.display()
        );
    }
    (umbra, rs)
}

/// The bootstrap service's environment from docker-compose.yml with .env.example, with the
/// container's paths and database replaced by the test's.
fn bootstrap_environment(database_url: &str, credentials: &Path) -> BTreeMap<String, String> {
    let env = env_example();
    let mut vars: BTreeMap<String, String> = environment(service(&compose(), "bootstrap"))
        .into_iter()
        .map(|(k, v)| (k, interpolate(&v, &env)))
        .collect();
    vars.insert("DATABASE_URL".into(), database_url.into());
    vars.insert("CREDENTIALS_DIR".into(), credentials.display().to_string());
    vars
}

struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Self {
        let dir =
            std::env::temp_dir().join(format!("umbra-compose-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        std::fs::remove_dir_all(&self.0).ok();
    }
}

fn run_bootstrap(vars: &BTreeMap<String, String>, umbra: &Path, cwd: &Path) -> Output {
    let path = format!(
        "{}:{}",
        umbra.parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let output = Command::new("sh")
        .arg(root().join("deploy/bootstrap.sh"))
        .env_clear()
        .envs(vars)
        .env("PATH", path)
        .current_dir(cwd)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "bootstrap failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn credentials(file: &Path) -> (String, String) {
    let json: Json = serde_json::from_str(&std::fs::read_to_string(file).unwrap()).unwrap();
    (
        json["client_id"].as_str().unwrap().to_owned(),
        json["client_secret"].as_str().unwrap().to_owned(),
    )
}

/// A child process killed when the test ends, however it ends.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        self.0.kill().ok();
        self.0.wait().ok();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compose_bootstrap_is_idempotent_and_its_credentials_drive_the_resource_server() {
    // Arrange: the binaries, a fresh database (Postgres when configured), scratch space.
    let (umbra_bin, rs_bin) = tokio::task::spawn_blocking(binaries).await.unwrap();
    let database = match TestDatabase::create(Backend::Postgres).await {
        Some(database) => database,
        None => TestDatabase::create(Backend::Sqlite).await.unwrap(),
    };
    let scratch = Scratch::new();
    let dir = scratch.0.join("credentials");
    let vars = bootstrap_environment(database.url(), &dir);
    let (rs_id, client_id) = (
        vars["DEMO_RS_CLIENT_ID"].clone(),
        vars["DEMO_CLIENT_ID"].clone(),
    );
    let rs_file = dir.join(format!("{rs_id}.json"));
    let client_file = dir.join(format!("{client_id}.json"));

    // First run: both clients are created and their credentials written.
    let first = run_bootstrap(&vars, &umbra_bin, &scratch.0);
    let rs_first = credentials(&rs_file);
    let client_first = credentials(&client_file);
    assert_eq!(
        (rs_first.0.as_str(), client_first.0.as_str()),
        (rs_id.as_str(), client_id.as_str())
    );
    let printed = String::from_utf8_lossy(&first.stdout);
    assert!(
        printed.contains(&client_first.1),
        "prints the demo client's secret: {printed}"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&rs_file).unwrap().permissions().mode();
        assert_eq!(
            mode & 0o077,
            0,
            "credentials are private to their owner: {mode:o}"
        );
    }

    // Second run: nothing changes.
    run_bootstrap(&vars, &umbra_bin, &scratch.0);
    assert_eq!(credentials(&rs_file), rs_first);
    assert_eq!(credentials(&client_file), client_first);
    let listed = Command::new(&umbra_bin)
        .args(["client", "list", "--json"])
        .env_clear()
        .env("DATABASE_URL", database.url())
        .current_dir(&scratch.0)
        .output()
        .unwrap();
    let listed: Json = serde_json::from_slice(&listed.stdout).unwrap();
    let ids: BTreeSet<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["client_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, BTreeSet::from([rs_id.as_str(), client_id.as_str()]));

    // A lost credentials file (a new volume): the same client gets a new secret.
    std::fs::remove_file(&rs_file).unwrap();
    run_bootstrap(&vars, &umbra_bin, &scratch.0);
    let rs_rotated = credentials(&rs_file);
    assert_eq!(rs_rotated.0, rs_id);
    assert_ne!(rs_rotated.1, rs_first.1);
    assert_eq!(credentials(&client_file), client_first);

    // Act: Umbra on that database, and the resource server configured as compose does.
    let compose = compose();
    let umbra_env = environment(service(&compose, "umbra"));
    let require_audience = interpolate(
        &umbra_env["UMBRA__INTROSPECTION__REQUIRE_AUDIENCE"],
        &env_example(),
    );
    assert_eq!(
        require_audience, "true",
        "the stack shows the recommended setting"
    );
    let umbra = TestApp::spawn_with(Backend::Sqlite, |settings| {
        settings.database.url = database.url().to_owned();
        settings.introspection.require_audience = true;
    })
    .await
    .unwrap();
    let rs_env = environment(service(&compose, "resource-server"));
    assert!(rs_env["RS_CREDENTIALS_FILE"].ends_with(".json"));
    let resource = interpolate(&rs_env["RESOURCE_IDENTIFIER"], &env_example());
    assert_eq!(
        resource, vars["DEMO_RESOURCE"],
        "the resource server guards the demo API"
    );
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let rs_url = format!("http://127.0.0.1:{port}");
    let _rs = Running(
        Command::new(&rs_bin)
            .env_clear()
            .env("UMBRA_URL", &umbra.address)
            .env("RS_CREDENTIALS_FILE", &rs_file)
            .env("RESOURCE_IDENTIFIER", &resource)
            .env("UMBRA_ISSUER", &umbra.settings.server.issuer)
            .env("BIND", format!("127.0.0.1:{port}"))
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap(),
    );
    umbra::sender::install_crypto_provider();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        match http.get(format!("{rs_url}/health")).send().await {
            Ok(response) if response.status() == StatusCode::OK => break,
            _ if Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(50)).await,
            other => panic!("the resource server did not start: {other:?}"),
        }
    }
    let token = |scope: &'static str| {
        let (http, umbra, client) = (&http, &umbra, &client_first);
        async move {
            let response = http
                .post(umbra.url("/token"))
                .basic_auth(&client.0, Some(&client.1))
                .form(&[("grant_type", "client_credentials"), ("scope", scope)])
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), StatusCode::OK);
            let body: Json = response.json().await.unwrap();
            body["access_token"].as_str().unwrap().to_owned()
        }
    };
    let (read, write) = (token("read").await, token("write").await);
    let notes = format!("{rs_url}/notes");

    // Assert: the demo client's tokens (for the demo API by default) are checked with the
    // rotated resource-server secret; a token meant for no resource is refused.
    let other = umbra.service_client("read").await;
    let unbound = umbra.issue_token(&other).await;
    let refused = http
        .get(format!("{rs_url}/notes"))
        .bearer_auth(&unbound)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    let anonymous = http.get(&notes).send().await.unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        anonymous.headers()["www-authenticate"],
        r#"Bearer realm="umbra""#
    );
    let listed = http.get(&notes).bearer_auth(&read).send().await.unwrap();
    assert_eq!(listed.status(), StatusCode::OK, "{:?}", listed.text().await);
    let refused = http
        .post(&notes)
        .bearer_auth(&read)
        .json(&json!({"text": "hello"}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert!(
        refused.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains(r#"scope="write""#)
    );
    let created = http
        .post(&notes)
        .bearer_auth(&write)
        .json(&json!({"text": "hello"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);
    let note: Json = created.json().await.unwrap();
    assert_eq!(note["author"], client_id.as_str());
    let listed: Json = http
        .get(&notes)
        .bearer_auth(&read)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed[0]["text"], "hello");
}

// ---- docker-compose.scale.yml and deploy/haproxy.cfg -----------------------------------

fn scale() -> Value {
    serde_yaml_ng::from_str(&read("docker-compose.scale.yml"))
        .expect("docker-compose.scale.yml is YAML")
}

/// A `UMBRA__…_SECS` value of a service's environment.
fn seconds(service: &Value, key: &str) -> u64 {
    environment(service)[key].parse().unwrap()
}

/// `inter` x `fall` of deploy/haproxy.cfg: how long HAProxy takes to mark a replica down.
fn haproxy_time_to_down(config: &str) -> u64 {
    let line = config
        .lines()
        .find(|l| l.trim_start().starts_with("default-server"))
        .expect("default-server line");
    let words: Vec<&str> = line.split_whitespace().collect();
    let after = |key: &str| words[words.iter().position(|w| *w == key).unwrap() + 1];
    let inter: u64 = after("inter").trim_end_matches('s').parse().unwrap();
    inter * after("fall").parse::<u64>().unwrap()
}

#[test]
fn the_scale_override_migrates_once_then_runs_replicas_that_drain_longer_than_haproxy_checks() {
    let base = compose();
    let scale = scale();
    let config = read("deploy/haproxy.cfg");
    let migrate = service(&scale, "migrate");
    let umbra = service(&scale, "umbra");
    let haproxy = service(&scale, "haproxy");

    let migrate_command = format!("{:?}", migrate["command"]);
    assert!(migrate_command.contains("migrate") && !migrate_command.contains("serve"));
    assert_eq!(migrate["restart"].as_str(), Some("no"), "a one-shot");
    assert_eq!(condition(migrate, "postgres"), Some("service_healthy"));
    assert_eq!(
        environment(migrate)["DATABASE_URL"],
        environment(service(&base, "umbra"))["DATABASE_URL"]
    );
    let serve_command = format!("{:?}", umbra["command"]);
    assert!(serve_command.contains("serve") && !serve_command.contains("migrate"));
    assert_eq!(
        condition(umbra, "migrate"),
        Some("service_completed_successfully")
    );
    let replicas = umbra["deploy"]["replicas"].as_u64().unwrap();
    assert_eq!(replicas, 3);
    assert!(
        format!("{:?}", umbra["ports"]).contains("reset"),
        "the replicas publish no port"
    );
    assert!(
        environment(umbra)["UMBRA__SESSION__KEY"].contains(":?"),
        "replicas must share a session key"
    );

    // HAProxy checks readiness, and a replica drains for longer than it takes to notice.
    assert!(config.contains("option httpchk GET /health/ready"));
    assert!(config.contains(&format!(
        "server-template umbra {replicas} umbra:8080 check"
    )));
    let drain = seconds(umbra, "UMBRA__SERVER__SHUTDOWN_DRAIN_SECS");
    assert!(drain > haproxy_time_to_down(&config), "drain {drain} s");
    let grace: u64 = umbra["stop_grace_period"]
        .as_str()
        .unwrap()
        .trim_end_matches('s')
        .parse()
        .unwrap();
    assert!(
        drain + seconds(umbra, "UMBRA__SERVER__SHUTDOWN_TIMEOUT_SECS") < grace,
        "Docker's SIGKILL comes after the drain and the requests in flight"
    );
    assert!(
        format!("{:?}", haproxy["volumes"]).contains("./deploy/haproxy.cfg:"),
        "HAProxy runs deploy/haproxy.cfg"
    );
    assert!(format!("{:?}", haproxy["ports"]).contains("${AUTH_PORT:-8080}:8080"));
    assert_eq!(condition(haproxy, "umbra"), Some("service_healthy"));
    assert_eq!(
        environment(service(&scale, "resource-server"))["UMBRA_URL"],
        "http://haproxy:8080"
    );

    let env = env_example();
    for expression in references(&read("docker-compose.scale.yml")) {
        let (name, _) = split_reference(&expression);
        assert!(
            env.contains_key(name),
            "{name} is missing from .env.example"
        );
    }
}
