//! `tokenmint apply`: the clients and issuers a TOML file declares are made
//! so — planned, applied all or nothing, idempotent, deleting only with
//! --prune — by the CLI, and by `serve` at start (TOKENMINT_APPLY_FILE).

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokenmint::clock::unix_now;
use tokenmint::crypto::random_token;

use crate::helpers::{
    ServerProcess, TempDir, TestApp, both_stores, json, post_form, run_binary, within_a_second,
};
use crate::jose::{TestKey, decode_claims};

both_stores!(
    apply_creates_clients_and_issuers,
    a_second_apply_changes_nothing,
    a_changed_file_is_planned_then_applied,
    clients_missing_from_the_file_are_deleted_only_with_prune,
    an_invalid_file_changes_nothing,
    serve_applies_the_file_before_listening,
    the_example_file_applies,
);

const GRANT: &str = "grant_type=client_credentials";
/// Not a TOKENMINT_ name: any variable can hold a secret.
const SECRET_ENV: &str = "PAYMENTS_CLIENT_SECRET";
const WORKER: &str = "spiffe://example.org/ns/jobs/sa/worker";

fn secret() -> String {
    format!("s-{}", random_token::<24>().unwrap())
}

/// The `orders` entry's settings.
fn orders(scopes: &str, tier: u32, quota: &str) -> String {
    format!(
        "scopes = {scopes}\naudiences = [\"https://orders.example\"]\ntoken_ttl = \"10m\"\n\
         claims = {{ tenant = \"acme\", tier = {tier} }}\ntoken_quota = \"{quota}\""
    )
}

/// What most tests declare: `orders` (secret_file, claims, quota),
/// `payments` (secret_env), `reports` (a generated secret) and `worker`,
/// federated through the issuer `mesh` whose keys are a file.
struct Estate {
    dir: TempDir,
    manifest: String,
    payments_secret: String,
    mesh_key: TestKey,
}

