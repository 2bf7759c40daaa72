//! Client certificates (RFC 8705): what one says about itself (names,
//! public key, validity, thumbprint) and whether it chains to the client CA.
//!
//! The TLS handshake has already proven that the caller holds the
//! certificate's private key (`tls::AnyClientCertificate`); what is decided
//! here is whether the certificate is the one a client registered.

use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

use aws_lc_rs::digest;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, UnixTime};
use tokio_rustls::rustls::server::WebPkiClientVerifier;
use tokio_rustls::rustls::server::danger::ClientCertVerifier;
use x509_cert::Certificate;
use x509_cert::der::asn1::{Ia5StringRef, PrintableStringRef, TeletexStringRef, Utf8StringRef};
use x509_cert::der::{Decode, Tag, Tagged};
use x509_cert::ext::pkix::SubjectAltName;
use x509_cert::ext::pkix::name::GeneralName;

use super::jwk_set::RawPublicKey;
use crate::domain::tls_subject::CertificateNames;

/// The longest chain accepted from a client or a proxy header.
pub const MAX_CHAIN_LEN: usize = 8;
/// The largest certificate accepted (a client certificate is 1–2 KiB).
pub const MAX_CERTIFICATE_BYTES: usize = 16 * 1024;

/// A client certificate, read.
#[derive(Debug)]
pub struct ClientCertificate {
    pub names: CertificateNames,
    /// RFC 8705 §3.1: base64url SHA-256 of the DER, the `x5t#S256` of `cnf`.
    pub thumbprint: String,
    pub public_key: Option<RawPublicKey>,
    /// Unix seconds.
    pub not_before: i64,
    pub not_after: i64,
}

impl ClientCertificate {
    pub fn parse(der: &[u8]) -> Result<Self, &'static str> {
        if der.len() > MAX_CERTIFICATE_BYTES {
            return Err("the certificate is too large");
        }
        let cert = Certificate::from_der(der).map_err(|_| "not a DER X.509 certificate")?;
        let tbs = &cert.tbs_certificate;
        let mut names = CertificateNames::default();
        // RFC 4514 §2.1: the last RDN of the sequence is written first.
        for rdn in tbs.subject.0.iter().rev() {
            let mut values = Vec::with_capacity(rdn.0.len());
            for atv in rdn.0.iter() {
                let name = short_name(&atv.oid.to_string());
                let value =
                    string_value(&atv.value).ok_or("a subject attribute is not a string")?;
                values.push((name, value));
            }
            names.subject.push(values);
        }
        if let Ok(Some((_, san))) = tbs.get::<SubjectAltName>() {
            for name in san.0 {
                match name {
                    GeneralName::DnsName(d) => names.dns.push(d.to_string()),
                    GeneralName::UniformResourceIdentifier(u) => names.uris.push(u.to_string()),
                    GeneralName::Rfc822Name(e) => names.emails.push(e.to_string()),
                    GeneralName::IpAddress(ip) => {
                        let bytes = ip.as_bytes();
                        if let Ok(v4) = <[u8; 4]>::try_from(bytes) {
                            names.ips.push(IpAddr::from(v4));
                        } else if let Ok(v6) = <[u8; 16]>::try_from(bytes) {
                            names.ips.push(IpAddr::from(v6));
                        }
                    }
                    _ => {}
                }
            }
        }
        let spki = &tbs.subject_public_key_info;
        let key_bytes = spki.subject_public_key.raw_bytes();
        let public_key = match spki.algorithm.oid.to_string().as_str() {
            "1.2.840.113549.1.1.1" => Some(RawPublicKey::Rsa(key_bytes.to_vec())),
            // id-ecPublicKey on prime256v1, uncompressed.
            "1.2.840.10045.2.1"
                if spki
                    .algorithm
                    .parameters
                    .as_ref()
                    .and_then(|p| p.decode_as::<x509_cert::der::asn1::ObjectIdentifier>().ok())
                    .is_some_and(|curve| curve.to_string() == "1.2.840.10045.3.1.7") =>
            {
                Some(RawPublicKey::P256(key_bytes.to_vec()))
            }
            "1.3.101.112" => Some(RawPublicKey::Ed25519(key_bytes.to_vec())),
            _ => None,
        };
        let validity = &tbs.validity;
        let unix = |t: &x509_cert::time::Time| {
            i64::try_from(t.to_unix_duration().as_secs()).unwrap_or(i64::MAX)
        };
        Ok(Self {
            names,
            thumbprint: thumbprint(der),
            public_key,
            not_before: unix(&validity.not_before),
            not_after: unix(&validity.not_after),
        })
    }

    pub fn is_current(&self, now: i64) -> bool {
        self.not_before <= now && now <= self.not_after
    }
}

/// `x5t#S256` (RFC 8705 §3.1).
pub fn thumbprint(der: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, der))
}

