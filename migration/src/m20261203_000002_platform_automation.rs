//! Platform automation (admin API, dynamic client registration, operator console):
//! - `clients.version`, `users.version`: a counter every change of the row moves, the `ETag`
//!   of the admin API (`If-Match` updates are one conditional UPDATE on it);
//! - `clients.registration_token_hash`: SHA-256 of the RFC 7592 registration access token of a
//!   client registered dynamically; `clients.client_secret_expires_at` (RFC 7591 §3.2.1, NULL
//!   or 0: never);
//! - `users.admin`: the operator-console role, granted through the CLI;
//! - `audit_events.actor`: who made an administrative change (`client:<id>` for the admin
//!   API, `user:<name>` for the console, `cli`);
//! - `registration_tokens`: the initial access tokens (RFC 7591 §3) an operator hands out,
//!   stored as hashes with their use count.
//!
//! Expand-only: columns with defaults or nullable and a new table, so that a running older
//! version keeps working while this applies.
use crate::helpers::{drop_tables, index};
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// SHA-256.
const HASH_LEN: u32 = 32;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite adds one at a time.
        let columns = [
            (
                Clients::Table.into_iden(),
                big_integer(Clients::Version).default(1).to_owned(),
            ),
            (
                Clients::Table.into_iden(),
                binary_len_null(Clients::RegistrationTokenHash, HASH_LEN),
            ),
            (
                Clients::Table.into_iden(),
                big_integer_null(Clients::ClientSecretExpiresAt),
            ),
            (
                Users::Table.into_iden(),
                big_integer(Users::Version).default(1).to_owned(),
            ),
            (
                Users::Table.into_iden(),
                boolean(Users::Admin).default(false).to_owned(),
            ),
            (
                AuditEvents::Table.into_iden(),
                string_len_null(AuditEvents::Actor, 300),
            ),
        ];
        for (table, mut column) in columns {
            manager
                .alter_table(
                    Table::alter()
                        .table(table)
                        .add_column(&mut column)
                        .to_owned(),
                )
                .await?;
        }
        for column in [AuditEvents::ClientId, AuditEvents::Event] {
            manager
                .create_index(index(AuditEvents::Table, column))
                .await?;
        }
        manager
            .create_table(
                Table::create()
                    .table(RegistrationTokens::Table)
                    .col(uuid(RegistrationTokens::Id).primary_key())
                    .col(binary_len(RegistrationTokens::TokenHash, HASH_LEN).unique_key())
                    .col(string_len_null(RegistrationTokens::Description, 200))
                    .col(integer(RegistrationTokens::MaxUses))
                    .col(integer(RegistrationTokens::Uses).default(0))
                    .col(big_integer(RegistrationTokens::ExpiresAt))
                    .col(big_integer(RegistrationTokens::CreatedAt))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        drop_tables(manager, [RegistrationTokens::Table.into_iden()]).await?;
        for (table, column) in [
            (
                AuditEvents::Table.into_iden(),
                AuditEvents::Actor.into_iden(),
            ),
            (Users::Table.into_iden(), Users::Admin.into_iden()),
            (Users::Table.into_iden(), Users::Version.into_iden()),
            (
                Clients::Table.into_iden(),
                Clients::ClientSecretExpiresAt.into_iden(),
            ),
            (
                Clients::Table.into_iden(),
                Clients::RegistrationTokenHash.into_iden(),
            ),
            (Clients::Table.into_iden(), Clients::Version.into_iden()),
        ] {
            manager
                .alter_table(Table::alter().table(table).drop_column(column).to_owned())
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum Clients {
    Table,
    Version,
    RegistrationTokenHash,
    ClientSecretExpiresAt,
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Version,
    Admin,
}

#[derive(DeriveIden)]
enum AuditEvents {
    Table,
    Actor,
    ClientId,
    Event,
}

#[derive(DeriveIden)]
enum RegistrationTokens {
    Table,
    Id,
    TokenHash,
    Description,
    MaxUses,
    Uses,
    ExpiresAt,
    CreatedAt,
}
