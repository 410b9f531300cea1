//! A security stamp per user: a counter that moves whenever what proves the user changes
//! (a new password, a disabled account, removed factors, "sign out everywhere"). A browser
//! session remembers the stamp it signed in under and is signed out once they differ.
//!
//! Expand-only: a column with a default, so that a running older version keeps working (it
//! neither reads nor writes it) and sessions from before the column compare equal to 0.
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Users::Table)
                    .add_column(big_integer(Users::SecurityStamp).default(0))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Users::Table)
                    .drop_column(Users::SecurityStamp)
                    .to_owned(),
            )
            .await
    }
}

#[derive(DeriveIden)]
enum Users {
    Table,
    SecurityStamp,
}
