//! Grants, access tokens and refresh tokens, keyed by token hash.
use super::{Store, StoreError};
use crate::oauth::grant_type::GrantType;
use crate::oauth::introspection::{AccessTokenRecord, TokenUser};
use crate::oauth::revocation::{RevocationOutcome, RevocationTarget};
use crate::oauth::scope::ScopeSet;
use crate::oauth::token::TokenHash;
use entity::{access_token, grant, refresh_token, user};
use sea_orm::sea_query::{Expr, ExprTrait, Query};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, FromQueryResult,
    QueryFilter, Statement, TransactionTrait, Value,
};
use uuid::Uuid;

/// The grant and its access token in one statement (Postgres).
const ISSUE_CLIENT_CREDENTIALS_SQL: &str = "WITH g AS (\
    INSERT INTO grants (id, client_id, user_id, grant_type, scope, created_at, expires_at, revoked_at) \
    VALUES ($1, $2, NULL, $3, $4, $5, $6, NULL) RETURNING id) \
    INSERT INTO access_tokens (hash, grant_id, client_id, scope, issued_at, expires_at, revoked_at) \
    SELECT $7, g.id, $2, $4, $5, $6, NULL FROM g";

/// An access token about to be stored.
#[derive(Debug, Clone)]
pub struct NewAccessToken {
    pub hash: TokenHash,
    pub scope: ScopeSet,
    pub issued_at: i64,
    pub expires_at: i64,
}

/// One row of the introspection lookup: the token joined to its grant and user.
#[derive(Debug, FromQueryResult)]
struct IntrospectionRow {
    client_id: String,
    scope: String,
    issued_at: i64,
    expires_at: i64,
    revoked_at: Option<i64>,
    grant_revoked_at: Option<i64>,
    user_id: Option<Uuid>,
    username: Option<String>,
    user_disabled: Option<bool>,
}

impl Store {
    /// Creates a grant for a client acting on its own behalf and its access token, atomically.
    pub async fn issue_client_credentials(
        &self,
        client_id: &str,
        token: &NewAccessToken,
    ) -> Result<Uuid, StoreError> {
        let grant_id = Uuid::new_v4();
        if self.db.get_database_backend() == DbBackend::Postgres {
            // One statement, one round trip and one commit instead of four: issuance is a hot
            // path, and a data-modifying CTE is atomic on Postgres (and CockroachDB).
            let values: [Value; 7] = [
                grant_id.into(),
                client_id.into(),
                GrantType::ClientCredentials.as_str().into(),
                token.scope.to_string().into(),
                token.issued_at.into(),
                token.expires_at.into(),
                token.hash.as_bytes().to_vec().into(),
            ];
            self.db
                .execute_raw(Statement::from_sql_and_values(
                    DbBackend::Postgres,
                    ISSUE_CLIENT_CREDENTIALS_SQL,
                    values,
                ))
                .await?;
            return Ok(grant_id);
        }
        let grant_row = grant::ActiveModel {
            id: Set(grant_id),
            client_id: Set(client_id.to_owned()),
            user_id: Set(None),
            grant_type: Set(GrantType::ClientCredentials.as_str().to_owned()),
            scope: Set(token.scope.to_string()),
            created_at: Set(token.issued_at),
            expires_at: Set(token.expires_at),
            revoked_at: Set(None),
        };
        let txn = self.db.begin().await?;
        grant::Entity::insert(grant_row)
            .exec_without_returning(&txn)
            .await?;
        access_token::Entity::insert(access_token_row(grant_id, client_id, token))
            .exec_without_returning(&txn)
            .await?;
        txn.commit().await?;
        Ok(grant_id)
    }

