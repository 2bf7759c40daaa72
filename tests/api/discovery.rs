//! Metadata (RFC 8414), the JWKS (RFC 7517) and key rotation.

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{DecodingKey, Validation, decode, decode_header};
use serde_json::Value;

use crate::helpers::{TestApp, both_stores, json};

both_stores!(
    metadata_names_every_endpoint,
    jwks_publishes_live_kids_and_no_private_member,
    rotation_prepublishes_then_signs_with_the_new_key,
    no_plain_private_key_is_stored,
);

async fn metadata_names_every_endpoint(app: TestApp) {
    for path in [
        "/.well-known/oauth-authorization-server",
        "/.well-known/openid-configuration",
    ] {
        let response = app.http.get(app.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
        let m = json(response).await;
        let issuer = app.issuer.as_str();
        assert_eq!(m["issuer"], issuer, "{path}: issuer");
        assert_eq!(m["token_endpoint"], format!("{issuer}/token"), "{path}");
        assert_eq!(
            m["jwks_uri"],
            format!("{issuer}/.well-known/jwks.json"),
            "{path}"
        );
        assert_eq!(
            m["introspection_endpoint"],
            format!("{issuer}/introspect"),
            "{path}"
        );
        assert_eq!(
            m["revocation_endpoint"],
            format!("{issuer}/revoke"),
            "{path}"
        );
        assert!(
            m["response_types_supported"].is_array(),
            "{path}: REQUIRED by RFC 8414 §2"
        );
        assert_eq!(
            m["grant_types_supported"],
            serde_json::json!(["client_credentials"]),
            "{path}"
        );
        assert_eq!(
            m["token_endpoint_auth_methods_supported"],
            serde_json::json!([
                "client_secret_basic",
                "client_secret_post",
                "private_key_jwt"
            ]),
            "{path}"
        );
        assert_eq!(
            m["token_endpoint_auth_signing_alg_values_supported"],
            serde_json::json!(["RS256", "PS256", "ES256", "EdDSA", "Ed25519"]),
            "{path}: the private_key_jwt algorithms, asymmetric only"
        );
        assert!(
            m.get("authorization_endpoint").is_none(),
            "{path}: no authorization endpoint"
        );
    }
}

async fn jwks(app: &TestApp) -> (Value, String) {
    let response = app
        .http
        .get(app.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let cache = response.headers()["cache-control"]
        .to_str()
        .unwrap()
        .to_owned();
    (json(response).await, cache)
}

fn kids(jwks: &Value) -> Vec<String> {
    jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect()
}

/// Verifies `token` through the JWKS document alone, as a resource server would.
fn verify_via_jwks(jwks: &Value, token: &str, issuer: &str) -> Value {
    let set: JwkSet = serde_json::from_value(jwks.clone()).unwrap();
    let header = decode_header(token).unwrap();
    let jwk = set
        .find(header.kid.as_deref().unwrap())
        .expect("the token's kid is in the JWKS");
    let mut validation = Validation::new(header.alg);
    validation.validate_aud = false;
    validation.set_issuer(&[issuer]);
    decode::<Value>(token, &DecodingKey::from_jwk(jwk).unwrap(), &validation)
        .expect("verifies via JWKS")
        .claims
}

async fn jwks_publishes_live_kids_and_no_private_member(app: TestApp) {
    let (id, secret) = app.standard_client().await;
    let token = app.token_for(&id, &secret).await;
    let (document, cache) = jwks(&app).await;
    assert!(cache.contains("max-age=300"), "cacheable: {cache}");
    let kid = decode_header(&token).unwrap().kid.unwrap();
    assert!(
        kids(&document).contains(&kid),
        "the live token's kid is published"
    );
    for key in document["keys"].as_array().unwrap() {
        for private in ["d", "p", "q", "dp", "dq", "qi", "k", "oth"] {
            assert!(
                key.get(private).is_none(),
                "no private member '{private}' in {key}"
            );
        }
        for member in ["kty", "kid", "alg", "use"] {
            assert!(key.get(member).is_some(), "member '{member}' in {key}");
        }
    }
    verify_via_jwks(&document, &token, &app.issuer);
}

async fn key_list(app: &TestApp) -> Vec<Value> {
    let list = app.cli_json(&["key", "list"]);
    list.as_array().expect("a list of keys").clone()
}

async fn rotation_prepublishes_then_signs_with_the_new_key(app: TestApp) {
    let (id, secret) = app.standard_client().await;
    let old_token = app.token_for(&id, &secret).await;
    let old_kid = decode_header(&old_token).unwrap().kid.unwrap();

    let pending = app.cli_json(&["key", "rotate"]);
    let pending_kid = pending["kid"].as_str().unwrap().to_owned();
    assert_eq!(pending["status"], "pending");

    let grown = crate::helpers::eventually(std::time::Duration::from_secs(5), || async {
        let (document, _) = jwks(&app).await;
        kids(&document).contains(&pending_kid).then_some(document)
    })
    .await
    .expect("the JWKS publishes the pending key within seconds");
    assert!(
        kids(&grown).contains(&old_kid),
        "the active key stays published"
    );
    let still_old = app.token_for(&id, &secret).await;
    assert_eq!(
        decode_header(&still_old).unwrap().kid.unwrap(),
        old_kid,
        "a pending key does not sign"
    );

    let statuses: Vec<(String, String)> = key_list(&app)
        .await
        .iter()
        .map(|k| {
            (
                k["kid"].as_str().unwrap().to_owned(),
                k["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert!(
        statuses.contains(&(old_kid.clone(), "active".into())),
        "{statuses:?}"
    );
    assert!(
        statuses.contains(&(pending_kid.clone(), "pending".into())),
        "{statuses:?}"
    );

    let new_kid = app.cli_json(&["key", "rotate", "--now"])["kid"]
        .as_str()
        .unwrap()
        .to_owned();
    let new_token = crate::helpers::eventually(std::time::Duration::from_secs(5), || async {
        let token = app.token_for(&id, &secret).await;
        (decode_header(&token).unwrap().kid.as_deref() == Some(new_kid.as_str())).then_some(token)
    })
    .await
    .expect("after --now, new tokens carry the new kid within seconds");

    let (document, _) = jwks(&app).await;
    for kid in [&old_kid, &pending_kid, &new_kid] {
        assert!(kids(&document).contains(kid), "{kid} published after --now");
    }
    verify_via_jwks(&document, &old_token, &app.issuer);
    verify_via_jwks(&document, &new_token, &app.issuer);
}

/// The OID of id-ecPublicKey (1.2.840.10045.2.1) as DER: in every PKCS#8 EC
/// private key, and in nothing else we store (public keys are JWK text).
const EC_KEY_OID: [u8; 9] = [0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];

async fn no_plain_private_key_is_stored(app: TestApp) {
    let (id, secret) = app.standard_client().await;
    app.token_for(&id, &secret).await;
    let stored = app.store.list_signing_keys().await.unwrap();
    assert!(!stored.is_empty());
    for key in &stored {
        assert!(
            !key.sealed_private_key
                .windows(EC_KEY_OID.len())
                .any(|w| w == EC_KEY_OID),
            "the stored private key is not plain PKCS#8"
        );
        assert!(
            !key.public_jwk.contains("\"d\""),
            "no private member in the stored JWK"
        );
    }
    // Every file in the data folder (the SQLite database and its WAL, the
    // key-encryption key): no PKCS#8 EC key in any of them.
    let data_dir = app
        .env
        .iter()
        .find(|(k, _)| k == "TOKENMINT_DATA_DIR")
        .unwrap()
        .1
        .clone();
    let mut files = 0;
    for entry in std::fs::read_dir(&data_dir).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        files += 1;
        assert!(
            !bytes.windows(EC_KEY_OID.len()).any(|w| w == EC_KEY_OID),
            "a plain private key in the data folder"
        );
    }
    assert!(
        files > 0 || stored.len() == 1,
        "the data folder was inspected"
    );
}

both_stores!(openapi_document_describes_the_surface);

async fn openapi_document_describes_the_surface(app: TestApp) {
    let response = app.http.get(app.url("/openapi.json")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let doc = json(response).await;
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3."),
        "OpenAPI 3"
    );
    for path in [
        "/token",
        "/introspect",
        "/revoke",
        "/.well-known/jwks.json",
        "/.well-known/oauth-authorization-server",
        "/.well-known/openid-configuration",
        "/healthz",
        "/readyz",
        "/metrics",
        "/openapi.json",
        "/admin/clients",
        "/admin/clients/{id}",
        "/admin/clients/{id}/secret",
        "/admin/keys",
        "/admin/keys/rotate",
    ] {
        assert!(doc["paths"].get(path).is_some(), "{path} is documented");
    }
    let token = &doc["paths"]["/token"]["post"];
    assert!(
        token["requestBody"]["content"]
            .get("application/x-www-form-urlencoded")
            .is_some()
    );
    for status in ["200", "400", "401", "429", "503"] {
        assert!(
            token["responses"].get(status).is_some(),
            "/token documents {status}"
        );
    }
    let schemes = &doc["components"]["securitySchemes"];
    assert_eq!(schemes["client_basic"]["scheme"], "basic");
    assert_eq!(schemes["admin_bearer"]["scheme"], "bearer");
}
