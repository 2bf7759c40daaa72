//! `TestApp`: the real server on 127.0.0.1:0 over a fresh store — a new
//! SQLite file, or a new PostgreSQL database that is dropped afterwards.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Mutex;
use std::sync::{Arc, Once};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::Value;
use sqlx::Connection as _;
use tokenmint::admin::{ClientAdmin, NewClient};
use tokenmint::clock::unix_now;
use tokenmint::config::Config;
use tokenmint::crypto::{ClientSecret, SecretHasher, random_token};
use tokenmint::startup::{Application, argon2_hasher};
use tokenmint::store::Store;
use tokio::sync::oneshot;

/// A fixed KEK for tests (every Postgres instance needs one).
pub const TEST_KEK: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Runs each named `async fn(TestApp)` once per store, as
/// `<name>::sqlite` and `<name>::postgres`.
macro_rules! both_stores {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                if let Some(app) = crate::helpers::TestApp::spawn(crate::helpers::Backend::Sqlite).await {
                    super::$name(app).await;
                }
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if let Some(app) = crate::helpers::TestApp::spawn(crate::helpers::Backend::Postgres).await {
                    super::$name(app).await;
                }
            }
        }
    )*};
}
pub(crate) use both_stores;

pub struct TestApp {
    pub address: String,
    pub admin_address: Option<String>,
    pub metrics_address: Option<String>,
    pub issuer: String,
    pub http: reqwest::Client,
    pub store: Arc<dyn Store>,
    pub hasher: SecretHasher,
    /// Environment that points the CLI (or another instance) at this app's store.
    pub env: Vec<(String, String)>,
    server: Instance,
    _database: Option<TestDatabase>,
    _dir: TempDir,
}

/// One running server process-in-a-task; stopped when dropped.
pub struct Instance {
    pub address: String,
    /// `http://…` of the admin listener, when `TOKENMINT_ADMIN_LISTEN` is set.
    pub admin_address: Option<String>,
    /// `http://…` of the metrics listener, when `TOKENMINT_METRICS_LISTEN` is set.
    pub metrics_address: Option<String>,
    pub issuer: String,
    pub store: Arc<dyn Store>,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl Instance {
    /// Builds and starts an `Application` from settings given as environment.
    pub async fn start(env: &[(String, String)]) -> Self {
        let mut env = env.to_vec();
        env.push(("TOKENMINT_LISTEN".to_owned(), "127.0.0.1:0".to_owned()));
        let config = Config::from_sources(None, env).expect("test config is valid");
        let app = Application::build(&config, true)
            .await
            .expect("the application builds");
        let address = format!("http://127.0.0.1:{}", app.port());
        let issuer = app.issuer().to_owned();
        let store = app.store();
        let admin_address = app.admin_address().map(|a| format!("http://{a}"));
        let metrics_address = app.metrics_address().map(|a| format!("http://{a}"));
        let (tx, rx) = oneshot::channel::<()>();
        let server = tokio::spawn(app.run_until_stopped(async move {
            let _ = rx.await;
        }));
        Self {
            address,
            admin_address,
            metrics_address,
            issuer,
            store,
            shutdown: Some(tx),
            server: Some(server),
        }
    }

    /// Graceful stop: in-flight requests finish, then the task ends.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.take() {
            let result = server.await.expect("server task joins");
            result.expect("server stopped cleanly");
        }
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.take() {
            server.abort();
        }
    }
}

impl TestApp {
    /// `None` (with a printed notice) when Postgres is wanted but unreachable
    /// and `TOKENMINT_REQUIRE_POSTGRES` is not `1`.
    pub async fn spawn(backend: Backend) -> Option<Self> {
        Self::spawn_with(backend, &[]).await
    }

    pub async fn spawn_with(backend: Backend, extra_env: &[(&str, &str)]) -> Option<Self> {
        Self::spawn_inner(backend, extra_env, None).await
    }

    /// A Postgres-backed app whose database connections go through
    /// `through` (a proxy the test controls) instead of straight to the server.
    pub async fn spawn_postgres_through(
        through: std::net::SocketAddr,
        extra_env: &[(&str, &str)],
    ) -> Option<Self> {
        Self::spawn_inner(Backend::Postgres, extra_env, Some(through)).await
    }

