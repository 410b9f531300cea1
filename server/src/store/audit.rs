//! The audit log: who signed in (and with which factor), who failed, factor changes,
//! recovery-code use, lockouts and token revocations.
use super::{Store, StoreError};
use entity::audit_event;
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use serde::Serialize;
use uuid::Uuid;

/// What happened. The names are stable: operators filter on them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditKind {
    LoginSucceeded,
    LoginFailed,
    SecondFactorFailed,
    FactorEnabled,
    FactorRemoved,
    FactorsReset,
    RecoveryCodesGenerated,
    RecoveryCodeUsed,
    LockedOut,
    TokenRevoked,
    /// The user ended every browser session ("sign out everywhere").
    SessionsEnded,
}

impl AuditKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::LoginSucceeded => "login.succeeded",
            Self::LoginFailed => "login.failed",
            Self::SecondFactorFailed => "login.second_factor_failed",
            Self::FactorEnabled => "factor.enabled",
            Self::FactorRemoved => "factor.removed",
            Self::FactorsReset => "factor.reset",
            Self::RecoveryCodesGenerated => "recovery_codes.generated",
            Self::RecoveryCodeUsed => "recovery_code.used",
            Self::LockedOut => "account.locked",
            Self::TokenRevoked => "token.revoked",
            Self::SessionsEnded => "sessions.ended",
        }
    }
}

/// One event to record. Never put a secret or a code in `detail`.
#[derive(Debug, Clone)]
pub struct AuditEntry {
    pub kind: AuditKind,
    pub user_id: Option<Uuid>,
    pub username: Option<String>,
    pub client_id: Option<String>,
    pub address: Option<String>,
    pub detail: Option<String>,
}

impl AuditEntry {
    pub fn new(kind: AuditKind) -> Self {
        Self {
            kind,
            user_id: None,
            username: None,
            client_id: None,
            address: None,
            detail: None,
        }
    }

    pub fn user(mut self, id: Uuid, username: &str) -> Self {
        self.user_id = Some(id);
        self.username = Some(username.to_owned());
        self
    }

    pub fn client(mut self, client_id: Option<&str>) -> Self {
        self.client_id = client_id.map(str::to_owned);
        self
    }

    pub fn address(mut self, address: Option<std::net::IpAddr>) -> Self {
        self.address = address.map(|a| a.to_string());
        self
    }

    pub fn detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }
}

/// A recorded event, as `umbra audit list` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct AuditRecord {
    pub at: i64,
    pub event: String,
    pub user_id: Option<String>,
    pub username: Option<String>,
    pub client_id: Option<String>,
    pub address: Option<String>,
    pub detail: Option<String>,
}

impl Store {
    pub async fn record_audit(&self, entry: AuditEntry, now: i64) -> Result<(), StoreError> {
        audit_event::Entity::insert(audit_event::ActiveModel {
            id: Set(Uuid::new_v4()),
            at: Set(now),
            event: Set(entry.kind.as_str().to_owned()),
            user_id: Set(entry.user_id),
            username: Set(entry.username),
            client_id: Set(entry.client_id),
            address: Set(entry.address),
            detail: Set(entry.detail),
        })
        .exec_without_returning(&self.db)
        .await?;
        Ok(())
    }

    /// The latest `limit` events, newest first, optionally of one user.
    pub async fn list_audit(
        &self,
        user_id: Option<Uuid>,
        limit: u64,
    ) -> Result<Vec<AuditRecord>, StoreError> {
        let mut query = audit_event::Entity::find();
        if let Some(user_id) = user_id {
            query = query.filter(audit_event::Column::UserId.eq(user_id));
        }
        Ok(query
            .order_by_desc(audit_event::Column::At)
            .limit(limit)
            .all(&self.db)
            .await?
            .into_iter()
            .map(|row| AuditRecord {
                at: row.at,
                event: row.event,
                user_id: row.user_id.map(|id| id.to_string()),
                username: row.username,
                client_id: row.client_id,
                address: row.address,
                detail: row.detail,
            })
            .collect())
    }
}
