//! Client records, and the in-process cache that keeps client authentication off the database
//! on the introspection hot path, kept current by the change log.
use super::changes::{self, ChangeKind};
use super::resources::allow_link;
use super::{Store, StoreError};
use crate::keys::SigningAlg;
use crate::oauth::client::{Client, OpenIdRegistration, is_valid_client_id};
use crate::oauth::client_jwks::{ClientJwks, ClientKeys};
use crate::oauth::grant_type::GrantType;
use crate::oauth::resource::ResourceAccess;
use crate::oauth::scope::ScopeSet;
use crate::oauth::token::TokenHash;
use entity::{client, client_resource};
use sea_orm::sea_query::{Expr, ExprTrait, OnConflict, SimpleExpr};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, QueryTrait, SqlErr, TransactionTrait,
};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

impl Store {
    /// Registers `new` as given (its id and secret hash drawn by the caller).
    pub async fn create_client(&self, new: Client, now: i64) -> Result<Client, StoreError> {
        self.create_client_with_resources(new, &[], now).await
    }

    /// Registers `new` and lets it ask tokens for each of `resources` with every scope they
    /// define, in one transaction: a resource deleted meanwhile (`Gone`) leaves no client
    /// behind whose secret was never shown. Returns the client as stored, with its resources.
    pub async fn create_client_with_resources(
        &self,
        new: Client,
        resources: &[String],
        now: i64,
    ) -> Result<Client, StoreError> {
        let row = client_row(&new, now)?;
        let (row, id) = (&row, new.id.as_str());
        self.retrying("create_client", move || async move {
            let txn = self.db.begin().await?;
            insert_client(&txn, row.clone(), id, resources).await?;
            txn.commit().await?;
            Ok(())
        })
        .await?;
        self.with_resources(new).await
    }

    /// `client` with what it may do with resources, read from the link tables.
    pub(super) async fn with_resources(&self, mut client: Client) -> Result<Client, StoreError> {
        let default = client.resources.default.take();
        client.resources = self.resource_access(&client.id, default).await?;
        Ok(client)
    }

    pub async fn find_client(&self, id: &str) -> Result<Option<Client>, StoreError> {
        if !is_valid_client_id(id) {
            return Ok(None);
        }
        let Some(row) = client::Entity::find_by_id(id.to_owned())
            .one(&self.db)
            .await?
        else {
            return Ok(None);
        };
        self.with_resources(to_client(row)?).await.map(Some)
    }

    pub async fn list_clients(&self) -> Result<Vec<Client>, StoreError> {
        let rows = client::Entity::find()
            .order_by_asc(client::Column::CreatedAt)
            .order_by_asc(client::Column::Id)
            .all(&self.db)
            .await?;
        let mut clients = Vec::with_capacity(rows.len());
        for row in rows {
            clients.push(self.with_resources(to_client(row)?).await?);
        }
        Ok(clients)
    }

    /// Deletes a client with all its grants, tokens, codes and consents. `false` if unknown.
    pub async fn delete_client(&self, id: &str) -> Result<bool, StoreError> {
        let delete = client::Entity::delete_by_id(id.to_owned());
        Ok(self
            .write_logged("delete_client", delete, ChangeKind::Client, id)
            .await?
            > 0)
    }

    /// Replaces the secret hash, and when the new secret expires (`None`: never). `false` if
    /// the client is unknown.
    pub async fn set_client_secret(
        &self,
        id: &str,
        secret_hash: TokenHash,
        secret_expires_at: Option<i64>,
        now: i64,
    ) -> Result<bool, StoreError> {
        let update = client::Entity::update_many()
            .col_expr(
                client::Column::SecretHash,
                Expr::value(secret_hash.as_bytes().to_vec()),
            )
            .col_expr(
                client::Column::ClientSecretExpiresAt,
                Expr::value(secret_expires_at),
            )
            .col_expr(client::Column::Version, next_version())
            .col_expr(client::Column::UpdatedAt, Expr::value(now))
            .filter(client::Column::Id.eq(id));
        Ok(self
            .write_logged("set_client_secret", update, ChangeKind::Client, id)
            .await?
            > 0)
    }

