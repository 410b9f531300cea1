//! `resources.version`: a counter every change of the row moves, the `ETag` of the admin API's
//! resources (`If-Match` updates are one conditional UPDATE on it), as clients and users have.
//!
//! Expand-only: a column with a default, so that a running older version keeps working.
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Resources::Table)
                    .add_column(big_integer(Resources::Version).default(1))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Resources::Table)
                    .drop_column(Resources::Version)
                    .to_owned(),
            )
            .await
    }
}

#[derive(DeriveIden)]
enum Resources {
    Table,
    Version,
}
