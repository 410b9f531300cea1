//! On Postgres, every insert into the change log sends a `NOTIFY umbra_changes` (delivered at
//! commit, once per transaction), so that instances listening read the log at once instead of
//! at their next poll. A trigger rather than a statement in each writer: nothing that writes
//! the log (the CLI, an older instance) can forget it, and it costs no extra round trip.
//!
//! Other engines get nothing: SQLite has a single writer, and the distributed engines have no
//! `NOTIFY`; their instances poll.
use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

#[derive(DeriveMigrationName)]
pub struct Migration;

const UP: &str = "\
CREATE OR REPLACE FUNCTION umbra_change_log_notify() RETURNS trigger LANGUAGE plpgsql AS $$ \
BEGIN PERFORM pg_notify('umbra_changes', ''); RETURN NULL; END $$; \
DROP TRIGGER IF EXISTS change_log_notify ON change_log; \
CREATE TRIGGER change_log_notify AFTER INSERT ON change_log \
FOR EACH STATEMENT EXECUTE FUNCTION umbra_change_log_notify();";

const DOWN: &str = "\
DROP TRIGGER IF EXISTS change_log_notify ON change_log; \
DROP FUNCTION IF EXISTS umbra_change_log_notify();";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() == DbBackend::Postgres {
            manager.get_connection().execute_unprepared(UP).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() == DbBackend::Postgres {
            manager.get_connection().execute_unprepared(DOWN).await?;
        }
        Ok(())
    }
}
