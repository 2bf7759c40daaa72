//! The command line: `serve`, `migrate`, `client …`, `issuer …`, `key …`
//! (README, "Command line").
//!
//! Exit codes: 0 success, 1 failure, 2 usage (clap's own errors, and values
//! that fail validation). Results go to stdout — as JSON with `--json` —
//! and logs to stderr, so scripts can read stdout as it is.

use std::io::Read as _;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use serde::Serialize;

use crate::admin::{
    AdminError, ApplyError, AuditView, ClientAdmin, ClientChanges, ClientView, CreatedClient,
    IdentityView, IssuerAdmin, IssuerView, KeyView, MAX_IMPORTED_SECRET_LEN, NewClient, NewIssuer,
    RotatedSecret, apply_file, audit_page, audit_query, cli_actor,
};
use crate::clock::unix_now;
use crate::config::Config;
use crate::crypto::ClientSecret;
use crate::crypto::MAX_JWKS_BYTES;
use crate::domain::client::{AuthMethod, ClientQuery, DEFAULT_PAGE, parse_federated_identity};
use crate::fault::chain;
use crate::startup::{
    Application, StartupError, argon2_hasher, open_key_ring, open_store, shutdown_signal,
};

#[derive(Debug, Parser)]
#[command(
    name = "tokenmint",
    version,
    about = "An OAuth 2.0 authorization server for machine-to-machine tokens"
)]
pub struct Cli {
    /// Settings file layered over the defaults (environment variables override both).
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Print results as JSON.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server (the default command).
    Serve {
        /// Do not apply database migrations at start.
        #[arg(long)]
        no_migrate: bool,
    },
    /// Apply database migrations and exit.
    Migrate,
    /// Manage clients.
    #[command(subcommand)]
    Client(ClientCommand),
    /// Manage trusted issuers (workload identity federation).
    #[command(subcommand)]
    Issuer(IssuerCommand),
    /// Manage signing keys.
    #[command(subcommand)]
    Key(KeyCommand),
    /// Make the store's clients and trusted issuers match a TOML file:
    /// prints what it creates, changes and (with --prune) deletes; all or
    /// nothing, and a second apply of the same file changes nothing.
    Apply {
        /// The file (see config/clients.example.toml).
        #[arg(short = 'f', long = "file", value_name = "FILE")]
        file: PathBuf,
        /// Print the plan and write nothing.
        #[arg(long)]
        dry_run: bool,
        /// Also delete the clients and issuers the file does not name.
        #[arg(long)]
        prune: bool,
    },
    /// Read the audit trail: who changed which client, issuer or key, and when.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Exit 0 when the server on the configured listen address answers
    /// /healthz (for container health checks; needs no curl in the image).
    /// With TLS on, it checks that the listener accepts connections.
    #[command(hide = true)]
    Healthcheck,
}

#[derive(Debug, Subcommand)]
pub enum IssuerCommand {
    /// Trust a platform's identity tokens (a Kubernetes cluster, a SPIFFE
    /// trust domain, a CI system's OIDC issuer). Without --jwks-uri or
    /// --jwks-file, its keys are found by OIDC discovery at --issuer.
    Add {
        /// The name clients' identities use (--federated NAME=SUBJECT).
        name: String,
        /// The `iss` of its tokens: an https URL, or spiffe://TRUST_DOMAIN.
        #[arg(long, value_name = "URL")]
        issuer: String,
        /// Where its JWK set is (instead of OIDC discovery).
        #[arg(long, value_name = "URL", conflicts_with = "jwks_file")]
        jwks_uri: Option<String>,
        /// A JWK set file (air-gapped clusters, SPIFFE bundles).
        #[arg(long, value_name = "PATH")]
        jwks_file: Option<PathBuf>,
        /// The audience its tokens must carry (default: this server's issuer).
        #[arg(long)]
        audience: Option<String>,
        /// The longest lifetime and age of a token accepted ("1h", "600").
        #[arg(long, value_parser = parse_seconds)]
        max_token_age: Option<u32>,
    },
    /// List trusted issuers.
    List,
    /// Show one trusted issuer.
    Show { name: String },
    /// Stop trusting an issuer: its tokens are refused at once.
    Remove { name: String },
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// List entries, newest first, a page at a time.
    List {
        /// Only entries about this client.
        #[arg(long, value_name = "ID")]
        client: Option<String>,
        /// Only entries about this target (issuer:NAME, key:KID).
        #[arg(long, conflicts_with = "client")]
        target: Option<String>,
        /// Only entries from this time on: RFC 3339, or a duration ago ("1h", "7d").
        #[arg(long, value_name = "TIME")]
        since: Option<String>,
        /// Page size, 1 to 1000.
        #[arg(long, default_value_t = DEFAULT_PAGE)]
        limit: u32,
        /// Start after this entry id (the last one of the previous page).
        #[arg(long, value_name = "ID")]
        after: Option<i64>,
    },
}

