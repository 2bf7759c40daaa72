//! Client authentication by TLS certificate (RFC 8705 §2) as a plain
//! decision: is this certificate the one this client registered?

use crate::crypto::KeySet;
use crate::crypto::certificate::{ClientCa, ClientCertificate};
use crate::domain::client::{AuthMethod, Client};

/// Why a certificate does not authenticate a client (for the log; the
/// caller answers `invalid_client`).
pub type Refused = &'static str;

/// RFC 8705 §2.1 (`tls_client_auth`): the chain leads to the configured CA
/// and the certificate carries the registered subject; §2.2
/// (`self_signed_tls_client_auth`): its public key is one of the client's
/// registered keys. Either way the certificate must be within its validity.
pub fn check_certificate(
    client: &Client,
    chain: &[Vec<u8>],
    ca: Option<&ClientCa>,
    keys: Option<&KeySet>,
    now: i64,
) -> Result<(), Refused> {
    let leaf = chain.first().ok_or("no client certificate was presented")?;
    let certificate = ClientCertificate::parse(leaf)?;
    if !certificate.is_current(now) {
        return Err("the certificate is expired or not yet valid");
    }
    match client.auth_method {
        AuthMethod::TlsClientAuth => {
            let ca = ca.ok_or("no client CA is configured (TOKENMINT_TLS_CLIENT_CA)")?;
            if !ca.verifies(chain, now) {
                return Err("the certificate does not chain to the client CA");
            }
            let subject = client
                .tls_subject
                .as_ref()
                .ok_or("the client has no registered subject")?;
            if !subject.matches(&certificate.names) {
                return Err("the certificate does not carry the registered subject");
            }
            Ok(())
        }
        AuthMethod::SelfSignedTlsClientAuth => {
            let keys = keys.ok_or("the client has no keys")?;
            let key = certificate
                .public_key
                .as_ref()
                .ok_or("the certificate's key type is not supported")?;
            if keys.holds(key) {
                Ok(())
            } else {
                Err("the certificate's key is not one of the client's keys")
            }
        }
        _ => Err("the client does not authenticate with a certificate"),
    }
}
