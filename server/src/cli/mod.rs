//! The `umbra` command line: `serve` (the default), `migrate`, `client …`, `resource …`,
//! `user …`, `keys …`, `audit …`.
//!
//! Every command takes `--json`. Errors print one line on stderr and exit non-zero.
mod audit;
mod client;
mod keys;
mod output;
mod registration_token;
mod resource;
mod two_factor;
mod user;

use crate::oauth::scope::ScopeSet;
use crate::settings::Settings;
use crate::startup::Application;
use crate::store::{self, Store};
use crate::telemetry::{self, Writer};
use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Debug, Parser)]
#[command(
    name = "umbra",
    version,
    about = "Umbra, an OAuth 2.0 authorization server"
)]
pub struct Cli {
    /// Print machine-readable JSON.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server (the default). Applies pending migrations first unless
    /// database.migrate_on_start is false.
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Register and manage OAuth clients.
    #[command(subcommand)]
    Client(client::ClientCommand),
    /// Register and manage resources (the APIs tokens are for, RFC 8707).
    #[command(subcommand)]
    Resource(resource::ResourceCommand),
    /// Manage the people who sign in.
    #[command(subcommand)]
    User(user::UserCommand),
    /// Manage Umbra's signing keys (JWKS, rotation).
    #[command(subcommand)]
    Keys(keys::KeysCommand),
    /// Read the audit log.
    #[command(subcommand)]
    Audit(audit::AuditCommand),
}

/// Parses the command line, runs the command, and turns any error into one line on stderr.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => return fail(&anyhow::anyhow!("cannot start the async runtime: {err}")),
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => fail(&err),
    }
}

fn fail(err: &anyhow::Error) -> ExitCode {
    // Every error type here carries its cause in its own message; the chain would repeat it.
    let line = format!("{err}").replace(['\n', '\r'], " ");
    eprintln!("umbra: error: {line}");
    ExitCode::FAILURE
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let settings = Settings::load()?;
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => {
            start_logging(&settings, &settings.log, Writer::Stdout);
            let application = Application::build(settings).await?;
            application.run_until_stopped().await?;
            Ok(())
        }
        Command::Migrate => {
            start_logging(&settings, &quiet(&settings), Writer::Stderr);
            store::migrate(&settings.database).await?;
            output::print(
                cli.json,
                &serde_json::json!({"migrated": true}),
                "migrations applied",
            );
            Ok(())
        }
        Command::Client(command) => {
            start_logging(&settings, &quiet(&settings), Writer::Stderr);
            let store = open_store(&settings).await?;
            command.run(&store, cli.json).await
        }
        Command::Resource(command) => {
            start_logging(&settings, &quiet(&settings), Writer::Stderr);
            let store = open_store(&settings).await?;
            command.run(&store, cli.json).await
        }
        Command::User(command) => {
            start_logging(&settings, &quiet(&settings), Writer::Stderr);
            let store = open_store(&settings).await?;
            command.run(&store, &settings, cli.json).await
        }
        Command::Keys(command) => {
            start_logging(&settings, &quiet(&settings), Writer::Stderr);
            let store = open_store(&settings).await?;
            command.run(&store, &settings, cli.json).await
        }
        Command::Audit(command) => {
            start_logging(&settings, &quiet(&settings), Writer::Stderr);
            let store = open_store(&settings).await?;
            command.run(&store, cli.json).await
        }
    }
}

/// Sets up logging, then logs what loading the settings noticed.
fn start_logging(settings: &Settings, log: &crate::settings::LogSettings, writer: Writer) {
    telemetry::init(log, writer);
    for warning in &settings.warnings {
        tracing::warn!("{warning}");
    }
}

/// CLI commands log only warnings, on stderr, so their output stays clean.
fn quiet(settings: &Settings) -> crate::settings::LogSettings {
    crate::settings::LogSettings {
        level: "warn".into(),
        ..settings.log.clone()
    }
}

/// Connects for an administrative command, applying migrations first when configured so that
/// `umbra client create` works on a fresh installation.
async fn open_store(settings: &Settings) -> anyhow::Result<Store> {
    if settings.database.migrate_on_start {
        store::migrate(&settings.database).await?;
    }
    Ok(Store::new(store::connect(&settings.database).await?))
}

/// The scopes of repeatable `--scope` options, each of which may hold several separated by
/// spaces.
fn parse_scopes(values: &[String]) -> anyhow::Result<ScopeSet> {
    ScopeSet::parse(&values.join(" "))
        .map_err(|_| anyhow::anyhow!("a scope may not contain spaces, quotes or backslashes"))
}

/// The longest duration a command takes (a token's lifetime, how far back to look).
const MAX_DURATION_SECS: i64 = 365 * 24 * 3600;

/// `90`, `90s`, `30m`, `1h`, `7d`: a positive number of seconds, at most a year.
pub(crate) fn parse_duration(given: &str) -> Result<i64, String> {
    let given = given.trim();
    let (number, unit) = match given.find(|c: char| !c.is_ascii_digit()) {
        Some(at) => given.split_at(at),
        None => (given, "s"),
    };
    let factor = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => {
            return Err("a duration is seconds or a number with s, m, h or d (e.g. 1h, 7d)".into());
        }
    };
    let secs = number
        .parse::<i64>()
        .ok()
        .and_then(|n| n.checked_mul(factor))
        .filter(|secs| (1..=MAX_DURATION_SECS).contains(secs))
        .ok_or_else(|| "a duration is from 1 second to 365 days (e.g. 1h, 7d)".to_owned())?;
    Ok(secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_are_seconds_or_a_number_with_a_unit() {
        assert_eq!(parse_duration("90"), Ok(90));
        assert_eq!(parse_duration("90s"), Ok(90));
        assert_eq!(parse_duration("30m"), Ok(1800));
        assert_eq!(parse_duration("1h"), Ok(3600));
        assert_eq!(parse_duration("7d"), Ok(7 * 86_400));
        for bad in [
            "",
            "0",
            "-1",
            "1w",
            "h",
            "366d",
            "99999999999999999999",
            "1.5h",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }
}