#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// List signing keys and their status (pending, active, retired, expired, revoked).
    List,
    /// Create the next signing key. It is published in the JWKS at once and
    /// starts signing once the JWKS cache lifetime has passed, so that no
    /// resource server meets an unknown kid.
    Rotate {
        /// Start signing with the new key at once (for a compromised key).
        #[arg(long)]
        now: bool,
    },
    /// Withdraw a key at once (compromise): gone from the JWKS, never signs
    /// again, and every token it signed is inactive. Revoking the active key
    /// makes a new one that signs at once.
    Revoke { kid: String },
}

#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// Create a client and print its secret (shown once), or a client that
    /// authenticates without one (--jwks-file, --jwks-uri, --federated).
    Create {
        /// The client id: printable ASCII without spaces, e.g. svc:orders+v1.
        id: String,
        #[command(flatten)]
        fields: Box<ClientFields>,
        /// Read the secret from standard input instead of generating one
        /// (to move a client from another server).
        #[arg(long)]
        secret_stdin: bool,
    },
    /// List clients, a page at a time, in id order.
    List {
        /// Page size, 1 to 1000.
        #[arg(long, default_value_t = DEFAULT_PAGE)]
        limit: u32,
        /// Start after this client id (the last one of the previous page).
        #[arg(long, value_name = "ID")]
        after: Option<String>,
        /// Only ids starting with this.
        #[arg(long)]
        prefix: Option<String>,
        /// Only enabled (true) or disabled (false) clients.
        #[arg(long, value_name = "BOOL")]
        enabled: Option<bool>,
        /// Only clients allowed this scope.
        #[arg(long)]
        scope: Option<String>,
    },
    /// Show one client.
    Show { id: String },
    /// Change a client's fields; fields not given are kept.
    Update {
        id: String,
        #[command(flatten)]
        fields: Box<ClientFields>,
        /// Use the server's default token lifetime again.
        #[arg(long, conflicts_with = "ttl")]
        clear_ttl: bool,
    },
    /// Issue a new secret; the previous one keeps working for --overlap.
    RotateSecret {
        id: String,
        /// How long the previous secret keeps working: seconds or a
        /// duration ("24h"); 0 cuts it at once.
        #[arg(long, default_value = "0", value_parser = parse_seconds)]
        overlap: u32,
    },
    /// End every token the client holds now (inactive at introspection and
    /// at the admin API); tokens it gets afterwards work.
    RevokeTokens { id: String },
    /// Delete a client; its tokens stop being issued at once.
    Delete { id: String },
    /// Refuse a client's authentication until it is enabled again.
    Disable { id: String },
    /// Allow a disabled client to authenticate again.
    Enable { id: String },
}

