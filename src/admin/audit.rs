//! Reading the audit trail: who changed which client, issuer or key, and
//! when. The entries are written by the store in the same transaction as
//! the change they describe (`Store::write`); this module only pages them.

use std::time::{Duration, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::AdminError;
use crate::clock::rfc3339;
use crate::domain::client::{DEFAULT_PAGE, FieldError, MAX_PAGE};
use crate::store::{AuditQuery, AuditRecord, Store};

/// One audit entry as the CLI and the API show it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct AuditView {
    /// Increasing; the cursor of the next (older) page.
    pub id: i64,
    /// RFC 3339.
    pub at: String,
    /// The admin client's id, `cli:` + the OS user, `apply:` + the file, or
    /// `tokenmint` (automatic key rotation).
    pub actor: String,
    /// `client.create`, `client.update`, `client.enable`, `client.disable`,
    /// `client.rotate_secret`, `client.revoke_tokens`, `client.delete`,
    /// `issuer.add`, `issuer.remove`, `key.rotate`, `key.revoke`.
    pub action: String,
    /// A client id, `issuer:` + name, or `key:` + kid.
    pub target: String,
    /// The names of the fields changed (never their values).
    pub fields: Vec<String>,
}

impl From<AuditRecord> for AuditView {
    fn from(r: AuditRecord) -> Self {
        Self {
            id: r.id,
            at: rfc3339(r.at),
            actor: r.actor,
            action: r.action,
            target: r.target,
            fields: r.fields,
        }
    }
}

/// A page of the audit trail, newest first.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AuditPage {
    pub entries: Vec<AuditView>,
    /// Where the next (older) page starts (`after`), if there may be one.
    pub next_after: Option<i64>,
}

/// Checks a page request as the API and the CLI take it.
pub fn audit_query(
    target: Option<String>,
    since: Option<&str>,
    after: Option<i64>,
    limit: Option<u32>,
    now: i64,
) -> Result<AuditQuery, FieldError> {
    let limit = limit.unwrap_or(DEFAULT_PAGE);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(FieldError::new("limit", format!("must be 1 to {MAX_PAGE}")));
    }
    Ok(AuditQuery {
        target,
        since: since.map(|s| parse_since(s, now)).transpose()?,
        before: after,
        limit,
    })
}

/// An RFC 3339 time, Unix seconds, or a duration back from `now` (`1h`,
/// `7d`).
pub fn parse_since(text: &str, now: i64) -> Result<i64, FieldError> {
    if let Ok(at) = humantime::parse_rfc3339_weak(text) {
        let secs = at.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
        return Ok(i64::try_from(secs.as_secs()).unwrap_or(i64::MAX));
    }
    if let Ok(unix) = text.parse::<i64>() {
        return Ok(unix);
    }
    match humantime::parse_duration(text) {
        Ok(ago) => Ok(now.saturating_sub(i64::try_from(ago.as_secs()).unwrap_or(i64::MAX))),
        Err(_) => Err(FieldError::new(
            "since",
            "an RFC 3339 time (2026-12-01T00:00:00Z), Unix seconds, or a duration ago (1h, 7d)",
        )),
    }
}

/// One page of the audit trail.
pub async fn audit_page(store: &dyn Store, query: &AuditQuery) -> Result<AuditPage, AdminError> {
    let records = store.list_audit(query).await?;
    let next_after = (records.len() == query.limit as usize)
        .then(|| records.last().map(|r| r.id))
        .flatten();
    Ok(AuditPage {
        entries: records.into_iter().map(AuditView::from).collect(),
        next_after,
    })
}

/// `cli:` and the OS user, for changes made on the command line.
pub fn cli_actor() -> String {
    let named = |var: &str| std::env::var(var).ok().filter(|v| !v.is_empty());
    let user = named("USER")
        .or_else(|| named("LOGNAME"))
        .or_else(uid)
        .unwrap_or_else(|| "unknown".to_owned());
    format!("cli:{user}")
}

/// `uid:N` of this process, where no user name is set (a container's
/// root, a cron job): still someone the audit trail can tell apart.
fn uid() -> Option<String> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("Uid:"))?;
    let real = line.split_whitespace().nth(1)?;
    Some(format!("uid:{real}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_takes_times_and_durations() {
        let now = 1_800_000_000;
        assert_eq!(parse_since("1970-01-01T00:01:00Z", now).unwrap(), 60);
        assert_eq!(parse_since("1h", now).unwrap(), now - 3600);
        assert_eq!(parse_since("120", now).unwrap(), 120);
        assert!(parse_since("yesterday", now).is_err());
    }
}
