//! People who sign in. Usernames are unique case-insensitively: the lower-cased form is the
//! unique key, the typed form is what is shown.
//!
//! Each user has a security stamp, a counter moved by one UPDATE (`stamp = stamp + 1`, so
//! concurrent moves never lose one) whenever what proves the user changes; sessions signed in
//! under an older value are signed out. A new password and disabling an account also revoke
//! every grant of the user in the same transaction, so no token outlives the change.
//!
//! Each user also has a version, moved by every write of the row (`version = version + 1`):
//! the admin API's `ETag`. A profile change may be conditional on it
//! ([`Store::update_user_profile_if`]): one UPDATE `… WHERE id = ? AND version = ?`, so of
//! concurrent writers holding the same version exactly one wins and the others learn the
//! current version.
use super::changes::{self, ChangeKind};
use super::grants::{Revoked, revoke_grants_in};
use super::{Store, StoreError};
use entity::{grant, user};
use sea_orm::sea_query::{Expr, ExprTrait, Func};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    SqlErr, TransactionTrait, UpdateMany,
};
use uuid::Uuid;

/// A user as the rest of Umbra sees it; the password hash stays with whoever checks it.
#[derive(Clone, PartialEq, Eq)]
pub struct User {
    pub id: Uuid,
    pub username: String,
    pub password_hash: String,
    pub disabled: bool,
    pub created_at: i64,
    /// See the module documentation; sessions remember it at sign-in.
    pub security_stamp: i64,
    /// The display name (OpenID Connect `name`).
    pub name: Option<String>,
    /// The profile e-mail address (OpenID Connect `email`): set by an operator, shown to the
    /// applications the user lets see it. Not where e-mailed one-time codes go; an e-mail
    /// second factor keeps its own address.
    pub email: Option<String>,
    /// An operator vouched that `email` is the user's.
    pub email_verified: bool,
    /// Moves with every change of the row (the admin API's `ETag`).
    pub version: i64,
    /// May use the operator console (with a second factor).
    pub admin: bool,
}

/// What a conditional profile change did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserUpdate {
    /// Written; the row's new version.
    Done {
        version: i64,
    },
    /// The row has moved on since the caller read it (another writer won).
    VersionMismatch {
        current: i64,
    },
    NotFound,
}

/// Which users to list, by normalized username; every filter given must hold.
#[derive(Debug, Clone, Default)]
pub struct UserQuery {
    /// Usernames starting with this (compared case-insensitively).
    pub username_prefix: Option<String>,
    pub disabled: Option<bool>,
    /// Continue after this normalized username (from [`UserPage::next`]).
    pub after: Option<String>,
    pub limit: u64,
}

/// One page of users in username order and where the next starts (`None`: the last page).
#[derive(Debug, Clone)]
pub struct UserPage {
    pub users: Vec<User>,
    /// The normalized username of the last user of this page.
    pub next: Option<String>,
}

/// A change of a user's profile; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProfileChange {
    /// `Some(None)` removes the name.
    pub name: Option<Option<String>>,
    /// `Some(None)` removes the address. A new address is unverified unless
    /// `email_verified` says otherwise.
    pub email: Option<Option<String>>,
    pub email_verified: Option<bool>,
}

impl std::fmt::Debug for User {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("User")
            .field("id", &self.id)
            .field("username", &self.username)
            .field("disabled", &self.disabled)
            .finish_non_exhaustive()
    }
}

/// The unique form of a username.
pub fn normalize_username(username: &str) -> String {
    username.trim().to_lowercase()
}

impl Store {
    pub async fn create_user(
        &self,
        username: &str,
        password_hash: String,
        now: i64,
    ) -> Result<User, StoreError> {
        self.create_user_with(username, password_hash, &ProfileChange::default(), now)
            .await
    }

