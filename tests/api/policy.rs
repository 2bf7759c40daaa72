//! Per-client policy: custom claims that every token (and its
//! introspection) carries verbatim, and token quotas — fixed windows
//! aligned to the epoch, counted in the store so that instances share them —
//! answered with 429 and the RateLimit headers.

use std::time::Duration;

use serde_json::{Value, json};
use tokenmint::clock::{unix_now, wait_until};

use crate::helpers::{Backend, TestApp, both_stores, json, post_form, within_a_second};
use crate::jose::decode_claims;

both_stores!(
    claims_through_the_admin_api,
    claims_through_the_cli,
    reserved_oversized_and_malformed_claims_are_refused,
    a_quota_counts_issued_tokens_only,
    a_quota_holds_under_a_burst,
);

const GRANT: &str = "grant_type=client_credentials";

/// Windows are fixed hours from the epoch: a test that needs `room`
/// seconds inside one waits for the next when this one is about to end.
async fn inside_one_hour(room: i64) {
    let now = unix_now();
    if 3600 - now % 3600 < room {
        wait_until(now - now % 3600 + 3600).await;
    }
}

fn header<'a>(response: &'a reqwest::Response, name: &str) -> &'a str {
    response
        .headers()
        .get(name)
        .unwrap_or_else(|| panic!("no {name} header"))
        .to_str()
        .unwrap()
}

/// `r` and `t` of `RateLimit: "tokens";r=N;t=S`.
fn remaining_and_reset(response: &reqwest::Response) -> (i64, i64) {
    let value = header(response, "ratelimit");
    let mut parts = value.split(';').map(str::trim);
    assert_eq!(parts.next(), Some("\"tokens\""), "{value}");
    let (mut r, mut t) = (None, None);
    for part in parts {
        match part.split_once('=') {
            Some(("r", v)) => r = v.parse().ok(),
            Some(("t", v)) => t = v.parse().ok(),
            _ => {}
        }
    }
    (r.expect("r= in RateLimit"), t.expect("t= in RateLimit"))
}

/// A reset `seconds` away must be the end of the current epoch-aligned hour.
fn assert_resets_at_the_hour(seconds: i64, case: &str) {
    let left = 3600 - unix_now() % 3600;
    assert!((1..=3600).contains(&seconds), "{case}: {seconds}");
    assert!(
        (seconds - left).abs() <= 2,
        "{case}: {seconds}s, hour ends in {left}s"
    );
}

/// Whether `text` names `name` as a word ("iss" in "missing" does not count).
fn names(text: &str, name: &str) -> bool {
    text.match_indices(name).any(|(at, _)| {
        let before = text[..at].chars().next_back();
        let after = text[at + name.len()..].chars().next();
        ![before, after]
            .into_iter()
            .flatten()
            .any(|c| c.is_alphanumeric() || c == '_')
    })
}

/// Every string a JSON error body holds, as one text.
async fn error_text(response: reqwest::Response) -> String {
    let body = json(response).await;
    assert!(body["error"].is_string(), "a JSON error: {body}");
    let strings: Vec<&str> = body
        .as_object()
        .unwrap()
        .values()
        .filter_map(Value::as_str)
        .collect();
    strings.join("\n")
}

