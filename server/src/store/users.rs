//! People who sign in. Usernames are unique case-insensitively: the lower-cased form is the
//! unique key, the typed form is what is shown.
//!
//! Each user has a security stamp, a counter moved by one UPDATE (`stamp = stamp + 1`, so
//! concurrent moves never lose one) whenever what proves the user changes; sessions signed in
//! under an older value are signed out. A new password and disabling an account also revoke
//! every grant of the user in the same transaction, so no token outlives the change.
use super::changes::{self, ChangeKind};
use super::grants::{Revoked, revoke_grants_in};
use super::{Store, StoreError};
use entity::{grant, user};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, EntityTrait, QueryFilter, QueryOrder, SqlErr,
    TransactionTrait, UpdateMany,
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
        let id = Uuid::new_v4();
        let username = username.trim().to_owned();
        let row = user::ActiveModel {
            id: Set(id),
            username: Set(username.clone()),
            username_normalized: Set(normalize_username(&username)),
            password_hash: Set(password_hash.clone()),
            email: Set(None),
            phone: Set(None),
            disabled: Set(false),
            created_at: Set(now),
            updated_at: Set(now),
            security_stamp: Set(0),
            name: Set(None),
            email_verified: Set(false),
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
                name: None,
                email: None,
                email_verified: false,
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
        let mut update =
            user::Entity::update_many().col_expr(user::Column::UpdatedAt, Expr::value(now));
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
        let update = update.filter(user::Column::Id.eq(id));
        let subject = id.to_string();
        Ok(self
            .write_logged("update_user_profile", update, ChangeKind::User, &subject)
            .await?
            > 0)
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