#[derive(Debug, Args)]
pub struct ClientFields {
    /// Scopes the client may request, space-delimited ("orders:read orders:write").
    #[arg(long)]
    scope: Option<String>,
    /// Scopes granted when a request names none (default: all of --scope).
    #[arg(long)]
    default_scope: Option<String>,
    /// An audience the client may request (RFC 8707 resource); repeat for several.
    #[arg(long = "audience", value_name = "URL")]
    audiences: Vec<String>,
    /// Audience used when a request names none (default: the first --audience,
    /// or the issuer when there is none).
    #[arg(long, value_name = "URL")]
    default_audience: Option<String>,
    /// Token lifetime: seconds ("600") or a duration ("10m").
    #[arg(long, value_parser = parse_seconds)]
    ttl: Option<u32>,
    /// Grants the client may use, space-delimited: "client_credentials"
    /// (the default), or "" for a client that may only introspect and revoke.
    #[arg(long)]
    grant_types: Option<String>,
    /// client_secret_basic (the default), client_secret_post,
    /// private_key_jwt (implied by --jwks-file, --jwks-uri and --federated),
    /// tls_client_auth (implied by --tls-subject-dn and --tls-san-*) or
    /// self_signed_tls_client_auth (with --jwks-file or --jwks-uri).
    #[arg(long, value_name = "METHOD")]
    auth_method: Option<String>,
    /// The client's public keys, a JWK set file (private_key_jwt).
    #[arg(long, value_name = "PATH", conflicts_with = "jwks_uri")]
    jwks_file: Option<PathBuf>,
    /// Where the client publishes its public keys (private_key_jwt).
    #[arg(long, value_name = "URL")]
    jwks_uri: Option<String>,
    /// A platform identity that authenticates the client: a trusted issuer's
    /// name and the exact subject of its tokens; repeat for several.
    #[arg(long = "federated", value_name = "ISSUER=SUBJECT", value_parser = parse_identity)]
    federated: Vec<IdentityView>,
    /// tls_client_auth: the certificate's subject DN (RFC 4514, e.g.
    /// "CN=orders,O=Example"); or one SAN with the options below.
    #[arg(long, value_name = "DN", group = "tls_subject")]
    tls_subject_dn: Option<String>,
    #[arg(long, value_name = "NAME", group = "tls_subject")]
    tls_san_dns: Option<String>,
    #[arg(long, value_name = "URI", group = "tls_subject")]
    tls_san_uri: Option<String>,
    #[arg(long, value_name = "IP", group = "tls_subject")]
    tls_san_ip: Option<String>,
    #[arg(long, value_name = "EMAIL", group = "tls_subject")]
    tls_san_email: Option<String>,
    /// Every token request must carry a DPoP proof (RFC 9449); its tokens
    /// are bound to the proof's key. "--dpop-bound-tokens false" turns it off.
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    dpop_bound_tokens: Option<bool>,
    /// Tokens are bound to the client's TLS certificate (RFC 8705 §3;
    /// always so for tls_client_auth and self_signed_tls_client_auth).
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    certificate_bound_tokens: Option<bool>,
    /// A claim added to every token of the client, its value JSON
    /// (tenant='"acme"', tier=3); repeat for several. On update it sets
    /// that claim and keeps the others; KEY=null removes it.
    #[arg(long = "claim", value_name = "KEY=JSON", value_parser = parse_claim)]
    claims: Vec<(String, serde_json::Value)>,
    /// Remove every claim first (with --claim: the claims are exactly those given).
    #[arg(long)]
    clear_claims: bool,
    /// The most tokens the client gets: N/min or N/h ("none" lifts it).
    #[arg(long, value_name = "N/min|N/h")]
    token_quota: Option<String>,
}

fn parse_claim(raw: &str) -> Result<(String, serde_json::Value), String> {
    let (key, value) = raw
        .split_once('=')
        .ok_or_else(|| "expected KEY=JSON, e.g. tenant='\"acme\"'".to_owned())?;
    let value = serde_json::from_str(value).map_err(|_| {
        format!("the value of {key} is not JSON; quote a string: {key}='\"{value}\"'")
    })?;
    Ok((key.to_owned(), value))
}

fn parse_identity(raw: &str) -> Result<IdentityView, String> {
    parse_federated_identity(raw)
        .map(|f| IdentityView::from(&f))
        .map_err(|e| e.reason)
}

/// A JWK set file, read whole but no larger than a key set may be.
fn read_jwks(path: &std::path::Path) -> Result<serde_json::Value, Failure> {
    let cannot = |e: String| Failure::Usage(format!("cannot read {}: {e}", path.display()));
    let file = std::fs::File::open(path).map_err(|e| cannot(e.to_string()))?;
    let mut text = Vec::new();
    file.take(MAX_JWKS_BYTES as u64 + 1)
        .read_to_end(&mut text)
        .map_err(|e| cannot(e.to_string()))?;
    if text.len() > MAX_JWKS_BYTES {
        return Err(cannot(format!(
            "a JWK set is at most {MAX_JWKS_BYTES} bytes"
        )));
    }
    serde_json::from_slice(&text).map_err(|e| cannot(format!("not JSON: {e}")))
}

