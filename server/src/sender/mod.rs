//! Delivering one-time codes: a trait with three implementations chosen by
//! `sender.kind` — `log` (development), `smtp` (e-mail through lettre) and `webhook` (a JSON
//! POST, e.g. to an SMS gateway). Tests inject their own.
mod log;
mod smtp;
mod webhook;

use crate::settings::{SenderKind, SenderSettings};
use futures_util::future::BoxFuture;
use secrecy::SecretString;
use std::sync::Arc;

pub use self::log::LogSender;
pub use smtp::SmtpSender;
pub use webhook::WebhookSender;

/// Where a one-time code goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Channel {
    Email,
    Sms,
}

/// Why a code is sent: to confirm a new factor or to sign in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Purpose {
    Enrolment,
    SignIn,
}

/// One message to deliver. `Debug` leaves the code out.
pub struct CodeMessage {
    pub channel: Channel,
    pub to: String,
    pub code: SecretString,
    pub purpose: Purpose,
}

impl std::fmt::Debug for CodeMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CodeMessage")
            .field("channel", &self.channel)
            .field("purpose", &self.purpose)
            .finish_non_exhaustive()
    }
}

impl CodeMessage {
    /// The text a person reads, the same for every transport.
    pub fn text(&self) -> String {
        use secrecy::ExposeSecret;
        let why = match self.purpose {
            Purpose::Enrolment => "to confirm this address",
            Purpose::SignIn => "to sign in",
        };
        format!(
            "Your Umbra code {why} is {}. It expires in a few minutes. If you did not ask for it, ignore this message.",
            self.code.expose_secret()
        )
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("this sender cannot deliver {0:?} messages")]
    Unsupported(Channel),
    #[error("the destination is not valid: {0}")]
    Destination(String),
    #[error("delivery failed: {0}")]
    Failed(String),
}

/// Delivers codes. Implementations never log the code (except [`LogSender`], whose purpose
/// that is, and which production refuses).
pub trait CodeSender: Send + Sync {
    fn send<'a>(&'a self, message: &'a CodeMessage) -> BoxFuture<'a, Result<(), SendError>>;
}

/// reqwest is built without a bundled crypto provider (so that aws-lc is not compiled in);
/// TLS uses ring, as sqlx does. Every process that builds a reqwest client calls this first;
/// a second installation attempt fails harmlessly.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// The sender `settings.kind` names.
pub fn from_settings(settings: &SenderSettings) -> Result<Arc<dyn CodeSender>, SendError> {
    Ok(match settings.kind {
        SenderKind::Log => Arc::new(LogSender),
        SenderKind::Smtp => Arc::new(SmtpSender::new(settings)?),
        SenderKind::Webhook => Arc::new(WebhookSender::new(settings)?),
    })
}
