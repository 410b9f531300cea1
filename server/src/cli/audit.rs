//! `umbra audit list [--user U] [--client C] [--event E] [--since D] [--limit N]`: the audit
//! log, newest first, through the same query as the admin API and the console.
use super::output;
use super::two_factor::find;
use crate::clock;
use crate::store::{AuditQuery, Store};
use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// List audit events, newest first.
    List {
        /// Only events of this user.
        #[arg(long)]
        user: Option<String>,
        /// Only events of this client (the subject of the event, not who made it).
        #[arg(long)]
        client: Option<String>,
        /// Only this event (e.g. login.failed), or every event under a prefix ending in a dot
        /// (e.g. client.).
        #[arg(long)]
        event: Option<String>,
        /// Only events of the last DURATION (e.g. 90m, 24h, 7d).
        #[arg(long, value_name = "DURATION", value_parser = super::parse_duration)]
        since: Option<i64>,
        /// At most this many events.
        #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..=10_000))]
        limit: u64,
    },
}

impl AuditCommand {
    pub async fn run(self, store: &Store, json: bool) -> anyhow::Result<()> {
        let Self::List {
            user,
            client,
            event,
            since,
            limit,
        } = self;
        let user_id = match user {
            Some(username) => Some(find(store, &username).await?.id),
            None => None,
        };
        let query = AuditQuery {
            user_id,
            client_id: client,
            event,
            since: since.map(|secs| clock::now() - secs),
            limit,
            ..AuditQuery::default()
        };
        let events = store.query_audit(&query).await?.events;
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
                        e.actor.clone().unwrap_or_else(|| "-".into()),
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
