//! A token's authority ends with its grant: revoke-tokens, deletion (a new
//! client with the same id does not revive old tokens), disabling (enabling
//! does not revive them), a scope taken away — at introspection and at the
//! admin API alike.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::decode_header;
use serde_json::{Value, json};
use tokenmint::crypto::signing::negate_s_p256;

use crate::helpers::{TestApp, both_stores, json};

both_stores!(
    revoke_tokens_ends_every_current_token,
    deleting_disabling_and_narrowing_end_old_tokens,
    an_admin_token_loses_its_power_with_the_scope,
    a_revoked_key_ends_its_tokens_and_a_high_s_twin_is_refused,
);

async fn active(app: &TestApp, token: &str, caller: (&str, &str)) -> bool {
    let response = app.introspect(token, Some(caller)).await;
    assert_eq!(response.status(), 200, "introspection answers");
    json(response).await["active"] == true
}

async fn revoke_tokens_ends_every_current_token(app: TestApp) {
    let (rs, rs_secret) = app.standard_client().await;
    let caller = (rs.as_str(), rs_secret.as_str());
    let (id, secret) = app.standard_client().await;
    let first = app.token_for(&id, &secret).await;
    let second = app.token_for(&id, &secret).await;
    assert!(active(&app, &first, caller).await, "live before");

    let shown = app.cli_json(&["client", "revoke-tokens", &id]);
    assert_eq!(shown["client_id"], id.as_str());
    for (case, token) in [("first", &first), ("second", &second)] {
        assert!(
            !active(&app, token, caller).await,
            "{case}: revoked via the CLI"
        );
    }
    // The secret still works, and a new token is live (issued after the cut).
    let after = app.token_for(&id, &secret).await;
    assert!(
        active(&app, &after, caller).await,
        "a token made afterwards"
    );

    // The same through the admin API.
    let admin = admin_token(&app, "ops").await;
    let path = format!("/admin/clients/{id}/revoke-tokens");
    let response = app
        .admin(Some(&admin))
        .send(reqwest::Method::POST, &path, None)
        .await;
    assert_eq!(response.status(), 200, "revoke-tokens via the API");
    assert!(!active(&app, &after, caller).await, "revoked via the API");
    let missing = app
        .admin(Some(&admin))
        .send(
            reqwest::Method::POST,
            "/admin/clients/nobody/revoke-tokens",
            None,
        )
        .await;
    assert_eq!(missing.status(), 404);
}

async fn deleting_disabling_and_narrowing_end_old_tokens(app: TestApp) {
    let (rs, rs_secret) = app.standard_client().await;
    let caller = (rs.as_str(), rs_secret.as_str());

    // Deleted, then made again with the same id (and even the same secret).
    let secret = "an imported secret of sufficient length 0123456789";
    let create = [
        "client",
        "create",
        "reborn",
        "--scope",
        "a",
        "--secret-stdin",
    ];
    assert!(app.cli(&create, Some(secret)).status.success());
    let old = app.token_for("reborn", secret).await;
    assert!(
        app.cli(&["client", "delete", "reborn"], None)
            .status
            .success()
    );
    assert!(app.cli(&create, Some(secret)).status.success());
    assert!(
        !active(&app, &old, caller).await,
        "a new client with the same id does not revive the old one's tokens"
    );
    let new = app.token_for("reborn", secret).await;
    assert!(
        active(&app, &new, caller).await,
        "the new client's own token"
    );

    // Disabled, then enabled again.
    let (id, secret) = app.standard_client().await;
    let before = app.token_for(&id, &secret).await;
    assert!(app.cli(&["client", "disable", &id], None).status.success());
    assert!(app.cli(&["client", "enable", &id], None).status.success());
    assert!(
        !active(&app, &before, caller).await,
        "enabling again does not revive tokens from before the disabling"
    );
    let fresh = app.token_for(&id, &secret).await;
    assert!(
        active(&app, &fresh, caller).await,
        "a token made after enabling"
    );

    // A scope taken away ends the tokens that carry it, and every other
    // current token of the client (none may come back with the scope).
    let with_b = app
        .token_with_body(&id, &secret, "grant_type=client_credentials&scope=a%20b")
        .await;
    let only_a = app.token_for(&id, &secret).await;
    let narrowed = ["client", "update", &id, "--scope", "a c"];
    assert!(app.cli(&narrowed, None).status.success());
    assert!(
        !active(&app, &with_b, caller).await,
        "scope b is no longer the client's"
    );
    assert!(
        !active(&app, &only_a, caller).await,
        "narrowing ends every current token (none may come back with the scope)"
    );
    let after = app.token_for(&id, &secret).await;
    assert!(
        active(&app, &after, caller).await,
        "tokens made afterwards work"
    );
}

