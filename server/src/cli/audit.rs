//! `umbra audit list [--user U] [--limit N]`: the audit log, newest first.
use super::output;
use super::two_factor::find;
use crate::store::Store;
use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// List audit events, newest first.
    List {
        /// Only events of this user.
        #[arg(long)]
        user: Option<String>,
        /// At most this many events.
        #[arg(long, default_value_t = 100)]
        limit: u64,
    },
}

impl AuditCommand {
    pub async fn run(self, store: &Store, json: bool) -> anyhow::Result<()> {
        let Self::List { user, limit } = self;
        let user_id = match user {
            Some(username) => Some(find(store, &username).await?.id),
            None => None,
        };
        let events = store.list_audit(user_id, limit).await?;
        let text = if events.is_empty() {
            "no events".to_owned()
        } else {
            events
                .iter()
                .map(|e| {
                    [
                        e.at.to_string(),
                        e.event.clone(),
                        e.username.clone().unwrap_or_else(|| "-".into()),
                        e.client_id.clone().unwrap_or_else(|| "-".into()),
                        e.address.clone().unwrap_or_else(|| "-".into()),
                        e.detail.clone().unwrap_or_default(),
                    ]
                    .join("\t")
                })
                .collect::<Vec<_>>()
                .join("\n")
        };
        output::print(json, &events, &text);
        Ok(())
    }
}
