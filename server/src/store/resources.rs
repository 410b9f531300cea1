//! Resources (RFC 8707) and their links to clients: which clients introspect for a resource,
//! which may ask tokens for it and with which scopes, and each client's default resource.
use super::changes::{self, ChangeKind};
use super::clients::{Replaced, next_version};
use super::{Store, StoreError};
use crate::oauth::resource::{AllowedResource, Audience, ResourceAccess};
use crate::oauth::scope::ScopeSet;
use entity::{access_token, client, client_resource, grant, resource, resource_introspector};
use sea_orm::sea_query::{Expr, ExprTrait, LikeExpr, OnConflict};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, SqlErr,
    TransactionTrait,
};
use uuid::Uuid;

/// A resource as stored, with its links.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resource {
    /// The absolute URI that names it (RFC 8707 §2).
    pub identifier: String,
    pub name: String,
    /// The scopes it defines.
    pub scopes: ScopeSet,
    /// Clients that may introspect its tokens.
    pub introspectors: Vec<String>,
    /// Clients that may ask tokens for it, with the scopes they may ask (`None`: all).
    pub clients: Vec<(String, Option<ScopeSet>)>,
    /// Moves with every change (the admin API's `ETag`); a new resource starts at 1 whatever
    /// this says.
    pub version: i64,
}

/// Changes to a resource; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct ResourceChange {
    pub name: Option<String>,
    pub scopes: Option<ScopeSet>,
    /// Replaces the whole list of introspecting clients.
    pub introspectors: Option<Vec<String>>,
}

