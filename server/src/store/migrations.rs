//! Applying migrations as a job, and the schema-version check `serve` makes at start-up.
//!
//! One process at a time migrates: it holds the `migrations` lease (a row, see
//! [`super::leases`]) and renews it while the migrations run; the others wait for it, up to
//! `database.migration_wait_secs`, then find nothing left to do. SeaORM's migrator takes no
//! lock of its own: it reads the pending list once and applies each migration (in its own
//! transaction on Postgres, none on SQLite), so two of them at once would apply the same
//! migration twice and one would fail half-way.
use super::connect::connect;
use super::leases::{Holder, Lease};
use super::{Store, StoreError};
use crate::settings::DatabaseSettings;
use migration::{Migrator, MigratorTrait, SchemaManager, create_leases_table, seaql_migrations};
use sea_orm::{ConnectionTrait, DatabaseConnection, EntityTrait};
use std::collections::HashSet;
use std::time::{Duration, Instant};

/// The lease of the process that migrates.
const MIGRATION_LEASE: &str = "migrations";
/// How long the lease outlives its holder's last renewal: a crashed migrator blocks the
/// others this long at most (its Postgres transaction has rolled back by then).
const MIGRATION_LEASE_SECS: i64 = 30;
/// How often a waiting process asks again.
const MIGRATION_POLL: Duration = Duration::from_millis(250);

/// Applies Umbra's pending migrations, under the `migrations` lease.
pub async fn migrate(settings: &DatabaseSettings) -> Result<(), StoreError> {
    migrate_with::<Migrator>(settings).await
}

/// Applies the pending migrations of `M` (Umbra's own [`Migrator`], or a superset of it in
/// tests) under the `migrations` lease: creates the lease table if needed, waits for the lease
/// up to `migration_wait_secs`, renews it while the migrations run, releases it after.
/// Refuses a database with migrations `M` does not know (see [`check_schema`]).
pub async fn migrate_with<M: MigratorTrait>(settings: &DatabaseSettings) -> Result<(), StoreError> {
    let mut small = settings.clone();
    // One connection for the migrations, one to renew the lease while a migration holds the
    // first in a transaction.
    small.max_connections = 2;
    small.min_connections = 1;
    let db = connect(&small).await?;
    let result = migrate_on::<M>(&db, settings).await;
    let closed = db.close().await;
    result?;
    closed?;
    Ok(())
}

async fn migrate_on<M: MigratorTrait>(
    db: &DatabaseConnection,
    settings: &DatabaseSettings,
) -> Result<(), StoreError> {
    create_lease_table(db).await?;
    let lease = Lease::new(
        Store::new(db.clone()),
        MIGRATION_LEASE,
        Holder::generate(),
        MIGRATION_LEASE_SECS,
    );
    take_within(&lease, Duration::from_secs(settings.migration_wait_secs)).await?;
    let applied = {
        let _renewal = lease.keep_renewed();
        apply::<M>(db, settings.allow_newer_schema).await
    };
    let released = lease.release().await;
    applied?;
    released
}

/// Creates the lease table unless it exists. Several processes may run this at once: on
/// Postgres, `CREATE TABLE IF NOT EXISTS` racing another creation of the same table fails
/// (a duplicate in the catalogue) instead of doing nothing, so an error is a success when
/// the table is there afterwards.
async fn create_lease_table(db: &DatabaseConnection) -> Result<(), StoreError> {
    match db.execute(&create_leases_table()).await {
        Ok(_) => Ok(()),
        Err(err) => match SchemaManager::new(db).has_table("leases").await {
            Ok(true) => Ok(()),
            _ => Err(err.into()),
        },
    }
}

/// Waits until `lease` is taken, or fails after `wait` naming who holds it.
async fn take_within(lease: &Lease, wait: Duration) -> Result<(), StoreError> {
    let deadline = Instant::now() + wait;
    let mut announced = false;
    loop {
        let now = crate::clock::now();
        if lease.try_take(now).await? {
            return Ok(());
        }
        let holder = lease.current(now).await?;
        if Instant::now() >= deadline {
            let holder = holder.map_or_else(|| "another process".to_owned(), |(h, _)| h);
            return Err(StoreError::Setup(format!(
                "migrations are being applied by {holder} (it holds the `migrations` lease) and \
                 did not finish within database.migration_wait_secs ({} s); try again later, \
                 or raise UMBRA__DATABASE__MIGRATION_WAIT_SECS",
                wait.as_secs()
            )));
        }
        if !announced && let Some((holder, _)) = holder {
            tracing::info!(%holder, "waiting for another process to finish migrating");
            announced = true;
        }
        tokio::time::sleep(MIGRATION_POLL).await;
    }
}