/// A token holding the admin scope, for a new admin client `name`.
async fn admin_token(app: &TestApp, name: &str) -> String {
    let created = app.cli_json(&["client", "create", name, "--scope", "tokenmint:admin x"]);
    let secret = created["client_secret"].as_str().unwrap().to_owned();
    app.token_for(name, &secret).await
}

async fn an_admin_token_loses_its_power_with_the_scope(app: TestApp) {
    let token = admin_token(&app, "deployer").await;
    let admin = app.admin(Some(&token));
    assert_eq!(admin.list_clients().await.status(), 200, "an admin token");

    // An operator takes the admin scope away; the token already issued must
    // not be able to give it back.
    let demoted = app.cli_json(&["client", "update", "deployer", "--scope", "x"]);
    assert_eq!(demoted["scopes"], json!(["x"]));
    assert_eq!(
        admin.list_clients().await.status(),
        401,
        "the scope is gone"
    );
    let regain: Value = json!({"scopes": ["tokenmint:admin", "x"]});
    let attempt = admin.update_client("deployer", regain).await;
    assert_eq!(
        attempt.status(),
        401,
        "it cannot give itself the scope back"
    );
    let shown = app.cli_json(&["client", "show", "deployer"]);
    assert_eq!(shown["scopes"], json!(["x"]), "and it did not");

    // Given the scope back by an operator, the old token stays dead.
    app.cli_json(&[
        "client",
        "update",
        "deployer",
        "--scope",
        "tokenmint:admin x",
    ]);
    assert_eq!(
        admin.list_clients().await.status(),
        401,
        "re-granting the scope does not revive the old token"
    );
}

async fn a_revoked_key_ends_its_tokens_and_a_high_s_twin_is_refused(app: TestApp) {
    let (rs, rs_secret) = app.standard_client().await;
    let caller = (rs.as_str(), rs_secret.as_str());
    let (id, secret) = app.standard_client().await;
    let token = app.token_for(&id, &secret).await;
    assert!(active(&app, &token, caller).await);

    // ES256 is malleable: (r, n - s) verifies as (r, s). We sign with low s
    // and refuse the high twin.
    let (input, signature) = token.rsplit_once('.').unwrap();
    let mut sig = URL_SAFE_NO_PAD.decode(signature).unwrap();
    negate_s_p256(&mut sig);
    let twin = format!("{input}.{}", URL_SAFE_NO_PAD.encode(&sig));
    assert!(!active(&app, &twin, caller).await, "the high-s twin");

    // Through the admin API the key is withdrawn on this instance at once
    // (the CLI's revocation reaches it with the next key refresh).
    let kid = decode_header(&token).unwrap().kid.unwrap();
    let admin = admin_token(&app, "keykeeper").await;
    let path = format!("/admin/keys/{kid}/revoke");
    let revoked = app
        .admin(Some(&admin))
        .send(reqwest::Method::POST, &path, None)
        .await;
    assert_eq!(revoked.status(), 200, "revoke the key");
    assert_eq!(json(revoked).await["status"], "revoked");
    assert!(
        !active(&app, &token, caller).await,
        "a token signed by a revoked key"
    );
    let jwks = json(
        app.http
            .get(app.url("/.well-known/jwks.json"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    let published: Vec<&str> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    assert!(!published.contains(&kid.as_str()), "gone from the JWKS");
    assert!(!published.is_empty(), "a new key is published");
    let after = app.token_for(&id, &secret).await;
    assert_ne!(
        decode_header(&after).unwrap().kid.unwrap(),
        kid,
        "a new key signs"
    );
    assert!(active(&app, &after, caller).await, "its tokens are active");

    // The admin token was signed by the revoked key too.
    let stale = app.admin(Some(&admin)).list_keys().await;
    assert_eq!(stale.status(), 401, "an admin token of the revoked key");
    let secret = app.cli_json(&["client", "rotate-secret", "keykeeper"])["client_secret"]
        .as_str()
        .unwrap()
        .to_owned();
    let admin = app.token_for("keykeeper", &secret).await;
    let unknown = app
        .admin(Some(&admin))
        .send(reqwest::Method::POST, "/admin/keys/nope/revoke", None)
        .await;
    assert_eq!(unknown.status(), 404, "an unknown kid");
    let cli = app.cli(&["key", "revoke", "nope"], None);
    assert_eq!(cli.status.code(), Some(1), "the CLI, an unknown kid");
}
