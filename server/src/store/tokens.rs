//! Grants, access tokens and refresh tokens, keyed by token hash.
use super::changes::Change;
use super::changes::{self, ChangeKind};
use super::token_cache::{Lookup, decode_hash, encode_hash};
use super::{Store, StoreError};
use crate::oauth::grant_type::GrantType;
use crate::oauth::introspection::{RecordKind, TokenRecord, TokenUser};
use crate::oauth::resource::{Actor, Audience};
use crate::oauth::revocation::{RevocationOutcome, RevocationTarget};
use crate::oauth::scope::ScopeSet;
use crate::oauth::token::TokenHash;
use entity::{access_token, grant, refresh_token, user};
use sea_orm::sea_query::{Expr, ExprTrait, Query};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, DbBackend, EntityTrait,
    FromQueryResult, QueryFilter, QuerySelect, Statement, TransactionTrait, Value,
};
use uuid::Uuid;

/// An access token about to be stored.
#[derive(Debug, Clone)]
pub struct NewAccessToken {
    pub hash: TokenHash,
    pub scope: ScopeSet,
    /// The resources it is for (RFC 8707); empty for none.
    pub audience: Audience,
    pub issued_at: i64,
    pub expires_at: i64,
}

/// A client_credentials issuance to store: a new grant and its access token.
#[derive(Debug)]
pub(super) struct Issue {
    pub grant_id: Uuid,
    pub client_id: String,
    pub token: NewAccessToken,
}

/// The grants of `count` issuances and their access tokens in one statement (Postgres). `$1`
/// is the grant type; issuance `i` binds `$(2+7i)` to `$(8+7i)`: grant id, client id, scope,
/// audience, issued at, expires at, token hash. The tokens are joined to the grants the CTE
/// returns, so that they are written after them.
fn issue_client_credentials_sql(count: usize) -> String {
    let mut grants = Vec::with_capacity(count);
    let mut tokens = Vec::with_capacity(count);
    for i in 0..count {
        let p = 2 + 7 * i;
        let (id, client, scope, audience, issued, expires, hash) =
            (p, p + 1, p + 2, p + 3, p + 4, p + 5, p + 6);
        grants.push(format!(
            "(${id}, ${client}, NULL, $1, ${scope}, ${audience}, ${issued}, ${expires}, NULL)"
        ));
        tokens.push(format!(
            "(${hash}, ${id}, ${client}, ${scope}, ${audience}, ${issued}, ${expires})"
        ));
    }
    format!(
        "WITH g AS (\
         INSERT INTO grants (id, client_id, user_id, grant_type, scope, audience, created_at, expires_at, revoked_at) \
         VALUES {} RETURNING id) \
         INSERT INTO access_tokens (hash, grant_id, client_id, scope, audience, issued_at, expires_at, revoked_at) \
         SELECT t.hash, g.id, t.client_id, t.scope, t.audience, t.issued_at, t.expires_at, NULL \
         FROM (VALUES {}) AS t (hash, grant_id, client_id, scope, audience, issued_at, expires_at) \
         JOIN g ON g.id = t.grant_id",
        grants.join(", "),
        tokens.join(", ")
    )
}

/// One row of the introspection lookup: the token joined to its grant and user.
#[derive(Debug, FromQueryResult)]
struct IntrospectionRow {
    grant_id: Uuid,
    client_id: String,
    grant_client_id: String,
    scope: String,
    audience: String,
    act: Option<String>,
    issued_at: i64,
    expires_at: i64,
    revoked_at: Option<i64>,
    used_at: Option<i64>,
    grant_revoked_at: Option<i64>,
    user_id: Option<Uuid>,
    username: Option<String>,
    user_disabled: Option<bool>,
}

impl Store {
    /// Creates a grant for a client acting on its own behalf and its access token, atomically.
    /// Concurrent calls may share one transaction ([`super::IssueBatching`]); each returns
    /// only once its rows are committed.
    pub async fn issue_client_credentials(
        &self,
        client_id: &str,
        token: &NewAccessToken,
    ) -> Result<Uuid, StoreError> {
        let grant_id = Uuid::new_v4();
        self.commit_issue(Issue {
            grant_id,
            client_id: client_id.to_owned(),
            token: token.clone(),
        })
        .await
        .map(|()| grant_id)
    }

