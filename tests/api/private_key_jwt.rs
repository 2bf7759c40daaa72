//! `private_key_jwt` (RFC 7523 §2.2): a client proves who it is with a JWT
//! signed by its own key, registered inline or published at a `jwks_uri`
//! the test serves; and every way such an assertion can be forged,
//! replayed, stale, aimed elsewhere, or its keys unreachable.

use std::time::{Duration, Instant};

use aws_lc_rs::hmac;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use tokenmint::admin::NewClient;
use tokenmint::clock::unix_now;

use crate::helpers::{Backend, TestApp, both_stores, json, within_a_second};
use crate::jose::{KeyHost, Mode, TestKey};

both_stores!(
    a_key_client_authenticates_at_every_endpoint,
    every_refusal_is_invalid_client,
    a_jti_is_single_use_across_instances,
);

fn key_client(id: &str, jwks: Option<Value>, jwks_uri: Option<String>) -> NewClient {
    NewClient {
        client_id: id.into(),
        scopes: vec!["a b".into()],
        jwks,
        jwks_uri,
        ..NewClient::default()
    }
}

async fn assert_invalid_client(response: reqwest::Response, why: &str) {
    assert_eq!(response.status(), 401, "{why}");
    let body = json(response).await;
    assert_eq!(body["error"], "invalid_client", "{why}: {body}");
    assert_eq!(
        body["error_description"], "client authentication failed",
        "{why}: the same answer as a wrong secret"
    );
}

async fn a_key_client_authenticates_at_every_endpoint(app: TestApp) {
    let key = TestKey::es256();
    let id = app
        .create_key_client(key_client("svc:keys", Some(key.jwks("k1")), None))
        .await;
    let assertion = || key.assertion("k1", &id, &app.issuer, 300);

    let response = app.with_assertion("/token", &assertion(), &[]).await;
    assert_eq!(response.status(), 200);
    let token = json(response).await;
    assert_eq!(token["token_type"], "Bearer");
    let access_token = token["access_token"].as_str().unwrap().to_owned();

    // With client_id as well (RFC 7521 §4.2 allows it), and with the token
    // endpoint URL as audience (older clients).
    let endpoint = format!("{}/token", app.issuer);
    let by_endpoint = key.assertion("k1", &id, &endpoint, 300);
    let response = app
        .with_assertion("/token", &by_endpoint, &[("client_id", &id)])
        .await;
    assert_eq!(response.status(), 200, "token endpoint as audience");

    let response = app
        .with_assertion("/introspect", &assertion(), &[("token", &access_token)])
        .await;
    assert_eq!(response.status(), 200);
    let answer = json(response).await;
    assert_eq!(answer["active"], true, "{answer}");
    assert_eq!(answer["client_id"], id.as_str());

    let response = app
        .with_assertion("/revoke", &assertion(), &[("token", &access_token)])
        .await;
    assert_eq!(
        response.status(),
        200,
        "the owner revokes with an assertion"
    );
    let response = app
        .with_assertion("/introspect", &assertion(), &[("token", &access_token)])
        .await;
    assert_eq!(json(response).await["active"], false, "revoked");
}

