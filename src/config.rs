//! Settings: `config/default.toml` (compiled in), then an optional file
//! (`--config`), then environment variables — read once, as raw strings, then
//! validated once into a typed `Config`. An invalid value is reported with the
//! setting's file key and environment variable, so the operator knows which
//! one to fix.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use crate::crypto::certificate::ClientCa;
use crate::crypto::{Algorithm, KeyEncryptionKey};
pub use crate::domain::Secret;
use crate::domain::ThrottleSettings;
use crate::domain::client::{MAX_TOKEN_TTL, MIN_TOKEN_TTL};
use crate::domain::network::{ForwardedHeader, TrustedProxies};
use crate::domain::scope::is_scope_token;
pub use crate::store::{Database, PoolSettings};
pub use crate::telemetry::LogFormat;

const DEFAULTS: &str = include_str!("../config/default.toml");

/// Every setting: its key in TOML files and its environment variable.
const SETTINGS: &[(&str, &str)] = &[
    ("listen", "TOKENMINT_LISTEN"),
    ("issuer", "TOKENMINT_ISSUER"),
    ("data_dir", "TOKENMINT_DATA_DIR"),
    ("database_url", "DATABASE_URL"),
    ("key_encryption_key", "TOKENMINT_KEY_ENCRYPTION_KEY"),
    ("token_ttl", "TOKENMINT_TOKEN_TTL"),
    ("signing_alg", "TOKENMINT_SIGNING_ALG"),
    ("log", "TOKENMINT_LOG"),
    ("log_format", "TOKENMINT_LOG_FORMAT"),
    ("db_max_connections", "TOKENMINT_DB_MAX_CONNECTIONS"),
    ("db_acquire_timeout", "TOKENMINT_DB_ACQUIRE_TIMEOUT"),
    ("db_query_timeout", "TOKENMINT_DB_QUERY_TIMEOUT"),
    ("jwks_max_age", "TOKENMINT_JWKS_MAX_AGE"),
    ("key_rotation_interval", "TOKENMINT_KEY_ROTATION_INTERVAL"),
    ("credential_cache_ttl", "TOKENMINT_CREDENTIAL_CACHE_TTL"),
    (
        "throttle_client_failures",
        "TOKENMINT_THROTTLE_CLIENT_FAILURES",
    ),
    (
        "throttle_address_failures",
        "TOKENMINT_THROTTLE_ADDRESS_FAILURES",
    ),
    ("throttle_window", "TOKENMINT_THROTTLE_WINDOW"),
    ("admin_listen", "TOKENMINT_ADMIN_LISTEN"),
    ("metrics_listen", "TOKENMINT_METRICS_LISTEN"),
    ("header_read_timeout", "TOKENMINT_HEADER_READ_TIMEOUT"),
    ("max_connections", "TOKENMINT_MAX_CONNECTIONS"),
    ("drain_delay", "TOKENMINT_DRAIN_DELAY"),
    ("assertion_max_age", "TOKENMINT_ASSERTION_MAX_AGE"),
    ("allow_http_fetch", "TOKENMINT_ALLOW_HTTP_FETCH"),
    ("fetch_timeout", "TOKENMINT_FETCH_TIMEOUT"),
    ("trusted_proxies", "TOKENMINT_TRUSTED_PROXIES"),
    ("forwarded_header", "TOKENMINT_FORWARDED_HEADER"),
    ("admin_scope", "TOKENMINT_ADMIN_SCOPE"),
    ("tls_cert", "TOKENMINT_TLS_CERT"),
    ("tls_key", "TOKENMINT_TLS_KEY"),
    ("tls_client_ca", "TOKENMINT_TLS_CLIENT_CA"),
    ("tls_client_cert_header", "TOKENMINT_TLS_CLIENT_CERT_HEADER"),
    ("mtls_base_url", "TOKENMINT_MTLS_BASE_URL"),
    ("dpop_nonce", "TOKENMINT_DPOP_NONCE"),
    ("audit_retention", "TOKENMINT_AUDIT_RETENTION"),
    ("apply_file", "TOKENMINT_APPLY_FILE"),
];

/// The settings whose values are secrets: each may also be given as a file
/// (`<VAR>_FILE`, `<key>_file`), the convention of official Docker images,
/// so that the value need not sit in the environment (`docker inspect`,
/// crash dumps, `/proc/<pid>/environ`).
const SECRET_SETTINGS: &[&str] = &["database_url", "key_encryption_key"];