    /// Replaces the keys of a `private_key_jwt` client. `false` if the client is unknown or
    /// authenticates otherwise (a secret or public client is not turned into another kind).
    pub async fn set_client_keys(
        &self,
        id: &str,
        keys: &ClientKeys,
        now: i64,
    ) -> Result<bool, StoreError> {
        let (jwks, jwks_uri) = key_columns(Some(keys));
        let update = client::Entity::update_many()
            .col_expr(client::Column::Jwks, Expr::value(jwks))
            .col_expr(client::Column::JwksUri, Expr::value(jwks_uri))
            .col_expr(client::Column::Version, next_version())
            .col_expr(client::Column::UpdatedAt, Expr::value(now))
            .filter(client::Column::Id.eq(id))
            .filter(
                Condition::any()
                    .add(client::Column::Jwks.is_not_null())
                    .add(client::Column::JwksUri.is_not_null()),
            );
        Ok(self
            .write_logged("set_client_keys", update, ChangeKind::Client, id)
            .await?
            > 0)
    }
}

/// The row of a new client (version 1, no registration access token).
pub(super) fn client_row(new: &Client, now: i64) -> Result<client::ActiveModel, StoreError> {
    let redirect_uris = serde_json::to_string(&new.redirect_uris)
        .map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let (jwks, jwks_uri) = key_columns(new.assertion_keys.as_ref());
    let post_logout_redirect_uris = serde_json::to_string(&new.openid.post_logout_redirect_uris)
        .map_err(|e| StoreError::Corrupt(e.to_string()))?;
    Ok(client::ActiveModel {
        id: Set(new.id.clone()),
        name: Set(new.name.clone()),
        secret_hash: Set(new.secret_hash.map(|h| h.as_bytes().to_vec())),
        redirect_uris: Set(redirect_uris),
        grant_types: Set(join(new.grant_types.iter().map(|g| g.as_str()))),
        scopes: Set(new.scopes.to_string()),
        can_introspect: Set(new.can_introspect),
        skip_consent: Set(new.skip_consent),
        require_2fa: Set(new.require_2fa),
        default_resource: Set(new.resources.default.clone()),
        introspection_signed_response_alg: Set(new
            .introspection_signed_response_alg
            .map(|alg| alg.as_str().to_owned())),
        jwks: Set(jwks),
        jwks_uri: Set(jwks_uri),
        id_token_signed_response_alg: Set(new
            .openid
            .id_token_alg
            .map(|alg| alg.as_str().to_owned())),
        post_logout_redirect_uris: Set(post_logout_redirect_uris),
        created_at: Set(now),
        updated_at: Set(now),
        version: Set(1),
        registration_token_hash: Set(None),
        client_secret_expires_at: Set(new.secret_expires_at),
    })
}

/// Inserts a client row with its resource links and logs the change, inside the caller's
/// transaction: a resource deleted meanwhile (`Gone`) leaves no client behind whose secret
/// was never shown.
pub(super) async fn insert_client<C: ConnectionTrait>(
    txn: &C,
    row: client::ActiveModel,
    id: &str,
    resources: &[String],
) -> Result<(), StoreError> {
    match client::Entity::insert(row)
        .exec_without_returning(txn)
        .await
    {
        Ok(_) => {}
        Err(err) if matches!(err.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => {
            return Err(StoreError::Conflict(format!(
                "a client with id {id:?} already exists"
            )));
        }
        Err(err) => return Err(err.into()),
    }
    for identifier in resources {
        allow_link(txn, id, identifier, None).await?;
    }
    changes::record(txn, ChangeKind::Client, id).await?;
    Ok(())
}

/// What [`Store::replace_client`] (or `update_resource`) did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replaced {
    /// The metadata is replaced; the row's version is now `version`.
    Done {
        version: i64,
    },
    /// The row is at `current`, not at the version the caller read: someone changed it
    /// since, and nothing was written (an `If-Match` precondition failed).
    VersionMismatch {
        current: i64,
    },
    NotFound,
}

