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

/// Envoy's `x-forwarded-client-cert`, as the proxy next to us writes it
/// with `forward_client_cert_details: SANITIZE_SET`: one element of
/// `;`-separated pairs — `By`, `Hash`, `Cert`, `Chain`, `Subject` — values
/// optionally quoted.
///
/// Envoy writes `URI=` and `DNS=` values unquoted and unescaped, so a
/// certificate whose SAN holds `,Cert=…` would start an element of the
/// caller's making: a header with any other key, or more than one element,
/// is refused (configure Envoy to forward the certificate only:
/// `set_current_client_cert_details: {cert: true}`). `Hash`, `Cert` and the
/// first certificate of `Chain` must all name one certificate.
fn from_xfcc(value: &[u8]) -> Option<Vec<Vec<u8>>> {
    let text = std::str::from_utf8(value).ok()?;
    let [element] = split_unquoted(text, ',')[..] else {
        return None;
    };
    let (mut cert, mut chain, mut hash) = (None, None, None);
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
            "hash" => &mut hash,
            "by" | "subject" => continue,
            _ => return None,
        };
        // A key twice in one element is not something Envoy writes.
        if slot.replace(value).is_some() {
            return None;
        }
    }
    let decode = |v: &str| -> Option<Vec<Vec<u8>>> {
        let pem: Vec<u8> = percent_encoding::percent_decode(v.as_bytes()).collect();
        chain_from_pem(&pem)
    };
    // A value that is there but does not decode refuses the whole header.
    let leaf = match cert {
        Some(v) => Some(decode(v)?.swap_remove(0)),
        None => None,
    };
    let chain = match chain {
        Some(v) => Some(decode(v)?),
        None => None,
    };
    let chain = match (leaf, chain) {
        (Some(leaf), Some(chain)) if chain[0] == leaf => chain,
        (None, Some(chain)) => chain,
        (Some(leaf), None) => vec![leaf],
        _ => return None,
    };
    // Envoy's Hash is the hex SHA-256 of the leaf's DER.
    if let Some(hash) = hash {
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &chain[0]);
        let hex: String = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
        if !hash.eq_ignore_ascii_case(&hex) {
            return None;
        }
    }
    Some(chain)
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

    const PEM_A: &str = "-----BEGIN%20CERTIFICATE-----%0AAAAA%0A-----END%20CERTIFICATE-----%0A";
    const PEM_B: &str = "-----BEGIN%20CERTIFICATE-----%0ABBBB%0A-----END%20CERTIFICATE-----%0A";

    #[test]
    fn xfcc_is_one_element_of_known_keys() {
        let one = format!("By=spiffe://a;Cert=\"{PEM_A}\";Subject=\"CN=x,O=y\"");
        assert_eq!(from_xfcc(one.as_bytes()).unwrap(), vec![vec![0, 0, 0]]);
        // The hash of the certificate, when given, must be its hash.
        let hash: String = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &[0, 0, 0])
            .as_ref()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let hashed = format!("Hash={hash};Cert=\"{PEM_A}\"");
        assert!(from_xfcc(hashed.as_bytes()).is_some());
        let refused = [
            // Two elements (APPEND_FORWARD, or a SAN with a comma in it).
            format!("By=a;Cert=\"{PEM_A}\",By=b;Cert=\"{PEM_B}\""),
            format!("Cert=\"{PEM_A}\";URI=spiffe://a,Cert={PEM_B}"),
            // Unquoted SAN keys: their values are not escaped by Envoy.
            format!("Cert=\"{PEM_A}\";URI=spiffe://a"),
            format!("Cert=\"{PEM_A}\";DNS=a.example"),
            // Cert and Chain naming different certificates; a wrong Hash.
            format!("Cert=\"{PEM_A}\";Chain=\"{PEM_B}\""),
            format!("Hash=00;Cert=\"{PEM_A}\""),
        ];
        for header in refused {
            assert!(from_xfcc(header.as_bytes()).is_none(), "{header}");
        }
    }

    #[test]
    fn an_escaped_quote_does_not_end_a_value() {
        let (mine, victim) = (PEM_A, PEM_B);
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
