//! The change log: one row per change that other instances must act on at once (a client's
//! secret rotated or its rights changed, a resource changed, a user disabled, a signing key
//! rotated), written in the transaction of the change and polled by every instance by id.
//!
//! Only the primary key is indexed: pollers read `id > n`, and retention deletes the oldest
//! rows, which sit at the start of that same index. `at` needs no index of its own (an index on
//! an ever-increasing column is a write hotspot on the distributed SQL engines, and the table
//! is small: it keeps only `cleanup.change_retention_secs` of changes).
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(ChangeLog::Table)
                    .col(big_pk_auto(ChangeLog::Id))
                    .col(string_len(ChangeLog::Kind, 32))
                    .col(string_len(ChangeLog::Subject, 255))
                    .col(big_integer(ChangeLog::At))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(ChangeLog::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum ChangeLog {
    Table,
    Id,
    Kind,
    Subject,
    At,
}
