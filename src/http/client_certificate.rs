//! The client certificate of a request (RFC 8705): the one the TLS handshake
//! presented, or — behind a TLS-terminating proxy — the one a trusted proxy
//! forwarded in a header. From any other peer that header is ignored: a
//! caller could otherwise claim any certificate it has merely seen.

use std::net::IpAddr;

use axum::http::{HeaderMap, HeaderName};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::crypto::certificate::{MAX_CHAIN_LEN, chain_from_pem};
use crate::domain::network::TrustedProxies;
use crate::net::ClientCertChain;
use crate::oauth::client_auth::PresentedCertificate;
use crate::oauth::metadata::MtlsOffer;

/// How client certificates reach this server.
#[derive(Debug, Clone, Default)]
pub struct MtlsSettings {
    /// The public listener speaks TLS (and asks for client certificates).
    pub tls_listener: bool,
    pub client_ca: bool,
    pub base_url: Option<String>,
    /// The header trusted proxies forward the certificate in.
    pub cert_header: Option<HeaderName>,
}

impl MtlsSettings {
    pub fn offer(&self) -> MtlsOffer<'_> {
        MtlsOffer {
            certificates: self.tls_listener || self.cert_header.is_some(),
            client_ca: self.client_ca,
            base_url: self.base_url.as_deref(),
        }
    }
}

/// The request's client certificate, if any.
pub fn presented_certificate(
    connection: Option<&ClientCertChain>,
    headers: &HeaderMap,
    peer: IpAddr,
    settings: &MtlsSettings,
    trusted: &TrustedProxies,
) -> Option<PresentedCertificate> {
    if let Some(header) = &settings.cert_header
        && trusted.trusts(peer)
    {
        // The proxy's word or nothing: the certificate of the proxy's own
        // TLS connection to us is not the client's.
        let mut values = headers.get_all(header).iter();
        let (Some(value), None) = (values.next(), values.next()) else {
            return None;
        };
        let chain = if header.as_str() == "x-forwarded-client-cert" {
            from_xfcc(value.as_bytes())
        } else {
            from_escaped(value.as_bytes())
        }?;
        return Some(PresentedCertificate {
            chain: chain.into(),
        });
    }
    connection.map(|c| PresentedCertificate { chain: c.0.clone() })
}

/// nginx's `$ssl_client_escaped_cert`, HAProxy's and AWS ALB's headers: a
/// URL-encoded PEM chain. Traefik's is base64 DER, comma-separated.
fn from_escaped(value: &[u8]) -> Option<Vec<Vec<u8>>> {
    let decoded: Vec<u8> = percent_encoding::percent_decode(value).collect();
    if decoded.windows(10).any(|w| w == b"-----BEGIN") {
        return chain_from_pem(&decoded);
    }
    let chain: Vec<Vec<u8>> = decoded
        .split(|b| *b == b',')
        .filter(|part| !part.trim_ascii().is_empty())
        .take(MAX_CHAIN_LEN + 1)
        .map(|part| STANDARD.decode(part.trim_ascii()).ok())
        .collect::<Option<_>>()?;
    (!chain.is_empty() && chain.len() <= MAX_CHAIN_LEN).then_some(chain)
}

/// Envoy's `x-forwarded-client-cert`: elements separated by `,`, pairs by
/// `;`, values optionally quoted. The right-most element is the one the
/// nearest proxy (ours) added; its `Chain` (or else `Cert`) holds the
/// URL-encoded PEM.
fn from_xfcc(value: &[u8]) -> Option<Vec<Vec<u8>>> {
    let text = std::str::from_utf8(value).ok()?;
    let element = split_unquoted(text, ',').pop()?;
    let mut cert = None;
    let mut chain = None;
    for pair in split_unquoted(element, ';') {
        let (key, value) = pair.split_once('=')?;
        let value = value.trim();
        let value = value
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .unwrap_or(value);
        let slot = match key.trim().to_ascii_lowercase().as_str() {
            "cert" => &mut cert,
            "chain" => &mut chain,
            _ => continue,
        };
        // A key twice in one element is not something Envoy writes.
        if slot.replace(value).is_some() {
            return None;
        }
    }
    let pem: Vec<u8> = percent_encoding::percent_decode(chain.or(cert)?.as_bytes()).collect();
    chain_from_pem(&pem)
}

/// Splits at `separator` outside double quotes; inside them a backslash
/// escapes the next character (Envoy escapes `"` in a `Subject` it copies
/// from the certificate: a caller's certificate must not end the quote).
fn split_unquoted(text: &str, separator: char) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut quoted = false;
    let mut escaped = false;
    let mut start = 0;
    for (i, c) in text.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            c if c == separator && !quoted => {
                parts.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xfcc_takes_the_right_most_element() {
        let pem_a = "-----BEGIN%20CERTIFICATE-----%0AAAAA%0A-----END%20CERTIFICATE-----%0A";
        let pem_b = "-----BEGIN%20CERTIFICATE-----%0ABBBB%0A-----END%20CERTIFICATE-----%0A";
        let header = format!(
            "By=spiffe://a;Cert=\"{pem_a}\";Subject=\"CN=x,O=y\",By=spiffe://b;Hash=00;Cert=\"{pem_b}\""
        );
        let chain = from_xfcc(header.as_bytes()).unwrap();
        assert_eq!(chain, vec![vec![0x04, 0x10, 0x41]]);
    }

    #[test]
    fn an_escaped_quote_does_not_end_a_value() {
        let mine = "-----BEGIN%20CERTIFICATE-----%0AAAAA%0A-----END%20CERTIFICATE-----%0A";
        let victim = "-----BEGIN%20CERTIFICATE-----%0ABBBB%0A-----END%20CERTIFICATE-----%0A";
        // A subject the caller chose, copied by the proxy with `"` escaped.
        let header =
            format!("By=spiffe://a;Cert=\"{mine}\";Subject=\"CN=m,OU=x\\\",Cert={victim}\"");
        assert_eq!(from_xfcc(header.as_bytes()).unwrap(), vec![vec![0, 0, 0]]);
        let twice = format!("Cert=\"{mine}\";Cert=\"{victim}\"");
        assert!(from_xfcc(twice.as_bytes()).is_none());
    }

    #[test]
    fn escaped_pem_and_base64_der() {
        let pem = "-----BEGIN%20CERTIFICATE-----%0AAAAA%0A-----END%20CERTIFICATE-----%0A";
        assert_eq!(from_escaped(pem.as_bytes()).unwrap(), vec![vec![0, 0, 0]]);
        assert_eq!(
            from_escaped(b"AAAA,AQID").unwrap(),
            vec![vec![0, 0, 0], vec![1, 2, 3]]
        );
        assert!(from_escaped(b"not base64!").is_none());
        assert!(from_escaped(b"").is_none());
    }
}
