//! Who calls the admin API: a client presenting its own access token with the
//! [`ADMIN_SCOPE`](super::ADMIN_SCOPE) scope, checked on every call.
//!
//! The admin API is a resource server of its own, like the account API: it accepts tokens
//! that name no resource, never one meant for another service. Only a client's own token
//! administers (client_credentials: no user, no actor chain), so neither a person's token nor
//! one obtained by exchange does, whatever scope it carries. The client must still be
//! registered with the scope: an operator who takes it away stops its tokens at once.
use super::ADMIN_SCOPE;
use super::problem::Problem;
use crate::clock;
use crate::http::AppState;
use crate::http::bearer::bearer;
use crate::http::error::ApiError;
use crate::oauth::introspection::{Caller, Introspection, RecordKind};
use crate::oauth::scope::ScopeSet;
use crate::oauth::token::{self, TokenKind};
use crate::store::{Actor, AuditEntry, AuditKind};
use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest, web};
use futures_util::future::LocalBoxFuture;
use std::net::IpAddr;

/// The admin API as a resource server: tokens without an audience, and no others.
const ADMIN_API: Caller<'static> = Caller {
    client_id: "",
    can_introspect: true,
    introspects_for: &[],
    require_audience: false,
};

/// The client behind a valid admin token.
#[derive(Debug, Clone)]
pub struct AdminCaller {
    pub client_id: String,
    address: Option<IpAddr>,
}

impl AdminCaller {
    /// Who the audit log says made a change.
    pub fn actor(&self) -> Actor {
        Actor::Client(self.client_id.clone())
    }

    /// An audit entry of `kind` made by this caller, from its address.
    pub fn audit(&self, kind: AuditKind) -> AuditEntry {
        AuditEntry::new(kind)
            .actor(&self.actor())
            .address(self.address)
    }
}

impl FromRequest for AdminCaller {
    type Error = Problem;
    type Future = LocalBoxFuture<'static, Result<Self, Problem>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let authorization = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let address = crate::http::client_address::client_address(req);
        Box::pin(async move {
            let state = state.ok_or_else(|| Problem::internal("no application state"))?;
            let presented = bearer(authorization.as_deref()).map_err(|err| match err {
                ApiError::MissingToken => Problem::MissingToken,
                _ => Problem::InvalidToken,
            })?;
            let client_id = admin_client(&state, presented).await?;
            Ok(Self { client_id, address })
        })
    }
}

/// The id of the client whose admin token `presented` is.
async fn admin_client(state: &AppState, presented: &str) -> Result<String, Problem> {
    let parsed = token::parse(presented)
        .filter(|p| p.kind == TokenKind::AccessToken)
        .ok_or(Problem::InvalidToken)?;
    let record = state
        .store
        .token_record(&parsed.hash, RecordKind::Access)
        .await?;
    let answer = Introspection::of(
        record,
        clock::now(),
        &state.settings.server.issuer,
        &ADMIN_API,
        parsed.hash.public_id(),
    );
    let details = answer.details.ok_or(Problem::InvalidToken)?;
    // A client's own token: no user, no actor, its subject is the client itself.
    let own =
        details.username.is_none() && details.act.is_none() && details.sub == details.client_id;
    if !own || !ScopeSet::from_stored(&details.scope).contains(ADMIN_SCOPE) {
        return Err(Problem::InsufficientScope);
    }
    let client = state
        .clients
        .get(&state.store, &details.client_id)
        .await?
        .ok_or(Problem::InvalidToken)?;
    if !client.scopes.contains(ADMIN_SCOPE) {
        return Err(Problem::InsufficientScope);
    }
    Ok(details.client_id)
}
