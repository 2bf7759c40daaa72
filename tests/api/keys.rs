//! Signing keys: the algorithm is a setting, and keys survive restarts.

use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, decode_header};
use serde_json::Value;

use crate::helpers::{Backend, TestApp, both_stores, json};

both_stores!(
    restart_keeps_clients_and_the_signing_key,
    a_wrong_or_missing_key_encryption_key_writes_nothing
);

/// A key-encryption key that opens none of the stored keys — a wrong one,
/// or a generated one whose file was lost — stops the start, naming the
/// setting, before anything is written.
async fn a_wrong_or_missing_key_encryption_key_writes_nothing(app: TestApp) {
    let before = app.store.list_signing_keys().await.unwrap().len();
    let wrong = "ZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmY=";
    let mut env = app.env_without("TOKENMINT_KEY_ENCRYPTION_KEY");
    env.push(("TOKENMINT_KEY_ENCRYPTION_KEY".into(), wrong.into()));
    // Another algorithm than the stored key's: a start would make a new key.
    env.push(("TOKENMINT_SIGNING_ALG".into(), "EdDSA".into()));
    let output = crate::helpers::run_binary(&["key", "list"], &env, None);
    assert!(!output.status.success(), "a wrong key-encryption key");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("TOKENMINT_KEY_ENCRYPTION_KEY"), "{stderr}");
    assert_eq!(
        app.store.list_signing_keys().await.unwrap().len(),
        before,
        "no key was written with the wrong key-encryption key"
    );

    // The right key from a file (a Docker or Kubernetes secret) works;
    // the variable and its _FILE together are refused, naming both.
    if let Some((_, kek)) = app
        .env
        .iter()
        .find(|(k, _)| k == "TOKENMINT_KEY_ENCRYPTION_KEY")
    {
        let dir = crate::helpers::TempDir::new();
        let file = dir.path().join("kek");
        std::fs::write(&file, format!("{kek}\n")).unwrap();
        let mut env = app.env_without("TOKENMINT_KEY_ENCRYPTION_KEY");
        env.push((
            "TOKENMINT_KEY_ENCRYPTION_KEY_FILE".into(),
            file.to_str().unwrap().into(),
        ));
        let listed = crate::helpers::run_binary(&["key", "list"], &env, None);
        assert!(
            listed.status.success(),
            "{}",
            String::from_utf8_lossy(&listed.stderr)
        );
        env.push(("TOKENMINT_KEY_ENCRYPTION_KEY".into(), kek.clone()));
        let both = crate::helpers::run_binary(&["key", "list"], &env, None);
        assert_eq!(both.status.code(), Some(2), "both set is a usage error");
        let stderr = String::from_utf8_lossy(&both.stderr);
        assert!(
            stderr.contains("TOKENMINT_KEY_ENCRYPTION_KEY and TOKENMINT_KEY_ENCRYPTION_KEY_FILE"),
            "{stderr}"
        );
    }

    let generated = app
        .env
        .iter()
        .find(|(k, _)| k == "TOKENMINT_DATA_DIR")
        .map(|(_, dir)| std::path::Path::new(dir).join("key-encryption-key"))
        .unwrap();
    if generated.exists() {
        let mode =
            std::os::unix::fs::PermissionsExt::mode(&generated.metadata().unwrap().permissions());
        assert_eq!(
            mode & 0o077,
            0,
            "the generated key file is the owner's only"
        );
        let db = generated.with_file_name("tokenmint.db");
        let mode = std::os::unix::fs::PermissionsExt::mode(&db.metadata().unwrap().permissions());
        assert_eq!(mode & 0o077, 0, "the database file is the owner's only");

        std::fs::remove_file(&generated).unwrap();
        let output = app.cli(&["key", "list"], None);
        assert!(!output.status.success(), "a lost key-encryption key file");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("key-encryption key file"), "{stderr}");
        assert!(!generated.exists(), "it was not silently made anew");
    }
}

const GRANT: &str = "grant_type=client_credentials";

