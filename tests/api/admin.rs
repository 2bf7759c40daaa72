//! The admin API, on both stores: bearer authentication with
//! tokenmint's own tokens, every operation, validation, and the separate
//! listener.

use serde_json::json;

use crate::helpers::{Backend, TestApp, both_stores, json};

both_stores!(
    clients_are_listed_a_page_at_a_time,
    admin_api_requires_an_admin_token,
    admin_api_manages_clients_and_keys,
    odd_paths_get_json_errors_and_nothing_is_cached,
    concurrent_changes_on_two_instances_are_all_kept
);

/// Two admins change one client at the same moment on two instances: both
/// changes are kept (a write over a row changed since it was read is done
/// again over the new row), never one silently undone.
async fn concurrent_changes_on_two_instances_are_all_kept(app: TestApp) {
    let token = app.admin_token().await;
    let other = app
        .another_instance(&[("TOKENMINT_ISSUER", &app.issuer)])
        .await;
    let other_base = other.address.clone();
    let (rs_id, rs_secret) = app.standard_client().await;
    for round in 0..8 {
        let (id, secret) = app.standard_client().await;
        let old_token = app.token_for(&id, &secret).await;
        let path = format!("/admin/clients/{id}");
        let send = |base: String,
                    method: reqwest::Method,
                    path: String,
                    body: Option<serde_json::Value>| {
            let (http, token) = (app.http.clone(), token.clone());
            async move {
                let mut request = http
                    .request(method, format!("{base}{path}"))
                    .bearer_auth(token);
                if let Some(body) = body {
                    request = request.json(&body);
                }
                request.send().await.unwrap().status().as_u16()
            }
        };
        let (disable, widen, revoke) = tokio::join!(
            send(
                other_base.clone(),
                reqwest::Method::PATCH,
                path.clone(),
                Some(json!({"enabled": false}))
            ),
            send(
                app.address.clone(),
                reqwest::Method::PATCH,
                path.clone(),
                Some(json!({"scopes": ["a", "b", "c", "d"]}))
            ),
            send(
                other_base.clone(),
                reqwest::Method::POST,
                format!("{path}/revoke-tokens"),
                None
            ),
        );
        assert_eq!((disable, widen, revoke), (200, 200, 200), "round {round}");
        let client = app.store.get_client(&id).await.unwrap().unwrap();
        assert!(!client.enabled, "round {round}: the disable was kept");
        assert!(
            client.scopes.contains("d"),
            "round {round}: the new scope was kept"
        );
        let answer = json(app.introspect(&old_token, Some((&rs_id, &rs_secret))).await).await;
        assert_eq!(
            answer["active"], false,
            "round {round}: revoked and disabled"
        );
    }
}

/// Ids no client can have, and path segments that are not text, answer a
/// JSON 4xx on both stores (a NUL byte used to be a 500 on Postgres); every
/// admin answer is `no-store`.
async fn odd_paths_get_json_errors_and_nothing_is_cached(app: TestApp) {
    let admin = admin_token(&app).await;
    let api = app.admin(Some(&admin));
    for (case, path, status) in [
        ("a NUL byte", "/admin/clients/a%00b", 404),
        ("a space", "/admin/clients/a%20b", 404),
        ("not UTF-8", "/admin/clients/%FF", 400),
        ("not UTF-8, a key", "/admin/keys/%FF/revoke", 400),
    ] {
        let method = if case.contains("key") {
            reqwest::Method::POST
        } else {
            reqwest::Method::GET
        };
        let response = api.send(method, path, None).await;
        assert_eq!(response.status(), status, "{case}");
        assert_eq!(response.headers()["cache-control"], "no-store", "{case}");
        let body = json(response).await;
        assert!(body["error"].is_string(), "{case}: a JSON error: {body}");
    }
    for (case, response) in [
        ("list", api.list_clients().await),
        ("show", api.get_client("deployer").await),
        ("keys", api.list_keys().await),
        ("no token", app.admin(None).list_clients().await),
    ] {
        assert_eq!(response.headers()["cache-control"], "no-store", "{case}");
    }
    let wrong_method = api
        .send(reqwest::Method::GET, "/admin/clients/x/secret", None)
        .await;
    assert_eq!(wrong_method.status(), 405);
    assert_eq!(wrong_method.headers()["allow"], "POST");
    assert_eq!(
        json(wrong_method).await["error"],
        "invalid_request",
        "a JSON 405"
    );
    let deleted = api
        .send(reqwest::Method::DELETE, "/admin/clients/a%00b", None)
        .await;
    assert_eq!(deleted.status(), 404, "deleting an impossible id");
}

