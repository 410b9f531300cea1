//! The console role, and the bounded views the operator console reads.
//!
//! The role decides which users may open the operator console (`/console`). It is granted and
//! taken away by an operator (`umbra user admin`); the console re-reads the user row on every
//! request, so a change acts at the next page a person loads.
//!
//! The views are pages of at most [`MAX_PAGE`] rows in a stable order (keyset: "after this
//! key"), so that no console page reads a whole table, and they never carry a password or
//! secret hash.
use super::changes::ChangeKind;
use super::resources::escape_like;
use super::{Store, StoreError};
use entity::{client, user};
use sea_orm::sea_query::{Expr, ExprTrait, LikeExpr};
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect};
use serde::Serialize;
use uuid::Uuid;

/// The largest page a view returns, whatever is asked.
pub const MAX_PAGE: u64 = 100;

/// A user as the console lists them.
#[derive(Debug, Clone, Serialize)]
pub struct UserSummary {
    pub id: Uuid,
    pub username: String,
    pub disabled: bool,
    pub admin: bool,
    pub created_at: i64,
}

/// A client as the console lists it.
#[derive(Debug, Clone, Serialize)]
pub struct ClientSummary {
    pub id: String,
    pub name: String,
    /// `client_secret`, `private_key_jwt` or `none` (a public client).
    pub authentication: &'static str,
    /// Space-separated, as stored.
    pub grant_types: String,
    pub created_at: i64,
}

/// How many of each, for the console's overview.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Counts {
    pub users: u64,
    pub disabled_users: u64,
    pub admins: u64,
    pub clients: u64,
}

impl Store {
    /// Grants (`admin: true`) or takes away the console role of user `id`, moving the row's
    /// version (the admin API's `ETag`). `false` if the user is unknown. Setting the role a user
    /// already has still counts as a change: the caller audits what an operator asked for.
    pub async fn set_user_admin(
        &self,
        id: Uuid,
        admin: bool,
        now: i64,
    ) -> Result<bool, StoreError> {
        let update = user::Entity::update_many()
            .col_expr(user::Column::Admin, Expr::value(admin))
            .col_expr(
                user::Column::Version,
                Expr::col(user::Column::Version).add(1),
            )
            .col_expr(user::Column::UpdatedAt, Expr::value(now))
            .filter(user::Column::Id.eq(id));
        let subject = id.to_string();
        // Logged like every other change of a user row, so that whatever caches users on any
        // instance learns it; nothing caches the role today.
        Ok(self
            .write_logged("set_user_admin", update, ChangeKind::User, &subject)
            .await?
            > 0)
    }

    /// Users whose username contains `filter` (case-insensitively; every user when empty),
    /// by username, after the username `after` (normalized) if given; at most `limit`.
    pub async fn user_summaries(
        &self,
        filter: &str,
        after: Option<&str>,
        limit: u64,
    ) -> Result<Vec<UserSummary>, StoreError> {
        let mut query = user::Entity::find();
        let filter = super::normalize_username(filter);
        if !filter.is_empty() {
            let pattern = format!("%{}%", escape_like(&filter));
            query = query
                .filter(user::Column::UsernameNormalized.like(LikeExpr::new(pattern).escape('\\')));
        }
        if let Some(after) = after {
            query = query.filter(user::Column::UsernameNormalized.gt(after));
        }
        Ok(query
            .order_by_asc(user::Column::UsernameNormalized)
            .limit(limit.clamp(1, MAX_PAGE))
            .all(&self.db)
            .await?
            .into_iter()
            .map(|row| UserSummary {
                id: row.id,
                username: row.username,
                disabled: row.disabled,
                admin: row.admin,
                created_at: row.created_at,
            })
            .collect())
    }

    /// Clients by id, after the id `after` if given; at most `limit`.
    pub async fn client_summaries(
        &self,
        after: Option<&str>,
        limit: u64,
    ) -> Result<Vec<ClientSummary>, StoreError> {
        let mut query = client::Entity::find();
        if let Some(after) = after {
            query = query.filter(client::Column::Id.gt(after));
        }
        Ok(query
            .order_by_asc(client::Column::Id)
            .limit(limit.clamp(1, MAX_PAGE))
            .all(&self.db)
            .await?
            .into_iter()
            .map(|row| ClientSummary {
                authentication: match (&row.secret_hash, &row.jwks, &row.jwks_uri) {
                    (Some(_), _, _) => "client_secret",
                    (None, None, None) => "none",
                    _ => "private_key_jwt",
                },
                id: row.id,
                name: row.name,
                grant_types: row.grant_types,
                created_at: row.created_at,
            })
            .collect())
    }

    /// Users, disabled users, console operators and clients.
    pub async fn console_counts(&self) -> Result<Counts, StoreError> {
        let users = user::Entity::find().count(&self.db).await?;
        let disabled_users = user::Entity::find()
            .filter(user::Column::Disabled.eq(true))
            .count(&self.db)
            .await?;
        let admins = user::Entity::find()
            .filter(user::Column::Admin.eq(true))
            .count(&self.db)
            .await?;
        let clients = client::Entity::find().count(&self.db).await?;
        Ok(Counts {
            users,
            disabled_users,
            admins,
            clients,
        })
    }
}