async fn every_refusal_is_invalid_client(app: TestApp) {
    let key = TestKey::es256();
    let id = app
        .create_key_client(key_client("svc:strict", Some(key.jwks("k1")), None))
        .await;
    let now = unix_now();
    let claims = |changes: Value| {
        let mut claims = json!({"iss": id, "sub": id, "aud": app.issuer, "iat": now,
                                "exp": now + 300, "jti": tokenmint::crypto::random_token::<12>().unwrap()});
        for (k, v) in changes.as_object().unwrap() {
            if v.is_null() {
                claims.as_object_mut().unwrap().remove(k);
            } else {
                claims[k] = v.clone();
            }
        }
        claims
    };
    let header = json!({"alg": "ES256", "kid": "k1"});
    let signed = |changes: Value| key.sign(&header, &claims(changes));

    let cases: Vec<(&str, String)> = vec![
        (
            "wrong aud",
            signed(json!({"aud": "https://elsewhere.example"})),
        ),
        ("expired", signed(json!({"exp": now - 120}))),
        ("exp two hours ahead", signed(json!({"exp": now + 7200}))),
        ("no exp", signed(json!({"exp": null}))),
        ("no jti", signed(json!({"jti": null}))),
        ("not yet valid", signed(json!({"nbf": now + 600}))),
        ("issued in the future", signed(json!({"iat": now + 600}))),
        ("sub is another client", signed(json!({"sub": "svc:other"}))),
        (
            "signed by another key",
            TestKey::es256().sign(&header, &claims(json!({}))),
        ),
        (
            "an unknown kid",
            key.sign(&json!({"alg": "ES256", "kid": "k9"}), &claims(json!({}))),
        ),
        (
            "an EdDSA header on an EC key",
            key.sign(&json!({"alg": "EdDSA", "kid": "k1"}), &claims(json!({}))),
        ),
        ("not a JWT", "not.a.jwt".to_owned()),
        (
            "8 KiB of padding",
            format!("{}{}", signed(json!({})), "A".repeat(9000)),
        ),
    ];
    for (why, assertion) in cases {
        assert_invalid_client(app.with_assertion("/token", &assertion, &[]).await, why).await;
    }

    // An empty assertion is an omitted one (RFC 6749 §3.1), so the request
    // is malformed rather than a failed authentication.
    let response = app.with_assertion("/token", "", &[]).await;
    assert_eq!(response.status(), 400, "empty client_assertion");

    // Numbers at the edge of i64 and beyond: refused, not a 500.
    for huge in [json!(i64::MAX), json!(9.3e18), json!(1e300), json!(-1e300)] {
        let assertion = signed(json!({"exp": huge}));
        assert_invalid_client(
            app.with_assertion("/token", &assertion, &[]).await,
            "huge exp",
        )
        .await;
        let assertion = signed(json!({"iat": huge, "nbf": huge}));
        assert_eq!(
            app.with_assertion("/token", &assertion, &[]).await.status(),
            401,
            "huge iat/nbf"
        );
    }

    // alg none: no signature at all.
    let unsigned = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(br#"{"alg":"none"}"#),
        URL_SAFE_NO_PAD.encode(claims(json!({})).to_string())
    );
    assert_invalid_client(
        app.with_assertion("/token", &unsigned, &[]).await,
        "alg none",
    )
    .await;

    // HS256 "keyed" with the client's public key: anyone could make it.
    let public = key.jwks("k1").to_string();
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","kid":"k1"}"#),
        URL_SAFE_NO_PAD.encode(claims(json!({})).to_string())
    );
    for secret in [
        public.as_bytes(),
        key.jwk("k1")["x"].as_str().unwrap().as_bytes(),
    ] {
        let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, secret), input.as_bytes());
        let forged = format!("{input}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref()));
        assert_invalid_client(app.with_assertion("/token", &forged, &[]).await, "HS256").await;
    }

    // The payload changed after signing.
    let good = signed(json!({}));
    let parts: Vec<&str> = good.split('.').collect();
    let wider = URL_SAFE_NO_PAD.encode(claims(json!({"sub": id, "scope": "admin"})).to_string());
    let tampered = format!("{}.{wider}.{}", parts[0], parts[2]);
    assert_invalid_client(
        app.with_assertion("/token", &tampered, &[]).await,
        "tampered",
    )
    .await;

    // client_id naming another client than the assertion.
    let response = app
        .with_assertion("/token", &signed(json!({})), &[("client_id", "svc:other")])
        .await;
    assert_invalid_client(response, "client_id mismatch").await;

    // A secret sent for a keys-only client is refused like a wrong one.
    assert_eq!(
        app.token_status(&id, "any-secret-at-all").await,
        401,
        "a secret for a key client"
    );

    // A secret client cannot authenticate with an assertion, even one
    // signed by a key it never registered.
    let (secret_id, _) = app.standard_client().await;
    let foreign = key.assertion("k1", &secret_id, &app.issuer, 300);
    assert_invalid_client(
        app.with_assertion("/token", &foreign, &[]).await,
        "secret client",
    )
    .await;

    // A disabled key client.
    app.cli_json(&["client", "disable", &id]);
    let disabled = key.assertion("k1", &id, &app.issuer, 300);
    assert!(
        within_a_second(|| async {
            app.with_assertion("/token", &disabled, &[]).await.status() == 401
        })
        .await,
        "disabled"
    );

    // Two methods at once.
    let response = app
        .with_assertion(
            "/token",
            &signed(json!({})),
            &[("client_secret", "x"), ("client_id", &id)],
        )
        .await;
    assert_eq!(response.status(), 400, "an assertion and a secret");
}