#[derive(Debug)]
pub struct Config {
    pub listen: SocketAddr,
    /// `None`: derived from the bound address at startup.
    pub issuer: Option<String>,
    pub data_dir: PathBuf,
    pub database: Database,
    /// Connection-pool and deadline settings for either store.
    pub pool: PoolSettings,
    /// Required with Postgres; with SQLite, `None` means "generate one into
    /// the data folder".
    pub key_encryption_key: Option<Secret>,
    pub token_ttl: u32,
    pub signing_alg: Algorithm,
    pub log: String,
    pub log_format: LogFormat,
    /// Seconds resource servers may cache the JWKS; also how long a rotated
    /// key waits before it signs.
    pub jwks_max_age: u32,
    /// Rotate the signing key when it is this many seconds old; `None`: never.
    pub key_rotation_interval: Option<u64>,
    /// Seconds a successful secret verification is remembered; 0 disables it.
    pub credential_cache_ttl: u64,
    pub throttle: ThrottleSettings,
    /// Serve the admin API on this address only (off the public listener).
    pub admin_listen: Option<SocketAddr>,
    /// The scope an access token needs for the admin API.
    pub admin_scope: String,
    /// Serve `/metrics` on this address only.
    pub metrics_listen: Option<SocketAddr>,
    /// Seconds a connection may take to send a request head, and may stay
    /// idle between requests.
    pub header_read_timeout: u64,
    /// Open connections at most, over every listener.
    pub max_connections: usize,
    /// Seconds between the shutdown signal (when `/readyz` turns 503) and
    /// the listeners closing.
    pub drain_delay: u64,
    /// PEM certificate chain and private key: serve HTTPS instead of HTTP.
    pub tls: Option<TlsFiles>,
    /// Seconds a `private_key_jwt` assertion's `exp` may be ahead of now.
    pub assertion_max_age: u32,
    /// Key sets (client `jwks_uri`, trusted issuers) may be fetched over
    /// plain HTTP.
    pub allow_http_fetch: bool,
    /// Seconds one key-set fetch may take.
    pub fetch_timeout: u64,
    /// Reverse proxies whose `Forwarded` / `X-Forwarded-For` name the caller.
    pub trusted_proxies: TrustedProxies,
    pub sender_constraints: SenderConstraints,
    /// Seconds audit entries are kept.
    pub audit_retention: u64,
    /// Clients and issuers applied at `serve` start, before listening.
    pub apply_file: Option<PathBuf>,
}

/// Mutual TLS (RFC 8705) and DPoP (RFC 9449) settings.
#[derive(Debug, Clone, Default)]
pub struct SenderConstraints {
    /// The CA that `tls_client_auth` certificates chain to.
    pub client_ca: Option<ClientCa>,
    /// The header a trusted TLS-terminating proxy puts the client
    /// certificate in (lower-case).
    pub client_cert_header: Option<String>,
    /// Where the endpoints are also reachable with mutual TLS
    /// (`mtls_endpoint_aliases`, RFC 8705 §5).
    pub mtls_base_url: Option<String>,
    /// DPoP proofs must carry a server nonce (RFC 9449 §8).
    pub dpop_nonce: bool,
}

#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError(pub String);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

impl Config {
    /// Reads the defaults, `file` if given, and the process environment.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        Self::from_sources(file, std::env::vars())
    }

    /// As `load`, with the environment given explicitly (tests use this).
    pub fn from_sources(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let mut raw = RawSettings::default();
        raw.merge_toml(DEFAULTS, "config/default.toml")?;
        if let Some(path) = file {
            let text = std::fs::read_to_string(path)
                .map_err(|e| ConfigError(format!("cannot read {}: {e}", path.display())))?;
            raw.merge_toml(&text, &path.display().to_string())?;
        }
        raw.merge_env(env)?;
        raw.validate()
    }
}

#[derive(Default)]
struct RawSettings {
    values: BTreeMap<&'static str, String>,
}