    async fn spawn_inner(
        backend: Backend,
        extra_env: &[(&str, &str)],
        through: Option<std::net::SocketAddr>,
    ) -> Option<Self> {
        init_test_logging();
        let dir = TempDir::new();
        let (database, mut env) = match backend {
            Backend::Sqlite => (None, vec![]),
            Backend::Postgres => {
                let db = TestDatabase::create().await?;
                let url = match through {
                    Some(addr) => with_host(&db.url, &addr.to_string()),
                    None => db.url.clone(),
                };
                let env = vec![
                    ("DATABASE_URL".to_owned(), url),
                    (
                        "TOKENMINT_KEY_ENCRYPTION_KEY".to_owned(),
                        TEST_KEK.to_owned(),
                    ),
                ];
                (Some(db), env)
            }
        };
        env.push((
            "TOKENMINT_DATA_DIR".to_owned(),
            dir.path().display().to_string(),
        ));
        // Key sets and discovery documents are served by the tests on
        // 127.0.0.1 over plain HTTP (a test that needs the default says so).
        env.push(("TOKENMINT_ALLOW_HTTP_FETCH".to_owned(), "true".to_owned()));
        env.extend(
            extra_env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string())),
        );

        let server = Instance::start(&env).await;
        Some(Self {
            address: server.address.clone(),
            admin_address: server.admin_address.clone(),
            metrics_address: server.metrics_address.clone(),
            issuer: server.issuer.clone(),
            http: reqwest::Client::new(),
            store: server.store.clone(),
            hasher: argon2_hasher().expect("hasher"),
            env,
            server,
            _database: database,
            _dir: dir,
        })
    }

    /// Stops the server and starts a new one on the same store and data
    /// folder, as an operator's restart would.
    pub async fn restart(&mut self) {
        let fresh = Instance::start(&self.env).await;
        let old = std::mem::replace(&mut self.server, fresh);
        old.stop().await;
        self.address = self.server.address.clone();
        self.issuer = self.server.issuer.clone();
        self.store = self.server.store.clone();
    }

    /// Another server sharing this app's store (a second instance behind a
    /// load balancer), with extra settings.
    pub async fn another_instance(&self, extra_env: &[(&str, &str)]) -> Instance {
        let mut env = self.env.clone();
        env.extend(
            extra_env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string())),
        );
        Instance::start(&env).await
    }

    /// The status of a client-credentials token request with Basic credentials.
    pub async fn token_status(&self, id: &str, secret: &str) -> u16 {
        self.token("grant_type=client_credentials", Some((id, secret)))
            .await
            .status()
            .as_u16()
    }

    /// The JSON answer to a client-credentials request with Basic credentials.
    pub async fn token_json(&self, id: &str, secret: &str) -> Value {
        json(
            self.token("grant_type=client_credentials", Some((id, secret)))
                .await,
        )
        .await
    }

    /// The `access_token` of a token request with this form body, asserting
    /// success.
    pub async fn token_with_body(&self, id: &str, secret: &str, body: &str) -> String {
        let response = self.token(body, Some((id, secret))).await;
        assert_eq!(response.status(), 200, "token for {id} ({body})");
        json(response).await["access_token"]
            .as_str()
            .expect("access_token")
            .to_owned()
    }

    /// A token for `id`, asserting success.
    pub async fn token_for(&self, id: &str, secret: &str) -> String {
        let response = self
            .token("grant_type=client_credentials", Some((id, secret)))
            .await;
        assert_eq!(response.status(), 200, "token for {id}");
        json(response).await["access_token"]
            .as_str()
            .expect("access_token")
            .to_owned()
    }

    /// `POST /introspect` of `token` as `caller` (Basic credentials).
    pub async fn introspect(&self, token: &str, caller: Option<(&str, &str)>) -> reqwest::Response {
        let body = form(&[("token", token)]);
        post_form(&self.http, &self.url("/introspect"), &body, caller).await
    }

    /// `POST /revoke` of `token` as `caller` (Basic credentials).
    pub async fn revoke(&self, token: &str, caller: Option<(&str, &str)>) -> reqwest::Response {
        let body = form(&[("token", token)]);
        post_form(&self.http, &self.url("/revoke"), &body, caller).await
    }

    /// The admin API (on its own listener when there is one), as the
    /// holder of `token`.
    pub fn admin<'a>(&'a self, token: Option<&'a str>) -> AdminApi<'a> {
        AdminApi {
            http: &self.http,
            base: self.admin_address.as_deref().unwrap_or(&self.address),
            token,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    /// Creates a client through the same operations the CLI uses.
    pub async fn create_client(&self, new: NewClient) -> (String, String) {
        self.create_client_with_secret(new, None).await
    }

    pub async fn create_client_with_secret(
        &self,
        new: NewClient,
        secret: Option<&str>,
    ) -> (String, String) {
        let admin = ClientAdmin::new(self.store.as_ref(), &self.hasher);
        let imported = secret.map(|s| ClientSecret::new(s.to_owned()));
        let shown = secret.map(str::to_owned);
        let created = admin
            .create(new, imported, unix_now())
            .await
            .expect("client created");
        let secret = created.client_secret.map(|s| s.expose().to_owned());
        (
            created.client.client_id,
            secret.or(shown).expect("a secret"),
        )
    }

    /// A token of a new client `deployer` holding the admin scope.
    pub async fn admin_token(&self) -> String {
        let (id, secret) = self
            .create_client(NewClient {
                client_id: "deployer".into(),
                scopes: vec!["tokenmint:admin".into()],
                ..NewClient::default()
            })
            .await;
        self.token_for(&id, &secret).await
    }

    /// Creates a client that authenticates without a secret (keys or
    /// federated identities); its id.
    pub async fn create_key_client(&self, new: NewClient) -> String {
        let admin = ClientAdmin::new(self.store.as_ref(), &self.hasher);
        let created = admin
            .create(new, None, unix_now())
            .await
            .expect("client created");
        assert!(
            created.client_secret.is_none(),
            "no secret for a key client"
        );
        created.client.client_id
    }

    /// `POST path` authenticated by a client assertion, with more form
    /// fields (and the grant type, at `/token`).
    pub async fn with_assertion(
        &self,
        path: &str,
        assertion: &str,
        extra: &[(&str, &str)],
    ) -> reqwest::Response {
        let mut fields = extra.to_vec();
        if path == "/token" {
            fields.push(("grant_type", "client_credentials"));
        }
        let body = crate::jose::assertion_form(assertion, &fields);
        post_form(&self.http, &self.url(path), &body, None).await
    }

    /// A client with scopes `a b c`, defaults `a`, audiences `https://api.example` and `billing`.
    pub async fn standard_client(&self) -> (String, String) {
        self.create_client(NewClient {
            client_id: format!("svc-{}", random_token::<6>().unwrap()),
            scopes: vec!["a b c".into()],
            default_scopes: Some(vec!["a".into()]),
            audiences: vec!["https://api.example".into(), "billing".into()],
            ..NewClient::default()
        })
        .await
    }

    /// `POST /token` with a raw form body, and Basic credentials if given
    /// (form-urlencoded before base64, RFC 6749 §2.3.1).
    pub async fn token(&self, body: &str, basic: Option<(&str, &str)>) -> reqwest::Response {
        post_form(&self.http, &self.url("/token"), body, basic).await
    }

    /// The metadata document (RFC 8414).
    pub async fn metadata(&self) -> Value {
        let url = self.url("/.well-known/oauth-authorization-server");
        json(self.http.get(url).send().await.unwrap()).await
    }

    /// The public JWK of `kid`, as stored (what the JWKS will publish).
    pub async fn public_jwk(&self, kid: &str) -> jsonwebtoken::jwk::Jwk {
        let keys = self.store.list_signing_keys().await.expect("keys listed");
        let key = keys
            .iter()
            .find(|k| k.kid == kid)
            .expect("kid is in the store");
        serde_json::from_str(&key.public_jwk).expect("public jwk parses")
    }

    /// This app's settings without the variable `name`.
    pub fn env_without(&self, name: &str) -> Vec<(String, String)> {
        self.env
            .iter()
            .filter(|(k, _)| k != name)
            .cloned()
            .collect()
    }

    /// Runs the CLI against this app's store with `--json`, asserting that it
    /// succeeds; what it printed, as JSON.
    pub fn cli_json(&self, args: &[&str]) -> Value {
        let mut args = args.to_vec();
        args.push("--json");
        let output = self.cli(&args, None);
        assert!(
            output.status.success(),
            "tokenmint {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr)
        );
        serde_json::from_slice(&output.stdout).expect("the CLI printed JSON")
    }

    /// Runs the `tokenmint` binary against this app's store.
    pub fn cli(&self, args: &[&str], stdin: Option<&str>) -> Output {
        run_binary(args, &self.env, stdin)
    }
}

/// Polls `check` every 50 ms until it returns `Some`, for at most `within`.
pub async fn eventually<T, F, Fut>(within: Duration, mut check: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + within;
    loop {
        if let Some(value) = check().await {
            return Some(value);
        }
        if Instant::now() > deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Whether `holds` becomes true within a second — the bound ARCHITECTURE.md
/// sets for a change made on another instance (or by the CLI) to reach this one.
pub async fn within_a_second<F, Fut>(mut holds: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    eventually(Duration::from_secs(1), || {
        let check = holds();
        async move { check.await.then_some(()) }
    })
    .await
    .is_some()
}

/// The admin API, one method per operation; ids are percent-encoded into
/// the path.
pub struct AdminApi<'a> {
    http: &'a reqwest::Client,
    base: &'a str,
    token: Option<&'a str>,
}

impl AdminApi<'_> {
    /// Any request to the admin surface, for the cases the methods below
    /// do not cover.
    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> reqwest::Response {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(token) = self.token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        request.send().await.expect("request sent")
    }

    pub async fn list_clients(&self) -> reqwest::Response {
        self.send(reqwest::Method::GET, "/admin/clients", None)
            .await
    }

    pub async fn create_client(&self, body: Value) -> reqwest::Response {
        self.send(reqwest::Method::POST, "/admin/clients", Some(body))
            .await
    }

    pub async fn get_client(&self, id: &str) -> reqwest::Response {
        self.send(reqwest::Method::GET, &client_path(id), None)
            .await
    }

    pub async fn update_client(&self, id: &str, changes: Value) -> reqwest::Response {
        self.send(reqwest::Method::PATCH, &client_path(id), Some(changes))
            .await
    }

    pub async fn delete_client(&self, id: &str) -> reqwest::Response {
        self.send(reqwest::Method::DELETE, &client_path(id), None)
            .await
    }

    pub async fn rotate_secret(&self, id: &str, body: Value) -> reqwest::Response {
        let path = format!("{}/secret", client_path(id));
        self.send(reqwest::Method::POST, &path, Some(body)).await
    }

    pub async fn list_keys(&self) -> reqwest::Response {
        self.send(reqwest::Method::GET, "/admin/keys", None).await
    }

    pub async fn rotate_key(&self, body: Value) -> reqwest::Response {
        self.send(reqwest::Method::POST, "/admin/keys/rotate", Some(body))
            .await
    }
}

fn client_path(id: &str) -> String {
    format!(
        "/admin/clients/{}",
        utf8_percent_encode(id, NON_ALPHANUMERIC)
    )
}

/// POSTs a form body to `url`, with Basic credentials if given.
pub async fn post_form(
    http: &reqwest::Client,
    url: &str,
    body: &str,
    basic: Option<(&str, &str)>,
) -> reqwest::Response {
    let mut request = http
        .post(url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body.to_owned());
    if let Some((id, secret)) = basic {
        request = request.header("authorization", basic_header(id, secret));
    }
    request.send().await.expect("request sent")
}

pub fn basic_header(id: &str, secret: &str) -> String {
    let encode = |s: &str| utf8_percent_encode(s, NON_ALPHANUMERIC).to_string();
    format!(
        "Basic {}",
        STANDARD.encode(format!("{}:{}", encode(id), encode(secret)))
    )
}

pub fn form(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| {
            format!(
                "{}={}",
                utf8_percent_encode(k, NON_ALPHANUMERIC),
                utf8_percent_encode(v, NON_ALPHANUMERIC)
            )
        })
        .collect::<Vec<_>>()
        .join("&")
}

