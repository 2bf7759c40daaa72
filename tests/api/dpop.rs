//! DPoP (RFC 9449) at the token endpoint: proofs made here with ES256,
//! EdDSA and RS256 keys bind tokens (`token_type: DPoP`, `cnf.jkt`); every
//! way a proof can be forged, stale, replayed or aimed elsewhere is refused
//! with `invalid_dpop_proof`; server nonces make a proof single-use across
//! instances.

use serde_json::{Value, json};
use tokenmint::admin::NewClient;
use tokenmint::clock::unix_now;

use crate::helpers::{TestApp, both_stores, form, json, post_form};
use crate::jose::{TestKey, decode_claims};

both_stores!(
    a_proof_binds_the_token_to_its_key,
    every_bad_proof_is_refused,
    a_dpop_bound_client_must_send_a_proof,
    nonces_make_a_proof_single_use_across_instances,
);

/// `POST /token` with Basic credentials and these `DPoP` header values.
async fn token_with_proofs(
    app: &TestApp,
    client: (&str, &str),
    proofs: &[&str],
) -> reqwest::Response {
    let mut request = app
        .http
        .post(app.url("/token"))
        .basic_auth(client.0, Some(client.1))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("grant_type=client_credentials");
    for proof in proofs {
        request = request.header("DPoP", *proof);
    }
    request.send().await.unwrap()
}

async fn a_proof_binds_the_token_to_its_key(app: TestApp) {
    let (id, secret) = app.standard_client().await;
    let htu = format!("{}/token", app.issuer);
    for key in [TestKey::es256(), TestKey::eddsa(), TestKey::rs256()] {
        let response =
            token_with_proofs(&app, (&id, &secret), &[&key.dpop_proof(&htu, json!({}))]).await;
        assert_eq!(response.status(), 200, "{}", key.alg());
        let body = json(response).await;
        assert_eq!(body["token_type"], "DPoP", "{}", key.alg());
        let token = body["access_token"].as_str().unwrap();
        assert_eq!(
            decode_claims(token)["cnf"],
            json!({"jkt": key.thumbprint()}),
            "the token names the proof's key ({})",
            key.alg()
        );
        // Introspection tells a resource server the same (RFC 9449 §6.2).
        let answer = json(app.introspect(token, Some((&id, &secret))).await).await;
        assert_eq!(answer["active"], true);
        assert_eq!(answer["token_type"], "DPoP");
        assert_eq!(answer["cnf"]["jkt"], key.thumbprint().as_str());
    }
    // Without a proof the same client gets a plain bearer token.
    let body = json(token_with_proofs(&app, (&id, &secret), &[]).await).await;
    assert_eq!(body["token_type"], "Bearer");
    assert!(
        decode_claims(body["access_token"].as_str().unwrap())
            .get("cnf")
            .is_none()
    );
    let answer = json(
        app.introspect(body["access_token"].as_str().unwrap(), Some((&id, &secret)))
            .await,
    )
    .await;
    assert_eq!(answer["token_type"], "Bearer");
    assert!(answer.get("cnf").is_none());
    // The metadata lists the proof algorithms (RFC 9449 §5.1).
    let metadata = app.metadata().await;
    assert_eq!(
        metadata["dpop_signing_alg_values_supported"],
        json!(["RS256", "PS256", "ES256", "EdDSA", "Ed25519"])
    );
}

