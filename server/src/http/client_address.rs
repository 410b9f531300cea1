//! Who the client is: the TCP peer, or, when the peer is one of `server.trusted_proxies`, the
//! address those proxies forwarded in `X-Forwarded-For` or `Forwarded` (RFC 7239), whichever
//! `server.client_address_header` names. One answer serves the sign-in limits, the audit log
//! and the request logs.
//!
//! Each proxy appends the address it received the request from, so the list reads
//! `client, proxy1, proxy2` and only its right end was written by machines we trust. The
//! client is therefore the rightmost address that is not a trusted proxy; anything left of it
//! is the client's own say and is never read. A hop that hides its address (`unknown`, an
//! obfuscated identifier, junk) stops the walk: the last trusted hop is the best we know. A
//! header that cannot be read at all counts as absent, and the peer is the client.
use super::AppState;
use crate::settings::{ClientAddressHeader, TrustedProxies};
use actix_web::http::header::{HeaderMap, HeaderName};
use actix_web::{HttpRequest, web};
use std::net::{IpAddr, Ipv6Addr};

/// The client address of `req`, as the configured trusted proxies resolve it.
pub fn client_address(req: &HttpRequest) -> Option<IpAddr> {
    let peer = req.peer_addr().map(|a| a.ip());
    match req.app_data::<web::Data<AppState>>() {
        Some(state) => resolve(
            peer,
            req.headers(),
            state.settings.server.client_address_header,
            &state.settings.server.trusted_proxies,
        ),
        None => peer.map(|ip| ip.to_canonical()),
    }
}

/// [`client_address`] from its parts: the TCP peer, the request headers and the settings.
pub fn resolve(
    peer: Option<IpAddr>,
    headers: &HeaderMap,
    header: ClientAddressHeader,
    trusted: &TrustedProxies,
) -> Option<IpAddr> {
    let peer = peer?.to_canonical();
    if !trusted.contains(peer) {
        return Some(peer);
    }
    let Some(hops) = forwarded_hops(headers, header) else {
        return Some(peer);
    };
    let mut client = peer;
    for hop in hops.iter().rev() {
        let Some(address) = hop else {
            return Some(client);
        };
        client = address.to_canonical();
        if !trusted.contains(client) {
            return Some(client);
        }
    }
    Some(client)
}

/// The hops named by every line of `header`, leftmost first; `None` for a hop that does not
/// give an address. `None` overall when the header cannot be read.
fn forwarded_hops(headers: &HeaderMap, header: ClientAddressHeader) -> Option<Vec<Option<IpAddr>>> {
    let name = match header {
        ClientAddressHeader::XForwardedFor => HeaderName::from_static("x-forwarded-for"),
        ClientAddressHeader::Forwarded => actix_web::http::header::FORWARDED,
    };
    let mut hops = Vec::new();
    for line in headers.get_all(name) {
        let line = line.to_str().ok()?;
        match header {
            ClientAddressHeader::XForwardedFor => hops.extend(parse_x_forwarded_for(line)),
            ClientAddressHeader::Forwarded => hops.extend(parse_forwarded(line)?),
        }
    }
    Some(hops)
}

/// One `X-Forwarded-For` line: comma-separated nodes. Empty elements are skipped.
pub fn parse_x_forwarded_for(line: &str) -> Vec<Option<IpAddr>> {
    line.split(',')
        .map(str::trim)
        .filter(|element| !element.is_empty())
        .map(parse_node)
        .collect()
}

/// One `Forwarded` line (RFC 7239 §4): the `for` node of each element (`None` when it is
/// missing or not an address); `None` overall for a line that breaks the grammar.
pub fn parse_forwarded(line: &str) -> Option<Vec<Option<IpAddr>>> {
    let mut hops = Vec::new();
    let mut rest = line;
    let mut node: Option<Option<IpAddr>> = None;
    let mut element_has_pairs = false;
    loop {
        rest = rest.trim_start_matches([' ', '\t']);
        if !rest.is_empty() && !rest.starts_with([',', ';']) {
            let (name, after_name) = split_token(rest)?;
            let after_equals = after_name.strip_prefix('=')?;
            let (value, after_value) = match after_equals.strip_prefix('"') {
                Some(quoted) => split_quoted(quoted)?,
                None => {
                    let (token, after) = split_token(after_equals)?;
                    (token.to_owned(), after)
                }
            };
            if name.eq_ignore_ascii_case("for") {
                // A repeated parameter makes the element ambiguous (§4: "MUST NOT occur more
                // than once").
                if node.is_some() {
                    return None;
                }
                node = Some(parse_node(&value));
            }
            element_has_pairs = true;
            rest = after_value.trim_start_matches([' ', '\t']);
        }
        let mut chars = rest.chars();
        match chars.next() {
            Some(';') => rest = chars.as_str(),
            Some(',') | None => {
                if element_has_pairs {
                    hops.push(node.take().flatten());
                }
                element_has_pairs = false;
                node = None;
                if rest.is_empty() {
                    return Some(hops);
                }
                rest = chars.as_str();
            }
            Some(_) => return None,
        }
    }
}