impl RawSettings {
    fn merge_toml(&mut self, text: &str, origin: &str) -> Result<(), ConfigError> {
        let table: toml::Table =
            toml::from_str(text).map_err(|e| ConfigError(format!("{origin}: {e}")))?;
        for (key, value) in table {
            if let Some(secret) = key.strip_suffix("_file").and_then(secret_setting) {
                let Some(path) = value.as_str() else {
                    return Err(ConfigError(format!(
                        "{origin}: '{key}' must be a file path"
                    )));
                };
                let var = env_var(secret);
                if table_has(text, secret) {
                    return Err(ConfigError(format!(
                        "{origin}: '{secret}' and '{key}' are both set; use one ({var} or {var}_FILE)"
                    )));
                }
                self.values.insert(secret, read_secret_file(path, &key)?);
                continue;
            }
            let Some(&(known, _)) = SETTINGS.iter().find(|(k, _)| *k == key) else {
                return Err(ConfigError(format!("{origin}: unknown setting '{key}'")));
            };
            let value = match value {
                toml::Value::String(s) => s,
                toml::Value::Integer(i) => i.to_string(),
                toml::Value::Boolean(b) => b.to_string(),
                other => {
                    return Err(ConfigError(format!(
                        "{origin}: setting '{key}' must be a string or a number, got {}",
                        other.type_str()
                    )));
                }
            };
            self.values.insert(known, value);
        }
        Ok(())
    }