/// The RFC 4514 §3 short names, and the e-mail attribute OpenSSL prints;
/// any other type as its dotted OID.
fn short_name(oid: &str) -> String {
    match oid {
        "2.5.4.3" => "CN",
        "2.5.4.6" => "C",
        "2.5.4.7" => "L",
        "2.5.4.8" => "ST",
        "2.5.4.10" => "O",
        "2.5.4.11" => "OU",
        "2.5.4.9" => "STREET",
        "0.9.2342.19200300.100.1.25" => "DC",
        "0.9.2342.19200300.100.1.1" => "UID",
        "1.2.840.113549.1.9.1" => "EMAILADDRESS",
        other => return other.to_owned(),
    }
    .to_owned()
}

fn string_value(value: &x509_cert::der::Any) -> Option<String> {
    Some(match value.tag() {
        Tag::Utf8String => value.decode_as::<Utf8StringRef<'_>>().ok()?.to_string(),
        Tag::PrintableString => value
            .decode_as::<PrintableStringRef<'_>>()
            .ok()?
            .to_string(),
        Tag::Ia5String => value.decode_as::<Ia5StringRef<'_>>().ok()?.to_string(),
        Tag::TeletexString => value.decode_as::<TeletexStringRef<'_>>().ok()?.to_string(),
        _ => return None,
    })
}

/// The CA(s) `tls_client_auth` certificates must chain to, checked with
/// webpki (path building, signatures, validity, the clientAuth key usage).
#[derive(Clone)]
pub struct ClientCa {
    verifier: Arc<dyn ClientCertVerifier>,
}

impl std::fmt::Debug for ClientCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClientCa")
    }
}

impl ClientCa {
    /// Reads one or more PEM CA certificates.
    pub fn from_pem_file(path: &Path) -> Result<Self, String> {
        let certs = CertificateDer::pem_file_iter(path)
            .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
            .map_err(|e| format!("cannot read the client CA {}: {e}", path.display()))?;
        Self::from_der(certs).map_err(|e| format!("{}: {e}", path.display()))
    }

    pub fn from_der(certs: Vec<CertificateDer<'static>>) -> Result<Self, String> {
        let mut roots = rustls::RootCertStore::empty();
        let (added, _ignored) = roots.add_parsable_certificates(certs);
        if added == 0 {
            return Err("holds no usable CA certificate".to_owned());
        }
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
            .allow_unauthenticated()
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Self { verifier })
    }

    /// Whether `chain` (leaf first) chains to the CA and is valid at `now`.
    pub fn verifies(&self, chain: &[Vec<u8>], now: i64) -> bool {
        let Some((leaf, intermediates)) = chain.split_first() else {
            return false;
        };
        let Ok(now) = u64::try_from(now) else {
            return false;
        };
        let intermediates: Vec<CertificateDer<'_>> = intermediates
            .iter()
            .take(MAX_CHAIN_LEN)
            .map(|c| CertificateDer::from(c.as_slice()))
            .collect();
        self.verifier
            .verify_client_cert(
                &CertificateDer::from(leaf.as_slice()),
                &intermediates,
                UnixTime::since_unix_epoch(std::time::Duration::from_secs(now)),
            )
            .is_ok()
    }
}

/// The DER certificates of a PEM text (what a TLS-terminating proxy
/// forwards), leaf first; `None` if there are none or too many.
pub fn chain_from_pem(pem: &[u8]) -> Option<Vec<Vec<u8>>> {
    let chain: Vec<Vec<u8>> = CertificateDer::pem_slice_iter(pem)
        .take(MAX_CHAIN_LEN + 1)
        .map(|c| c.map(|c| c.to_vec()))
        .collect::<Result<_, _>>()
        .ok()?;
    (!chain.is_empty() && chain.len() <= MAX_CHAIN_LEN).then_some(chain)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_names_key_and_validity() {
        let mut params = rcgen::CertificateParams::new(vec!["orders.internal".to_owned()]).unwrap();
        // Without rcgen's default CN, so that the order is ours.
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(rcgen::DnType::OrganizationName, "Example, Corp");
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "orders");
        params
            .subject_alt_names
            .push(rcgen::SanType::IpAddress([10, 0, 0, 1].into()));
        params
            .subject_alt_names
            .push(rcgen::SanType::URI("spiffe://a/b".try_into().unwrap()));
        params.not_before = rcgen::date_time_ymd(2024, 1, 1);
        params.not_after = rcgen::date_time_ymd(2030, 1, 1);
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        let read = ClientCertificate::parse(cert.der()).unwrap();
        assert_eq!(
            read.names.subject,
            [
                vec![("CN".to_owned(), "orders".to_owned())],
                vec![("O".to_owned(), "Example, Corp".to_owned())]
            ]
        );
        assert_eq!(read.names.dns, ["orders.internal"]);
        assert_eq!(read.names.uris, ["spiffe://a/b"]);
        assert_eq!(read.names.ips, [IpAddr::from([10, 0, 0, 1])]);
        assert_eq!(
            read.public_key,
            Some(RawPublicKey::P256(key.public_key_raw().to_vec()))
        );
        assert!(read.is_current(1_800_000_000));
        assert!(!read.is_current(1_000_000_000));
        assert_eq!(read.thumbprint, thumbprint(cert.der()));
        assert!(ClientCertificate::parse(b"not a certificate").is_err());
    }
}
