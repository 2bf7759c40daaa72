//! Declarative provisioning: `tokenmint apply -f FILE` makes the store's
//! clients and trusted issuers match a TOML file (README, "Clients from a
//! file"). The plan is worked out against the store as it is, every entry
//! is checked with the same rules as the CLI and the API, and the writes go
//! in as one transaction: a file that fails anywhere changes nothing.
//! Secrets are never in the file: only where to read them (`secret_file`,
//! `secret_env`), or nothing, and then one is generated and shown once.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::issuers::build_issuer;
use super::{AdminError, ClientAdmin, ClientChanges, IdentityView, NewClient, NewIssuer};
use crate::crypto::{ClientSecret, HashCost, Lane, MAX_JWKS_BYTES, SecretHasher};
use crate::domain::client::{AuthMethod, Client, ClientQuery, MAX_PAGE, SecretOrigin};
use crate::domain::client::{FieldError, SecretHashes, parse_federated_identity};
use crate::domain::issuer::TrustedIssuer;
use crate::store::{AuditEntry, Store, StoreError, Write};

/// The most bytes of an apply file (a fleet of clients, not a dump).
pub const MAX_FILE_BYTES: u64 = 16 * 1024 * 1024;

struct ApplyDocument {
    clients: Vec<ClientEntry>,
    issuers: Vec<IssuerEntry>,
}

/// The file as TOML (a syntax error names its line), then each entry on
/// its own, so that a wrong field names the entry it is in.
fn parse_document(text: &str) -> Result<ApplyDocument, String> {
    let table: toml::Table = toml::from_str(text).map_err(|e| e.to_string())?;
    let mut document = ApplyDocument {
        clients: Vec::new(),
        issuers: Vec::new(),
    };
    for (key, value) in table {
        let toml::Value::Array(entries) = value else {
            return Err(format!("'{key}' must be a list of [[{key}]] tables"));
        };
        for (index, entry) in entries.into_iter().enumerate() {
            let name = entry
                .get("id")
                .or_else(|| entry.get("name"))
                .and_then(toml::Value::as_str)
                .unwrap_or_default()
                .to_owned();
            let named = |e: toml::de::Error| format!("{key}[{index}] \"{name}\": {}", e.message());
            match key.as_str() {
                "client" => document
                    .clients
                    .push(ClientEntry::deserialize(entry).map_err(named)?),
                "issuer" => document
                    .issuers
                    .push(IssuerEntry::deserialize(entry).map_err(named)?),
                _ => {
                    return Err(format!(
                        "unknown table [[{key}]]: use [[client]] and [[issuer]]"
                    ));
                }
            }
        }
    }
    Ok(document)
}

/// One `[[client]]`: every field but `id` optional, with the defaults of
/// `tokenmint client create`. What the file leaves out, the client does
/// not have (an apply makes the client match the file).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ClientEntry {
    id: String,
    #[serde(default)]
    scopes: Vec<String>,
    default_scopes: Option<Vec<String>>,
    #[serde(default)]
    audiences: Vec<String>,
    default_audience: Option<String>,
    grant_types: Option<Vec<String>>,
    token_ttl: Option<Seconds>,
    secret_file: Option<PathBuf>,
    secret_env: Option<String>,
    claims: Option<Value>,
    token_quota: Option<String>,
    enabled: Option<bool>,
    token_endpoint_auth_method: Option<String>,
    jwks_file: Option<PathBuf>,
    jwks_uri: Option<String>,
    #[serde(default)]
    federated: Vec<String>,
    dpop_bound_access_tokens: Option<bool>,
    certificate_bound_access_tokens: Option<bool>,
    tls_subject_dn: Option<String>,
    tls_san_dns: Option<String>,
    tls_san_uri: Option<String>,
    tls_san_ip: Option<String>,
    tls_san_email: Option<String>,
}

/// One `[[issuer]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct IssuerEntry {
    name: String,
    issuer: String,
    jwks_uri: Option<String>,
    jwks_file: Option<PathBuf>,
    audience: Option<String>,
    max_token_age: Option<Seconds>,
}

/// Seconds, or a duration such as "10m".
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Seconds {
    Number(u32),
    Text(String),
}