    fn merge_env(
        &mut self,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<(), ConfigError> {
        let mut files = Vec::new();
        let mut direct = Vec::new();
        for (name, value) in env {
            // An empty variable counts as unset, as compose files produce them.
            if value.is_empty() {
                continue;
            }
            if let Some(key) = name
                .strip_suffix("_FILE")
                .and_then(|var| SETTINGS.iter().find(|(_, v)| *v == var))
                .and_then(|(key, _)| secret_setting(key))
            {
                files.push((key, name, value));
            } else if let Some(&(key, _)) = SETTINGS.iter().find(|(_, var)| *var == name) {
                direct.push(key);
                self.values.insert(key, value);
            }
        }
        for (key, name, path) in files {
            if direct.contains(&key) {
                let var = env_var(key);
                return Err(ConfigError(format!(
                    "{var} and {name} are both set; use one"
                )));
            }
            // Read once, here: the value is then like any other setting.
            self.values.insert(key, read_secret_file(&path, &name)?);
        }
        Ok(())
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.values.get(key).map(String::as_str)
    }

    fn parse<T>(
        &self,
        key: &'static str,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Result<Option<T>, ConfigError> {
        self.get(key)
            .map(|v| parse(v).map_err(|e| invalid(key, &e)))
            .transpose()
    }

    fn require<T>(
        &self,
        key: &'static str,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Result<T, ConfigError> {
        self.parse(key, parse)?
            .ok_or_else(|| invalid(key, "is required"))
    }

    fn validate(self) -> Result<Config, ConfigError> {
        let (listen, issuer, tls) = self.listener()?;
        let (admin_listen, admin_scope) = self.admin()?;
        let (metrics_listen, header_read_timeout, max_connections) = self.connections()?;
        let audit_retention = self.require("audit_retention", |v| {
            parse_duration(v).filter(|s| *s >= 86_400).ok_or_else(|| {
                format!("expected a duration of a day or more such as 90d, got '{v}'")
            })
        })?;
        let apply_file = self
            .get("apply_file")
            .filter(|v| !v.trim().is_empty())
            .map(PathBuf::from);
        let drain_delay = self.require("drain_delay", |v| {
            parse_duration(v)
                .filter(|s| *s <= 600)
                .ok_or_else(|| format!("expected a duration up to 10m such as 5s, got '{v}'"))
        })?;
        let (data_dir, database, pool, key_encryption_key) = self.storage()?;
        let (token_ttl, signing_alg, jwks_max_age, key_rotation_interval) = self.tokens()?;
        let (credential_cache_ttl, throttle) = self.authentication()?;
        let assertion_max_age = self.require("assertion_max_age", |v| {
            parse_duration(v)
                .filter(|s| (1..=86_400).contains(s))
                .and_then(|s| u32::try_from(s).ok())
                .ok_or_else(|| format!("expected a duration from 1s to 1d such as 1h, got '{v}'"))
        })?;
        let allow_http_fetch = self.require("allow_http_fetch", parse_bool)?;
        let fetch_timeout = self.require("fetch_timeout", |v| {
            parse_duration(v)
                .filter(|s| (1..=60).contains(s))
                .ok_or_else(|| format!("expected a duration from 1s to 60s such as 5s, got '{v}'"))
        })?;
        let forwarded_header = self.require("forwarded_header", ForwardedHeader::parse)?;
        let trusted_proxies = self
            .parse("trusted_proxies", TrustedProxies::parse)?
            .unwrap_or_default()
            .with_header(forwarded_header);
        let sender_constraints = self.sender_constraints(&trusted_proxies)?;
        let log = self.get("log").unwrap_or("info").to_owned();
        let log_format = self.require("log_format", |v| match v {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            _ => Err(format!("expected 'text' or 'json', got '{v}'")),
        })?;
        Ok(Config {
            listen,
            issuer,
            data_dir,
            database,
            pool,
            key_encryption_key,
            token_ttl,
            signing_alg,
            log,
            log_format,
            jwks_max_age,
            key_rotation_interval,
            credential_cache_ttl,
            throttle,
            admin_listen,
            admin_scope,
            metrics_listen,
            header_read_timeout,
            max_connections,
            drain_delay,
            tls,
            assertion_max_age,
            allow_http_fetch,
            fetch_timeout,
            trusted_proxies,
            sender_constraints,
            audit_retention,
            apply_file,
        })
    }

    fn sender_constraints(
        &self,
        trusted_proxies: &TrustedProxies,
    ) -> Result<SenderConstraints, ConfigError> {
        let given = |key: &str| self.get(key).filter(|v| !v.trim().is_empty());
        let client_ca = given("tls_client_ca")
            .map(|path| ClientCa::from_pem_file(Path::new(path)))
            .transpose()
            .map_err(|e| invalid("tls_client_ca", &e))?;
        let client_cert_header = given("tls_client_cert_header")
            .map(|name| {
                let name = name.trim().to_ascii_lowercase();
                let token = name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
                if !token {
                    return Err(invalid(
                        "tls_client_cert_header",
                        "is not an HTTP header name",
                    ));
                }
                if trusted_proxies.is_empty() {
                    return Err(invalid(
                        "tls_client_cert_header",
                        "needs trusted_proxies: the header is believed only from them",
                    ));
                }
                Ok(name)
            })
            .transpose()?;
        let mtls_base_url = given("mtls_base_url")
            .map(|v| parse_issuer(v).map_err(|e| invalid("mtls_base_url", &e)))
            .transpose()?;
        let dpop_nonce = self.require("dpop_nonce", parse_bool)?;
        Ok(SenderConstraints {
            client_ca,
            client_cert_header,
            mtls_base_url,
            dpop_nonce,
        })
    }

    /// Where the public listener binds, under which issuer, with which TLS files.
    fn listener(&self) -> Result<(SocketAddr, Option<String>, Option<TlsFiles>), ConfigError> {
        let listen = self.require("listen", |v| {
            v.parse::<SocketAddr>()
                .map_err(|_| format!("expected an address such as 127.0.0.1:8080, got '{v}'"))
        })?;
        let issuer = self.parse("issuer", parse_issuer)?;
        let tls = match (self.get("tls_cert"), self.get("tls_key")) {
            (None, None) => None,
            (Some(cert), Some(key)) => Some(TlsFiles {
                cert: cert.into(),
                key: key.into(),
            }),
            (Some(_), None) => return Err(invalid("tls_key", "is required when tls_cert is set")),
            (None, Some(_)) => return Err(invalid("tls_cert", "is required when tls_key is set")),
        };
        Ok((listen, issuer, tls))
    }

    /// The admin API's own listener, if any, and the scope it requires.
    fn admin(&self) -> Result<(Option<SocketAddr>, String), ConfigError> {
        let admin_listen = self.parse("admin_listen", |v| {
            v.parse::<SocketAddr>()
                .map_err(|_| format!("expected an address such as 127.0.0.1:8081, got '{v}'"))
        })?;
        let admin_scope = self.require("admin_scope", |v| {
            is_scope_token(v)
                .then(|| v.to_owned())
                .ok_or_else(|| format!("'{v}' is not a scope token (RFC 6749 §3.3)"))
        })?;
        Ok((admin_listen, admin_scope))
    }

    /// The metrics listener and the bounds on connections.
    fn connections(&self) -> Result<(Option<SocketAddr>, u64, usize), ConfigError> {
        let metrics_listen = self.parse("metrics_listen", |v| {
            v.parse::<SocketAddr>()
                .map_err(|_| format!("expected an address such as 127.0.0.1:9090, got '{v}'"))
        })?;
        let header_read_timeout = self.require("header_read_timeout", |v| {
            parse_duration(v)
                .filter(|s| (1..=3600).contains(s))
                .ok_or_else(|| format!("expected a duration from 1s to 1h such as 10s, got '{v}'"))
        })?;
        let max_connections = self.require("max_connections", |v| positive(v, 1_000_000))?;
        Ok((
            metrics_listen,
            header_read_timeout,
            usize::try_from(max_connections).unwrap_or(usize::MAX),
        ))
    }

    /// The database, its pool, and the key that seals signing keys in it.
    fn storage(&self) -> Result<(PathBuf, Database, PoolSettings, Option<Secret>), ConfigError> {
        let data_dir = PathBuf::from(self.get("data_dir").unwrap_or("./data"));
        let pool = PoolSettings {
            max_connections: self.require("db_max_connections", |v| positive(v, 1000))?,
            acquire_timeout_secs: self
                .require("db_acquire_timeout", |v| positive(v, 600))?
                .into(),
            query_timeout_secs: self
                .require("db_query_timeout", |v| positive(v, 600))?
                .into(),
        };
        let key_encryption_key = self.get("key_encryption_key").map(Secret::new);
        if let Some(kek) = &key_encryption_key {
            KeyEncryptionKey::from_base64(kek.expose()).map_err(|e| {
                invalid(
                    "key_encryption_key",
                    &format!(
                        "{e} (expected 32 random bytes in base64, e.g. `openssl rand -base64 32`)"
                    ),
                )
            })?;
        }
        let database = match self.get("database_url") {
            None => Database::Sqlite {
                path: data_dir.join("tokenmint.db"),
            },
            Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
                if key_encryption_key.is_none() {
                    return Err(invalid(
                        "key_encryption_key",
                        "is required with PostgreSQL: every instance sharing the database needs the same one (`openssl rand -base64 32`)",
                    ));
                }
                Database::Postgres {
                    url: Secret::new(url),
                }
            }
            Some(url) if url.starts_with("sqlite:") => {
                let path = url.trim_start_matches("sqlite:").trim_start_matches("//");
                let path = path.split('?').next().unwrap_or_default();
                if path.is_empty() {
                    return Err(invalid("database_url", "a sqlite: URL needs a file path"));
                }
                Database::Sqlite {
                    path: PathBuf::from(path),
                }
            }
            // Never echo the URL: it may carry a password.
            Some(_) => {
                return Err(invalid(
                    "database_url",
                    "expected a postgres://, postgresql:// or sqlite: URL",
                ));
            }
        };
        Ok((data_dir, database, pool, key_encryption_key))
    }

