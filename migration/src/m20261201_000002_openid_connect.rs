//! OpenID Connect: what an ID token says about the sign-in behind a grant, a profile for users,
//! and what a client registers for ID tokens and logout.
//!
//! - `grants`: `auth_time`, `amr`, `acr` and `sid` of the sign-in that approved the grant, and
//!   the `nonce` of its authentication request, so that every ID token of the grant (at code
//!   redemption and at each refresh) repeats them (OpenID Connect Core §2, §12.2). NULL for
//!   grants from before this migration and for client_credentials grants.
//! - `users`: an optional display `name`, and whether the existing `email` column (the
//!   profile address, which nothing used before; a second factor's address lives on the factor)
//!   is verified.
//! - `clients`: `id_token_signed_response_alg` (NULL: the server's default algorithm) and the
//!   registered `post_logout_redirect_uris` (a JSON array, like `redirect_uris`).
//!
//! Expand-only: every new column may be NULL or has a default, so that a running older
//! version keeps working while this applies.
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// Longest `nonce` kept (the authorization request refuses longer ones).
const NONCE_LEN: u32 = 512;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // SQLite adds one column per ALTER TABLE.
        let add = |table: DynIden, column: ColumnDef| {
            Table::alter().table(table).add_column(column).to_owned()
        };
        for statement in [
            add(
                Grants::Table.into_iden(),
                big_integer_null(Grants::AuthTime),
            ),
            add(Grants::Table.into_iden(), string_len_null(Grants::Amr, 64)),
            add(Grants::Table.into_iden(), string_len_null(Grants::Acr, 32)),
            add(Grants::Table.into_iden(), string_len_null(Grants::Sid, 64)),
            add(
                Grants::Table.into_iden(),
                string_len_null(Grants::Nonce, NONCE_LEN),
            ),
            add(Users::Table.into_iden(), string_null(Users::Name)),
            add(
                Users::Table.into_iden(),
                boolean(Users::EmailVerified).default(false).to_owned(),
            ),
            add(
                Clients::Table.into_iden(),
                string_len_null(Clients::IdTokenSignedResponseAlg, 16),
            ),
            add(
                Clients::Table.into_iden(),
                text(Clients::PostLogoutRedirectUris)
                    .default("[]")
                    .to_owned(),
            ),
        ] {
            manager.alter_table(statement).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let drop = |table: DynIden, column: DynIden| {
            Table::alter().table(table).drop_column(column).to_owned()
        };
        for statement in [
            drop(
                Clients::Table.into_iden(),
                Clients::PostLogoutRedirectUris.into_iden(),
            ),
            drop(
                Clients::Table.into_iden(),
                Clients::IdTokenSignedResponseAlg.into_iden(),
            ),
            drop(Users::Table.into_iden(), Users::EmailVerified.into_iden()),
            drop(Users::Table.into_iden(), Users::Name.into_iden()),
            drop(Grants::Table.into_iden(), Grants::Nonce.into_iden()),
            drop(Grants::Table.into_iden(), Grants::Sid.into_iden()),
            drop(Grants::Table.into_iden(), Grants::Acr.into_iden()),
            drop(Grants::Table.into_iden(), Grants::Amr.into_iden()),
            drop(Grants::Table.into_iden(), Grants::AuthTime.into_iden()),
        ] {
            manager.alter_table(statement).await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum Grants {
    Table,
    AuthTime,
    Amr,
    Acr,
    Sid,
    Nonce,
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Name,
    EmailVerified,
}

#[derive(DeriveIden)]
enum Clients {
    Table,
    IdTokenSignedResponseAlg,
    PostLogoutRedirectUris,
}