fn parse_seconds(raw: &str) -> Result<u32, String> {
    let secs = match raw.parse::<u64>() {
        Ok(secs) => secs,
        Err(_) => humantime::parse_duration(raw)
            .map_err(|e| format!("expected seconds or a duration such as 10m: {e}"))?
            .as_secs(),
    };
    u32::try_from(secs).map_err(|_| "too long".to_owned())
}

fn split(list: &str) -> Vec<String> {
    list.split_whitespace().map(str::to_owned).collect()
}

impl ClientFields {
    fn into_new_client(self, client_id: String) -> Result<NewClient, Failure> {
        Ok(NewClient {
            client_id,
            scopes: self.scope.as_deref().map(split).unwrap_or_default(),
            default_scopes: self.default_scope.as_deref().map(split),
            audiences: self.audiences,
            default_audience: self.default_audience,
            grant_types: self.grant_types.as_deref().map(split),
            token_ttl: self.ttl,
            token_endpoint_auth_method: self.auth_method,
            jwks: self.jwks_file.as_deref().map(read_jwks).transpose()?,
            jwks_uri: self.jwks_uri,
            federated_identities: self.federated,
            tls_client_auth_subject_dn: self.tls_subject_dn,
            tls_client_auth_san_dns: self.tls_san_dns,
            tls_client_auth_san_uri: self.tls_san_uri,
            tls_client_auth_san_ip: self.tls_san_ip,
            tls_client_auth_san_email: self.tls_san_email,
            dpop_bound_access_tokens: self.dpop_bound_tokens.unwrap_or(false),
            tls_client_certificate_bound_access_tokens: self.certificate_bound_tokens,
            claims: (!self.claims.is_empty())
                .then(|| serde_json::Value::Object(self.claims.into_iter().collect())),
            token_quota: self.token_quota,
        })
    }

    /// Keys given by file replace keys given by URL, and the other way round.
    fn into_changes(self, clear_ttl: bool) -> Result<ClientChanges, Failure> {
        let jwks = self.jwks_file.as_deref().map(read_jwks).transpose()?;
        let (jwks, jwks_uri) = match (jwks, self.jwks_uri) {
            (Some(jwks), _) => (Some(Some(jwks)), Some(None)),
            (None, Some(uri)) => (Some(None), Some(Some(uri))),
            (None, None) => (None, None),
        };
        Ok(ClientChanges {
            scopes: self.scope.as_deref().map(split),
            default_scopes: self.default_scope.as_deref().map(split),
            audiences: (!self.audiences.is_empty()).then_some(self.audiences),
            default_audience: self.default_audience.map(Some),
            grant_types: self.grant_types.as_deref().map(split),
            token_ttl: if clear_ttl {
                Some(None)
            } else {
                self.ttl.map(Some)
            },
            enabled: None,
            token_endpoint_auth_method: self.auth_method,
            jwks,
            jwks_uri,
            federated_identities: (!self.federated.is_empty()).then_some(self.federated),
            tls_client_auth_subject_dn: self.tls_subject_dn.map(Some),
            tls_client_auth_san_dns: self.tls_san_dns.map(Some),
            tls_client_auth_san_uri: self.tls_san_uri.map(Some),
            tls_client_auth_san_ip: self.tls_san_ip.map(Some),
            tls_client_auth_san_email: self.tls_san_email.map(Some),
            dpop_bound_access_tokens: self.dpop_bound_tokens,
            tls_client_certificate_bound_access_tokens: self.certificate_bound_tokens,
            // --clear-claims replaces the set; --claim alone edits it.
            claims: (self.clear_claims || !self.claims.is_empty())
                .then(|| Some(serde_json::Value::Object(self.claims.into_iter().collect()))),
            merge_claims: !self.clear_claims,
            token_quota: self.token_quota.map(|q| (q != "none").then_some(q)),
        })
    }
}

/// Why a command failed: a usage error (exit 2) or anything else (exit 1),
/// with the message to print — the whole cause chain, once.
enum Failure {
    Usage(String),
    Other(String),
}

impl From<AdminError> for Failure {
    fn from(e: AdminError) -> Self {
        match e {
            AdminError::Invalid(field) => Self::Usage(field.to_string()),
            other => Self::Other(chain(&other)),
        }
    }
}

impl From<StartupError> for Failure {
    fn from(e: StartupError) -> Self {
        Self::Other(chain(&e))
    }
}

