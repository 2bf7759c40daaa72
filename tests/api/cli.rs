//! The `tokenmint client …` commands, run as the real binary against the
//! same store as a running server.

use serde_json::Value;

use crate::helpers::{TestApp, both_stores, json};

both_stores!(
    cli_client_lifecycle,
    cli_imports_a_secret_and_reports_usage_errors
);

const GRANT: &str = "grant_type=client_credentials";

/// Whether the CLI's change reaches the server within a second.
async fn status_within_a_second(app: &TestApp, secret: &str, want: u16) -> bool {
    crate::helpers::within_a_second(|| async {
        app.token_status("svc:orders+v1", secret).await == want
    })
    .await
}

fn stdout_json(output: &std::process::Output, case: &str) -> Value {
    assert!(
        output.status.success(),
        "{case}: exit {:?}, stderr: {}",
        output.status.code(),
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("{case}: stdout is JSON ({e})"))
}

async fn cli_client_lifecycle(app: TestApp) {
    let created = stdout_json(
        &app.cli(
            &[
                "client",
                "create",
                "svc:orders+v1",
                "--scope",
                "orders:read orders:write",
                "--audience",
                "https://orders.example",
                "--json",
            ],
            None,
        ),
        "create",
    );
    assert_eq!(created["client_id"], "svc:orders+v1");
    let secret = created["client_secret"]
        .as_str()
        .expect("create --json prints the secret")
        .to_owned();
    assert!(secret.len() >= 43, "at least 256 bits of base64url");
    assert_eq!(created["default_audience"], "https://orders.example");

    let response = app.token(GRANT, Some(("svc:orders+v1", &secret))).await;
    assert_eq!(
        response.status(),
        200,
        "the CLI's client gets a token from the server"
    );
    assert_eq!(json(response).await["scope"], "orders:read orders:write");

    let list = stdout_json(&app.cli(&["client", "list", "--json"], None), "list");
    assert_eq!(list.as_array().map(Vec::len), Some(1), "list");
    let listed = list.to_string();
    assert!(
        !listed.contains("argon2") && !listed.contains(&secret),
        "no hash or secret in list output"
    );

    let updated = stdout_json(
        &app.cli(
            &[
                "client",
                "update",
                "svc:orders+v1",
                "--scope",
                "orders:read",
                "--ttl",
                "10m",
                "--json",
            ],
            None,
        ),
        "update",
    );
    assert_eq!(updated["scopes"], serde_json::json!(["orders:read"]));
    assert_eq!(
        updated["default_scopes"],
        serde_json::json!(["orders:read"]),
        "defaults narrow with scopes"
    );
    assert_eq!(updated["token_ttl"], 600);
    // The CLI is another process: the server sees its changes within a
    // second, not necessarily at once.
    let seen = crate::helpers::within_a_second(|| async {
        json(app.token(GRANT, Some(("svc:orders+v1", &secret))).await).await["expires_in"] == 600
    })
    .await;
    assert!(seen, "the server sees the update within a second");

    let disabled = stdout_json(
        &app.cli(&["client", "disable", "svc:orders+v1", "--json"], None),
        "disable",
    );
    assert_eq!(disabled["enabled"], false);
    assert!(
        status_within_a_second(&app, &secret, 401).await,
        "disabled through the CLI"
    );
    stdout_json(
        &app.cli(&["client", "enable", "svc:orders+v1", "--json"], None),
        "enable",
    );
    assert!(
        status_within_a_second(&app, &secret, 200).await,
        "enabled again"
    );

    let human = app.cli(&["client", "show", "svc:orders+v1"], None);
    assert!(human.status.success(), "show");
    assert!(
        String::from_utf8_lossy(&human.stdout).contains("token_ttl:        600s"),
        "human-readable show"
    );

    stdout_json(
        &app.cli(&["client", "delete", "svc:orders+v1", "--json"], None),
        "delete",
    );
    assert!(
        status_within_a_second(&app, &secret, 401).await,
        "deleted through the CLI"
    );
    let missing = app.cli(&["client", "show", "svc:orders+v1"], None);
    assert_eq!(
        missing.status.code(),
        Some(1),
        "show of a deleted client fails"
    );
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no such client 'svc:orders+v1'"));
}

async fn cli_imports_a_secret_and_reports_usage_errors(app: TestApp) {
    let imported = "s3cr:t%+ wörd of a legacy server";
    let created = stdout_json(
        &app.cli(
            &[
                "client",
                "create",
                "legacy/svc",
                "--scope",
                "a",
                "--secret-stdin",
                "--json",
            ],
            Some(&format!("{imported}\n")),
        ),
        "create --secret-stdin",
    );
    assert!(
        created.get("client_secret").is_none(),
        "an imported secret is never echoed: {created}"
    );
    let response = app.token(GRANT, Some(("legacy/svc", imported))).await;
    assert_eq!(
        response.status(),
        200,
        "the imported secret is kept (without the newline) and works over Basic"
    );
    let human = app.cli(
        &["client", "create", "legacy/two", "--secret-stdin"],
        Some(imported),
    );
    assert!(human.status.success());
    let printed = String::from_utf8_lossy(&human.stdout);
    assert!(
        !printed.contains(imported),
        "not in the human output either: {printed}"
    );

    // Weak, over-long and padded secrets are refused whole, never cut.
    let long = "x1".repeat(513);
    for (case, input) in [
        ("one letter", "a"),
        ("a space", " "),
        ("repetitive", "aaaaaaaaaaaaaaaaaaaaaaaa"),
        ("short", "Abc123!xyz"),
        ("over 1024 bytes", long.as_str()),
        ("leading space", " s3cr:t%+ wörd of a legacy"),
    ] {
        let output = app.cli(&["client", "create", "weak", "--secret-stdin"], Some(input));
        assert_eq!(output.status.code(), Some(2), "{case}: refused as usage");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains("client_secret"),
            "{case}: names the field: {stderr}"
        );
        assert!(
            input.trim().len() < 8 || !stderr.contains(input.trim()),
            "{case}: the message does not quote the secret"
        );
    }
    assert_eq!(
        app.cli(&["client", "show", "weak"], None).status.code(),
        Some(1),
        "no client was made from a refused secret"
    );

    let duplicate = app.cli(&["client", "create", "legacy/svc"], None);
    assert_eq!(duplicate.status.code(), Some(1), "duplicate id");
    assert!(String::from_utf8_lossy(&duplicate.stderr).contains("already exists"));

    for (case, args) in [
        ("id with a space", &["client", "create", "bad id"][..]),
        (
            "malformed scope",
            &["client", "create", "x", "--scope", "a\"b"],
        ),
        (
            "ttl out of range",
            &["client", "create", "x", "--ttl", "999999"],
        ),
        (
            "default scope not allowed",
            &[
                "client",
                "create",
                "x",
                "--scope",
                "a",
                "--default-scope",
                "b",
            ],
        ),
        ("unknown flag", &["client", "create", "x", "--nope"]),
        ("missing id", &["client", "show"]),
    ] {
        let output = app.cli(args, None);
        assert_eq!(output.status.code(), Some(2), "{case}: usage error exits 2");
        assert!(!output.stderr.is_empty(), "{case}: says why");
    }
    let list = stdout_json(&app.cli(&["client", "list", "--json"], None), "list");
    assert_eq!(
        list.as_array().map(Vec::len),
        Some(2),
        "failed creates left nothing behind"
    );
}
