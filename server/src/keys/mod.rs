//! Umbra's signing keys: generated here, stored with the private half encrypted, published in
//! the JWKS, and used for every JWT Umbra signs (ID tokens, signed introspection answers).
//!
//! A key's life: created and published at once; signing from `activates_at` (a rotation sets
//! it `keys.prepublish_secs` ahead, so that relying parties that cache the JWKS learn the new
//! key before they meet it); retired when its successor activates; published until
//! `expires_at` (`keys.publish_retired_secs` after retirement), when everything it signed has
//! expired; then deleted. Each instance keeps the keys in memory and re-reads them every
//! `keys.refresh_secs`, and at once when it finds no key to sign with, so that a rotation made
//! by the CLI or another instance is picked up without a restart.
//!
//! With many instances on one database, the automatic rotations (the first key of a new
//! installation, and rotation by age) are made by the holder of the `signing-keys` lease
//! only, after it re-reads the keys: N instances starting together, or seeing the key come
//! of age together, make one key, not N.
pub mod material;

use crate::auth::secret_box::SecretBox;
use crate::store::{Holder, Lease, NewSigningKey, Store, StoreError};
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{EncodingKey, Header};
pub use material::{SigningAlg, UnknownAlg};
use serde::Serialize;
use std::sync::{Arc, RwLock};

/// Why a key operation failed.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cannot generate a {0} key")]
    Generate(SigningAlg),
    #[error("corrupt signing key: {0}")]
    Corrupt(String),
    /// The configured key-encryption key is not the one the keys were sealed with.
    #[error("a private signing key does not decrypt with keys.encryption_key")]
    Decrypt,
    #[error("no active {0} signing key (create one with `umbra keys rotate --alg {0}`)")]
    NoActiveKey(SigningAlg),
    #[error("no signing key {0:?}")]
    UnknownKey(String),
    #[error(
        "{kid} is the last active {alg} key: rotate first (`umbra keys rotate --alg {alg}`), \
         then retire it"
    )]
    LastActiveKey { kid: String, alg: SigningAlg },
    #[error("signing failed: {0}")]
    Sign(String),
    /// A JWS presented as Umbra's own that is not (see [`KeyRing::verify`]).
    #[error("not a token signed by this server: {0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Longest JWS [`KeyRing::verify`] looks at; Umbra's own ID tokens are far shorter.
const MAX_VERIFIED_LEN: usize = 8 * 1024;

/// The rules of the key life cycle, from `[keys]`.
#[derive(Debug, Clone, Copy)]
pub struct KeyPolicy {
    /// The algorithm of the key made at first start and of rotations that name none.
    pub default_alg: SigningAlg,
    /// How long a new key is published before it signs.
    pub prepublish_secs: i64,
    /// How long a retired key stays published: longer than anything it signed lives.
    pub publish_retired_secs: i64,
    /// Rotate the default algorithm's key once it is this old; 0: never automatically.
    pub rotate_after_secs: i64,
}

/// What `umbra keys list` shows of a key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct KeySummary {
    pub kid: String,
    pub alg: String,
    /// `pending` (published, not signing yet), `active`, or `retired` (published only).
    pub state: &'static str,
    pub created_at: i64,
    pub activates_at: i64,
    pub retired_at: Option<i64>,
    pub expires_at: Option<i64>,
}

impl KeySummary {
    fn of(row: entity::signing_key::Model, now: i64) -> Self {
        Self {
            state: state(row.activates_at, row.retired_at, now),
            kid: row.kid,
            alg: row.alg,
            created_at: row.created_at,
            activates_at: row.activates_at,
            retired_at: row.retired_at,
            expires_at: row.expires_at,
        }
    }
}

/// A stored key as an instance holds it.
struct LoadedKey {
    summary: KeySummary,
    alg: SigningAlg,
    jwk: Jwk,
    /// Only for keys that may still sign; retired keys are published and never decrypted.
    signer: Option<EncodingKey>,
}

impl LoadedKey {
    fn signs_at(&self, now: i64) -> bool {
        self.summary.activates_at <= now
            && self.summary.retired_at.is_none_or(|retired| now < retired)
    }

    fn published_at(&self, now: i64) -> bool {
        self.summary.created_at <= now && self.summary.expires_at.is_none_or(|end| now < end)
    }
}

/// The lease of the instance that makes the automatic rotations; far longer than making a
/// key takes, and short enough that a holder that died delays the others little.
const ROTATION_LEASE: &str = "signing-keys";
const ROTATION_LEASE_SECS: i64 = 60;
/// How often an instance without a key looks whether the lease holder has made one.
const FIRST_KEY_POLL: std::time::Duration = std::time::Duration::from_millis(200);