/// Applies what `M` has pending, after refusing a database that is ahead of `M`.
async fn apply<M: MigratorTrait>(
    db: &DatabaseConnection,
    allow_newer_schema: bool,
) -> Result<(), StoreError> {
    let status = schema_status::<M>(db).await?;
    if !status.unknown.is_empty() {
        if !allow_newer_schema {
            return Err(newer(&status.unknown));
        }
        if status.pending.is_empty() {
            return Ok(());
        }
        // SeaORM's migrator refuses to run beside migrations it has no file for.
        return Err(StoreError::Setup(format!(
            "the database schema has migrations this Umbra does not know ({}) and lacks some it \
             needs ({}): migrate it with the newer Umbra",
            names(&status.unknown),
            names(&status.pending)
        )));
    }
    if status.pending.is_empty() {
        return Ok(());
    }
    M::up(db, None).await?;
    Ok(())
}

/// Where a database stands against a list of migrations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaStatus {
    /// Applied to the database but not in the list: a newer Umbra migrated it.
    pub unknown: Vec<String>,
    /// In the list but not applied, in the order they would be.
    pub pending: Vec<String>,
}

/// Compares the migrations recorded in the database with those of `M`. Reads only: a
/// database never migrated has everything pending.
pub async fn schema_status<M: MigratorTrait>(
    db: &DatabaseConnection,
) -> Result<SchemaStatus, StoreError> {
    let table = M::migration_table_name().to_string();
    let applied: Vec<String> = if SchemaManager::new(db).has_table(&table).await? {
        seaql_migrations::Entity::find()
            .all(db)
            .await?
            .into_iter()
            .map(|row| row.version)
            .collect()
    } else {
        Vec::new()
    };
    let known: Vec<String> = M::migrations()
        .iter()
        .map(|m| m.name().to_owned())
        .collect();
    let known_set: HashSet<&str> = known.iter().map(String::as_str).collect();
    let applied_set: HashSet<&str> = applied.iter().map(String::as_str).collect();
    Ok(SchemaStatus {
        unknown: applied
            .iter()
            .filter(|v| !known_set.contains(v.as_str()))
            .cloned()
            .collect(),
        pending: known
            .iter()
            .filter(|v| !applied_set.contains(v.as_str()))
            .cloned()
            .collect(),
    })
}

/// Refuses to serve a database whose schema this binary does not match: newer (migrations it
/// does not know, unless `allow_newer_schema`) or older (its own migrations not applied).
pub async fn check_schema(
    db: &DatabaseConnection,
    allow_newer_schema: bool,
) -> Result<(), StoreError> {
    let status = schema_status::<Migrator>(db).await?;
    if !status.unknown.is_empty() && !allow_newer_schema {
        return Err(newer(&status.unknown));
    }
    if !status.pending.is_empty() {
        return Err(StoreError::Setup(format!(
            "the database schema is older than this Umbra needs: {} migration(s) not applied \
             ({}); run `umbra migrate`",
            status.pending.len(),
            names(&status.pending)
        )));
    }
    if !status.unknown.is_empty() {
        tracing::warn!(
            unknown = %names(&status.unknown),
            "the database schema is newer than this Umbra; serving it as \
             database.allow_newer_schema says"
        );
    }
    Ok(())
}

fn newer(unknown: &[String]) -> StoreError {
    StoreError::Setup(format!(
        "the database schema is newer than this Umbra: it has migration(s) this version does \
         not know ({}); run the newer Umbra, or set database.allow_newer_schema = true \
         (UMBRA__DATABASE__ALLOW_NEWER_SCHEMA) if its release notes say this one stays \
         compatible",
        names(unknown)
    ))
}

/// Up to three names, then how many more, so that the message stays one readable line.
fn names(list: &[String]) -> String {
    const SHOWN: usize = 3;
    let mut text = list
        .iter()
        .take(SHOWN)
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join(", ");
    if list.len() > SHOWN {
        text.push_str(&format!(" and {} more", list.len() - SHOWN));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::names;

    #[test]
    fn long_lists_of_migrations_are_cut_to_three_names() {
        let list: Vec<String> = (1..=5).map(|i| format!("m{i}")).collect();
        assert_eq!(names(&list[..2]), "m1, m2");
        assert_eq!(names(&list), "m1, m2, m3 and 2 more");
    }
}