/// A token (RFC 9110 §5.6.2) and what follows it; ':' , '[' and ']' are let in so that an
/// unquoted IPv6 node or port still reads.
fn split_token(input: &str) -> Option<(&str, &str)> {
    let end = input
        .find(|c: char| !(c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~:[]".contains(c)))
        .unwrap_or(input.len());
    (end > 0).then(|| input.split_at(end))
}

/// The content of a quoted string whose opening quote is already consumed, unescaped, and
/// what follows its closing quote.
fn split_quoted(input: &str) -> Option<(String, &str)> {
    let mut value = String::new();
    let mut chars = input.char_indices();
    while let Some((at, c)) = chars.next() {
        match c {
            '"' => return Some((value, &input[at + 1..])),
            '\\' => value.push(chars.next()?.1),
            c if c.is_control() && c != '\t' => return None,
            c => value.push(c),
        }
    }
    None
}

/// A node: `1.2.3.4`, `1.2.3.4:port`, `[v6]`, `[v6]:port` or a bare IPv6 address. Anything
/// else (`unknown`, `_obfuscated`, junk) is no address.
fn parse_node(node: &str) -> Option<IpAddr> {
    let node = node.trim();
    if let Some(bracketed) = node.strip_prefix('[') {
        let (address, after) = bracketed.split_once(']')?;
        if !(after.is_empty() || valid_port(after.strip_prefix(':')?)) {
            return None;
        }
        return address.parse::<Ipv6Addr>().ok().map(IpAddr::V6);
    }
    if let Ok(address) = node.parse::<IpAddr>() {
        return Some(address);
    }
    let (address, port) = node.split_once(':')?;
    let address: std::net::Ipv4Addr = address.parse().ok()?;
    valid_port(port).then_some(IpAddr::V4(address))
}

/// A port number, or an obfuscated port (RFC 7239 §6.3: `_` then letters, digits, `.`, `_`, `-`).
fn valid_port(port: &str) -> bool {
    let digits = port.bytes().all(|b| b.is_ascii_digit()) && port.parse::<u16>().is_ok();
    let obfuscated = port.strip_prefix('_').is_some_and(|rest| {
        !rest.is_empty()
            && rest
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
    });
    digits || obfuscated
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::header::HeaderValue;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn trusted(entries: &[&str]) -> TrustedProxies {
        TrustedProxies::try_from(entries.iter().map(|e| e.to_string()).collect::<Vec<_>>()).unwrap()
    }

    fn headers(name: &'static str, lines: &[&str]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for line in lines {
            map.append(
                HeaderName::from_static(name),
                HeaderValue::from_str(line).unwrap(),
            );
        }
        map
    }

    #[test]
    fn x_forwarded_for_reads_addresses_with_and_without_ports() {
        assert_eq!(
            parse_x_forwarded_for("203.0.113.7, 10.0.0.1:8080,[2001:db8::1]:443, 2001:db8::2,,"),
            vec![
                Some(ip("203.0.113.7")),
                Some(ip("10.0.0.1")),
                Some(ip("2001:db8::1")),
                Some(ip("2001:db8::2")),
            ]
        );
        assert_eq!(
            parse_x_forwarded_for("unknown, _hidden, not an address, 1.2.3.4:99999, [::1"),
            vec![None, None, None, None, None]
        );
    }

    #[test]
    fn forwarded_reads_quoted_ipv6_ports_and_obfuscated_identifiers() {
        assert_eq!(
            parse_forwarded(
                r#"for=192.0.2.60;proto=http;by=203.0.113.43, For="[2001:db8:cafe::17]:4711", for=unknown, for=_hidden, for="_gazonk""#
            ),
            Some(vec![
                Some(ip("192.0.2.60")),
                Some(ip("2001:db8:cafe::17")),
                None,
                None,
                None,
            ])
        );
        assert_eq!(
            parse_forwarded(r#"for="198.51.100.17:_port";by="a,b", proto=https"#),
            Some(vec![Some(ip("198.51.100.17")), None]),
            "a comma inside quotes separates nothing; an element without `for` hides its client"
        );
        assert_eq!(
            parse_forwarded(r#"for="\1\9\2.0.2.1""#),
            Some(vec![Some(ip("192.0.2.1"))]),
            "quoted pairs are unescaped"
        );
        assert_eq!(parse_forwarded(" , ;; ,"), Some(vec![]));
    }

    #[test]
    fn forwarded_garbage_is_unreadable() {
        for garbage in [
            r#"for="192.0.2.1"#,
            "for",
            "for=",
            "=1.2.3.4",
            "for=1.2.3.4 junk",
            "for=1.2.3.4;for=5.6.7.8",
            "for=\"1.2.3.4\u{7f}\"",
            "(for=1.2.3.4)",
        ] {
            assert_eq!(parse_forwarded(garbage), None, "{garbage:?}");
        }
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_forwards() {
        let map = headers("x-forwarded-for", &["198.51.100.1"]);
        let proxies = trusted(&["10.0.0.0/8"]);
        let header = ClientAddressHeader::XForwardedFor;
        assert_eq!(
            resolve(Some(ip("192.0.2.9")), &map, header, &proxies),
            Some(ip("192.0.2.9"))
        );
        assert_eq!(
            resolve(
                Some(ip("192.0.2.9")),
                &map,
                header,
                &TrustedProxies::default()
            ),
            Some(ip("192.0.2.9"))
        );
        assert_eq!(resolve(None, &map, header, &proxies), None);
    }

    #[test]
    fn behind_trusted_proxies_the_client_is_the_rightmost_untrusted_address() {
        let proxies = trusted(&["10.0.0.0/8", "fd00::/8"]);
        let xff = ClientAddressHeader::XForwardedFor;
        let peer = Some(ip("10.0.0.1"));
        let chain = headers("x-forwarded-for", &["6.6.6.6, 198.51.100.1", "10.1.1.1"]);
        assert_eq!(
            resolve(peer, &chain, xff, &proxies),
            Some(ip("198.51.100.1"))
        );
        let mapped = Some(ip("::ffff:10.0.0.1"));
        assert_eq!(
            resolve(mapped, &chain, xff, &proxies),
            Some(ip("198.51.100.1")),
            "an IPv4-mapped peer is its IPv4 address"
        );
        let only_proxies = headers("x-forwarded-for", &["10.2.2.2, 10.1.1.1"]);
        assert_eq!(
            resolve(peer, &only_proxies, xff, &proxies),
            Some(ip("10.2.2.2"))
        );
        let hidden = headers("x-forwarded-for", &["198.51.100.1, unknown, 10.1.1.1"]);
        assert_eq!(
            resolve(peer, &hidden, xff, &proxies),
            Some(ip("10.1.1.1")),
            "a hop that hides its client stops the walk at the last trusted hop"
        );
        let none = HeaderMap::new();
        assert_eq!(resolve(peer, &none, xff, &proxies), Some(ip("10.0.0.1")));
    }

    #[test]
    fn only_the_configured_header_is_read_and_garbage_falls_back_to_the_peer() {
        let proxies = trusted(&["10.0.0.1"]);
        let peer = Some(ip("10.0.0.1"));
        let mut map = headers("forwarded", &[r#"for="[2001:db8::5]:1234""#]);
        map.append(
            HeaderName::from_static("x-forwarded-for"),
            HeaderValue::from_static("198.51.100.1"),
        );
        assert_eq!(
            resolve(peer, &map, ClientAddressHeader::Forwarded, &proxies),
            Some(ip("2001:db8::5"))
        );
        assert_eq!(
            resolve(peer, &map, ClientAddressHeader::XForwardedFor, &proxies),
            Some(ip("198.51.100.1"))
        );
        let garbage = headers("forwarded", &[r#"for="198.51.100.1"#]);
        assert_eq!(
            resolve(peer, &garbage, ClientAddressHeader::Forwarded, &proxies),
            Some(ip("10.0.0.1"))
        );
        let mut binary = HeaderMap::new();
        binary.append(
            HeaderName::from_static("x-forwarded-for"),
            HeaderValue::from_bytes(b"198.51.100.1\xff").unwrap(),
        );
        assert_eq!(
            resolve(peer, &binary, ClientAddressHeader::XForwardedFor, &proxies),
            Some(ip("10.0.0.1"))
        );
    }

    #[test]
    fn trusted_proxies_accept_addresses_and_networks_and_refuse_junk() {
        let proxies = trusted(&["10.0.0.1", " 192.168.0.0/16 ", "2001:db8::/32", ""]);
        assert!(proxies.contains(ip("10.0.0.1")));
        assert!(!proxies.contains(ip("10.0.0.2")));
        assert!(proxies.contains(ip("192.168.44.1")));
        assert!(proxies.contains(ip("2001:db8:1::1")));
        assert!(TrustedProxies::try_from(vec!["10.0.0.0/33".to_owned()]).is_err());
        assert!(TrustedProxies::try_from(vec!["proxy.local".to_owned()]).is_err());
    }
}