impl Estate {
    fn new() -> Self {
        let dir = TempDir::new();
        let mesh_key = TestKey::es256();
        let jwks = mesh_key.jwks("spire-1").to_string();
        std::fs::write(dir.path().join("mesh.jwks.json"), jwks).unwrap();
        let manifest = dir.path().join("tokenmint.toml").display().to_string();
        let estate = Self {
            dir,
            manifest,
            payments_secret: secret(),
            mesh_key,
        };
        estate.set_orders_secret(&secret());
        estate.declare(&orders(r#"["orders:read", "orders:write"]"#, 3, "100/min"));
        estate
    }

    fn orders_secret_file(&self) -> PathBuf {
        self.dir.path().join("orders.secret")
    }

    fn orders_secret(&self) -> String {
        std::fs::read_to_string(self.orders_secret_file()).unwrap()
    }

    fn set_orders_secret(&self, secret: &str) {
        std::fs::write(self.orders_secret_file(), secret).unwrap();
    }

    fn declare(&self, orders: &str) {
        let dir = self.dir.path().display();
        let text = format!(
            r#"
[[issuer]]
name = "mesh"
issuer = "spiffe://example.org"
jwks_file = '{dir}/mesh.jwks.json'

[[client]]
id = "orders"
{orders}
secret_file = '{dir}/orders.secret'

[[client]]
id = "payments"
scopes = ["payments:read"]
secret_env = "{SECRET_ENV}"

[[client]]
id = "reports"
scopes = ["reports:read"]

[[client]]
id = "worker"
scopes = ["jobs:run"]
federated = ["mesh={WORKER}"]
"#
        );
        std::fs::write(&self.manifest, text).unwrap();
    }

    fn apply(&self, app: &TestApp, flags: &[&str]) -> Output {
        let mut args = vec!["apply", "-f", self.manifest.as_str()];
        args.extend_from_slice(flags);
        let mut env = app.env.clone();
        env.push((SECRET_ENV.into(), self.payments_secret.clone()));
        run_binary(&args, &env, None)
    }

    /// A JWT-SVID of the worker, signed with the key in the file.
    fn svid(&self, audience: &str) -> String {
        let now = unix_now();
        self.mesh_key.sign(
            &json!({"alg": "ES256", "kid": "spire-1", "typ": "JWT"}),
            &json!({"sub": WORKER, "aud": [audience], "exp": now + 300, "iat": now}),
        )
    }
}

/// Asserts exit 0; what was printed.
fn succeeded(output: &Output, case: &str) -> String {
    assert!(
        output.status.success(),
        "{case}: exit {:?}\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn applied_json(output: &Output, case: &str) -> Value {
    serde_json::from_str(&succeeded(output, case)).expect("apply --json prints JSON")
}

fn has_line(printed: &str, line: &str) -> bool {
    printed.lines().any(|l| l.trim() == line)
}

fn sorted(names: &Value) -> Vec<String> {
    let mut names: Vec<String> = names
        .as_array()
        .unwrap_or_else(|| panic!("an array: {names}"))
        .iter()
        .map(|n| n.as_str().unwrap().to_owned())
        .collect();
    names.sort();
    names
}

fn trail(app: &TestApp) -> Vec<Value> {
    app.cli_json(&["audit", "list", "--limit", "200"])
        .as_array()
        .unwrap()
        .clone()
}

fn exists(app: &TestApp, id: &str) -> bool {
    match app.cli(&["client", "show", id], None).status.code() {
        Some(0) => true,
        Some(1) => false,
        other => panic!("client show {id}: exit {other:?}"),
    }
}

async fn apply_creates_clients_and_issuers(app: TestApp) {
    let estate = Estate::new();
    let printed = succeeded(&estate.apply(&app, &[]), "apply");
    for line in [
        "create issuer mesh",
        "create client orders",
        "create client payments",
        "create client reports",
        "create client worker",
        "5 created, 0 changed, 0 deleted, 0 unchanged",
    ] {
        assert!(has_line(&printed, line), "{line:?} in:\n{printed}");
    }
    let generated = printed
        .lines()
        .find_map(|l| l.trim().strip_prefix("client reports secret: "))
        .expect("the generated secret is printed")
        .trim()
        .to_owned();
    assert!(
        !printed.contains(&estate.orders_secret()) && !printed.contains(&estate.payments_secret),
        "imported secrets are never printed"
    );

    let shown = app.cli_json(&["client", "show", "orders"]);
    assert_eq!(shown["scopes"], json!(["orders:read", "orders:write"]));
    assert_eq!(shown["audiences"], json!(["https://orders.example"]));
    assert_eq!(shown["token_ttl"], 600);
    assert_eq!(shown["claims"], json!({"tenant": "acme", "tier": 3}));
    assert_eq!(shown["token_quota"], "100/min");
    let issuer = app.cli_json(&["issuer", "show", "mesh"]);
    assert_eq!(issuer["key_source"], "jwks");
    assert_eq!(issuer["issuer"], "spiffe://example.org");
    let worker = app.cli_json(&["client", "show", "worker"]);
    assert_eq!(worker["federated_identities"][0]["subject"], WORKER);

    let response = app
        .token(GRANT, Some(("orders", &estate.orders_secret())))
        .await;
    assert_eq!(response.status(), 200, "the secret from secret_file");
    assert_eq!(
        response.headers()["ratelimit-policy"],
        r#""tokens";q=100;w=60"#
    );
    let body = json(response).await;
    assert_eq!(body["expires_in"], 600);
    let claims = decode_claims(body["access_token"].as_str().unwrap());
    assert_eq!(claims["tenant"], "acme");
    assert_eq!(claims["tier"], 3);
    assert_eq!(claims["aud"], "https://orders.example");
    let payments = app.token_status("payments", &estate.payments_secret).await;
    assert_eq!(payments, 200, "the secret from secret_env");
    assert_eq!(
        app.token_status("reports", &generated).await,
        200,
        "the printed secret"
    );
    let federated = within_a_second(|| async {
        let svid = estate.svid(&app.issuer);
        app.with_assertion("/token", &svid, &[]).await.status() == 200
    })
    .await;
    assert!(federated, "a JWT-SVID checked with the keys of jwks_file");
}

async fn a_second_apply_changes_nothing(app: TestApp) {
    let estate = Estate::new();
    let everything = ["issuer:mesh", "orders", "payments", "reports", "worker"];
    let first = applied_json(&estate.apply(&app, &["--json"]), "first apply");
    assert_eq!(sorted(&first["created"]), everything);
    assert_eq!(first["dry_run"], false);
    let secrets = first["secrets"].as_object().expect("secrets");
    let printed_for: Vec<String> = secrets.keys().cloned().collect();
    assert_eq!(
        printed_for,
        ["reports"],
        "only the generated secret is printed"
    );
    let generated = secrets["reports"].as_str().unwrap().to_owned();
    let recorded = trail(&app);
    let mut created: Vec<&str> = recorded
        .iter()
        .filter(|e| e["action"] == "client.create")
        .map(|e| {
            let actor = e["actor"].as_str().unwrap();
            assert!(
                actor.starts_with("apply:") && actor.ends_with("tokenmint.toml"),
                "{e}"
            );
            e["target"].as_str().unwrap()
        })
        .collect();
    created.sort_unstable();
    assert_eq!(created, ["orders", "payments", "reports", "worker"]);
    assert!(
        recorded
            .iter()
            .any(|e| e["action"] == "issuer.add" && e["target"] == "issuer:mesh")
    );

    let printed = succeeded(&estate.apply(&app, &[]), "second apply");
    assert!(has_line(&printed, "no changes"), "{printed}");
    assert!(
        !printed.contains("create") && !printed.contains(&generated),
        "{printed}"
    );
    let again = applied_json(&estate.apply(&app, &["--json"]), "third apply");
    assert_eq!(sorted(&again["unchanged"]), everything);
    for key in ["created", "changed", "deleted"] {
        assert_eq!(again[key], json!([]), "{key}");
    }
    assert!(
        again["secrets"].as_object().is_none_or(|s| s.is_empty()),
        "{again}"
    );
    assert_eq!(
        trail(&app).len(),
        recorded.len(),
        "re-applying records nothing"
    );
    assert_eq!(
        app.token_status("reports", &generated).await,
        200,
        "the secret is kept"
    );
    assert_eq!(
        app.token_status("orders", &estate.orders_secret()).await,
        200
    );
}

async fn a_changed_file_is_planned_then_applied(app: TestApp) {
    let estate = Estate::new();
    succeeded(&estate.apply(&app, &[]), "first apply");
    let old_secret = estate.orders_secret();
    assert_eq!(app.token_status("orders", &old_secret).await, 200);
    let recorded = trail(&app).len();

    estate.declare(&orders(r#"["orders:read"]"#, 3, "100/min"));
    let plan = succeeded(&estate.apply(&app, &["--dry-run"]), "dry run");
    assert!(
        has_line(&plan, "would change client orders: scopes, default_scopes"),
        "{plan}"
    );
    assert!(
        !plan.lines().any(|l| l.trim().starts_with("change ")),
        "{plan}"
    );
    let planned = applied_json(
        &estate.apply(&app, &["--dry-run", "--json"]),
        "dry run --json",
    );
    assert_eq!(planned["dry_run"], true);
    assert_eq!(
        planned["changed"],
        json!([{"id": "orders", "fields": ["scopes", "default_scopes"]}])
    );
    let shown = app.cli_json(&["client", "show", "orders"]);
    assert_eq!(
        shown["scopes"],
        json!(["orders:read", "orders:write"]),
        "a dry run writes nothing"
    );
    assert_eq!(trail(&app).len(), recorded);

    let printed = succeeded(&estate.apply(&app, &[]), "apply");
    assert!(
        has_line(&printed, "change client orders: scopes, default_scopes"),
        "{printed}"
    );
    assert!(
        has_line(&printed, "0 created, 1 changed, 0 deleted, 4 unchanged"),
        "{printed}"
    );
    assert_eq!(
        app.cli_json(&["client", "show", "orders"])["scopes"],
        json!(["orders:read"])
    );
    assert_eq!(trail(&app).len(), recorded + 1, "one change, one entry");
    let narrowed = within_a_second(|| async {
        let token = app.token(GRANT, Some(("orders", &old_secret))).await;
        json(token).await["scope"] == "orders:read"
    })
    .await;
    assert!(narrowed, "the server issues what the file now says");

    // A new secret in the file replaces the old one.
    let new_secret = secret();
    estate.set_orders_secret(&new_secret);
    estate.declare(&orders(r#"["orders:read"]"#, 4, "50/min"));
    let changed = applied_json(&estate.apply(&app, &["--json"]), "new secret");
    assert_eq!(
        changed["changed"].as_array().map(Vec::len),
        Some(1),
        "{changed}"
    );
    assert_eq!(changed["changed"][0]["id"], "orders");
    assert_eq!(
        sorted(&changed["changed"][0]["fields"]),
        ["claims", "secret", "token_quota"]
    );
    assert!(!changed.to_string().contains(&new_secret), "never echoed");
    let cut = within_a_second(|| async { app.token_status("orders", &old_secret).await == 401 });
    assert!(cut.await, "the old secret stops working");
    let claims = decode_claims(&app.token_for("orders", &new_secret).await);
    assert_eq!(claims["tier"], 4);
    let recorded = serde_json::to_string(&trail(&app)).unwrap();
    for leaked in [old_secret.as_str(), new_secret.as_str(), "$argon2"] {
        assert!(
            !recorded.contains(leaked),
            "the audit trail holds {leaked:?}"
        );
    }
}

async fn clients_missing_from_the_file_are_deleted_only_with_prune(app: TestApp) {
    let dir = TempDir::new();
    let manifest = dir.path().join("clients.toml");
    let declare = |ids: &[&str]| {
        let text: String = ids
            .iter()
            .map(|id| format!("[[client]]\nid = \"{id}\"\nscopes = [\"a\"]\n\n"))
            .collect();
        std::fs::write(&manifest, text).unwrap();
    };
    let apply = |flags: &[&str]| {
        let mut args = vec!["apply", "-f", manifest.to_str().unwrap()];
        args.extend_from_slice(flags);
        app.cli(&args, None)
    };
    declare(&["keep", "drop"]);
    let first = applied_json(&apply(&["--json"]), "first apply");
    let drop_secret = first["secrets"]["drop"].as_str().unwrap().to_owned();
    assert_eq!(app.token_status("drop", &drop_secret).await, 200);
    succeeded(
        &app.cli(&["client", "create", "manual", "--scope", "a"], None),
        "manual",
    );

    declare(&["keep"]);
    let kept = succeeded(&apply(&[]), "without --prune");
    assert!(
        !kept.lines().any(|l| l.trim().starts_with("delete client")),
        "{kept}"
    );
    assert!(
        exists(&app, "drop") && exists(&app, "manual"),
        "nothing deleted"
    );
    let plan = succeeded(&apply(&["--prune", "--dry-run"]), "planned prune");
    assert!(has_line(&plan, "would delete client drop"), "{plan}");
    assert!(has_line(&plan, "would delete client manual"), "{plan}");
    assert!(
        exists(&app, "drop") && exists(&app, "manual"),
        "a dry run deletes nothing"
    );

    let pruned = applied_json(&apply(&["--prune", "--json"]), "prune");
    assert_eq!(sorted(&pruned["deleted"]), ["drop", "manual"]);
    assert_eq!(sorted(&pruned["unchanged"]), ["keep"]);
    assert!(!exists(&app, "drop") && !exists(&app, "manual") && exists(&app, "keep"));
    let refused = within_a_second(|| async { app.token_status("drop", &drop_secret).await == 401 });
    assert!(refused.await, "a pruned client gets no more tokens");
    let deleted = app.cli_json(&["audit", "list", "--client", "drop"]);
    assert_eq!(deleted[0]["action"], "client.delete");
    assert!(deleted[0]["actor"].as_str().unwrap().starts_with("apply:"));
}

async fn an_invalid_file_changes_nothing(app: TestApp) {
    let dir = TempDir::new();
    let path = dir.path().display().to_string();
    std::fs::write(dir.path().join("alpha.secret"), secret()).unwrap();
    let manifest = dir.path().join("tokenmint.toml");
    let client =
        |id: &str, extra: &str| format!("[[client]]\nid = \"{id}\"\nscopes = [\"a\"]\n{extra}\n\n");
    let alpha = format!("secret_file = '{path}/alpha.secret'");
    std::fs::write(&manifest, client("alpha", &alpha) + &client("beta", "")).unwrap();
    let apply = || app.cli(&["apply", "-f", manifest.to_str().unwrap()], None);
    succeeded(&apply(), "a valid file");
    let recorded = trail(&app).len();

    // The 3rd entry is bad; the 1st would change alpha, the 2nd create delta.
    let before_it = client("alpha", &format!("{alpha}\ntoken_ttl = 60")) + &client("delta", "");
    let missing = format!("secret_file = '{path}/nowhere.secret'");
    let unset = "secret_env = \"TOKENMINT_TEST_UNSET\"";
    for (case, third, why) in [
        (
            "a reserved claim",
            client("gamma", "claims = { iss = \"x\" }"),
            &["iss"][..],
        ),
        (
            "a missing secret_file",
            client("gamma", &missing),
            &["nowhere.secret"],
        ),
        (
            "an unset secret_env",
            client("gamma", unset),
            &["TOKENMINT_TEST_UNSET"],
        ),
        (
            "a bad quota",
            client("gamma", "token_quota = \"5/day\""),
            &["token_quota", "5/day"],
        ),
        // A misspelt key would otherwise make a client without its scopes.
        (
            "an unknown key",
            client("gamma", "scope = [\"b\"]"),
            &["scope"],
        ),
    ] {
        std::fs::write(&manifest, before_it.clone() + &third).unwrap();
        let output = apply();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{case}: {stderr}");
        assert!(
            stderr.contains("gamma"),
            "{case}: names the entry: {stderr}"
        );
        assert!(
            why.iter().any(|w| stderr.contains(w)),
            "{case}: says why: {stderr}"
        );
        assert!(
            !exists(&app, "delta") && !exists(&app, "gamma"),
            "{case}: nothing created"
        );
        let shown = app.cli_json(&["client", "show", "alpha"]);
        assert!(shown["token_ttl"].is_null(), "{case}: alpha unchanged");
        assert_eq!(trail(&app).len(), recorded, "{case}: nothing recorded");
    }
    std::fs::write(&manifest, "[[client]\nid = \"x\"\n").unwrap();
    let output = apply();
    assert_eq!(output.status.code(), Some(2), "not TOML");
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("line"),
        "names the line"
    );
}

/// `tokenmint serve` with these settings, expected to exit by itself within
/// 20 s (it is killed, and the test fails, if it does not): its exit code
/// and everything it printed.
fn serve_until_it_exits(env: &[(String, String)]) -> (Option<i32>, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_tokenmint"));
    for (name, _) in std::env::vars() {
        if name.starts_with("TOKENMINT_") || name == "DATABASE_URL" {
            command.env_remove(name);
        }
    }
    command.envs(env.iter().map(|(k, v)| (k, v)));
    command.arg("serve").env("TOKENMINT_LISTEN", "127.0.0.1:0");
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().expect("the tokenmint binary starts");
    let deadline = Instant::now() + Duration::from_secs(20);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let output = child.wait_with_output().unwrap();
            panic!(
                "serve kept running: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let output = child.wait_with_output().unwrap();
    let printed = String::from_utf8_lossy(&output.stderr).into_owned()
        + &String::from_utf8_lossy(&output.stdout);
    (output.status.code(), printed)
}

async fn serve_applies_the_file_before_listening(app: TestApp) {
    let dir = TempDir::new();
    let path = dir.path().display().to_string();
    let boot_secret = secret();
    std::fs::write(dir.path().join("boot.secret"), &boot_secret).unwrap();
    let good = dir.path().join("good.toml");
    let text = format!(
        "[[client]]\nid = \"boot\"\nscopes = [\"a\"]\nsecret_file = '{path}/boot.secret'\n"
    );
    std::fs::write(&good, text).unwrap();
    let mut env = app.env.clone();
    env.push(("TOKENMINT_APPLY_FILE".into(), good.display().to_string()));

    // Every start applies the file; the second finds nothing to do.
    let mut recorded = None;
    for start in ["first", "second"] {
        let server = ServerProcess::start(&env);
        let url = format!("{}/token", server.address);
        let response = post_form(&app.http, &url, GRANT, Some(("boot", &boot_secret))).await;
        assert_eq!(
            response.status(),
            200,
            "{start} start: applied before listening"
        );
        let (code, output) = server.stop();
        assert_eq!(code, Some(0), "{start} start: {output}");
        let now = trail(&app).len();
        assert!(
            recorded.is_none_or(|before| before == now),
            "{start} start: re-applied"
        );
        recorded = Some(now);
    }
    assert!(exists(&app, "boot"));

    let bad = dir.path().join("bad.toml");
    let text = "[[client]]\nid = \"early\"\nscopes = [\"a\"]\n\n\
                [[client]]\nid = \"late\"\nscopes = [\"a\"]\nclaims = { cnf = \"x\" }\n";
    std::fs::write(&bad, text).unwrap();
    let mut env = app.env.clone();
    env.push(("TOKENMINT_APPLY_FILE".into(), bad.display().to_string()));
    let (code, output) = tokio::task::spawn_blocking(move || serve_until_it_exits(&env))
        .await
        .unwrap();
    assert!(
        code.is_some_and(|c| c != 0),
        "a bad file stops serve: {code:?}\n{output}"
    );
    assert!(output.contains("late"), "names the entry: {output}");
    assert!(
        !exists(&app, "early"),
        "nothing of the bad file was applied"
    );
}

/// `config/clients.example.toml`, which the compose file applies at start,
/// applies as it is (its secret read from where the compose file puts it).
async fn the_example_file_applies(app: TestApp) {
    let dir = TempDir::new();
    let secret_path = dir.path().join("orders_secret");
    std::fs::write(&secret_path, format!("{}\n", secret())).unwrap();
    let example = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/clients.example.toml"),
    )
    .unwrap();
    let manifest = dir.path().join("clients.toml");
    let example = example.replace("/run/secrets/orders_secret", secret_path.to_str().unwrap());
    std::fs::write(&manifest, example).unwrap();
    let manifest = manifest.display().to_string();
    let printed = succeeded(
        &run_binary(&["apply", "-f", &manifest], &app.env, None),
        "the example",
    );
    for line in [
        "create issuer k8s",
        "create client orders",
        "create client payments",
        "create client reports",
    ] {
        assert!(has_line(&printed, line), "{line:?} in:\n{printed}");
    }
    let again = succeeded(
        &run_binary(&["apply", "-f", &manifest], &app.env, None),
        "again",
    );
    assert!(has_line(&again, "no changes"), "{again}");
}
