//! The second factor: enrolled factors (TOTP secrets encrypted at rest, e-mail/SMS
//! destinations), recovery codes and one-time codes (hashed), a lockout record per user, and the
//! audit log. Times are Unix seconds, as in the core tables.
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
                    .table(UserFactors::Table)
                    .col(pk_uuid(UserFactors::Id))
                    .col(uuid(UserFactors::UserId))
                    .col(string(UserFactors::Kind))
                    .col(binary_null(UserFactors::SecretCiphertext))
                    .col(string_null(UserFactors::Destination))
                    .col(big_integer(UserFactors::CreatedAt))
                    .col(big_integer_null(UserFactors::ConfirmedAt))
                    .col(big_integer_null(UserFactors::LastUsedStep))
                    .foreign_key(&mut cascade(
                        UserFactors::Table,
                        UserFactors::UserId,
                        Users::Table,
                        Users::Id,
                    ))
                    .to_owned(),
            )
            .await?;
        // One factor of each kind per user: enrolling again replaces the unconfirmed one.
        manager
            .create_index(
                Index::create()
                    .name("idx_user_factors_user_id_kind")
                    .table(UserFactors::Table)
                    .col(UserFactors::UserId)
                    .col(UserFactors::Kind)
                    .unique()
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(RecoveryCodes::Table)
                    .col(binary_len(RecoveryCodes::Hash, HASH_LEN).primary_key())
                    .col(uuid(RecoveryCodes::UserId))
                    .col(big_integer(RecoveryCodes::CreatedAt))
                    .col(big_integer_null(RecoveryCodes::UsedAt))
                    .foreign_key(&mut cascade(
                        RecoveryCodes::Table,
                        RecoveryCodes::UserId,
                        Users::Table,
                        Users::Id,
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(RecoveryCodes::Table, RecoveryCodes::UserId))
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(OneTimeCodes::Table)
                    .col(uuid(OneTimeCodes::FactorId).primary_key())
                    .col(binary_len(OneTimeCodes::Hash, HASH_LEN))
                    .col(big_integer(OneTimeCodes::SentAt))
                    .col(big_integer(OneTimeCodes::ExpiresAt))
                    .col(integer(OneTimeCodes::Attempts))
                    .col(big_integer_null(OneTimeCodes::ConsumedAt))
                    .foreign_key(&mut cascade(
                        OneTimeCodes::Table,
                        OneTimeCodes::FactorId,
                        UserFactors::Table,
                        UserFactors::Id,
                    ))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(LoginLockouts::Table)
                    .col(uuid(LoginLockouts::UserId).primary_key())
                    .col(integer(LoginLockouts::Failures))
                    .col(big_integer(LoginLockouts::WindowStartedAt))
                    .col(big_integer_null(LoginLockouts::LockedUntil))
                    .foreign_key(&mut cascade(
                        LoginLockouts::Table,
                        LoginLockouts::UserId,
                        Users::Table,
                        Users::Id,
                    ))
                    .to_owned(),
            )
            .await?;

        // No foreign keys: the audit log outlives the users and clients it mentions.
        manager
            .create_table(
                Table::create()
                    .table(AuditEvents::Table)
                    .col(pk_uuid(AuditEvents::Id))
                    .col(big_integer(AuditEvents::At))
                    .col(string(AuditEvents::Event))
                    .col(uuid_null(AuditEvents::UserId))
                    .col(string_null(AuditEvents::Username))
                    .col(string_null(AuditEvents::ClientId))
                    .col(string_null(AuditEvents::Address))
                    .col(text_null(AuditEvents::Detail))
                    .to_owned(),
            )
            .await?;
        for column in [AuditEvents::At, AuditEvents::UserId] {
            manager
                .create_index(index(AuditEvents::Table, column))
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        drop_tables(
            manager,
            [
                AuditEvents::Table.into_iden(),
                LoginLockouts::Table.into_iden(),
                OneTimeCodes::Table.into_iden(),
                RecoveryCodes::Table.into_iden(),
                UserFactors::Table.into_iden(),
            ],
        )
        .await
    }
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum UserFactors {
    Table,
    Id,
    UserId,
    Kind,
    SecretCiphertext,
    Destination,
    CreatedAt,
    ConfirmedAt,
    LastUsedStep,
}

#[derive(DeriveIden)]
enum RecoveryCodes {
    Table,
    Hash,
    UserId,
    CreatedAt,
    UsedAt,
}

#[derive(DeriveIden)]
enum OneTimeCodes {
    Table,
    FactorId,
    Hash,
    SentAt,
    ExpiresAt,
    Attempts,
    ConsumedAt,
}

#[derive(DeriveIden)]
enum LoginLockouts {
    Table,
    UserId,
    Failures,
    WindowStartedAt,
    LockedUntil,
}

#[derive(DeriveIden)]
enum AuditEvents {
    Table,
    Id,
    At,
    Event,
    UserId,
    Username,
    ClientId,
    Address,
    Detail,
}
