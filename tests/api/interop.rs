//! Stock client libraries (Python's authlib, PyJWT, requests) against the server.
//!
//! Runs `tests/interop/client_credentials.py` (secrets),
//! `tests/interop/private_key_jwt.py` (client assertions) and
//! `tests/interop/sender_constrained.py` (DPoP, mTLS) with the Python named by
//! `TOKENMINT_PYTHON` (default `python3`). Without authlib and PyJWT there it
//! prints a notice and skips, unless `TOKENMINT_REQUIRE_INTEROP=1`, which
//! `.ci/run` sets after installing them.

use std::process::Command;

use crate::helpers::{Backend, TestApp};
use crate::jose::TestKey;

fn python() -> Option<String> {
    let python = std::env::var("TOKENMINT_PYTHON").unwrap_or_else(|_| "python3".to_owned());
    let ready = Command::new(&python)
        .args(["-c", "import authlib, jwt, requests, cryptography"])
        .output()
        .is_ok_and(|o| o.status.success());
    if ready {
        return Some(python);
    }
    assert!(
        std::env::var("TOKENMINT_REQUIRE_INTEROP").as_deref() != Ok("1"),
        "TOKENMINT_REQUIRE_INTEROP=1 but {python} lacks authlib, PyJWT, requests or cryptography"
    );
    eprintln!(
        "notice: skipping the interop test: {python} lacks authlib/PyJWT (pip install authlib 'pyjwt[crypto]' requests)"
    );
    None
}

/// Runs `tests/interop/<script>` with `args`; what it printed, asserting
/// that it succeeded.
async fn run_script(python: &str, script: &str, args: Vec<String>, what: &str) -> String {
    let path = format!("{}/tests/interop/{script}", env!("CARGO_MANIFEST_DIR"));
    let python = python.to_owned();
    let output =
        tokio::task::spawn_blocking(move || Command::new(&python).arg(path).args(args).output())
            .await
            .unwrap()
            .expect("python runs");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{what}: interop script failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authlib_and_pyjwt_work_unmodified() {
    let Some(python) = python() else { return };
    for alg in ["ES256", "EdDSA", "RS256"] {
        let app = TestApp::spawn_with(Backend::Sqlite, &[("TOKENMINT_SIGNING_ALG", alg)])
            .await
            .unwrap();
        let (id, secret) = app.standard_client().await;
        let args = vec![
            app.issuer.clone(),
            id,
            secret,
            "https://api.example".to_owned(),
        ];
        let stdout = run_script(&python, "client_credentials.py", args, alg).await;
        assert_eq!(
            stdout.matches("verified through the JWKS").count(),
            2,
            "{alg}: both methods: {stdout}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authlib_private_key_jwt_works_unmodified() {
    let Some(python) = python() else { return };
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    let dir = crate::helpers::TempDir::new();
    for key in [TestKey::rs256(), TestKey::es256(), TestKey::eddsa()] {
        let alg = key.alg();
        let id = app
            .create_key_client(tokenmint::admin::NewClient {
                client_id: format!("svc:{}", alg.to_lowercase()),
                scopes: vec!["a".into()],
                jwks: Some(key.jwks(&format!("{alg}-key"))),
                ..Default::default()
            })
            .await;
        let pem = dir.path().join(format!("{alg}.pem"));
        std::fs::write(&pem, key.pkcs8_pem()).unwrap();
        let args = vec![
            app.issuer.clone(),
            id,
            pem.display().to_string(),
            alg.to_owned(),
        ];
        let stdout = run_script(&python, "private_key_jwt.py", args, alg).await;
        assert!(stdout.contains("replay refused"), "{alg}: {stdout}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pyjwt_dpop_proofs_and_requests_client_certificates_bind_tokens() {
    let Some(python) = python() else { return };
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    let (id, secret) = app.standard_client().await;
    let stdout = run_script(
        &python,
        "sender_constrained.py",
        vec!["dpop".to_owned(), app.issuer.clone(), id, secret],
        "dpop",
    )
    .await;
    assert_eq!(
        stdout.matches("replayed proof refused").count(),
        2,
        "{stdout}"
    );

    let ca = crate::mtls::Ca::new("Interop CA");
    let server = crate::mtls::MtlsServer::start(Backend::Sqlite, &ca, &[])
        .await
        .unwrap();
    let id = server
        .app
        .create_key_client(tokenmint::admin::NewClient {
            client_id: "orders".into(),
            scopes: vec!["a".into()],
            tls_client_auth_san_uri: Some("spiffe://prod.example/orders".into()),
            ..Default::default()
        })
        .await;
    let credential = ca.issue(
        "orders",
        vec![rcgen::SanType::URI(
            "spiffe://prod.example/orders".try_into().unwrap(),
        )],
        false,
    );
    let dir = crate::helpers::TempDir::new();
    let files = ["cert.pem", "key.pem", "server.pem"].map(|f| dir.path().join(f));
    std::fs::write(&files[0], &credential.pem).unwrap();
    std::fs::write(&files[1], &credential.key_pem).unwrap();
    std::fs::write(&files[2], &server.server_pem).unwrap();
    let mut args = vec!["mtls".to_owned(), server.url(""), id];
    args.extend(files.iter().map(|f| f.display().to_string()));
    let stdout = run_script(&python, "sender_constrained.py", args, "mtls").await;
    assert!(stdout.contains("no certificate refused"), "{stdout}");
}
