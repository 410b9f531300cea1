//! Lease rows: a named job (migrations, cleanup, key rotation) that one Umbra instance at a
//! time may run. The holder renews its row before `expires_at`; once that passes, anyone may
//! take it over, so a crashed holder blocks nobody for longer than one lease.
//!
//! A row rather than a Postgres advisory lock, which CockroachDB accepts and ignores.
//!
//! `umbra migrate` creates this table itself, before it takes the `migrations` lease (see
//! [`create_leases_table`]): the lease that guards migrations cannot come from one of them.
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.create_table(create_leases_table()).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Leases::Table).to_owned())
            .await
    }
}

/// `CREATE TABLE IF NOT EXISTS leases`: the one definition, run by this migration and by the
/// migration job before any migration (an existing table is left as it is).
pub fn create_leases_table() -> TableCreateStatement {
    Table::create()
        .table(Leases::Table)
        .if_not_exists()
        .col(string_len(Leases::Name, 64).primary_key())
        .col(string_len(Leases::Holder, 255))
        .col(big_integer(Leases::ExpiresAt))
        .to_owned()
}

#[derive(DeriveIden)]
enum Leases {
    Table,
    Name,
    Holder,
    ExpiresAt,
}