async fn a_jti_is_single_use_across_instances(app: TestApp) {
    let key = TestKey::eddsa();
    let id = app
        .create_key_client(key_client("svc:once", Some(key.jwks("e1")), None))
        .await;
    let assertion = key.assertion("e1", &id, &app.issuer, 600);
    let first = app.with_assertion("/token", &assertion, &[]).await;
    assert_eq!(first.status(), 200);
    assert_invalid_client(
        app.with_assertion("/token", &assertion, &[]).await,
        "replay",
    )
    .await;

    // A second instance under the same issuer, as behind a load balancer.
    let other = app
        .another_instance(&[("TOKENMINT_ISSUER", &app.issuer)])
        .await;
    let body = crate::jose::assertion_form(&assertion, &[("grant_type", "client_credentials")]);
    let response =
        crate::helpers::post_form(&app.http, &format!("{}/token", other.address), &body, None)
            .await;
    assert_eq!(
        response.status(),
        401,
        "replayed on another instance sharing the database"
    );

    // The same assertion twenty times at once (they share database writes):
    // exactly one is accepted.
    let racing = key.assertion("e1", &id, &app.issuer, 600);
    let mut racers = tokio::task::JoinSet::new();
    for _ in 0..20 {
        let body = crate::jose::assertion_form(&racing, &[("grant_type", "client_credentials")]);
        let (http, url) = (app.http.clone(), app.url("/token"));
        racers.spawn(async move {
            crate::helpers::post_form(&http, &url, &body, None)
                .await
                .status()
                .as_u16()
        });
    }
    let mut accepted = 0;
    while let Some(status) = racers.join_next().await {
        accepted += usize::from(status.unwrap() == 200);
    }
    assert_eq!(accepted, 1, "one of twenty concurrent presentations");

    // Replayed at another endpoint: the jti is spent for every endpoint.
    let response = app
        .with_assertion("/introspect", &assertion, &[("token", "x")])
        .await;
    assert_eq!(response.status(), 401, "replayed at /introspect");

    // A fresh one works on the other instance.
    let fresh = key.assertion("e1", &id, &app.issuer, 600);
    let response = crate::helpers::post_form(
        &app.http,
        &format!("{}/token", other.address),
        &crate::jose::assertion_form(&fresh, &[("grant_type", "client_credentials")]),
        None,
    )
    .await;
    assert_eq!(response.status(), 200);

    // Spent ids are pruned once their assertion has expired, not before.
    let pruned = app.store.prune_expired(unix_now()).await.unwrap();
    assert_eq!(pruned, 0, "unexpired assertion ids are kept");
    let pruned = app.store.prune_expired(unix_now() + 3600).await.unwrap();
    assert_eq!(pruned, 3, "the spent ids expire with their assertions");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_algorithm_verifies() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    for (n, key) in [
        TestKey::rs256(),
        TestKey::ps256(),
        TestKey::es256(),
        TestKey::eddsa(),
    ]
    .into_iter()
    .enumerate()
    {
        let id = app
            .create_key_client(key_client(
                &format!("svc:alg{n}"),
                Some(key.jwks("k")),
                None,
            ))
            .await;
        let assertion = key.assertion("k", &id, &app.issuer, 300);
        let response = app.with_assertion("/token", &assertion, &[]).await;
        assert_eq!(response.status(), 200, "{}", key.alg());
        if key.alg() == "EdDSA" {
            // RFC 9864's fully-specified name, as openid-client sends it.
            let now = unix_now();
            let renamed = key.sign(
                &json!({"alg": "Ed25519", "kid": "k"}),
                &json!({"iss": id, "sub": id, "aud": app.issuer, "exp": now + 60, "jti": "ed-name"}),
            );
            let response = app.with_assertion("/token", &renamed, &[]).await;
            assert_eq!(response.status(), 200, "Ed25519");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_at_a_jwks_uri_are_cached_and_refetched_on_rotation() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    let first = TestKey::es256();
    let host = KeyHost::start(first.jwks("k1")).await;
    let id = app
        .create_key_client(key_client("svc:remote", None, Some(host.jwks_uri())))
        .await;
    for _ in 0..3 {
        let assertion = first.assertion("k1", &id, &app.issuer, 300);
        assert_eq!(
            app.with_assertion("/token", &assertion, &[]).await.status(),
            200
        );
    }
    assert_eq!(host.jwks_hits(), 1, "fetched once, then cached");

    // The client rotates: a new kid makes tokenmint refetch, once.
    let second = TestKey::rs256();
    host.set_jwks(json!({"keys": [first.jwk("k1"), second.jwk("k2")]}));
    let assertion = second.assertion("k2", &id, &app.issuer, 300);
    assert_eq!(
        app.with_assertion("/token", &assertion, &[]).await.status(),
        200
    );
    assert_eq!(host.jwks_hits(), 2, "refetched for the unknown kid");

    // Made-up kids do not make tokenmint hammer the key host.
    for n in 0..5 {
        let forged = TestKey::es256().assertion(&format!("x{n}"), &id, &app.issuer, 300);
        assert_eq!(
            app.with_assertion("/token", &forged, &[]).await.status(),
            401
        );
    }
    assert_eq!(host.jwks_hits(), 2, "at most one refetch a minute");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_key_set_is_invalid_client_not_a_hang() {
    let app = TestApp::spawn_with(Backend::Sqlite, &[("TOKENMINT_FETCH_TIMEOUT", "1s")])
        .await
        .unwrap();
    let key = TestKey::es256();
    for (n, mode) in [Mode::Down, Mode::Slow(Duration::from_secs(5)), Mode::Huge]
        .into_iter()
        .enumerate()
    {
        let host = KeyHost::start(key.jwks("k1")).await;
        host.set_mode(mode);
        let id = app
            .create_key_client(key_client(
                &format!("svc:down{n}"),
                None,
                Some(host.jwks_uri()),
            ))
            .await;
        let started = Instant::now();
        let assertion = key.assertion("k1", &id, &app.issuer, 300);
        assert_invalid_client(
            app.with_assertion("/token", &assertion, &[]).await,
            "unreachable keys",
        )
        .await;
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "case {n}: within the fetch timeout"
        );
    }
    // Nothing closed the door for good: the host comes back, the client works
    // (after the retry interval).
    let host = KeyHost::start(key.jwks("k1")).await;
    host.set_mode(Mode::Down);
    let id = app
        .create_key_client(key_client("svc:flaky", None, Some(host.jwks_uri())))
        .await;
    assert_eq!(
        app.with_assertion("/token", &key.assertion("k1", &id, &app.issuer, 300), &[])
            .await
            .status(),
        401
    );
    host.set_mode(Mode::Normal);
    tokio::time::sleep(Duration::from_millis(5100)).await;
    assert_eq!(
        app.with_assertion("/token", &key.assertion("k1", &id, &app.issuer, 300), &[])
            .await
            .status(),
        200,
        "recovered once the host answers"
    );
    let metrics = app
        .http
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("tokenmint_auth_failures_total{reason=\"keys_unavailable\"} 4"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_key_host_is_fetched_once_not_once_per_caller() {
    let app = TestApp::spawn_with(Backend::Sqlite, &[("TOKENMINT_FETCH_TIMEOUT", "1s")])
        .await
        .unwrap();
    let key = TestKey::es256();
    let host = KeyHost::start(key.jwks("k1")).await;
    host.set_mode(Mode::Slow(Duration::from_secs(20)));
    let id = app
        .create_key_client(key_client("svc:hang", None, Some(host.jwks_uri())))
        .await;
    // Twenty callers at once, then more one after another: no key needed,
    // the fetch would come before any signature check.
    let started = Instant::now();
    let mut callers = tokio::task::JoinSet::new();
    for _ in 0..20 {
        let body = crate::jose::assertion_form(
            &TestKey::es256().assertion("k1", &id, &app.issuer, 300),
            &[("grant_type", "client_credentials")],
        );
        let (http, url) = (app.http.clone(), app.url("/token"));
        callers.spawn(async move {
            crate::helpers::post_form(&http, &url, &body, None)
                .await
                .status()
        });
    }
    while let Some(status) = callers.join_next().await {
        assert_eq!(status.unwrap(), 401);
    }
    for _ in 0..5 {
        let assertion = key.assertion("k1", &id, &app.issuer, 300);
        assert_eq!(
            app.with_assertion("/token", &assertion, &[]).await.status(),
            401
        );
    }
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}: one timeout, not one per caller",
        started.elapsed()
    );
    assert_eq!(
        host.jwks_hits(),
        1,
        "one fetch; the failure is remembered for the retry interval"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_small_order_ed25519_key_is_refused_so_nothing_verifies_against_it() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    // The identity point: against it, R = identity and s = 0 "verify" any
    // message under cofactorless RFC 8032 verification.
    let mut identity = [0u8; 32];
    identity[0] = 1;
    let x = URL_SAFE_NO_PAD.encode(identity);
    let weak = json!({"keys": [{"kty": "OKP", "crv": "Ed25519", "kid": "z", "x": x}]});
    let admin = tokenmint::admin::ClientAdmin::new(app.store.as_ref(), &app.hasher);
    let refused = admin
        .create(
            key_client("svc:weak", Some(weak.clone()), None),
            None,
            unix_now(),
        )
        .await;
    assert!(
        refused.is_err(),
        "a small-order key is refused at registration"
    );
    // Nor can a key host slip one in.
    let host = KeyHost::start(weak).await;
    let id = app
        .create_key_client(key_client("svc:weak-uri", None, Some(host.jwks_uri())))
        .await;
    let now = unix_now();
    let claims = json!({"iss": id, "sub": id, "aud": app.issuer, "exp": now + 60, "jti": "forged"});
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(br#"{"alg":"EdDSA","kid":"z"}"#),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let mut signature = [0u8; 64];
    signature[0] = 1;
    let forged = format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature));
    assert_invalid_client(
        app.with_assertion("/token", &forged, &[]).await,
        "small-order forgery",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_http_key_sets_need_the_setting() {
    let app = TestApp::spawn_with(Backend::Sqlite, &[("TOKENMINT_ALLOW_HTTP_FETCH", "false")])
        .await
        .unwrap();
    let key = TestKey::es256();
    let host = KeyHost::start(key.jwks("k1")).await;
    let id = app
        .create_key_client(key_client("svc:http", None, Some(host.jwks_uri())))
        .await;
    let assertion = key.assertion("k1", &id, &app.issuer, 300);
    assert_invalid_client(
        app.with_assertion("/token", &assertion, &[]).await,
        "http jwks_uri",
    )
    .await;
    assert_eq!(host.jwks_hits(), 0, "not even fetched");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registration_refuses_unsafe_keys_and_shows_no_secret() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    let token = app.admin_token().await;
    let admin = app.admin(Some(&token));
    let key = TestKey::es256();
    let mut private = key.jwk("k1");
    private["d"] = json!("AAAA");
    let refused = [
        (
            json!({"client_id": "a", "jwks": {"keys": [private]}}),
            "jwks",
        ),
        (
            json!({"client_id": "a", "jwks": {"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}}),
            "jwks",
        ),
        (json!({"client_id": "a", "jwks": {"keys": []}}), "jwks"),
        (
            json!({"client_id": "a", "jwks": key.jwks("k1"), "jwks_uri": "https://keys.example/jwks"}),
            "jwks_uri",
        ),
        (
            json!({"client_id": "a", "jwks_uri": "ftp://keys.example"}),
            "jwks_uri",
        ),
        (
            json!({"client_id": "a", "token_endpoint_auth_method": "private_key_jwt"}),
            "token_endpoint_auth_method",
        ),
        (
            json!({"client_id": "a", "token_endpoint_auth_method": "client_secret_jwt"}),
            "token_endpoint_auth_method",
        ),
        (
            json!({"client_id": "a", "federated_identities": [{"issuer": "nowhere", "subject": "x"}]}),
            "federated_identities",
        ),
    ];
    for (body, field) in refused {
        let response = admin.create_client(body.clone()).await;
        assert_eq!(response.status(), 400, "{body}");
        assert_eq!(json(response).await["field"], field, "{body}");
    }
    let response = admin
        .create_client(json!({"client_id": "svc:api", "scopes": ["a"], "jwks": key.jwks("k1")}))
        .await;
    assert_eq!(response.status(), 201);
    let created = json(response).await;
    assert_eq!(created["token_endpoint_auth_method"], "private_key_jwt");
    assert!(created.get("client_secret").is_none(), "{created}");
    assert_eq!(created["jwks"]["keys"][0]["kid"], "k1");

    let response = admin.rotate_secret("svc:api", json!({})).await;
    assert_eq!(response.status(), 400, "no secret to rotate");

    // A secret client moves to keys: its secret stops working at once.
    let (id, secret) = app.standard_client().await;
    let response = admin
        .update_client(
            &id,
            json!({"token_endpoint_auth_method": "private_key_jwt", "jwks": key.jwks("k1")}),
        )
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        app.token_status(&id, &secret).await,
        401,
        "the secret is gone"
    );
    let assertion = key.assertion("k1", &id, &app.issuer, 300);
    assert_eq!(
        app.with_assertion("/token", &assertion, &[]).await.status(),
        200
    );
    let response = admin
        .update_client(
            &id,
            json!({"token_endpoint_auth_method": "client_secret_basic"}),
        )
        .await;
    assert_eq!(
        response.status(),
        400,
        "no way back to a secret it no longer has"
    );

    // The CLI: a JWK set file.
    let dir = crate::helpers::TempDir::new();
    let file = dir.path().join("jwks.json");
    std::fs::write(&file, key.jwks("cli").to_string()).unwrap();
    let created = app.cli_json(&[
        "client",
        "create",
        "svc:cli",
        "--scope",
        "a",
        "--jwks-file",
        file.to_str().unwrap(),
    ]);
    assert_eq!(created["token_endpoint_auth_method"], "private_key_jwt");
    assert!(created.get("client_secret").is_none());
    let shown = app.cli(&["client", "show", "svc:cli"], None);
    let shown = String::from_utf8_lossy(&shown.stdout);
    assert!(
        shown.contains("auth_method:      private_key_jwt"),
        "{shown}"
    );
    assert!(!shown.contains("client_secret"), "{shown}");
}
