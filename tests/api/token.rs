//! `POST /token`: successes, the token itself, and every error of RFC 6749 §5.2 it can answer.

use std::collections::HashSet;

use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, decode_header};
use serde_json::Value;
use tokenmint::admin::{ClientAdmin, ClientChanges, NewClient};
use tokenmint::clock::unix_now;

use crate::helpers::{TestApp, basic_header, both_stores, form, json};

both_stores!(
    basic_and_post_auth_issue_verifiable_rfc9068_tokens,
    special_characters_in_id_and_secret,
    scope_and_audience_rules,
    error_table,
    disabled_and_deleted_clients_are_refused,
    oversized_body_is_refused,
    per_client_ttl_and_fallback_audience,
);

const GRANT: &str = "grant_type=client_credentials";

/// Verifies `token` with only the public key, the way a resource server
/// would, and returns its claims.
async fn verify(app: &TestApp, token: &str, audience: &str) -> Value {
    let header = decode_header(token).expect("a JWT header");
    assert_eq!(header.typ.as_deref(), Some("at+jwt"), "RFC 9068 §2.1 typ");
    assert_eq!(header.alg, Algorithm::ES256, "ES256 by default");
    let kid = header.kid.expect("a kid");
    let key = DecodingKey::from_jwk(&app.public_jwk(&kid).await).expect("decoding key");
    let mut validation = Validation::new(Algorithm::ES256);
    validation.set_audience(&[audience]);
    validation.set_issuer(&[&app.issuer]);
    validation.set_required_spec_claims(&["exp", "iat", "nbf", "iss", "sub", "aud"]);
    decode::<Value>(token, &key, &validation)
        .expect("the token verifies")
        .claims
}

fn assert_no_store(response: &reqwest::Response, case: &str) {
    let h = response.headers();
    assert_eq!(h["cache-control"], "no-store", "{case}: Cache-Control");
    assert_eq!(h["pragma"], "no-cache", "{case}: Pragma");
    assert!(
        h["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json"),
        "{case}: JSON"
    );
}

async fn basic_and_post_auth_issue_verifiable_rfc9068_tokens(app: TestApp) {
    let (id, secret) = app.standard_client().await;
    let mut jtis = HashSet::new();
    for (case, response) in [
        ("basic", app.token(GRANT, Some((&id, &secret))).await),
        (
            "post",
            app.token(
                &format!(
                    "{GRANT}&{}",
                    form(&[("client_id", &id), ("client_secret", &secret)])
                ),
                None,
            )
            .await,
        ),
        // RFC 6749 §3.2 allows a charset parameter on the content type.
        (
            "charset",
            app.http
                .post(app.url("/token"))
                .header(
                    "content-type",
                    "application/x-www-form-urlencoded; charset=UTF-8",
                )
                .header("authorization", basic_header(&id, &secret))
                .body(GRANT)
                .send()
                .await
                .unwrap(),
        ),
    ] {
        assert_eq!(response.status(), 200, "{case}");
        assert_no_store(&response, case);
        let body = json(response).await;
        assert_eq!(body["token_type"], "Bearer", "{case}");
        assert_eq!(body["expires_in"], 3600, "{case}: server default ttl");
        assert_eq!(body["scope"], "a", "{case}: default scopes");
        assert!(
            body.get("refresh_token").is_none(),
            "{case}: RFC 6749 §4.4.3 no refresh token"
        );

        let claims = verify(
            &app,
            body["access_token"].as_str().unwrap(),
            "https://api.example",
        )
        .await;
        assert_eq!(claims["iss"], app.issuer.as_str(), "{case}");
        assert_eq!(claims["sub"], id.as_str(), "{case}");
        assert_eq!(claims["client_id"], id.as_str(), "{case}");
        assert_eq!(claims["aud"], "https://api.example", "{case}");
        assert_eq!(claims["scope"], "a", "{case}");
        let (iat, nbf, exp) = (
            claims["iat"].as_i64().unwrap(),
            claims["nbf"].as_i64().unwrap(),
            claims["exp"].as_i64().unwrap(),
        );
        assert_eq!(
            exp - iat,
            body["expires_in"].as_i64().unwrap(),
            "{case}: exp - iat = expires_in"
        );
        assert_eq!(nbf, iat, "{case}");
        assert!((iat - unix_now()).abs() <= 5, "{case}: iat is now");
        assert!(
            jtis.insert(claims["jti"].as_str().unwrap().to_owned()),
            "{case}: jti is unique"
        );
    }
}

async fn special_characters_in_id_and_secret(app: TestApp) {
    let id = "svc:orders+v1/a%b";
    let secret = "p:a%s+s wörd=&é of an old server";
    let (id, secret) = app
        .create_client_with_secret(
            NewClient {
                client_id: id.into(),
                scopes: vec!["a".into()],
                ..NewClient::default()
            },
            Some(secret),
        )
        .await;
    let basic = app.token(GRANT, Some((&id, &secret))).await;
    assert_eq!(basic.status(), 200, "basic with form-encoded id and secret");
    let claims = verify(
        &app,
        json(basic).await["access_token"].as_str().unwrap(),
        &app.issuer,
    )
    .await;
    assert_eq!(claims["client_id"], id);

    let post = app
        .token(
            &format!(
                "{GRANT}&{}",
                form(&[("client_id", &id), ("client_secret", &secret)])
            ),
            None,
        )
        .await;
    assert_eq!(post.status(), 200, "post with the same id and secret");
}