impl Store {
    /// Replaces the metadata of `client.id` with `client`'s (an admin PUT, an RFC 7592 §2.2
    /// update), and with `resources: Some(..)` its resource links: links to resources not
    /// listed go, listed ones are added with every scope, and those already there keep the
    /// scopes they had. The secret and its expiry are not touched (see
    /// [`Store::set_client_secret`]), so a stale copy cannot bring back a rotated secret.
    ///
    /// With `if_version`, the write happens only if the row is still at that version: one
    /// conditional UPDATE, so of two updates made from the same read exactly one wins and
    /// the other gets `VersionMismatch`. Every update moves the version.
    pub async fn replace_client(
        &self,
        client: &Client,
        resources: Option<&[String]>,
        if_version: Option<i64>,
        now: i64,
    ) -> Result<Replaced, StoreError> {
        self.replace_client_guarded(client, resources, if_version, None, now)
            .await
    }

    /// [`Store::replace_client`], and with `rotate: Some((presented, new))` only while the
    /// client's registration access token is still `presented`, which becomes `new` in the
    /// same write (RFC 7592 §2.2); otherwise `VersionMismatch`.
    pub(super) async fn replace_client_guarded(
        &self,
        client: &Client,
        resources: Option<&[String]>,
        if_version: Option<i64>,
        rotate: Option<(&TokenHash, &TokenHash)>,
        now: i64,
    ) -> Result<Replaced, StoreError> {
        let redirect_uris = serde_json::to_string(&client.redirect_uris)
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let post_logout_redirect_uris =
            serde_json::to_string(&client.openid.post_logout_redirect_uris)
                .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let (jwks, jwks_uri) = key_columns(client.assertion_keys.as_ref());
        let mut update = client::Entity::update_many()
            .col_expr(client::Column::Name, Expr::value(client.name.clone()))
            .col_expr(client::Column::RedirectUris, Expr::value(redirect_uris))
            .col_expr(
                client::Column::GrantTypes,
                Expr::value(join(client.grant_types.iter().map(|g| g.as_str()))),
            )
            .col_expr(
                client::Column::Scopes,
                Expr::value(client.scopes.to_string()),
            )
            .col_expr(
                client::Column::CanIntrospect,
                Expr::value(client.can_introspect),
            )
            .col_expr(
                client::Column::SkipConsent,
                Expr::value(client.skip_consent),
            )
            .col_expr(client::Column::Require2fa, Expr::value(client.require_2fa))
            .col_expr(
                client::Column::DefaultResource,
                Expr::value(client.resources.default.clone()),
            )
            .col_expr(
                client::Column::IntrospectionSignedResponseAlg,
                Expr::value(
                    client
                        .introspection_signed_response_alg
                        .map(|alg| alg.as_str().to_owned()),
                ),
            )
            .col_expr(client::Column::Jwks, Expr::value(jwks))
            .col_expr(client::Column::JwksUri, Expr::value(jwks_uri))
            .col_expr(
                client::Column::IdTokenSignedResponseAlg,
                Expr::value(
                    client
                        .openid
                        .id_token_alg
                        .map(|alg| alg.as_str().to_owned()),
                ),
            )
            .col_expr(
                client::Column::PostLogoutRedirectUris,
                Expr::value(post_logout_redirect_uris),
            )
            .col_expr(client::Column::Version, next_version())
            .col_expr(client::Column::UpdatedAt, Expr::value(now))
            .filter(client::Column::Id.eq(client.id.as_str()));
        if let Some(version) = if_version {
            update = update.filter(client::Column::Version.eq(version));
        }
        if let Some((presented, new)) = rotate {
            update = update
                .col_expr(
                    client::Column::RegistrationTokenHash,
                    Expr::value(new.as_bytes().to_vec()),
                )
                .filter(client::Column::RegistrationTokenHash.eq(presented.as_bytes().to_vec()));
        }
        let statement = update.build(self.db.get_database_backend());
        let id = client.id.as_str();
        let replaced = self
            .retrying("replace_client", || {
                let statement = statement.clone();
                async move {
                    let txn = self.db.begin().await?;
                    let affected = txn.execute_raw(statement).await?.rows_affected();
                    let current = client::Entity::find_by_id(id.to_owned())
                        .select_only()
                        .column(client::Column::Version)
                        .into_tuple::<i64>()
                        .one(&txn)
                        .await?;
                    let Some(current) = current else {
                        return Ok(Replaced::NotFound);
                    };
                    if affected == 0 {
                        return Ok(Replaced::VersionMismatch { current });
                    }
                    if let Some(resources) = resources {
                        replace_links(&txn, id, resources).await?;
                    }
                    changes::record(&txn, ChangeKind::Client, id).await?;
                    txn.commit().await?;
                    Ok(Replaced::Done { version: current })
                }
            })
            .await?;
        if matches!(replaced, Replaced::Done { .. }) {
            self.changed_here(ChangeKind::Client, id);
        }
        Ok(replaced)
    }
}