impl Seconds {
    fn get(&self, field: &'static str) -> Result<u32, FieldError> {
        match self {
            Self::Number(n) => Ok(*n),
            Self::Text(text) => humantime::parse_duration(text)
                .ok()
                .and_then(|d| u32::try_from(d.as_secs()).ok())
                .ok_or_else(|| FieldError::new(field, "seconds, or a duration such as 10m")),
        }
    }
}

/// What an apply did, or (`dry_run`) would do.
#[derive(Debug, Default, Serialize)]
pub struct ApplyOutcome {
    /// Client ids, and `issuer:NAME` for issuers.
    pub created: Vec<String>,
    pub changed: Vec<ChangedEntry>,
    pub deleted: Vec<String>,
    pub unchanged: Vec<String>,
    /// Generated secrets of created clients, shown this once.
    pub secrets: BTreeMap<String, String>,
    pub dry_run: bool,
}

#[derive(Debug, Serialize)]
pub struct ChangedEntry {
    pub id: String,
    pub fields: Vec<String>,
}

impl ApplyOutcome {
    pub fn is_empty(&self) -> bool {
        self.created.is_empty() && self.changed.is_empty() && self.deleted.is_empty()
    }

    /// The plan as people read it: a line per change, then the counts.
    pub fn describe(&self) -> String {
        let would = if self.dry_run { "would " } else { "" };
        let label = |id: &str| match id.strip_prefix("issuer:") {
            Some(name) => format!("issuer {name}"),
            None => format!("client {id}"),
        };
        let mut lines: Vec<String> = Vec::new();
        lines.extend(
            self.created
                .iter()
                .map(|id| format!("{would}create {}", label(id))),
        );
        lines.extend(
            self.changed
                .iter()
                .map(|c| format!("{would}change {}: {}", label(&c.id), c.fields.join(", "))),
        );
        lines.extend(
            self.deleted
                .iter()
                .map(|id| format!("{would}delete {}", label(id))),
        );
        if self.is_empty() {
            lines.push("no changes".to_owned());
        } else {
            lines.push(format!(
                "{} created, {} changed, {} deleted, {} unchanged",
                self.created.len(),
                self.changed.len(),
                self.deleted.len(),
                self.unchanged.len()
            ));
        }
        for (id, secret) in &self.secrets {
            lines.push(format!("client {id} secret: {secret}"));
        }
        lines.join("\n")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// The file, or one of its entries, is invalid (exit 2).
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Failed(#[from] AdminError),
}

impl From<StoreError> for ApplyError {
    fn from(e: StoreError) -> Self {
        Self::Failed(e.into())
    }
}

/// Applies the file at `path`: plans, checks everything, then writes it all
/// in one transaction (unless `dry_run`). With `prune`, clients and issuers
/// the file does not name are deleted.
pub async fn apply_file(
    store: &dyn Store,
    hasher: &SecretHasher,
    path: &Path,
    dry_run: bool,
    prune: bool,
    now: i64,
) -> Result<ApplyOutcome, ApplyError> {
    let text = read_limited(path, MAX_FILE_BYTES)
        .map_err(|e| ApplyError::Invalid(format!("cannot read {}: {e}", path.display())))?;
    let document = parse_document(&text)
        .map_err(|e| ApplyError::Invalid(format!("{}: {e}", path.display())))?;
    let actor = format!("apply:{}", path.display());
    let base = path.parent().unwrap_or(Path::new("."));
    let mut plan = Plan::default();
    plan_issuers(store, &document.issuers, base, now, &actor, &mut plan).await?;
    let admin = ClientAdmin {
        incoming_issuers: plan.issuers.clone(),
        ..ClientAdmin::new(store, hasher).by(actor.clone())
    };
    for (index, entry) in document.clients.into_iter().enumerate() {
        let name = format!("client[{index}] \"{}\"", entry.id);
        plan_client(&admin, store, entry, base, now, &mut plan)
            .await
            .map_err(|e| in_entry(&name, e))?;
    }
    if prune {
        plan_prune(store, &actor, &mut plan).await?;
    }
    plan.outcome.dry_run = dry_run;
    if !dry_run && !plan.outcome.is_empty() {
        plan.commit(store).await?;
        tracing::info!(file = %path.display(), created = plan.outcome.created.len(), changed = plan.outcome.changed.len(), deleted = plan.outcome.deleted.len(), "applied");
    }
    Ok(plan.outcome)
}

/// An entry's failure, named after the entry.
fn in_entry(name: &str, e: ApplyError) -> ApplyError {
    match e {
        ApplyError::Invalid(why) => ApplyError::Invalid(format!("{name}: {why}")),
        ApplyError::Failed(AdminError::Invalid(field)) => {
            ApplyError::Invalid(format!("{name}: {field}"))
        }
        ApplyError::Failed(AdminError::IdentityTaken(why)) => {
            ApplyError::Invalid(format!("{name}: {why}"))
        }
        other => other,
    }
}

/// The writes an apply will make, in order, with their audit entries.
#[derive(Default)]
struct Plan {
    /// Issuers stored or kept, as they will be (for the clients' checks).
    issuers: Vec<TrustedIssuer>,
    new_issuers: Vec<TrustedIssuer>,
    replaced_issuers: Vec<TrustedIssuer>,
    new_clients: Vec<Client>,
    changed_clients: Vec<Client>,
    deleted_clients: Vec<String>,
    deleted_issuers: Vec<String>,
    audit: Vec<AuditEntry>,
    outcome: ApplyOutcome,
}

impl Plan {
    /// Issuers first (clients' identities bind to them), deletions last.
    async fn commit(&self, store: &dyn Store) -> Result<(), ApplyError> {
        let mut writes: Vec<Write<'_>> = Vec::new();
        for issuer in &self.replaced_issuers {
            writes.push(Write::DeleteIssuer(&issuer.name));
            writes.push(Write::InsertIssuer(issuer));
        }
        writes.extend(self.new_issuers.iter().map(Write::InsertIssuer));
        writes.extend(self.new_clients.iter().map(Write::InsertClient));
        writes.extend(self.changed_clients.iter().map(Write::UpdateClient));
        writes.extend(
            self.deleted_clients
                .iter()
                .map(|id| Write::DeleteClient(id)),
        );
        writes.extend(self.deleted_issuers.iter().map(|n| Write::DeleteIssuer(n)));
        match store.write(&writes, &self.audit).await {
            Ok(()) => Ok(()),
            Err(StoreError::Conflict) => Err(ApplyError::Invalid(
                "an issuer's issuer URL is taken by another issuer, or a federated identity is given to two clients; nothing was written".to_owned(),
            )),
            Err(StoreError::NotApplied) => Err(ApplyError::Failed(
                AdminError::Fault(crate::fault::Fault::unavailable(
                    "clients or issuers changed while the file was applied; nothing was written, apply it again",
                )),
            )),
            Err(e) => Err(e.into()),
        }
    }
}

async fn plan_issuers(
    store: &dyn Store,
    entries: &[IssuerEntry],
    base: &Path,
    now: i64,
    actor: &str,
    plan: &mut Plan,
) -> Result<(), ApplyError> {
    let stored = store.list_issuers().await?;
    let mut seen = BTreeSet::new();
    for (index, entry) in entries.iter().enumerate() {
        let name = format!("issuer[{index}] \"{}\"", entry.name);
        let invalid = |why: String| ApplyError::Invalid(format!("{name}: {why}"));
        if !seen.insert(entry.name.clone()) {
            return Err(invalid("named twice in the file".to_owned()));
        }
        let jwks = entry
            .jwks_file
            .as_deref()
            .map(|p| read_json(&base.join(p)))
            .transpose()
            .map_err(invalid)?;
        let max_token_age = entry
            .max_token_age
            .as_ref()
            .map(|s| s.get("max_token_age"))
            .transpose()
            .map_err(|e| invalid(e.to_string()))?;
        let new = NewIssuer {
            name: entry.name.clone(),
            issuer: entry.issuer.clone(),
            jwks_uri: entry.jwks_uri.clone(),
            jwks,
            audience: entry.audience.clone(),
            max_token_age,
        };
        let mut wanted =
            build_issuer(new, now).map_err(|e| in_entry(&name, ApplyError::Failed(e)))?;
        let target = format!("issuer:{}", entry.name);
        match stored.iter().find(|i| i.name == entry.name) {
            None => {
                plan.audit
                    .push(AuditEntry::new(actor, "issuer.add", &target, &[]));
                plan.outcome.created.push(target);
                plan.new_issuers.push(wanted.clone());
            }
            Some(current) => {
                // The same id and age: the clients' bindings stay valid.
                wanted.id = current.id.clone();
                wanted.created_at = current.created_at;
                let fields = issuer_changes(current, &wanted);
                if fields.is_empty() {
                    plan.outcome.unchanged.push(target);
                } else {
                    plan.audit
                        .push(AuditEntry::new(actor, "issuer.update", &target, &fields));
                    plan.outcome.changed.push(ChangedEntry {
                        id: target,
                        fields: fields.iter().map(|f| (*f).to_owned()).collect(),
                    });
                    plan.replaced_issuers.push(wanted.clone());
                }
            }
        }
        plan.issuers.push(wanted);
    }
    Ok(())
}

fn issuer_changes(current: &TrustedIssuer, wanted: &TrustedIssuer) -> Vec<&'static str> {
    [
        ("issuer", current.issuer != wanted.issuer),
        ("keys", current.keys != wanted.keys),
        ("audience", current.audience != wanted.audience),
        (
            "max_token_age",
            current.max_token_age != wanted.max_token_age,
        ),
    ]
    .into_iter()
    .filter(|(_, changed)| *changed)
    .map(|(name, _)| name)
    .collect()
}

async fn plan_client(
    admin: &ClientAdmin<'_>,
    store: &dyn Store,
    entry: ClientEntry,
    base: &Path,
    now: i64,
    plan: &mut Plan,
) -> Result<(), ApplyError> {
    let id = entry.id.clone();
    let listed = |c: &Client| c.client_id == id;
    if plan.new_clients.iter().any(listed)
        || plan.changed_clients.iter().any(listed)
        || plan.outcome.unchanged.contains(&id)
    {
        return Err(ApplyError::Invalid("named twice in the file".to_owned()));
    }
    let secret = read_secret(&entry, base)?;
    let enabled = entry.enabled.unwrap_or(true);
    let new = new_client(entry, base)?;
    let Some(current) = store.get_client(&id).await? else {
        let imported = secret.is_some();
        let (mut client, secret) = admin.build(new, secret, now).await?;
        client.enabled = enabled;
        if let Some(secret) = secret.filter(|_| !imported) {
            plan.outcome
                .secrets
                .insert(id.clone(), secret.expose().to_owned());
        }
        plan.audit.push(admin.audit("client.create", &id, &[]));
        plan.outcome.created.push(id);
        plan.new_clients.push(client);
        return Ok(());
    };
    let mut wanted = current.clone();
    admin
        .apply_changes(&mut wanted, changes_to_match(new, enabled), now)
        .await?;
    if let Some(secret) = secret {
        keep_or_replace_secret(admin.hasher, &mut wanted, secret).await?;
    }
    let fields = current.changed_fields(&wanted);
    if fields.is_empty() {
        plan.outcome.unchanged.push(id);
        return Ok(());
    }
    plan.audit.push(admin.audit("client.update", &id, &fields));
    plan.outcome.changed.push(ChangedEntry {
        id,
        fields: fields.iter().map(|f| (*f).to_owned()).collect(),
    });
    plan.changed_clients.push(wanted);
    Ok(())
}

/// The file's secret: kept when it is the one stored (checked against the
/// hash), else stored as an imported secret (strong hash).
async fn keep_or_replace_secret(
    hasher: &SecretHasher,
    client: &mut Client,
    secret: ClientSecret,
) -> Result<(), ApplyError> {
    super::validate_imported_secret(&secret).map_err(AdminError::from)?;
    let Some(hashes) = client.secrets.as_mut() else {
        return Err(ApplyError::Invalid(format!(
            "a {} client has no secret: remove secret_file / secret_env",
            client.auth_method.as_str()
        )));
    };
    let same = hasher
        .verify(secret.clone(), vec![hashes.current.clone()], Lane::Clean)
        .await
        .map_err(AdminError::from)?
        .is_some();
    if !same {
        *hashes = SecretHashes {
            current: hasher
                .hash(secret, HashCost::for_origin(SecretOrigin::Imported))
                .await
                .map_err(AdminError::from)?,
            previous: None,
            origin: Some(SecretOrigin::Imported),
        };
    }
    Ok(())
}

/// The client as the file describes it, in the API's terms.
fn new_client(entry: ClientEntry, base: &Path) -> Result<NewClient, ApplyError> {
    let invalid = |e: FieldError| ApplyError::Invalid(e.to_string());
    let federated = entry
        .federated
        .iter()
        .map(|pair| parse_federated_identity(pair).map(|f| IdentityView::from(&f)))
        .collect::<Result<Vec<_>, _>>()
        .map_err(invalid)?;
    // TOML has no null: one here was a `nan` or an `inf`, which JSON
    // cannot carry.
    if entry.claims.as_ref().is_some_and(holds_null) {
        return Err(ApplyError::Invalid(
            "invalid claims: nan and inf are not JSON numbers".to_owned(),
        ));
    }
    Ok(NewClient {
        client_id: entry.id,
        scopes: entry.scopes,
        default_scopes: entry.default_scopes,
        audiences: entry.audiences,
        default_audience: entry.default_audience,
        grant_types: entry.grant_types,
        token_ttl: entry
            .token_ttl
            .as_ref()
            .map(|s| s.get("token_ttl"))
            .transpose()
            .map_err(invalid)?,
        token_endpoint_auth_method: entry.token_endpoint_auth_method,
        jwks: entry
            .jwks_file
            .as_deref()
            .map(|p| read_json(&base.join(p)))
            .transpose()
            .map_err(ApplyError::Invalid)?,
        jwks_uri: entry.jwks_uri,
        federated_identities: federated,
        tls_client_auth_subject_dn: entry.tls_subject_dn,
        tls_client_auth_san_dns: entry.tls_san_dns,
        tls_client_auth_san_uri: entry.tls_san_uri,
        tls_client_auth_san_ip: entry.tls_san_ip,
        tls_client_auth_san_email: entry.tls_san_email,
        dpop_bound_access_tokens: entry.dpop_bound_access_tokens.unwrap_or(false),
        tls_client_certificate_bound_access_tokens: entry.certificate_bound_access_tokens,
        claims: entry.claims,
        token_quota: entry.token_quota,
    })
}

fn holds_null(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Array(items) => items.iter().any(holds_null),
        Value::Object(map) => map.values().any(holds_null),
        _ => false,
    }
}