async fn claims_through_the_admin_api(app: TestApp) {
    let admin_token = app.admin_token().await;
    let admin = app.admin(Some(&admin_token));
    let (rs_id, rs_secret) = app.standard_client().await;
    let claims = json!({"tenant": "acme", "tier": 3, "beta": false,
                        "roles": ["reader", "billing"], "org": {"id": 7, "region": "eu-west-1"}});
    let created = admin
        .create_client(json!({"client_id": "svc:claims", "scopes": ["a"], "claims": claims}))
        .await;
    assert_eq!(created.status(), 201);
    let created = json(created).await;
    assert_eq!(created["claims"], claims);
    let secret = created["client_secret"].as_str().unwrap().to_owned();

    let token = app.token_for("svc:claims", &secret).await;
    let payload = decode_claims(&token);
    let answer = json(app.introspect(&token, Some((&rs_id, &rs_secret))).await).await;
    assert_eq!(answer["active"], true);
    for (name, value) in claims.as_object().unwrap() {
        assert_eq!(&payload[name], value, "{name} in the token");
        assert_eq!(&answer[name], value, "{name} in introspection");
    }
    // Custom claims sit beside the server's own, which they cannot displace.
    assert_eq!(payload["sub"], "svc:claims");
    assert_eq!(payload["iss"], app.issuer.as_str());
    assert_eq!(
        json(admin.get_client("svc:claims").await).await["claims"],
        claims
    );

    // PATCH replaces the whole object: keys left out are gone.
    let patched = admin
        .update_client("svc:claims", json!({"claims": {"tenant": "globex"}}))
        .await;
    assert_eq!(patched.status(), 200);
    assert_eq!(json(patched).await["claims"], json!({"tenant": "globex"}));
    let payload = decode_claims(&app.token_for("svc:claims", &secret).await);
    assert_eq!(payload["tenant"], "globex");
    assert!(
        payload.get("tier").is_none() && payload.get("org").is_none(),
        "{payload}"
    );

    // A PATCH that does not mention claims keeps them.
    let other_change = admin
        .update_client("svc:claims", json!({"scopes": ["a", "b"]}))
        .await;
    assert_eq!(
        json(other_change).await["claims"],
        json!({"tenant": "globex"})
    );

    let cleared = admin
        .update_client("svc:claims", json!({"claims": null}))
        .await;
    assert_eq!(cleared.status(), 200);
    assert_eq!(json(cleared).await["claims"], json!({}));
    let payload = decode_claims(&app.token_for("svc:claims", &secret).await);
    assert!(payload.get("tenant").is_none(), "cleared: {payload}");
    assert_eq!(
        json(admin.get_client(&rs_id).await).await["claims"],
        json!({}),
        "a client never given claims shows an empty object"
    );
}

async fn claims_through_the_cli(app: TestApp) {
    let created = app.cli_json(&[
        "client",
        "create",
        "svc:cli",
        "--scope",
        "a",
        "--claim",
        "tenant=\"acme\"",
        "--claim",
        "tier=3",
        "--claim",
        "note=\"a=b\"",
    ]);
    // Only the first '=' separates the name from the JSON.
    assert_eq!(
        created["claims"],
        json!({"tenant": "acme", "tier": 3, "note": "a=b"})
    );
    let secret = created["client_secret"].as_str().unwrap().to_owned();
    let payload = decode_claims(&app.token_for("svc:cli", &secret).await);
    assert_eq!(payload["tenant"], "acme");
    assert_eq!(payload["tier"], 3);

    let updated = app.cli_json(&[
        "client",
        "update",
        "svc:cli",
        "--claim",
        "tier=null",
        "--claim",
        "region=\"eu\"",
    ]);
    let expected = json!({"tenant": "acme", "note": "a=b", "region": "eu"});
    assert_eq!(
        updated["claims"], expected,
        "one key set, one removed, the rest kept"
    );
    assert_eq!(
        app.cli_json(&["client", "show", "svc:cli"])["claims"],
        expected
    );
    // The CLI is another process: the server sees its change within a second.
    let seen = within_a_second(|| async {
        let payload = decode_claims(&app.token_for("svc:cli", &secret).await);
        payload["region"] == "eu" && payload.get("tier").is_none()
    })
    .await;
    assert!(seen, "the server's tokens follow the CLI's update");

    let replaced = app.cli_json(&[
        "client",
        "update",
        "svc:cli",
        "--clear-claims",
        "--claim",
        "tenant=\"initech\"",
    ]);
    assert_eq!(replaced["claims"], json!({"tenant": "initech"}));
    let cleared = app.cli_json(&["client", "update", "svc:cli", "--clear-claims"]);
    assert_eq!(cleared["claims"], json!({}));
    let gone = within_a_second(|| async {
        decode_claims(&app.token_for("svc:cli", &secret).await)
            .get("tenant")
            .is_none()
    })
    .await;
    assert!(gone, "cleared claims leave the tokens");

    for (case, claim) in [
        ("not JSON", "tenant=acme"),
        ("no '='", "tenant"),
        ("no name", "=1"),
    ] {
        let output = app.cli(&["client", "update", "svc:cli", "--claim", claim], None);
        assert_eq!(output.status.code(), Some(2), "{case}: a usage error");
    }
}