/// Makes `resources` the resources `client_id` may ask tokens for (see
/// [`Store::replace_client`]).
async fn replace_links<C: ConnectionTrait>(
    db: &C,
    client_id: &str,
    resources: &[String],
) -> Result<(), StoreError> {
    client_resource::Entity::delete_many()
        .filter(client_resource::Column::ClientId.eq(client_id))
        .filter(client_resource::Column::Resource.is_not_in(resources.iter().cloned()))
        .exec(db)
        .await?;
    for identifier in resources {
        client_resource::Entity::insert(client_resource::ActiveModel {
            resource: Set(identifier.clone()),
            client_id: Set(client_id.to_owned()),
            scopes: Set(None),
        })
        .on_conflict(
            OnConflict::columns([
                client_resource::Column::Resource,
                client_resource::Column::ClientId,
            ])
            .do_nothing()
            .to_owned(),
        )
        .exec_without_returning(db)
        .await?;
    }
    Ok(())
}

/// The `jwks` and `jwks_uri` columns of a client's keys.
fn key_columns(keys: Option<&ClientKeys>) -> (Option<String>, Option<String>) {
    match keys {
        None => (None, None),
        Some(ClientKeys::Inline(jwks)) => (Some(jwks.to_json().to_string()), None),
        Some(ClientKeys::Uri(uri)) => (None, Some(uri.clone())),
    }
}

impl Store {
    /// Sets the algorithm of the client's signed introspection answers (RFC 9701), or turns
    /// them off with `None`. `false` if the client is unknown.
    pub async fn set_introspection_signed_response_alg(
        &self,
        id: &str,
        alg: Option<SigningAlg>,
        now: i64,
    ) -> Result<bool, StoreError> {
        let update = client::Entity::update_many()
            .col_expr(
                client::Column::IntrospectionSignedResponseAlg,
                Expr::value(alg.map(|alg| alg.as_str().to_owned())),
            )
            .col_expr(client::Column::Version, next_version())
            .col_expr(client::Column::UpdatedAt, Expr::value(now))
            .filter(client::Column::Id.eq(id));
        Ok(self
            .write_logged(
                "set_introspection_signed_response_alg",
                update,
                ChangeKind::Client,
                id,
            )
            .await?
            > 0)
    }
}

/// `version + 1`: every update of a client row moves its version, so that an update made
/// with `If-Match` on an older one is refused ([`Store::replace_client`]).
pub(super) fn next_version() -> SimpleExpr {
    Expr::col(client::Column::Version).add(1)
}

fn join<'a>(items: impl Iterator<Item = &'a str>) -> String {
    items.collect::<Vec<_>>().join(" ")
}

