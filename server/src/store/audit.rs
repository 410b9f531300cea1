//! The audit log: who signed in (and with which factor), who failed, factor changes,
//! recovery-code use, lockouts, token revocations, and every administrative change with the
//! actor that made it (admin API client, console user, CLI).
use super::{Store, StoreError};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use entity::audit_event;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
};
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
    ClientCreated,
    /// A client registered itself (RFC 7591).
    ClientRegistered,
    ClientUpdated,
    ClientDeleted,
    ClientSecretRotated,
    UserCreated,
    UserUpdated,
    UserDisabled,
    UserEnabled,
    PasswordSet,
    UserDeleted,
    /// An operator granted or took away the console role.
    AdminRoleChanged,
    /// An operator revoked grants (every token of a user or a client, or one grant).
    GrantsRevoked,
    ConsentWithdrawn,
    ResourceCreated,
    ResourceUpdated,
    ResourceDeleted,
    KeysRotated,
    KeyRetired,
    RegistrationTokenCreated,
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
            Self::ClientCreated => "client.created",
            Self::ClientRegistered => "client.registered",
            Self::ClientUpdated => "client.updated",
            Self::ClientDeleted => "client.deleted",
            Self::ClientSecretRotated => "client.secret_rotated",
            Self::UserCreated => "user.created",
            Self::UserUpdated => "user.updated",
            Self::UserDisabled => "user.disabled",
            Self::UserEnabled => "user.enabled",
            Self::PasswordSet => "user.password_set",
            Self::UserDeleted => "user.deleted",
            Self::AdminRoleChanged => "user.admin_role",
            Self::GrantsRevoked => "grants.revoked",
            Self::ConsentWithdrawn => "consent.withdrawn",
            Self::ResourceCreated => "resource.created",
            Self::ResourceUpdated => "resource.updated",
            Self::ResourceDeleted => "resource.deleted",
            Self::KeysRotated => "keys.rotated",
            Self::KeyRetired => "keys.retired",
            Self::RegistrationTokenCreated => "registration_token.created",
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
    pub actor: Option<String>,
}

/// Who made an administrative change, as the `actor` column says it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    /// A client with the `umbra:admin` scope, through the admin API.
    Client(String),
    /// An operator signed in to the console.
    User(String),
    /// The `umbra` command line.
    Cli,
    /// A client registering itself (RFC 7591), with an initial access token or openly.
    Registration,
}

impl std::fmt::Display for Actor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Client(id) => write!(f, "client:{id}"),
            Self::User(name) => write!(f, "user:{name}"),
            Self::Cli => f.write_str("cli"),
            Self::Registration => f.write_str("registration"),
        }
    }
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
            actor: None,
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

    pub fn actor(mut self, actor: &Actor) -> Self {
        self.actor = Some(actor.to_string());
        self
    }
}

/// A recorded event, as `umbra audit list` and the admin API show it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AuditRecord {
    pub id: String,
    pub at: i64,
    pub event: String,
    pub user_id: Option<String>,
    pub username: Option<String>,
    pub client_id: Option<String>,
    pub address: Option<String>,
    pub detail: Option<String>,
    pub actor: Option<String>,
}

/// Which events to read: every filter given must hold. Newest first.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    pub user_id: Option<Uuid>,
    pub client_id: Option<String>,
    /// An event name (`login.failed`), or a prefix ending in `.` (`client.`).
    pub event: Option<String>,
    /// Unix seconds, inclusive.
    pub since: Option<i64>,
    /// Unix seconds, exclusive.
    pub until: Option<i64>,
    /// Continue after this event (from [`AuditPage::next`]).
    pub after: Option<AuditCursor>,
    pub limit: u64,
}

/// Where a page of events ended: opaque to callers, `at` and `id` of its last event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditCursor {
    at: i64,
    id: Uuid,
}

impl AuditCursor {
    /// The text form callers pass back.
    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(format!("{}.{}", self.at, self.id))
    }

    /// `None` for anything [`AuditCursor::encode`] did not make.
    pub fn decode(text: &str) -> Option<Self> {
        let bytes = URL_SAFE_NO_PAD.decode(text).ok()?;
        let text = std::str::from_utf8(&bytes).ok()?;
        let (at, id) = text.split_once('.')?;
        Some(Self {
            at: at.parse().ok()?,
            id: id.parse().ok()?,
        })
    }
}

/// One page of events and where the next one starts (`None`: this was the last).
#[derive(Debug, Clone)]
pub struct AuditPage {
    pub events: Vec<AuditRecord>,
    pub next: Option<AuditCursor>,
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
            actor: Set(entry.actor),
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
        let query = AuditQuery {
            user_id,
            limit,
            ..AuditQuery::default()
        };
        Ok(self.query_audit(&query).await?.events)
    }

    /// The events `query` selects, newest first (ties in `at` broken by id), one page.
    pub async fn query_audit(&self, query: &AuditQuery) -> Result<AuditPage, StoreError> {
        use audit_event::Column;
        let mut filter = Condition::all();
        if let Some(user_id) = query.user_id {
            filter = filter.add(Column::UserId.eq(user_id));
        }
        if let Some(client_id) = &query.client_id {
            filter = filter.add(Column::ClientId.eq(client_id.as_str()));
        }
        match query.event.as_deref() {
            Some(prefix) if prefix.ends_with('.') => {
                filter = filter.add(Column::Event.starts_with(prefix));
            }
            Some(event) => filter = filter.add(Column::Event.eq(event)),
            None => {}
        }
        if let Some(since) = query.since {
            filter = filter.add(Column::At.gte(since));
        }
        if let Some(until) = query.until {
            filter = filter.add(Column::At.lt(until));
        }
        if let Some(after) = &query.after {
            filter = filter.add(
                Condition::any().add(Column::At.lt(after.at)).add(
                    Condition::all()
                        .add(Column::At.eq(after.at))
                        .add(Column::Id.lt(after.id)),
                ),
            );
        }
        let limit = query.limit.max(1);
        let mut rows = audit_event::Entity::find()
            .filter(filter)
            .order_by_desc(Column::At)
            .order_by_desc(Column::Id)
            .limit(limit + 1)
            .all(&self.db)
            .await?;
        let more = rows.len() as u64 > limit;
        rows.truncate(limit as usize);
        let next = match (more, rows.last()) {
            (true, Some(last)) => Some(AuditCursor {
                at: last.at,
                id: last.id,
            }),
            _ => None,
        };
        Ok(AuditPage {
            events: rows
                .into_iter()
                .map(|row| AuditRecord {
                    id: row.id.to_string(),
                    at: row.at,
                    event: row.event,
                    user_id: row.user_id.map(|id| id.to_string()),
                    username: row.username,
                    client_id: row.client_id,
                    address: row.address,
                    detail: row.detail,
                    actor: row.actor,
                })
                .collect(),
            next,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_reads_back_and_garbage_is_no_cursor() {
        let cursor = AuditCursor {
            at: 1_700_000_000,
            id: Uuid::new_v4(),
        };
        assert_eq!(AuditCursor::decode(&cursor.encode()), Some(cursor));
        for garbage in ["", "x", "MTIz", "!!!!"] {
            assert_eq!(AuditCursor::decode(garbage), None, "{garbage}");
        }
    }
}
