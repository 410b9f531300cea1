//! `umbra client registration-token create | list`: initial access tokens (RFC 7591 §3), an
//! operator's permission for software to register clients at `POST /register`.
use super::output;
use crate::clock;
use crate::oauth::token::{Token, TokenKind};
use crate::store::{Actor, AuditEntry, AuditKind, Store};
use anyhow::bail;
use clap::Subcommand;

/// Longest lifetime of an initial access token: a year.
/// Longest description.
const MAX_DESCRIPTION_LEN: usize = 200;

#[derive(Debug, Subcommand)]
pub enum RegistrationTokenCommand {
    /// Create an initial access token for POST /register; it is printed once (stored only as
    /// a hash).
    Create {
        /// How many clients it may register.
        #[arg(long = "max-uses", value_name = "N", value_parser = clap::value_parser!(i32).range(1..=10_000))]
        max_uses: i32,
        /// How long it lasts: seconds, or a number followed by s, m, h or d (e.g. 1h, 7d); at
        /// most 365d.
        #[arg(long, value_name = "DURATION", value_parser = super::parse_duration)]
        expires: i64,
        /// What it is for, shown in listings and the audit log.
        #[arg(long, value_name = "TEXT")]
        description: Option<String>,
    },
    /// List initial access tokens (without the tokens), newest first.
    List,
}

impl RegistrationTokenCommand {
    pub async fn run(self, store: &Store, json: bool) -> anyhow::Result<()> {
        match self {
            Self::Create {
                max_uses,
                expires,
                description,
            } => {
                let description = description.map(|d| d.trim().to_owned());
                if let Some(d) = &description
                    && (d.chars().count() > MAX_DESCRIPTION_LEN || d.chars().any(char::is_control))
                {
                    bail!(
                        "--description must be at most {MAX_DESCRIPTION_LEN} characters without \
                         control characters"
                    );
                }
                let now = clock::now();
                let token = Token::generate(TokenKind::InitialAccessToken)?;
                let expires_at = now + expires;
                let id = store
                    .create_initial_access_token(
                        &token.hash(),
                        description.as_deref(),
                        max_uses,
                        expires_at,
                        now,
                    )
                    .await?;
                let entry = AuditEntry::new(AuditKind::RegistrationTokenCreated)
                    .detail(format!(
                        "initial access token {id}: {max_uses} use(s) until {expires_at}"
                    ))
                    .actor(&Actor::Cli);
                store.record_audit(entry, now).await?;
                output::print(
                    json,
                    &serde_json::json!({
                        "id": id,
                        "token": token.expose(),
                        "max_uses": max_uses,
                        "expires_at": expires_at,
                        "description": description,
                    }),
                    &output::fields(&[
                        ("id", id.to_string()),
                        (
                            "token",
                            format!("{}  (shown once: store it now)", token.expose()),
                        ),
                        ("max_uses", max_uses.to_string()),
                        ("expires_at", expires_at.to_string()),
                        ("description", description.clone().unwrap_or_default()),
                    ]),
                );
            }
            Self::List => {
                let tokens = store.list_initial_access_tokens().await?;
                let now = clock::now();
                let text = if tokens.is_empty() {
                    "no registration tokens".to_owned()
                } else {
                    tokens
                        .iter()
                        .map(|t| {
                            let state = if t.expires_at <= now {
                                "expired"
                            } else if t.uses >= t.max_uses {
                                "used up"
                            } else {
                                "usable"
                            };
                            format!(
                                "{}\t{}/{} used\t{state}\texpires {}\t{}",
                                t.id,
                                t.uses,
                                t.max_uses,
                                t.expires_at,
                                t.description.as_deref().unwrap_or("")
                            )
                        })
                        .collect::<Vec<_>>()
                        .join("\n")
                };
                output::print(json, &tokens, &text);
            }
        }
        Ok(())
    }
}