    /// Token lifetime and the signing keys.
    fn tokens(&self) -> Result<(u32, Algorithm, u32, Option<u64>), ConfigError> {
        let token_ttl = self.require("token_ttl", |v| {
            v.parse::<u32>()
                .ok()
                .filter(|t| (MIN_TOKEN_TTL..=MAX_TOKEN_TTL).contains(t))
                .ok_or_else(|| {
                    format!(
                        "expected seconds between {MIN_TOKEN_TTL} and {MAX_TOKEN_TTL}, got '{v}'"
                    )
                })
        })?;
        let signing_alg = self.require("signing_alg", |v| v.parse::<Algorithm>())?;
        let jwks_max_age = self.require("jwks_max_age", |v| {
            v.parse::<u32>()
                .ok()
                .filter(|s| *s <= MAX_TOKEN_TTL)
                .ok_or_else(|| format!("expected seconds from 0 to {MAX_TOKEN_TTL}, got '{v}'"))
        })?;
        let key_rotation_interval = self.require("key_rotation_interval", |v| match v {
            "off" | "0" => Ok(None),
            _ => parse_duration(v)
                .filter(|s| *s >= MIN_ROTATION_INTERVAL)
                .map(Some)
                .ok_or_else(|| {
                    format!(
                        "expected 'off' or a duration of at least one hour such as 90d, got '{v}'"
                    )
                }),
        })?;
        Ok((token_ttl, signing_alg, jwks_max_age, key_rotation_interval))
    }