    /// The introspection hot path: one primary-key lookup joined to the grant and the user.
    pub async fn access_token_record(
        &self,
        hash: &TokenHash,
    ) -> Result<Option<AccessTokenRecord>, StoreError> {
        let select = Query::select()
            .column((access_token::Entity, access_token::Column::ClientId))
            .column((access_token::Entity, access_token::Column::Scope))
            .column((access_token::Entity, access_token::Column::IssuedAt))
            .column((access_token::Entity, access_token::Column::ExpiresAt))
            .column((access_token::Entity, access_token::Column::RevokedAt))
            .expr_as(
                Expr::col((grant::Entity, grant::Column::RevokedAt)),
                "grant_revoked_at",
            )
            .column((grant::Entity, grant::Column::UserId))
            .column((user::Entity, user::Column::Username))
            .expr_as(
                Expr::col((user::Entity, user::Column::Disabled)),
                "user_disabled",
            )
            .from(access_token::Entity)
            .inner_join(
                grant::Entity,
                Expr::col((grant::Entity, grant::Column::Id))
                    .equals((access_token::Entity, access_token::Column::GrantId)),
            )
            .left_join(
                user::Entity,
                Expr::col((user::Entity, user::Column::Id))
                    .equals((grant::Entity, grant::Column::UserId)),
            )
            .and_where(
                Expr::col((access_token::Entity, access_token::Column::Hash))
                    .eq(hash.as_bytes().to_vec()),
            )
            .to_owned();
        let statement = self.db.get_database_backend().build(&select);
        let Some(row) = IntrospectionRow::find_by_statement(statement)
            .one(&self.db)
            .await?
        else {
            return Ok(None);
        };
        let user = match (row.user_id, row.username) {
            (Some(id), Some(username)) => Some(TokenUser {
                id: id.to_string(),
                username,
                disabled: row.user_disabled.unwrap_or(true),
            }),
            (Some(_), None) => return Ok(None),
            _ => None,
        };
        Ok(Some(AccessTokenRecord {
            client_id: row.client_id,
            scope: row.scope,
            issued_at: row.issued_at,
            expires_at: row.expires_at,
            revoked: row.revoked_at.is_some() || row.grant_revoked_at.is_some(),
            user,
        }))
    }

    /// Revokes on behalf of `client_id`, which may revoke only its own tokens. Revoking a
    /// refresh token revokes its whole grant, access tokens included (RFC 7009 §2.1).
    pub async fn revoke(
        &self,
        target: RevocationTarget,
        client_id: &str,
        now: i64,
    ) -> Result<RevocationOutcome, StoreError> {
        match target {
            RevocationTarget::AccessToken(hash) => {
                let owner = access_token::Entity::find_by_id(hash.as_bytes().to_vec())
                    .one(&self.db)
                    .await?
                    .map(|row| row.client_id);
                match owner {
                    None => Ok(RevocationOutcome::Unknown),
                    Some(owner) if owner != client_id => {
                        Ok(RevocationOutcome::IssuedToAnotherClient)
                    }
                    Some(_) => {
                        access_token::Entity::update_many()
                            .col_expr(access_token::Column::RevokedAt, Expr::value(now))
                            .filter(access_token::Column::Hash.eq(hash.as_bytes().to_vec()))
                            .filter(access_token::Column::RevokedAt.is_null())
                            .exec(&self.db)
                            .await?;
                        Ok(RevocationOutcome::Revoked)
                    }
                }
            }
            RevocationTarget::RefreshToken(hash) => {
                let row = refresh_token::Entity::find_by_id(hash.as_bytes().to_vec())
                    .one(&self.db)
                    .await?;
                match row {
                    None => Ok(RevocationOutcome::Unknown),
                    Some(row) if row.client_id != client_id => {
                        Ok(RevocationOutcome::IssuedToAnotherClient)
                    }
                    Some(row) => {
                        self.revoke_grant(&self.db, row.grant_id, now).await?;
                        Ok(RevocationOutcome::Revoked)
                    }
                }
            }
        }
    }

    /// Marks a grant revoked; every token and code of it is inactive from now on.
    pub(crate) async fn revoke_grant<C: ConnectionTrait>(
        &self,
        db: &C,
        grant_id: Uuid,
        now: i64,
    ) -> Result<(), StoreError> {
        grant::Entity::update_many()
            .col_expr(grant::Column::RevokedAt, Expr::value(now))
            .filter(grant::Column::Id.eq(grant_id))
            .filter(grant::Column::RevokedAt.is_null())
            .exec(db)
            .await?;
        Ok(())
    }
}

pub(crate) fn access_token_row(
    grant_id: Uuid,
    client_id: &str,
    token: &NewAccessToken,
) -> access_token::ActiveModel {
    access_token::ActiveModel {
        hash: Set(token.hash.as_bytes().to_vec()),
        grant_id: Set(grant_id),
        client_id: Set(client_id.to_owned()),
        scope: Set(token.scope.to_string()),
        issued_at: Set(token.issued_at),
        expires_at: Set(token.expires_at),
        revoked_at: Set(None),
    }
}
