//! `umbra resource create | list | show | update | delete`: the APIs tokens are for (RFC 8707),
//! the scopes they define and the clients that introspect for them. Which clients may ask
//! tokens for a resource is set per client (`umbra client allow-resource`).
use super::{output, parse_scopes};
use crate::clock;
use crate::manage::{self, ResourceView};
use crate::oauth::scope::ScopeSet;
use crate::store::{Replaced, Resource, ResourceChange, Store};
use anyhow::{Context, bail};
use clap::{Args, Subcommand};

#[derive(Debug, Subcommand)]
pub enum ResourceCommand {
    /// Register a resource (an API) with the scopes it defines and the clients that
    /// introspect its tokens.
    Create(CreateArgs),
    /// List resources.
    List,
    /// Show one resource, with the clients that introspect for it and that may ask for it.
    Show {
        #[arg(value_name = "URI")]
        identifier: String,
    },
    /// Change a resource's name, scopes or introspectors.
    Update(UpdateArgs),
    /// Delete a resource and every client's permission for it, and revoke every token issued
    /// for it (so that an identifier registered again never inherits them).
    Delete {
        #[arg(value_name = "URI")]
        identifier: String,
    },
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    /// The absolute URI that names the resource (RFC 8707 §2), such as
    /// https://orders.example: clients send it as `resource`, introspection lists it in `aud`.
    #[arg(long, value_name = "URI")]
    identifier: String,
    /// A human-readable name.
    #[arg(long)]
    name: String,
    /// A scope the resource defines (repeatable, or space-separated).
    #[arg(long = "scope", value_name = "SCOPE")]
    scopes: Vec<String>,
    /// A confidential client that may introspect the tokens meant for this resource: the
    /// resource server's own credentials (repeatable).
    #[arg(long = "introspector", value_name = "CLIENT_ID")]
    introspectors: Vec<String>,
}

#[derive(Debug, Args)]
pub struct UpdateArgs {
    #[arg(value_name = "URI")]
    identifier: String,
    /// A new name.
    #[arg(long)]
    name: Option<String>,
    /// The scopes the resource defines (repeatable): replaces the list. A client allowed
    /// only some scopes keeps those still defined.
    #[arg(long = "scope", value_name = "SCOPE", conflicts_with = "no_scopes")]
    scopes: Option<Vec<String>>,
    /// The resource defines no scope any more.
    #[arg(long)]
    no_scopes: bool,
    /// The clients that introspect for it (repeatable): replaces the list.
    #[arg(
        long = "introspector",
        value_name = "CLIENT_ID",
        conflicts_with = "no_introspectors"
    )]
    introspectors: Option<Vec<String>>,
    /// No client introspects for it any more.
    #[arg(long)]
    no_introspectors: bool,
}

/// A resource as the CLI shows it.
struct ResourceText(ResourceView);

impl ResourceText {
    fn text(&self) -> String {
        let view = &self.0;
        let clients = view
            .clients
            .iter()
            .map(|c| {
                let every = if c.every_scope { "  (every scope)" } else { "" };
                format!(
                    "{}  {}{every}",
                    c.client_id,
                    output::scopes_or_none(&c.scopes)
                )
            })
            .collect::<Vec<_>>()
            .join("\n");
        output::fields(&[
            ("identifier", view.identifier.clone()),
            ("name", view.name.clone()),
            ("scopes", view.scopes.clone()),
            ("introspectors", view.introspectors.join(" ")),
            ("clients", clients),
        ])
    }
}

impl ResourceCommand {
    pub async fn run(self, store: &Store, json: bool) -> anyhow::Result<()> {
        match self {
            Self::Create(args) => {
                manage::resource_identifier(&args.identifier)?;
                let new = Resource {
                    name: manage::resource_name(&args.name)?,
                    scopes: parse_scopes(&args.scopes)?,
                    introspectors: manage::introspectors(store, &args.introspectors).await?,
                    identifier: args.identifier,
                    clients: Vec::new(),
                    version: 1,
                };
                store.create_resource(&new, clock::now()).await?;
                show(store, &new.identifier, json).await?;
            }
            Self::List => {
                let resources = store.list_resources().await?;
                let views: Vec<ResourceView> = resources.iter().map(ResourceView::of).collect();
                let text = if views.is_empty() {
                    "no resources".to_owned()
                } else {
                    views
                        .iter()
                        .map(|v| format!("{}\t{}\t{}", v.identifier, v.scopes, v.name))
                        .collect::<Vec<_>>()
                        .join("\n")
                };
                output::print(json, &views, &text);
            }
            Self::Show { identifier } => show(store, &identifier, json).await?,
            Self::Update(args) => {
                let change = args.change(store).await?;
                // The command line changes whatever version is there (no If-Match).
                let updated = store
                    .update_resource(&args.identifier, &change, None, clock::now())
                    .await?;
                if updated == Replaced::NotFound {
                    bail!("{}", unknown(&args.identifier));
                }
                show(store, &args.identifier, json).await?;
            }
            Self::Delete { identifier } => {
                if !store.delete_resource(&identifier, clock::now()).await? {
                    bail!("{}", unknown(&identifier));
                }
                output::print(
                    json,
                    &serde_json::json!({"deleted": identifier}),
                    &format!(
                        "deleted resource {identifier} and every client's permission for it; \
                         every token issued for it is revoked"
                    ),
                );
            }
        }
        Ok(())
    }
}

impl UpdateArgs {
    /// Checks the new values; refuses a command that changes nothing.
    async fn change(&self, store: &Store) -> anyhow::Result<ResourceChange> {
        let name = self
            .name
            .as_deref()
            .map(manage::resource_name)
            .transpose()?;
        let scopes = match (&self.scopes, self.no_scopes) {
            (_, true) => Some(ScopeSet::default()),
            (Some(scopes), false) => Some(parse_scopes(scopes)?),
            (None, false) => None,
        };
        let introspectors = match (&self.introspectors, self.no_introspectors) {
            (_, true) => Some(Vec::new()),
            (Some(ids), false) => Some(manage::introspectors(store, ids).await?),
            (None, false) => None,
        };
        if name.is_none() && scopes.is_none() && introspectors.is_none() {
            bail!(
                "nothing to change: give --name, --scope, --no-scopes, --introspector or \
                 --no-introspectors"
            );
        }
        Ok(ResourceChange {
            name,
            scopes,
            introspectors,
        })
    }
}

/// The resource named `identifier`, or the error that says there is none.
pub(super) async fn find(store: &Store, identifier: &str) -> anyhow::Result<Resource> {
    store
        .find_resource(identifier)
        .await?
        .with_context(|| unknown(identifier))
}

fn unknown(identifier: &str) -> String {
    format!("no resource {identifier:?}")
}

async fn show(store: &Store, identifier: &str, json: bool) -> anyhow::Result<()> {
    let resource = find(store, identifier).await?;
    let view = ResourceText(ResourceView::of(&resource));
    output::print(json, &view.0, &view.text());
    Ok(())
}