fn to_client(row: client::Model) -> Result<Client, StoreError> {
    let corrupt = |what: &str| StoreError::Corrupt(format!("client {}: {what}", row.id));
    let secret_hash = match &row.secret_hash {
        Some(bytes) => Some(TokenHash::from_slice(bytes).ok_or_else(|| corrupt("secret hash"))?),
        None => None,
    };
    let redirect_uris: Vec<String> =
        serde_json::from_str(&row.redirect_uris).map_err(|_| corrupt("redirect_uris"))?;
    let grant_types = row
        .grant_types
        .split(' ')
        .filter(|g| !g.is_empty())
        .map(str::parse)
        .collect::<Result<Vec<GrantType>, _>>()
        .map_err(|_| corrupt("grant_types"))?;
    let scopes = ScopeSet::parse(&row.scopes).map_err(|_| corrupt("scopes"))?;
    let introspection_signed_response_alg = row
        .introspection_signed_response_alg
        .as_deref()
        .map(str::parse)
        .transpose()
        .map_err(|_| corrupt("introspection_signed_response_alg"))?;
    let assertion_keys = match (&row.jwks, &row.jwks_uri) {
        (None, None) => None,
        (Some(jwks), None) => Some(ClientKeys::Inline(
            ClientJwks::parse_registered(jwks.as_bytes()).map_err(|_| corrupt("jwks"))?,
        )),
        (None, Some(uri)) => Some(ClientKeys::Uri(uri.clone())),
        (Some(_), Some(_)) => return Err(corrupt("both jwks and jwks_uri")),
    };
    let openid = OpenIdRegistration {
        id_token_alg: row
            .id_token_signed_response_alg
            .as_deref()
            .map(str::parse)
            .transpose()
            .map_err(|_| corrupt("id_token_signed_response_alg"))?,
        post_logout_redirect_uris: serde_json::from_str(&row.post_logout_redirect_uris)
            .map_err(|_| corrupt("post_logout_redirect_uris"))?,
    };
    Ok(Client {
        id: row.id,
        name: row.name,
        secret_hash,
        redirect_uris,
        grant_types,
        scopes,
        can_introspect: row.can_introspect,
        skip_consent: row.skip_consent,
        require_2fa: row.require_2fa,
        assertion_keys,
        resources: ResourceAccess {
            default: row.default_resource,
            ..ResourceAccess::default()
        },
        introspection_signed_response_alg,
        openid,
        version: row.version,
        secret_expires_at: row.client_secret_expires_at,
    })
}

/// Client records kept in memory, so that client authentication stays off the database on
/// the introspection hot path. The change log ([`super::changes`]) evicts a record on every
/// instance as soon as it changes; the cache serves only while that log has been read within
/// `changes.max_staleness_ms`, and every lookup reads the store otherwise. Entries also expire
/// after `clients.cache_ttl_secs` whatever happens. Unknown ids are not cached, so a new client
/// works at once.
#[derive(Clone)]
pub struct ClientCache {
    inner: Arc<CacheInner>,
}

struct CacheInner {
    cache: Option<moka::sync::Cache<String, Arc<Client>>>,
    /// Moved by every eviction: a lookup that read the store while one ran may hold what the
    /// eviction meant to remove, and must not keep it.
    evictions: AtomicU64,
    /// When the last successful change-log poll started; `None` before the first.
    polled_at: Mutex<Option<Instant>>,
    max_staleness: Duration,
}

impl ClientCache {
    /// A cache whose entries live at most `ttl` (zero: no cache) and that serves only while the
    /// change log was polled less than `max_staleness` ago.
    pub fn new(ttl: Duration, max_staleness: Duration) -> Self {
        let cache = (!ttl.is_zero()).then(|| {
            moka::sync::Cache::builder()
                .max_capacity(10_000)
                .time_to_live(ttl)
                .build()
        });
        Self {
            inner: Arc::new(CacheInner {
                cache,
                evictions: AtomicU64::new(0),
                polled_at: Mutex::new(None),
                max_staleness,
            }),
        }
    }

    pub async fn get(&self, store: &Store, id: &str) -> Result<Option<Arc<Client>>, StoreError> {
        let Some(cache) = self.serving() else {
            return Ok(store.find_client(id).await?.map(Arc::new));
        };
        if let Some(hit) = cache.get(id) {
            return Ok(Some(hit));
        }
        let evictions = self.inner.evictions.load(Ordering::SeqCst);
        let Some(client) = store.find_client(id).await? else {
            return Ok(None);
        };
        let client = Arc::new(client);
        cache.insert(id.to_owned(), client.clone());
        // An eviction after this check runs after the insert and removes it itself.
        if self.inner.evictions.load(Ordering::SeqCst) != evictions {
            cache.invalidate(id);
        }
        Ok(Some(client))
    }

    /// The cache, if it may serve now.
    fn serving(&self) -> Option<&moka::sync::Cache<String, Arc<Client>>> {
        let fresh = self
            .since_last_poll()
            .is_some_and(|since| since <= self.inner.max_staleness);
        self.inner.cache.as_ref().filter(|_| fresh)
    }

    /// Forgets `id`: it changed, or the store has just reported it gone.
    pub fn evict(&self, id: &str) {
        self.inner.evictions.fetch_add(1, Ordering::SeqCst);
        if let Some(cache) = &self.inner.cache {
            cache.invalidate(id);
        }
    }