pub async fn json(response: reqwest::Response) -> Value {
    response.json().await.expect("a JSON body")
}

/// Runs the binary with only the given tokenmint settings: whatever the
/// developer's shell exports is removed first.
pub fn run_binary(args: &[&str], env: &[(String, String)], stdin: Option<&str>) -> Output {
    let mut command = tokenmint_command(env);
    command.args(args);
    command.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    });
    command.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = command.spawn().expect("the tokenmint binary starts");
    if let Some(input) = stdin {
        use std::io::Write as _;
        let mut pipe = child.stdin.take().expect("stdin");
        pipe.write_all(input.as_bytes()).expect("stdin written");
    }
    child
        .wait_with_output()
        .expect("the tokenmint binary finishes")
}

/// The `tokenmint` binary with exactly these settings: whatever tokenmint
/// settings the developer's shell exports are removed first.
fn tokenmint_command(env: &[(String, String)]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_tokenmint"));
    for (name, _) in std::env::vars() {
        if name.starts_with("TOKENMINT_") || name == "DATABASE_URL" {
            command.env_remove(name);
        }
    }
    command.envs(env.iter().map(|(k, v)| (k, v)));
    command
}

fn init_test_logging() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        if std::env::var_os("TEST_LOG").is_some() {
            tokenmint::telemetry::init("debug", tokenmint::config::LogFormat::Text, false);
        }
    });
}