/// The signing keys of this instance. Cheap to share behind an `Arc`.
pub struct KeyRing {
    store: Store,
    sealer: Arc<SecretBox>,
    policy: KeyPolicy,
    /// This instance, when it takes the rotation lease.
    holder: Holder,
    keys: RwLock<Arc<Vec<LoadedKey>>>,
}

impl KeyRing {
    /// A ring with no keys loaded (for code paths that never sign, such as unit tests of the
    /// HTTP plumbing).
    pub fn empty(store: Store, sealer: Arc<SecretBox>, policy: KeyPolicy) -> Self {
        Self {
            store,
            sealer,
            policy,
            holder: Holder::generate(),
            keys: RwLock::new(Arc::new(Vec::new())),
        }
    }

    /// Loads the keys, first creating (and activating at once) a key of the default algorithm
    /// if none is live: a new installation has no JWKS cached anywhere to wait for. When
    /// another instance holds the rotation lease, waits for the key it makes instead; the
    /// wait ends by itself, since that lease expires if its holder dies.
    pub async fn load(
        store: Store,
        sealer: Arc<SecretBox>,
        policy: KeyPolicy,
        holder: Holder,
        now: i64,
    ) -> Result<Self, KeyError> {
        let ring = Self {
            holder,
            ..Self::empty(store, sealer, policy)
        };
        ring.refresh(now).await?;
        let mut now = now;
        while ring.active(policy.default_alg, now).is_none() {
            let no_key = |ring: &Self, now| ring.active(ring.policy.default_alg, now).is_none();
            if ring.rotate_under_lease(true, no_key, now).await? {
                break;
            }
            tokio::time::sleep(FIRST_KEY_POLL).await;
            now = crate::clock::now();
            ring.reload(now).await?;
        }
        Ok(ring)
    }