    /// The verified-credential cache and the failure throttle.
    fn authentication(&self) -> Result<(u64, ThrottleSettings), ConfigError> {
        let credential_cache_ttl = self.require("credential_cache_ttl", |v| {
            parse_duration(v).filter(|s| *s <= 86_400).ok_or_else(|| {
                format!(
                    "expected seconds from 0 (off) to 86400, or a duration such as 15m, got '{v}'"
                )
            })
        })?;
        let limit = |v: &str| match v {
            "off" => Ok(None),
            _ => positive(v, 1_000_000)
                .map(Some)
                .map_err(|e| format!("{e}, or 'off'")),
        };
        let throttle = ThrottleSettings {
            client_failures: self.require("throttle_client_failures", limit)?,
            address_failures: self.require("throttle_address_failures", limit)?,
            window: std::time::Duration::from_secs(self.require("throttle_window", |v| {
                parse_duration(v)
                    .filter(|s| (1..=86_400).contains(s))
                    .ok_or_else(|| {
                        format!("expected a duration from 1s to 1d such as 60 or 5m, got '{v}'")
                    })
            })?),
        };
        Ok((credential_cache_ttl, throttle))
    }
}

/// The secret setting named `key`, if it is one.
fn secret_setting(key: &str) -> Option<&'static str> {
    SECRET_SETTINGS.iter().copied().find(|s| *s == key)
}

fn env_var(key: &str) -> &'static str {
    SETTINGS
        .iter()
        .find(|(k, _)| *k == key)
        .map_or("", |(_, v)| v)
}

/// Whether a TOML text sets `key` directly (beside its `_file` variant).
fn table_has(text: &str, key: &str) -> bool {
    toml::from_str::<toml::Table>(text).is_ok_and(|t| t.contains_key(key))
}

/// A database URL or a key is short; anything larger is the wrong file.
const MAX_SECRET_FILE_BYTES: u64 = 64 * 1024;

/// A secret from a file: read once at start, one trailing line ending
/// trimmed (as `echo` and editors leave one). The message names the setting
/// and the path, never the content.
fn read_secret_file(path: &str, setting: &str) -> Result<String, ConfigError> {
    use std::io::Read as _;
    let invalid = |why: String| ConfigError(format!("invalid setting {setting}: {why}"));
    // Checked before opening: opening a FIFO would block, and a device such
    // as /dev/zero never ends.
    let metadata =
        std::fs::metadata(path).map_err(|e| invalid(format!("cannot read {path}: {e}")))?;
    if !metadata.is_file() {
        return Err(invalid(format!("{path} is not a regular file")));
    }
    let mut text = String::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_SECRET_FILE_BYTES + 1).read_to_string(&mut text))
        .map_err(|e| invalid(format!("cannot read {path}: {e}")))?;
    if text.len() as u64 > MAX_SECRET_FILE_BYTES {
        return Err(invalid(format!(
            "{path} is larger than {MAX_SECRET_FILE_BYTES} bytes"
        )));
    }
    let value = text
        .strip_suffix('\n')
        .map(|t| t.strip_suffix('\r').unwrap_or(t))
        .unwrap_or(&text);
    if value.is_empty() {
        return Err(invalid(format!("{path} is empty")));
    }
    Ok(value.to_owned())
}

/// Automatic rotation more often than hourly would churn the JWKS faster than
/// resource servers refresh it.
const MIN_ROTATION_INTERVAL: u64 = 3600;

/// Seconds, or a duration such as `90d` or `12h`.
fn parse_duration(v: &str) -> Option<u64> {
    v.parse::<u64>()
        .ok()
        .or_else(|| humantime::parse_duration(v).ok().map(|d| d.as_secs()))
}

fn invalid(key: &str, reason: &str) -> ConfigError {
    let var = SETTINGS
        .iter()
        .find(|(k, _)| *k == key)
        .map_or("", |(_, v)| v);
    ConfigError(format!("invalid setting {key} ({var}): {reason}"))
}

fn positive(v: &str, max: u32) -> Result<u32, String> {
    v.parse::<u32>()
        .ok()
        .filter(|n| (1..=max).contains(n))
        .ok_or_else(|| format!("expected a whole number from 1 to {max}, got '{v}'"))
}