    /// `issue` in a transaction of its own.
    pub(super) async fn issue_alone(&self, issue: &Issue) -> Result<(), StoreError> {
        let issues = std::slice::from_ref(issue);
        self.retrying("issue_client_credentials", move || {
            self.insert_client_credentials(issues)
        })
        .await
    }

    /// The grants of `issues` and their access tokens, in one transaction.
    pub(super) async fn insert_client_credentials(
        &self,
        issues: &[Issue],
    ) -> Result<(), StoreError> {
        if self.db.get_database_backend() == DbBackend::Postgres {
            // One statement, one round trip and one commit for the whole group: issuance is a
            // hot path, and a data-modifying CTE is atomic on Postgres (and CockroachDB).
            let mut values: Vec<Value> = Vec::with_capacity(1 + 7 * issues.len());
            values.push(GrantType::ClientCredentials.as_str().into());
            for Issue {
                grant_id,
                client_id,
                token,
            } in issues
            {
                values.extend([
                    (*grant_id).into(),
                    client_id.as_str().into(),
                    token.scope.to_string().into(),
                    token.audience.to_string().into(),
                    token.issued_at.into(),
                    token.expires_at.into(),
                    token.hash.as_bytes().to_vec().into(),
                ]);
            }
            self.db
                .execute_raw(Statement::from_sql_and_values(
                    DbBackend::Postgres,
                    issue_client_credentials_sql(issues.len()),
                    values,
                ))
                .await?;
            return Ok(());
        }
        let grants = issues.iter().map(|issue| grant::ActiveModel {
            id: Set(issue.grant_id),
            client_id: Set(issue.client_id.clone()),
            user_id: Set(None),
            grant_type: Set(GrantType::ClientCredentials.as_str().to_owned()),
            scope: Set(issue.token.scope.to_string()),
            audience: Set(issue.token.audience.to_string()),
            created_at: Set(issue.token.issued_at),
            expires_at: Set(issue.token.expires_at),
            revoked_at: Set(None),
            // No sign-in: the OpenID Connect columns stay NULL.
            ..Default::default()
        });
        let tokens = issues
            .iter()
            .map(|issue| access_token_row(issue.grant_id, &issue.client_id, &issue.token));
        let txn = self.db.begin().await?;
        grant::Entity::insert_many(grants)
            .exec_without_returning(&txn)
            .await?;
        access_token::Entity::insert_many(tokens)
            .exec_without_returning(&txn)
            .await?;
        txn.commit().await?;
        Ok(())
    }

    /// Stores a token obtained by token exchange (RFC 8693) in the grant of its subject token,
    /// so that revoking that grant revokes it too. `Gone` if the grant was deleted meanwhile.
    pub async fn issue_exchanged_token(
        &self,
        grant_id: Uuid,
        client_id: &str,
        token: &NewAccessToken,
        act: &Actor,
    ) -> Result<(), StoreError> {
        let act = serde_json::to_string(act).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let act = &act;
        self.retrying("issue_exchanged_token", move || async move {
            let mut row = access_token_row(grant_id, client_id, token);
            row.act = Set(Some(act.clone()));
            access_token::Entity::insert(row)
                .exec_without_returning(&self.db)
                .await?;
            Ok(())
        })
        .await
    }

    /// The introspection hot path: an access token from this instance's cache
    /// ([`super::TokenCache`]) when it is there, else one primary-key lookup joined to the
    /// grant and the user.
    pub async fn token_record(
        &self,
        hash: &TokenHash,
        kind: RecordKind,
    ) -> Result<Option<TokenRecord>, StoreError> {
        let now = crate::clock::now();
        let ticket = match kind {
            RecordKind::Access => match self.token_cache().lookup(hash, now) {
                Lookup::Hit(record) => return Ok(Some(record)),
                Lookup::Miss(ticket) => Some(ticket),
                Lookup::Bypass => None,
            },
            RecordKind::Refresh => None,
        };
        let found = self.token_record_in_grant(hash, kind).await?;
        if let (Some(ticket), Some((record, grant))) = (ticket, &found) {
            self.token_cache().offer(ticket, hash, record, *grant, now);
        }
        Ok(found.map(|(record, _)| record))
    }

