//! Introspection (RFC 7662) and revocation (RFC 7009).

use std::time::Duration;

use serde_json::{Value, json};
use tokenmint::admin::{ClientAdmin, NewClient};
use tokenmint::clock::unix_now;
use tokenmint::crypto::{Algorithm, SigningKey};

use crate::helpers::{TestApp, both_stores, form, json};

both_stores!(
    introspection_answers_live_tokens,
    introspection_says_inactive_for_everything_else,
    introspection_and_revocation_require_a_client,
    revocation_by_owner_only,
    revocations_are_pruned_after_expiry,
);

async fn introspect(app: &TestApp, token: &str, caller: (&str, &str)) -> Value {
    let response = app.introspect(token, Some(caller)).await;
    assert_eq!(response.status(), 200, "introspection answers 200");
    assert_eq!(response.headers()["cache-control"], "no-store");
    json(response).await
}

async fn introspection_answers_live_tokens(app: TestApp) {
    let (id, secret) = app.standard_client().await;
    let (rs_id, rs_secret) = app.standard_client().await;
    let token = app.token_for(&id, &secret).await;
    // A resource server (another client) introspects the token.
    let answer = introspect(&app, &token, (&rs_id, &rs_secret)).await;
    assert_eq!(answer["active"], true);
    assert_eq!(answer["client_id"], id.as_str());
    assert_eq!(answer["sub"], id.as_str());
    assert_eq!(answer["scope"], "a");
    assert_eq!(answer["token_type"], "Bearer");
    assert_eq!(answer["aud"], "https://api.example");
    assert_eq!(answer["iss"], app.issuer.as_str());
    assert!(answer["exp"].as_i64().unwrap() > unix_now());
    assert!(answer["iat"].as_i64().is_some() && answer["jti"].as_str().is_some());

    // client_secret_post works the same way.
    let body = format!(
        "{}&{}",
        form(&[("token", &token)]),
        form(&[("client_id", &rs_id), ("client_secret", &rs_secret)])
    );
    let response = app
        .http
        .post(app.url("/introspect"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(json(response).await["active"], true, "post auth");
}

async fn introspection_says_inactive_for_everything_else(app: TestApp) {
    let (id, secret) = app.standard_client().await;
    let caller = (id.as_str(), secret.as_str());
    let token = app.token_for(&id, &secret).await;

    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    let claims: Value = serde_json::from_slice(&base64_url_decode(&parts[1])).unwrap();
    let mut forged = claims.clone();
    forged["scope"] = json!("a b c");
    parts[1] = base64_url_encode(forged.to_string().as_bytes());
    let tampered = parts.join(".");

    // Same claims, signed by a key this server never published.
    let (foreign_key, _) = SigningKey::generate(Algorithm::ES256).unwrap();
    let foreign = foreign_key.sign_jwt(&claims).unwrap();

    let (short_id, short_secret) = app
        .create_client(NewClient {
            client_id: "short".into(),
            token_ttl: Some(1),
            ..NewClient::default()
        })
        .await;
    let expiring = app.token_for(&short_id, &short_secret).await;

    let (gone_id, gone_secret) = app.standard_client().await;
    let of_disabled_client = app.token_for(&gone_id, &gone_secret).await;
    ClientAdmin::new(app.store.as_ref(), &app.hasher)
        .set_enabled(&gone_id, false, unix_now())
        .await
        .unwrap();

    let revoked = app.token_for(&id, &secret).await;
    assert_eq!(app.revoke(&revoked, Some(caller)).await.status(), 200);

    tokio::time::sleep(Duration::from_millis(2100)).await;
    for (case, candidate) in [
        ("malformed", "not-a-jwt".to_owned()),
        ("empty segments", "..".to_owned()),
        ("tampered", tampered),
        ("foreign key", foreign),
        ("expired", expiring),
        ("client disabled", of_disabled_client),
        ("revoked", revoked),
    ] {
        assert_eq!(
            introspect(&app, &candidate, caller).await,
            json!({"active": false}),
            "{case}"
        );
    }
    assert_eq!(
        introspect(&app, &token, caller).await["active"],
        true,
        "the original is still active"
    );
}

async fn introspection_and_revocation_require_a_client(app: TestApp) {
    let (id, secret) = app.standard_client().await;
    let token = app.token_for(&id, &secret).await;
    for path in ["/introspect", "/revoke"] {
        let body = crate::helpers::form(&[("token", &token)]);
        let response = crate::helpers::post_form(&app.http, &app.url(path), &body, None).await;
        assert_eq!(response.status(), 401, "{path}: no credentials");
        assert!(
            response.headers().contains_key("www-authenticate"),
            "{path}"
        );
        assert_eq!(json(response).await["error"], "invalid_client", "{path}");

        let response =
            crate::helpers::post_form(&app.http, &app.url(path), &body, Some((&id, "wrong"))).await;
        assert_eq!(response.status(), 401, "{path}: wrong secret");

        let response =
            crate::helpers::post_form(&app.http, &app.url(path), "", Some((&id, &secret))).await;
        assert_eq!(response.status(), 400, "{path}: no token parameter");
        assert_eq!(json(response).await["error"], "invalid_request", "{path}");

        let response = app.http.get(app.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 405, "{path}: GET");
        assert_eq!(response.headers()["allow"], "POST", "{path}");
    }
}

async fn revocation_by_owner_only(app: TestApp) {
    let (id, secret) = app.standard_client().await;
    let (other_id, other_secret) = app.standard_client().await;
    let token = app.token_for(&id, &secret).await;

    let response = app.revoke(&token, Some((&other_id, &other_secret))).await;
    assert_eq!(response.status(), 400, "another client's token");
    assert_eq!(json(response).await["error"], "unauthorized_client");
    assert_eq!(
        introspect(&app, &token, (&id, &secret)).await["active"],
        true,
        "still active"
    );

    for unknown in ["garbage", "a.b.c"] {
        let response = app.revoke(unknown, Some((&id, &secret))).await;
        assert_eq!(
            response.status(),
            200,
            "unknown token {unknown}: 200 (RFC 7009 §2.2)"
        );
    }

    let response = app.revoke(&token, Some((&id, &secret))).await;
    assert_eq!(response.status(), 200, "own token");
    assert_eq!(response.headers()["cache-control"], "no-store");
    assert_eq!(
        introspect(&app, &token, (&id, &secret)).await,
        json!({"active": false})
    );
    let again = app.revoke(&token, Some((&id, &secret))).await;
    assert_eq!(again.status(), 200, "revoking twice is fine");
}

async fn revocations_are_pruned_after_expiry(app: TestApp) {
    let (id, secret) = app
        .create_client(NewClient {
            client_id: "brief".into(),
            token_ttl: Some(60),
            ..NewClient::default()
        })
        .await;
    let (long_id, long_secret) = app.standard_client().await;
    let brief = app.token_for(&id, &secret).await;
    let long = app.token_for(&long_id, &long_secret).await;
    app.revoke(&brief, Some((&id, &secret))).await;
    app.revoke(&long, Some((&long_id, &long_secret))).await;
    let jti = |t: &str| -> String {
        let claims: Value =
            serde_json::from_slice(&base64_url_decode(t.split('.').nth(1).unwrap())).unwrap();
        claims["jti"].as_str().unwrap().to_owned()
    };
    assert!(app.store.is_token_revoked(&jti(&brief)).await.unwrap());
    let pruned = app
        .store
        // As of two minutes from now: past the brief token's exp (60 s),
        // before the long one's (3600 s). No sleeping, no race with the clock.
        .prune_expired(unix_now() + 120)
        .await
        .unwrap();
    assert_eq!(pruned, 1, "only the expired revocation is pruned");
    assert!(
        !app.store.is_token_revoked(&jti(&brief)).await.unwrap(),
        "expired revocation forgotten"
    );
    assert!(
        app.store.is_token_revoked(&jti(&long)).await.unwrap(),
        "live revocation kept"
    );
}

fn base64_url_decode(s: &str) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s)
        .unwrap()
}

fn base64_url_encode(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}