async fn every_bad_proof_is_refused(app: TestApp) {
    let (id, secret) = app.standard_client().await;
    let htu = format!("{}/token", app.issuer);
    let key = TestKey::es256();
    let other = TestKey::es256();
    let now = unix_now();
    let b64 = |v: &Value| {
        use base64::Engine as _;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
    };
    let claims = |extra: Value| {
        let mut c = json!({"jti": "j-1", "htm": "POST", "htu": htu, "iat": now});
        crate::jose::merge(&mut c, extra);
        c
    };
    let header = |extra: Value| {
        let mut h = json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": key.public_jwk()});
        crate::jose::merge(&mut h, extra);
        h
    };
    let mut private_jwk = key.public_jwk();
    private_jwk["d"] = json!("AAAA");
    // Signed with `other`'s key but carrying `key`'s public key.
    let foreign = other.sign(&header(json!({})), &claims(json!({"jti": "foreign"})));
    let cases: Vec<(&str, String)> = vec![
        (
            "wrong htu",
            key.dpop_proof("https://elsewhere.example/token", json!({})),
        ),
        (
            "htu of another path",
            key.dpop_proof(&format!("{}/introspect", app.issuer), json!({})),
        ),
        ("wrong htm", key.dpop_proof(&htu, json!({"htm": "GET"}))),
        (
            "lower-case htm",
            key.dpop_proof(&htu, json!({"htm": "post"})),
        ),
        ("old iat", key.dpop_proof(&htu, json!({"iat": now - 120}))),
        (
            "future iat",
            key.dpop_proof(&htu, json!({"iat": now + 120})),
        ),
        ("huge iat", key.dpop_proof(&htu, json!({"iat": 1e300}))),
        ("string iat", key.dpop_proof(&htu, json!({"iat": "now"}))),
        ("no jti", key.dpop_proof(&htu, json!({"jti": null}))),
        ("no htu", key.dpop_proof(&htu, json!({"htu": null}))),
        (
            "long jti",
            key.dpop_proof(&htu, json!({"jti": "j".repeat(300)})),
        ),
        (
            "typ JWT",
            key.sign(&header(json!({"typ": "JWT"})), &claims(json!({}))),
        ),
        (
            "no typ",
            key.sign(&header(json!({"typ": null})), &claims(json!({}))),
        ),
        (
            "no jwk",
            key.sign(&header(json!({"jwk": null})), &claims(json!({}))),
        ),
        (
            "a private key in the jwk",
            key.sign(&header(json!({"jwk": private_jwk})), &claims(json!({}))),
        ),
        (
            "a symmetric jwk",
            key.sign(
                &header(json!({"jwk": {"kty": "oct", "k": "c2VjcmV0"}})),
                &claims(json!({})),
            ),
        ),
        ("signed by another key", foreign),
        (
            "alg none",
            format!(
                "{}.{}.",
                b64(&header(json!({"alg": "none"}))),
                b64(&claims(json!({})))
            ),
        ),
        (
            "alg HS256",
            format!(
                "{}.{}.c2ln",
                b64(&header(json!({"alg": "HS256"}))),
                b64(&claims(json!({})))
            ),
        ),
        (
            "crit",
            key.sign(&header(json!({"crit": ["exp"]})), &claims(json!({}))),
        ),
        ("not a JWT", "not-a-jwt".to_owned()),
        (
            "too long",
            key.dpop_proof(&htu, json!({"pad": "x".repeat(9000)})),
        ),
    ];
    for (what, proof) in cases {
        let response = token_with_proofs(&app, (&id, &secret), &[&proof]).await;
        assert_eq!(response.status(), 400, "{what}");
        let body = json(response).await;
        assert_eq!(body["error"], "invalid_dpop_proof", "{what}: {body}");
    }
    // Two DPoP headers (RFC 9449 §4.3 point 1).
    let (a, b) = (
        key.dpop_proof(&htu, json!({})),
        key.dpop_proof(&htu, json!({})),
    );
    let body = json(token_with_proofs(&app, (&id, &secret), &[&a, &b]).await).await;
    assert_eq!(body["error"], "invalid_dpop_proof", "two proofs");
    // A proof is accepted once; its replay is refused (point 12).
    let proof = key.dpop_proof(&htu, json!({}));
    assert_eq!(
        token_with_proofs(&app, (&id, &secret), &[&proof])
            .await
            .status(),
        200
    );
    let replay = json(token_with_proofs(&app, (&id, &secret), &[&proof]).await).await;
    assert_eq!(replay["error"], "invalid_dpop_proof", "a replayed proof");
    // A proof checks out but a wrong secret still fails authentication:
    // and that failed request did not spend the proof.
    let fresh = key.dpop_proof(&htu, json!({}));
    assert_eq!(
        token_with_proofs(&app, (&id, "wrong"), &[&fresh])
            .await
            .status(),
        401
    );
    assert_eq!(
        token_with_proofs(&app, (&id, &secret), &[&fresh])
            .await
            .status(),
        200
    );
    // htu matching ignores query, fragment, case and the default port
    // (RFC 9449 §4.3 point 9, RFC 3986 §6.2).
    let upper = htu.replacen("http://", "HTTP://", 1);
    let proof = key.dpop_proof(&format!("{upper}?x=1#f"), json!({}));
    assert_eq!(
        token_with_proofs(&app, (&id, &secret), &[&proof])
            .await
            .status(),
        200,
        "normalised htu"
    );
}

