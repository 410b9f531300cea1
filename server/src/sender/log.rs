//! The development sender: the code goes to the log. Refused in production by the settings.
use super::{CodeMessage, CodeSender, SendError};
use futures_util::future::BoxFuture;
use secrecy::ExposeSecret;

pub struct LogSender;

impl CodeSender for LogSender {
    fn send<'a>(&'a self, message: &'a CodeMessage) -> BoxFuture<'a, Result<(), SendError>> {
        Box::pin(async move {
            tracing::warn!(
                channel = ?message.channel,
                to = %message.to,
                code = message.code.expose_secret(),
                "development sender: one-time code (sender.kind = \"log\")"
            );
            Ok(())
        })
    }
}
