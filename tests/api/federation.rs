//! Workload identity federation: a platform's identity token — a
//! Kubernetes projected service-account token, a SPIFFE JWT-SVID, a GitHub
//! Actions OIDC token — authenticates the client that lists its subject.
//! The platforms are played by `KeyHost` (OIDC discovery and a JWKS on
//! 127.0.0.1) and by static key sets.

use serde_json::json;
use tokenmint::admin::{IdentityView, IssuerAdmin, NewClient, NewIssuer};
use tokenmint::clock::unix_now;

use crate::helpers::{Backend, TestApp, both_stores, json, within_a_second};
use crate::jose::{KeyHost, Mode, TestKey, decode_claims};

both_stores!(kubernetes_spiffe_and_github_tokens_authenticate_their_clients);

fn identity(issuer: &str, subject: &str) -> IdentityView {
    IdentityView {
        issuer: issuer.into(),
        subject: subject.into(),
    }
}

async fn federated_client(app: &TestApp, id: &str, identities: Vec<IdentityView>) -> String {
    app.create_key_client(NewClient {
        client_id: id.into(),
        scopes: vec!["deploy read".into()],
        federated_identities: identities,
        ..NewClient::default()
    })
    .await
}

async fn add_issuer(app: &TestApp, new: NewIssuer) {
    IssuerAdmin::new(app.store.as_ref())
        .add(new, unix_now())
        .await
        .expect("issuer added");
}

/// What a kubelet projects into a pod (`serviceAccountToken` volume with
/// `audience`), as the API server signs it.
fn kubernetes_token(
    key: &TestKey,
    issuer: &str,
    audience: &str,
    sa: &str,
    iat: i64,
    ttl: i64,
) -> String {
    key.sign(
        &json!({"alg": key.alg(), "kid": "cluster-key"}),
        &json!({
            "aud": [audience],
            "exp": iat + ttl,
            "iat": iat,
            "nbf": iat,
            "iss": issuer,
            "jti": "5d2d7e1a-0e64-4c1b-9d1c-3f3a0f0b6f51",
            "kubernetes.io": {
                "namespace": "payments",
                "node": {"name": "node-1", "uid": "6e1f4b7c-1111-2222-3333-444455556666"},
                "pod": {"name": "api-7d9f8b6c5-x2x4z", "uid": "0a1b2c3d-aaaa-bbbb-cccc-ddddeeeeffff"},
                "serviceaccount": {"name": sa, "uid": "9f8e7d6c-5555-6666-7777-888899990000"}
            },
            "sub": format!("system:serviceaccount:payments:{sa}")
        }),
    )
}

async fn token_status(app: &TestApp, assertion: &str) -> u16 {
    app.with_assertion("/token", assertion, &[])
        .await
        .status()
        .as_u16()
}

