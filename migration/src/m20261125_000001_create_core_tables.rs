//! The whole core schema: clients, users, grants (token families), access and refresh tokens,
//! authorization codes and consents. Times are Unix seconds; token rows are keyed by the
//! 32-byte SHA-256 of the token string.
use crate::helpers::{cascade, drop_tables, index};
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
                    .table(Clients::Table)
                    .col(string(Clients::Id).primary_key())
                    .col(string(Clients::Name))
                    .col(binary_len_null(Clients::SecretHash, HASH_LEN))
                    .col(text(Clients::RedirectUris))
                    .col(text(Clients::GrantTypes))
                    .col(text(Clients::Scopes))
                    .col(boolean(Clients::CanIntrospect))
                    .col(boolean(Clients::SkipConsent))
                    .col(boolean(Clients::Require2fa))
                    .col(big_integer(Clients::CreatedAt))
                    .col(big_integer(Clients::UpdatedAt))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Users::Table)
                    .col(pk_uuid(Users::Id))
                    .col(string(Users::Username))
                    .col(string_uniq(Users::UsernameNormalized))
                    .col(string(Users::PasswordHash))
                    .col(string_null(Users::Email))
                    .col(string_null(Users::Phone))
                    .col(boolean(Users::Disabled))
                    .col(big_integer(Users::CreatedAt))
                    .col(big_integer(Users::UpdatedAt))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Grants::Table)
                    .col(pk_uuid(Grants::Id))
                    .col(string(Grants::ClientId))
                    .col(uuid_null(Grants::UserId))
                    .col(string(Grants::GrantType))
                    .col(text(Grants::Scope))
                    .col(big_integer(Grants::CreatedAt))
                    .col(big_integer(Grants::ExpiresAt))
                    .col(big_integer_null(Grants::RevokedAt))
                    .foreign_key(&mut cascade(
                        Grants::Table,
                        Grants::ClientId,
                        Clients::Table,
                        Clients::Id,
                    ))
                    .foreign_key(&mut cascade(
                        Grants::Table,
                        Grants::UserId,
                        Users::Table,
                        Users::Id,
                    ))
                    .to_owned(),
            )
            .await?;
        for column in [
            Grants::ClientId,
            Grants::UserId,
            Grants::ExpiresAt,
            Grants::RevokedAt,
        ] {
            manager.create_index(index(Grants::Table, column)).await?;
        }

        for (table, rotated) in [
            (TokenTable::AccessTokens, false),
            (TokenTable::RefreshTokens, true),
        ] {
            let mut create = Table::create();
            create
                .table(table)
                .col(binary_len(Token::Hash, HASH_LEN).primary_key())
                .col(uuid(Token::GrantId))
                .col(string(Token::ClientId))
                .col(text(Token::Scope))
                .col(big_integer(Token::IssuedAt))
                .col(big_integer(Token::ExpiresAt));
            if rotated {
                create.col(big_integer_null(Token::RotatedAt));
            }
            create
                .col(big_integer_null(Token::RevokedAt))
                .foreign_key(&mut cascade(
                    table,
                    Token::GrantId,
                    Grants::Table,
                    Grants::Id,
                ));
            manager.create_table(create.to_owned()).await?;
            for column in [Token::GrantId, Token::ExpiresAt] {
                manager.create_index(index(table, column)).await?;
            }
        }

        manager
            .create_table(
                Table::create()
                    .table(TokenTable::AuthorizationCodes)
                    .col(binary_len(Token::Hash, HASH_LEN).primary_key())
                    .col(uuid(Token::GrantId))
                    .col(string(Token::ClientId))
                    .col(uuid(Code::UserId))
                    .col(text_null(Code::RedirectUri))
                    .col(text(Token::Scope))
                    .col(string_null(Code::CodeChallenge))
                    .col(big_integer(Token::IssuedAt))
                    .col(big_integer(Token::ExpiresAt))
                    .col(big_integer_null(Code::ConsumedAt))
                    .foreign_key(&mut cascade(
                        TokenTable::AuthorizationCodes,
                        Token::GrantId,
                        Grants::Table,
                        Grants::Id,
                    ))
                    .to_owned(),
            )
            .await?;
        for column in [Token::GrantId, Token::ExpiresAt] {
            manager
                .create_index(index(TokenTable::AuthorizationCodes, column))
                .await?;
        }

        manager
            .create_table(
                Table::create()
                    .table(Consents::Table)
                    .col(uuid(Consents::UserId))
                    .col(string(Consents::ClientId))
                    .col(text(Consents::Scope))
                    .col(big_integer(Consents::CreatedAt))
                    .col(big_integer(Consents::UpdatedAt))
                    .primary_key(
                        Index::create()
                            .col(Consents::UserId)
                            .col(Consents::ClientId),
                    )
                    .foreign_key(&mut cascade(
                        Consents::Table,
                        Consents::UserId,
                        Users::Table,
                        Users::Id,
                    ))
                    .foreign_key(&mut cascade(
                        Consents::Table,
                        Consents::ClientId,
                        Clients::Table,
                        Clients::Id,
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(Consents::Table, Consents::ClientId))
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        drop_tables(
            manager,
            [
                Consents::Table.into_iden(),
                TokenTable::AuthorizationCodes.into_iden(),
                TokenTable::RefreshTokens.into_iden(),
                TokenTable::AccessTokens.into_iden(),
                Grants::Table.into_iden(),
                Users::Table.into_iden(),
                Clients::Table.into_iden(),
            ],
        )
        .await
    }
}

#[derive(DeriveIden)]
enum Clients {
    Table,
    Id,
    Name,
    SecretHash,
    RedirectUris,
    GrantTypes,
    Scopes,
    CanIntrospect,
    SkipConsent,
    #[sea_orm(iden = "require_2fa")]
    Require2fa,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
    Username,
    UsernameNormalized,
    PasswordHash,
    Email,
    Phone,
    Disabled,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Grants {
    Table,
    Id,
    ClientId,
    UserId,
    GrantType,
    Scope,
    CreatedAt,
    ExpiresAt,
    RevokedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum TokenTable {
    AccessTokens,
    RefreshTokens,
    AuthorizationCodes,
}

/// Columns shared by the access-token, refresh-token and authorization-code tables.
#[derive(DeriveIden)]
enum Token {
    Hash,
    GrantId,
    ClientId,
    Scope,
    IssuedAt,
    ExpiresAt,
    RotatedAt,
    RevokedAt,
}

/// Columns of the authorization-code table only.
#[derive(DeriveIden)]
#[allow(clippy::enum_variant_names)]
enum Code {
    UserId,
    RedirectUri,
    CodeChallenge,
    ConsumedAt,
}

#[derive(DeriveIden)]
enum Consents {
    Table,
    UserId,
    ClientId,
    Scope,
    CreatedAt,
    UpdatedAt,
}
