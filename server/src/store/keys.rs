//! Signing keys (see `crate::keys`): rows with the public JWK and the sealed private key.
use super::{Store, StoreError};
use entity::signing_key;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, EntityTrait, QueryFilter, QueryOrder,
    TransactionTrait,
};

/// A key about to be stored.
#[derive(Clone)]
pub struct NewSigningKey {
    pub kid: String,
    pub alg: &'static str,
    pub public_jwk: String,
    /// The sealed PKCS#8 private key.
    pub private_key: Vec<u8>,
    pub created_at: i64,
    pub activates_at: i64,
}

impl std::fmt::Debug for NewSigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewSigningKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Every key still published at `now`, newest first.
    pub async fn live_signing_keys(&self, now: i64) -> Result<Vec<signing_key::Model>, StoreError> {
        Ok(signing_key::Entity::find()
            .filter(
                Condition::any()
                    .add(signing_key::Column::ExpiresAt.is_null())
                    .add(signing_key::Column::ExpiresAt.gt(now)),
            )
            .order_by_desc(signing_key::Column::CreatedAt)
            .order_by_asc(signing_key::Column::Kid)
            .all(&self.db)
            .await?)
    }

    /// Stores `new` and schedules the retirement of the keys of its algorithm that have none
    /// yet: they stop signing when it starts, and leave the JWKS `publish_retired_secs` later.
    pub async fn rotate_signing_key(
        &self,
        new: &NewSigningKey,
        publish_retired_secs: i64,
    ) -> Result<(), StoreError> {
        self.retrying("rotate_signing_key", move || async move {
            let txn = self.db.begin().await?;
            signing_key::Entity::update_many()
                .col_expr(
                    signing_key::Column::RetiredAt,
                    Expr::value(new.activates_at),
                )
                .col_expr(
                    signing_key::Column::ExpiresAt,
                    Expr::value(new.activates_at + publish_retired_secs),
                )
                .filter(signing_key::Column::Alg.eq(new.alg))
                .filter(signing_key::Column::RetiredAt.is_null())
                .exec(&txn)
                .await?;
            signing_key::Entity::insert(signing_key::ActiveModel {
                kid: Set(new.kid.clone()),
                alg: Set(new.alg.to_owned()),
                public_jwk: Set(new.public_jwk.clone()),
                private_key: Set(new.private_key.clone()),
                created_at: Set(new.created_at),
                activates_at: Set(new.activates_at),
                retired_at: Set(None),
                expires_at: Set(None),
            })
            .exec_without_returning(&txn)
            .await?;
            txn.commit().await?;
            Ok(())
        })
        .await
    }

    /// Stops `kid` signing at `now` (or keeps an earlier retirement) and publishes it for
    /// `publish_retired_secs` more.
    pub async fn retire_signing_key(
        &self,
        kid: &str,
        now: i64,
        publish_retired_secs: i64,
    ) -> Result<(), StoreError> {
        self.retrying("retire_signing_key", move || async move {
            signing_key::Entity::update_many()
                .col_expr(signing_key::Column::RetiredAt, Expr::value(now))
                .col_expr(
                    signing_key::Column::ExpiresAt,
                    Expr::value(now + publish_retired_secs),
                )
                .filter(signing_key::Column::Kid.eq(kid))
                .filter(
                    Condition::any()
                        .add(signing_key::Column::RetiredAt.is_null())
                        .add(signing_key::Column::RetiredAt.gt(now)),
                )
                .exec(&self.db)
                .await?;
            Ok(())
        })
        .await
    }

    /// Makes a pending key sign from `now`.
    pub async fn activate_signing_key_now(&self, kid: &str, now: i64) -> Result<(), StoreError> {
        self.retrying("activate_signing_key_now", move || async move {
            signing_key::Entity::update_many()
                .col_expr(signing_key::Column::ActivatesAt, Expr::value(now))
                .filter(signing_key::Column::Kid.eq(kid))
                .filter(signing_key::Column::ActivatesAt.gt(now))
                .exec(&self.db)
                .await?;
            Ok(())
        })
        .await
    }

    /// Deletes keys no longer published; returns how many.
    pub async fn delete_expired_signing_keys(&self, now: i64) -> Result<u64, StoreError> {
        Ok(signing_key::Entity::delete_many()
            .filter(signing_key::Column::ExpiresAt.lte(now))
            .exec(&self.db)
            .await?
            .rows_affected)
    }
}