pub async fn run(cli: Cli) -> ExitCode {
    let config = match Config::load(cli.config.as_deref()) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let command = cli.command.unwrap_or(Command::Serve { no_migrate: false });
    // The server logs at the configured level; one-shot commands only warn,
    // unless the operator asked for more with TOKENMINT_LOG.
    let filter = match (&command, std::env::var("TOKENMINT_LOG")) {
        (Command::Serve { .. }, _) | (_, Ok(_)) => config.log.clone(),
        _ => "warn".to_owned(),
    };
    let serving = matches!(command, Command::Serve { .. });
    crate::telemetry::init(&filter, config.log_format, serving);

    let result = match command {
        Command::Serve { no_migrate } => serve(&config, !no_migrate).await,
        Command::Migrate => migrate(&config, cli.json).await,
        Command::Client(command) => client(&config, command, cli.json).await,
        Command::Issuer(command) => issuer(&config, command, cli.json).await,
        Command::Key(command) => key(&config, command, cli.json).await,
        Command::Audit(command) => audit(&config, command, cli.json).await,
        Command::Apply {
            file,
            dry_run,
            prune,
        } => apply(&config, &file, dry_run, prune, cli.json).await,
        Command::Healthcheck => healthcheck(&config),
    };
    crate::telemetry::shutdown();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Usage(message)) => {
            eprintln!("error: {message}");
            ExitCode::from(2)
        }
        Err(Failure::Other(message)) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(config: &Config, migrate: bool) -> Result<(), Failure> {
    let app = Application::build(config, migrate).await?;
    app.run_until_stopped(shutdown_signal())
        .await
        .map_err(|e| Failure::Other(format!("server error: {e}")))?;
    tracing::info!("stopped");
    Ok(())
}

async fn migrate(config: &Config, json: bool) -> Result<(), Failure> {
    let store = open_store(config, true).await?;
    print(
        json,
        &serde_json::json!({ "migrated": true, "store": store.backend() }),
        || format!("migrations applied ({})", store.backend()),
    );
    Ok(())
}

async fn client(config: &Config, command: ClientCommand, json: bool) -> Result<(), Failure> {
    let store = open_store(config, true).await?;
    let hasher = argon2_hasher()?;
    let admin = ClientAdmin::new(store.as_ref(), &hasher).by(cli_actor());
    let now = unix_now();
    let show = |view: ClientView| print(json, &view, || describe(&view));
    match command {
        ClientCommand::Create {
            id,
            fields,
            secret_stdin,
        } => {
            let imported = secret_stdin.then(read_secret_from_stdin).transpose()?;
            let created = admin
                .create(fields.into_new_client(id)?, imported, now)
                .await?;
            print(json, &created, || describe_created(&created));
        }
        ClientCommand::List {
            limit,
            after,
            prefix,
            enabled,
            scope,
        } => {
            let query = ClientQuery::new(after, Some(limit), prefix, enabled, scope)
                .map_err(|e| Failure::Usage(e.to_string()))?;
            let page = admin.list(&query).await?;
            print(json, &page.clients, || describe_list(&page.clients));
            if let Some(after) = page.next_after {
                // Quoted for a shell: an id may hold `;` or `$`.
                let quoted = format!("'{}'", after.replace('\'', r"'\''"));
                eprintln!("more: the same command with --after {quoted}");
            }
        }
        ClientCommand::Show { id } => {
            show(ClientView::from(
                &admin.get(&id).await.map_err(|e| named(e, &id))?,
            ));
        }
        ClientCommand::Update {
            id,
            fields,
            clear_ttl,
        } => {
            let changes = fields.into_changes(clear_ttl)?;
            let client = admin.update(&id, changes, now).await;
            show(ClientView::from(&client.map_err(|e| named(e, &id))?));
        }
        ClientCommand::RotateSecret { id, overlap } => {
            let rotated = admin.rotate_secret(&id, overlap.into(), now).await;
            let rotated = rotated.map_err(|e| named(e, &id))?;
            print(json, &rotated, || describe_rotated(&rotated));
        }
        ClientCommand::RevokeTokens { id } => {
            let client = admin.revoke_tokens(&id, now).await;
            show(ClientView::from(&client.map_err(|e| named(e, &id))?));
        }
        ClientCommand::Delete { id } => {
            admin.delete(&id).await.map_err(|e| named(e, &id))?;
            print(
                json,
                &serde_json::json!({ "client_id": id, "deleted": true }),
                || format!("deleted {id}"),
            );
        }
        ClientCommand::Disable { id } => {
            let client = admin.set_enabled(&id, false, now).await;
            show(ClientView::from(&client.map_err(|e| named(e, &id))?));
        }
        ClientCommand::Enable { id } => {
            let client = admin.set_enabled(&id, true, now).await;
            show(ClientView::from(&client.map_err(|e| named(e, &id))?));
        }
    }
    Ok(())
}

