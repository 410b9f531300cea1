//! `umbra user create | update | list | show | disable | enable | set-password | delete | admin |
//! 2fa | totp`.
//!
//! Passwords never come from the command line (it shows in `ps` and shell history): they are
//! read from standard input with `--password-stdin`, or prompted for without echo.
use super::output;
use super::two_factor::{TotpCommand, TwoFactorCommand};
use crate::auth::factor::{FactorKind, validate_destination};
use crate::auth::password::{Passwords, check_policy};
use crate::auth::{MAX_PASSWORD_LEN, validate_display_name, validate_username};
use crate::clock;
use crate::settings::Settings;
use crate::store::{Actor, AuditEntry, AuditKind, ProfileChange, Store, User};
use anyhow::{Context, bail};
use clap::Subcommand;
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use std::io::Read;

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user.
    Create {
        username: String,
        /// Read the password from standard input instead of prompting.
        #[arg(long)]
        password_stdin: bool,
        #[command(flatten)]
        profile: ProfileArgs,
    },
    /// Change a user's profile (what OpenID Connect's `profile` and `email` scopes release).
    Update {
        username: String,
        #[command(flatten)]
        profile: ProfileArgs,
        /// Remove the display name.
        #[arg(long, conflicts_with = "name")]
        clear_name: bool,
        /// Remove the e-mail address.
        #[arg(long, conflicts_with_all = ["email", "email_verified"])]
        clear_email: bool,
        /// The e-mail address is no longer vouched for.
        #[arg(long, conflicts_with = "email_verified")]
        email_unverified: bool,
    },
    /// List users.
    List,
    /// Show one user.
    Show { username: String },
    /// Stop a user from signing in: their sessions are signed out and every grant (all their
    /// tokens) is revoked, so enabling them again brings no old token back.
    Disable { username: String },
    /// Let a disabled user sign in again.
    Enable { username: String },
    /// Set a new password: their sessions are signed out and every grant (all their tokens) is
    /// revoked.
    SetPassword {
        username: String,
        /// Read the password from standard input instead of prompting.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Delete a user with their grants, tokens and consents.
    Delete { username: String },
    /// Grant the operator console role (`/console`), or take it away with --revoke. The
    /// console also wants a second factor, proved at sign-in.
    Admin {
        username: String,
        /// Take the role away.
        #[arg(long)]
        revoke: bool,
    },
    /// Second-factor status and an operator's reset.
    #[command(name = "2fa", subcommand)]
    TwoFactor(TwoFactorCommand),
    /// Enrol an authenticator app for a user.
    #[command(subcommand)]
    Totp(TotpCommand),
}

/// The profile a user shows to applications (OpenID Connect `name`, `email`).
#[derive(Debug, clap::Args)]
pub struct ProfileArgs {
    /// The display name (OpenID Connect `name`).
    #[arg(long, value_name = "NAME")]
    name: Option<String>,
    /// The profile e-mail address (OpenID Connect `email`); unverified unless
    /// --email-verified. Not where e-mailed sign-in codes go: that is the e-mail factor's own
    /// address.
    #[arg(long, value_name = "ADDRESS")]
    email: Option<String>,
    /// You vouch that the address is the user's (OpenID Connect `email_verified`).
    #[arg(long)]
    email_verified: bool,
}

impl ProfileArgs {
    /// The change these options ask for, checked.
    fn change(self) -> anyhow::Result<ProfileChange> {
        let name = match self.name {
            Some(name) => Some(Some(
                validate_display_name(&name).map_err(anyhow::Error::msg)?,
            )),
            None => None,
        };
        let email = match self.email {
            Some(email) => Some(Some(
                validate_destination(FactorKind::Email, &email)
                    .map_err(|why| anyhow::anyhow!("e-mail address {email:?}: {why}"))?,
            )),
            None => None,
        };
        Ok(ProfileChange {
            name,
            email,
            email_verified: self.email_verified.then_some(true),
        })
    }
}