    /// Forgets every client (a resource changed, or changes may have been missed).
    pub fn clear(&self) {
        self.inner.evictions.fetch_add(1, Ordering::SeqCst);
        if let Some(cache) = &self.inner.cache {
            cache.invalidate_all();
        }
    }

    /// Records that a change-log poll that started at `started` has been applied.
    pub fn polled(&self, started: Instant) {
        let mut polled_at = self
            .inner
            .polled_at
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        *polled_at = Some(polled_at.map_or(started, |before| before.max(started)));
    }

    /// How long ago the last successful change-log poll started; `None` before the first.
    pub fn since_last_poll(&self) -> Option<Duration> {
        let polled_at = *self
            .inner
            .polled_at
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        polled_at.map(|at| at.elapsed())
    }

    /// Whether `id` is still registered, asked of the store (not the cache); evicts it when
    /// it is not. For failure paths that cannot tell "unknown token" from "deleted client".
    pub async fn still_registered(&self, store: &Store, id: &str) -> Result<bool, StoreError> {
        let registered = store.find_client(id).await?.is_some();
        if !registered {
            self.evict(id);
        }
        Ok(registered)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use migration::{Migrator, MigratorTrait};
    use sea_orm::{ConnectOptions, Database};

    async fn store() -> Store {
        // One connection: each in-memory SQLite connection is a database of its own.
        let mut options = ConnectOptions::new("sqlite::memory:");
        options.max_connections(1).sqlx_logging(false);
        let db = Database::connect(options).await.unwrap();
        Migrator::up(&db, None).await.unwrap();
        Store::new(db)
    }

    fn client(id: &str) -> Client {
        Client {
            id: id.into(),
            name: "Service".into(),
            secret_hash: None,
            redirect_uris: vec![],
            grant_types: vec![GrantType::ClientCredentials],
            scopes: ScopeSet::default(),
            can_introspect: false,
            skip_consent: false,
            require_2fa: false,
            assertion_keys: None,
            openid: Default::default(),
            resources: ResourceAccess::default(),
            introspection_signed_response_alg: None,
            version: 1,
            secret_expires_at: None,
        }
    }

    #[tokio::test]
    async fn a_replacement_made_from_a_stale_version_is_refused_and_every_update_moves_it() {
        let store = store().await;
        let created = store.create_client(client("svc"), 0).await.unwrap();
        assert_eq!(created.version, 1);
        let mut changed = created.clone();
        changed.name = "Renamed".into();

        let first = store.replace_client(&changed, None, Some(1), 5).await;
        let stale = store.replace_client(&changed, None, Some(1), 6).await;

        assert_eq!(first.unwrap(), Replaced::Done { version: 2 });
        assert_eq!(stale.unwrap(), Replaced::VersionMismatch { current: 2 });
        assert_eq!(
            store.find_client("svc").await.unwrap().unwrap().name,
            "Renamed"
        );
        let secret =
            crate::oauth::token::Token::generate(crate::oauth::token::TokenKind::ClientSecret)
                .unwrap();
        assert!(
            store
                .set_client_secret("svc", secret.hash(), Some(77), 7)
                .await
                .unwrap()
        );
        let stored = store.find_client("svc").await.unwrap().unwrap();
        assert_eq!((stored.version, stored.secret_expires_at), (3, Some(77)));
        let unconditional = store.replace_client(&changed, None, None, 8).await.unwrap();
        assert_eq!(unconditional, Replaced::Done { version: 4 });
        let stored = store.find_client("svc").await.unwrap().unwrap();
        assert_eq!(
            stored.secret_hash,
            Some(secret.hash()),
            "a replacement keeps the secret"
        );
        let unknown = store.replace_client(&client("nobody"), None, None, 9).await;
        assert_eq!(unknown.unwrap(), Replaced::NotFound);
    }

    #[tokio::test]
    async fn a_client_whose_resource_is_gone_is_not_registered_at_all() {
        let store = store().await;

        let created = store
            .create_client_with_resources(client("svc"), &["https://gone.example".into()], 0)
            .await;

        assert!(matches!(created, Err(StoreError::Gone(_))), "{created:?}");
        assert_eq!(store.find_client("svc").await.unwrap(), None);
    }
}
