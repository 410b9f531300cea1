//! People who sign in. Usernames are unique case-insensitively: the lower-cased form is the
//! unique key, the typed form is what is shown.
use super::{Store, StoreError};
use entity::user;
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, SqlErr};
use uuid::Uuid;

/// A user as the rest of Umbra sees it; the password hash stays with whoever checks it.
#[derive(Clone, PartialEq, Eq)]
pub struct User {
    pub id: Uuid,
    pub username: String,
    pub password_hash: String,
    pub disabled: bool,
    pub created_at: i64,
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
    /// as inactive. `false` if unknown.
    pub async fn set_user_disabled(
        &self,
        id: Uuid,
        disabled: bool,
        now: i64,
    ) -> Result<bool, StoreError> {
        let result = user::Entity::update_many()
            .col_expr(user::Column::Disabled, Expr::value(disabled))
            .col_expr(user::Column::UpdatedAt, Expr::value(now))
            .filter(user::Column::Id.eq(id))
            .exec(&self.db)
            .await?;
        Ok(result.rows_affected > 0)
    }

    pub async fn set_user_password(
        &self,
        id: Uuid,
        password_hash: String,
        now: i64,
    ) -> Result<bool, StoreError> {
        let result = user::Entity::update_many()
            .col_expr(user::Column::PasswordHash, Expr::value(password_hash))
            .col_expr(user::Column::UpdatedAt, Expr::value(now))
            .filter(user::Column::Id.eq(id))
            .exec(&self.db)
            .await?;
        Ok(result.rows_affected > 0)
    }

    /// Deletes a user with their grants, tokens and consents. `false` if unknown.
    pub async fn delete_user(&self, id: Uuid) -> Result<bool, StoreError> {
        let result = user::Entity::delete_by_id(id).exec(&self.db).await?;
        Ok(result.rows_affected > 0)
    }
}

fn to_user(row: user::Model) -> User {
    User {
        id: row.id,
        username: row.username,
        password_hash: row.password_hash,
        disabled: row.disabled,
        created_at: row.created_at,
    }
}
