//! `umbra user 2fa status | reset --username U` and `umbra user totp enroll --username U`:
//! an operator looks at a user's second factor, resets a lost one, or enrols an authenticator
//! for automation.
use super::output;
use crate::clock;
use crate::second_factor::SecondFactor;
use crate::sender::LogSender;
use crate::settings::Settings;
use crate::startup;
use crate::store::{Store, User};
use anyhow::Context;
use clap::Subcommand;
use std::sync::Arc;

#[derive(Debug, Subcommand)]
pub enum TwoFactorCommand {
    /// Show a user's second factors, unused recovery codes and any sign-in lock.
    Status {
        #[arg(long)]
        username: String,
    },
    /// Remove every factor and recovery code of a user (a lost device) and lift any lock; their
    /// sessions are signed out, and they sign in with the password alone and enrol again.
    Reset {
        #[arg(long)]
        username: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum TotpCommand {
    /// Enrol and enable an authenticator for a user and print its secret, otpauth URI and
    /// recovery codes (for automation and tests; the secret is shown this once).
    Enroll {
        #[arg(long)]
        username: String,
    },
}

/// The service without a sender: these commands never send codes.
fn service(store: &Store, settings: &Settings) -> anyhow::Result<SecondFactor> {
    Ok(startup::second_factor(
        settings,
        store.clone(),
        Arc::new(LogSender),
    )?)
}

impl TwoFactorCommand {
    pub async fn run(self, store: &Store, settings: &Settings, json: bool) -> anyhow::Result<()> {
        let factors = service(store, settings)?;
        match self {
            Self::Status { username } => {
                let user = find(store, &username).await?;
                let status = factors.status(&user, clock::now()).await?;
                let kinds: Vec<String> = status
                    .factors
                    .iter()
                    .map(|f| {
                        let state = if f.confirmed { "on" } else { "enrolling" };
                        format!("{} ({state})", f.kind)
                    })
                    .collect();
                let text = output::fields(&[
                    ("username", status.username.clone()),
                    (
                        "factors",
                        if kinds.is_empty() {
                            "none".into()
                        } else {
                            kinds.join(", ")
                        },
                    ),
                    ("recovery codes", status.recovery_codes_left.to_string()),
                    (
                        "locked",
                        status
                            .locked_for_secs
                            .map_or("no".into(), |s| format!("for {s} s")),
                    ),
                ]);
                output::print(json, &status, &text);
            }
            Self::Reset { username } => {
                let user = find(store, &username).await?;
                let removed = factors.reset(&user, clock::now()).await?;
                output::print(
                    json,
                    &serde_json::json!({"username": user.username, "factors_removed": removed}),
                    &format!(
                        "removed {removed} factor(s) and the recovery codes of {}; their sessions are signed out",
                        user.username
                    ),
                );
            }
        }
        Ok(())
    }
}

impl TotpCommand {
    pub async fn run(self, store: &Store, settings: &Settings, json: bool) -> anyhow::Result<()> {
        let Self::Enroll { username } = self;
        let user = find(store, &username).await?;
        let (enrolment, enabled) = service(store, settings)?
            .enroll_totp_directly(&user, clock::now())
            .await?;
        let recovery_codes = enabled.recovery_codes.unwrap_or_default();
        let text = output::fields(&[
            ("username", user.username.clone()),
            ("secret", enrolment.secret.clone()),
            ("otpauth_uri", enrolment.otpauth_uri.clone()),
            ("recovery codes", recovery_codes.join(" ")),
        ]);
        output::print(
            json,
            &serde_json::json!({
                "username": user.username,
                "secret": enrolment.secret,
                "otpauth_uri": enrolment.otpauth_uri,
                "recovery_codes": recovery_codes,
            }),
            &text,
        );
        Ok(())
    }
}

pub async fn find(store: &Store, username: &str) -> anyhow::Result<User> {
    store
        .find_user_by_username(username)
        .await?
        .with_context(|| format!("no user named {username:?}"))
}
