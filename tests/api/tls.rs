//! HTTPS with rustls from certificate and key paths: a real TLS handshake
//! against a test certificate, a token over it (with 500 silent connections
//! open beside it), and no plain HTTP beside it.

use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::pki_types::ServerName;
use tokio_rustls::rustls::{self, ClientConfig, RootCertStore};

use crate::helpers::{Backend, TempDir, TestApp, basic_header};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_https_with_the_configured_certificate() {
    let dir = TempDir::new();
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let (cert_path, key_path) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert_path, certified.cert.pem()).unwrap();
    std::fs::write(&key_path, certified.signing_key.serialize_pem()).unwrap();
    let env = [
        ("TOKENMINT_TLS_CERT", cert_path.to_str().unwrap()),
        ("TOKENMINT_TLS_KEY", key_path.to_str().unwrap()),
    ];
    let app = TestApp::spawn_with(Backend::Sqlite, &env).await.unwrap();
    let port: u16 = app.address.rsplit(':').next().unwrap().parse().unwrap();
    assert_eq!(
        app.issuer,
        format!("https://127.0.0.1:{port}"),
        "the default issuer says https"
    );
    let (id, secret) = app.standard_client().await;

    let mut roots = RootCertStore::empty();
    roots.add(certified.cert.der().clone()).unwrap();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    // Connections that never start a handshake hold no place for long and
    // do not stop a real client.
    let mut idle = Vec::new();
    for _ in 0..500 {
        idle.push(
            tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .unwrap(),
        );
    }
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let mut tls = TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .expect("the TLS handshake succeeds with the test certificate");
    assert_eq!(
        tls.get_ref().1.protocol_version(),
        Some(rustls::ProtocolVersion::TLSv1_3)
    );

    let body = "grant_type=client_credentials";
    let request = format!(
        "POST /token HTTP/1.1\r\nHost: localhost\r\nAuthorization: {}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        basic_header(&id, &secret),
        body.len()
    );
    tls.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    let _ = tls.read_to_string(&mut response).await;
    assert!(
        response.starts_with("HTTP/1.1 200"),
        "a token over HTTPS: {response}"
    );
    assert!(response.contains("\"access_token\""), "{response}");

    let plain = reqwest::get(format!("http://127.0.0.1:{port}/healthz")).await;
    assert!(
        plain.is_err() || !plain.unwrap().status().is_success(),
        "no plain HTTP on the TLS port"
    );
}

#[tokio::test]
async fn a_certificate_without_its_key_is_a_clear_error() {
    let output = crate::helpers::run_binary(
        &["serve"],
        &[(
            "TOKENMINT_TLS_CERT".to_owned(),
            "/nonexistent/cert.pem".to_owned(),
        )],
        None,
    );
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("tls_key (TOKENMINT_TLS_KEY)"), "{stderr}");
}