/// A change that sets every field to the file's value (or its default), so
/// that what the file leaves out is taken away.
fn changes_to_match(new: NewClient, enabled: bool) -> ClientChanges {
    let subject = |v: Option<String>| Some(v);
    let method = new.token_endpoint_auth_method.clone().unwrap_or_else(|| {
        let method = if [
            &new.tls_client_auth_subject_dn,
            &new.tls_client_auth_san_dns,
            &new.tls_client_auth_san_uri,
            &new.tls_client_auth_san_ip,
            &new.tls_client_auth_san_email,
        ]
        .iter()
        .any(|s| s.is_some())
        {
            AuthMethod::TlsClientAuth
        } else if new.jwks.is_some()
            || new.jwks_uri.is_some()
            || !new.federated_identities.is_empty()
        {
            AuthMethod::PrivateKeyJwt
        } else {
            AuthMethod::default()
        };
        method.as_str().to_owned()
    });
    let certificate = AuthMethod::parse(&method).is_ok_and(AuthMethod::uses_certificate);
    ClientChanges {
        default_scopes: Some(new.default_scopes.unwrap_or_else(|| new.scopes.clone())),
        scopes: Some(new.scopes),
        default_audience: Some(
            new.default_audience
                .or_else(|| new.audiences.first().cloned()),
        ),
        audiences: Some(new.audiences),
        grant_types: Some(
            new.grant_types
                .unwrap_or_else(|| vec![crate::domain::client::CLIENT_CREDENTIALS.to_owned()]),
        ),
        token_ttl: Some(new.token_ttl),
        enabled: Some(enabled),
        token_endpoint_auth_method: Some(method),
        jwks: Some(new.jwks),
        jwks_uri: Some(new.jwks_uri),
        federated_identities: Some(new.federated_identities),
        tls_client_auth_subject_dn: subject(new.tls_client_auth_subject_dn),
        tls_client_auth_san_dns: subject(new.tls_client_auth_san_dns),
        tls_client_auth_san_uri: subject(new.tls_client_auth_san_uri),
        tls_client_auth_san_ip: subject(new.tls_client_auth_san_ip),
        tls_client_auth_san_email: subject(new.tls_client_auth_san_email),
        dpop_bound_access_tokens: Some(new.dpop_bound_access_tokens),
        tls_client_certificate_bound_access_tokens: Some(
            new.tls_client_certificate_bound_access_tokens
                .unwrap_or(certificate),
        ),
        claims: Some(new.claims),
        merge_claims: false,
        token_quota: Some(new.token_quota),
    }
}

