//! The opaque token format (`umbra::oauth::token`).
//!
//! Invariants:
//! - `parse` never panics, on any string;
//! - a token made from any 32 bytes parses back to the same kind and hash;
//! - any string that parses re-prints identically: decoding its body and formatting it again
//!   gives the very same string (one spelling per token), and its hash is SHA-256 of the string.
//!
//! A fuzzer cannot guess a CRC32, so the target also appends the correct checksum to the
//! first 46 characters of the input (computed here from the documented format, independently
//! of the server's code) to reach the code after the checksum test.
#![no_main]

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use libfuzzer_sys::fuzz_target;
use umbra::oauth::token::{self, TOKEN_LEN, Token, TokenHash, TokenKind};

const KINDS: [TokenKind; 4] = [
    TokenKind::AccessToken,
    TokenKind::RefreshToken,
    TokenKind::AuthorizationCode,
    TokenKind::ClientSecret,
];

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        check_parsed(text);
        if let Some(head) = text.get(..TOKEN_LEN - 6) {
            let crc = crc32fast::hash(head.as_bytes()).to_be_bytes();
            let candidate = format!("{head}{}", URL_SAFE_NO_PAD.encode(crc));
            check_parsed(&candidate);
        }
    }
    if let Some((&selector, rest)) = data.split_first()
        && let Some(random) = rest.get(..32)
    {
        let kind = KINDS[usize::from(selector) % KINDS.len()];
        let random: [u8; 32] = random.try_into().expect("32 bytes");
        let generated = Token::from_random(kind, random);
        assert_eq!(generated.expose().len(), TOKEN_LEN);
        assert!(
            generated
                .expose()
                .starts_with(&format!("{}_", kind.prefix()))
        );
        let parsed = token::parse(generated.expose()).expect("a generated token parses");
        assert_eq!(parsed.kind, kind);
        assert_eq!(parsed.hash, generated.hash());
        assert_eq!(generated.hash(), TokenHash::of(generated.expose()));
    }
});

/// If `text` parses, it must be exactly the token its body encodes.
fn check_parsed(text: &str) {
    let Some(parsed) = token::parse(text) else {
        return;
    };
    assert_eq!(parsed.hash, TokenHash::of(text));
    let prefix = format!("{}_", parsed.kind.prefix());
    assert!(
        text.starts_with(&prefix),
        "{text:?} parsed as {:?}",
        parsed.kind
    );
    let body = &text[prefix.len()..TOKEN_LEN - 6];
    let random: [u8; 32] = URL_SAFE_NO_PAD
        .decode(body)
        .ok()
        .and_then(|bytes| bytes.try_into().ok())
        .unwrap_or_else(|| panic!("{text:?} parsed but its body is not 32 bytes of base64url"));
    let reprinted = Token::from_random(parsed.kind, random);
    assert_eq!(
        reprinted.expose(),
        text,
        "a parsed token must re-print identically"
    );
}