async fn a_dpop_bound_client_must_send_a_proof(app: TestApp) {
    let (id, secret) = app
        .create_client(NewClient {
            client_id: "bound".into(),
            scopes: vec!["a".into()],
            dpop_bound_access_tokens: true,
            ..NewClient::default()
        })
        .await;
    let response = token_with_proofs(&app, (&id, &secret), &[]).await;
    assert_eq!(response.status(), 400);
    assert_eq!(json(response).await["error"], "invalid_dpop_proof");
    let key = TestKey::eddsa();
    let proof = key.dpop_proof(&format!("{}/token", app.issuer), json!({}));
    let body = json(token_with_proofs(&app, (&id, &secret), &[&proof]).await).await;
    assert_eq!(body["token_type"], "DPoP");
    // The admin API shows the setting and can turn it off.
    let admin = app.admin_token().await;
    let view = json(app.admin(Some(&admin)).get_client("bound").await).await;
    assert_eq!(view["dpop_bound_access_tokens"], true);
    let changed = app
        .admin(Some(&admin))
        .update_client("bound", json!({"dpop_bound_access_tokens": false}))
        .await;
    assert_eq!(changed.status(), 200);
    assert_eq!(
        token_with_proofs(&app, (&id, &secret), &[]).await.status(),
        200
    );
}

async fn nonces_make_a_proof_single_use_across_instances(app: TestApp) {
    let issuer = app.issuer.clone();
    let settings = [
        ("TOKENMINT_ISSUER", issuer.as_str()),
        ("TOKENMINT_DPOP_NONCE", "true"),
    ];
    let a = app.another_instance(&settings).await;
    let b = app.another_instance(&settings).await;
    let (id, secret) = app.standard_client().await;
    let htu = format!("{issuer}/token");
    let key = TestKey::es256();
    let send = |address: &str, proof: &str| {
        app.http
            .post(format!("{address}/token"))
            .basic_auth(&id, Some(&secret))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("DPoP", proof)
            .body("grant_type=client_credentials")
            .send()
    };
    // No nonce: 400 use_dpop_nonce, and the nonce to use (RFC 9449 §8).
    let response = send(&a.address, &key.dpop_proof(&htu, json!({})))
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let nonce = response.headers()["dpop-nonce"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(json(response).await["error"], "use_dpop_nonce");
    // A made-up nonce is no better.
    let response = send(
        &a.address,
        &key.dpop_proof(&htu, json!({"nonce": "made-up"})),
    )
    .await
    .unwrap();
    assert_eq!(json(response).await["error"], "use_dpop_nonce");
    // A's nonce works at B: the instances share the key it is made with.
    let proof = key.dpop_proof(&htu, json!({"nonce": nonce}));
    let response = send(&b.address, &proof).await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response.headers().contains_key("dpop-nonce"),
        "a fresh nonce with the token"
    );
    // The same proof replayed at A, which has never seen it: refused.
    let replay = send(&a.address, &proof).await.unwrap();
    assert_eq!(replay.status(), 400);
    assert_eq!(json(replay).await["error"], "invalid_dpop_proof");
    // Nor may another client present it, at either instance.
    let (other, other_secret) = app.standard_client().await;
    for address in [&a.address, &b.address] {
        let stolen = app
            .http
            .post(format!("{address}/token"))
            .basic_auth(&other, Some(&other_secret))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("DPoP", &proof)
            .body("grant_type=client_credentials")
            .send()
            .await
            .unwrap();
        assert_eq!(
            json(stolen).await["error"],
            "invalid_dpop_proof",
            "another client"
        );
    }
    // A plain bearer request needs no nonce.
    let url = format!("{}/token", a.address);
    let plain = post_form(
        &app.http,
        &url,
        &form(&[("grant_type", "client_credentials")]),
        Some((&id, &secret)),
    )
    .await;
    assert_eq!(plain.status(), 200);
}