#[derive(Serialize)]
struct UserView<'a> {
    id: String,
    username: &'a str,
    name: Option<&'a str>,
    email: Option<&'a str>,
    email_verified: bool,
    disabled: bool,
    /// May use the operator console.
    admin: bool,
    created_at: i64,
}

impl<'a> UserView<'a> {
    fn of(user: &'a User) -> Self {
        Self {
            id: user.id.to_string(),
            username: &user.username,
            name: user.name.as_deref(),
            email: user.email.as_deref(),
            email_verified: user.email_verified,
            disabled: user.disabled,
            admin: user.admin,
            created_at: user.created_at,
        }
    }

    fn text(&self) -> String {
        let email = match self.email {
            Some(email) if self.email_verified => format!("{email} (verified)"),
            Some(email) => format!("{email} (unverified)"),
            None => String::new(),
        };
        output::fields(&[
            ("id", self.id.clone()),
            ("username", self.username.to_owned()),
            ("name", self.name.unwrap_or_default().to_owned()),
            ("email", email),
            ("disabled", self.disabled.to_string()),
            ("admin", self.admin.to_string()),
        ])
    }
}

impl UserCommand {
    pub async fn run(self, store: &Store, settings: &Settings, json: bool) -> anyhow::Result<()> {
        match self {
            Self::Create {
                username,
                password_stdin,
                profile,
            } => {
                validate_username(&username).map_err(anyhow::Error::msg)?;
                let change = profile.change()?;
                if change.email.is_none() && change.email_verified.is_some() {
                    bail!("--email-verified needs --email");
                }
                let password = read_password(password_stdin, settings)?;
                let hash = hash(settings, password).await?;
                let user = store
                    .create_user_with(&username, hash, &change, clock::now())
                    .await?;
                let view = UserView::of(&user);
                output::print(json, &view, &view.text());
            }
            Self::Update {
                username,
                profile,
                clear_name,
                clear_email,
                email_unverified,
            } => {
                let user = find(store, &username).await?;
                let mut change = profile.change()?;
                if clear_name {
                    change.name = Some(None);
                }
                if clear_email {
                    change.email = Some(None);
                }
                if email_unverified {
                    change.email_verified = Some(false);
                }
                if user.email.is_none()
                    && change.email.is_none()
                    && change.email_verified == Some(true)
                {
                    bail!("{username} has no e-mail address to vouch for: give --email");
                }
                if change == ProfileChange::default() {
                    bail!(
                        "nothing to change: give --name, --email, --email-verified, \
                         --email-unverified, --clear-name or --clear-email"
                    );
                }
                store
                    .update_user_profile(user.id, &change, clock::now())
                    .await?;
                let user = find(store, &username).await?;
                let view = UserView::of(&user);
                output::print(json, &view, &view.text());
            }
            Self::List => {
                let users = store.list_users().await?;
                let views: Vec<UserView> = users.iter().map(UserView::of).collect();
                let text = if views.is_empty() {
                    "no users".to_owned()
                } else {
                    views
                        .iter()
                        .map(|v| {
                            format!(
                                "{}\t{}{}",
                                v.id,
                                v.username,
                                if v.disabled { "\t(disabled)" } else { "" }
                            )
                        })
                        .collect::<Vec<_>>()
                        .join("\n")
                };
                output::print(json, &views, &text);
            }
            Self::Show { username } => {
                let user = find(store, &username).await?;
                let view = UserView::of(&user);
                output::print(json, &view, &view.text());
            }
            Self::Disable { username } => set_disabled(store, &username, true, json).await?,
            Self::Enable { username } => set_disabled(store, &username, false, json).await?,
            Self::SetPassword {
                username,
                password_stdin,
            } => {
                let user = find(store, &username).await?;
                let password = read_password(password_stdin, settings)?;
                let hash = hash(settings, password).await?;
                store.set_user_password(user.id, hash, clock::now()).await?;
                output::print(
                    json,
                    &serde_json::json!({"username": user.username, "password_changed": true}),
                    &format!(
                        "password of {} changed; their sessions are signed out and their tokens revoked",
                        user.username
                    ),
                );
            }
            Self::Admin { username, revoke } => set_admin(store, &username, !revoke, json).await?,
            Self::TwoFactor(command) => command.run(store, settings, json).await?,
            Self::Totp(command) => command.run(store, settings, json).await?,
            Self::Delete { username } => {
                let user = find(store, &username).await?;
                store.delete_user(user.id).await?;
                output::print(
                    json,
                    &serde_json::json!({"deleted": user.username}),
                    &format!(
                        "deleted user {} with their grants and tokens",
                        user.username
                    ),
                );
            }
        }
        Ok(())
    }
}