/// An admin client made with the CLI (as the first one must be): its
/// token and its secret.
async fn admin_client(app: &TestApp) -> (String, String) {
    let created = app.cli_json(&["client", "create", "deployer", "--scope", "tokenmint:admin"]);
    let secret = created["client_secret"].as_str().unwrap().to_owned();
    (app.token_for("deployer", &secret).await, secret)
}

async fn admin_token(app: &TestApp) -> String {
    admin_client(app).await.0
}

async fn admin_api_requires_an_admin_token(app: TestApp) {
    let (admin, admin_secret) = admin_client(&app).await;
    // Audienced to tokenmint itself (no audiences: the issuer), no admin scope.
    let (id, secret) = app
        .create_client(tokenmint::admin::NewClient {
            client_id: "plain".into(),
            scopes: vec!["a".into()],
            ..Default::default()
        })
        .await;
    let ordinary = app.token_for(&id, &secret).await;
    let (other_id, other_secret) = app.standard_client().await;
    let for_another_audience = app.token_for(&other_id, &other_secret).await;

    let none = app.admin(None).list_clients().await;
    assert_eq!(none.status(), 401, "no token");
    assert!(
        none.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Bearer"),
        "RFC 6750 challenge"
    );

    let garbage = app.admin(Some("not-a-token")).list_clients().await;
    assert_eq!(garbage.status(), 401, "garbage token");
    assert!(
        garbage.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("invalid_token")
    );

    let forbidden = app.admin(Some(&ordinary)).list_clients().await;
    assert_eq!(forbidden.status(), 403, "a token without the admin scope");
    let challenge = forbidden.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        challenge.contains("insufficient_scope") && challenge.contains("tokenmint:admin"),
        "{challenge}"
    );
    assert_eq!(json(forbidden).await["error"], "insufficient_scope");

    let elsewhere = app.admin(Some(&for_another_audience)).list_clients().await;
    assert_eq!(
        elsewhere.status(),
        401,
        "a token for another audience is not for us"
    );

    assert_eq!(app.admin(Some(&admin)).list_clients().await.status(), 200);

    // A revoked admin token stops working at once.
    let revoked = app.revoke(&admin, Some(("deployer", &admin_secret))).await;
    assert_eq!(revoked.status(), 200);
    let after = app.admin(Some(&admin)).list_clients().await;
    assert_eq!(after.status(), 401, "a revoked admin token");
}

