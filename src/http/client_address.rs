//! Who is calling: the TCP peer, or — when the peer is a trusted reverse
//! proxy — the address the proxies say they forwarded for (in the one header
//! they are configured to write: `X-Forwarded-For`, or RFC 7239
//! `Forwarded`): the right-most hop that is not itself a trusted proxy. Each proxy appends the address it received the
//! request from, so only the hops right of the first untrusted one were
//! written by someone we trust; anything further left may be the caller's
//! own invention. From a peer that is not a trusted proxy, the headers are
//! ignored.

use std::net::{IpAddr, Ipv6Addr};

use axum::http::HeaderMap;

use crate::domain::network::{ForwardedHeader, TrustedProxies};

/// The caller's address as `request_context` decided it, for the throttle
/// and the logs.
#[derive(Debug, Clone, Copy)]
pub struct ClientAddress(pub IpAddr);

/// The most hops read from the headers: enough for any real chain of
/// proxies, and a bound on the work a long header can cause.
const MAX_HOPS: usize = 32;

pub fn client_address(peer: IpAddr, headers: &HeaderMap, trusted: &TrustedProxies) -> IpAddr {
    if trusted.is_empty() || !trusted.trusts(peer) {
        return peer;
    }
    let hops = forwarded_hops(headers, trusted.header());
    for hop in hops.iter().rev() {
        match hop {
            Some(ip) if trusted.trusts(*ip) => continue,
            Some(ip) => return *ip,
            // "unknown" or an obfuscated identifier (RFC 7239 §6): the
            // caller cannot be named; the proxy that said so is the best
            // address we have.
            None => return peer,
        }
    }
    // Every hop is a trusted proxy (or there are none): the left-most.
    hops.first().copied().flatten().unwrap_or(peer)
}

/// The forwarded-for hops of the configured header, left to right; `None`
/// for a hop that is not an address. Only the last `MAX_HOPS` count: the
/// walk starts from the right.
fn forwarded_hops(headers: &HeaderMap, header: ForwardedHeader) -> Vec<Option<IpAddr>> {
    let name = match header {
        ForwardedHeader::XForwardedFor => "x-forwarded-for",
        ForwardedHeader::Forwarded => "forwarded",
    };
    let lines = headers.get_all(name).iter().filter_map(|v| v.to_str().ok());
    let mut hops: Vec<Option<IpAddr>> = match header {
        ForwardedHeader::XForwardedFor => {
            lines.flat_map(|v| v.split(',')).map(parse_node).collect()
        }
        ForwardedHeader::Forwarded => lines
            .flat_map(|v| split_unquoted(v, ','))
            .map(|element| {
                split_unquoted(element, ';')
                    .into_iter()
                    .filter_map(|pair| pair.trim().split_once('='))
                    .find(|(name, _)| name.eq_ignore_ascii_case("for"))
                    .and_then(|(_, value)| parse_node(value))
            })
            .collect(),
    };
    let excess = hops.len().saturating_sub(MAX_HOPS);
    hops.drain(..excess);
    hops
}

/// `s` split at `separator` outside double quotes (RFC 7239 §4 values may
/// be quoted strings holding commas and semicolons).
///
/// A line whose quotes do not close is split at every separator instead:
/// its left part was written by the caller, who could otherwise open a
/// quote that swallows the element the proxy appended after it. The
/// proxy's own element is the right-most one and holds balanced quotes, so
/// a plain split still ends with it intact.
fn split_unquoted(s: &str, separator: char) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut start, mut quoted, mut escaped) = (0, false, false);
    for (i, c) in s.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            c if c == separator && !quoted => {
                parts.push(&s[start..i]);
                start = i + c.len_utf8();
            }
            _ => {}
        }
    }
    if quoted {
        return s.split(separator).collect();
    }
    parts.push(&s[start..]);
    parts
}