async fn reserved_oversized_and_malformed_claims_are_refused(app: TestApp) {
    let token = app.admin_token().await;
    let admin = app.admin(Some(&token));
    let kept = json!({"tenant": "acme"});
    let created = admin
        .create_client(json!({"client_id": "svc:kept", "scopes": ["a"], "claims": kept}))
        .await;
    assert_eq!(created.status(), 201);

    for name in [
        "iss",
        "cnf",
        "client_id",
        "sub",
        "aud",
        "exp",
        "jti",
        "scope",
        "act",
    ] {
        let mut claims = kept.clone();
        claims[name] = json!("forged");
        let response = admin
            .create_client(json!({"client_id": "svc:forged", "scopes": ["a"], "claims": claims}))
            .await;
        assert_eq!(response.status(), 400, "create with {name}");
        let text = error_text(response).await;
        assert!(names(&text, name), "the refusal names {name}: {text}");
        let response = admin
            .update_client("svc:kept", json!({"claims": claims}))
            .await;
        assert_eq!(response.status(), 400, "update with {name}");
        let text = error_text(response).await;
        assert!(names(&text, name), "the refusal names {name}: {text}");
    }
    assert_eq!(admin.get_client("svc:forged").await.status(), 404);
    assert_eq!(
        json(admin.get_client("svc:kept").await).await["claims"],
        kept
    );

    // The bound is on the serialized object: 4096 bytes pass, 4097 do not.
    let exactly = json!({"k": "x".repeat(4088)});
    assert_eq!(exactly.to_string().len(), 4096);
    let response = admin
        .update_client("svc:kept", json!({"claims": exactly}))
        .await;
    assert_eq!(response.status(), 200, "4096 bytes");
    let response = admin
        .update_client("svc:kept", json!({"claims": {"k": "x".repeat(4089)}}))
        .await;
    assert_eq!(response.status(), 400, "4097 bytes");
    let mut longest_name = json!({});
    longest_name["k".repeat(256).as_str()] = json!(1);
    let response = admin
        .update_client("svc:kept", json!({"claims": longest_name}))
        .await;
    assert_eq!(response.status(), 200, "a 256-character name");

    let mut too_long_name = json!({});
    too_long_name["k".repeat(257).as_str()] = json!(1);
    for (case, claims) in [
        ("5 KiB", json!({"blob": "x".repeat(5 * 1024)})),
        ("an array", json!(["tenant"])),
        ("a string", json!("acme")),
        ("a number", json!(3)),
        ("an empty name", json!({"": 1})),
        ("a 257-character name", too_long_name),
    ] {
        let response = admin
            .create_client(json!({"client_id": "svc:bad", "scopes": ["a"], "claims": claims}))
            .await;
        assert_eq!(response.status(), 400, "{case}");
    }
    assert_eq!(admin.get_client("svc:bad").await.status(), 404);

    for (name, claim) in [
        ("iss", "iss=\"https://evil.example\""),
        ("cnf", "cnf={\"jkt\":\"x\"}"),
        ("client_id", "client_id=\"other\""),
    ] {
        let output = app.cli(
            &[
                "client",
                "create",
                "svc:cli-bad",
                "--scope",
                "a",
                "--claim",
                claim,
            ],
            None,
        );
        assert_eq!(output.status.code(), Some(2), "create with {name}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(names(&stderr, name), "names {name}: {stderr}");
        let output = app.cli(&["client", "update", "svc:kept", "--claim", claim], None);
        assert_eq!(output.status.code(), Some(2), "update with {name}");
    }
    let blob = format!("blob=\"{}\"", "x".repeat(5 * 1024));
    let output = app.cli(&["client", "create", "svc:cli-bad", "--claim", &blob], None);
    assert_eq!(output.status.code(), Some(2), "5 KiB through the CLI");
    let missing = app.cli(&["client", "show", "svc:cli-bad"], None);
    assert_eq!(missing.status.code(), Some(1), "no refused client was made");
}

async fn a_quota_counts_issued_tokens_only(app: TestApp) {
    let token = app.admin_token().await;
    let admin = app.admin(Some(&token));
    for bad in [
        json!("0/min"),
        json!("5/day"),
        json!("x"),
        json!("3"),
        json!("-1/h"),
        json!(5),
    ] {
        let response = admin
            .create_client(json!({"client_id": "svc:bad-quota", "token_quota": bad}))
            .await;
        assert_eq!(response.status(), 400, "token_quota {bad}");
    }
    let created = admin
        .create_client(json!({"client_id": "svc:quota", "scopes": ["a"], "token_quota": "3/h"}))
        .await;
    assert_eq!(created.status(), 201);
    let created = json(created).await;
    assert_eq!(created["token_quota"], "3/h");
    let secret = created["client_secret"].as_str().unwrap().to_owned();
    let (other, other_secret) = app.standard_client().await;
    let shown = json(admin.get_client(&other).await).await;
    assert_eq!(
        shown.get("token_quota"),
        Some(&Value::Null),
        "no quota: null"
    );
    inside_one_hour(30).await;

    // Fewer than the throttle's default limit of failures: refused, never counted.
    for _ in 0..3 {
        assert_eq!(app.token_status("svc:quota", "wrong secret").await, 401);
    }
    for remaining in [2, 1, 0] {
        let response = app.token(GRANT, Some(("svc:quota", &secret))).await;
        assert_eq!(response.status(), 200, "a token leaving {remaining}");
        assert_eq!(
            header(&response, "ratelimit-policy"),
            r#""tokens";q=3;w=3600"#
        );
        let (r, t) = remaining_and_reset(&response);
        assert_eq!(r, remaining);
        assert_resets_at_the_hour(t, "RateLimit t");
    }
    let refused = app.token(GRANT, Some(("svc:quota", &secret))).await;
    assert_eq!(refused.status(), 429, "the fourth token of the hour");
    assert_eq!(refused.headers()["cache-control"], "no-store");
    let retry_after: i64 = header(&refused, "retry-after")
        .parse()
        .expect("delay-seconds");
    assert_resets_at_the_hour(retry_after, "Retry-After");
    assert_eq!(
        header(&refused, "ratelimit-policy"),
        r#""tokens";q=3;w=3600"#
    );
    let (r, t) = remaining_and_reset(&refused);
    assert_eq!(r, 0);
    assert_resets_at_the_hour(t, "RateLimit t of the 429");
    let body = json(refused).await;
    assert_eq!(body["error"], "temporarily_unavailable");
    assert!(body["error_description"].is_string());

    // Whoever lacks the secret learns nothing of the quota.
    assert_eq!(app.token_status("svc:quota", "wrong secret").await, 401);
    assert_eq!(
        app.token_status(&other, &other_secret).await,
        200,
        "others are not limited"
    );

    // Refusals were not counted: a larger quota leaves exactly one more.
    let raised = admin
        .update_client("svc:quota", json!({"token_quota": "4/h"}))
        .await;
    assert_eq!(json(raised).await["token_quota"], "4/h");
    let response = app.token(GRANT, Some(("svc:quota", &secret))).await;
    assert_eq!(response.status(), 200, "the fourth of 4/h");
    assert_eq!(
        header(&response, "ratelimit-policy"),
        r#""tokens";q=4;w=3600"#
    );
    assert_eq!(remaining_and_reset(&response).0, 0);
    assert_eq!(app.token_status("svc:quota", &secret).await, 429);

    let lifted = admin
        .update_client("svc:quota", json!({"token_quota": null}))
        .await;
    assert!(json(lifted).await["token_quota"].is_null());
    for n in 0..3 {
        assert_eq!(
            app.token_status("svc:quota", &secret).await,
            200,
            "unlimited, token {n}"
        );
    }
}

/// Simultaneous requests cannot all read "one left": exactly the quota is issued.
async fn a_quota_holds_under_a_burst(app: TestApp) {
    let created = app.cli_json(&[
        "client",
        "create",
        "svc:burst",
        "--scope",
        "a",
        "--token-quota",
        "4/h",
    ]);
    assert_eq!(created["token_quota"], "4/h");
    let secret = created["client_secret"].as_str().unwrap().to_owned();
    inside_one_hour(60).await;
    let requests: Vec<_> = (0..10)
        .map(|_| {
            let (http, url, secret) = (app.http.clone(), app.url("/token"), secret.clone());
            tokio::spawn(async move {
                let response = post_form(&http, &url, GRANT, Some(("svc:burst", &secret))).await;
                response.status().as_u16()
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for request in requests {
        statuses.push(request.await.unwrap());
    }
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 200, 200, 200, 429, 429, 429, 429, 429, 429]);

    for bad in ["0/min", "5/day", "x", "/h"] {
        let output = app.cli(
            &["client", "update", "svc:burst", "--token-quota", bad],
            None,
        );
        assert_eq!(output.status.code(), Some(2), "--token-quota {bad}");
    }
    let cleared = app.cli_json(&["client", "update", "svc:burst", "--token-quota", "none"]);
    assert!(cleared["token_quota"].is_null(), "{cleared}");
    let lifted =
        within_a_second(|| async { app.token_status("svc:burst", &secret).await == 200 }).await;
    assert!(
        lifted,
        "the CLI's `none` reaches the server within a second"
    );
    let minute = app.cli_json(&["client", "update", "svc:burst", "--token-quota", "100/min"]);
    assert_eq!(minute["token_quota"], "100/min");
    let shown = app.cli_json(&["client", "show", "svc:burst"]);
    assert_eq!(shown["token_quota"], "100/min");
}

/// Two instances on one Postgres database count against one quota; lifting
/// it on one reaches both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quota_is_shared_by_instances_on_postgres() {
    let Some(app) = TestApp::spawn(Backend::Postgres).await else {
        return;
    };
    let other = app
        .another_instance(&[("TOKENMINT_ISSUER", &app.issuer)])
        .await;
    let token = app.admin_token().await;
    let admin = app.admin(Some(&token));
    let created = admin
        .create_client(json!({"client_id": "svc:shared", "scopes": ["a"], "token_quota": "5/h"}))
        .await;
    assert_eq!(created.status(), 201);
    let secret = json(created).await["client_secret"]
        .as_str()
        .unwrap()
        .to_owned();
    inside_one_hour(30).await;
    let urls = [app.url("/token"), format!("{}/token", other.address)];
    let mut statuses = Vec::new();
    for i in 0..10 {
        let response = post_form(
            &app.http,
            &urls[i % 2],
            GRANT,
            Some(("svc:shared", &secret)),
        )
        .await;
        statuses.push(response.status().as_u16());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        statuses,
        [200, 200, 200, 200, 200, 429, 429, 429, 429, 429],
        "five tokens in all, whichever instance issued them"
    );

    let lifted = admin
        .update_client("svc:shared", json!({"token_quota": null}))
        .await;
    assert_eq!(lifted.status(), 200);
    for url in &urls {
        let served = within_a_second(|| async {
            post_form(&app.http, url, GRANT, Some(("svc:shared", &secret)))
                .await
                .status()
                == 200
        })
        .await;
        assert!(served, "{url}: the lifted quota is seen within a second");
    }
}
