//! One line of the audit log: sign-ins, factor changes, recovery-code use, lockouts and token
//! revocations. Not linked to users or clients by foreign key, so it outlives them.
use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "audit_events")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub at: i64,
    /// e.g. `login.succeeded`, `factor.enabled`, `lockout`, `token.revoked`.
    pub event: String,
    pub user_id: Option<Uuid>,
    pub username: Option<String>,
    pub client_id: Option<String>,
    /// The client's IP address (the TCP peer).
    pub address: Option<String>,
    /// Which factor, which token kind, … Never a secret or a code.
    pub detail: Option<String>,
    /// Who made an administrative change: `client:<id>` (admin API), `user:<name>`
    /// (console), `cli`.
    pub actor: Option<String>,
}

impl ActiveModelBehavior for ActiveModel {}