    /// Creates a user with a profile in one insert, so that nobody sees the user without it.
    /// An address is verified only if `profile` says so.
    pub async fn create_user_with(
        &self,
        username: &str,
        password_hash: String,
        profile: &ProfileChange,
        now: i64,
    ) -> Result<User, StoreError> {
        let name = profile.name.clone().flatten();
        let email = profile.email.clone().flatten();
        let email_verified = email.is_some() && profile.email_verified == Some(true);
        let id = Uuid::new_v4();
        let username = username.trim().to_owned();
        let row = user::ActiveModel {
            id: Set(id),
            username: Set(username.clone()),
            username_normalized: Set(normalize_username(&username)),
            password_hash: Set(password_hash.clone()),
            email: Set(email.clone()),
            phone: Set(None),
            disabled: Set(false),
            created_at: Set(now),
            updated_at: Set(now),
            security_stamp: Set(0),
            name: Set(name.clone()),
            email_verified: Set(email_verified),
            version: Set(1),
            admin: Set(false),
        };
        match user::Entity::insert(row)
            .exec_without_returning(&self.db)
            .await
        {
            Ok(_) => Ok(User {
                id,
                username,
                password_hash,
                disabled: false,
                created_at: now,
                security_stamp: 0,
                name,
                email,
                email_verified,
                version: 1,
                admin: false,
            }),
            Err(err) if matches!(err.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => Err(
                StoreError::Conflict(format!("the username {username:?} is taken")),
            ),
            Err(err) => Err(err.into()),
        }
    }

    pub async fn find_user_by_username(&self, username: &str) -> Result<Option<User>, StoreError> {
        Ok(user::Entity::find()
            .filter(user::Column::UsernameNormalized.eq(normalize_username(username)))
            .one(&self.db)
            .await?
            .map(to_user))
    }

    pub async fn find_user(&self, id: Uuid) -> Result<Option<User>, StoreError> {
        Ok(user::Entity::find_by_id(id)
            .one(&self.db)
            .await?
            .map(to_user))
    }

    pub async fn list_users(&self) -> Result<Vec<User>, StoreError> {
        Ok(user::Entity::find()
            .order_by_asc(user::Column::UsernameNormalized)
            .all(&self.db)
            .await?
            .into_iter()
            .map(to_user)
            .collect())
    }

    /// Disables or enables a user. A disabled user cannot sign in and their tokens introspect
    /// as inactive; disabling also signs out their sessions and revokes their grants, so that
    /// enabling them again does not bring old tokens back. `false` if unknown.
    pub async fn set_user_disabled(
        &self,
        id: Uuid,
        disabled: bool,
        now: i64,
    ) -> Result<bool, StoreError> {
        let update =
            user::Entity::update_many().col_expr(user::Column::Disabled, Expr::value(disabled));
        if disabled {
            self.update_and_revoke(id, update, now).await
        } else {
            let update = update
                .col_expr(user::Column::Version, next_version())
                .col_expr(user::Column::UpdatedAt, Expr::value(now))
                .filter(user::Column::Id.eq(id));
            let subject = id.to_string();
            Ok(self
                .write_logged("set_user_disabled", update, ChangeKind::User, &subject)
                .await?
                > 0)
        }
    }

    /// Sets a new password, signs out every session of the user and revokes every grant
    /// (all their tokens): whoever knew the old password keeps nothing. `false` if unknown.
    pub async fn set_user_password(
        &self,
        id: Uuid,
        password_hash: String,
        now: i64,
    ) -> Result<bool, StoreError> {
        let update = user::Entity::update_many()
            .col_expr(user::Column::PasswordHash, Expr::value(password_hash));
        self.update_and_revoke(id, update, now).await
    }

    /// Applies `update` to the user with a stamp move and revokes every grant of the user, in
    /// one transaction. `false` if unknown.
    async fn update_and_revoke(
        &self,
        id: Uuid,
        update: UpdateMany<user::Entity>,
        now: i64,
    ) -> Result<bool, StoreError> {
        let update = &update;
        self.retrying("update_user", move || async move {
            self.update_and_revoke_once(id, update.clone(), now).await
        })
        .await
    }

    async fn update_and_revoke_once(
        &self,
        id: Uuid,
        update: UpdateMany<user::Entity>,
        now: i64,
    ) -> Result<bool, StoreError> {
        let txn = self.db.begin().await?;
        let found = update
            .col_expr(user::Column::SecurityStamp, next_stamp())
            .col_expr(user::Column::Version, next_version())
            .col_expr(user::Column::UpdatedAt, Expr::value(now))
            .filter(user::Column::Id.eq(id))
            .exec(&txn)
            .await?
            .rows_affected
            > 0;
        let mut revoked = Revoked::default();
        if found {
            let theirs = Condition::all().add(grant::Column::UserId.eq(id));
            revoked = revoke_grants_in(&txn, theirs, now).await?;
            changes::record(&txn, ChangeKind::User, &id.to_string()).await?;
        }
        txn.commit().await?;
        if found {
            self.changed_here(ChangeKind::User, &id.to_string());
            self.grants_revoked_here(&revoked.ids);
        }
        Ok(found)
    }

    /// Moves the security stamp: every session of the user is signed out at its next request.
    /// Returns the new stamp, `None` if the user is unknown.
    pub async fn rotate_security_stamp(
        &self,
        id: Uuid,
        now: i64,
    ) -> Result<Option<i64>, StoreError> {
        self.retrying("rotate_security_stamp", move || async move {
            // One transaction: the value read back is this move's, not a later one's.
            let txn = self.db.begin().await?;
            let result = user::Entity::update_many()
                .col_expr(user::Column::SecurityStamp, next_stamp())
                .col_expr(user::Column::Version, next_version())
                .col_expr(user::Column::UpdatedAt, Expr::value(now))
                .filter(user::Column::Id.eq(id))
                .exec(&txn)
                .await?;
            let stamp = if result.rows_affected == 0 {
                None
            } else {
                user::Entity::find_by_id(id)
                    .one(&txn)
                    .await?
                    .map(|row| row.security_stamp)
            };
            if stamp.is_some() {
                changes::record(&txn, ChangeKind::User, &id.to_string()).await?;
            }
            txn.commit().await?;
            if stamp.is_some() {
                self.changed_here(ChangeKind::User, &id.to_string());
            }
            Ok(stamp)
        })
        .await
    }

    /// Applies `change` to the profile of user `id`; `false` if unknown. A new e-mail address
    /// is unverified unless the change says it is verified.
    pub async fn update_user_profile(
        &self,
        id: Uuid,
        change: &ProfileChange,
        now: i64,
    ) -> Result<bool, StoreError> {
        let outcome = self.update_user_profile_if(id, change, None, now).await?;
        Ok(outcome != UserUpdate::NotFound)
    }

    /// [`Store::update_user_profile`] only while the row is at `if_version` (any version when
    /// `None`).
    pub async fn update_user_profile_if(
        &self,
        id: Uuid,
        change: &ProfileChange,
        if_version: Option<i64>,
        now: i64,
    ) -> Result<UserUpdate, StoreError> {
        let mut update = user::Entity::update_many()
            .col_expr(user::Column::UpdatedAt, Expr::value(now))
            .col_expr(user::Column::Version, next_version());
        if let Some(name) = &change.name {
            update = update.col_expr(user::Column::Name, Expr::value(name.clone()));
        }
        if let Some(email) = &change.email {
            update = update.col_expr(user::Column::Email, Expr::value(email.clone()));
        }
        let verified = match (&change.email, change.email_verified) {
            (_, Some(verified)) => Some(verified),
            (Some(_), None) => Some(false),
            (None, None) => None,
        };
        if let Some(verified) = verified {
            update = update.col_expr(user::Column::EmailVerified, Expr::value(verified));
        }
        let mut update = update.filter(user::Column::Id.eq(id));
        if let Some(version) = if_version {
            update = update.filter(user::Column::Version.eq(version));
        }
        let update = &update;
        let outcome = self
            .retrying("update_user_profile", move || async move {
                let txn = self.db.begin().await?;
                let written = update.clone().exec(&txn).await?.rows_affected > 0;
                // Read in the transaction: the version this write made, or what beat it.
                let current = user::Entity::find_by_id(id)
                    .select_only()
                    .column(user::Column::Version)
                    .into_tuple::<i64>()
                    .one(&txn)
                    .await?;
                let outcome = match (written, current) {
                    (true, Some(version)) => UserUpdate::Done { version },
                    (false, Some(current)) => UserUpdate::VersionMismatch { current },
                    (_, None) => UserUpdate::NotFound,
                };
                if written {
                    changes::record(&txn, ChangeKind::User, &id.to_string()).await?;
                }
                txn.commit().await?;
                Ok(outcome)
            })
            .await?;
        if let UserUpdate::Done { .. } = outcome {
            self.changed_here(ChangeKind::User, &id.to_string());
        }
        Ok(outcome)
    }

    /// One page of users as `query` selects them, in username order.
    pub async fn query_users(&self, query: &UserQuery) -> Result<UserPage, StoreError> {
        let mut select = user::Entity::find();
        if let Some(prefix) = &query.username_prefix {
            // The leading characters compared rather than LIKE: nothing to escape.
            let prefix = normalize_username(prefix);
            let length = i32::try_from(prefix.chars().count()).unwrap_or(i32::MAX);
            select = select.filter(
                Expr::expr(
                    Func::cust("SUBSTR")
                        .arg(Expr::col(user::Column::UsernameNormalized))
                        .arg(1)
                        .arg(length),
                )
                .eq(prefix),
            );
        }
        if let Some(disabled) = query.disabled {
            select = select.filter(user::Column::Disabled.eq(disabled));
        }
        if let Some(after) = &query.after {
            select = select.filter(user::Column::UsernameNormalized.gt(after.as_str()));
        }
        let limit = Ord::max(query.limit, 1);
        let mut rows = select
            .order_by_asc(user::Column::UsernameNormalized)
            .limit(limit + 1)
            .all(&self.db)
            .await?;
        let more = rows.len() as u64 > limit;
        rows.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        let next = match (more, rows.last()) {
            (true, Some(last)) => Some(last.username_normalized.clone()),
            _ => None,
        };
        Ok(UserPage {
            users: rows.into_iter().map(to_user).collect(),
            next,
        })
    }

    /// Deletes a user with their grants, tokens and consents. `false` if unknown.
    pub async fn delete_user(&self, id: Uuid) -> Result<bool, StoreError> {
        let delete = user::Entity::delete_by_id(id);
        let subject = id.to_string();
        Ok(self
            .write_logged("delete_user", delete, ChangeKind::User, &subject)
            .await?
            > 0)
    }
}

/// `version + 1`, computed by the database: every write of the row moves it.
fn next_version() -> Expr {
    Expr::col(user::Column::Version).add(1)
}

/// `security_stamp + 1`, computed by the database so that concurrent moves all count.
fn next_stamp() -> Expr {
    Expr::col(user::Column::SecurityStamp).add(1)
}

fn to_user(row: user::Model) -> User {
    User {
        id: row.id,
        username: row.username,
        password_hash: row.password_hash,
        disabled: row.disabled,
        created_at: row.created_at,
        security_stamp: row.security_stamp,
        name: row.name,
        email: row.email,
        email_verified: row.email_verified,
        version: row.version,
        admin: row.admin,
    }
}
