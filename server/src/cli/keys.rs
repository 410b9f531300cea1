//! `umbra keys …`: Umbra's signing keys (see `crate::keys`). Running servers pick up a change
//! within `keys.refresh_secs`.
use super::output;
use crate::clock;
use crate::keys::{self, KeySummary, SigningAlg};
use crate::settings::Settings;
use crate::startup::key_parts;
use crate::store::Store;
use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// List the keys in the JWKS: pending (published, not signing yet), active and retired.
    List,
    /// Create a new key. It is published at once and signs after keys.prepublish_secs; the
    /// key it replaces stops signing then and stays published for keys.publish_retired_secs.
    Rotate {
        /// RS256, ES256 or EdDSA; default keys.default_algorithm.
        #[arg(long)]
        alg: Option<String>,
        /// Sign with the new key at once, without pre-publication (a compromised key):
        /// relying parties that cached the JWKS re-fetch it when they meet the new kid.
        #[arg(long)]
        now: bool,
    },
    /// Stop a key signing now; it stays published for keys.publish_retired_secs. Refused
    /// for the last key of its algorithm: rotate first.
    Retire {
        #[arg(value_name = "KID")]
        kid: String,
    },
}

impl KeysCommand {
    pub async fn run(self, store: &Store, settings: &Settings, json: bool) -> anyhow::Result<()> {
        let (sealer, policy) = key_parts(settings)?;
        let now = clock::now();
        match self {
            Self::List => {
                let keys = keys::list(store, now).await?;
                let text = keys.iter().map(line).collect::<Vec<_>>().join("\n");
                let text = if text.is_empty() {
                    "no signing keys yet (the server creates one at first start)".to_owned()
                } else {
                    text
                };
                output::print(json, &keys, &text);
            }
            Self::Rotate { alg, now: at_once } => {
                // Parsed here rather than by clap, so that a wrong name is one line like every
                // other error.
                let alg = match alg {
                    Some(name) => name.parse::<SigningAlg>()?,
                    None => policy.default_alg,
                };
                let key = keys::rotate(store, &sealer, &policy, alg, at_once, now).await?;
                let when = if at_once {
                    "signs now".to_owned()
                } else {
                    format!("published now, signs from {}", key.activates_at)
                };
                output::print(
                    json,
                    &key,
                    &format!("created {} {} ({when})", key.alg, key.kid),
                );
            }
            Self::Retire { kid } => {
                let key = keys::retire(store, &policy, &kid, now).await?;
                output::print(
                    json,
                    &key,
                    &format!(
                        "retired {}; it stays in the JWKS until {}",
                        key.kid,
                        key.expires_at.unwrap_or(now)
                    ),
                );
            }
        }
        Ok(())
    }
}

/// `kid  alg  state  created … activates … [retired …] [published until …]`.
fn line(key: &KeySummary) -> String {
    let mut line = format!(
        "{}  {:5}  {:7}  created {}  activates {}",
        key.kid, key.alg, key.state, key.created_at, key.activates_at
    );
    if let Some(retired) = key.retired_at {
        line.push_str(&format!("  retires {retired}"));
    }
    if let Some(expires) = key.expires_at {
        line.push_str(&format!("  published until {expires}"));
    }
    line
}
