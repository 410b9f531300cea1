//! The real code senders against tiny local servers: the webhook POSTs JSON, SMTP speaks to a
//! relay. No database involved.
use secrecy::SecretString;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use umbra::sender::{Channel, CodeMessage, CodeSender, Purpose, SmtpSender, WebhookSender};
use umbra::settings::{SenderKind, Settings, SmtpTls};

fn message(channel: Channel, to: &str) -> CodeMessage {
    CodeMessage {
        channel,
        to: to.into(),
        code: SecretString::from("123456"),
        purpose: Purpose::SignIn,
    }
}

/// Accepts one HTTP request, answers `status`, and returns the request's head and body.
async fn one_http_request(listener: TcpListener, status: &'static str) -> (String, String) {
    let (stream, _) = listener.accept().await.unwrap();
    let mut reader = BufReader::new(stream);
    let mut head = String::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).await.unwrap();
        if line == "\r\n" {
            break;
        }
        head.push_str(&line);
    }
    let length: usize = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length: ")
                .map(|v| v.trim().parse().unwrap())
        })
        .unwrap();
    let mut body = vec![0; length];
    reader.read_exact(&mut body).await.unwrap();
    let answer = format!("HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
    reader.get_mut().write_all(answer.as_bytes()).await.unwrap();
    (head, String::from_utf8(body).unwrap())
}

#[tokio::test]
async fn the_webhook_sender_posts_the_code_as_json_with_the_configured_token() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mut settings = Settings::built_in().unwrap().sender;
    settings.kind = SenderKind::Webhook;
    settings.webhook_url = format!("http://{}/sms", listener.local_addr().unwrap());
    settings.webhook_token = "gateway-token".into();
    let server = tokio::spawn(one_http_request(listener, "204 No Content"));
    let sender = WebhookSender::new(&settings).unwrap();

    sender
        .send(&message(Channel::Sms, "+41791234567"))
        .await
        .unwrap();

    let (head, body) = server.await.unwrap();
    assert!(head.starts_with("POST /sms HTTP/1.1"), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("authorization: bearer gateway-token"),
        "{head}"
    );
    let body: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["channel"], "sms");
    assert_eq!(body["to"], "+41791234567");
    assert_eq!(body["code"], "123456");
    assert_eq!(body["purpose"], "signin");
    assert!(body["text"].as_str().unwrap().contains("123456"));
}

#[tokio::test]
async fn a_webhook_error_status_is_a_failed_delivery() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mut settings = Settings::built_in().unwrap().sender;
    settings.webhook_url = format!("http://{}/sms", listener.local_addr().unwrap());
    let server = tokio::spawn(one_http_request(listener, "500 Internal Server Error"));

    let result = WebhookSender::new(&settings)
        .unwrap()
        .send(&message(Channel::Sms, "+41791234567"))
        .await;

    server.await.unwrap();
    let error = result.unwrap_err().to_string();
    assert!(
        error.contains("500") && !error.contains("123456"),
        "{error}"
    );
}

/// A minimal SMTP relay that accepts one message and returns its DATA.
async fn one_smtp_message(listener: TcpListener) -> String {
    let (stream, _) = listener.accept().await.unwrap();
    let mut reader = BufReader::new(stream);
    reader
        .get_mut()
        .write_all(b"220 test ESMTP\r\n")
        .await
        .unwrap();
    let mut data = String::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).await.unwrap() == 0 {
            break;
        }
        let command = line.to_ascii_uppercase();
        let reply: &[u8] = if command.starts_with("EHLO") {
            b"250-test\r\n250 OK\r\n"
        } else if command.starts_with("DATA") {
            reader.get_mut().write_all(b"354 go on\r\n").await.unwrap();
            loop {
                let mut body_line = String::new();
                reader.read_line(&mut body_line).await.unwrap();
                if body_line == ".\r\n" {
                    break;
                }
                data.push_str(&body_line);
            }
            b"250 queued\r\n"
        } else if command.starts_with("QUIT") {
            reader.get_mut().write_all(b"221 bye\r\n").await.unwrap();
            break;
        } else {
            b"250 OK\r\n"
        };
        reader.get_mut().write_all(reply).await.unwrap();
    }
    data
}

#[tokio::test]
async fn the_smtp_sender_mails_the_code_and_refuses_sms() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mut settings = Settings::built_in().unwrap().sender;
    settings.kind = SenderKind::Smtp;
    settings.smtp_host = "127.0.0.1".into();
    settings.smtp_port = listener.local_addr().unwrap().port();
    settings.smtp_tls = SmtpTls::None;
    settings.smtp_from = "Umbra <umbra@example.com>".into();
    let server = tokio::spawn(one_smtp_message(listener));
    let sender = SmtpSender::new(&settings).unwrap();

    sender
        .send(&message(Channel::Email, "ada@example.com"))
        .await
        .unwrap();

    let data = server.await.unwrap();
    assert!(data.contains("To: ada@example.com"), "{data}");
    assert!(data.contains("Subject: Your Umbra code"), "{data}");
    assert!(data.contains("123456"), "{data}");
    let refused = sender.send(&message(Channel::Sms, "+41791234567")).await;
    assert!(refused.is_err());
}