/// A directory removed when dropped.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new() -> Self {
        let path =
            std::env::temp_dir().join(format!("tokenmint-test-{}", random_token::<9>().unwrap()));
        std::fs::create_dir_all(&path).expect("temp dir");
        Self(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A fresh PostgreSQL database, dropped (with its connections) afterwards.
pub struct TestDatabase {
    admin_url: String,
    name: String,
    pub url: String,
}

impl TestDatabase {
    pub async fn create() -> Option<Self> {
        let admin_url = std::env::var("TOKENMINT_TEST_DATABASE_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
        let required = std::env::var("TOKENMINT_REQUIRE_POSTGRES").is_ok_and(|v| v == "1");
        let mut admin = match sqlx::PgConnection::connect(&admin_url).await {
            Ok(conn) => conn,
            Err(e) if !required => {
                eprintln!(
                    "notice: skipping a Postgres test, no server at TOKENMINT_TEST_DATABASE_URL ({e})"
                );
                return None;
            }
            Err(e) => {
                panic!("Postgres is required (TOKENMINT_REQUIRE_POSTGRES=1) but unreachable: {e}")
            }
        };
        let name = format!(
            "tokenmint_test_{}",
            random_token::<8>()
                .unwrap()
                .to_lowercase()
                .replace(['-', '_'], "x")
        );
        sqlx::query(&format!("CREATE DATABASE \"{name}\""))
            .execute(&mut admin)
            .await
            .expect("test database created");
        let url = with_database(&admin_url, &name);
        Some(Self {
            admin_url,
            name,
            url,
        })
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let (admin_url, name) = (self.admin_url.clone(), self.name.clone());
        // Drop runs inside the test's runtime; a fresh one on its own thread
        // can block on the DROP without stalling it.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            runtime.block_on(async {
                let mut admin = sqlx::PgConnection::connect(&admin_url).await.ok()?;
                sqlx::query(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                    .execute(&mut admin)
                    .await
                    .ok()
            })
        })
        .join();
    }
}