    /// Re-reads the keys every `every`, and at once when `changed` is notified (the change log
    /// saw a rotation elsewhere), until `stop` changes, deleting keys whose publication has
    /// ended. A failed pass keeps the keys already loaded.
    pub fn spawn_refresh(
        self: Arc<Self>,
        every: std::time::Duration,
        changed: Arc<tokio::sync::Notify>,
        mut stop: tokio::sync::watch::Receiver<bool>,
    ) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(every);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            ticks.tick().await;
            loop {
                tokio::select! {
                    _ = ticks.tick() => {}
                    _ = changed.notified() => {}
                    _ = stop.changed() => break,
                }
                let now = crate::clock::now();
                if let Err(err) = self.store.delete_expired_signing_keys(now).await {
                    tracing::warn!(error = %err, "could not delete expired signing keys");
                }
                if let Err(err) = self.refresh(now).await {
                    tracing::warn!(error = %err, "could not re-read the signing keys");
                }
            }
        })
    }

    /// Re-reads the keys from the database; rotates the default algorithm's key when
    /// automatic rotation is on and it is due.
    pub async fn refresh(&self, now: i64) -> Result<(), KeyError> {
        self.reload(now).await?;
        if self.rotation_due(now) {
            // Another instance holding the lease is rotating: the next re-read shows its key.
            self.rotate_under_lease(false, Self::rotation_due, now)
                .await?;
        }
        Ok(())
    }

    /// Takes the rotation lease, re-reads the keys and, if `due` still holds (no other
    /// instance rotated meanwhile), rotates the default algorithm's key. False when another
    /// instance holds the lease, and nothing was done.
    async fn rotate_under_lease(
        &self,
        immediately: bool,
        due: impl Fn(&Self, i64) -> bool,
        now: i64,
    ) -> Result<bool, KeyError> {
        let lease = Lease::new(
            self.store.clone(),
            ROTATION_LEASE,
            self.holder.clone(),
            ROTATION_LEASE_SECS,
        );
        if !lease.try_take(now).await? {
            return Ok(false);
        }
        let rotated = async {
            self.reload(now).await?;
            if due(self, now) {
                tracing::info!(alg = %self.policy.default_alg, "rotating the signing key");
                self.rotate(self.policy.default_alg, immediately, now)
                    .await?;
            }
            Ok::<_, KeyError>(())
        }
        .await;
        let released = lease.release().await;
        rotated?;
        released?;
        Ok(true)
    }

    /// Replaces the keys held with those the database has.
    async fn reload(&self, now: i64) -> Result<(), KeyError> {
        let rows = self.store.live_signing_keys(now).await?;
        let mut keys = Vec::with_capacity(rows.len());
        for row in rows {
            keys.push(self.loaded(row, now)?);
        }
        *self.keys.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(keys);
        Ok(())
    }

    fn rotation_due(&self, now: i64) -> bool {
        let age = self.policy.rotate_after_secs;
        if age <= 0 {
            return false;
        }
        let keys = self.snapshot();
        let newest = keys
            .iter()
            .filter(|k| k.alg == self.policy.default_alg && k.summary.retired_at.is_none())
            .map(|k| k.summary.created_at)
            .max();
        newest.is_some_and(|created| now - created >= age)
    }

    fn loaded(&self, row: entity::signing_key::Model, now: i64) -> Result<LoadedKey, KeyError> {
        let alg: SigningAlg = row
            .alg
            .parse()
            .map_err(|e: UnknownAlg| KeyError::Corrupt(e.to_string()))?;
        let jwk: Jwk = serde_json::from_str(&row.public_jwk)
            .map_err(|_| KeyError::Corrupt(format!("the public JWK of {} is not JSON", row.kid)))?;
        let private_key = row.private_key.clone();
        let summary = KeySummary::of(row, now);
        let signer = if summary.retired_at.is_none_or(|retired| now < retired) {
            let pkcs8 = self
                .sealer
                .open(&private_key, summary.kid.as_bytes())
                .map_err(|_| KeyError::Decrypt)?;
            Some(material::encoding_key(alg, &pkcs8)?)
        } else {
            None
        };
        Ok(LoadedKey {
            summary,
            alg,
            jwk,
            signer,
        })
    }

    fn snapshot(&self) -> Arc<Vec<LoadedKey>> {
        self.keys.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The kid of the key that signs `alg` at `now`: the latest activated one.
    fn active(&self, alg: SigningAlg, now: i64) -> Option<String> {
        signing_key(&self.snapshot(), alg, now).map(|(k, _)| k.summary.kid.clone())
    }

    /// The JWKS (RFC 7517 §5): every published key.
    pub fn jwks(&self, now: i64) -> serde_json::Value {
        let snapshot = self.snapshot();
        let keys: Vec<&Jwk> = snapshot
            .iter()
            .filter(|k| k.published_at(now))
            .map(|k| &k.jwk)
            .collect();
        serde_json::json!({ "keys": keys })
    }

    /// The algorithms this instance can sign with now.
    pub fn algorithms(&self, now: i64) -> Vec<SigningAlg> {
        SigningAlg::ALL
            .into_iter()
            .filter(|alg| self.active(*alg, now).is_some())
            .collect()
    }

    /// The default algorithm (what ID tokens use unless a client asks for another).
    pub fn default_alg(&self) -> SigningAlg {
        self.policy.default_alg
    }

    /// Signs `claims` as a JWS with the active key of `alg`, `typ` in the header. Re-reads the
    /// keys once when none is active (a rotation this instance has not seen yet).
    pub async fn sign<T: Serialize>(
        &self,
        alg: SigningAlg,
        typ: &str,
        claims: &T,
        now: i64,
    ) -> Result<String, KeyError> {
        if self.active(alg, now).is_none() {
            self.refresh(now).await?;
        }
        let snapshot = self.snapshot();
        let (key, signer) = signing_key(&snapshot, alg, now).ok_or(KeyError::NoActiveKey(alg))?;
        let mut header = Header::new(alg.jws());
        header.kid = Some(key.summary.kid.clone());
        header.typ = Some(typ.to_owned());
        jsonwebtoken::encode(&header, claims, signer).map_err(|e| KeyError::Sign(e.to_string()))
    }

    /// Checks that `token` is a compact JWS signed by one of Umbra's keys published at `now`
    /// (pending, active or retired: an ID token outlives its key's signing days) and returns
    /// its claims. The header's `alg` must be the key's own, so `none`, HMAC or another
    /// algorithm never passes. Nothing else is checked: expiry, issuer and audience are the
    /// caller's rules (an expired ID token is still a good `id_token_hint`).
    pub fn verify(&self, token: &str, now: i64) -> Result<serde_json::Value, KeyError> {
        let invalid = |why: &str| KeyError::Invalid(why.to_owned());
        if token.len() > MAX_VERIFIED_LEN {
            return Err(invalid("too long"));
        }
        let header = jsonwebtoken::decode_header(token).map_err(|_| invalid("malformed"))?;
        let kid = header.kid.ok_or_else(|| invalid("no kid"))?;
        let snapshot = self.snapshot();
        let key = snapshot
            .iter()
            .find(|k| k.summary.kid == kid && k.published_at(now))
            .ok_or_else(|| invalid("unknown kid"))?;
        let decoding = jsonwebtoken::DecodingKey::from_jwk(&key.jwk)
            .map_err(|e| KeyError::Corrupt(e.to_string()))?;
        let mut validation = jsonwebtoken::Validation::new(key.alg.jws());
        validation.required_spec_claims.clear();
        validation.validate_exp = false;
        validation.validate_aud = false;
        jsonwebtoken::decode::<serde_json::Value>(token, &decoding, &validation)
            .map(|data| data.claims)
            .map_err(|_| invalid("bad signature"))
    }

    /// Creates a key of `alg`, published now and signing after the pre-publication time (at
    /// once if `immediately`, for a first key or a compromised one); the keys of `alg` active
    /// until then retire when it activates.
    pub async fn rotate(
        &self,
        alg: SigningAlg,
        immediately: bool,
        now: i64,
    ) -> Result<KeySummary, KeyError> {
        let summary = rotate(
            &self.store,
            &self.sealer,
            &self.policy,
            alg,
            immediately,
            now,
        )
        .await?;
        self.reload(now).await?;
        Ok(summary)
    }
}

