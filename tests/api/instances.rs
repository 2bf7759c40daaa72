//! Two servers sharing one store behave as one.

use std::time::{Duration, Instant};

use jsonwebtoken::decode_header;
use serde_json::Value;

use crate::helpers::{Instance, TestApp, both_stores, form, json, post_form};

both_stores!(two_instances_behave_as_one);

async fn token_at(
    http: &reqwest::Client,
    instance: &Instance,
    id: &str,
    secret: &str,
) -> reqwest::Response {
    post_form(
        http,
        &format!("{}/token", instance.address),
        "grant_type=client_credentials",
        Some((id, secret)),
    )
    .await
}

async fn introspect_at(
    http: &reqwest::Client,
    instance: &Instance,
    token: &str,
    caller: (&str, &str),
) -> Value {
    let url = format!("{}/introspect", instance.address);
    json(post_form(http, &url, &form(&[("token", token)]), Some(caller)).await).await
}

async fn two_instances_behave_as_one(app: TestApp) {
    let issuer = app.issuer.clone();
    // Both instances are configured with the same issuer, as behind one load balancer.
    let a = app.another_instance(&[("TOKENMINT_ISSUER", &issuer)]).await;
    let b = app.another_instance(&[("TOKENMINT_ISSUER", &issuer)]).await;
    let http = &app.http;
    let (id, secret) = app.standard_client().await;
    let caller = (id.as_str(), secret.as_str());

    // A token from one introspects as active at the other.
    let token = json(token_at(http, &a, &id, &secret).await).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        introspect_at(http, &b, &token, caller).await["active"],
        true,
        "A's token at B"
    );

    // A revocation at one is seen at the other.
    let url = format!("{}/revoke", a.address);
    assert_eq!(
        post_form(http, &url, &form(&[("token", &token)]), Some(caller))
            .await
            .status(),
        200
    );
    assert_eq!(
        introspect_at(http, &b, &token, caller).await["active"],
        false,
        "revoked at A, seen at B"
    );

    // After a rotation (through the CLI, on the shared store), the other
    // instance signs with and serves the new key.
    let new_kid = app.cli_json(&["key", "rotate", "--now"])["kid"]
        .as_str()
        .unwrap()
        .to_owned();
    let deadline = Instant::now() + Duration::from_secs(10);
    for instance in [&a, &b] {
        loop {
            let token = json(token_at(http, instance, &id, &secret).await).await["access_token"]
                .as_str()
                .unwrap()
                .to_owned();
            let jwks = json(
                http.get(format!("{}/.well-known/jwks.json", instance.address))
                    .send()
                    .await
                    .unwrap(),
            )
            .await;
            let served = jwks["keys"]
                .as_array()
                .unwrap()
                .iter()
                .any(|k| k["kid"] == new_kid.as_str());
            if served && decode_header(&token).unwrap().kid.as_deref() == Some(new_kid.as_str()) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{} did not switch to the rotated key",
                instance.address
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    // A client disabled through the CLI is refused by both within a second,
    // even right after a successful request.
    for instance in [&a, &b] {
        assert_eq!(
            token_at(http, instance, &id, &secret).await.status(),
            200,
            "before disabling"
        );
    }
    let disabled_at = Instant::now();
    assert!(app.cli(&["client", "disable", &id], None).status.success());
    for instance in [&a, &b] {
        let refused = crate::helpers::within_a_second(|| async {
            token_at(http, instance, &id, &secret).await.status() == 401
        })
        .await;
        assert!(
            refused,
            "{}: refused within a second of the disable",
            instance.address
        );
    }
    assert!(
        disabled_at.elapsed() < Duration::from_secs(1) + Duration::from_millis(500),
        "within a second of the CLI finishing"
    );
}