fn healthcheck(config: &Config) -> Result<(), Failure> {
    use std::io::Write as _;
    use std::time::Duration;
    let mut address = config.listen;
    if address.ip().is_unspecified() {
        address.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    let unhealthy = |e: &dyn std::fmt::Display| Failure::Other(format!("unhealthy: {e}"));
    let mut stream = std::net::TcpStream::connect_timeout(&address, Duration::from_secs(2))
        .map_err(|e| unhealthy(&e))?;
    if config.tls.is_some() {
        // Speaking TLS here would need a client that skips certificate
        // checks; a listener that accepts is the liveness we can vouch for.
        return Ok(());
    }
    stream
        .set_read_timeout(Some(Duration::from_secs(2)))
        .map_err(|e| unhealthy(&e))?;
    stream
        .write_all(b"GET /healthz HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .map_err(|e| unhealthy(&e))?;
    let mut status = [0u8; 12];
    std::io::Read::read_exact(&mut stream, &mut status).map_err(|e| unhealthy(&e))?;
    if &status[9..12] == b"200" {
        Ok(())
    } else {
        Err(unhealthy(&String::from_utf8_lossy(&status)))
    }
}

async fn issuer(config: &Config, command: IssuerCommand, json: bool) -> Result<(), Failure> {
    let store = open_store(config, true).await?;
    let admin = IssuerAdmin::new(store.as_ref()).by(cli_actor());
    let named = |e: AdminError, name: &str| match e {
        AdminError::NoSuchIssuer => Failure::Other(format!("no such issuer '{name}'")),
        other => other.into(),
    };
    match command {
        IssuerCommand::Add {
            name,
            issuer,
            jwks_uri,
            jwks_file,
            audience,
            max_token_age,
        } => {
            let new = NewIssuer {
                name,
                issuer,
                jwks_uri,
                jwks: jwks_file.as_deref().map(read_jwks).transpose()?,
                audience,
                max_token_age,
            };
            let view = IssuerView::from(&admin.add(new, unix_now()).await?);
            print(json, &view, || describe_issuer(&view));
        }
        IssuerCommand::List => {
            let views: Vec<IssuerView> = admin.list().await?.iter().map(IssuerView::from).collect();
            print(json, &views, || {
                if views.is_empty() {
                    return "no trusted issuers".to_owned();
                }
                views
                    .iter()
                    .map(|v| format!("{}\t{}\t{}", v.name, v.issuer, v.key_source))
                    .collect::<Vec<_>>()
                    .join("\n")
            });
        }
        IssuerCommand::Show { name } => {
            let issuer = admin.get(&name).await.map_err(|e| named(e, &name))?;
            let view = IssuerView::from(&issuer);
            print(json, &view, || describe_issuer(&view));
        }
        IssuerCommand::Remove { name } => {
            admin.remove(&name).await.map_err(|e| named(e, &name))?;
            print(
                json,
                &serde_json::json!({ "name": name, "removed": true }),
                || format!("removed issuer {name}"),
            );
        }
    }
    Ok(())
}

fn describe_issuer(v: &IssuerView) -> String {
    let keys = match (&v.jwks_uri, &v.jwks) {
        (Some(uri), _) => uri.clone(),
        (None, Some(_)) => "(a stored JWK set)".to_owned(),
        (None, None) => format!("OIDC discovery at {}", v.issuer),
    };
    format!(
        "name:             {}\nissuer:           {}\nkeys:             {keys}\naudience:         {}\nmax_token_age:    {}s\ncreated_at:       {}",
        v.name,
        v.issuer,
        v.audience.as_deref().unwrap_or("(this server's issuer)"),
        v.max_token_age,
        v.created_at,
    )
}

async fn key(config: &Config, command: KeyCommand, json: bool) -> Result<(), Failure> {
    let store = open_store(config, true).await?;
    let ring = open_key_ring(config, store).await?;
    let failed = |e: crate::keys::KeyError| Failure::Other(chain(&e));
    let now = unix_now();
    match command {
        KeyCommand::List => {
            let views: Vec<KeyView> = ring
                .list(now)
                .await
                .map_err(failed)?
                .iter()
                .map(|(key, status)| KeyView::new(key, *status))
                .collect();
            print(json, &views, || {
                views
                    .iter()
                    .map(|v| {
                        format!(
                            "{}\t{}\t{}\tactivates {}",
                            v.kid, v.alg, v.status, v.activates_at
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            });
        }
        KeyCommand::Rotate { now: immediately } => {
            let (key, status) = ring
                .rotate(now, immediately, &cli_actor())
                .await
                .map_err(failed)?;
            let view = KeyView::new(&key, status);
            print(json, &view, || {
                format!(
                    "created key {} ({}, {}); published now, signing from {}",
                    view.kid, view.alg, view.status, view.activates_at
                )
            });
        }
        KeyCommand::Revoke { kid } => {
            let Some((key, status)) = ring.revoke(&kid, now, &cli_actor()).await.map_err(failed)?
            else {
                return Err(Failure::Other(format!("no such key '{kid}'")));
            };
            let view = KeyView::new(&key, status);
            print(json, &view, || {
                format!(
                    "revoked key {} ({}): its tokens are inactive",
                    view.kid, view.alg
                )
            });
        }
    }
    Ok(())
}

async fn apply(
    config: &Config,
    file: &std::path::Path,
    dry_run: bool,
    prune: bool,
    json: bool,
) -> Result<(), Failure> {
    let store = open_store(config, true).await?;
    let hasher = argon2_hasher()?;
    let outcome = apply_file(store.as_ref(), &hasher, file, dry_run, prune, unix_now())
        .await
        .map_err(|e| match e {
            ApplyError::Invalid(why) => Failure::Usage(why),
            ApplyError::Failed(e) => e.into(),
        })?;
    print(json, &outcome, || outcome.describe());
    Ok(())
}

async fn audit(config: &Config, command: AuditCommand, json: bool) -> Result<(), Failure> {
    let AuditCommand::List {
        client,
        target,
        since,
        limit,
        after,
    } = command;
    let query = audit_query(
        client.or(target),
        since.as_deref(),
        after,
        Some(limit),
        unix_now(),
    )
    .map_err(|e| Failure::Usage(e.to_string()))?;
    let store = open_store(config, true).await?;
    let page = audit_page(store.as_ref(), &query).await?;
    print(json, &page.entries, || describe_audit(&page.entries));
    if let Some(after) = page.next_after {
        eprintln!("more: the same command with --after {after}");
    }
    Ok(())
}

fn describe_audit(entries: &[AuditView]) -> String {
    if entries.is_empty() {
        return "no audit entries".to_owned();
    }
    entries
        .iter()
        .map(|e| {
            format!(
                "{}\t{}\t{}\t{}\t{}",
                e.at,
                e.actor,
                e.action,
                e.target,
                e.fields.join(",")
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// "no such client" becomes "no such client 'svc'".
fn named(e: AdminError, id: &str) -> Failure {
    match e {
        AdminError::NotFound => Failure::Other(format!("no such client '{id}'")),
        other => other.into(),
    }
}

/// The secret on standard input, without the one line ending `echo` and
/// here-strings add. Never cut: an input over the limit is refused whole.
fn read_secret_from_stdin() -> Result<ClientSecret, Failure> {
    // One byte more than the longest secret with a "\r\n" tells "too long"
    // without reading an unbounded input.
    let limit = MAX_IMPORTED_SECRET_LEN + 3;
    let mut raw = Vec::with_capacity(limit);
    std::io::stdin()
        .take(limit as u64)
        .read_to_end(&mut raw)
        .map_err(|e| Failure::Other(format!("cannot read the secret from standard input: {e}")))?;
    let secret = raw
        .strip_suffix(b"\n")
        .map(|s| s.strip_suffix(b"\r").unwrap_or(s))
        .unwrap_or(&raw);
    if secret.len() > MAX_IMPORTED_SECRET_LEN {
        return Err(Failure::Usage(format!(
            "invalid client_secret: an imported secret is at most {MAX_IMPORTED_SECRET_LEN} bytes"
        )));
    }
    let secret = String::from_utf8(secret.to_vec()).map_err(|_| {
        Failure::Usage("invalid client_secret: the secret is not UTF-8 text".to_owned())
    })?;
    Ok(ClientSecret::new(secret))
}

fn describe(v: &ClientView) -> String {
    let ttl = v
        .token_ttl
        .map_or_else(|| "server default".to_owned(), |t| format!("{t}s"));
    let mut keys = String::new();
    if let Some(uri) = &v.jwks_uri {
        keys.push_str(&format!("\njwks_uri:         {uri}"));
    }
    if v.jwks.is_some() {
        keys.push_str("\njwks:             (registered inline)");
    }
    for identity in &v.federated_identities {
        keys.push_str(&format!(
            "\nfederated:        {}={}",
            identity.issuer, identity.subject
        ));
    }
    let subjects = [
        ("tls_subject_dn:  ", &v.tls_client_auth_subject_dn),
        ("tls_san_dns:     ", &v.tls_client_auth_san_dns),
        ("tls_san_uri:     ", &v.tls_client_auth_san_uri),
        ("tls_san_ip:      ", &v.tls_client_auth_san_ip),
        ("tls_san_email:   ", &v.tls_client_auth_san_email),
    ];
    for (label, value) in subjects {
        if let Some(value) = value {
            keys.push_str(&format!("\n{label} {value}"));
        }
    }
    if v.dpop_bound_access_tokens {
        keys.push_str("\ndpop_bound:       yes (every token request needs a DPoP proof)");
    }
    if v.tls_client_certificate_bound_access_tokens {
        keys.push_str("\ncert_bound:       yes (tokens bound to the TLS client certificate)");
    }
    format!(
        "client_id:        {}\nauth_method:      {}{keys}\nenabled:          {}\nscopes:           {}\ndefault_scopes:   {}\naudiences:        {}\ndefault_audience: {}\ngrant_types:      {}\ntoken_ttl:        {ttl}\ncreated_at:       {}\nupdated_at:       {}",
        v.client_id,
        v.token_endpoint_auth_method,
        v.enabled,
        v.scopes.join(" "),
        v.default_scopes.join(" "),
        v.audiences.join(" "),
        v.default_audience.as_deref().unwrap_or("(the issuer)"),
        v.grant_types.join(" "),
        v.created_at,
        v.updated_at,
    )
}

fn describe_created(created: &CreatedClient) -> String {
    match &created.client_secret {
        Some(secret) => format!(
            "{}\nclient_secret:    {}\n\nStore this secret now: it is shown only once.",
            describe(&created.client),
            secret.expose()
        ),
        // A client without a secret (keys, identities, a certificate).
        None if AuthMethod::parse(&created.client.token_endpoint_auth_method)
            .is_ok_and(|m| !m.uses_secret()) =>
        {
            describe(&created.client)
        }
        None => format!(
            "{}\nclient_secret:    (imported; not shown)",
            describe(&created.client)
        ),
    }
}

fn describe_rotated(rotated: &RotatedSecret) -> String {
    let previous = rotated
        .previous_secret_expires_at
        .as_deref()
        .map_or("no longer works".to_owned(), |t| format!("works until {t}"));
    format!(
        "client_id:        {}\nclient_secret:    {}\nprevious secret:  {previous}\n\nStore this secret now: it is shown only once.",
        rotated.client_id,
        rotated.client_secret.expose(),
    )
}

fn describe_list(views: &[ClientView]) -> String {
    if views.is_empty() {
        return "no clients".to_owned();
    }
    views
        .iter()
        .map(|v| {
            let state = if v.enabled { "enabled" } else { "disabled" };
            format!("{}\t{state}\t{}", v.client_id, v.scopes.join(" "))
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn print<T: Serialize>(json: bool, value: &T, human: impl FnOnce() -> String) {
    if json {
        match serde_json::to_string_pretty(value) {
            Ok(text) => println!("{text}"),
            Err(e) => eprintln!("error: cannot encode JSON: {e}"),
        }
    } else {
        println!("{}", human());
    }
}