async fn admin_api_manages_clients_and_keys(app: TestApp) {
    let admin = admin_token(&app).await;
    let token = Some(admin.as_str());

    let created = app.admin(token).create_client(json!({"client_id": "svc:orders/v1", "scopes": ["orders:read", "orders:write"], "audiences": ["https://orders"], "token_ttl": 600}))
    .await;
    assert_eq!(created.status(), 201, "create");
    assert_eq!(
        created.headers()["cache-control"],
        "no-store",
        "the secret is not cached"
    );
    let created = json(created).await;
    let secret = created["client_secret"].as_str().unwrap().to_owned();
    assert_eq!(created["client_id"], "svc:orders/v1");
    assert_eq!(created["token_ttl"], 600);
    assert!(created.get("secret_hash").is_none());
    let body = app.token_json("svc:orders/v1", &secret).await;
    assert_eq!(body["expires_in"], 600, "the API's client gets tokens");

    let again = app
        .admin(token)
        .create_client(json!({"client_id": "svc:orders/v1"}))
        .await;
    assert_eq!(again.status(), 409, "existing id");
    for (case, body, field) in [
        ("bad id", json!({"client_id": "a b"}), "client_id"),
        (
            "bad scope",
            json!({"client_id": "x", "scopes": ["a\"b"]}),
            "scopes",
        ),
        (
            "bad ttl",
            json!({"client_id": "x", "token_ttl": 0}),
            "token_ttl",
        ),
        (
            "default not allowed",
            json!({"client_id": "x", "scopes": ["a"], "default_scopes": ["b"]}),
            "default_scopes",
        ),
    ] {
        let response = app.admin(token).create_client(body).await;
        assert_eq!(response.status(), 400, "{case}");
        assert_eq!(
            json(response).await["field"],
            field,
            "{case}: names the field"
        );
    }
    let unknown_field = app
        .admin(token)
        .create_client(json!({"client_id": "x", "nope": 1}))
        .await;
    assert_eq!(unknown_field.status(), 400, "unknown field");

    // Ids with '/' and ':' work percent-encoded in the path.
    let id = "svc:orders/v1";
    let got = json(app.admin(token).get_client(id).await).await;
    assert_eq!(got["scopes"], json!(["orders:read", "orders:write"]));
    assert_eq!(app.admin(token).get_client("nobody").await.status(), 404);
    let list = json(app.admin(token).list_clients().await).await;
    assert_eq!(
        list.as_array().unwrap().len(),
        2,
        "deployer and svc:orders/v1"
    );

    let patched = app
        .admin(token)
        .update_client(id, json!({"scopes": ["orders:read"], "enabled": false}))
        .await;
    assert_eq!(patched.status(), 200);
    let patched = json(patched).await;
    assert_eq!(patched["enabled"], false);
    assert_eq!(patched["default_scopes"], json!(["orders:read"]));
    assert_eq!(
        app.token_status("svc:orders/v1", &secret).await,
        401,
        "disabled"
    );
    app.admin(token)
        .update_client(id, json!({"enabled": true, "token_ttl": null}))
        .await;
    let body = app.token_json("svc:orders/v1", &secret).await;
    assert_eq!(
        body["expires_in"], 3600,
        "ttl cleared to the server default"
    );

    let rotated = app
        .admin(token)
        .rotate_secret(id, json!({"overlap_seconds": 0}))
        .await;
    assert_eq!(rotated.status(), 200);
    let rotated = json(rotated).await;
    let new_secret = rotated["client_secret"].as_str().unwrap();
    assert!(rotated["previous_secret_expires_at"].is_null());
    assert_eq!(
        app.token_status("svc:orders/v1", &secret).await,
        401,
        "old secret cut"
    );
    assert_eq!(app.token_status("svc:orders/v1", new_secret).await, 200);

    let keys = json(app.admin(token).list_keys().await).await;
    assert_eq!(keys.as_array().unwrap().len(), 1);
    assert_eq!(keys[0]["status"], "active");
    let rotated_key = app.admin(token).rotate_key(json!({"now": true})).await;
    assert_eq!(rotated_key.status(), 201);
    let rotated_key = json(rotated_key).await;
    let new_kid = rotated_key["kid"].as_str().unwrap().to_owned();
    // "now" is within a second: a key never shares its activation second
    // with the key it replaces (keys::free_activation_second).
    let switched = crate::helpers::eventually(std::time::Duration::from_secs(3), || async {
        let token = app.token_for("svc:orders/v1", new_secret).await;
        (jsonwebtoken::decode_header(&token).unwrap().kid.as_deref() == Some(new_kid.as_str()))
            .then_some(())
    })
    .await;
    assert!(
        switched.is_some(),
        "this instance signs with the new key within a second"
    );

    assert_eq!(app.admin(token).delete_client(id).await.status(), 204);
    assert_eq!(
        app.admin(token).get_client(id).await.status(),
        404,
        "deleted"
    );
    assert_eq!(
        app.admin(token).delete_client(id).await.status(),
        404,
        "deleting twice"
    );
}

