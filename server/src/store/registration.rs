//! Dynamic client registration in storage: initial access tokens (RFC 7591 §3) and the
//! registration access tokens of self-registered clients (RFC 7592 §3).
//!
//! An initial access token is good for `max_uses` registrations until it expires. The use is
//! one conditional UPDATE (`uses = uses + 1 … WHERE uses < max_uses AND expires_at > now`) in
//! the transaction that inserts the client: of N concurrent registrations on a token with k
//! uses left, exactly k win, and a registration that fails to insert gives its use back (the
//! transaction rolls back). A loser's answer is `TokenRefused`, the same as for a token that
//! never existed.
//!
//! A registration access token is stored as a hash on its client, compared in constant time,
//! and replaced by every RFC 7592 update in the same conditional write as the metadata.
use super::clients::{Replaced, client_row, insert_client};
use super::{Store, StoreError};
use crate::oauth::client::{Client, is_valid_client_id};
use crate::oauth::token::TokenHash;
use entity::{client, registration_token};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    TransactionTrait,
};
use uuid::Uuid;

/// Most initial access tokens a listing shows (the newest).
pub const MAX_LISTED_TOKENS: u64 = 1000;

/// An initial access token as an operator sees it: never the token itself.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct InitialAccessToken {
    pub id: Uuid,
    pub description: Option<String>,
    pub max_uses: i32,
    pub uses: i32,
    pub expires_at: i64,
    pub created_at: i64,
}

/// What [`Store::register_client`] did.
#[derive(Debug)]
pub enum Registered {
    /// Stored, as read back.
    Done(Box<Client>),
    /// The initial access token is unknown, expired or used up: nothing was stored.
    TokenRefused,
}

impl Store {
    /// Stores an initial access token (its hash) good for `max_uses` registrations until
    /// `expires_at`. Returns its id, which names it in listings and the audit log.
    pub async fn create_initial_access_token(
        &self,
        hash: &TokenHash,
        description: Option<&str>,
        max_uses: i32,
        expires_at: i64,
        now: i64,
    ) -> Result<Uuid, StoreError> {
        let id = Uuid::new_v4();
        let row = registration_token::ActiveModel {
            id: Set(id),
            token_hash: Set(hash.as_bytes().to_vec()),
            description: Set(description.map(str::to_owned)),
            max_uses: Set(max_uses),
            uses: Set(0),
            expires_at: Set(expires_at),
            created_at: Set(now),
        };
        let row = &row;
        self.retrying("create_initial_access_token", move || async move {
            registration_token::Entity::insert(row.clone())
                .exec_without_returning(&self.db)
                .await?;
            Ok(())
        })
        .await?;
        Ok(id)
    }

    /// The newest initial access tokens (at most [`MAX_LISTED_TOKENS`]), used up and expired
    /// ones included.
    pub async fn list_initial_access_tokens(&self) -> Result<Vec<InitialAccessToken>, StoreError> {
        let rows = registration_token::Entity::find()
            .order_by_desc(registration_token::Column::CreatedAt)
            .order_by_asc(registration_token::Column::Id)
            .limit(MAX_LISTED_TOKENS)
            .all(&self.db)
            .await?;
        Ok(rows
            .into_iter()
            .map(|row| InitialAccessToken {
                id: row.id,
                description: row.description,
                max_uses: row.max_uses,
                uses: row.uses,
                expires_at: row.expires_at,
                created_at: row.created_at,
            })
            .collect())
    }

    /// The id of the initial access token `hash` if it could be used now. A read only, to
    /// refuse a bad token before looking at the metadata; the use itself is
    /// [`Store::register_client`]'s.
    pub async fn usable_initial_access_token(
        &self,
        hash: &TokenHash,
        now: i64,
    ) -> Result<Option<Uuid>, StoreError> {
        Ok(registration_token::Entity::find()
            .select_only()
            .column(registration_token::Column::Id)
            .filter(registration_token::Column::TokenHash.eq(hash.as_bytes().to_vec()))
            .filter(registration_token::Column::ExpiresAt.gt(now))
            .filter(
                Expr::col(registration_token::Column::Uses)
                    .lt(Expr::col(registration_token::Column::MaxUses)),
            )
            .into_tuple::<Uuid>()
            .one(&self.db)
            .await?)
    }

