//! E-mail through an SMTP relay (lettre over tokio and rustls).
use super::{Channel, CodeMessage, CodeSender, SendError};
use crate::settings::{SenderSettings, SmtpTls};
use futures_util::future::BoxFuture;
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use std::time::Duration;

pub struct SmtpSender {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl SmtpSender {
    pub fn new(settings: &SenderSettings) -> Result<Self, SendError> {
        let host = settings.smtp_host.as_str();
        let builder = match settings.smtp_tls {
            SmtpTls::None => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host),
            SmtpTls::Starttls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(host)
                .map_err(|e| SendError::Failed(e.to_string()))?,
            SmtpTls::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(host)
                .map_err(|e| SendError::Failed(e.to_string()))?,
        };
        let mut builder = builder
            .port(settings.smtp_port)
            .timeout(Some(Duration::from_secs(settings.timeout_secs)));
        if !settings.smtp_username.is_empty() {
            builder = builder.credentials(Credentials::new(
                settings.smtp_username.clone(),
                settings.smtp_password.clone(),
            ));
        }
        let from = settings
            .smtp_from
            .parse()
            .map_err(|e| SendError::Failed(format!("sender.smtp_from: {e}")))?;
        Ok(Self {
            transport: builder.build(),
            from,
        })
    }
}

impl CodeSender for SmtpSender {
    fn send<'a>(&'a self, message: &'a CodeMessage) -> BoxFuture<'a, Result<(), SendError>> {
        Box::pin(async move {
            if message.channel != Channel::Email {
                return Err(SendError::Unsupported(message.channel));
            }
            let to: Mailbox = message
                .to
                .parse()
                .map_err(|e| SendError::Destination(format!("{e}")))?;
            let email = Message::builder()
                .from(self.from.clone())
                .to(to)
                .subject("Your Umbra code")
                .body(message.text())
                .map_err(|e| SendError::Failed(e.to_string()))?;
            self.transport
                .send(email)
                .await
                .map(|_| ())
                .map_err(|e| SendError::Failed(e.to_string()))
        })
    }
}
