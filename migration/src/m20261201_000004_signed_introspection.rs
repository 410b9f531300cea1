//! Signed introspection answers (RFC 9701): the algorithm a resource server registered for
//! them (client metadata `introspection_signed_response_alg`, RFC 9701 §6). NULL: the client
//! gets RFC 7662 JSON only.
//!
//! Expand-only: a nullable column, so that a running older version keeps working while this
//! applies (it neither reads nor writes it).
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Clients::Table)
                    .add_column(string_len_null(Clients::IntrospectionSignedResponseAlg, 16))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Clients::Table)
                    .drop_column(Clients::IntrospectionSignedResponseAlg)
                    .to_owned(),
            )
            .await
    }
}

#[derive(DeriveIden)]
enum Clients {
    Table,
    IntrospectionSignedResponseAlg,
}