async fn scope_and_audience_rules(app: TestApp) {
    let (id, secret) = app.standard_client().await;
    let creds = Some((id.as_str(), secret.as_str()));
    // `scope=` without a value counts as omitted (RFC 6749 §3.2): defaults apply.
    let body = json(app.token(&format!("{GRANT}&scope="), creds).await).await;
    assert_eq!(body["scope"], "a", "empty scope counts as omitted");

    let body = json(app.token(&format!("{GRANT}&scope=c+b"), creds).await).await;
    assert_eq!(
        body["scope"], "c b",
        "a requested subset is granted as requested"
    );

    let body = json(app.token(&format!("{GRANT}&audience=billing"), creds).await).await;
    let claims = verify(&app, body["access_token"].as_str().unwrap(), "billing").await;
    assert_eq!(claims["aud"], "billing", "audience parameter");

    // RFC 8707 §2: resource may repeat; the token then names every audience.
    let body = json(
        app.token(
            &format!("{GRANT}&resource=billing&resource=https%3A%2F%2Fapi.example"),
            creds,
        )
        .await,
    )
    .await;
    let claims = verify(&app, body["access_token"].as_str().unwrap(), "billing").await;
    assert_eq!(
        claims["aud"],
        serde_json::json!(["billing", "https://api.example"]),
        "two resources"
    );
}

async fn per_client_ttl_and_fallback_audience(app: TestApp) {
    let (id, secret) = app
        .create_client(NewClient {
            client_id: "short-lived".into(),
            scopes: vec!["x".into()],
            token_ttl: Some(120),
            ..NewClient::default()
        })
        .await;
    let body = json(app.token(GRANT, Some((&id, &secret))).await).await;
    assert_eq!(body["expires_in"], 120, "per-client ttl");
    // No audiences configured: `aud` falls back to the issuer (RFC 9068 §2.2 requires one).
    let claims = verify(&app, body["access_token"].as_str().unwrap(), &app.issuer).await;
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        120
    );
}