async fn kubernetes_spiffe_and_github_tokens_authenticate_their_clients(app: TestApp) {
    let now = unix_now();

    // Kubernetes: keys by OIDC discovery at the cluster's issuer (served
    // over http here, which the test app allows).
    let cluster_key = TestKey::rs256();
    let cluster = KeyHost::start(cluster_key.jwks("cluster-key")).await;
    add_issuer(
        &app,
        NewIssuer {
            name: "prod-cluster".into(),
            issuer: cluster.url.clone(),
            ..NewIssuer::default()
        },
    )
    .await;
    let id = federated_client(
        &app,
        "payments-api",
        vec![identity(
            "prod-cluster",
            "system:serviceaccount:payments:api",
        )],
    )
    .await;
    let projected = kubernetes_token(
        &cluster_key,
        &cluster.url,
        &app.issuer,
        "api",
        now - 30,
        3600,
    );
    let response = app.with_assertion("/token", &projected, &[]).await;
    assert_eq!(response.status(), 200, "a projected service-account token");
    let token = json(response).await;
    let claims = decode_claims(token["access_token"].as_str().unwrap());
    assert_eq!(claims["sub"], id.as_str());
    // Presented again (kubelet rotates the file, it does not mint per request).
    assert_eq!(token_status(&app, &projected).await, 200, "not single-use");
    assert_eq!(cluster.discovery_hits(), 1, "discovery is cached");
    assert_eq!(cluster.jwks_hits(), 1, "the key set is cached");
    // With client_id too, and at the other endpoints.
    let response = app
        .with_assertion(
            "/introspect",
            &projected,
            &[
                ("client_id", &id),
                ("token", token["access_token"].as_str().unwrap()),
            ],
        )
        .await;
    assert_eq!(json(response).await["active"], true);
    let response = app
        .with_assertion("/token", &projected, &[("client_id", "someone-else")])
        .await;
    assert_eq!(
        response.status(),
        401,
        "client_id must name the subject's client"
    );

    // A token presented again skips its signature check, never the rest:
    // disabling its client refuses it.
    app.cli_json(&["client", "disable", &id]);
    assert!(
        within_a_second(|| async { token_status(&app, &projected).await == 401 }).await,
        "a remembered token of a disabled client"
    );
    app.cli_json(&["client", "enable", &id]);
    assert!(
        within_a_second(|| async { token_status(&app, &projected).await == 200 }).await,
        "enabled again"
    );

    // Every way a platform token can be wrong: (why, key, audience,
    // service account, issued at, lifetime).
    let (aud, api_sa, stranger) = (app.issuer.as_str(), "api", TestKey::rs256());
    let refused: [(&str, &TestKey, &str, &str, i64, i64); 6] = [
        (
            "a subject bound to no client",
            &cluster_key,
            aud,
            "batch",
            now,
            600,
        ),
        // The cluster's default audience (the API server), not tokenmint.
        (
            "wrong audience",
            &cluster_key,
            "https://kubernetes.default.svc",
            api_sa,
            now,
            600,
        ),
        // Older than the issuer's maximum age (1 h), though not expired.
        (
            "older than max_token_age",
            &cluster_key,
            aud,
            api_sa,
            now - 4000,
            4600,
        ),
        // Clusters with --service-account-extend-token-expiration.
        (
            "lives longer than max_token_age",
            &cluster_key,
            aud,
            api_sa,
            now,
            365 * 86_400,
        ),
        ("expired", &cluster_key, aud, api_sa, now - 900, 600),
        (
            "signed by a key that is not the cluster's",
            &stranger,
            aud,
            api_sa,
            now,
            600,
        ),
    ];
    for (why, key, audience, sa, iat, ttl) in refused {
        let token = kubernetes_token(key, &cluster.url, audience, sa, iat, ttl);
        assert_eq!(token_status(&app, &token).await, 401, "{why}");
    }
    // A secret for a federated client is refused.
    assert_eq!(app.token_status(&id, "guess").await, 401);

    // SPIFFE: a JWT-SVID without iss, keys from the trust bundle.
    let bundle_key = TestKey::es256();
    let mesh = NewIssuer {
        name: "mesh".into(),
        issuer: "spiffe://example.org".into(),
        jwks: Some(bundle_key.jwks("spire-1")),
        ..NewIssuer::default()
    };
    add_issuer(&app, mesh.clone()).await;
    let spiffe_id = "spiffe://example.org/ns/payments/sa/worker";
    federated_client(&app, "payments-worker", vec![identity("mesh", spiffe_id)]).await;
    let svid = bundle_key.sign(
        &json!({"alg": "ES256", "kid": "spire-1", "typ": "JWT"}),
        &json!({"sub": spiffe_id, "aud": [app.issuer], "exp": now + 300, "iat": now}),
    );
    assert_eq!(token_status(&app, &svid).await, 200, "a JWT-SVID");
    let elsewhere = bundle_key.sign(
        &json!({"alg": "ES256", "kid": "spire-1"}),
        &json!({"sub": "spiffe://evil.org/ns/payments/sa/worker", "aud": [app.issuer], "exp": now + 300}),
    );
    assert_eq!(
        token_status(&app, &elsewhere).await,
        401,
        "another trust domain"
    );

    // GitHub Actions: an explicit jwks_uri and the audience the workflow asks for.
    let github_key = TestKey::rs256();
    let github = KeyHost::start(github_key.jwks("gh-1")).await;
    add_issuer(
        &app,
        NewIssuer {
            name: "github".into(),
            issuer: "https://token.actions.githubusercontent.com".into(),
            jwks_uri: Some(github.jwks_uri()),
            audience: Some("https://github.com/acme".into()),
            max_token_age: Some(600),
            ..NewIssuer::default()
        },
    )
    .await;
    let subject = "repo:acme/deploy:ref:refs/heads/main";
    federated_client(&app, "acme-deploy", vec![identity("github", subject)]).await;
    let workflow = |sub: &str, aud: &str| {
        github_key.sign(
            &json!({"alg": "RS256", "kid": "gh-1", "typ": "JWT", "x5t": "abc"}),
            &json!({
                "jti": "c0ffee", "sub": sub, "aud": aud,
                "ref": "refs/heads/main", "sha": "d6e1b4c", "repository": "acme/deploy",
                "repository_owner": "acme", "run_id": "1234", "workflow": "deploy",
                "event_name": "push", "ref_type": "branch", "job_workflow_ref": "acme/deploy/.github/workflows/deploy.yml@refs/heads/main",
                "iss": "https://token.actions.githubusercontent.com",
                "nbf": now - 5, "exp": now + 300, "iat": now - 5
            }),
        )
    };
    assert_eq!(
        token_status(&app, &workflow(subject, "https://github.com/acme")).await,
        200,
        "a workflow token"
    );
    assert_eq!(
        token_status(
            &app,
            &workflow(
                "repo:acme/deploy:ref:refs/heads/feature",
                "https://github.com/acme"
            )
        )
        .await,
        401,
        "another branch"
    );
    assert_eq!(
        token_status(&app, &workflow(subject, &app.issuer)).await,
        401,
        "not the issuer's configured audience"
    );

    // Removing the issuer stops its tokens.
    IssuerAdmin::new(app.store.as_ref())
        .remove("github")
        .await
        .unwrap();
    let again = workflow(subject, "https://github.com/acme");
    assert!(
        within_a_second(|| async { token_status(&app, &again).await == 401 }).await,
        "a removed issuer's tokens are refused within a second"
    );
    // ...and takes its identities off the client: a new issuer under the
    // same name (another platform, another key) inherits nothing.
    let client = app.store.get_client("acme-deploy").await.unwrap().unwrap();
    assert!(client.federated.is_empty(), "{:?}", client.federated);
    let impostor = TestKey::es256();
    add_issuer(
        &app,
        NewIssuer {
            name: "github".into(),
            issuer: "https://ci.attacker.example".into(),
            jwks: Some(impostor.jwks("evil")),
            audience: Some("https://github.com/acme".into()),
            ..NewIssuer::default()
        },
    )
    .await;
    let inherited = impostor.sign(
        &json!({"alg": "ES256", "kid": "evil"}),
        &json!({"iss": "https://ci.attacker.example", "sub": subject, "aud": "https://github.com/acme",
                "iat": now, "exp": now + 300}),
    );
    assert_eq!(
        token_status(&app, &inherited).await,
        401,
        "no inherited identity"
    );
    // A binding that outlives its issuer (a client change racing the
    // removal) was made under the old issuer's id and never counts for a
    // new issuer of the same name.
    let mesh_client = app
        .store
        .get_client("payments-worker")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(mesh_client.federated.len(), 1);
    assert!(
        app.store.delete_issuer("mesh", None).await.unwrap(),
        "the row alone, as a race would leave it"
    );
    add_issuer(&app, mesh).await;
    let fresh_svid = bundle_key.sign(
        &json!({"alg": "ES256", "kid": "spire-1"}),
        &json!({"sub": spiffe_id, "aud": [app.issuer], "exp": now + 300, "iat": now, "jti": "fresh"}),
    );
    assert_eq!(
        token_status(&app, &fresh_svid).await,
        401,
        "a binding of a removed issuer"
    );

    // The issuer's iss is compared exactly: a trailing slash is another issuer.
    let slashed = kubernetes_token(
        &cluster_key,
        &format!("{}/", cluster.url),
        &app.issuer,
        "api",
        now,
        600,
    );
    assert_eq!(
        token_status(&app, &slashed).await,
        401,
        "iss with a trailing slash"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_must_name_the_issuer_and_be_reachable() {
    let app = TestApp::spawn_with(Backend::Sqlite, &[("TOKENMINT_FETCH_TIMEOUT", "1s")])
        .await
        .unwrap();
    let key = TestKey::es256();
    let host = KeyHost::start(key.jwks("cluster-key")).await;
    // The discovery document claims to be another issuer (a mix-up).
    host.set_discovered_issuer("https://someone-else.example");
    let token = discovered_client_token(&app, &key, &host, "c1").await;
    assert_eq!(
        token_status(&app, &token).await,
        401,
        "discovery names another issuer"
    );
    assert_eq!(host.jwks_hits(), 0, "its keys are never fetched");

    let down = KeyHost::start(key.jwks("cluster-key")).await;
    down.set_mode(Mode::Down);
    let token = discovered_client_token(&app, &key, &down, "c2").await;
    assert_eq!(token_status(&app, &token).await, 401, "discovery down");
}

/// An issuer `name` found by discovery at `host`, a client bound to one of
/// its service accounts, and a token of that service account.
async fn discovered_client_token(
    app: &TestApp,
    key: &TestKey,
    host: &KeyHost,
    name: &str,
) -> String {
    let issuer = NewIssuer {
        name: name.into(),
        issuer: host.url.clone(),
        ..NewIssuer::default()
    };
    add_issuer(app, issuer).await;
    let subject = "system:serviceaccount:payments:api";
    federated_client(app, &format!("svc-{name}"), vec![identity(name, subject)]).await;
    kubernetes_token(key, &host.url, &app.issuer, "api", unix_now(), 600)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issuers_through_the_cli_and_the_admin_api() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    let added = app.cli_json(&[
        "issuer",
        "add",
        "prod",
        "--issuer",
        "https://oidc.eks.example.com/id/ABC",
        "--max-token-age",
        "30m",
    ]);
    assert_eq!(added["key_source"], "discovery");
    assert_eq!(added["max_token_age"], 1800);
    let listed = app.cli_json(&["issuer", "list"]);
    assert_eq!(listed[0]["name"], "prod");
    let refused = app.cli(
        &["issuer", "add", "prod", "--issuer", "https://other.example"],
        None,
    );
    assert_eq!(refused.status.code(), Some(1), "a taken name");
    let refused = app.cli(
        &["issuer", "add", "mesh", "--issuer", "spiffe://example.org"],
        None,
    );
    assert_eq!(refused.status.code(), Some(2), "SPIFFE needs keys");
    let created = app.cli_json(&[
        "client",
        "create",
        "svc:eks",
        "--scope",
        "a",
        "--federated",
        "prod=system:serviceaccount:payments:api",
    ]);
    assert_eq!(created["token_endpoint_auth_method"], "private_key_jwt");
    assert_eq!(
        created["federated_identities"][0]["subject"],
        "system:serviceaccount:payments:api"
    );
    let taken = app.cli(
        &[
            "client",
            "create",
            "svc:eks2",
            "--federated",
            "prod=system:serviceaccount:payments:api",
        ],
        None,
    );
    assert_eq!(
        taken.status.code(),
        Some(1),
        "an identity belongs to one client"
    );
    assert!(String::from_utf8_lossy(&taken.stderr).contains("svc:eks"));
    let unknown = app.cli(
        &["client", "create", "svc:x", "--federated", "nope=x"],
        None,
    );
    assert_eq!(unknown.status.code(), Some(2), "an unknown issuer");

    let token = app.admin_token().await;
    let admin = app.admin(Some(&token));
    let response = admin
        .send(reqwest::Method::GET, "/admin/issuers/prod", None)
        .await;
    assert_eq!(
        json(response).await["issuer"],
        "https://oidc.eks.example.com/id/ABC"
    );
    let key = TestKey::eddsa();
    let response = admin
        .send(
            reqwest::Method::POST,
            "/admin/issuers",
            Some(json!({
                "name": "mesh", "issuer": "spiffe://example.org", "jwks": key.jwks("b1")
            })),
        )
        .await;
    assert_eq!(response.status(), 201);
    let response = admin
        .send(
            reqwest::Method::POST,
            "/admin/issuers",
            Some(json!({"name": "bad name", "issuer": "https://x.example"})),
        )
        .await;
    assert_eq!(response.status(), 400);
    let response = admin
        .send(reqwest::Method::DELETE, "/admin/issuers/mesh", None)
        .await;
    assert_eq!(response.status(), 204);
    let response = admin
        .send(reqwest::Method::GET, "/admin/issuers/mesh", None)
        .await;
    assert_eq!(response.status(), 404);
    let removed = app.cli(&["issuer", "remove", "mesh"], None);
    assert_eq!(removed.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&removed.stderr).contains("no such issuer 'mesh'"));
}