async fn find(store: &Store, username: &str) -> anyhow::Result<User> {
    store
        .find_user_by_username(username)
        .await?
        .with_context(|| format!("no user named {username:?}"))
}

async fn set_disabled(
    store: &Store,
    username: &str,
    disabled: bool,
    json: bool,
) -> anyhow::Result<()> {
    let user = find(store, username).await?;
    store
        .set_user_disabled(user.id, disabled, clock::now())
        .await?;
    let text = if disabled {
        format!(
            "disabled {}; their sessions are signed out and their tokens revoked",
            user.username
        )
    } else {
        format!("enabled {}", user.username)
    };
    output::print(
        json,
        &serde_json::json!({"username": user.username, "disabled": disabled}),
        &text,
    );
    Ok(())
}

/// Grants or takes away the console role, audited as the command line's doing. Granting it to
/// a user without a confirmed second factor is allowed (they may enrol one next), with a
/// warning: until they do, the console refuses them.
async fn set_admin(store: &Store, username: &str, admin: bool, json: bool) -> anyhow::Result<()> {
    let user = find(store, username).await?;
    let now = clock::now();
    if !store.set_user_admin(user.id, admin, now).await? {
        bail!("no user named {username:?}");
    }
    let detail = if admin { "granted" } else { "revoked" };
    let entry = AuditEntry::new(AuditKind::AdminRoleChanged)
        .user(user.id, &user.username)
        .actor(&Actor::Cli)
        .detail(detail);
    store.record_audit(entry, now).await?;
    let second_factor = !store.confirmed_factors(user.id).await?.is_empty();
    if admin && !second_factor {
        eprintln!(
            "umbra: warning: {} has no confirmed second factor; the console refuses them until they \
             enrol one (on /account, or `umbra user totp enroll`)",
            user.username
        );
    }
    let text = if admin {
        format!("{} may use the operator console", user.username)
    } else {
        format!("{} may no longer use the operator console", user.username)
    };
    output::print(
        json,
        &serde_json::json!({
            "username": user.username,
            "admin": admin,
            "second_factor": second_factor,
        }),
        &text,
    );
    Ok(())
}

/// Reads the password from stdin (one line, trailing newline removed) or prompts twice.
fn read_password(from_stdin: bool, settings: &Settings) -> anyhow::Result<SecretString> {
    let password = if from_stdin {
        let mut input = String::new();
        std::io::stdin()
            .take(MAX_PASSWORD_LEN as u64 + 2)
            .read_to_string(&mut input)
            .context("cannot read the password from standard input")?;
        let line = input.strip_suffix('\n').unwrap_or(&input);
        SecretString::from(line.strip_suffix('\r').unwrap_or(line))
    } else {
        let first = rpassword::prompt_password("Password: ").context("cannot read the password")?;
        let second =
            rpassword::prompt_password("Repeat it: ").context("cannot read the password")?;
        if first != second {
            bail!("the passwords do not match");
        }
        SecretString::from(first)
    };
    check_policy(password.expose_secret(), settings.passwords.min_length)
        .map_err(anyhow::Error::msg)?;
    Ok(password)
}

async fn hash(settings: &Settings, password: SecretString) -> anyhow::Result<String> {
    let passwords = std::sync::Arc::new(Passwords::new(&settings.passwords)?);
    Ok(passwords.hash_off_runtime(password).await?)
}
