//! Resources (the APIs tokens are for, RFC 8707), which clients may introspect for them and
//! which clients may ask for them; the audience of grants, access tokens and consents; the actor chain
//! of exchanged tokens (RFC 8693); and what the refresh retry window needs to know about a
//! refresh token's parent and successors.
//!
//! Expand-only: new tables, and new columns that have defaults or may be NULL, so that a
//! running older version keeps working while this applies. Tokens issued before it have an
//! empty audience, which means "no audience" (see `introspection.require_audience`).
use crate::helpers::{cascade, drop_tables, index};
use sea_orm_migration::{prelude::*, schema::*};

const HASH_LEN: u32 = 32;
/// Longest resource identifier accepted (an absolute URI).
const RESOURCE_LEN: u32 = 512;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Resources::Table)
                    .col(string_len(Resources::Identifier, RESOURCE_LEN).primary_key())
                    .col(string(Resources::Name))
                    .col(text(Resources::Scopes))
                    .col(big_integer(Resources::CreatedAt))
                    .col(big_integer(Resources::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        for (table, with_scopes) in [
            (Links::ResourceIntrospectors, false),
            (Links::ClientResources, true),
        ] {
            let mut create = Table::create();
            create
                .table(table)
                .col(string_len(Link::Resource, RESOURCE_LEN))
                .col(string(Link::ClientId));
            if with_scopes {
                // NULL: every scope the resource defines, as it changes.
                create.col(text_null(Link::Scopes));
            }
            create
                .primary_key(Index::create().col(Link::Resource).col(Link::ClientId))
                .foreign_key(&mut cascade(
                    table,
                    Link::Resource,
                    Resources::Table,
                    Resources::Identifier,
                ))
                .foreign_key(&mut cascade(
                    table,
                    Link::ClientId,
                    Clients::Table,
                    Clients::Id,
                ));
            manager.create_table(create.to_owned()).await?;
            manager.create_index(index(table, Link::ClientId)).await?;
        }

        // SQLite adds one column per ALTER TABLE.
        let add = |table: DynIden, column: ColumnDef| {
            Table::alter().table(table).add_column(column).to_owned()
        };
        for statement in [
            add(
                Clients::Table.into_iden(),
                string_len_null(Clients::DefaultResource, RESOURCE_LEN),
            ),
            add(
                Grants::Table.into_iden(),
                text(Grants::Audience).default("").to_owned(),
            ),
            add(
                TokenTable::AccessTokens.into_iden(),
                text(Grants::Audience).default("").to_owned(),
            ),
            add(
                Consents::Table.into_iden(),
                text(Grants::Audience).default("").to_owned(),
            ),
            add(
                TokenTable::AccessTokens.into_iden(),
                text_null(TokenTable::Act),
            ),
            add(
                TokenTable::RefreshTokens.into_iden(),
                binary_len_null(TokenTable::ParentHash, HASH_LEN),
            ),
            add(
                TokenTable::RefreshTokens.into_iden(),
                big_integer_null(TokenTable::SuccessorUsedAt),
            ),
        ] {
            manager.alter_table(statement).await?;
        }
        manager
            .create_index(index(TokenTable::RefreshTokens, TokenTable::ParentHash))
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name("idx_refresh_tokens_parent_hash")
                    .table(TokenTable::RefreshTokens)
                    .to_owned(),
            )
            .await?;
        let drop = |table: DynIden, column: DynIden| {
            Table::alter().table(table).drop_column(column).to_owned()
        };
        for statement in [
            drop(
                TokenTable::RefreshTokens.into_iden(),
                TokenTable::SuccessorUsedAt.into_iden(),
            ),
            drop(
                TokenTable::RefreshTokens.into_iden(),
                TokenTable::ParentHash.into_iden(),
            ),
            drop(
                TokenTable::AccessTokens.into_iden(),
                TokenTable::Act.into_iden(),
            ),
            drop(
                TokenTable::AccessTokens.into_iden(),
                Grants::Audience.into_iden(),
            ),
            drop(Consents::Table.into_iden(), Grants::Audience.into_iden()),
            drop(Grants::Table.into_iden(), Grants::Audience.into_iden()),
            drop(
                Clients::Table.into_iden(),
                Clients::DefaultResource.into_iden(),
            ),
        ] {
            manager.alter_table(statement).await?;
        }
        drop_tables(
            manager,
            [
                Links::ClientResources.into_iden(),
                Links::ResourceIntrospectors.into_iden(),
                Resources::Table.into_iden(),
            ],
        )
        .await
    }
}

#[derive(DeriveIden)]
enum Resources {
    Table,
    Identifier,
    Name,
    Scopes,
    CreatedAt,
    UpdatedAt,
}

/// The two link tables between resources and clients.
#[derive(DeriveIden, Clone, Copy)]
enum Links {
    /// Clients that may introspect tokens meant for the resource.
    ResourceIntrospectors,
    /// Clients that may ask for tokens for the resource, and with which scopes.
    ClientResources,
}

#[derive(DeriveIden)]
enum Link {
    Resource,
    ClientId,
    Scopes,
}

#[derive(DeriveIden)]
enum Clients {
    Table,
    Id,
    DefaultResource,
}

#[derive(DeriveIden)]
enum Grants {
    Table,
    Audience,
}

#[derive(DeriveIden)]
enum Consents {
    Table,
}

#[derive(DeriveIden, Clone, Copy)]
enum TokenTable {
    AccessTokens,
    RefreshTokens,
    Act,
    ParentHash,
    SuccessorUsedAt,
}