/// The `host:port` of a `postgres://` URL.
pub fn host_port(url: &str) -> String {
    let after_scheme = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = after_scheme.split(['/', '?']).next().unwrap_or_default();
    authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host)
        .to_owned()
}

/// `url` with its `host:port` replaced.
pub fn with_host(url: &str, host_port_new: &str) -> String {
    url.replacen(&host_port(url), host_port_new, 1)
}

/// `postgres://u@h:5432/postgres?x=y` with its database replaced by `name`.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = url
        .split_once('?')
        .map_or((url, None), |(b, q)| (b, Some(q)));
    let prefix_end = base.find("://").map_or(0, |i| i + 3);
    let base = match base[prefix_end..].find('/') {
        Some(slash) => &base[..prefix_end + slash],
        None => base,
    };
    match query {
        Some(q) => format!("{base}/{name}?{q}"),
        None => format!("{base}/{name}"),
    }
}

/// `tokenmint serve` as a child process, its stderr collected.
pub struct ServerProcess {
    child: Child,
    output: Arc<Mutex<String>>,
    pub address: String,
}

impl ServerProcess {
    pub fn start(env: &[(String, String)]) -> Self {
        let mut child = tokenmint_command(env)
            .arg("serve")
            .env("TOKENMINT_LISTEN", "127.0.0.1:0")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("server starts");
        let output = Arc::new(Mutex::new(String::new()));
        for pipe in [
            Box::new(child.stderr.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stdout.take().unwrap()),
        ] {
            let sink = output.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                    let mut all = sink.lock().unwrap();
                    all.push_str(&line);
                    all.push('\n');
                }
            });
        }
        let started = Instant::now();
        let address = loop {
            let text = output.lock().unwrap().clone();
            if let Some(line) = text.lines().find(|l| l.contains("tokenmint listening")) {
                let at = line
                    .find("127.0.0.1:")
                    .expect("the listening line names the address");
                let addr: String = line[at..]
                    .chars()
                    .take_while(|c| c.is_ascii_digit() || *c == '.' || *c == ':')
                    .collect();
                break format!("http://{addr}");
            }
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "server did not start: {text}"
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        Self {
            child,
            output,
            address,
        }
    }

    /// Sends SIGTERM without waiting.
    pub fn terminate(&self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
    }

    /// SIGTERM, then the exit status and everything the process printed.
    pub fn stop(mut self) -> (Option<i32>, String) {
        self.terminate();
        let status = self.child.wait().expect("server exits");
        std::thread::sleep(Duration::from_millis(100));
        let output = self.output.lock().unwrap().clone();
        (status.code(), output)
    }
}