/// With TOKENMINT_ADMIN_LISTEN the admin API is on its own listener only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_api_on_its_own_listener() {
    let app = TestApp::spawn_with(
        Backend::Sqlite,
        &[("TOKENMINT_ADMIN_LISTEN", "127.0.0.1:0")],
    )
    .await
    .unwrap();
    let admin = admin_token(&app).await;
    let public = app
        .http
        .get(app.url("/admin/clients"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(public.status(), 404, "not on the public listener");
    let separate = app.admin(Some(&admin)).list_clients().await;
    assert_eq!(separate.status(), 200, "on the admin listener");
    let token = app
        .admin(None)
        .send(reqwest::Method::POST, "/token", None)
        .await;
    assert_eq!(
        token.status(),
        404,
        "the admin listener serves no token endpoint"
    );
}

async fn clients_are_listed_a_page_at_a_time(app: TestApp) {
    let token = app.admin_token().await;
    let admin = app.admin(Some(&token));
    for n in 0..25 {
        let scopes = if n % 5 == 0 {
            vec!["special"]
        } else {
            vec!["plain"]
        };
        let created = admin
            .create_client(json!({"client_id": format!("page-{n:02}"), "scopes": scopes}))
            .await;
        assert_eq!(created.status(), 201);
    }
    admin
        .update_client("page-03", json!({"enabled": false}))
        .await;
    let get = |query: String| {
        let app = &app;
        let token = &token;
        async move {
            app.http
                .get(app.url(&format!("/admin/clients{query}")))
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
        }
    };
    let ids = |page: &serde_json::Value| -> Vec<String> {
        page.as_array()
            .unwrap()
            .iter()
            .map(|c| c["client_id"].as_str().unwrap().to_owned())
            .collect()
    };
    // Pages of ten, each naming the next in a Link header, in id order.
    let mut seen = Vec::new();
    let mut next = Some("?prefix=page-&limit=10".to_owned());
    let mut pages = 0;
    while let Some(query) = next.take() {
        let response = get(query).await;
        assert_eq!(response.status(), 200);
        next = response
            .headers()
            .get("link")
            .map(|l| l.to_str().unwrap().to_owned())
            .map(|l| {
                let start = l.find("?").unwrap();
                l[start..l.find('>').unwrap()].to_owned()
            });
        seen.extend(ids(&json(response).await));
        pages += 1;
        assert!(pages <= 3, "three pages at most");
    }
    let expected: Vec<String> = (0..25).map(|n| format!("page-{n:02}")).collect();
    assert_eq!(seen, expected);
    // Filters.
    let page = json(get("?prefix=page-1".into()).await).await;
    assert_eq!(
        ids(&page),
        (10..20).map(|n| format!("page-{n}")).collect::<Vec<_>>()
    );
    let page = json(get("?prefix=page-&enabled=false".into()).await).await;
    assert_eq!(ids(&page), ["page-03"]);
    let page = json(get("?scope=special".into()).await).await;
    assert_eq!(
        ids(&page),
        ["page-00", "page-05", "page-10", "page-15", "page-20"]
    );
    let page = json(get("?scope=SPECIAL".into()).await).await;
    assert_eq!(
        ids(&page),
        Vec::<String>::new(),
        "scopes are case-sensitive"
    );
    let page = json(get("?scope=spec%25".into()).await).await;
    assert_eq!(ids(&page), Vec::<String>::new(), "% is no wildcard");
    // Bad queries are 400s naming the parameter.
    for bad in [
        "?limit=0",
        "?limit=1001",
        "?limit=x",
        "?enabled=yes",
        "?limit=1&limit=2",
        "?after=a%20b",
    ] {
        assert_eq!(get(bad.into()).await.status(), 400, "{bad}");
    }
    // The CLI pages the same way and says where the next page starts.
    let output = app.cli(
        &["client", "list", "--prefix", "page-", "--limit", "3"],
        None,
    );
    assert!(output.status.success());
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("page-02") && !stdout.contains("page-03"),
        "{stdout}"
    );
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("--after 'page-02'"),
        "the next page's cursor"
    );
}