    /// The record and the id of the grant the token belongs to.
    pub(crate) async fn token_record_in_grant(
        &self,
        hash: &TokenHash,
        kind: RecordKind,
    ) -> Result<Option<(TokenRecord, Uuid)>, StoreError> {
        let statement = self
            .db
            .get_database_backend()
            .build(&introspection_select(hash, kind));
        // Under SERIALIZABLE even this one read can be aborted (SQLSTATE 40001) when it
        // overlaps writers of the same rows, e.g. a migration's backfill of access_tokens.
        let statement = &statement;
        let found = self
            .retrying("token_record", move || async move {
                Ok(IntrospectionRow::find_by_statement(statement.clone())
                    .one(&self.db)
                    .await?)
            })
            .await?;
        let Some(row) = found else {
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
        let act = match row.act.as_deref() {
            Some(json) => Some(serde_json::from_str(json).map_err(|_| {
                StoreError::Corrupt("an access token's actor chain is not valid JSON".into())
            })?),
            None => None,
        };
        let record = TokenRecord {
            kind,
            client_id: row.client_id,
            grant_client_id: row.grant_client_id,
            scope: row.scope,
            audience: Audience::from_stored(&row.audience),
            act,
            issued_at: row.issued_at,
            expires_at: row.expires_at,
            revoked: row.revoked_at.is_some()
                || row.used_at.is_some()
                || row.grant_revoked_at.is_some(),
            user,
        };
        Ok(Some((record, row.grant_id)))
    }

    /// The unexpired access tokens a `token` or `grant` change names, with their audiences, in
    /// one query: what the revocation stream tells resource servers. Empty for other kinds and
    /// for subjects that name nothing (any more).
    pub async fn access_tokens_of_change(
        &self,
        change: &Change,
        now: i64,
    ) -> Result<Vec<(TokenHash, Audience)>, StoreError> {
        let named = match change.kind {
            Some(ChangeKind::Token) => match decode_hash(&change.subject) {
                Some(hash) => access_token::Column::Hash.eq(hash.to_vec()),
                None => return Ok(Vec::new()),
            },
            Some(ChangeKind::Grant) => match Uuid::parse_str(&change.subject) {
                Ok(grant_id) => access_token::Column::GrantId.eq(grant_id),
                Err(_) => return Ok(Vec::new()),
            },
            _ => return Ok(Vec::new()),
        };
        let rows: Vec<(Vec<u8>, String)> = access_token::Entity::find()
            .select_only()
            .column(access_token::Column::Hash)
            .column(access_token::Column::Audience)
            .filter(named)
            .filter(access_token::Column::ExpiresAt.gt(now))
            .into_tuple()
            .all(&self.db)
            .await?;
        Ok(rows
            .into_iter()
            .filter_map(|(hash, audience)| {
                Some((
                    TokenHash::from_slice(&hash)?,
                    Audience::from_stored(&audience),
                ))
            })
            .collect())
    }

    /// Revokes on behalf of `client_id`, which may revoke only its own tokens. Revoking a
    /// refresh token revokes its whole grant, access tokens included (RFC 7009 §2.1).
    pub async fn revoke(
        &self,
        target: RevocationTarget,
        client_id: &str,
        now: i64,
    ) -> Result<RevocationOutcome, StoreError> {
        let target = &target;
        self.retrying("revoke", move || self.revoke_once(target, client_id, now))
            .await
    }

    async fn revoke_once(
        &self,
        target: &RevocationTarget,
        client_id: &str,
        now: i64,
    ) -> Result<RevocationOutcome, StoreError> {
        match target {
            RevocationTarget::AccessToken(hash) => {
                let key = hash.as_bytes().to_vec();
                let owner = access_token::Entity::find_by_id(key.clone())
                    .one(&self.db)
                    .await?
                    .map(|row| row.client_id);
                match owner {
                    None => Ok(RevocationOutcome::Unknown),
                    Some(owner) if owner != client_id => {
                        Ok(RevocationOutcome::IssuedToAnotherClient)
                    }
                    Some(_) => {
                        let subject = encode_hash(hash.as_bytes());
                        let revoke = access_token::Entity::update_many()
                            .col_expr(access_token::Column::RevokedAt, Expr::value(now))
                            .filter(access_token::Column::Hash.eq(key))
                            .filter(access_token::Column::RevokedAt.is_null());
                        let txn = self.db.begin().await?;
                        if revoke.exec(&txn).await?.rows_affected > 0 {
                            changes::record(&txn, ChangeKind::Token, &subject).await?;
                        }
                        txn.commit().await?;
                        // Also when it was revoked already: that revocation's own eviction
                        // may not have run yet.
                        self.changed_here(ChangeKind::Token, &subject);
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
                        self.revoke_grant(row.grant_id, now).await?;
                        Ok(RevocationOutcome::Revoked)
                    }
                }
            }
        }
    }

    /// Marks a grant revoked; every token and code of it is inactive from now on, on this
    /// instance before it returns and on the others through the change log.
    pub(crate) async fn revoke_grant(&self, grant_id: Uuid, now: i64) -> Result<(), StoreError> {
        let txn = self.db.begin().await?;
        let only = Condition::all().add(grant::Column::Id.eq(grant_id));
        super::grants::revoke_grants_in(&txn, only, now).await?;
        txn.commit().await?;
        // Also when it was revoked already: that revocation's own eviction may not have run.
        self.grants_revoked_here(&[grant_id]);
        Ok(())
    }
}

/// The token of `kind` with `hash`, joined to its grant and user. An access token has its own
/// audience and actor chain; a refresh token carries its grant's audience, and counts as used
/// once rotated.
fn introspection_select(hash: &TokenHash, kind: RecordKind) -> sea_orm::sea_query::SelectStatement {
    let key = hash.as_bytes().to_vec();
    let mut select = Query::select();
    match kind {
        RecordKind::Access => {
            let token = access_token::Entity;
            select
                .column((token, access_token::Column::GrantId))
                .column((token, access_token::Column::ClientId))
                .column((token, access_token::Column::Scope))
                .column((token, access_token::Column::Audience))
                .column((token, access_token::Column::Act))
                .column((token, access_token::Column::IssuedAt))
                .column((token, access_token::Column::ExpiresAt))
                .column((token, access_token::Column::RevokedAt))
                .expr_as(Expr::value(Option::<i64>::None), "used_at")
                .from(token)
                .inner_join(
                    grant::Entity,
                    Expr::col((grant::Entity, grant::Column::Id))
                        .equals((token, access_token::Column::GrantId)),
                )
                .and_where(Expr::col((token, access_token::Column::Hash)).eq(key));
        }
        RecordKind::Refresh => {
            let token = refresh_token::Entity;
            select
                .column((token, refresh_token::Column::GrantId))
                .column((token, refresh_token::Column::ClientId))
                .column((token, refresh_token::Column::Scope))
                .column((grant::Entity, grant::Column::Audience))
                .expr_as(Expr::value(Option::<String>::None), "act")
                .column((token, refresh_token::Column::IssuedAt))
                .column((token, refresh_token::Column::ExpiresAt))
                .column((token, refresh_token::Column::RevokedAt))
                .expr_as(
                    Expr::col((token, refresh_token::Column::RotatedAt)),
                    "used_at",
                )
                .from(token)
                .inner_join(
                    grant::Entity,
                    Expr::col((grant::Entity, grant::Column::Id))
                        .equals((token, refresh_token::Column::GrantId)),
                )
                .and_where(Expr::col((token, refresh_token::Column::Hash)).eq(key));
        }
    }
    select
        .expr_as(
            Expr::col((grant::Entity, grant::Column::ClientId)),
            "grant_client_id",
        )
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
        .left_join(
            user::Entity,
            Expr::col((user::Entity, user::Column::Id))
                .equals((grant::Entity, grant::Column::UserId)),
        )
        .to_owned()
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
        audience: Set(token.audience.to_string()),
        act: Set(None),
    }
}
