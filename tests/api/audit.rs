//! The audit trail: who changed which client, issuer or key — through the
//! admin API or the CLI — and which fields, never a secret; read newest
//! first, a page at a time, from `GET /admin/audit` and `tokenmint audit list`.

use std::time::UNIX_EPOCH;

use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::{Value, json};
use tokenmint::admin::NewClient;
use tokenmint::clock::{rfc3339, unix_now, wait_until};

use crate::helpers::{TestApp, both_stores, json, run_binary};

both_stores!(
    admin_api_changes_are_recorded_without_secrets,
    cli_changes_are_recorded_and_filtered,
    the_trail_is_read_a_page_at_a_time,
    secret_rotations_are_recorded_without_the_secret,
);

fn encoded(s: &str) -> String {
    utf8_percent_encode(s, NON_ALPHANUMERIC).to_string()
}

/// `GET path` on the admin API as the holder of `token`: the page and its
/// `Link` header.
async fn audit_get(app: &TestApp, token: &str, path: &str) -> (Value, Option<String>) {
    let response = app
        .admin(Some(token))
        .send(reqwest::Method::GET, path, None)
        .await;
    assert_eq!(response.status(), 200, "GET {path}");
    assert_eq!(response.headers()["cache-control"], "no-store");
    let link = response
        .headers()
        .get("link")
        .map(|l| l.to_str().unwrap().to_owned());
    (json(response).await, link)
}

fn entries(page: &Value) -> Vec<Value> {
    page["entries"].as_array().expect("entries").clone()
}

/// The trail as `tokenmint audit list … --json` prints it.
fn cli_entries(app: &TestApp, args: &[&str]) -> Vec<Value> {
    let mut all = vec!["audit", "list"];
    all.extend_from_slice(args);
    app.cli_json(&all).as_array().expect("an array").clone()
}

fn actions(entries: &[Value]) -> Vec<&str> {
    entries
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect()
}

fn ids(entries: &[Value]) -> Vec<i64> {
    entries
        .iter()
        .map(|e| e["id"].as_i64().expect("a numeric id"))
        .collect()
}

fn fields(entry: &Value) -> Vec<String> {
    let mut names: Vec<String> = entry["fields"]
        .as_array()
        .expect("fields")
        .iter()
        .map(|f| f.as_str().unwrap().to_owned())
        .collect();
    names.sort();
    names
}

