//! `private_key_jwt` client authentication (RFC 7523 §2.2, OpenID Connect Core §9): the public
//! keys a client registers, inline (`jwks`, a JWK Set) or by URL (`jwks_uri`), and the `jti`s
//! of the client assertions already used, so that an assertion is accepted once across every
//! instance until it expires.
//!
//! Expand-only: two nullable columns and a new table, so that a running older version keeps
//! working while this applies (it neither reads nor writes them; a client with keys has no
//! secret, so the older version refuses it, which is safe).
use crate::helpers::{cascade, index};
use sea_orm_migration::{prelude::*, schema::*};

/// SHA-256 of the client id and the `jti`.
const HASH_LEN: u32 = 32;
/// Longest `jwks_uri` accepted.
const URI_LEN: u32 = 2048;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // SQLite adds one column per ALTER TABLE.
        for column in [
            text_null(Clients::Jwks),
            string_len_null(Clients::JwksUri, URI_LEN),
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Clients::Table)
                        .add_column(column)
                        .to_owned(),
                )
                .await?;
        }
        manager
            .create_table(
                Table::create()
                    .table(UsedClientAssertions::Table)
                    .col(binary_len(UsedClientAssertions::JtiHash, HASH_LEN).primary_key())
                    .col(string(UsedClientAssertions::ClientId))
                    .col(big_integer(UsedClientAssertions::ExpiresAt))
                    .foreign_key(&mut cascade(
                        UsedClientAssertions::Table,
                        UsedClientAssertions::ClientId,
                        Clients::Table,
                        Clients::Id,
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                UsedClientAssertions::Table,
                UsedClientAssertions::ExpiresAt,
            ))
            .await?;
        manager
            .create_index(index(
                UsedClientAssertions::Table,
                UsedClientAssertions::ClientId,
            ))
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(UsedClientAssertions::Table).to_owned())
            .await?;
        for column in [Clients::JwksUri, Clients::Jwks] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Clients::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum Clients {
    Table,
    Id,
    Jwks,
    JwksUri,
}

#[derive(DeriveIden)]
enum UsedClientAssertions {
    Table,
    JtiHash,
    ClientId,
    ExpiresAt,
}