impl Store {
    /// Registers a resource with the clients that introspect for it. A client that does not
    /// exist is `Gone`; an identifier already registered is `Conflict`.
    pub async fn create_resource(&self, new: &Resource, now: i64) -> Result<(), StoreError> {
        self.retrying("create_resource", move || async move {
            let txn = self.db.begin().await?;
            let inserted = resource::Entity::insert(resource::ActiveModel {
                identifier: Set(new.identifier.clone()),
                name: Set(new.name.clone()),
                scopes: Set(new.scopes.to_string()),
                created_at: Set(now),
                updated_at: Set(now),
                version: Set(1),
            })
            .exec_without_returning(&txn)
            .await;
            match inserted {
                Ok(_) => {}
                Err(err) if matches!(err.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => {
                    return Err(StoreError::Conflict(format!(
                        "a resource {:?} already exists",
                        new.identifier
                    )));
                }
                Err(err) => return Err(err.into()),
            }
            insert_introspectors(&txn, &new.identifier, &new.introspectors).await?;
            changes::record(&txn, ChangeKind::Resource, &new.identifier).await?;
            txn.commit().await?;
            Ok(())
        })
        .await
    }

    pub async fn find_resource(&self, identifier: &str) -> Result<Option<Resource>, StoreError> {
        let Some(row) = resource::Entity::find_by_id(identifier.to_owned())
            .one(&self.db)
            .await?
        else {
            return Ok(None);
        };
        Ok(Some(self.with_links(row).await?))
    }

    /// Every resource, oldest first.
    pub async fn list_resources(&self) -> Result<Vec<Resource>, StoreError> {
        let rows = resource::Entity::find()
            .order_by_asc(resource::Column::CreatedAt)
            .order_by_asc(resource::Column::Identifier)
            .all(&self.db)
            .await?;
        let mut resources = Vec::with_capacity(rows.len());
        for row in rows {
            resources.push(self.with_links(row).await?);
        }
        Ok(resources)
    }

    /// Applies `change`, only to the version `if_version` when given (an `If-Match`): one
    /// conditional UPDATE that moves the version, with the links and the change-log row in
    /// the same transaction.
    pub async fn update_resource(
        &self,
        identifier: &str,
        change: &ResourceChange,
        if_version: Option<i64>,
        now: i64,
    ) -> Result<Replaced, StoreError> {
        self.retrying("update_resource", move || async move {
            let txn = self.db.begin().await?;
            let mut update = resource::Entity::update_many()
                .col_expr(resource::Column::UpdatedAt, Expr::value(now))
                .col_expr(
                    resource::Column::Version,
                    Expr::col(resource::Column::Version).add(1),
                )
                .filter(resource::Column::Identifier.eq(identifier));
            if let Some(version) = if_version {
                update = update.filter(resource::Column::Version.eq(version));
            }
            if let Some(name) = &change.name {
                update = update.col_expr(resource::Column::Name, Expr::value(name.clone()));
            }
            if let Some(scopes) = &change.scopes {
                update = update.col_expr(resource::Column::Scopes, Expr::value(scopes.to_string()));
            }
            if update.exec(&txn).await?.rows_affected == 0 {
                let current = resource::Entity::find_by_id(identifier.to_owned())
                    .one(&txn)
                    .await?;
                txn.rollback().await?;
                return Ok(match current {
                    Some(row) => Replaced::VersionMismatch {
                        current: row.version,
                    },
                    None => Replaced::NotFound,
                });
            }
            if let Some(introspectors) = &change.introspectors {
                resource_introspector::Entity::delete_many()
                    .filter(resource_introspector::Column::Resource.eq(identifier))
                    .exec(&txn)
                    .await?;
                insert_introspectors(&txn, identifier, introspectors).await?;
            }
            changes::record(&txn, ChangeKind::Resource, identifier).await?;
            let version = resource::Entity::find_by_id(identifier.to_owned())
                .one(&txn)
                .await?
                .map_or(0, |row| row.version);
            txn.commit().await?;
            Ok(Replaced::Done { version })
        })
        .await
    }

    /// Deletes a resource and its links, and revokes every grant and access token meant for
    /// it, so that a resource registered again under the same identifier never inherits
    /// tokens issued for the old one. `false` if unknown.
    pub async fn delete_resource(&self, identifier: &str, now: i64) -> Result<bool, StoreError> {
        self.retrying("delete_resource", move || async move {
            let txn = self.db.begin().await?;
            revoke_audience(&txn, identifier, now).await?;
            // The links go by cascade; a default resource is a plain column.
            client::Entity::update_many()
                .col_expr(
                    client::Column::DefaultResource,
                    Expr::value(Option::<String>::None),
                )
                .col_expr(client::Column::Version, next_version())
                .filter(client::Column::DefaultResource.eq(identifier))
                .exec(&txn)
                .await?;
            let deleted = resource::Entity::delete_by_id(identifier.to_owned())
                .exec(&txn)
                .await?
                .rows_affected;
            if deleted > 0 {
                changes::record(&txn, ChangeKind::Resource, identifier).await?;
            }
            txn.commit().await?;
            if deleted > 0 {
                self.changed_here(ChangeKind::Resource, identifier);
            }
            Ok(deleted > 0)
        })
        .await
    }

    /// Lets `client_id` ask tokens for `identifier` with `scopes` (`None`: every scope the
    /// resource defines); replaces an earlier permission. `Gone` if either does not exist.
    pub async fn allow_client_resource(
        &self,
        client_id: &str,
        identifier: &str,
        scopes: Option<&ScopeSet>,
    ) -> Result<(), StoreError> {
        self.retrying("allow_client_resource", move || async move {
            let txn = self.db.begin().await?;
            allow_link(&txn, client_id, identifier, scopes).await?;
            // What the client may do is part of its record: its version moves.
            client::Entity::update_many()
                .col_expr(client::Column::Version, next_version())
                .filter(client::Column::Id.eq(client_id))
                .exec(&txn)
                .await?;
            changes::record(&txn, ChangeKind::Client, client_id).await?;
            txn.commit().await?;
            Ok(())
        })
        .await
    }

    /// Takes the permission away (and the default, if it was this resource). Tokens already
    /// issued keep their audience until they expire or are revoked. `false` if there was none.
    pub async fn disallow_client_resource(
        &self,
        client_id: &str,
        identifier: &str,
    ) -> Result<bool, StoreError> {
        self.retrying("disallow_client_resource", move || async move {
            let txn = self.db.begin().await?;
            let removed = client_resource::Entity::delete_many()
                .filter(client_resource::Column::ClientId.eq(client_id))
                .filter(client_resource::Column::Resource.eq(identifier))
                .exec(&txn)
                .await?
                .rows_affected;
            client::Entity::update_many()
                .col_expr(
                    client::Column::DefaultResource,
                    Expr::value(Option::<String>::None),
                )
                .filter(client::Column::Id.eq(client_id))
                .filter(client::Column::DefaultResource.eq(identifier))
                .exec(&txn)
                .await?;
            if removed > 0 {
                client::Entity::update_many()
                    .col_expr(client::Column::Version, next_version())
                    .filter(client::Column::Id.eq(client_id))
                    .exec(&txn)
                    .await?;
            }
            changes::record(&txn, ChangeKind::Client, client_id).await?;
            txn.commit().await?;
            Ok(removed > 0)
        })
        .await
    }

    /// Sets or clears the resource used when `client_id` names none. The caller checks that
    /// the client is allowed it. `false` if the client is unknown.
    pub async fn set_default_resource(
        &self,
        client_id: &str,
        identifier: Option<&str>,
        now: i64,
    ) -> Result<bool, StoreError> {
        let update = client::Entity::update_many()
            .col_expr(
                client::Column::DefaultResource,
                Expr::value(identifier.map(str::to_owned)),
            )
            .col_expr(client::Column::Version, next_version())
            .col_expr(client::Column::UpdatedAt, Expr::value(now))
            .filter(client::Column::Id.eq(client_id));
        Ok(self
            .write_logged(
                "set_default_resource",
                update,
                ChangeKind::Client,
                client_id,
            )
            .await?
            > 0)
    }

    /// What `client_id` may do with resources. A default that is no longer allowed is
    /// dropped, so it can never widen what the client gets.
    pub(crate) async fn resource_access(
        &self,
        client_id: &str,
        default: Option<String>,
    ) -> Result<ResourceAccess, StoreError> {
        let links = client_resource::Entity::find()
            .filter(client_resource::Column::ClientId.eq(client_id))
            .find_also_related(resource::Entity)
            .order_by_asc(client_resource::Column::Resource)
            .all(&self.db)
            .await?;
        let allowed: Vec<AllowedResource> = links
            .into_iter()
            .filter_map(|(link, resource)| {
                let resource = resource?;
                let defined = ScopeSet::from_stored(&resource.scopes);
                let scopes = match &link.scopes {
                    Some(scopes) => ScopeSet::from_stored(scopes).intersection(&defined),
                    None => defined,
                };
                Some(AllowedResource {
                    identifier: link.resource,
                    name: resource.name,
                    scopes,
                })
            })
            .collect();
        let introspects_for = resource_introspector::Entity::find()
            .filter(resource_introspector::Column::ClientId.eq(client_id))
            .order_by_asc(resource_introspector::Column::Resource)
            .all(&self.db)
            .await?
            .into_iter()
            .map(|row| row.resource)
            .collect();
        let default = default.filter(|d| allowed.iter().any(|r| &r.identifier == d));
        Ok(ResourceAccess {
            allowed,
            default,
            introspects_for,
        })
    }

    async fn with_links(&self, row: resource::Model) -> Result<Resource, StoreError> {
        let introspectors = resource_introspector::Entity::find()
            .filter(resource_introspector::Column::Resource.eq(row.identifier.clone()))
            .order_by_asc(resource_introspector::Column::ClientId)
            .all(&self.db)
            .await?
            .into_iter()
            .map(|link| link.client_id)
            .collect();
        let clients = client_resource::Entity::find()
            .filter(client_resource::Column::Resource.eq(row.identifier.clone()))
            .order_by_asc(client_resource::Column::ClientId)
            .all(&self.db)
            .await?
            .into_iter()
            .map(|link| {
                let scopes = link.scopes.as_deref().map(ScopeSet::from_stored);
                (link.client_id, scopes)
            })
            .collect();
        Ok(Resource {
            identifier: row.identifier,
            name: row.name,
            scopes: ScopeSet::from_stored(&row.scopes),
            introspectors,
            clients,
            version: row.version,
        })
    }
}

/// Rows revoked per statement.
const REVOKE_BATCH: usize = 500;

/// Revokes the grants whose audience names `identifier`, and the access tokens that do (an
/// exchanged token has its own audience, narrower than its grant's). Audiences are
/// space-separated, so `LIKE` only narrows the scan and the exact check is made here. A rare
/// administrative step: no index serves it, and none is worth keeping for it.
async fn revoke_audience<C: ConnectionTrait>(
    db: &C,
    identifier: &str,
    now: i64,
) -> Result<(), StoreError> {
    let pattern = format!("%{}%", escape_like(identifier));
    let names_it = |stored: &str| Audience::from_stored(stored).contains(identifier);
    let grants: Vec<Uuid> = grant::Entity::find()
        .filter(grant::Column::RevokedAt.is_null())
        .filter(grant::Column::Audience.like(LikeExpr::new(pattern.clone()).escape('\\')))
        .all(db)
        .await?
        .into_iter()
        .filter(|g| names_it(&g.audience))
        .map(|g| g.id)
        .collect();
    for batch in grants.chunks(REVOKE_BATCH) {
        grant::Entity::update_many()
            .col_expr(grant::Column::RevokedAt, Expr::value(now))
            .filter(grant::Column::Id.is_in(batch.iter().copied()))
            .exec(db)
            .await?;
    }
    let tokens: Vec<Vec<u8>> = access_token::Entity::find()
        .filter(access_token::Column::RevokedAt.is_null())
        .filter(access_token::Column::Audience.like(LikeExpr::new(pattern).escape('\\')))
        .all(db)
        .await?
        .into_iter()
        .filter(|t| names_it(&t.audience))
        .map(|t| t.hash)
        .collect();
    for batch in tokens.chunks(REVOKE_BATCH) {
        access_token::Entity::update_many()
            .col_expr(access_token::Column::RevokedAt, Expr::value(now))
            .filter(access_token::Column::Hash.is_in(batch.iter().cloned()))
            .exec(db)
            .await?;
    }
    Ok(())
}

/// `raw` as a literal inside a `LIKE` pattern escaped with `\`: URIs often hold `_`.
pub(super) fn escape_like(raw: &str) -> String {
    let mut escaped = String::with_capacity(raw.len());
    for c in raw.chars() {
        if matches!(c, '%' | '_' | '\\') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

async fn insert_introspectors<C: ConnectionTrait>(
    db: &C,
    identifier: &str,
    clients: &[String],
) -> Result<(), StoreError> {
    if clients.is_empty() {
        return Ok(());
    }
    resource_introspector::Entity::insert_many(clients.iter().map(|client_id| {
        resource_introspector::ActiveModel {
            resource: Set(identifier.to_owned()),
            client_id: Set(client_id.clone()),
        }
    }))
    .on_conflict_do_nothing()
    .exec_without_returning(db)
    .await?;
    Ok(())
}

/// The link behind [`Store::allow_client_resource`], on any connection so that registering a
/// client can write it in the same transaction.
pub(super) async fn allow_link<C: ConnectionTrait>(
    db: &C,
    client_id: &str,
    identifier: &str,
    scopes: Option<&ScopeSet>,
) -> Result<(), StoreError> {
    client_resource::Entity::insert(client_resource::ActiveModel {
        resource: Set(identifier.to_owned()),
        client_id: Set(client_id.to_owned()),
        scopes: Set(scopes.map(ToString::to_string)),
    })
    .on_conflict(
        OnConflict::columns([
            client_resource::Column::Resource,
            client_resource::Column::ClientId,
        ])
        .update_column(client_resource::Column::Scopes)
        .to_owned(),
    )
    .exec_without_returning(db)
    .await?;
    Ok(())
}