async fn error_table(app: TestApp) {
    let (id, secret) = app.standard_client().await;
    let (no_grant_id, no_grant_secret) = app
        .create_client(NewClient {
            client_id: "introspect-only".into(),
            grant_types: Some(vec![]),
            ..NewClient::default()
        })
        .await;
    let post_creds = form(&[("client_id", &id), ("client_secret", &secret)]);

    struct Case<'a> {
        name: &'a str,
        content_type: Option<&'a str>,
        body: String,
        authorization: Option<String>,
        status: u16,
        error: &'a str,
    }
    let case = |name, body: String, authorization: Option<String>, status, error| Case {
        name,
        content_type: Some("application/x-www-form-urlencoded"),
        body,
        authorization,
        status,
        error,
    };
    let basic = |id: &str, secret: &str| Some(basic_header(id, secret));
    let cases = vec![
        Case {
            content_type: Some("application/json"),
            ..case(
                "JSON body",
                r#"{"grant_type":"client_credentials"}"#.into(),
                basic(&id, &secret),
                400,
                "invalid_request",
            )
        },
        Case {
            content_type: None,
            ..case(
                "no content type",
                GRANT.into(),
                basic(&id, &secret),
                400,
                "invalid_request",
            )
        },
        case(
            "empty body",
            String::new(),
            basic(&id, &secret),
            400,
            "invalid_request",
        ),
        case(
            "missing grant_type",
            "scope=a".into(),
            basic(&id, &secret),
            400,
            "invalid_request",
        ),
        case(
            "repeated parameter",
            format!("{GRANT}&scope=a&scope=b"),
            basic(&id, &secret),
            400,
            "invalid_request",
        ),
        case(
            "repeated grant_type",
            format!("{GRANT}&{GRANT}"),
            basic(&id, &secret),
            400,
            "invalid_request",
        ),
        case(
            "two auth methods",
            format!("{GRANT}&{post_creds}"),
            basic(&id, &secret),
            400,
            "invalid_request",
        ),
        case(
            "malformed Basic (not base64)",
            GRANT.into(),
            Some("Basic %%%".into()),
            400,
            "invalid_request",
        ),
        case(
            "malformed Basic (no colon)",
            GRANT.into(),
            Some("Basic YWJj".into()),
            400,
            "invalid_request",
        ),
        case(
            "bad percent-encoding",
            format!("{GRANT}&scope=%zz"),
            basic(&id, &secret),
            400,
            "invalid_request",
        ),
        case(
            "unknown client",
            GRANT.into(),
            basic("nobody", "secret"),
            401,
            "invalid_client",
        ),
        case(
            "wrong secret (basic)",
            GRANT.into(),
            basic(&id, "wrong"),
            401,
            "invalid_client",
        ),
        case(
            "wrong secret (post)",
            format!(
                "{GRANT}&{}",
                form(&[("client_id", &id), ("client_secret", "wrong")])
            ),
            None,
            401,
            "invalid_client",
        ),
        case("no credentials", GRANT.into(), None, 401, "invalid_client"),
        case(
            "client_id without secret",
            format!("{GRANT}&client_id={id}"),
            None,
            401,
            "invalid_client",
        ),
        case(
            "client without the grant",
            GRANT.into(),
            basic(&no_grant_id, &no_grant_secret),
            400,
            "unauthorized_client",
        ),
        case(
            "password grant",
            "grant_type=password&username=a&password=b".into(),
            basic(&id, &secret),
            400,
            "unsupported_grant_type",
        ),
        case(
            "authorization_code grant",
            "grant_type=authorization_code&code=x".into(),
            basic(&id, &secret),
            400,
            "unsupported_grant_type",
        ),
        case(
            "scope outside allowed",
            format!("{GRANT}&scope=a+admin"),
            basic(&id, &secret),
            400,
            "invalid_scope",
        ),
        case(
            "malformed scope",
            format!("{GRANT}&scope=a%22b"),
            basic(&id, &secret),
            400,
            "invalid_scope",
        ),
        case(
            "audience not allowed",
            format!("{GRANT}&audience=https%3A%2F%2Fevil.example"),
            basic(&id, &secret),
            400,
            "invalid_target",
        ),
        case(
            "resource not allowed",
            format!("{GRANT}&resource=billing&resource=other"),
            basic(&id, &secret),
            400,
            "invalid_target",
        ),
    ];
    for c in cases {
        let mut request = app.http.post(app.url("/token")).body(c.body.clone());
        if let Some(ct) = c.content_type {
            request = request.header("content-type", ct);
        }
        if let Some(auth) = &c.authorization {
            request = request.header("authorization", auth);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), c.status, "{}: status", c.name);
        assert_no_store(&response, c.name);
        let challenge = response.headers().get("www-authenticate").cloned();
        let body = json(response).await;
        assert_eq!(body["error"], c.error, "{}: error code", c.name);
        let description = body["error_description"].as_str().unwrap_or_default();
        assert!(!description.is_empty(), "{}: a description", c.name);
        assert!(
            !description.contains(&secret),
            "{}: the description never echoes a secret",
            c.name
        );
        if c.status == 401 {
            assert_eq!(
                challenge.unwrap(),
                "Basic realm=\"tokenmint\"",
                "{}: WWW-Authenticate",
                c.name
            );
        }
    }

    // Query-string parameters are refused: credentials do not belong in URLs.
    let response = app
        .http
        .post(app.url(&format!("/token?{post_creds}")))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(GRANT)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400, "query string");
    assert_eq!(
        json(response).await["error"],
        "invalid_request",
        "query string"
    );

    for method in [
        reqwest::Method::GET,
        reqwest::Method::PUT,
        reqwest::Method::DELETE,
    ] {
        let response = app
            .http
            .request(method.clone(), app.url("/token"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 405, "{method} /token");
        assert_eq!(
            response.headers()["allow"],
            "POST",
            "{method} /token: Allow"
        );
    }
}

async fn disabled_and_deleted_clients_are_refused(app: TestApp) {
    let (id, secret) = app.standard_client().await;
    let creds = Some((id.as_str(), secret.as_str()));
    assert_eq!(app.token(GRANT, creds).await.status(), 200, "enabled");

    let admin = ClientAdmin::new(app.store.as_ref(), &app.hasher);
    admin.set_enabled(&id, false, unix_now()).await.unwrap();
    let response = app.token(GRANT, creds).await;
    assert_eq!(response.status(), 401, "disabled");
    assert_eq!(json(response).await["error"], "invalid_client", "disabled");

    admin
        .update(
            &id,
            ClientChanges {
                enabled: Some(true),
                ..Default::default()
            },
            unix_now(),
        )
        .await
        .unwrap();
    assert_eq!(app.token(GRANT, creds).await.status(), 200, "enabled again");

    admin.delete(&id).await.unwrap();
    let response = app.token(GRANT, creds).await;
    assert_eq!(response.status(), 401, "deleted");
    assert_eq!(json(response).await["error"], "invalid_client", "deleted");
}

async fn oversized_body_is_refused(app: TestApp) {
    let (id, secret) = app.standard_client().await;
    let huge = format!("{GRANT}&padding={}", "x".repeat(1024 * 1024));
    let response = app.token(&huge, Some((&id, &secret))).await;
    assert!(
        matches!(response.status().as_u16(), 400 | 413),
        "1 MiB body: {}",
        response.status()
    );
    assert_eq!(
        json(response).await["error"],
        "invalid_request",
        "1 MiB body"
    );

    // Unknown parameters are ignored (RFC 6749 §3.2).
    let response = app
        .token(&format!("{GRANT}&foo=bar"), Some((&id, &secret)))
        .await;
    assert_eq!(response.status(), 200, "unknown parameter");
}
