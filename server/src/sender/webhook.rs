//! A JSON POST to a configured URL, for SMS gateways and other relays:
//! `{"channel", "to", "code", "purpose", "text"}`. Any 2xx answer is a delivery.
use super::{CodeMessage, CodeSender, SendError};
use crate::settings::SenderSettings;
use futures_util::future::BoxFuture;
use secrecy::ExposeSecret;
use std::time::Duration;

pub struct WebhookSender {
    http: reqwest::Client,
    url: String,
    token: Option<String>,
}

impl WebhookSender {
    pub fn new(settings: &SenderSettings) -> Result<Self, SendError> {
        super::install_crypto_provider();
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(settings.timeout_secs))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| SendError::Failed(e.to_string()))?;
        Ok(Self {
            http,
            url: settings.webhook_url.clone(),
            token: (!settings.webhook_token.is_empty()).then(|| settings.webhook_token.clone()),
        })
    }
}

impl CodeSender for WebhookSender {
    fn send<'a>(&'a self, message: &'a CodeMessage) -> BoxFuture<'a, Result<(), SendError>> {
        Box::pin(async move {
            let body = serde_json::json!({
                "channel": message.channel,
                "to": message.to,
                "code": message.code.expose_secret(),
                "purpose": message.purpose,
                "text": message.text(),
            });
            let mut request = self.http.post(&self.url).json(&body);
            if let Some(token) = &self.token {
                request = request.bearer_auth(token);
            }
            // The error text of reqwest may contain the URL but never the body.
            let response = request
                .send()
                .await
                .map_err(|e| SendError::Failed(e.without_url().to_string()))?;
            if response.status().is_success() {
                Ok(())
            } else {
                Err(SendError::Failed(format!(
                    "the webhook answered {}",
                    response.status()
                )))
            }
        })
    }
}