/// An RFC 7239 §6 node: `192.0.2.43`, `"[2001:db8::17]:4711"`,
/// `192.0.2.43:47011`; `unknown` and obfuscated names are not addresses.
fn parse_node(node: &str) -> Option<IpAddr> {
    let node = node.trim().trim_matches('"');
    if let Some(rest) = node.strip_prefix('[') {
        return rest
            .split(']')
            .next()?
            .parse::<Ipv6Addr>()
            .ok()
            .map(IpAddr::V6);
    }
    if let Ok(ip) = node.parse::<IpAddr>() {
        return Some(ip);
    }
    // IPv4 with a port.
    let (host, _port) = node.rsplit_once(':')?;
    host.parse::<std::net::Ipv4Addr>().ok().map(IpAddr::V4)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.append(
                axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        map
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn the_rightmost_untrusted_hop_is_the_caller() {
        let trusted = TrustedProxies::parse("10.0.0.0/8").unwrap();
        let peer = ip("10.0.0.2");
        let xff = headers(&[("x-forwarded-for", "1.1.1.1, 203.0.113.7, 10.0.0.9")]);
        assert_eq!(client_address(peer, &xff, &trusted), ip("203.0.113.7"));
        let rfc7239 = trusted.clone().with_header(ForwardedHeader::Forwarded);
        let fwd = headers(&[(
            "forwarded",
            r#"for=1.1.1.1, for="[2001:db8::17]:4711";proto=https, For=10.0.0.9"#,
        )]);
        assert_eq!(client_address(peer, &fwd, &rfc7239), ip("2001:db8::17"));
        let quoted = headers(&[("forwarded", r#"for=5.5.5.53;proto="a,b", for=10.0.0.9"#)]);
        assert_eq!(client_address(peer, &quoted, &rfc7239), ip("5.5.5.53"));
        // A caller's unclosed quote cannot swallow the element the proxy
        // appended after it.
        for (line, caller) in [
            (r#"for=10.50.0.1;host="a, for=203.0.113.60"#, "203.0.113.60"),
            (r#"for=10.71.0.3;host=a"b, for=203.0.113.4"#, "203.0.113.4"),
            (r#"for="203.0.113.96, for=203.0.113.8"#, "203.0.113.8"),
            (
                r#"for=1.1.1.1;host="a, for="[2001:db8::1]:4711""#,
                "2001:db8::1",
            ),
        ] {
            let forged = headers(&[("forwarded", line)]);
            assert_eq!(
                client_address(peer, &forged, &rfc7239),
                ip(caller),
                "{line}"
            );
        }
        let split = headers(&[
            ("x-forwarded-for", "203.0.113.7"),
            ("x-forwarded-for", "10.0.0.9:80"),
        ]);
        assert_eq!(client_address(peer, &split, &trusted), ip("203.0.113.7"));
    }

    #[test]
    fn only_the_configured_header_is_read() {
        let peer = ip("10.0.0.2");
        // The proxy appends X-Forwarded-For and passes the caller's own
        // Forwarded through: it must not decide.
        let both = headers(&[("forwarded", "for=7.7.7.7"), ("x-forwarded-for", "5.5.5.5")]);
        let xff = TrustedProxies::parse("10.0.0.0/8").unwrap();
        assert_eq!(client_address(peer, &both, &xff), ip("5.5.5.5"));
        let rfc7239 = xff.with_header(ForwardedHeader::Forwarded);
        assert_eq!(client_address(peer, &both, &rfc7239), ip("7.7.7.7"));
    }

    #[test]
    fn headers_from_anyone_else_are_ignored() {
        let trusted = TrustedProxies::parse("10.0.0.0/8").unwrap();
        let xff = headers(&[("x-forwarded-for", "203.0.113.7")]);
        assert_eq!(
            client_address(ip("198.51.100.1"), &xff, &trusted),
            ip("198.51.100.1")
        );
        let none = TrustedProxies::default();
        assert_eq!(client_address(ip("10.0.0.2"), &xff, &none), ip("10.0.0.2"));
    }

    #[test]
    fn unreadable_hops_stop_the_walk() {
        let trusted = TrustedProxies::parse("10.0.0.0/8").unwrap();
        let peer = ip("10.0.0.2");
        let hidden = headers(&[("forwarded", "for=203.0.113.7, for=_hidden, for=10.0.0.9")]);
        let rfc7239 = trusted.clone().with_header(ForwardedHeader::Forwarded);
        assert_eq!(client_address(peer, &hidden, &rfc7239), peer);
        let all_trusted = headers(&[("x-forwarded-for", "10.0.0.5, 10.0.0.9")]);
        assert_eq!(client_address(peer, &all_trusted, &trusted), ip("10.0.0.5"));
        let empty = headers(&[]);
        assert_eq!(client_address(peer, &empty, &trusted), peer);
    }
}