/// The key that signs `alg` at `now` (the latest activated one that may sign), with its signer.
fn signing_key(
    keys: &[LoadedKey],
    alg: SigningAlg,
    now: i64,
) -> Option<(&LoadedKey, &EncodingKey)> {
    keys.iter()
        .filter(|k| k.alg == alg && k.signs_at(now))
        .filter_map(|k| Some((k, k.signer.as_ref()?)))
        .max_by_key(|(k, _)| k.summary.activates_at)
}

/// `pending`, `active` or `retired` at `now`.
fn state(activates_at: i64, retired_at: Option<i64>, now: i64) -> &'static str {
    match retired_at {
        Some(retired) if retired <= now => "retired",
        _ if activates_at > now => "pending",
        _ => "active",
    }
}

/// Generates and stores a key of `alg` (see [`KeyRing::rotate`]); for the CLI, which has no
/// ring of its own.
pub async fn rotate(
    store: &Store,
    sealer: &SecretBox,
    policy: &KeyPolicy,
    alg: SigningAlg,
    immediately: bool,
    now: i64,
) -> Result<KeySummary, KeyError> {
    let generated = tokio::task::spawn_blocking(move || material::generate(alg))
        .await
        .map_err(|_| KeyError::Generate(alg))??;
    let sealed = sealer
        .seal(&generated.pkcs8, generated.kid.as_bytes())
        .map_err(|_| KeyError::Generate(alg))?;
    let activates_at = if immediately {
        now
    } else {
        now + policy.prepublish_secs
    };
    let public_jwk = serde_json::to_string(&generated.public_jwk)
        .map_err(|e| KeyError::Corrupt(e.to_string()))?;
    store
        .rotate_signing_key(
            &NewSigningKey {
                kid: generated.kid.clone(),
                alg: alg.as_str(),
                public_jwk,
                private_key: sealed,
                created_at: now,
                activates_at,
            },
            policy.publish_retired_secs,
        )
        .await?;
    Ok(KeySummary {
        kid: generated.kid,
        alg: alg.as_str().to_owned(),
        state: state(activates_at, None, now),
        created_at: now,
        activates_at,
        retired_at: None,
        expires_at: None,
    })
}

/// Every stored key that is still published, newest first, for `umbra keys list`.
pub async fn list(store: &Store, now: i64) -> Result<Vec<KeySummary>, KeyError> {
    Ok(store
        .live_signing_keys(now)
        .await?
        .into_iter()
        .map(|row| KeySummary::of(row, now))
        .collect())
}

/// Stops `kid` signing now; it stays published for `publish_retired_secs`. Refused for the
/// last key of its algorithm, which would leave that algorithm without a key. A successor
/// still waiting out its pre-publication starts signing at once: retiring now means the key
/// is not to be trusted any longer (a compromise), which outweighs caches that have not seen
/// the successor yet.
pub async fn retire(
    store: &Store,
    policy: &KeyPolicy,
    kid: &str,
    now: i64,
) -> Result<KeySummary, KeyError> {
    let keys = list(store, now).await?;
    let key = keys
        .iter()
        .find(|k| k.kid == kid)
        .ok_or_else(|| KeyError::UnknownKey(kid.to_owned()))?;
    let alg: SigningAlg = key
        .alg
        .parse()
        .map_err(|e: UnknownAlg| KeyError::Corrupt(e.to_string()))?;
    let successor = keys
        .iter()
        .any(|k| k.kid != kid && k.alg == key.alg && k.retired_at.is_none());
    if key.retired_at.is_none() && !successor {
        return Err(KeyError::LastActiveKey {
            kid: kid.to_owned(),
            alg,
        });
    }
    store
        .retire_signing_key(kid, now, policy.publish_retired_secs)
        .await?;
    let signing_now = key.state == "active"
        && !keys
            .iter()
            .any(|k| k.kid != kid && k.alg == key.alg && k.state == "active");
    if signing_now
        && let Some(next) = keys
            .iter()
            .filter(|k| k.alg == key.alg && k.state == "pending")
            .min_by_key(|k| k.activates_at)
    {
        store.activate_signing_key_now(&next.kid, now).await?;
    }
    list(store, now)
        .await?
        .into_iter()
        .find(|k| k.kid == kid)
        .ok_or_else(|| KeyError::UnknownKey(kid.to_owned()))
}
