//! Clients a page at a time, for operators: filtered by name and grant type, in id order,
//! continued after the last id of the previous page.
use super::{Store, StoreError};
use crate::oauth::client::Client;
use crate::oauth::grant_type::GrantType;
use entity::client;
use sea_orm::sea_query::{Expr, ExprTrait, Func};
use sea_orm::{ColumnTrait, Condition, EntityTrait, QueryFilter, QueryOrder, QuerySelect};

/// Which clients to list; every filter given must hold.
#[derive(Debug, Clone, Default)]
pub struct ClientQuery {
    /// Names starting with this, ASCII letters compared case-insensitively.
    pub name_prefix: Option<String>,
    /// Clients allowed this grant type.
    pub grant_type: Option<GrantType>,
    /// Continue after this client id (from [`ClientPage::next`]).
    pub after: Option<String>,
    pub limit: u64,
}

/// One page of clients in id order and where the next starts (`None`: the last page).
#[derive(Debug, Clone)]
pub struct ClientPage {
    pub clients: Vec<Client>,
    /// The id of the last client of this page.
    pub next: Option<String>,
}

impl Store {
    /// One page of clients as `query` selects them. The page's ids are read in one query,
    /// then each client as [`Store::find_client`] reads it (a page is small).
    pub async fn query_clients(&self, query: &ClientQuery) -> Result<ClientPage, StoreError> {
        let mut select = client::Entity::find()
            .select_only()
            .column(client::Column::Id);
        if let Some(prefix) = &query.name_prefix {
            // The leading characters compared rather than LIKE: nothing to escape.
            let prefix = prefix.to_ascii_lowercase();
            let length = i32::try_from(prefix.chars().count()).unwrap_or(i32::MAX);
            select = select.filter(
                Expr::expr(Func::lower(
                    Func::cust("SUBSTR")
                        .arg(Expr::col(client::Column::Name))
                        .arg(1)
                        .arg(length),
                ))
                .eq(prefix),
            );
        }
        if let Some(grant_type) = query.grant_type {
            // Stored space-separated. A known name has no LIKE wildcard but `_`, which among
            // the known names matches only itself.
            let name = grant_type.as_str();
            let column = client::Column::GrantTypes;
            select = select.filter(
                Condition::any()
                    .add(column.eq(name))
                    .add(column.like(format!("{name} %")))
                    .add(column.like(format!("% {name}")))
                    .add(column.like(format!("% {name} %"))),
            );
        }
        if let Some(after) = &query.after {
            select = select.filter(client::Column::Id.gt(after.as_str()));
        }
        let limit = Ord::max(query.limit, 1);
        let mut ids: Vec<String> = select
            .order_by_asc(client::Column::Id)
            .limit(limit + 1)
            .into_tuple()
            .all(&self.db)
            .await?;
        let more = ids.len() as u64 > limit;
        ids.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        let mut clients = Vec::with_capacity(ids.len());
        for id in &ids {
            // Deleted since the ids were read: left out.
            if let Some(client) = self.find_client(id).await? {
                clients.push(client);
            }
        }
        let next = match (more, ids.last()) {
            (true, Some(last)) => Some(last.clone()),
            _ => None,
        };
        Ok(ClientPage { clients, next })
    }
}
