//! Umbra's own signing keys (ID tokens, signed introspection answers): the public JWK as
//! published, and the private key encrypted with the key-encryption key of the configuration.
//! A key is published from `created_at`, signs from `activates_at` until `retired_at`, and is
//! published until `expires_at`, when everything it signed has expired.
use crate::helpers::index;
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(SigningKeys::Table)
                    .col(string_len(SigningKeys::Kid, 64).primary_key())
                    .col(string_len(SigningKeys::Alg, 16))
                    .col(text(SigningKeys::PublicJwk))
                    .col(binary(SigningKeys::PrivateKey))
                    .col(big_integer(SigningKeys::CreatedAt))
                    .col(big_integer(SigningKeys::ActivatesAt))
                    .col(big_integer_null(SigningKeys::RetiredAt))
                    .col(big_integer_null(SigningKeys::ExpiresAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(SigningKeys::Table, SigningKeys::ExpiresAt))
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(SigningKeys::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum SigningKeys {
    Table,
    Kid,
    Alg,
    PublicJwk,
    PrivateKey,
    CreatedAt,
    ActivatesAt,
    RetiredAt,
    ExpiresAt,
}