/// The path and query of a `Link: <…>; rel="next"` target, absolute or not.
fn next_link(link: &str) -> String {
    assert!(link.contains(r#"rel="next""#), "{link}");
    let target = &link[link.find('<').unwrap() + 1..link.find('>').unwrap()];
    match target.find("://") {
        Some(scheme) => {
            let rest = &target[scheme + 3..];
            rest[rest.find('/').expect("a path")..].to_owned()
        }
        None => target.to_owned(),
    }
}

async fn admin_api_changes_are_recorded_without_secrets(app: TestApp) {
    let token = app.admin_token().await;
    let admin = app.admin(Some(&token));
    let started = unix_now();
    let created = admin
        .create_client(json!({"client_id": "svc:audited", "scopes": ["a"]}))
        .await;
    assert_eq!(created.status(), 201);
    let secret = json(created).await["client_secret"]
        .as_str()
        .unwrap()
        .to_owned();
    let updated = admin
        .update_client(
            "svc:audited",
            json!({"scopes": ["a", "b"], "token_quota": "10/min"}),
        )
        .await;
    assert_eq!(updated.status(), 200);
    let refused = admin
        .update_client("svc:audited", json!({"token_ttl": 0}))
        .await;
    assert_eq!(refused.status(), 400);
    let path = format!("/admin/clients/{}/revoke-tokens", encoded("svc:audited"));
    let revoked = admin.send(reqwest::Method::POST, &path, None).await;
    assert_eq!(revoked.status(), 200);
    assert_eq!(admin.delete_client("svc:audited").await.status(), 204);

    let query = format!("/admin/audit?client={}", encoded("svc:audited"));
    let trail = entries(&audit_get(&app, &token, &query).await.0);
    assert_eq!(
        actions(&trail),
        [
            "client.delete",
            "client.revoke_tokens",
            "client.update",
            "client.create"
        ],
        "newest first; the refused change is not there"
    );
    let trail_ids = ids(&trail);
    assert!(trail_ids.windows(2).all(|w| w[0] > w[1]), "{trail_ids:?}");
    for entry in &trail {
        assert_eq!(entry["actor"], "deployer", "the admin client: {entry}");
        assert_eq!(entry["target"], "svc:audited", "{entry}");
        let at = humantime::parse_rfc3339(entry["at"].as_str().unwrap()).expect("RFC 3339");
        let at = i64::try_from(at.duration_since(UNIX_EPOCH).unwrap().as_secs()).unwrap();
        assert!((started - 1..=unix_now() + 1).contains(&at), "{entry}");
    }
    // Only what the PATCH changed (scopes may bring the defaults along).
    let changed = fields(&trail[2]);
    assert!(
        changed.contains(&"scopes".to_owned()) && changed.contains(&"token_quota".to_owned()),
        "{changed:?}"
    );
    assert!(
        changed
            .iter()
            .all(|f| ["scopes", "default_scopes", "token_quota"].contains(&f.as_str())),
        "{changed:?}"
    );

    let response = admin
        .send(reqwest::Method::GET, "/admin/audit?limit=200", None)
        .await;
    let text = response.text().await.unwrap();
    assert!(!text.contains(&secret), "no secret in the trail");
    assert!(!text.contains("$argon2"), "no hash in the trail");

    // Reading the trail takes the admin scope.
    let anonymous = app
        .admin(None)
        .send(reqwest::Method::GET, "/admin/audit", None)
        .await;
    assert_eq!(anonymous.status(), 401);
    let (plain, plain_secret) = app
        .create_client(NewClient {
            client_id: "plain".into(),
            scopes: vec!["a".into()],
            ..NewClient::default()
        })
        .await;
    let ordinary = app.token_for(&plain, &plain_secret).await;
    let forbidden = app
        .admin(Some(&ordinary))
        .send(reqwest::Method::GET, "/admin/audit", None)
        .await;
    assert_eq!(forbidden.status(), 403, "a token without the admin scope");
}

async fn cli_changes_are_recorded_and_filtered(app: TestApp) {
    let token = app.admin_token().await;
    let mut as_alice = app.env.clone();
    as_alice.push(("USER".into(), "ops-alice".into()));
    for args in [
        &["client", "create", "svc:one", "--scope", "a"][..],
        &["client", "create", "svc:two", "--scope", "a"],
        &["client", "update", "svc:one", "--scope", "a b"],
        &[
            "issuer",
            "add",
            "prod",
            "--issuer",
            "https://oidc.example.com",
        ],
    ] {
        let output = run_binary(args, &as_alice, None);
        assert!(
            output.status.success(),
            "tokenmint {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let one = cli_entries(&app, &["--client", "svc:one"]);
    assert_eq!(actions(&one), ["client.update", "client.create"]);
    for entry in &one {
        assert_eq!(entry["target"], "svc:one", "only that client: {entry}");
        assert_eq!(
            entry["actor"], "cli:ops-alice",
            "cli: and the OS user: {entry}"
        );
    }
    assert!(fields(&one[0]).contains(&"scopes".to_owned()), "{}", one[0]);
    let all = cli_entries(&app, &["--limit", "200"]);
    let added = all
        .iter()
        .find(|e| e["action"] == "issuer.add")
        .expect("the issuer is recorded");
    assert_eq!(
        added["target"], "issuer:prod",
        "issuers are told from clients"
    );

    // Everything so far happened before `cut`; the disable after it, with
    // more than a second between so the bound holds at second precision.
    let cut = unix_now() + 1;
    wait_until(cut + 2).await;
    let disabled = app.cli(&["client", "disable", "svc:two"], None);
    assert!(disabled.status.success());
    let lately = cli_entries(&app, &["--since", "2s"]);
    assert_eq!(actions(&lately), ["client.disable"], "a duration ago");
    assert!(lately[0]["actor"].as_str().unwrap().starts_with("cli:"));
    let since = cli_entries(&app, &["--since", &rfc3339(cut)]);
    assert_eq!(actions(&since), ["client.disable"], "an RFC 3339 time");
    let hour = cli_entries(&app, &["--since", "1h", "--client", "svc:two"]);
    assert_eq!(actions(&hour), ["client.disable", "client.create"]);

    let path = format!(
        "/admin/audit?since={}&client={}",
        encoded(&rfc3339(cut)),
        encoded("svc:two")
    );
    let page = audit_get(&app, &token, &path).await.0;
    assert_eq!(
        actions(&entries(&page)),
        ["client.disable"],
        "the API filters alike"
    );

    for bad in ["yesterday", "2024-13-01T00:00:00Z"] {
        let output = app.cli(&["audit", "list", "--since", bad], None);
        assert_eq!(output.status.code(), Some(2), "--since {bad}");
    }
    for bad in ["?since=yesterday", "?limit=0", "?limit=x", "?after=x"] {
        let response = app
            .admin(Some(&token))
            .send(reqwest::Method::GET, &format!("/admin/audit{bad}"), None)
            .await;
        assert_eq!(response.status(), 400, "{bad}");
    }
}

async fn the_trail_is_read_a_page_at_a_time(app: TestApp) {
    let token = app.admin_token().await;
    let admin = app.admin(Some(&token));
    for n in 0..6 {
        let created = admin
            .create_client(json!({"client_id": format!("page-{n}"), "scopes": ["a"]}))
            .await;
        assert_eq!(created.status(), 201);
    }
    for n in 0..4 {
        let updated = admin
            .update_client(&format!("page-{n}"), json!({"token_ttl": 600}))
            .await;
        assert_eq!(updated.status(), 200);
    }
    let (whole, link) = audit_get(&app, &token, "/admin/audit?limit=200").await;
    assert!(
        link.is_none() && whole["next_after"].is_null(),
        "one page holds it all"
    );
    let all = ids(&entries(&whole));
    assert!(all.len() >= 10, "{all:?}");
    assert!(all.windows(2).all(|w| w[0] > w[1]), "newest first: {all:?}");

    // A change made while paging is newer than the cursor: later pages
    // neither repeat nor skip an entry because of it.
    let mut seen = Vec::new();
    let mut next = Some("/admin/audit?limit=3".to_owned());
    let mut pages = 0;
    while let Some(path) = next.take() {
        let (page, link) = audit_get(&app, &token, &path).await;
        let page_entries = entries(&page);
        assert!(page_entries.len() <= 3, "{path}");
        seen.extend(ids(&page_entries));
        match (page["next_after"].as_i64(), link) {
            (Some(after), Some(link)) => {
                let path = next_link(&link);
                assert!(path.contains(&format!("after={after}")), "{path}");
                assert!(path.contains("limit=3"), "the page size is kept: {path}");
                next = Some(path);
            }
            (None, None) => {}
            other => panic!("next_after and Link disagree: {other:?}"),
        }
        if pages == 0 {
            let late = admin
                .create_client(json!({"client_id": "page-late", "scopes": ["a"]}))
                .await;
            assert_eq!(late.status(), 201);
        }
        pages += 1;
        assert!(pages <= all.len() / 3 + 2, "paging ends");
    }
    assert_eq!(seen, all, "every entry once, in order");

    // The CLI pages with --after the last id it printed.
    let now = ids(&entries(
        &audit_get(&app, &token, "/admin/audit?limit=200").await.0,
    ));
    assert_eq!(now.len(), all.len() + 1, "the late change");
    let mut listed = Vec::new();
    let mut after: Option<i64> = None;
    loop {
        let cursor = after.map(|a| a.to_string());
        let mut args = vec!["--limit", "4"];
        if let Some(cursor) = &cursor {
            args.extend(["--after", cursor.as_str()]);
        }
        let page = cli_entries(&app, &args);
        assert!(page.len() <= 4);
        listed.extend(ids(&page));
        after = page.last().and_then(|e| e["id"].as_i64());
        if page.len() < 4 {
            break;
        }
        assert!(listed.len() <= now.len(), "paging ends");
    }
    assert_eq!(listed, now);
}

async fn secret_rotations_are_recorded_without_the_secret(app: TestApp) {
    let token = app.admin_token().await;
    let admin = app.admin(Some(&token));
    let created = admin
        .create_client(json!({"client_id": "svc:rotated", "scopes": ["a"]}))
        .await;
    let first = json(created).await["client_secret"]
        .as_str()
        .unwrap()
        .to_owned();
    let rotated = admin
        .rotate_secret("svc:rotated", json!({"overlap_seconds": 0}))
        .await;
    assert_eq!(rotated.status(), 200);
    let second = json(rotated).await["client_secret"]
        .as_str()
        .unwrap()
        .to_owned();
    let third = app.cli_json(&["client", "rotate-secret", "svc:rotated", "--overlap", "0s"])
        ["client_secret"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(app.token_status("svc:rotated", &third).await, 200);
    let kid = app.cli_json(&["key", "rotate"])["kid"]
        .as_str()
        .unwrap()
        .to_owned();

    let trail = cli_entries(&app, &["--client", "svc:rotated"]);
    assert_eq!(
        actions(&trail),
        [
            "client.rotate_secret",
            "client.rotate_secret",
            "client.create"
        ]
    );
    assert!(
        trail[0]["actor"].as_str().unwrap().starts_with("cli:"),
        "{}",
        trail[0]
    );
    assert_eq!(trail[1]["actor"], "deployer");
    let all = cli_entries(&app, &["--limit", "200"]);
    let key = all
        .iter()
        .find(|e| e["action"] == "key.rotate")
        .expect("the key rotation is recorded");
    assert_eq!(key["target"], format!("key:{kid}").as_str());

    let human = app.cli(&["audit", "list", "--limit", "200"], None);
    assert!(human.status.success());
    let api = admin
        .send(reqwest::Method::GET, "/admin/audit?limit=200", None)
        .await;
    for (place, text) in [
        ("audit list --json", serde_json::to_string(&all).unwrap()),
        (
            "audit list",
            String::from_utf8_lossy(&human.stdout).into_owned(),
        ),
        ("GET /admin/audit", api.text().await.unwrap()),
    ] {
        for secret in [&first, &second, &third] {
            assert!(!text.contains(secret.as_str()), "{place}: a secret");
        }
        assert!(!text.contains("$argon2"), "{place}: a hash");
    }
}
