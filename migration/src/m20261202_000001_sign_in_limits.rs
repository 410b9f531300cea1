//! Failed sign-ins per account and per client address, shared by every instance (one row per
//! key, keyed by a SHA-256 of the key, never the username or address itself; see
//! `server/src/auth/limiter.rs`). A row ends with its window; cleanup deletes it then.
//!
//! Expand-only: a new table that an older running version never reads, so this applies while
//! it keeps serving (it limits sign-ins in its own memory until it is replaced).
use crate::helpers::index;
use sea_orm_migration::{prelude::*, schema::*};

const HASH_LEN: u32 = 32;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(SignInLimits::Table)
                    .col(binary_len(SignInLimits::KeyHash, HASH_LEN).primary_key())
                    .col(integer(SignInLimits::InFlight))
                    .col(integer(SignInLimits::Failures))
                    .col(big_integer(SignInLimits::WindowEndsAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(SignInLimits::Table, SignInLimits::WindowEndsAt))
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(SignInLimits::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum SignInLimits {
    Table,
    KeyHash,
    InFlight,
    Failures,
    WindowEndsAt,
}
