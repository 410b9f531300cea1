//! A code sender that keeps what it was asked to send, so tests can read the codes.
use futures_util::future::BoxFuture;
use secrecy::ExposeSecret;
use std::sync::{Arc, Mutex};
use umbra::sender::{Channel, CodeMessage, CodeSender, Purpose, SendError};

/// One captured message, code in plain text.
#[derive(Debug, Clone)]
pub struct Captured {
    pub channel: Channel,
    pub to: String,
    pub code: String,
    pub purpose: Purpose,
}

#[derive(Clone, Default)]
pub struct CapturingSender {
    sent: Arc<Mutex<Vec<Captured>>>,
}

impl CapturingSender {
    pub fn sent(&self) -> Vec<Captured> {
        self.sent.lock().unwrap().clone()
    }

    /// The code of the latest message to `to`.
    pub fn last_code_to(&self, to: &str) -> String {
        self.sent()
            .into_iter()
            .rev()
            .find(|m| m.to == to)
            .map(|m| m.code)
            .unwrap_or_else(|| panic!("no code was sent to {to}"))
    }
}

impl CodeSender for CapturingSender {
    fn send<'a>(&'a self, message: &'a CodeMessage) -> BoxFuture<'a, Result<(), SendError>> {
        let captured = Captured {
            channel: message.channel,
            to: message.to.clone(),
            code: message.code.expose_secret().to_owned(),
            purpose: message.purpose,
        };
        self.sent.lock().unwrap().push(captured);
        Box::pin(async { Ok(()) })
    }
}
