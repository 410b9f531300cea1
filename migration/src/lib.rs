//! Schema migrations of Umbra, applied by `umbra migrate` or at start-up by `umbra serve`.
pub use m20261202_000003_leases::create_leases_table;
pub use sea_orm_migration::prelude::*;
/// The table where SeaORM records the applied migrations, for the schema-version check.
pub use sea_orm_migration::seaql_migrations;

mod helpers;
mod m20261125_000001_create_core_tables;
mod m20261125_000002_create_second_factor_tables;
mod m20261130_000002_add_user_security_stamp;
mod m20261130_000003_add_resources_and_audiences;
mod m20261201_000001_create_signing_keys;
mod m20261201_000002_openid_connect;
mod m20261201_000003_client_keys;
mod m20261201_000004_signed_introspection;
mod m20261202_000001_sign_in_limits;
mod m20261202_000002_change_log;
mod m20261202_000003_leases;
mod m20261203_000001_change_log_notify;
mod m20261203_000002_platform_automation;
mod m20261203_000003_resource_version;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261125_000001_create_core_tables::Migration),
            Box::new(m20261125_000002_create_second_factor_tables::Migration),
            Box::new(m20261130_000002_add_user_security_stamp::Migration),
            Box::new(m20261130_000003_add_resources_and_audiences::Migration),
            Box::new(m20261201_000001_create_signing_keys::Migration),
            Box::new(m20261201_000002_openid_connect::Migration),
            Box::new(m20261201_000003_client_keys::Migration),
            Box::new(m20261201_000004_signed_introspection::Migration),
            Box::new(m20261202_000001_sign_in_limits::Migration),
            Box::new(m20261202_000002_change_log::Migration),
            Box::new(m20261202_000003_leases::Migration),
            Box::new(m20261203_000001_change_log_notify::Migration),
            Box::new(m20261203_000002_platform_automation::Migration),
            Box::new(m20261203_000003_resource_version::Migration),
        ]
    }
}