/// Every stored client and issuer the file does not name goes.
async fn plan_prune(store: &dyn Store, actor: &str, plan: &mut Plan) -> Result<(), ApplyError> {
    let named: BTreeSet<String> = plan
        .outcome
        .created
        .iter()
        .chain(plan.outcome.unchanged.iter())
        .chain(plan.outcome.changed.iter().map(|c| &c.id))
        .cloned()
        .collect();
    let mut query = ClientQuery {
        limit: MAX_PAGE,
        ..ClientQuery::default()
    };
    loop {
        let page = store.list_clients(&query).await?;
        for client in &page {
            if !named.contains(&client.client_id) {
                plan.audit.push(AuditEntry::new(
                    actor,
                    "client.delete",
                    &client.client_id,
                    &[],
                ));
                plan.outcome.deleted.push(client.client_id.clone());
                plan.deleted_clients.push(client.client_id.clone());
            }
        }
        match page.last() {
            Some(last) if page.len() == MAX_PAGE as usize => {
                query.after = Some(last.client_id.clone());
            }
            _ => break,
        }
    }
    for issuer in store.list_issuers().await? {
        let target = format!("issuer:{}", issuer.name);
        if !named.contains(&target) {
            plan.audit
                .push(AuditEntry::new(actor, "issuer.remove", &target, &[]));
            plan.outcome.deleted.push(target);
            plan.deleted_issuers.push(issuer.name);
        }
    }
    Ok(())
}

