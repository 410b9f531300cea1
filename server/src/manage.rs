//! Operator actions shared by the `umbra` CLI and the admin API: the checks of what an
//! operator asks that need the store, and what both show. One place, so that the two front
//! ends never disagree on a rule.
use crate::keys::SigningAlg;
use crate::oauth::client::Client;
use crate::oauth::client_auth::AuthMethod;
use crate::oauth::registration::Registration;
use crate::oauth::resource::validate_identifier;
use crate::oauth::token::{Token, TokenKind};
use crate::store::{Resource, Store, StoreError};
use serde::Serialize;

/// Why an operator's request was refused.
#[derive(Debug, thiserror::Error)]
pub enum ManageError {
    /// The request itself is wrong; the message says how, in one line.
    #[error("{0}")]
    Invalid(String),
    /// What the request names does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The operating system's random generator failed.
    #[error("the random number generator failed")]
    Random,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A resource's identifier, checked (RFC 8707 §2: an absolute URI without a fragment).
pub fn resource_identifier(identifier: &str) -> Result<(), ManageError> {
    validate_identifier(identifier).map_err(|reason| {
        ManageError::Invalid(format!("the resource identifier {identifier:?} {reason}"))
    })
}

/// A resource's name: not empty, trimmed.
pub fn resource_name(name: &str) -> Result<String, ManageError> {
    let name = name.trim();
    if name.is_empty() {
        return Err(ManageError::Invalid(
            "the resource name must not be empty".into(),
        ));
    }
    Ok(name.to_owned())
}

/// Checks that each client exists and is confidential, since a resource server proves who it
/// is with its secret when it introspects; the list without repeats.
pub async fn introspectors(
    store: &Store,
    client_ids: &[String],
) -> Result<Vec<String>, ManageError> {
    let mut checked: Vec<String> = Vec::with_capacity(client_ids.len());
    for client_id in client_ids {
        if checked.contains(client_id) {
            continue;
        }
        let Some(client) = store.find_client(client_id).await? else {
            return Err(ManageError::Invalid(format!(
                "the introspector {client_id:?} is not a registered client"
            )));
        };
        if client.is_public() {
            return Err(ManageError::Invalid(format!(
                "client {client_id:?} is public: an introspector authenticates with a secret, \
                 so it must be a confidential client"
            )));
        }
        checked.push(client_id.clone());
    }
    Ok(checked)
}

/// A client allowed to ask tokens for a resource.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AllowedClientView {
    pub client_id: String,
    /// The scopes it may ask there now.
    pub scopes: String,
    /// Whether it follows the resource's scopes as they change, rather than a list of its own.
    pub every_scope: bool,
}

/// A resource as operators see it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ResourceView {
    pub identifier: String,
    pub name: String,
    /// Space-separated scopes it defines.
    pub scopes: String,
    /// Clients that introspect its tokens.
    pub introspectors: Vec<String>,
    /// Clients that may ask tokens for it.
    pub clients: Vec<AllowedClientView>,
}

impl ResourceView {
    pub fn of(resource: &Resource) -> Self {
        let clients = resource
            .clients
            .iter()
            .map(|(client_id, scopes)| AllowedClientView {
                client_id: client_id.clone(),
                // A scope the resource no longer defines is not granted (see
                // `Store::resource_access`), so it is not shown either.
                scopes: scopes
                    .as_ref()
                    .map_or_else(
                        || resource.scopes.clone(),
                        |s| s.intersection(&resource.scopes),
                    )
                    .to_string(),
                every_scope: scopes.is_none(),
            })
            .collect();
        Self {
            identifier: resource.identifier.clone(),
            name: resource.name.clone(),
            scopes: resource.scopes.to_string(),
            introspectors: resource.introspectors.clone(),
            clients,
        }
    }
}

/// What a new client refers to must exist before it is written, so that a typo registers
/// nothing: the resources it may ask for, and an active key for the algorithm of its ID
/// tokens.
pub async fn client_prerequisites(
    store: &Store,
    resources: &[String],
    id_token_alg: Option<SigningAlg>,
    now: i64,
) -> Result<(), ManageError> {
    for identifier in resources {
        if store.find_resource(identifier).await?.is_none() {
            return Err(ManageError::Invalid(format!("no resource {identifier:?}")));
        }
    }
    if let Some(alg) = id_token_alg {
        let keys = crate::keys::list(store, now).await.map_err(|e| match e {
            crate::keys::KeyError::Store(e) => ManageError::Store(e),
            other => ManageError::Invalid(other.to_string()),
        })?;
        if !keys
            .iter()
            .any(|k| k.alg == alg.as_str() && k.state == "active")
        {
            return Err(ManageError::Invalid(format!(
                "no active {alg} signing key: create one first (`umbra keys rotate --alg {alg}`)"
            )));
        }
    }
    Ok(())
}

/// [`client_prerequisites`] of a registration.
pub async fn registration_prerequisites(
    store: &Store,
    registration: &Registration,
    now: i64,
) -> Result<(), ManageError> {
    client_prerequisites(
        store,
        &registration.resources,
        registration.client.openid.id_token_alg,
        now,
    )
    .await
}

/// Draws a new secret for client `id` and stores its hash (the old one stops working); the
/// client as it was read and the secret, shown once. A public or `private_key_jwt` client has
/// no secret to rotate.
pub async fn rotate_client_secret(
    store: &Store,
    id: &str,
    now: i64,
) -> Result<(Client, Token), ManageError> {
    let client = store
        .find_client(id)
        .await?
        .ok_or_else(|| ManageError::NotFound(format!("no client with id {id:?}")))?;
    match client.auth_method() {
        AuthMethod::None => {
            return Err(ManageError::Invalid(format!(
                "client {id:?} is public and has no secret"
            )));
        }
        AuthMethod::PrivateKeyJwt => {
            return Err(ManageError::Invalid(format!(
                "client {id:?} authenticates with private_key_jwt and has no secret; replace \
                 its keys instead"
            )));
        }
        AuthMethod::ClientSecretBasic | AuthMethod::ClientSecretPost => {}
    }
    let secret = Token::generate(TokenKind::ClientSecret).map_err(|_| ManageError::Random)?;
    if !store
        .set_client_secret(id, secret.hash(), None, now)
        .await?
    {
        return Err(ManageError::NotFound(format!("no client with id {id:?}")));
    }
    Ok((client, secret))
}