/// RFC 8414 §2: the issuer is an `https` URL with no query or fragment; plain
/// `http` is accepted for local use. A trailing slash is dropped so that
/// endpoint URLs join cleanly.
fn parse_bool(v: &str) -> Result<bool, String> {
    match v {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(format!("expected 'true' or 'false', got '{v}'")),
    }
}

fn parse_issuer(v: &str) -> Result<String, String> {
    let ok_scheme = v.starts_with("https://") || v.starts_with("http://");
    if !ok_scheme || v.contains(['?', '#', ' ']) || v.split("://").nth(1).is_none_or(str::is_empty)
    {
        return Err(format!(
            "expected an http(s) URL without query or fragment, got '{v}'"
        ));
    }
    Ok(v.trim_end_matches('/').to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_give_the_embedded_store() {
        let c = Config::from_sources(None, env(&[])).unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(c.token_ttl, 3600);
        assert_eq!(c.signing_alg, Algorithm::ES256);
        assert!(
            matches!(c.database, Database::Sqlite { ref path } if path.ends_with("tokenmint.db"))
        );
    }

    #[test]
    fn environment_overrides_and_errors_name_the_setting() {
        let c = Config::from_sources(
            None,
            env(&[
                ("TOKENMINT_SIGNING_ALG", "EdDSA"),
                ("TOKENMINT_ISSUER", "https://a.example/"),
            ]),
        )
        .unwrap();
        assert_eq!(c.signing_alg, Algorithm::EdDSA);
        assert_eq!(c.issuer.as_deref(), Some("https://a.example"));
        let err = Config::from_sources(None, env(&[("TOKENMINT_TOKEN_TTL", "soon")])).unwrap_err();
        assert!(err.0.contains("token_ttl (TOKENMINT_TOKEN_TTL)"), "{err}");
    }

    #[test]
    fn postgres_needs_a_kek_and_the_url_is_never_echoed() {
        let err = Config::from_sources(None, env(&[("DATABASE_URL", "postgres://u:hunter2@h/db")]))
            .unwrap_err();
        assert!(err.0.contains("TOKENMINT_KEY_ENCRYPTION_KEY"), "{err}");
        let err = Config::from_sources(None, env(&[("DATABASE_URL", "mysql://u:hunter2@h/db")]))
            .unwrap_err();
        assert!(!err.0.contains("hunter2"), "{err}");
    }

    #[test]
    fn secret_settings_come_from_files_once_and_never_twice() {
        let dir = std::env::temp_dir().join(format!("tokenmint-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let kek_file = dir.join("kek");
        let kek = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
        std::fs::write(&kek_file, format!("{kek}\n")).unwrap();
        let url_file = dir.join("url");
        std::fs::write(&url_file, "postgres://u:hunter2@h/db\r\n").unwrap();
        let path = |p: &std::path::Path| p.to_str().unwrap().to_owned();
        let c = Config::from_sources(
            None,
            env(&[
                ("TOKENMINT_KEY_ENCRYPTION_KEY_FILE", &path(&kek_file)),
                ("DATABASE_URL_FILE", &path(&url_file)),
            ]),
        )
        .unwrap();
        assert_eq!(
            c.key_encryption_key.unwrap().expose(),
            kek,
            "newline trimmed"
        );
        assert!(
            matches!(c.database, Database::Postgres { ref url } if url.expose() == "postgres://u:hunter2@h/db")
        );

        let both = Config::from_sources(
            None,
            env(&[
                ("TOKENMINT_KEY_ENCRYPTION_KEY", kek),
                ("TOKENMINT_KEY_ENCRYPTION_KEY_FILE", &path(&kek_file)),
            ]),
        )
        .unwrap_err();
        assert!(
            both.0
                .contains("TOKENMINT_KEY_ENCRYPTION_KEY and TOKENMINT_KEY_ENCRYPTION_KEY_FILE"),
            "{both}"
        );
        let missing = Config::from_sources(None, env(&[("DATABASE_URL_FILE", "/nonexistent/url")]))
            .unwrap_err();
        assert!(missing.0.contains("DATABASE_URL_FILE"), "{missing}");
        assert!(!missing.0.contains("hunter2"));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