/// The secret an entry refers to, if any.
fn read_secret(entry: &ClientEntry, base: &Path) -> Result<Option<ClientSecret>, ApplyError> {
    let text = match (&entry.secret_file, &entry.secret_env) {
        (Some(_), Some(_)) => {
            return Err(ApplyError::Invalid(
                "give secret_file or secret_env, not both".to_owned(),
            ));
        }
        (Some(file), None) => {
            let path = base.join(file);
            read_limited(&path, super::MAX_IMPORTED_SECRET_LEN as u64 + 2).map_err(|e| {
                ApplyError::Invalid(format!("cannot read secret_file {}: {e}", path.display()))
            })?
        }
        (None, Some(name)) => std::env::var(name).map_err(|_| {
            ApplyError::Invalid(format!("secret_env: the variable {name} is not set"))
        })?,
        (None, None) => return Ok(None),
    };
    // Files written by `echo` end with a line break that is not the secret's.
    let text = text
        .strip_suffix('\n')
        .map(|t| t.strip_suffix('\r').unwrap_or(t))
        .unwrap_or(&text);
    Ok(Some(ClientSecret::new(text.to_owned())))
}

/// A JSON file no larger than a key set may be.
fn read_json(path: &Path) -> Result<Value, String> {
    let text = read_limited(path, MAX_JWKS_BYTES as u64)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{} is not JSON: {e}", path.display()))
}

/// A UTF-8 file of at most `limit` bytes.
fn read_limited(path: &Path, limit: u64) -> Result<String, String> {
    use std::io::Read as _;
    // A FIFO or a device would block or never end: regular files only.
    if !std::fs::metadata(path)
        .map_err(|e| e.to_string())?
        .is_file()
    {
        return Err("not a regular file".to_owned());
    }
    let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let mut text = String::new();
    file.take(limit + 1)
        .read_to_string(&mut text)
        .map_err(|e| e.to_string())?;
    if text.len() as u64 > limit {
        return Err(format!("larger than {limit} bytes"));
    }
    Ok(text)
}