    /// Stores a self-registered client with the hash of its registration access token, using
    /// one use of the initial access token `initial` if given (open registration: `None`),
    /// in one transaction.
    pub async fn register_client(
        &self,
        new: &Client,
        initial: Option<&TokenHash>,
        registration_token: &TokenHash,
        now: i64,
    ) -> Result<Registered, StoreError> {
        let mut row = client_row(new, now)?;
        row.registration_token_hash = Set(Some(registration_token.as_bytes().to_vec()));
        let (row, id) = (&row, new.id.as_str());
        let stored = self
            .retrying("register_client", move || async move {
                let txn = self.db.begin().await?;
                if let Some(initial) = initial {
                    let used = registration_token::Entity::update_many()
                        .col_expr(
                            registration_token::Column::Uses,
                            Expr::col(registration_token::Column::Uses).add(1),
                        )
                        .filter(
                            registration_token::Column::TokenHash.eq(initial.as_bytes().to_vec()),
                        )
                        .filter(registration_token::Column::ExpiresAt.gt(now))
                        .filter(
                            Expr::col(registration_token::Column::Uses)
                                .lt(Expr::col(registration_token::Column::MaxUses)),
                        )
                        .exec(&txn)
                        .await?
                        .rows_affected;
                    if used == 0 {
                        return Ok(false);
                    }
                }
                insert_client(&txn, row.clone(), id, &[]).await?;
                txn.commit().await?;
                Ok(true)
            })
            .await?;
        if !stored {
            return Ok(Registered::TokenRefused);
        }
        let client = self.with_resources(new.clone()).await?;
        Ok(Registered::Done(Box::new(client)))
    }

    /// The client `id` if `presented` is its registration access token (compared in constant
    /// time); `None` for an unknown client, a client registered by an operator, or another
    /// token, which callers must not tell apart.
    pub async fn find_registered_client(
        &self,
        id: &str,
        presented: &TokenHash,
    ) -> Result<Option<Client>, StoreError> {
        if !is_valid_client_id(id) {
            return Ok(None);
        }
        let stored = client::Entity::find_by_id(id.to_owned())
            .select_only()
            .column(client::Column::RegistrationTokenHash)
            .into_tuple::<Option<Vec<u8>>>()
            .one(&self.db)
            .await?
            .flatten();
        let matches = stored
            .as_deref()
            .and_then(TokenHash::from_slice)
            .is_some_and(|stored| stored.ct_eq(presented));
        if !matches {
            return Ok(None);
        }
        self.find_client(id).await
    }

    /// Replaces a self-registered client's metadata (RFC 7592 §2.2) while `presented` is still
    /// its registration access token and the row is at `if_version`, and makes `new_token` its
    /// token in the same write. `VersionMismatch`: another update came first.
    pub async fn replace_registered_client(
        &self,
        client: &Client,
        presented: &TokenHash,
        new_token: &TokenHash,
        if_version: i64,
        now: i64,
    ) -> Result<Replaced, StoreError> {
        self.replace_client_guarded(
            client,
            None,
            Some(if_version),
            Some((presented, new_token)),
            now,
        )
        .await
    }

    /// Deletes a self-registered client, with all its grants and tokens, while `presented` is
    /// its registration access token. `false` if it is not (or the client is gone).
    pub async fn delete_registered_client(
        &self,
        id: &str,
        presented: &TokenHash,
    ) -> Result<bool, StoreError> {
        let delete = client::Entity::delete_many()
            .filter(client::Column::Id.eq(id))
            .filter(client::Column::RegistrationTokenHash.eq(presented.as_bytes().to_vec()));
        Ok(self
            .write_logged(
                "delete_registered_client",
                delete,
                super::changes::ChangeKind::Client,
                id,
            )
            .await?
            > 0)
    }
}