async fn token_of(app: &TestApp, id: &str, secret: &str) -> String {
    let response = app.token(GRANT, Some((id, secret))).await;
    assert_eq!(response.status(), 200);
    json(response).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn verify_with_stored_key(app: &TestApp, token: &str, alg: Algorithm) -> Value {
    let header = decode_header(token).unwrap();
    assert_eq!(header.alg, alg);
    assert_eq!(header.typ.as_deref(), Some("at+jwt"));
    let key = DecodingKey::from_jwk(&app.public_jwk(&header.kid.unwrap()).await).unwrap();
    let mut validation = Validation::new(alg);
    validation.validate_aud = false;
    decode::<Value>(token, &key, &validation)
        .expect("verifies")
        .claims
}

async fn restart_keeps_clients_and_the_signing_key(mut app: TestApp) {
    let (id, secret) = app.standard_client().await;
    let before = token_of(&app, &id, &secret).await;
    app.restart().await;
    let after = token_of(&app, &id, &secret).await;
    assert_eq!(
        decode_header(&before).unwrap().kid,
        decode_header(&after).unwrap().kid,
        "the same key signs after a restart"
    );
    verify_with_stored_key(&app, &before, Algorithm::ES256).await;
    let keys = app.store.list_signing_keys().await.unwrap();
    assert_eq!(keys.len(), 1, "no new key on restart");
}

async fn algorithms_by_setting(backend: Backend) {
    for (setting, alg) in [
        ("EdDSA", Algorithm::EdDSA),
        ("RS256", Algorithm::RS256),
        ("ES256", Algorithm::ES256),
    ] {
        let Some(app) = TestApp::spawn_with(backend, &[("TOKENMINT_SIGNING_ALG", setting)]).await
        else {
            return;
        };
        let (id, secret) = app.standard_client().await;
        let token = token_of(&app, &id, &secret).await;
        let claims = verify_with_stored_key(&app, &token, alg).await;
        assert_eq!(claims["client_id"], id.as_str(), "{setting}");
        let stored = app.store.list_signing_keys().await.unwrap();
        assert_eq!(stored[0].alg, setting, "{setting}: the key in the store");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn algorithms_by_setting_sqlite() {
    algorithms_by_setting(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn algorithms_by_setting_postgres() {
    algorithms_by_setting(Backend::Postgres).await;
}

both_stores!(
    automatic_rotation_by_key_age,
    configured_issuer_drives_iss_and_metadata
);

async fn automatic_rotation_by_key_age(app: TestApp) {
    use tokenmint::clock::unix_now;
    use tokenmint::config::Config;
    let mut env = app.env.clone();
    env.push(("TOKENMINT_KEY_ROTATION_INTERVAL".into(), "1h".into()));
    env.push(("TOKENMINT_LISTEN".into(), "127.0.0.1:0".into()));
    let config = Config::from_sources(None, env).unwrap();
    let ring = tokenmint::startup::open_key_ring(&config, app.store.clone())
        .await
        .unwrap();
    let count = || async { app.store.list_signing_keys().await.unwrap().len() };
    assert_eq!(count().await, 1);

    let start = unix_now();
    ring.refresh(start + 1800).await.unwrap();
    assert_eq!(count().await, 1, "not due at half the interval");
    ring.refresh(start + 3600 + 5).await.unwrap();
    assert_eq!(count().await, 2, "due once the newest key is an hour old");
    let keys = app.store.list_signing_keys().await.unwrap();
    let newest = keys.iter().max_by_key(|k| k.created_at).unwrap();
    assert_eq!(
        newest.activates_at,
        start + 3605 + 300,
        "pre-published for the JWKS max-age"
    );
    ring.refresh(start + 3700).await.unwrap();
    assert_eq!(count().await, 2, "the new key resets the clock");
}

async fn configured_issuer_drives_iss_and_metadata(app: TestApp) {
    let issuer = "https://auth.example.test";
    let other = app
        .another_instance(&[("TOKENMINT_ISSUER", "https://auth.example.test/")])
        .await;
    assert_eq!(other.issuer, issuer, "a trailing slash is dropped");
    let metadata = json(
        app.http
            .get(format!(
                "{}/.well-known/oauth-authorization-server",
                other.address
            ))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(metadata["issuer"], issuer);
    assert_eq!(metadata["token_endpoint"], format!("{issuer}/token"));
    let (id, secret) = app.standard_client().await;
    let url = format!("{}/token", other.address);
    let body =
        json(crate::helpers::post_form(&app.http, &url, GRANT, Some((&id, &secret))).await).await;
    let token = body["access_token"].as_str().unwrap();
    let claims = verify_with_stored_key(&app, token, Algorithm::ES256).await;
    assert_eq!(claims["iss"], issuer);
}
